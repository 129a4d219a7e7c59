//! The ingestion binary's command line: serve (the default), `migrate`, `healthcheck`,
//! and the operators' `jobs list` / `jobs retry` over every user's jobs.

use clap::{Parser, Subcommand};
use peermesh_common::server::BasicCommand;

use crate::routes::jobs::JobOut;
use crate::store::jobs;
use crate::{Settings, DEFAULT_DATABASE_URL, MIGRATIONS};

/// The PeerMesh ingestion service: uploads, web pages, feeds and their job queue.
#[derive(Parser)]
#[command(name = "peermesh-ingestion", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    #[command(flatten)]
    Basic(BasicCommand),
    /// The job queue, across every user.
    #[command(subcommand)]
    Jobs(JobsCommand),
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Newest jobs first, one JSON object per line.
    List {
        /// Only jobs in this status (queued, running, succeeded, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only this user's jobs.
        #[arg(long)]
        owner: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Queue a failed or cancelled job again, with fresh attempts.
    Retry { id: String },
}

/// Runs an operator's jobs command; the text to print, or why it failed.
pub fn jobs(command: JobsCommand) -> Result<String, String> {
    let settings =
        peermesh_common::config::load::<Settings>(std::env::vars()).map_err(|e| e.to_string())?;
    let url = settings.server.database_url_or(DEFAULT_DATABASE_URL);
    let db = peermesh_db::Db::connect(&url, 1, &MIGRATIONS).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match command {
        JobsCommand::List {
            status,
            owner,
            limit,
        } => {
            if let Some(status) = status.as_deref() {
                if !jobs::STATUSES.contains(&status) {
                    return Err(format!("unknown status {status:?}"));
                }
            }
            let rows = runtime
                .block_on(db.run(move |conn| {
                    jobs::page(conn, owner.as_deref(), status.as_deref(), limit, None)
                }))
                .map_err(|e| e.to_string())?;
            Ok(rows
                .iter()
                .map(|job| {
                    let mut line = serde_json::to_value(JobOut::from(job)).unwrap_or_default();
                    line["owner_id"] = job.owner_id.clone().into();
                    line.to_string()
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        JobsCommand::Retry { id } => {
            let job = id.clone();
            let retried = runtime
                .block_on(db.write(move |conn| jobs::retry(conn, None, &job)))
                .map_err(|e| e.to_string())?;
            if retried {
                Ok(format!("job {id} queued again"))
            } else {
                Err(format!("no failed or cancelled job {id}"))
            }
        }
    }
}
