//! The ingestion service's settings (`INGEST_*`), their defaults and their checks.
//! The content client keeps its section beside its code.

use peermesh_common::config::{ConfigError, Networks, ServerSettings, ServiceSettings, Vars};
use peermesh_common::jwt::JwtSettings;
use serde::Deserialize;

use crate::{content_client, DEFAULT_PORT};

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
    /// `INGEST_FETCH_ALLOWED_NETWORKS`, parsed.
    pub fn fetch_networks(&self) -> Result<Networks, ConfigError> {
        Networks::from_var(
            "INGEST_FETCH_ALLOWED_NETWORKS",
            &self.fetch_allowed_networks,
        )
    }

    pub fn runs_api(&self) -> bool {
        self.role != "worker"
    }

    pub fn runs_workers(&self) -> bool {
        self.role != "api"
    }
}

impl ServiceSettings for Settings {
    const PREFIX: &'static str = "INGEST_";
    const DEFAULT_PORT: u16 = DEFAULT_PORT;

    fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            server: vars.server()?,
            jwt: vars.section()?,
            ingest: vars.section()?,
            content: vars.section()?,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let ingest = &self.ingest;
        if !["api", "worker", "all"].contains(&ingest.role.as_str()) {
            return Err(ConfigError::invalid(
                "INGEST_ROLE",
                format!("must be api, worker or all, not {:?}", ingest.role),
            ));
        }
        if ingest.sync_max_bytes > ingest.max_bytes {
            return Err(ConfigError::invalid(
                "INGEST_SYNC_MAX_BYTES",
                "must not exceed INGEST_MAX_BYTES",
            ));
        }
        ingest.fetch_networks()?;
        Ok(())
    }

    fn server(&self) -> &ServerSettings {
        &self.server
    }
}
