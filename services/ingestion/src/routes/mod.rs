//! Every route of the ingestion service, registered in one place.

mod files;
pub mod jobs;
mod urls;

use paperclip::actix::web;

/// Registers the service's routes inside its `/api/v1/ingest` scope (health and readiness
/// come from `peermesh_common::server`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/files", web::post().to(files::upload))
        .route("/urls", web::post().to(urls::import))
        .route("/jobs", web::get().to(jobs::list))
        .route("/jobs/{id}", web::get().to(jobs::get))
        .route("/jobs/{id}", web::delete().to(jobs::cancel))
        .route("/jobs/{id}/retry", web::post().to(jobs::retry));
}
