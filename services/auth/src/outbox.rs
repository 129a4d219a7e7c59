//! The loop of every sender task that works off a table of due rows (mail, account
//! deletions): a round at a time until the process drains, waiting for a wake-up or
//! the poll interval whenever a round found nothing to do.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use peermesh_common::health::Readiness;
use tokio::sync::Notify;

/// When a sender looks for due rows: on a wake-up (a row was written) or every `poll`.
#[derive(Clone)]
pub struct Wakeup {
    poll: Duration,
    queued: Arc<Notify>,
}

impl Wakeup {
    pub fn every(poll: Duration) -> Self {
        Self {
            poll,
            queued: Arc::new(Notify::new()),
        }
    }

    /// Tells the sender that rows are waiting (after the commit that wrote them).
    pub fn wake(&self) {
        self.queued.notify_one();
    }

    /// Spawns the sender; `round` does one round and says how many rows it tried.
    pub fn spawn<F, Fut>(&self, readiness: Readiness, mut round: F) -> tokio::task::JoinHandle<()>
    where
        F: FnMut() -> Fut + 'static,
        Fut: Future<Output = usize> + 'static,
    {
        let this = self.clone();
        actix_web::rt::spawn(async move {
            while !readiness.is_draining() {
                if round().await == 0 {
                    let _ = tokio::time::timeout(this.poll, this.queued.notified()).await;
                }
            }
        })
    }
}
