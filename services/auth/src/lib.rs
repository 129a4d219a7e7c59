//! The auth service: accounts, access and refresh tokens, roles, service clients and
//! the signing keys other services verify tokens with (JWKS).

pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod deletion;
pub mod domain;
pub mod error;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod oauth;
pub mod outbox;
pub mod password;
pub mod provision;
pub mod routes;
pub mod schema;
pub mod startup;
pub mod store;
pub mod tokens;

use diesel_migrations::embed_migrations;
use peermesh_db::Migrations;

pub use config::{AuthSettings, Settings};
pub use startup::{build, AppState};

pub const SERVICE: &str = "auth";
pub const PREFIX: &str = "/api/v1/auth";
pub const DEFAULT_PORT: u16 = 8081;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/auth.db";

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: embed_migrations!("../../migrations/auth/sqlite"),
    postgres: embed_migrations!("../../migrations/auth/postgres"),
};
