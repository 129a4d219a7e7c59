//! Every route of the content service, registered in one place.

mod items;

use paperclip::actix::web;

/// Registers the service's routes inside its `/api/v1/content` scope (health and
/// readiness come from `peermesh_common::server`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    // The prefix itself and the prefix with a trailing slash are the same collection.
    cfg.route("", web::get().to(items::list))
        .route("/", web::get().to(items::list));
}
