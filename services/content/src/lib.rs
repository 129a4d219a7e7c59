//! The content service: items, chunks, tags, knowledge-graph links, search, embeddings.

pub mod auto_embed;
pub mod caller;
pub mod changes;
pub mod embedder;
pub mod export;
pub mod hybrid;
pub mod import;
pub mod large_json;
pub mod query;
pub mod routes;
pub mod schema;
pub mod snippet;
pub mod store;
pub mod validate;
pub mod vector_cache;
pub mod vectors;
pub mod webhooks;

use diesel_migrations::embed_migrations;
use peermesh_common::config::{self, ServerSettings};
use peermesh_common::health::Readiness;
use peermesh_common::jwt::{JwtSettings, JwtValidator};
use peermesh_common::server::{AppContext, Application, HasServerSettings, StartupError};
use peermesh_db::{Db, Migrations};
use serde::Deserialize;
use slog::Logger;

pub const SERVICE: &str = "content";
pub const PREFIX: &str = "/api/v1/content";
pub const DEFAULT_PORT: u16 = 8083;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/content.db";

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: embed_migrations!("../../migrations/content/sqlite"),
    postgres: embed_migrations!("../../migrations/content/postgres"),
};

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
    /// Loads the model when one is set (start-up: a set but broken model stops it).
    pub async fn load(&self) -> Result<Option<std::sync::Arc<embedder::Embedder>>, StartupError> {
        let Some(dir) = self.embed_model_dir.clone().filter(|d| !d.is_empty()) else {
            return Ok(None);
        };
        validate::model(&self.embed_model_name)
            .map_err(|m| format!("CONTENT_EMBED_MODEL_NAME {m}"))?;
        let (name, max_tokens) = (self.embed_model_name.clone(), self.embed_max_tokens);
        let loaded = tokio::task::spawn_blocking(move || {
            embedder::Embedder::load(std::path::Path::new(&dir), &name, max_tokens)
        })
        .await
        .map_err(|e| format!("loading the embedding model: {e}"))?
        .map_err(|e| format!("CONTENT_EMBED_MODEL_DIR: {e}"))?;
        Ok(Some(std::sync::Arc::new(loaded)))
    }
}

impl ExportSettings {
    pub fn dir(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(&self.export_dir)
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, StartupError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Settings from an explicit variable list (tests, tools).
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, StartupError> {
        Ok(Self {
            server: ServerSettings::from_iter("CONTENT_", vars.clone())?,
            jwt: config::from_iter("CONTENT_", vars.clone())?,
            limits: config::from_iter("CONTENT_", vars.clone())?,
            exports: config::from_iter("CONTENT_", vars.clone())?,
            feed: config::from_iter("CONTENT_", vars.clone())?,
            embed: config::from_iter("CONTENT_", vars)?,
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
    let db = peermesh_db::open(
        &settings.server,
        DEFAULT_DATABASE_URL,
        &MIGRATIONS,
        &[SERVICE],
        &logger,
    )?;
    let validator = JwtValidator::new(settings.jwt.clone())?;
    let listener = peermesh_common::server::bind(&settings.server, DEFAULT_PORT)?;

    let embedder = settings.embed.load().await?;
    let readiness = Readiness::new(SERVICE)
        .with_check("database", db.ready_check())
        .with_check("jwks", validator.ready_check());
    let readiness = match &embedder {
        Some(e) => readiness.with_note(
            "embedding_model",
            format!("ok: {} ({} dimensions)", e.name(), e.dims()),
        ),
        None => readiness.with_note(
            "embedding_model",
            "off: CONTENT_EMBED_MODEL_DIR is not set; no vectors are computed and hybrid search is full text",
        ),
    };
    let closed = peermesh_db::closed_accounts::watch(&db, &readiness).await;
    let metrics = peermesh_common::metrics::Metrics::new(SERVICE)?;
    db.register_metrics(&metrics)?;
    auto_embed::register_backlog(&db, &metrics)?;
    // A body of the largest allowed size plus its (possibly overlapping) chunks,
    // JSON-escaped, plus the rest of the item.
    let json_limit = settings
        .server
        .json_limit_bytes
        .max(settings.limits.max_body_bytes.saturating_mul(3) + 1024 * 1024);
    let ctx = AppContext {
        service: SERVICE,
        prefix: PREFIX,
        title: "PeerMesh content API",
        logger,
        readiness,
        metrics,
        json_limit,
        contract: &routes::CONTRACT,
    };
    let exports_dir = settings.exports.dir();
    std::fs::create_dir_all(&exports_dir)
        .map_err(|e| format!("CONTENT_EXPORT_DIR {}: {e}", exports_dir.display()))?;
    let export_queued = std::sync::Arc::new(tokio::sync::Notify::new());
    let exporter = export::start(
        db.clone(),
        exports_dir,
        export_queued.clone(),
        ctx.readiness.clone(),
        ctx.logger.clone(),
    );
    let changes = changes::start(
        db.clone(),
        std::time::Duration::from_millis(settings.feed.changes_poll_ms.max(10)),
        chrono::TimeDelta::days(settings.feed.changes_retention_days.max(1)),
        ctx.readiness.clone(),
        ctx.logger.clone(),
    );
    let webhook_policy = std::sync::Arc::new(peermesh_common::outbound::AddressPolicy {
        allow_private: settings.feed.webhook_allow_private_networks,
        allowed: config::Networks::from_var(
            "CONTENT_WEBHOOK_ALLOWED_NETWORKS",
            &settings.feed.webhook_allowed_networks,
        )?,
    });
    if settings.feed.webhook_allow_private_networks {
        slog::warn!(ctx.logger, "CONTENT_WEBHOOK_ALLOW_PRIVATE_NETWORKS is on: webhooks may reach private addresses (development and tests only)");
    }
    let deliveries = webhooks::start(
        db.clone(),
        peermesh_common::outbound::guarded_client(
            webhook_policy.clone(),
            "PeerMesh-Webhooks/1.0 (+https://peermesh.dev)",
            Some(std::time::Duration::from_secs(
                settings.feed.webhook_timeout_secs.max(1),
            )),
        )?,
        std::time::Duration::from_millis(settings.feed.webhook_retry_base_ms.max(1)),
        changes.clone(),
        ctx.readiness.clone(),
        ctx.logger.clone(),
    );
    let embedding = match &embedder {
        Some(e) if settings.embed.embed_threads > 0 => Some(auto_embed::start(
            db.clone(),
            auto_embed::Worker {
                embedder: e.clone(),
                threads: settings.embed.embed_threads,
                max_chunks: settings.embed.embed_max_chunks.max(1),
                retry_base: std::time::Duration::from_millis(
                    settings.embed.embed_retry_base_ms.max(1),
                ),
            },
            changes.clone(),
            &ctx.metrics,
            ctx.readiness.clone(),
            ctx.logger.clone(),
        )?),
        _ => None,
    };
    let state = AppState {
        embedder,
        webhook_policy,
        changes,
        feed: std::sync::Arc::new(settings.feed.clone()),
        exports: std::sync::Arc::new(settings.exports.clone()),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?,
        logger: ctx.logger.clone(),
        export_queued,
        db,
        vectors: std::sync::Arc::new(vector_cache::VectorCache::new(
            settings.limits.vector_cache_bytes,
        )),
        limits: std::sync::Arc::new(settings.limits.clone()),
    };
    let validator = actix_web::web::Data::new(validator);
    let app = Application::start(
        ctx,
        listener,
        &settings.server,
        routes::configure,
        move |cfg| {
            cfg.app_data(actix_web::web::Data::new(state.clone()))
                .app_data(validator.clone())
                .app_data(actix_web::web::Data::new(closed.clone()));
        },
    )?
    .on_stop(async move {
        let _ = exporter.await;
        let _ = deliveries.await;
        if let Some(embedding) = embedding {
            let _ = embedding.await;
        }
    });
    Ok(app)
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// The service's own embedding model, when one is set.
    pub embedder: Option<std::sync::Arc<embedder::Embedder>>,
    /// The newest change's `seq`, for open change streams.
    pub changes: tokio::sync::watch::Receiver<i32>,
    pub feed: std::sync::Arc<FeedSettings>,
    /// Where webhooks may be sent.
    pub webhook_policy: std::sync::Arc<peermesh_common::outbound::AddressPolicy>,
    pub exports: std::sync::Arc<ExportSettings>,
    /// Fetches originals from the ingestion service for export downloads.
    pub http: reqwest::Client,
    pub logger: Logger,
    /// Wakes the export task when an export was queued.
    pub export_queued: std::sync::Arc<tokio::sync::Notify>,
    pub limits: std::sync::Arc<Limits>,
    pub vectors: std::sync::Arc<vector_cache::VectorCache>,
}
