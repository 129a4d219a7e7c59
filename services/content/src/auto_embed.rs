//! Vectors the service computes itself: a task in every content process that has the
//! model (and `CONTENT_EMBED_THREADS` > 0) claims queued items with a lease, embeds
//! their first `CONTENT_EMBED_MAX_CHUNKS` chunks on its own threads, and stores one
//! vector per chunk under the model's name, like vectors a client PUTs. An item whose
//! body changed while it was being embedded is embedded again; a crashed process's
//! items are taken again when their lease lapses.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use peermesh_common::health::Readiness;
use peermesh_common::metrics::Metrics;
use peermesh_db::{Db, DbError};
use prometheus::IntCounterVec;
use slog::Logger;
use tokio::sync::watch;

use crate::embedder::{EmbedError, Embedder};
use crate::store::{embed_jobs, embeddings, items};

/// Items claimed at once.
const CLAIM: i64 = 4;
/// Texts run through the model together.
const BATCH: usize = 16;
/// How long a process holds an item it embeds.
const LEASE_SECS: i64 = 120;
/// Tries before an item is left without vectors (each failure is logged).
const MAX_ATTEMPTS: i32 = 5;
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// What the task needs besides the database.
pub struct Worker {
    pub embedder: Arc<Embedder>,
    pub threads: usize,
    pub max_chunks: usize,
    pub retry_base: Duration,
}

#[derive(Clone)]
struct Counters {
    chunks: IntCounterVec,
    items: IntCounterVec,
}

/// Registers the backlog gauge (every process, with or without the model: it shows
/// what waits for one).
pub fn register_backlog(db: &Db, metrics: &Metrics) -> Result<(), String> {
    let gauge = metrics
        .gauge(
            "content_embedding_backlog",
            "Items waiting for vectors of the service's own model",
            &[],
        )
        .map_err(|e| e.to_string())?;
    let db = db.clone();
    metrics.on_scrape(move || {
        let (db, gauge) = (db.clone(), gauge.clone());
        async move {
            if let Ok(n) = db.read(embed_jobs::backlog).await {
                gauge.with_label_values(&[] as &[&str]).set(n);
            }
        }
    });
    Ok(())
}

/// Starts the task; it wakes when the change feed moves on (`latest`) or every second.
pub fn start(
    db: Db,
    worker: Worker,
    mut latest: watch::Receiver<i32>,
    metrics: &Metrics,
    readiness: Readiness,
    logger: Logger,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let counters = Counters {
        chunks: metrics
            .counter(
                "content_embedded_chunks_total",
                "Chunks embedded by the service's own model",
                &[],
            )
            .map_err(|e| e.to_string())?,
        items: metrics
            .counter(
                "content_embedded_items_total",
                "Items embedded by the service's own model",
                &[],
            )
            .map_err(|e| e.to_string())?,
    };
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(worker.threads.max(1))
            .thread_name(|i| format!("embed-{i}"))
            .build()
            .map_err(|e| format!("embedding threads: {e}"))?,
    );
    let worker = Arc::new(worker);
    Ok(actix_web::rt::spawn(async move {
        while !readiness.is_draining() {
            let lease = TimeDelta::seconds(LEASE_SECS);
            let jobs = match db
                .write(move |conn| embed_jobs::claim(conn, CLAIM, lease))
                .await
            {
                Ok(jobs) => jobs,
                Err(e) => {
                    slog::warn!(logger, "claiming items to embed failed"; "error" => e.to_string());
                    Vec::new()
                }
            };
            if jobs.is_empty() {
                let _ = tokio::time::timeout(Duration::from_secs(1), latest.changed()).await;
                continue;
            }
            for job in jobs {
                embed_one(&db, &worker, &pool, &counters, job, &logger).await;
            }
        }
    }))
}

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("the embedding threads stopped")]
    Stopped,
    #[error("the account's vectors of this model have {0} dimensions")]
    Dims(i32),
}

impl peermesh_db::DbFailure for JobError {
    fn database(&self) -> Option<&DbError> {
        match self {
            Self::Db(db) => Some(db),
            _ => None,
        }
    }
}

async fn embed_one(
    db: &Db,
    worker: &Arc<Worker>,
    pool: &Arc<rayon::ThreadPool>,
    counters: &Counters,
    job: embed_jobs::EmbedJob,
    logger: &Logger,
) {
    let outcome = compute_and_store(db, worker, pool, &job).await;
    let id = job.item_id.clone();
    let recorded = match outcome {
        Ok(Some(chunks)) => {
            counters
                .chunks
                .with_label_values(&[] as &[&str])
                .inc_by(chunks as u64);
            counters.items.with_label_values(&[] as &[&str]).inc();
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(error) if job.attempts + 1 >= MAX_ATTEMPTS => {
            slog::error!(logger, "an item could not be embedded; left without vectors";
                "item" => &job.item_id, "attempts" => job.attempts + 1, "error" => error.to_string());
            let version = job.version;
            db.write(move |conn| embed_jobs::finish(conn, &id, version).map(|_| ()))
                .await
        }
        Err(error) => {
            let delay = worker
                .retry_base
                .saturating_mul(1 << job.attempts.clamp(0, 20))
                .min(MAX_DELAY);
            slog::warn!(logger, "embedding an item failed; will retry";
                "item" => &job.item_id, "attempts" => job.attempts + 1, "error" => error.to_string());
            let delay = TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(1));
            let error = error.to_string();
            db.write(move |conn| embed_jobs::failed(conn, &id, &error, delay))
                .await
        }
    };
    if let Err(e) = recorded {
        slog::warn!(logger, "recording an embedding failed"; "error" => e.to_string());
    }
}

/// Embeds the item's chunks and stores them if its body is still the one queued:
/// how many chunks were stored, or `None` when the body moved on (queued again).
async fn compute_and_store(
    db: &Db,
    worker: &Arc<Worker>,
    pool: &Arc<rayon::ThreadPool>,
    job: &embed_jobs::EmbedJob,
) -> Result<Option<usize>, JobError> {
    let (id, limit) = (job.item_id.clone(), worker.max_chunks as i64);
    let chunks = db
        .read(move |conn| items::chunks(conn, &id, None, limit))
        .await?;
    let (embedder, pool) = (worker.embedder.clone(), pool.clone());
    let vectors = tokio::task::spawn_blocking(move || {
        pool.install(|| -> Result<Vec<(i32, Vec<f32>)>, EmbedError> {
            let mut out = Vec::with_capacity(chunks.len());
            for batch in chunks.chunks(BATCH) {
                let texts: Vec<&str> = batch.iter().map(|c| c.text.as_str()).collect();
                let vectors = embedder.embed(&texts)?;
                out.extend(batch.iter().map(|c| c.idx).zip(vectors));
            }
            Ok(out)
        })
    })
    .await
    .map_err(|_| JobError::Stopped)??;
    let job = job.clone();
    let (name, dims) = (
        worker.embedder.name().to_owned(),
        worker.embedder.dims() as i32,
    );
    db.try_write(move |conn| {
        // The dimensions first: a refusal leaves the job as it was, to be retried.
        let fixed = embeddings::claim_model(conn, &job.owner_id, &name, dims)?;
        if fixed != dims {
            return Err(JobError::Dims(fixed));
        }
        if !embed_jobs::finish(conn, &job.item_id, job.version)? {
            return Ok(None);
        }
        if !vectors.is_empty() {
            embeddings::replace(conn, &job.owner_id, &job.item_id, &name, &vectors)?;
        }
        Ok(Some(vectors.len()))
    })
    .await
}
