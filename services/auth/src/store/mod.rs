//! The auth service's tables: every query of the service lives here, each taking the
//! connection it runs on (handlers call them through `Db::run` / `Db::write`).

pub mod clients;
pub mod delegations;
pub mod deletions;
pub mod email_tokens;
pub mod mail_outbox;
pub mod oauth;
pub mod sessions;
pub mod throttle;
pub mod users;

pub use peermesh_db::now;

pub use peermesh_common::http::rfc3339;
