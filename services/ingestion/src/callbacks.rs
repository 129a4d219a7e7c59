//! Job callbacks: when a job with a `callback_url` finishes, that URL gets a POST of
//! the job, signed with HMAC-SHA256 so the receiver can tell it came from us:
//! `X-PeerMesh-Timestamp: <unix seconds>` and `X-PeerMesh-Signature: sha256=<hex of
//! HMAC(INGEST_CALLBACK_SECRET, "<timestamp>.<body>")>`. Delivery uses the same
//! SSRF-safe client as URL imports (no redirects), retried a few times in the
//! background; it never holds up the job.

use std::time::Duration;

use peermesh_common::trace::TraceContext;
use serde_json::json;

use crate::routes::jobs::JobOut;
use crate::store::jobs;
use crate::AppState;

pub use peermesh_common::outbound::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
const ATTEMPTS: u32 = 4;

/// Checks a `callback_url` when a job is requested: callbacks must be configured and
/// the URL acceptable to the SSRF rules.
pub fn validate(state: &AppState, raw: &str) -> Result<String, peermesh_common::ApiError> {
    let invalid = |m: String| {
        peermesh_common::ApiError::validation(vec![peermesh_common::FieldError::new(
            "callback_url",
            m,
        )])
    };
    if state.settings.callback_secret.is_none() {
        return Err(invalid(
            "callbacks are not enabled here (INGEST_CALLBACK_SECRET is unset)".into(),
        ));
    }
    if raw.chars().count() > 2048 {
        return Err(invalid("must be at most 2048 characters".into()));
    }
    state
        .fetcher
        .check(raw)
        .map(|u| u.to_string())
        .map_err(|e| invalid(e.to_string()))
}

/// Sends the finished job `job_id` to `url` in the background.
pub fn notify(state: &AppState, job_id: &str, url: String) {
    let Some(secret) = state.settings.callback_secret.clone() else {
        return;
    };
    let (state, id) = (state.clone(), job_id.to_owned());
    actix_web::rt::spawn(async move {
        let job = match state.db.run(move |conn| jobs::by_id(conn, &id)).await {
            Ok(Some(job)) => job,
            _ => return,
        };
        // Delivered in the background, still as part of the job's trace.
        let trace = TraceContext::continue_from(job.trace_parent.as_deref());
        peermesh_common::trace::scope(trace, deliver(&state, &job, &url, &secret)).await;
    });
}

async fn deliver(
    state: &AppState,
    job: &jobs::Job,
    url: &str,
    secret: &peermesh_common::config::Secret,
) {
    let body = json!({"event": "job.finished", "job": JobOut::from(job)}).to_string();
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(secret.expose().as_bytes(), timestamp, body.as_bytes());
        match state
            .fetcher
            .post_json(url, &body, &signature, timestamp)
            .await
        {
            Ok(()) => {
                state.metrics.callback("delivered");
                slog::info!(state.logger, "callback delivered"; "job" => &job.id, "attempt" => attempt);
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                state.metrics.callback("retrying");
                slog::warn!(state.logger, "callback not delivered"; "job" => &job.id,
                    "attempt" => attempt, "error" => e.to_string());
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                state.metrics.callback("failed");
                slog::error!(state.logger, "callback given up"; "job" => &job.id,
                    "attempts" => attempt, "error" => e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = sign(b"k", 1, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, sign(b"k", 2, b"{}"));
        assert_ne!(a, sign(b"k", 1, b"{ }"));
        assert_ne!(a, sign(b"other", 1, b"{}"));
        // RFC 4231 test case 2 shape: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            format!("{:x}", mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
