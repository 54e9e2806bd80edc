//! Reloading files at run time. Reload requests (SIGHUP, or a direct call) fan out to every
//! component that re-reads a file without a restart, and [`FileFingerprint`] tells a watcher that a
//! file was replaced or rewritten.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The fan-out point for reload requests; clone it to subscribe or to request.
#[derive(Clone, Debug)]
pub struct ReloadRequests {
    sender: Arc<watch::Sender<()>>,
}

impl Default for ReloadRequests {
    fn default() -> Self {
        Self {
            sender: Arc::new(watch::Sender::new(())),
        }
    }
}

impl ReloadRequests {
    /// Asks every subscriber to reload now.
    pub fn request(&self) {
        self.sender.send_replace(());
    }

    /// Requests made from now on.
    pub fn subscribe(&self) -> ReloadSubscription {
        ReloadSubscription(self.sender.subscribe())
    }

    /// Installs the SIGHUP handler (replacing the default action, termination) and returns the
    /// future that turns every SIGHUP into a reload request until it is dropped.
    pub fn forward_sighup(&self) -> io::Result<impl Future<Output = ()> + Send + use<>> {
        let mut hangups = signal(SignalKind::hangup())?;
        let requests = self.clone();
        Ok(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP received: reloading");
                requests.request();
            }
        })
    }
}

/// One component's view of the reload requests.
pub struct ReloadSubscription(watch::Receiver<()>);

impl ReloadSubscription {
    /// Waits for the next request. Requests made while the subscriber was busy reloading count as
    /// one, so a burst of signals causes one more reload, not a queue of them.
    pub async fn next(&mut self) {
        if self.0.changed().await.is_err() {
            // Every ReloadRequests handle is gone: no request can come any more.
            std::future::pending::<()>().await;
        }
    }
}

/// What identifies one version of a file: replacing it by rename changes the inode, rewriting it
/// in place changes the modification time or the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFingerprint {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileFingerprint {
    /// The fingerprint of the file `path` names now (symbolic links followed, as Kubernetes
    /// ConfigMap and Secret volumes swap a link to publish a new version).
    pub fn of(path: &Path) -> io::Result<Self> {
        let metadata = std::fs::metadata(path)?;
        Ok(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}
