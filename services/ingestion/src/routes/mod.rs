//! Every route of the ingestion service, registered in one place.

mod accounts;
mod delegating;
mod feeds;
mod files;
pub mod jobs;
mod urls;

use paperclip::actix::web;
use peermesh_common::openapi::{Contract, Header, Operation};

/// Registers the service's routes inside its `/api/v1/ingest` scope (health and readiness
/// come from `peermesh_common::server`).
/// A title as the content service will take it (checked here so an upload is refused
/// at once, not failed in its job); a 422 naming `title` otherwise.
pub fn item_title(value: &str) -> Result<String, peermesh_common::ApiError> {
    peermesh_item_rules::title(value)
        .map_err(|m| peermesh_common::ApiError::invalid_field("title", m))
}

/// Tags as the content service will take them; a 422 naming each one refused.
pub fn item_tags(values: &[String]) -> Result<Vec<String>, peermesh_common::ApiError> {
    peermesh_item_rules::tags(values).map_err(|mistakes| {
        peermesh_common::ApiError::validation(
            mistakes
                .into_iter()
                .map(|(field, message)| peermesh_common::FieldError::new(field, message))
                .collect(),
        )
    })
}

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
        .route("/jobs/{id}/retry", web::post().to(jobs::retry))
        .route("/jobs/{id}/file", web::get().to(jobs::original))
        .route("/files/{sha256}", web::get().to(jobs::original_by_hash))
        .route("/accounts/{id}", web::delete().to(accounts::erase));
}

/// What the OpenAPI document says beyond the handlers' signatures (statuses, headers,
/// who may call); the API tests fail on any answer it does not describe.
pub const CONTRACT: Contract = {
    use Header::{IdempotencyKey, Location};
    const DOWNLOAD: &[(u16, &[Header])] = &[(
        200,
        &[
            Header::ContentDisposition,
            Header::ContentSecurityPolicy,
            Header::ContentTypeOptions,
        ],
    )];
    Contract {
        public: &[],
        service_scopes: &[],
        operations: &[
            Operation::new("POST /files")
                .statuses(&[409, 502])
                .request_headers(&[IdempotencyKey])
                .response_headers(&[(201, &[Location]), (202, &[Location]), (200, &[Location])]),
            Operation::new("POST /urls")
                .statuses(&[409, 502])
                .request_headers(&[IdempotencyKey])
                .response_headers(&[(201, &[Location]), (202, &[Location]), (200, &[Location])]),
            Operation::new("POST /feeds")
                .statuses(&[409, 502])
                .response_headers(&[(201, &[Location])]),
            Operation::new("POST /feeds/{id}/refresh")
                .statuses(&[409])
                .response_headers(&[(202, &[Location])]),
            Operation::new("POST /jobs/{id}/retry").statuses(&[409]),
            Operation::new("DELETE /accounts/{id}").service_only(
                peermesh_common::auth::SCOPE_DELETE_ACCOUNTS,
                "Erase a deleted account's data (the auth service's own token)",
            ),
            Operation::new("GET /jobs/{id}/file")
                .download()
                .response_headers(DOWNLOAD),
            Operation::new("GET /files/{sha256}")
                .download()
                .response_headers(DOWNLOAD),
            Operation::new("DELETE /jobs/{id}").statuses(&[409]),
        ],
    }
};
