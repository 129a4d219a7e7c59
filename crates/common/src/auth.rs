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

/// The token of `Authorization: Bearer <token>`, borrowed from the request.
pub fn bearer(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::invalid_token("expected `Authorization: Bearer <token>`");
    let bytes = value.as_bytes();
    let (scheme, token) = bytes.split_at(
        bytes
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(malformed)?,
    );
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(malformed());
    }
    // UTF-8 is checked (quickly) rather than visible ASCII byte by byte: the token is
    // hashed as it is, and a malformed one fails its verification.
    let token = std::str::from_utf8(token)
        .map_err(|_| ApiError::invalid_token("the Authorization header is not readable"))?
        .trim();
    if token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

/// Pulls the token out of `Authorization: Bearer <token>`.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    Ok(bearer(req)?.map(str::to_owned))
}

fn token_refused(err: JwtError) -> ApiError {
    match err {
        JwtError::KeysUnavailable(_) => ApiError::service_unavailable(
            "keys_unavailable",
            "token signing keys cannot be fetched right now; retry shortly",
        ),
        other => ApiError::invalid_token(other.to_string()),
    }
}

fn principal(req: &HttpRequest, claims: Arc<Claims>) -> Principal {
    req.extensions_mut()
        .insert(AccessSubject(claims.sub.clone()));
    Principal { claims }
}

impl FromRequest for Principal {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let validator = match req.app_data::<web::Data<JwtValidator>>() {
            Some(validator) => validator.clone(),
            None => {
                let err = ApiError::internal("no JwtValidator registered on the app");
                return Box::pin(std::future::ready(Err(err.into())));
            }
        };
        // A token seen before is answered here, without copying it or waiting.
        let token = match bearer(req) {
            Ok(Some(token)) => match validator.cached(token) {
                Some(answer) => {
                    let result = answer
                        .map(|claims| principal(req, claims))
                        .map_err(|e| token_refused(e).into());
                    return Box::pin(std::future::ready(result));
                }
                None => token.to_owned(),
            },
            Ok(None) => {
                let err = ApiError::unauthorized("this endpoint needs a bearer token");
                return Box::pin(std::future::ready(Err(err.into())));
            }
            Err(err) => return Box::pin(std::future::ready(Err(err.into()))),
        };
        let req = req.clone();
        Box::pin(async move {
            let claims = validator.verify(&token).await.map_err(token_refused)?;
            Ok(principal(&req, claims))
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
