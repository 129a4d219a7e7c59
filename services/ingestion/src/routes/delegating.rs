//! The signed-in user of a request that may lead to writes into their content: their
//! access token is traded (once per token lifetime) for this service's token acting
//! for them, which records their delegation at auth — what lets queued jobs and feed
//! polls write for them later (see `content_client`).

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use paperclip::actix::OperationModifier;
use peermesh_common::auth::{bearer_token, Principal};
use peermesh_common::ApiError;

use crate::content_client::ContentError;
use crate::AppState;

/// A user (never a service token) who has delegated to this service.
#[derive(Debug, Clone)]
pub struct Delegating(pub Principal);

impl Delegating {
    pub fn subject(&self) -> &str {
        self.0.subject()
    }
}

impl FromRequest for Delegating {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let principal = principal.await?;
            if principal.claims.has_role("service") {
                return Err(ApiError::forbidden(
                    "ingestion imports documents for users: use a user's access token",
                )
                .with_code("user_token_required")
                .into());
            }
            let state = req
                .app_data::<actix_web::web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("no AppState registered on the app"))?
                .clone();
            let token = bearer_token(&req)?.unwrap_or_default();
            match state.content.delegate(principal.subject(), &token).await {
                Ok(()) => Ok(Delegating(principal)),
                Err(e @ ContentError::NotDelegated(_)) => Err(ApiError::forbidden(e.to_string())
                    .with_code("not_delegated")
                    .into()),
                Err(e) => {
                    slog::warn!(state.logger, "delegation to ingestion failed"; "error" => e.to_string());
                    Err(ApiError::service_unavailable(
                        "auth_unavailable",
                        "the auth service cannot be reached right now; retry shortly",
                    )
                    .with_header(actix_web::http::header::RETRY_AFTER, "5")
                    .into())
                }
            }
        })
    }
}

impl paperclip::v2::schema::Apiv2Schema for Delegating {
    fn security_scheme() -> Option<paperclip::v2::models::SecurityScheme> {
        <Principal as paperclip::v2::schema::Apiv2Schema>::security_scheme()
    }
}
impl OperationModifier for Delegating {}
