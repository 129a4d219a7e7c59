//! The ingestion service: uploads, web pages and feeds turned into content, through a durable job queue.

pub mod blobs;
pub mod callbacks;
pub mod cli;
pub mod content_client;
pub mod feeds;
pub mod fetch;
pub mod formats;
pub mod large_text;
pub mod metrics;
pub mod pipeline;
pub mod routes;
pub mod sandbox;
pub mod schema;
pub mod store;
pub mod worker;

use diesel_migrations::embed_migrations;
use peermesh_common::config::{self, Networks, ServerSettings};
use peermesh_common::health::Readiness;
use peermesh_common::jwt::{JwtSettings, JwtValidator};
use peermesh_common::metrics::Metrics;
use peermesh_common::server::{AppContext, Application, HasServerSettings, StartupError};
use peermesh_db::{Db, Migrations};
use serde::Deserialize;
use slog::Logger;

pub const SERVICE: &str = "ingestion";
pub const PREFIX: &str = "/api/v1/ingest";
pub const DEFAULT_PORT: u16 = 8082;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/ingestion.db";

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: embed_migrations!("../../migrations/ingestion/sqlite"),
    postgres: embed_migrations!("../../migrations/ingestion/postgres"),
};

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    /// `INGEST_JWKS_URL`, `INGEST_JWT_ISSUER`, … (see `JwtSettings`).
    pub jwt: JwtSettings,
    pub ingest: IngestSettings,
    pub content: content_client::ContentSettings,
}

/// `INGEST_*` settings of the pipeline and the queue.
#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// `api`, `worker` or `all`: what this process runs.
    #[serde(default = "default_role")]
    pub role: String,
    /// Queue workers in this process (roles `worker` and `all`).
    #[serde(default = "default_worker_count")]
    pub worker_count: usize,
    /// Files up to this size are processed in the request.
    #[serde(default = "default_sync_max")]
    pub sync_max_bytes: u64,
    /// Larger files are refused (413).
    #[serde(default = "default_max")]
    pub max_bytes: u64,
    /// Where original files are kept (content-addressed).
    #[serde(default = "default_blob_dir")]
    pub blob_dir: String,
    #[serde(default = "default_chunk_chars")]
    pub chunk_chars: usize,
    #[serde(default = "default_chunk_overlap")]
    pub chunk_overlap: usize,
    #[serde(default = "default_max_attempts")]
    pub job_max_attempts: i32,
    /// A claimed job is another worker's to take when not renewed for this long.
    #[serde(default = "default_lease")]
    pub job_lease_secs: i64,
    /// First retry delay; doubles with every attempt (at most an hour).
    #[serde(default = "default_retry_base")]
    pub retry_base_ms: u64,
    /// How often an idle worker looks for work.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
    /// Lets URL imports reach loopback and private networks: local development and
    /// tests only.
    #[serde(default)]
    pub allow_private_networks: bool,
    /// Private addresses and networks URL imports may reach all the same (an
    /// intranet), comma separated.
    #[serde(default)]
    pub fetch_allowed_networks: String,
    /// The whole fetch of a URL, redirects included.
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout_secs: u64,
    /// On SIGTERM, how long a job in hand may still run before it is handed back.
    #[serde(default = "default_drain")]
    pub drain_secs: u64,
    /// Signs job callbacks; without it `callback_url` is refused.
    pub callback_secret: Option<peermesh_common::config::Secret>,
    /// Feed subscriptions per user.
    #[serde(default = "default_feeds_per_user")]
    pub feeds_per_user: i64,
    /// How often each feed is polled.
    #[serde(default = "default_feed_poll")]
    pub feed_poll_secs: i64,
    /// How often workers look for feeds that are due.
    #[serde(default = "default_feed_tick")]
    pub feed_tick_ms: u64,
    /// The binary that reads files in a bounded child process (`<it> parse`); by
    /// default this one.
    pub parser_bin: Option<String>,
    /// The address space a parser child may use.
    #[serde(default = "default_parse_memory")]
    pub parse_memory_mb: u64,
    /// How long a parser child may run (wall clock; its CPU time is limited too).
    #[serde(default = "default_parse_timeout")]
    pub parse_timeout_secs: u64,
    /// The most pages read from a PDF.
    #[serde(default = "default_pdf_max_pages")]
    pub pdf_max_pages: usize,
    /// Bytes of uploaded files one user may have stored (413 past it).
    #[serde(default = "default_quota")]
    pub quota_bytes_per_user: u64,
    /// Jobs one user may have queued or running at once (429 past it).
    #[serde(default = "default_active_jobs")]
    pub active_jobs_per_user: i64,
    /// The largest feed document fetched.
    #[serde(default = "default_feed_max")]
    pub feed_max_bytes: u64,
    /// Shortest time between two manual refreshes of one feed.
    #[serde(default = "default_feed_refresh")]
    pub feed_refresh_interval_secs: i64,
}

fn default_quota() -> u64 {
    1024 * 1024 * 1024
}
fn default_active_jobs() -> i64 {
    20
}
fn default_feed_max() -> u64 {
    10 * 1024 * 1024
}
fn default_feed_refresh() -> i64 {
    60
}

fn default_parse_memory() -> u64 {
    1024
}
fn default_parse_timeout() -> u64 {
    60
}
fn default_pdf_max_pages() -> usize {
    2000
}

fn default_feeds_per_user() -> i64 {
    5
}
fn default_feed_poll() -> i64 {
    900
}
fn default_feed_tick() -> u64 {
    1000
}

fn default_drain() -> u64 {
    10
}

fn default_fetch_timeout() -> u64 {
    30
}

fn default_role() -> String {
    "all".into()
}
fn default_worker_count() -> usize {
    2
}
fn default_sync_max() -> u64 {
    10 * 1024 * 1024
}
fn default_max() -> u64 {
    100 * 1024 * 1024
}
fn default_blob_dir() -> String {
    "data/blobs".into()
}
fn default_chunk_chars() -> usize {
    1500
}
fn default_chunk_overlap() -> usize {
    200
}
fn default_max_attempts() -> i32 {
    5
}
fn default_lease() -> i64 {
    60
}
fn default_retry_base() -> u64 {
    2000
}
fn default_poll() -> u64 {
    500
}

impl IngestSettings {
    fn runs_api(&self) -> bool {
        self.role != "worker"
    }

    fn runs_workers(&self) -> bool {
        self.role != "api"
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, StartupError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Settings from an explicit variable list (tests, tools).
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, StartupError> {
        Ok(Self {
            server: ServerSettings::from_iter("INGEST_", vars.clone())?,
            jwt: config::from_iter("INGEST_", vars.clone())?,
            ingest: config::from_iter("INGEST_", vars.clone())?,
            content: config::from_iter("INGEST_", vars)?,
        })
    }
}

impl HasServerSettings for Settings {
    const DEFAULT_PORT: u16 = DEFAULT_PORT;

    fn server(&self) -> &ServerSettings {
        &self.server
    }
}

/// Opens the database, prepares token validation and starts listening.
pub async fn build(settings: Settings, logger: Logger) -> Result<Application, StartupError> {
    let ingest = &settings.ingest;
    if !["api", "worker", "all"].contains(&ingest.role.as_str()) {
        return Err(format!(
            "INGEST_ROLE must be api, worker or all, not {:?}",
            ingest.role
        )
        .into());
    }
    if ingest.sync_max_bytes > ingest.max_bytes {
        return Err("INGEST_SYNC_MAX_BYTES must not exceed INGEST_MAX_BYTES".into());
    }
    // One API and one worker process may share a SQLite file (they do in compose).
    let kinds: &[&str] = match ingest.role.as_str() {
        "api" => &["ingestion-api"],
        "worker" => &["ingestion-worker"],
        _ => &["ingestion-api", "ingestion-worker"],
    };
    let db = peermesh_db::open(
        &settings.server,
        DEFAULT_DATABASE_URL,
        &MIGRATIONS,
        kinds,
        &logger,
    )?;
    let blobs = blobs::Blobs::open(&ingest.blob_dir)
        .map_err(|e| format!("INGEST_BLOB_DIR {}: {e}", ingest.blob_dir))?;
    let validator = JwtValidator::new(settings.jwt.clone())?;
    let listener = peermesh_common::server::bind(&settings.server, DEFAULT_PORT)?;

    let readiness = Readiness::new(SERVICE)
        .with_check("database", db.ready_check())
        .with_check("jwks", validator.ready_check());
    // Only the API takes tokens: a worker-only process reads no closings.
    let closed = if ingest.runs_api() {
        peermesh_db::closed_accounts::watch(&db, &readiness).await
    } else {
        peermesh_common::auth::ClosedAccounts::new()
    };
    let registry = Metrics::new(SERVICE)?;
    db.register_metrics(&registry)?;
    let sandbox = sandbox::Sandbox {
        binary: match ingest.parser_bin.as_deref().filter(|b| !b.is_empty()) {
            Some(bin) => bin.into(),
            None => std::env::current_exe()
                .map_err(|e| format!("finding this binary for the parser: {e}"))?,
        },
        memory_bytes: ingest.parse_memory_mb.max(64) * 1024 * 1024,
        timeout: std::time::Duration::from_secs(ingest.parse_timeout_secs.max(1)),
        max_pdf_pages: ingest.pdf_max_pages.max(1),
    };
    let state = AppState {
        sandbox,
        metrics: metrics::IngestMetrics::register(&registry, &db)?,
        db,
        blobs,
        content: std::sync::Arc::new(content_client::ContentClient::new(
            settings.content.clone(),
        )?),
        fetcher: fetch::Fetcher::new(
            fetch::AddressPolicy {
                allow_private: ingest.allow_private_networks,
                allowed: Networks::from_var(
                    "INGEST_FETCH_ALLOWED_NETWORKS",
                    &ingest.fetch_allowed_networks,
                )?,
            },
            std::time::Duration::from_secs(ingest.fetch_timeout_secs.max(1)),
        )?,
        settings: std::sync::Arc::new(ingest.clone()),
        logger: logger.clone(),
        instance: uuid::Uuid::now_v7().simple().to_string()[20..].to_owned(),
    };
    if ingest.allow_private_networks {
        slog::warn!(logger, "INGEST_ALLOW_PRIVATE_NETWORKS is on: URL imports may reach private addresses (development and tests only)");
    }
    slog::info!(logger, "ingestion starting"; "role" => &ingest.role,
        "workers" => if ingest.runs_workers() { ingest.worker_count } else { 0 });
    let workers = if ingest.runs_workers() {
        worker::start(state.clone(), ingest.worker_count, readiness.clone())
    } else {
        Vec::new()
    };
    let ctx = AppContext {
        service: SERVICE,
        prefix: PREFIX,
        title: "PeerMesh ingestion API",
        logger,
        readiness,
        metrics: registry,
        json_limit: settings.server.json_limit_bytes,
        contract: &routes::CONTRACT,
    };
    let routes: fn(&mut paperclip::actix::web::ServiceConfig) = if ingest.runs_api() {
        routes::configure
    } else {
        |_| {}
    };
    let validator = actix_web::web::Data::new(validator);
    let app = Application::start(ctx, listener, &settings.server, routes, move |cfg| {
        cfg.app_data(actix_web::web::Data::new(state.clone()))
            .app_data(validator.clone())
            .app_data(actix_web::web::Data::new(closed.clone()));
    })?
    .on_stop(async move {
        for worker in workers {
            let _ = worker.await;
        }
    });
    Ok(app)
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// Reads files in a bounded child process.
    pub sandbox: sandbox::Sandbox,
    pub metrics: metrics::IngestMetrics,
    pub blobs: blobs::Blobs,
    pub content: std::sync::Arc<content_client::ContentClient>,
    pub fetcher: fetch::Fetcher,
    pub settings: std::sync::Arc<IngestSettings>,
    pub logger: Logger,
    /// Names this process's workers in the queue.
    pub instance: String,
}
