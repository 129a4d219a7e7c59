//! Social sign-in over HTTP: authorize → provider → callback → one-time code →
//! `POST /oauth/exchange` → our own token pair. Tokens never travel in URLs.

use peermesh_common::http::JsonBody;
use std::collections::BTreeMap;

use actix_web::body::BoxBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder};
use chrono::TimeDelta;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent, OperationModifier};
use paperclip::v2::models::{DefaultOperationRaw, DefaultSchemaRaw, Either, Response};
use peermesh_common::auth::Principal;
use peermesh_common::ApiError;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{tokens_for, user_agent, TokensOut};
use crate::error::AuthError;
use crate::metrics::Grant;
use crate::oauth::Provider;
use crate::store::oauth::{self as store, PendingState};
use crate::store::{sessions, users};
use crate::tokens::{random_secret, secret_hash};
use crate::AppState;
use peermesh_common::reply::Reply;

/// The one-time code is good for this long.
const CODE_TTL_SECS: i64 = 60;

fn cookie_name(provider: Provider) -> String {
    format!("pm_oauth_{}", provider.name())
}

/// The cookie that binds a flow to its browser (an empty one lasting 0 s clears it).
fn flow_cookie(
    state: &AppState,
    provider: Provider,
    value: String,
    max_age: TimeDelta,
) -> Cookie<'static> {
    Cookie::build(cookie_name(provider), value)
        .path("/api/v1/auth/oauth")
        .http_only(true)
        .secure(state.oauth.secure_cookies())
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            max_age.num_seconds(),
        ))
        .finish()
}

/// A 302 to `location`, optionally setting or clearing the flow's cookie.
pub struct Redirect {
    location: String,
    cookie: Option<Cookie<'static>>,
}

impl Responder for Redirect {
    type Body = BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse<BoxBody> {
        let mut resp = HttpResponse::Found();
        resp.insert_header((header::LOCATION, self.location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("Referrer-Policy", "no-referrer"));
        if let Some(cookie) = self.cookie {
            resp.cookie(cookie);
        }
        resp.finish()
    }
}

impl paperclip::v2::schema::Apiv2Schema for Redirect {}

impl OperationModifier for Redirect {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.responses.insert(
            "302".into(),
            Either::Right(Response {
                description: Some("Found: continue at `Location`".into()),
                ..Default::default()
            }),
        );
    }

    fn update_definitions(_: &mut BTreeMap<String, DefaultSchemaRaw>) {}
}

fn provider_of(state: &AppState, name: &str) -> Result<Provider, ApiError> {
    Provider::parse(name)
        .filter(|p| state.oauth.is_configured(*p))
        .ok_or_else(|| ApiError::not_found(format!("sign-in with {name:?} is not configured")))
}

fn with_query(uri: &str, key: &str, value: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair(key, value);
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeQuery {
    /// Where the browser is sent at the end: exactly one of `AUTH_OAUTH_REDIRECT_ALLOWLIST`.
    pub redirect_uri: String,
    /// Link the provider to the signed-in caller (send the access token) instead of signing in.
    pub link: Option<bool>,
    /// PKCE (RFC 7636) between the client and us: BASE64URL(SHA-256(code_verifier))
    /// of a verifier the client keeps and sends to `POST /oauth/exchange`. It binds the
    /// one-time code to the browser that started the sign-in.
    pub code_challenge: Option<String>,
    /// Only `S256`.
    pub code_challenge_method: Option<String>,
}

/// A PKCE S256 challenge: 43 base64url characters (a SHA-256 digest).
fn parse_challenge(query: &AuthorizeQuery) -> Result<String, ApiError> {
    let invalid = |field: &str, message: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_code_challenge",
            "a PKCE S256 code_challenge is required (RFC 7636): the client keeps the verifier for POST /oauth/exchange",
        )
        .with_errors(vec![peermesh_common::FieldError::new(field, message)])
    };
    if query
        .code_challenge_method
        .as_deref()
        .is_some_and(|m| m != "S256")
    {
        return Err(invalid("code_challenge_method", "must be S256"));
    }
    match query.code_challenge.as_deref() {
        Some(c) if c.len() == 43 && c.bytes().all(is_base64url) => Ok(c.to_owned()),
        Some(_) => Err(invalid(
            "code_challenge",
            "must be BASE64URL(SHA-256(code_verifier)) without padding: 43 characters",
        )),
        None => Err(invalid("code_challenge", "is required")),
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether `verifier` (43-128 unreserved characters, RFC 7636 §4.1) hashes to `challenge`.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine as _;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| is_base64url(b) || b == b'.' || b == b'~');
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    well_formed && subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

/// Starts a sign-in: redirects to the provider with `state`, a nonce (Google) and a PKCE
/// S256 challenge; the state is bound to this browser by an HttpOnly cookie.
#[api_v2_operation(summary = "Start signing in with a provider", tags(oauth))]
pub async fn authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AuthorizeQuery>,
) -> Result<Redirect, ApiError> {
    let provider = provider_of(&state, &path)?;
    if !state.oauth.allows(&query.redirect_uri) {
        // Never redirect anywhere else: that would be an open redirect.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "redirect_uri is not one of the allowed client URIs",
        )
        .with_errors(vec![peermesh_common::FieldError::new(
            "redirect_uri",
            "is not one of the allowed client URIs",
        )]));
    }
    let client_challenge = parse_challenge(&query)?;
    let link_user_id = if query.link.unwrap_or(false) {
        let principal = Principal::extract(&req).await.map_err(|_| {
            ApiError::unauthorized("linking a provider needs the signed-in user's access token")
                .with_header(header::WWW_AUTHENTICATE, "Bearer")
        })?;
        Some(principal.subject().to_owned())
    } else {
        None
    };
    let state_value = random_secret("pmo_");
    let browser = random_secret("pmb_");
    let started = state
        .oauth
        .start(provider, &state_value)
        .await
        .map_err(|reason| {
            slog::warn!(state.logger, "social sign-in cannot start";
                "provider" => provider.name(), "reason" => reason);
            ApiError::service_unavailable(
                "provider_unavailable",
                format!("{} cannot be reached right now", provider.name()),
            )
            .with_header(header::RETRY_AFTER, "30")
        })?;
    let now = crate::store::now();
    let pending = PendingState {
        state_hash: sha256_hex(&state_value),
        provider: provider.name().to_owned(),
        browser_hash: sha256_hex(&browser),
        nonce: started.nonce,
        pkce_verifier: started.pkce_verifier,
        redirect_uri: query.redirect_uri.clone(),
        link_user_id,
        created_at: now,
        expires_at: now + state.oauth.state_ttl,
        used_at: None,
        client_challenge: Some(client_challenge),
    };
    state
        .db
        .write(move |conn| store::insert_state(conn, &pending))
        .await
        .map_err(AuthError::from)?;
    let cookie = flow_cookie(&state, provider, browser, state.oauth.state_ttl);
    Ok(Redirect {
        location: started.url,
        cookie: Some(cookie),
    })
}

#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's refusal, e.g. `access_denied`. (Other parameters providers add,
    /// such as `scope` or `error_description`, are ignored.)
    pub error: Option<String>,
}

/// The provider sends the browser back here. Success: a redirect to the client with a
/// one-time `?code=` (60 s) for `POST /oauth/exchange`. Every failure — refused by the
/// person, forged, replayed or expired state, provider trouble, an account rule — is a
/// redirect with `?error=`, never an error page.
#[api_v2_operation(summary = "Provider callback", tags(oauth))]
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<Redirect, ApiError> {
    let provider = provider_of(&state, &path)?;
    let clear = flow_cookie(&state, provider, String::new(), TimeDelta::zero());
    let fail = |uri: &str, code: &str| {
        state.metrics.oauth_callback(provider.name(), code);
        Redirect {
            location: with_query(uri, "error", code),
            cookie: Some(clear.clone()),
        }
    };
    let fallback = state.oauth.fallback_redirect().unwrap_or("/").to_owned();

    let Some(state_value) = query.state.clone() else {
        return Ok(fail(&fallback, "invalid_state"));
    };
    let hash = sha256_hex(&state_value);
    let taken = state
        .db
        .write(move |conn| store::take_state(conn, &hash))
        .await
        .map_err(AuthError::from)?;
    let Some((pending, first_use)) = taken else {
        return Ok(fail(&fallback, "invalid_state"));
    };
    let back = pending.redirect_uri.clone();
    let browser = req
        .cookie(&cookie_name(provider))
        .map(|c| sha256_hex(c.value()));
    if !first_use || pending.provider != provider.name() {
        return Ok(fail(&back, "invalid_state"));
    }
    if browser.as_deref() != Some(pending.browser_hash.as_str()) {
        // Started in another browser (or a forged link): login CSRF.
        return Ok(fail(&back, "invalid_state"));
    }
    if pending.expires_at < crate::store::now() {
        return Ok(fail(&back, "state_expired"));
    }
    if let Some(error) = query.error.as_deref() {
        let code = if error == "access_denied" {
            "access_denied"
        } else {
            "provider_error"
        };
        return Ok(fail(&back, code));
    }
    let Some(code) = query.code.as_deref() else {
        return Ok(fail(&back, "provider_error"));
    };
    let who = match state
        .oauth
        .finish(provider, code, &pending.nonce, &pending.pkce_verifier)
        .await
    {
        Ok(who) => who,
        Err(reason) => {
            slog::warn!(state.logger, "social sign-in failed at the provider";
                "provider" => provider.name(), "reason" => reason);
            return Ok(fail(&back, "provider_error"));
        }
    };
    let link_to = pending.link_user_id.clone();
    let client_challenge = pending.client_challenge.clone();
    let one_time = random_secret("pmx_");
    let code_hash = secret_hash(&one_time);
    let provider_name = provider.name();
    let bootstrap = state.bootstrap_admin.clone();
    let outcome = state
        .db
        .write(move |conn| {
            let outcome = store::resolve(conn, &who, link_to.as_deref())?;
            if let Ok(user) = &outcome {
                crate::bootstrap::promote_if_bootstrap(conn, bootstrap.as_deref(), &user.id)?;
                store::insert_code(
                    conn,
                    &code_hash,
                    &user.id,
                    provider_name,
                    client_challenge.as_deref(),
                    TimeDelta::seconds(CODE_TTL_SECS),
                )?;
            }
            Ok(outcome)
        })
        .await
        .map_err(AuthError::from)?;
    match outcome {
        Ok(_) => {
            state.metrics.oauth_callback(provider_name, "signed_in");
            Ok(Redirect {
                location: with_query(&back, "code", &one_time),
                cookie: Some(clear),
            })
        }
        Err(refusal) => Ok(fail(&back, refusal.code())),
    }
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeIn {
    /// The one-time code from the callback's redirect.
    pub code: String,
    /// The PKCE verifier whose S256 challenge the client sent to authorize.
    pub code_verifier: String,
}

/// Trades the one-time code for a token pair (a new session). Single use, 60 s, and
/// only together with the verifier of the challenge the sign-in started with.
#[api_v2_operation(summary = "Exchange a sign-in code for tokens", tags(oauth))]
pub async fn exchange(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<ExchangeIn>,
) -> Result<Reply<TokensOut>, ApiError> {
    let ExchangeIn {
        code,
        code_verifier,
    } = body.into_inner();
    let code_hash = secret_hash(code.trim());
    let refresh = random_secret(super::account::REFRESH_PREFIX);
    let refresh_hash = secret_hash(&refresh);
    let policy = state.refresh;
    let (ua, ip) = (
        user_agent(&req),
        state.client_ip(&req).map(|i| i.to_string()),
    );
    let signed_in = state
        .db
        .write(move |conn| {
            let verifies = |challenge: &str| verifier_matches(&code_verifier, challenge);
            let Some(user_id) = store::redeem_code(conn, &code_hash, verifies)? else {
                return Ok(None);
            };
            let Some(user) = users::by_id(conn, &user_id)?.filter(|u| !u.disabled) else {
                return Ok(None);
            };
            let family = sessions::start(conn, &user.id, ua, ip, &refresh_hash, policy)?;
            let identities = users::providers(conn, &user.id)?;
            Ok(Some((user, family, identities)))
        })
        .await
        .map_err(AuthError::from)?;
    let Some((user, family, identities)) = signed_in else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_code",
            "the sign-in code is unknown, used or expired, or the code_verifier does not match; sign in again",
        ));
    };
    Ok(
        Reply::new(tokens_for(&state, &user, &family, refresh, identities, Grant::OAuth).await?)
            .no_store(),
    )
}

/// Removes a linked provider, unless it is the account's last way to sign in.
#[api_v2_operation(summary = "Unlink a provider", tags(oauth))]
pub async fn unlink(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<NoContent, ApiError> {
    let provider = path.into_inner();
    let user_id = principal.subject().to_owned();
    let name = provider.clone();
    let done = state
        .db
        .write(move |conn| store::unlink(conn, &user_id, &name))
        .await
        .map_err(AuthError::from)?;
    match done {
        None => Err(ApiError::not_found(format!("no {provider} sign-in is linked"))),
        Some(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_sign_in_method",
            "this is the account's only way to sign in; set a password or link another provider first",
        )),
        Some(true) => Ok(NoContent),
    }
}
