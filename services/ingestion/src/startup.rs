//! Wiring: opens the database and the blob store, starts the queue workers and the
//! HTTP server, as the role asks.

use peermesh_common::health::Readiness;
use peermesh_common::jwt::JwtValidator;
use peermesh_common::metrics::Metrics;
use peermesh_common::server::{AppContext, Application, Shared, StartupError};
use peermesh_db::Db;
use slog::Logger;

use crate::config::{IngestSettings, Settings};
use crate::{
    blobs, content_client, fetch, jobs::worker, metrics, routes, sandbox, DEFAULT_DATABASE_URL,
    DEFAULT_PORT, MIGRATIONS, PREFIX, SERVICE,
};

/// Opens the database, prepares token validation and starts listening.
pub async fn build(settings: Settings, logger: Logger) -> Result<Application, StartupError> {
    let ingest = &settings.ingest;
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
                allowed: ingest.fetch_networks()?,
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
    let shared = Shared {
        state,
        validator,
        closed,
    };
    let app =
        Application::serve(ctx, listener, &settings.server, routes, shared)?.on_stop(async move {
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
