//! The auth service: accounts, access and refresh tokens, signing keys (JWKS).

pub mod keys;
pub mod routes;
pub mod schema;

use diesel_migrations::embed_migrations;
use peermesh_common::config::{self, ServerSettings};
use peermesh_common::health::Readiness;
use peermesh_common::server::{AppContext, Application, HasServerSettings, StartupError};
use peermesh_db::{Db, Migrations};
use serde::Deserialize;
use slog::Logger;

pub const SERVICE: &str = "auth";
pub const PREFIX: &str = "/api/v1/auth";
pub const DEFAULT_PORT: u16 = 8081;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/auth.db";

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: embed_migrations!("../../migrations/auth/sqlite"),
    postgres: embed_migrations!("../../migrations/auth/postgres"),
};

/// `AUTH_*` settings of this service.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// PEM file with the private key access tokens are signed with (RSA or Ed25519).
    pub signing_key_file: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
}

impl Settings {
    pub fn from_env() -> Result<Self, StartupError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Settings from an explicit variable list (tests, tools).
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, StartupError> {
        Ok(Self {
            server: ServerSettings::from_iter("AUTH_", vars.clone())?,
            auth: config::from_iter("AUTH_", vars)?,
        })
    }
}

impl HasServerSettings for Settings {
    fn server(&self) -> &ServerSettings {
        &self.server
    }
}

/// Opens the database, loads the keys and starts listening.
pub async fn build(settings: Settings, logger: Logger) -> Result<Application, StartupError> {
    let keys = keys::KeyRing::load(&settings.auth.signing_key_file)?;
    slog::info!(logger, "signing key loaded"; "kid" => keys.current_kid(), "alg" => format!("{:?}", keys.algorithm()));
    let db = peermesh_db::open(&settings.server, DEFAULT_DATABASE_URL, &MIGRATIONS, &logger)?;
    let listener = peermesh_common::server::bind(&settings.server, DEFAULT_PORT)?;

    let readiness = Readiness::new(SERVICE).with_check("database", db.ready_check());
    let ctx = AppContext {
        service: SERVICE,
        prefix: PREFIX,
        title: "PeerMesh auth API",
        logger,
        readiness,
        json_limit: settings.server.json_limit_bytes,
    };
    let state = AppState {
        db,
        keys: std::sync::Arc::new(keys),
    };
    let app = Application::start(
        ctx,
        listener,
        &settings.server,
        routes::configure,
        move |cfg| {
            cfg.app_data(actix_web::web::Data::new(state.clone()));
        },
    )?;
    Ok(app)
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub keys: std::sync::Arc<keys::KeyRing>,
}
