//! The change feed's clock: one task per process reads the newest change every
//! `CONTENT_CHANGES_POLL_MS` and publishes it, so an open stream (`GET
//! /changes/stream`) waits on that instead of asking the database itself; the same task
//! removes changes older than `CONTENT_CHANGES_RETENTION_DAYS`. Writes by any replica
//! are seen, since it reads the database.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use peermesh_common::health::Readiness;
use peermesh_db::Db;
use slog::Logger;
use tokio::sync::watch;

use crate::store::changes;

/// How often old changes are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Starts the task; the receiver holds the newest change's `seq`.
pub fn start(
    db: Db,
    poll: Duration,
    retention: TimeDelta,
    readiness: Readiness,
    logger: Logger,
) -> watch::Receiver<i32> {
    let (tx, rx) = watch::channel(0);
    actix_web::rt::spawn(async move {
        let mut pruned = Instant::now() - PRUNE_EVERY;
        while !readiness.is_draining() {
            if let Ok(latest) = db.read(changes::latest).await {
                tx.send_if_modified(|seen| std::mem::replace(seen, latest) != latest);
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                let before = chrono::Utc::now().naive_utc() - retention;
                match db.write(move |conn| changes::prune(conn, before)).await {
                    Ok(0) => {}
                    Ok(n) => slog::info!(logger, "old changes removed"; "count" => n),
                    Err(e) => {
                        slog::warn!(logger, "removing old changes failed"; "error" => e.to_string())
                    }
                }
            }
            tokio::time::sleep(poll).await;
        }
    });
    rx
}
