//! The loop of every sender task that works off a table of due rows (mail, account
//! deletions): a round at a time until the process drains, waiting for a wake-up or
//! the poll interval whenever a round found nothing to do.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use peermesh_common::health::Readiness;
use tokio::sync::Notify;

/// Spawns the sender; `round` does one round and says how many rows it tried.
pub fn spawn<F, Fut>(
    readiness: Readiness,
    poll: Duration,
    wake: Arc<Notify>,
    mut round: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + 'static,
    Fut: Future<Output = usize> + 'static,
{
    actix_web::rt::spawn(async move {
        while !readiness.is_draining() {
            if round().await == 0 {
                let _ = tokio::time::timeout(poll, wake.notified()).await;
            }
        }
    })
}
