//! The content service: items, chunks, tags, knowledge-graph links, search, embeddings.

pub mod routes;
pub mod schema;
pub mod store;

use diesel_migrations::embed_migrations;
use peermesh_common::config::{self, ServerSettings};
use peermesh_common::health::Readiness;
use peermesh_common::jwt::{JwtSettings, JwtValidator};
use peermesh_common::server::{AppContext, Application, HasServerSettings, StartupError};
use peermesh_db::{Db, Migrations};
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
}

impl Settings {
    pub fn from_env() -> Result<Self, StartupError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Settings from an explicit variable list (tests, tools).
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, StartupError> {
        Ok(Self {
            server: ServerSettings::from_iter("CONTENT_", vars.clone())?,
            jwt: config::from_iter("CONTENT_", vars)?,
        })
    }
}

impl HasServerSettings for Settings {
    fn server(&self) -> &ServerSettings {
        &self.server
    }
}

/// Opens the database, prepares token validation and starts listening.
pub async fn build(settings: Settings, logger: Logger) -> Result<Application, StartupError> {
    let db = peermesh_db::open(&settings.server, DEFAULT_DATABASE_URL, &MIGRATIONS, &logger)?;
    let validator = JwtValidator::new(settings.jwt.clone())?;
    let listener = peermesh_common::server::bind(&settings.server, DEFAULT_PORT)?;

    let readiness = Readiness::new(SERVICE)
        .with_check("database", db.ready_check())
        .with_check("jwks", validator.ready_check());
    let ctx = AppContext {
        service: SERVICE,
        prefix: PREFIX,
        title: "PeerMesh content API",
        logger,
        readiness,
        json_limit: settings.server.json_limit_bytes,
    };
    let state = AppState { db };
    let validator = actix_web::web::Data::new(validator);
    let app = Application::start(
        ctx,
        listener,
        &settings.server,
        routes::configure,
        move |cfg| {
            cfg.app_data(actix_web::web::Data::new(state.clone()))
                .app_data(validator.clone());
        },
    )?;
    Ok(app)
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
}
