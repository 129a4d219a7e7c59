//! The content service's settings (`CONTENT_*`), their defaults and their checks.

use peermesh_common::config::{ConfigError, Networks, ServerSettings, ServiceSettings, Vars};
use peermesh_common::jwt::JwtSettings;
use serde::Deserialize;

use crate::DEFAULT_PORT;

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    /// `CONTENT_JWKS_URL`, `CONTENT_JWT_ISSUER`, … (see `JwtSettings`).
    pub jwt: JwtSettings,
    pub limits: Limits,
    pub exports: ExportSettings,
    pub feed: FeedSettings,
    pub embed: EmbedSettings,
}

/// What one item and one request may hold (`CONTENT_MAX_BODY_BYTES`, …).
#[derive(Debug, Clone, Deserialize)]
pub struct Limits {
    /// Largest body in bytes (UTF-8); the ingestion maximum, since an ingested
    /// document becomes one item. Also sizes the JSON request limit.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest `metadata` object, serialised, in bytes.
    #[serde(default = "default_metadata_max_bytes")]
    pub metadata_max_bytes: usize,
    /// Deepest nesting of `metadata` (the object itself is depth 1).
    #[serde(default = "default_metadata_max_depth")]
    pub metadata_max_depth: usize,
    /// Target size of the chunks the service computes, in characters.
    #[serde(default = "default_chunk_chars")]
    pub chunk_chars: usize,
    /// Most nodes a graph traversal returns (then `truncated: true`).
    #[serde(default = "default_graph_max_nodes")]
    pub graph_max_nodes: usize,
    /// Memory for in-memory copies of vectors used by similarity search.
    #[serde(default = "default_vector_cache_bytes")]
    pub vector_cache_bytes: usize,
    /// Full-text search ranks at most this many of a query's matches, the newest: a
    /// word found in half of 100 000 items costs a bounded ranking, not 50 000 scores.
    #[serde(default = "default_search_candidates")]
    pub search_candidates: usize,
}

fn default_max_body_bytes() -> usize {
    100 * 1024 * 1024
}
fn default_metadata_max_bytes() -> usize {
    64 * 1024
}
fn default_metadata_max_depth() -> usize {
    16
}
fn default_chunk_chars() -> usize {
    1500
}
fn default_graph_max_nodes() -> usize {
    500
}
fn default_vector_cache_bytes() -> usize {
    256 * 1024 * 1024
}
fn default_search_candidates() -> usize {
    2000
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body_bytes(),
            metadata_max_bytes: default_metadata_max_bytes(),
            metadata_max_depth: default_metadata_max_depth(),
            chunk_chars: default_chunk_chars(),
            graph_max_nodes: default_graph_max_nodes(),
            vector_cache_bytes: default_vector_cache_bytes(),
            search_candidates: default_search_candidates(),
        }
    }
}

/// `CONTENT_EXPORT_*` and `CONTENT_IMPORT_*` settings, and where originals are.
#[derive(Debug, Clone, Deserialize)]
pub struct ExportSettings {
    /// Where export archives (and imports while they are read) are kept.
    #[serde(default = "default_export_dir")]
    pub export_dir: String,
    /// How long an export and its archive are kept.
    #[serde(default = "default_export_ttl")]
    pub export_ttl_secs: i64,
    /// The largest archive `POST /import` takes.
    #[serde(default = "default_import_max")]
    pub import_max_bytes: u64,
    /// The ingestion service's base URL (`http://ingestion:8080/api/v1/ingest`): an
    /// export's download adds the original files kept there. Unset: no originals.
    pub ingest_url: Option<String>,
}

fn default_export_dir() -> String {
    "data/exports".into()
}
fn default_export_ttl() -> i64 {
    24 * 3600
}
fn default_import_max() -> u64 {
    1024 * 1024 * 1024
}

/// `CONTENT_CHANGES_*`: the change feed.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedSettings {
    /// Changes older than this are removed (a cursor before them gets 410).
    #[serde(default = "default_changes_retention")]
    pub changes_retention_days: i64,
    /// How often each process looks for new changes for its open streams.
    #[serde(default = "default_changes_poll")]
    pub changes_poll_ms: u64,
    /// How long one stream stays open (browsers reconnect and go on).
    #[serde(default = "default_changes_stream")]
    pub changes_stream_secs: u64,
    /// Lets webhooks reach loopback and private networks: local development and tests
    /// only.
    #[serde(default)]
    pub webhook_allow_private_networks: bool,
    /// Private addresses and networks webhooks may reach all the same, comma separated.
    #[serde(default)]
    pub webhook_allowed_networks: String,
    /// First retry delay of a failed delivery; doubles each time (at most an hour).
    #[serde(default = "default_webhook_retry")]
    pub webhook_retry_base_ms: u64,
    /// Per delivery.
    #[serde(default = "default_webhook_timeout")]
    pub webhook_timeout_secs: u64,
}

fn default_webhook_retry() -> u64 {
    1000
}
fn default_webhook_timeout() -> u64 {
    10
}

fn default_changes_retention() -> i64 {
    30
}
fn default_changes_poll() -> u64 {
    250
}
fn default_changes_stream() -> u64 {
    300
}

/// `CONTENT_EMBED_*`: the service's own embedding model.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbedSettings {
    /// A folder with `config.json`, `tokenizer.json` and `model.safetensors` of a
    /// BERT-family sentence-embedding model (all-MiniLM-L6-v2 class). Unset or empty:
    /// no vectors are computed and `mode=hybrid` search answers with full text alone.
    pub embed_model_dir: Option<String>,
    /// The name its vectors are stored (and listed, and searched) under. Clients may
    /// store vectors under it too, of its dimensions.
    #[serde(default = "default_embed_model_name")]
    pub embed_model_name: String,
    /// Threads this process embeds items with; 0 = none (it still embeds search
    /// queries), so operators can run embedding in processes of its own.
    #[serde(default = "default_embed_threads")]
    pub embed_threads: usize,
    /// An item's first chunks that get vectors; the rest of a long document has none.
    #[serde(default = "default_embed_max_chunks")]
    pub embed_max_chunks: usize,
    /// Word pieces of a chunk the model reads (it was trained on up to 256).
    #[serde(default = "default_embed_max_tokens")]
    pub embed_max_tokens: usize,
    /// First retry delay of an item whose embedding failed; doubles each time.
    #[serde(default = "default_embed_retry")]
    pub embed_retry_base_ms: u64,
}

fn default_embed_model_name() -> String {
    "all-MiniLM-L6-v2".into()
}
fn default_embed_threads() -> usize {
    1
}
fn default_embed_max_chunks() -> usize {
    256
}
fn default_embed_max_tokens() -> usize {
    256
}
fn default_embed_retry() -> u64 {
    1000
}

impl EmbedSettings {
    /// The model's folder, when one is set.
    pub fn model_dir(&self) -> Option<&str> {
        self.embed_model_dir.as_deref().filter(|d| !d.is_empty())
    }
}

impl ExportSettings {
    pub fn dir(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(&self.export_dir)
    }
}

impl FeedSettings {
    /// `CONTENT_WEBHOOK_ALLOWED_NETWORKS`, parsed.
    pub fn webhook_networks(&self) -> Result<Networks, ConfigError> {
        Networks::from_var(
            "CONTENT_WEBHOOK_ALLOWED_NETWORKS",
            &self.webhook_allowed_networks,
        )
    }
}

impl ServiceSettings for Settings {
    const PREFIX: &'static str = "CONTENT_";
    const DEFAULT_PORT: u16 = DEFAULT_PORT;

    fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            server: vars.server()?,
            jwt: vars.section()?,
            limits: vars.section()?,
            exports: vars.section()?,
            feed: vars.section()?,
            embed: vars.section()?,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.feed.webhook_networks()?;
        crate::validate::model(&self.embed.embed_model_name)
            .map_err(|m| ConfigError::invalid("CONTENT_EMBED_MODEL_NAME", m))
    }

    fn server(&self) -> &ServerSettings {
        &self.server
    }
}
