//! Every route of the ingestion service, registered in one place.

use paperclip::actix::web;

/// Registers the service's routes inside its `/api/v1/ingest` scope (health and readiness
/// come from `peermesh_common::server`).
pub fn configure(_cfg: &mut web::ServiceConfig) {}
