//! Every route of the auth service, registered in one place.

mod jwks;

use paperclip::actix::web;

/// Registers the service's routes inside its `/api/v1/auth` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/jwks.json", web::get().to(jwks::jwks));
}
