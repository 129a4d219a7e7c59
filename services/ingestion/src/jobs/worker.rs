//! Queue workers: each claims a due job with a lease, renews the lease while it works,
//! and records the outcome — done, queued again after a backoff (transient errors),
//! or failed for good (the file is bad, or no attempts are left). A worker that dies
//! mid-job simply stops renewing: the job is claimed again once its lease lapses.

use peermesh_common::trace::TraceContext;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use peermesh_common::health::Readiness;

use crate::error::JobError;
use crate::jobs::pipeline::{self, FileInput};
use crate::metrics::Outcome;
use crate::store::jobs::{self, Job};
use crate::AppState;

/// Starts `count` workers on the current runtime. They stop taking jobs when the
/// process starts draining (SIGTERM); a job in hand gets `INGEST_DRAIN_SECS` to finish
/// and is otherwise handed back to the queue. Await the handles before exiting.
pub fn start(
    state: AppState,
    count: usize,
    readiness: Readiness,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles: Vec<_> = (0..count)
        .map(|n| {
            let (state, readiness) = (state.clone(), readiness.clone());
            let name = format!("{}-{n}", state.instance);
            actix_web::rt::spawn(async move { run(state, name, readiness).await })
        })
        .collect();
    // Feeds fall due in every worker process; taking them is exclusive (take_due).
    handles.push(actix_web::rt::spawn(crate::feeds::schedule(
        state, readiness,
    )));
    handles
}

async fn run(state: AppState, name: String, readiness: Readiness) {
    let logger = state.logger.new(slog::o!("worker" => name.clone()));
    let lease = TimeDelta::seconds(state.settings.job_lease_secs.max(1));
    while !readiness.is_draining() {
        bury_lapsed(&state, &logger).await;
        let claimed = {
            let name = name.clone();
            state
                .db
                .write(move |conn| jobs::claim(conn, &name, lease))
                .await
        };
        match claimed {
            Ok(Some(job)) => {
                slog::info!(logger, "job claimed"; "job" => &job.id, "attempt" => job.attempts);
                work(&state, &name, job, &logger, &readiness).await;
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(state.settings.poll_ms)).await,
            Err(e) => {
                slog::warn!(logger, "claiming a job failed"; "error" => e.to_string());
                tokio::time::sleep(Duration::from_millis(state.settings.poll_ms.max(500))).await;
            }
        }
    }
}

/// Fails the jobs whose worker stopped on their last attempt (see
/// [`jobs::bury_lapsed`]), with their callbacks.
async fn bury_lapsed(state: &AppState, logger: &slog::Logger) {
    match state.db.write(jobs::bury_lapsed).await {
        Ok(dead) => {
            for job in dead {
                slog::warn!(logger, "job given up: its worker stopped on every attempt";
                    "job" => &job.id, "attempts" => job.attempts);
                state.metrics.record(&job.kind, Outcome::failure(true));
                if let Some(url) = serde_json::from_str::<FileInput>(&job.input)
                    .ok()
                    .and_then(|i| i.callback_url)
                {
                    crate::callbacks::notify(state, &job.id, url);
                }
            }
        }
        Err(e) => {
            slog::warn!(logger, "checking for abandoned jobs failed"; "error" => e.to_string())
        }
    }
}

/// Backoff before attempt `attempts + 1`: base × 2^(attempts-1), at most an hour.
pub fn backoff(base_ms: u64, attempts: i32) -> TimeDelta {
    let factor = 1u64 << (attempts.clamp(1, 20) - 1);
    TimeDelta::milliseconds(base_ms.saturating_mul(factor).min(3_600_000) as i64)
}

async fn work(
    state: &AppState,
    name: &str,
    job: Job,
    logger: &slog::Logger,
    readiness: &Readiness,
) {
    let lease = TimeDelta::seconds(state.settings.job_lease_secs.max(1));
    // Renew the lease while the job runs.
    let beat = {
        let (state, id, name) = (state.clone(), job.id.clone(), name.to_owned());
        let every = Duration::from_millis((state.settings.job_lease_secs.max(1) as u64 * 1000) / 3);
        actix_web::rt::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let (id, name) = (id.clone(), name.clone());
                let _ = state
                    .db
                    .write(move |conn| jobs::heartbeat(conn, &id, &name, lease, None))
                    .await;
            }
        })
    };
    // The job's calls to auth and content (and its callback) continue the trace of
    // the request that made it.
    let trace = TraceContext::continue_from(job.trace_parent.as_deref());
    let logger = &logger.new(slog::o!("trace_id" => trace.trace_id.clone()));
    let run = peermesh_common::logging::scope(
        logger.clone(),
        peermesh_common::trace::scope(trace, async {
            match job.kind.as_str() {
                "feed" => match serde_json::from_str::<crate::feeds::PollInput>(&job.input) {
                    Ok(input) => {
                        crate::feeds::poll(state, &input.feed_id, job.request_id.as_deref()).await
                    }
                    Err(e) => Err(JobError::Internal(format!("unreadable job input: {e}"))),
                },
                _ => match serde_json::from_str::<FileInput>(&job.input) {
                    Ok(input) => {
                        pipeline::run_file(
                            state,
                            &job.owner_id,
                            &input,
                            &job.id,
                            job.request_id.as_deref(),
                            Some(&pipeline::Progress {
                                state,
                                job: &job.id,
                                worker: name,
                            }),
                        )
                        .await
                    }
                    Err(e) => Err(JobError::Internal(format!("unreadable job input: {e}"))),
                },
            }
        }),
    );
    tokio::pin!(run);
    let grace = Duration::from_secs(state.settings.drain_secs);
    let mut deadline: Option<Instant> = None;
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break Some(outcome),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if readiness.is_draining() {
                    let until = *deadline.get_or_insert_with(|| Instant::now() + grace);
                    if Instant::now() >= until {
                        break None;
                    }
                }
            }
        }
    };
    beat.abort();
    let Some(outcome) = outcome else {
        // Shutting down: the job goes back to the queue, its attempt not counted.
        // Writes it made are safe to repeat (idempotency key), so nothing doubles.
        let (id, worker) = (job.id.clone(), name.to_owned());
        match state
            .db
            .write(move |conn| jobs::release(conn, &id, &worker))
            .await
        {
            Ok(()) => {
                state.metrics.record(&job.kind, Outcome::Released);
                slog::info!(logger, "job handed back at shutdown"; "job" => &job.id)
            }
            Err(e) => slog::error!(logger, "handing a job back failed; its lease will lapse";
                "job" => &job.id, "error" => e.to_string()),
        }
        return;
    };
    let (id, worker) = (job.id.clone(), name.to_owned());
    let callback = serde_json::from_str::<FileInput>(&job.input)
        .ok()
        .and_then(|i| i.callback_url);
    let mut finished = true;
    let recorded = match outcome {
        Ok(ids) => {
            slog::info!(logger, "job succeeded"; "job" => &job.id, "items" => ids.len());
            state.metrics.record(&job.kind, Outcome::Succeeded);
            state
                .db
                .write(move |conn| jobs::succeed(conn, &id, &worker, &ids))
                .await
        }
        Err(e) => {
            let retry = (e.is_transient() && job.attempts < job.max_attempts)
                .then(|| backoff(state.settings.retry_base_ms, job.attempts));
            slog::warn!(logger, "job attempt failed"; "job" => &job.id, "attempt" => job.attempts,
                "retrying" => retry.is_some(), "error" => e.to_string());
            let message = e.to_string();
            finished = retry.is_none();
            state.metrics.record(&job.kind, Outcome::failure(finished));
            state
                .db
                .write(move |conn| jobs::fail(conn, &id, &worker, &message, retry))
                .await
        }
    };
    match recorded {
        Err(e) => {
            slog::error!(logger, "recording a job's outcome failed"; "job" => &job.id, "error" => e.to_string())
        }
        Ok(true) if finished => {
            if let Some(url) = callback {
                crate::callbacks::notify(state, &job.id, url);
            }
        }
        Ok(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1000, 1), TimeDelta::seconds(1));
        assert_eq!(backoff(1000, 2), TimeDelta::seconds(2));
        assert_eq!(backoff(1000, 4), TimeDelta::seconds(8));
        assert_eq!(backoff(1000, 30), TimeDelta::hours(1));
    }
}
