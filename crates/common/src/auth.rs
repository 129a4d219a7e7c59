//! The authenticated caller, as an actix extractor: put `Principal` in a handler's
//! signature and the handler only runs for a valid access token.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use paperclip::actix::Apiv2Security;

use crate::error::ApiError;
use crate::jwt::{Claims, JwtError, JwtValidator};
use crate::middleware::AccessSubject;

/// The caller of a request, from a verified access token.
#[derive(Debug, Clone, Apiv2Security)]
#[openapi(
    apiKey,
    alias = "bearerAuth",
    in = "header",
    name = "Authorization",
    description = "An access token from the auth service: `Bearer <token>`"
)]
pub struct Principal {
    pub claims: Arc<Claims>,
}

impl Principal {
    /// User id (or client id for service tokens).
    pub fn subject(&self) -> &str {
        &self.claims.sub
    }

    pub fn is_admin(&self) -> bool {
        self.claims.has_role("admin")
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.has_scope(scope)
    }
}

/// Pulls the token out of `Authorization: Bearer <token>`.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid_token("the Authorization header is not readable"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::invalid_token("expected `Authorization: Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::invalid_token(
            "expected `Authorization: Bearer <token>`",
        ));
    }
    Ok(Some(token.trim().to_owned()))
}

impl FromRequest for Principal {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let validator = req
                .app_data::<web::Data<JwtValidator>>()
                .ok_or_else(|| ApiError::internal("no JwtValidator registered on the app"))?
                .clone();
            let token = bearer_token(&req)?
                .ok_or_else(|| ApiError::unauthorized("this endpoint needs a bearer token"))?;
            let claims = validator.verify(&token).await.map_err(|err| match err {
                JwtError::KeysUnavailable(_) => ApiError::service_unavailable(
                    "keys_unavailable",
                    "token signing keys cannot be fetched right now; retry shortly",
                ),
                other => ApiError::invalid_token(other.to_string()),
            })?;
            req.extensions_mut()
                .insert(AccessSubject(claims.sub.clone()));
            Ok(Principal { claims })
        })
    }
}

/// A caller with the `admin` role; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminOnly(pub Principal);

impl FromRequest for AdminOnly {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        Box::pin(async move {
            let principal = principal.await?;
            if !principal.is_admin() {
                return Err(ApiError::forbidden("this endpoint is for administrators").into());
            }
            Ok(AdminOnly(principal))
        })
    }
}

impl paperclip::v2::schema::Apiv2Schema for AdminOnly {
    fn security_scheme() -> Option<paperclip::v2::models::SecurityScheme> {
        <Principal as paperclip::v2::schema::Apiv2Schema>::security_scheme()
    }
}
impl paperclip::actix::OperationModifier for AdminOnly {}
