//! Ingestion's own metrics beside the shared HTTP and pool ones: the queue's depth
//! (read from the database at every scrape, so every replica reports the same queue)
//! and how jobs end.

use peermesh_common::metrics::{Metrics, MetricsError};
use peermesh_db::Db;
use prometheus::IntCounterVec;

use crate::store::jobs;

/// How one attempt at a job ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Succeeded,
    /// Failed, queued again with backoff.
    Retrying,
    /// Failed for good.
    Failed,
    /// Handed back untouched at shutdown.
    Released,
}

impl Outcome {
    /// A failed attempt: for good, or to be retried.
    pub fn failure(for_good: bool) -> Self {
        if for_good {
            Self::Failed
        } else {
            Self::Retrying
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::Released => "released",
        }
    }
}

#[derive(Clone)]
pub struct IngestMetrics {
    outcomes: IntCounterVec,
    callbacks: IntCounterVec,
}

impl IngestMetrics {
    pub fn register(metrics: &Metrics, db: &Db) -> Result<Self, MetricsError> {
        let outcomes = metrics.counter(
            "ingest_job_outcomes_total",
            "Job attempts by kind (file, feed) and outcome",
            &["kind", "outcome"],
        )?;
        let depth = metrics.gauge(
            "ingest_queue_jobs",
            "Jobs in the queue by status (queued, running), across all replicas",
            &["status"],
        )?;
        let db = db.clone();
        metrics.on_scrape(move || {
            let (db, depth) = (db.clone(), depth.clone());
            async move {
                // On a database error the gauge keeps its last value; `/ready` tells why.
                if let Ok(rows) = db.run(jobs::depth).await {
                    for status in [jobs::QUEUED, jobs::RUNNING] {
                        let n = rows.iter().find(|(s, _)| s == status).map_or(0, |r| r.1);
                        depth.with_label_values(&[status]).set(n);
                    }
                }
            }
        });
        let callbacks = metrics.counter(
            "ingest_callbacks_total",
            "Job callback attempts by outcome: delivered, retrying (an attempt failed), failed (given up)",
            &["outcome"],
        )?;
        Ok(Self {
            outcomes,
            callbacks,
        })
    }

    pub fn callback(&self, outcome: &'static str) {
        self.callbacks.with_label_values(&[outcome]).inc();
    }

    pub fn record(&self, kind: &str, outcome: Outcome) {
        let kind = if kind == "feed" { "feed" } else { "file" };
        self.outcomes
            .with_label_values(&[kind, outcome.label()])
            .inc();
    }
}
