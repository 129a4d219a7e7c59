//! The ingestion service: uploads, web pages and feeds turned into content, through a durable job queue.

pub mod blobs;
pub mod callbacks;
pub mod cli;
pub mod config;
pub mod content_client;
pub mod error;
pub mod feeds;
pub mod fetch;
pub mod formats;
pub mod jobs;
pub mod metrics;
pub mod routes;
pub mod sandbox;
pub mod schema;
pub mod startup;
pub mod store;

use diesel_migrations::embed_migrations;
use peermesh_db::Migrations;

pub use config::{IngestSettings, Settings};
pub use startup::{build, AppState};

pub const SERVICE: &str = "ingestion";
pub const PREFIX: &str = "/api/v1/ingest";
pub const DEFAULT_PORT: u16 = 8082;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/ingestion.db";

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: embed_migrations!("../../migrations/ingestion/sqlite"),
    postgres: embed_migrations!("../../migrations/ingestion/postgres"),
};
