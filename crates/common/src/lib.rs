//! What every PeerMesh service needs and nothing more: configuration, JSON logs,
//! request ids and access logs, problem+json errors, health/readiness, JWT validation,
//! and the HTTP server scaffolding that ties them together.

pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod jwt;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod outbound;
pub mod pagination;
pub mod reply;
pub mod server;
pub mod trace;

pub use error::{ApiError, FieldError};
