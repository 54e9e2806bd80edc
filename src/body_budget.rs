//! A global bound on request-body bytes held in memory at once: without it a hundred slow
//! connections (or one HTTP/2 connection with many streams) that never finish their bodies hold a
//! gigabyte until the request timeout, and a few kilobytes of gzip inflate to megabytes. Bytes are
//! charged as they arrive, and what a finished gzip body inflates to is charged again as it comes out
//! (`crate::body` inflates only a complete body); everything is released when the request is answered.
//! A request that finds the budget spent is answered 503 with `Retry-After` (gRPC: UNAVAILABLE) at
//! once, which also frees what it held.
//!
//! Every request's first [`SMALL_REQUEST_BYTES`] draw on the whole budget; bytes beyond that also
//! draw on a large-body share of three quarters of it. Large bodies therefore cannot take the last
//! quarter, and the usual reports of a few kilobytes keep being accepted while large ones wait.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The part of each request that may use the quarter of the budget large bodies cannot reach; a
/// PMM or agent report is a few kilobytes.
pub const SMALL_REQUEST_BYTES: usize = 256 * 1024;

/// Semaphores count in u32; the budget is kept in kibibytes so that it may exceed 4 GiB.
const UNIT: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("the service is holding as many request bodies as its memory budget allows")]
pub struct BudgetSpent;

/// The budget, shared by every connection.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    all: Arc<Semaphore>,
    large: Arc<Semaphore>,
    units: usize,
}

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        let units = bytes.div_ceil(UNIT).max(1);
        Self {
            all: Arc::new(Semaphore::new(units)),
            large: Arc::new(Semaphore::new((units * 3 / 4).max(1))),
            units,
        }
    }

    /// The request with its body charged to the budget, and the account that holds the charge:
    /// keep the account until the request is answered.
    pub fn charge(&self, request: Request) -> (Request, Account) {
        let account = Account(Arc::new(Mutex::new(Charges::default())));
        let budget = self.clone();
        let held = account.clone();
        let request = request.map(|body| {
            Body::new(ChargedBody {
                inner: body,
                budget,
                account: held,
            })
        });
        (request, account)
    }

    /// Bytes of request bodies held right now (rounded up to whole kibibytes per request).
    pub fn held_bytes(&self) -> usize {
        (self.units - self.all.available_permits()) * UNIT
    }
}

#[derive(Default)]
struct Charges {
    bytes: usize,
    all: Option<OwnedSemaphorePermit>,
    large: Option<OwnedSemaphorePermit>,
    refused: bool,
}

/// What one request holds of the budget; released when the last clone is dropped.
#[derive(Clone, Default)]
pub struct Account(Arc<Mutex<Charges>>);

impl Account {
    /// True if the request's body was cut short because the budget was spent.
    pub fn refused(&self) -> bool {
        self.lock().refused
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Charges> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Charges `bytes` more, or refuses (for good) if the budget cannot hold them.
    pub fn charge(&self, budget: &BodyBudget, bytes: usize) -> Result<(), BudgetSpent> {
        let mut charges = self.lock();
        if charges.refused {
            return Err(BudgetSpent);
        }
        let units = |bytes: usize| bytes.div_ceil(UNIT);
        let before = charges.bytes;
        let after = before + bytes;
        let new_units = units(after) - units(before);
        let new_large_units = units(after.saturating_sub(SMALL_REQUEST_BYTES))
            - units(before.saturating_sub(SMALL_REQUEST_BYTES));
        let taken = acquire(&budget.all, new_units)
            .and_then(|all| acquire(&budget.large, new_large_units).map(|large| (all, large)));
        let Some((all, large)) = taken else {
            charges.refused = true;
            return Err(BudgetSpent);
        };
        merge(&mut charges.all, all);
        merge(&mut charges.large, large);
        charges.bytes = after;
        Ok(())
    }
}

/// Some(None) when nothing is needed.
fn acquire(semaphore: &Arc<Semaphore>, units: usize) -> Option<Option<OwnedSemaphorePermit>> {
    if units == 0 {
        return Some(None);
    }
    let units = u32::try_from(units).ok()?;
    semaphore
        .clone()
        .try_acquire_many_owned(units)
        .ok()
        .map(Some)
}

fn merge(held: &mut Option<OwnedSemaphorePermit>, more: Option<OwnedSemaphorePermit>) {
    match (held.as_mut(), more) {
        (Some(held), Some(more)) => held.merge(more),
        (None, more) => *held = more,
        (Some(_), None) => {}
    }
}

/// A request body whose data frames are charged to the budget as they pass.
struct ChargedBody {
    inner: Body,
    budget: BodyBudget,
    account: Account,
}

impl HttpBody for ChargedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(spent) = self.account.charge(&self.budget, data.len())
        {
            return Poll::Ready(Some(Err(axum::Error::new(spent))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// True if `error` (a body-reading failure, through however many wrappers) is the budget refusing.
pub fn is_budget_spent(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BudgetSpent>() {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_bodies_leave_a_quarter_for_small_ones() {
        let budget = BodyBudget::new(4 * 1024 * 1024);
        let large = Account(Arc::default());
        // A body may grow until it has taken the large share (3 MiB) plus its small part.
        let mut taken = 0;
        while large.charge(&budget, 64 * 1024).is_ok() {
            taken += 64 * 1024;
        }
        assert_eq!(taken, 3 * 1024 * 1024 + SMALL_REQUEST_BYTES);
        assert!(large.refused());
        // What is left still serves small requests, up to their small part each.
        let small = Account(Arc::default());
        assert!(small.charge(&budget, 8 * 1024).is_ok());
        assert!(
            small.charge(&budget, SMALL_REQUEST_BYTES).is_err(),
            "beyond its small part a request needs the large share"
        );
        drop(large);
        drop(small);
        assert_eq!(budget.held_bytes(), 0, "all released");
    }
}
