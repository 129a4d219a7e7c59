//! Every route of the auth service, registered in one place, and the shapes they share.

pub mod account;
pub mod admin;
pub mod email;
mod jwks;
mod me;
mod oauth;
pub mod oauth_token;

use actix_web::http::header;
use actix_web::HttpRequest;
use paperclip::actix::{web, Apiv2Schema};
use peermesh_common::openapi::{Contract, Header, Operation};
use peermesh_common::ApiError;
use serde::Serialize;

use crate::error::AuthError;
use crate::metrics::Grant;
use crate::store::sessions::Family;
use crate::store::users::User;
use crate::store::{self, rfc3339};
use crate::AppState;

/// Registers the service's routes inside its `/api/v1/auth` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/jwks.json", web::get().to(jwks::jwks))
        .route("/register", web::post().to(account::register))
        .route("/login", web::post().to(account::login))
        .route("/refresh", web::post().to(account::refresh))
        .route("/logout", web::post().to(account::logout))
        .route("/logout-all", web::post().to(account::logout_all))
        .route("/me", web::get().to(me::get_me))
        .route("/me", web::patch().to(me::patch_me))
        .route("/me", web::delete().to(me::delete_me))
        .route("/me/password", web::post().to(me::change_password))
        .route("/sessions", web::get().to(me::list_sessions))
        .route("/sessions/{id}", web::delete().to(me::revoke_session))
        .route("/verify-email", web::post().to(email::verify_email))
        .route(
            "/verify-email/resend",
            web::post().to(email::resend_verification),
        )
        .route("/password/forgot", web::post().to(email::forgot_password))
        .route("/password/reset", web::post().to(email::reset_password))
        .route("/token", web::post().to(oauth_token::token))
        .route("/clients", web::post().to(admin::create_client))
        .route("/clients", web::get().to(admin::list_clients))
        .route("/clients/{id}", web::delete().to(admin::delete_client))
        .route("/users", web::get().to(admin::list_users))
        .route("/users/{id}", web::patch().to(admin::patch_user))
        .route("/oauth/exchange", web::post().to(oauth::exchange))
        .route(
            "/oauth/{provider}/authorize",
            web::get().to(oauth::authorize),
        )
        .route("/oauth/{provider}/callback", web::get().to(oauth::callback))
        .route("/me/identities/{provider}", web::delete().to(oauth::unlink));
}

/// What the OpenAPI document says beyond the handlers' signatures (statuses, headers,
/// who may call); the API tests fail on any answer it does not describe.
pub const CONTRACT: Contract = {
    use Header::{CacheControl, Location, Pragma, ReferrerPolicy, SetCookie};
    const NO_STORE: &[Header] = &[CacheControl, Pragma];
    const TO_PROVIDER: &[Header] = &[Location, CacheControl, ReferrerPolicy, SetCookie];
    Contract {
        public: &[
            "GET /.well-known/jwks.json",
            "POST /register",
            "POST /login",
            "POST /refresh",
            "POST /verify-email",
            "POST /password/forgot",
            "POST /password/reset",
            "POST /token",
            "POST /oauth/exchange",
            "GET /oauth/{provider}/authorize",
            "GET /oauth/{provider}/callback",
        ],
        service_scopes: &[],
        operations: &[
            Operation::new("POST /register")
                .statuses(&[409])
                .response_headers(&[(201, NO_STORE)]),
            Operation::new("POST /login")
                .statuses(&[401, 403])
                .response_headers(&[(200, NO_STORE)]),
            Operation::new("POST /refresh")
                .statuses(&[401])
                .response_headers(&[(200, NO_STORE)]),
            Operation::new("POST /oauth/exchange")
                .statuses(&[401])
                .response_headers(&[(200, NO_STORE)]),
            Operation::new("GET /oauth/{provider}/authorize")
                .response_headers(&[(302, TO_PROVIDER)]),
            Operation::new("GET /oauth/{provider}/callback")
                .response_headers(&[(302, TO_PROVIDER)]),
            Operation::new("POST /token")
                .statuses(&[400, 401, 415])
                .response_headers(&[
                    (200, NO_STORE),
                    (400, &[CacheControl]),
                    (401, &[CacheControl]),
                ])
                .oauth_errors()
                .client_credentials(),
            Operation::new("POST /password/forgot").response_headers(&[(202, NO_STORE)]),
            Operation::new("POST /verify-email/resend")
                .statuses(&[409])
                .response_headers(&[(202, NO_STORE)]),
            Operation::new("POST /clients").response_headers(&[(201, NO_STORE)]),
            Operation::new("POST /me/password").statuses(&[401]),
            Operation::new("DELETE /me").response_headers(&[(202, NO_STORE)]),
            Operation::new("DELETE /me/identities/{provider}").statuses(&[409]),
            Operation::new("PATCH /users/{id}").statuses(&[409]),
        ],
    }
};

/// A user as the API shows it.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    pub email_verified: bool,
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
    /// Providers linked besides the password (e.g. `google`).
    pub identities: Vec<String>,
}

impl UserOut {
    pub fn new(user: &User, identities: Vec<String>) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            roles: crate::domain::roles_vec(&user.roles),
            email_verified: user.email_verified,
            disabled: user.disabled,
            created_at: rfc3339(user.created_at),
            identities,
        }
    }
}

/// The answer of register, login and refresh.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct TokensOut {
    pub user: UserOut,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// Signs an access token for `user` in session `family` and packs the answer.
pub async fn tokens_for(
    state: &AppState,
    user: &User,
    family: &Family,
    refresh_token: String,
    identities: Vec<String>,
    grant: Grant,
) -> Result<TokensOut, AuthError> {
    let access_token = state
        .issuer
        .sign(crate::tokens::AccessGrant {
            sub: user.id.clone(),
            roles: crate::domain::roles_vec(&user.roles),
            sid: Some(family.id.clone()),
            ..Default::default()
        })
        .await
        .map_err(AuthError::Internal)?;
    state.metrics.issued(grant);
    Ok(TokensOut {
        user: UserOut::new(user, identities),
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.issuer.access_ttl_secs(),
    })
}

/// The user behind an access token; service tokens have no account here.
pub async fn current_user(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    let id = user_id.to_owned();
    state
        .db
        .read(move |conn| store::users::by_id(conn, &id))
        .await
        .map_err(AuthError::from)?
        .ok_or_else(|| AuthError::NotFound.into())
}

pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(256).collect())
}
