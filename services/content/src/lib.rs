//! The content service: items, chunks, tags, knowledge-graph links, search, embeddings.

pub mod auto_embed;
pub mod caller;
pub mod changes;
pub mod config;
pub mod embedder;
pub mod error;
pub mod export;
pub mod hybrid;
pub mod import;
pub mod large_json;
pub mod query;
pub mod routes;
pub mod schema;
pub mod snippet;
pub mod startup;
pub mod store;
pub mod validate;
pub mod vector_cache;
pub mod vectors;
pub mod webhooks;

use diesel_migrations::embed_migrations;
use peermesh_db::Migrations;

pub use config::{EmbedSettings, ExportSettings, FeedSettings, Limits, Settings};
pub use startup::{build, AppState};

pub const SERVICE: &str = "content";
pub const PREFIX: &str = "/api/v1/content";
pub const DEFAULT_PORT: u16 = 8083;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/content.db";

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: embed_migrations!("../../migrations/content/sqlite"),
    postgres: embed_migrations!("../../migrations/content/postgres"),
};
