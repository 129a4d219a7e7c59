//! Webhook deliveries: a task in every content process claims a subscription that is
//! behind its owner's change feed (with a lease), POSTs the next changes in order to
//! its URL — `{webhook_id, changes, next_cursor}`, signed like ingestion's callbacks
//! (`X-PeerMesh-Timestamp`, `X-PeerMesh-Signature: sha256=<HMAC(secret,
//! "<timestamp>.<body>")>`) — and moves its cursor on when the receiver answers 2xx.
//! Otherwise the same changes are sent again later, with backoff (at most an hour
//! apart): at least once, in order, across restarts. The URL is reached through the
//! SSRF-safe client (no private addresses unless allowed, no redirects).

use std::time::Duration;

use chrono::TimeDelta;
use peermesh_common::health::Readiness;
use peermesh_common::outbound::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use peermesh_db::Db;
use slog::Logger;
use tokio::sync::watch;

use crate::routes::changes::ChangeOut;
use crate::store::{changes, webhooks};

/// Changes per delivery at most.
pub const BATCH: i64 = 100;
/// How long a process holds a subscription it delivers to.
const LEASE_SECS: i64 = 60;
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// Starts the delivery task; it wakes when the feed moves on (`latest`), or every
/// second for retries that came due.
pub fn start(
    db: Db,
    http: reqwest::Client,
    retry_base: Duration,
    mut latest: watch::Receiver<i32>,
    readiness: Readiness,
    logger: Logger,
) -> tokio::task::JoinHandle<()> {
    actix_web::rt::spawn(async move {
        while !readiness.is_draining() {
            if !deliver_one(&db, &http, retry_base, &logger).await {
                let _ = tokio::time::timeout(Duration::from_secs(1), latest.changed()).await;
            }
        }
    })
}

/// Claims one subscription and delivers its next changes; whether there was one.
async fn deliver_one(
    db: &Db,
    http: &reqwest::Client,
    retry_base: Duration,
    logger: &Logger,
) -> bool {
    let lease = TimeDelta::seconds(LEASE_SECS);
    let hook = match db.write(move |conn| webhooks::claim(conn, lease)).await {
        Ok(Some(hook)) => hook,
        Ok(None) => return false,
        Err(e) => {
            slog::warn!(logger, "claiming a webhook failed"; "error" => e.to_string());
            return false;
        }
    };
    let (owner, cursor) = (hook.owner_id.clone(), hook.cursor);
    let batch = match db
        .read(move |conn| changes::after(conn, &owner, cursor, BATCH))
        .await
    {
        Ok(batch) => batch,
        Err(e) => {
            slog::warn!(logger, "reading changes for a webhook failed"; "error" => e.to_string());
            return true; // the lease lapses; tried again then
        }
    };
    let next = batch.last().map_or(hook.cursor, |c| c.seq);
    let changes: Vec<ChangeOut> = batch.into_iter().map(ChangeOut::from).collect();
    let body = serde_json::json!({
        "webhook_id": hook.id,
        "changes": changes,
        "next_cursor": next.to_string(),
    })
    .to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let outcome = http
        .post(&hook.url)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(
            SIGNATURE_HEADER,
            sign(hook.secret.as_bytes(), timestamp, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| {
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("the receiver answered {}", r.status()))
            }
        });
    let id = hook.id.clone();
    let recorded = match outcome {
        Ok(()) => {
            db.write(move |conn| webhooks::delivered(conn, &id, next))
                .await
        }
        Err(error) => {
            let delay = retry_base
                .saturating_mul(1 << hook.failures.clamp(0, 20))
                .min(MAX_DELAY);
            slog::warn!(logger, "a webhook delivery failed; will retry";
                "webhook" => &hook.id, "failures" => hook.failures + 1, "error" => &error,
                "retry_in_ms" => delay.as_millis() as u64);
            let delay = TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(1));
            db.write(move |conn| webhooks::failed(conn, &id, &error, delay))
                .await
        }
    };
    if let Err(e) = recorded {
        slog::warn!(logger, "recording a webhook delivery failed"; "error" => e.to_string());
    }
    true
}
