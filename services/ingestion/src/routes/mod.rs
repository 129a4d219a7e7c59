//! Every route of the ingestion service, registered in one place.

mod delegating;
mod feeds;
mod files;
pub mod jobs;
mod urls;

use paperclip::actix::web;

/// Registers the service's routes inside its `/api/v1/ingest` scope (health and readiness
/// come from `peermesh_common::server`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/files", web::post().to(files::upload))
        .route("/urls", web::post().to(urls::import))
        .route("/feeds", web::post().to(feeds::create))
        .route("/feeds", web::get().to(feeds::list))
        .route("/feeds/{id}", web::get().to(feeds::get))
        .route("/feeds/{id}", web::delete().to(feeds::delete))
        .route("/feeds/{id}/refresh", web::post().to(feeds::refresh))
        .route("/jobs", web::get().to(jobs::list))
        .route("/jobs/{id}", web::get().to(jobs::get))
        .route("/jobs/{id}", web::delete().to(jobs::cancel))
        .route("/jobs/{id}/retry", web::post().to(jobs::retry));
}
