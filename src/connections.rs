//! What hyper does not bound per connection: how many connections are open at once, and how long one
//! may sit idle. hyper closes an idle HTTP/1.1 connection when the next request's headers do not
//! arrive in time, but an HTTP/2 connection that answers pings lives forever once it has carried a
//! request; enough of them exhaust file descriptors. Here a connection with no request in flight for
//! the idle timeout is closed gracefully (HTTP/2: GOAWAY), whatever its protocol, and connections
//! beyond the cap are closed as soon as they are accepted.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::Request;
use axum_server::ConnectionShutdown;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::Service;

use crate::observability;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The connection-level limits (`Config::connection_limits`).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once; more are closed on arrival.
    pub max_connections: usize,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("connection refused: {0} connections are open already")]
pub struct TooManyConnections(usize);

/// Wraps the make-service the server calls once per accepted connection.
#[derive(Clone)]
pub struct LimitConnections<M> {
    inner: M,
    slots: Arc<Semaphore>,
    limits: ConnectionLimits,
}

impl<M> LimitConnections<M> {
    pub fn new(inner: M, limits: ConnectionLimits) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
        }
    }
}

impl<M, T> Service<T> for LimitConnections<M>
where
    M: Service<T>,
    M::Error: Into<BoxError>,
    M::Future: Send + 'static,
{
    type Response = CloseWhenIdle<M::Response>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, target: T) -> Self::Future {
        // An error here makes the server drop the accepted socket at once.
        let slot = self.slots.clone().try_acquire_owned();
        let made = self.inner.call(target);
        let limits = self.limits;
        Box::pin(async move {
            let Ok(slot) = slot else {
                observability::connection_refused();
                return Err(TooManyConnections(limits.max_connections).into());
            };
            let inner = made.await.map_err(Into::into)?;
            Ok(CloseWhenIdle {
                inner,
                connection: Arc::new(Connection {
                    _slot: slot,
                    in_flight: AtomicUsize::new(0),
                    last_active: Mutex::new(Instant::now()),
                    watched: AtomicBool::new(false),
                }),
                idle_timeout: limits.idle_timeout,
            })
        })
    }
}

/// One open connection: dropped with the connection's service, which releases its slot.
struct Connection {
    _slot: OwnedSemaphorePermit,
    in_flight: AtomicUsize,
    last_active: Mutex<Instant>,
    watched: AtomicBool,
}

impl Connection {
    /// When the connection will have been idle for `idle_timeout`, or None while a request is in flight.
    fn idle_deadline(&self, idle_timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last_active = *self.last_active.lock().unwrap_or_else(|e| e.into_inner());
        Some(last_active + idle_timeout)
    }
}

/// Counts a request in flight until its response is ready (or the request is dropped).
struct InFlight(Arc<Connection>);

impl InFlight {
    fn begin(connection: &Arc<Connection>) -> Self {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(connection.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_active.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The per-connection service: the router, plus the bookkeeping for the idle timeout.
#[derive(Clone)]
pub struct CloseWhenIdle<S> {
    inner: S,
    connection: Arc<Connection>,
    idle_timeout: Duration,
}

impl<S, B> Service<Request<B>> for CloseWhenIdle<S>
where
    S: Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The first request brings the handle that closes its connection; the watch starts then,
        // as until then the server's first-request timeout applies.
        if let Some(shutdown) = request.extensions().get::<ConnectionShutdown>()
            && !self.connection.watched.swap(true, Ordering::AcqRel)
        {
            tokio::spawn(close_when_idle(
                Arc::downgrade(&self.connection),
                shutdown.clone(),
                self.idle_timeout,
            ));
        }
        let in_flight = InFlight::begin(&self.connection);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(in_flight);
            response
        })
    }
}

/// Closes the connection gracefully once it has had no request in flight for `idle_timeout`; ends
/// by itself when the connection closes first.
///
/// An HTTP/2 graceful close waits for the client to acknowledge a ping after the GOAWAY; a client
/// that never does is cut off one more idle timeout later, once nothing is in flight.
async fn close_when_idle(
    connection: Weak<Connection>,
    shutdown: ConnectionShutdown,
    idle_timeout: Duration,
) {
    let mut closing = false;
    loop {
        let Some(deadline) = connection.upgrade().map(|c| c.idle_deadline(idle_timeout)) else {
            return;
        };
        match deadline {
            Some(deadline) if deadline <= Instant::now() => {
                if closing {
                    shutdown.shutdown();
                    return;
                }
                shutdown.graceful_shutdown();
                closing = true;
                tokio::time::sleep(idle_timeout).await;
            }
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => tokio::time::sleep(idle_timeout).await,
        }
    }
}
