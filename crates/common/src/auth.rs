//! The authenticated caller, as an actix extractor: put `Principal` in a handler's
//! signature and the handler only runs for a valid access token.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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

    /// A service client's token carrying `scope`, or 403.
    pub fn require_service_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.claims.has_role("service") && self.has_scope(scope) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "this is for service clients with the {scope} scope"
        ))
        .with_code("insufficient_scope"))
    }
}

/// The scope of the auth service's own token for erasing a deleted account's data in
/// the other services (`DELETE /accounts/{id}`).
pub const SCOPE_DELETE_ACCOUNTS: &str = "accounts:delete";

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

/// Accounts closed lately (deleted): their access tokens, signed before and valid for
/// up to their 15 minutes, are refused by every service that knows of the closing.
/// Each service fills the set from its own database (see `peermesh_db::closed_accounts`)
/// and registers it as app data; [`Principal`] then refuses a token whose subject, or
/// the user a service token acts for, is in it.
#[derive(Debug, Clone, Default)]
pub struct ClosedAccounts {
    /// Each id, with when this process closed it (`None`: read from the database).
    ids: Arc<RwLock<HashMap<String, Option<Instant>>>>,
    /// Whether `ids` is empty: the common case costs one atomic load per request.
    empty: Arc<AtomicBool>,
}

/// How long an account closed in this process stays in the set even when a read of
/// the database (begun before the closing was committed) does not list it yet.
const LOCAL_GRACE: Duration = Duration::from_secs(60);

impl ClosedAccounts {
    pub fn new() -> Self {
        Self {
            ids: Arc::default(),
            empty: Arc::new(AtomicBool::new(true)),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        !self.empty.load(Ordering::Acquire)
            && self
                .ids
                .read()
                .map(|ids| ids.contains_key(id))
                .unwrap_or(false)
    }

    /// Adds an account closed here and now.
    pub fn close(&self, id: impl Into<String>) {
        if let Ok(mut ids) = self.ids.write() {
            ids.insert(id.into(), Some(Instant::now()));
            self.empty.store(false, Ordering::Release);
        }
    }

    /// Takes what the database holds (closings by other replicas; old ones drop out).
    pub fn replace(&self, fresh: HashSet<String>) {
        if let Ok(mut ids) = self.ids.write() {
            ids.retain(|id, closed_here| {
                fresh.contains(id) || closed_here.is_some_and(|at| at.elapsed() < LOCAL_GRACE)
            });
            for id in fresh {
                ids.entry(id).or_insert(None);
            }
            self.empty.store(ids.is_empty(), Ordering::Release);
        }
    }

    /// Whether `claims` belong to a closed account (as the user or as the user a
    /// service token acts for).
    pub fn refuses(&self, claims: &Claims) -> bool {
        self.contains(&claims.sub) || claims.act_for.as_deref().is_some_and(|u| self.contains(u))
    }
}

fn account_closed() -> ApiError {
    ApiError::invalid_token("this account has been deleted").with_code("account_closed")
}

fn principal(req: &HttpRequest, claims: Arc<Claims>) -> Result<Principal, ApiError> {
    if let Some(closed) = req.app_data::<web::Data<ClosedAccounts>>() {
        if closed.refuses(&claims) {
            return Err(account_closed());
        }
    }
    req.extensions_mut()
        .insert(AccessSubject(claims.sub.clone()));
    Ok(Principal { claims })
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
                        .map_err(token_refused)
                        .and_then(|claims| principal(req, claims))
                        .map_err(Into::into);
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
            Ok(principal(&req, claims)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, act_for: Option<&str>) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: sub.into(),
            exp: 0,
            iat: 0,
            nbf: 0,
            jti: "j".into(),
            typ: "access".into(),
            roles: Vec::new(),
            scope: String::new(),
            sid: None,
            act_for: act_for.map(str::to_owned),
        }
    }

    #[test]
    fn closed_accounts_refuse_their_users_and_services_acting_for_them() {
        let closed = ClosedAccounts::new();
        assert!(!closed.refuses(&claims("u1", None)));
        closed.close("u1");
        assert!(closed.refuses(&claims("u1", None)));
        assert!(closed.refuses(&claims("ingestion", Some("u1"))));
        assert!(!closed.refuses(&claims("u2", None)));
        assert!(!closed.refuses(&claims("ingestion", Some("u2"))));

        // A read of the database that does not list a closing made here a moment ago
        // (it began before the commit) keeps it; one from another replica is added.
        closed.replace(HashSet::from(["u3".to_owned()]));
        assert!(closed.contains("u1") && closed.contains("u3"));
        // Closings the database no longer lists (older than a day), learnt from it,
        // drop out.
        closed.replace(HashSet::new());
        assert!(closed.contains("u1"), "closed here within the grace");
        assert!(!closed.contains("u3"));
    }
}
