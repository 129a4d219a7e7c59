//! Wiring: opens the database, loads the model, starts the background tasks and the
//! HTTP server.

use peermesh_common::health::Readiness;
use peermesh_common::jwt::JwtValidator;
use peermesh_common::server::{AppContext, Application, Shared, StartupError};
use peermesh_db::Db;
use slog::Logger;

use crate::config::{EmbedSettings, ExportSettings, FeedSettings, Limits, Settings};
use crate::{
    auto_embed, changes, embedder, export, routes, vector_cache, webhooks, DEFAULT_DATABASE_URL,
    DEFAULT_PORT, MIGRATIONS, PREFIX, SERVICE,
};

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

    let embedder = load_embedder(&settings.embed).await?;
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
        allowed: settings.feed.webhook_networks()?,
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
    let shared = Shared {
        state,
        validator,
        closed,
    };
    let app = Application::serve(ctx, listener, &settings.server, routes::configure, shared)?
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

/// Loads the embedding model when one is set (a set but broken model stops start-up).
async fn load_embedder(
    settings: &EmbedSettings,
) -> Result<Option<std::sync::Arc<embedder::Embedder>>, StartupError> {
    let Some(dir) = settings.model_dir().map(str::to_owned) else {
        return Ok(None);
    };
    let (name, max_tokens) = (settings.embed_model_name.clone(), settings.embed_max_tokens);
    let loaded = tokio::task::spawn_blocking(move || {
        embedder::Embedder::load(std::path::Path::new(&dir), &name, max_tokens)
    })
    .await
    .map_err(|e| format!("loading the embedding model: {e}"))?
    .map_err(|e| format!("CONTENT_EMBED_MODEL_DIR: {e}"))?;
    Ok(Some(std::sync::Arc::new(loaded)))
}
