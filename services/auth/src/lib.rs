//! The auth service: accounts, access and refresh tokens, roles, service clients and
//! the signing keys other services verify tokens with (JWKS).

pub mod bootstrap;
pub mod cli;
pub mod deletion;
pub mod domain;
pub mod error;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod oauth;
pub mod outbox;
pub mod password;
pub mod provision;
pub mod routes;
pub mod schema;
pub mod store;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::TimeDelta;
use diesel_migrations::embed_migrations;
use peermesh_common::config::{self, Networks, ServerSettings};
use peermesh_common::health::Readiness;
use peermesh_common::jwt::{JwtSettings, JwtValidator};
use peermesh_common::server::{AppContext, Application, HasServerSettings, StartupError};
use peermesh_db::{Db, Migrations};
use serde::Deserialize;
use slog::Logger;

use store::sessions::RefreshPolicy;
use store::throttle::Limit;

pub const SERVICE: &str = "auth";
pub const PREFIX: &str = "/api/v1/auth";
pub const DEFAULT_PORT: u16 = 8081;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/auth.db";

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: embed_migrations!("../../migrations/auth/sqlite"),
    postgres: embed_migrations!("../../migrations/auth/postgres"),
};

/// `AUTH_*` settings of this service.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// PEM file with the private key access tokens are signed with (RSA or Ed25519).
    pub signing_key_file: String,
    /// More PEM files (public or private keys) whose public keys are published too,
    /// comma separated: the previous key during a rotation.
    pub published_key_files: Option<String>,
    #[serde(default = "default_issuer")]
    pub jwt_issuer: String,
    #[serde(default = "default_audience")]
    pub jwt_audience: String,
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: i64,
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: i64,
    /// How long a just-rotated refresh token may be presented again (several tabs).
    #[serde(default = "default_grace")]
    pub refresh_grace_secs: i64,
    /// This account gets the admin role once its address is verified.
    pub bootstrap_admin_email: Option<String>,
    /// A file holding the bootstrap admin's password: the account is then created
    /// (or taken over from an unverified sign-up) at start-up, verified by definition.
    pub bootstrap_admin_password_file: Option<String>,
    /// How long a user's delegation to a service client lasts without being renewed
    /// (each request of the user through that client renews it).
    #[serde(default = "default_delegation_ttl")]
    pub delegation_ttl_secs: i64,
    /// JSON file of service clients to create or update at start-up (see `provision`).
    pub clients_file: Option<String>,
    #[serde(default = "default_account_failures")]
    pub login_max_failures_per_account: i32,
    #[serde(default = "default_ip_failures")]
    pub login_max_failures_per_ip: i32,
    /// Failed logins on one account from all addresses together; reaching it locks the
    /// account for addresses that never signed in to it (its owner's still work).
    #[serde(default = "default_account_wide_failures")]
    pub login_max_failures_account_wide: i32,
    #[serde(default = "default_window")]
    pub login_failure_window_secs: i64,
    #[serde(default = "default_lockout")]
    pub login_lockout_secs: i64,
    /// Addresses or networks whose `X-Real-IP` header is believed (the gateway),
    /// comma separated.
    #[serde(default = "default_trusted_proxies")]
    pub trusted_proxies: String,
    /// Password hashes computed at once; defaults to the number of cores.
    pub hash_concurrency: Option<usize>,
    /// The frontend that mail links point at (never the request's Host).
    #[serde(default = "default_app_url")]
    pub public_app_url: String,
    #[serde(default = "default_verify_ttl")]
    pub verify_token_ttl_secs: i64,
    #[serde(default = "default_reset_ttl")]
    pub reset_token_ttl_secs: i64,
    /// Shortest time between two verification mails to one user.
    #[serde(default = "default_resend_interval")]
    pub verify_resend_interval_secs: i64,
    /// Verification mails per user per hour.
    #[serde(default = "default_resend_per_hour")]
    pub verify_resend_per_hour: i32,
    /// Reset mails per account per hour (more are silently not sent).
    #[serde(default = "default_forgot_per_account")]
    pub forgot_per_account_per_hour: i32,
    /// Reset requests per client address per hour (more get 429).
    #[serde(default = "default_forgot_per_ip")]
    pub forgot_per_ip_per_hour: i32,
}

fn default_issuer() -> String {
    peermesh_common::jwt::DEFAULT_ISSUER.into()
}
fn default_audience() -> String {
    peermesh_common::jwt::DEFAULT_AUDIENCE.into()
}
fn default_access_ttl() -> i64 {
    15 * 60
}
fn default_refresh_ttl() -> i64 {
    7 * 24 * 3600
}
fn default_grace() -> i64 {
    10
}
fn default_delegation_ttl() -> i64 {
    90 * 24 * 3600
}
fn default_account_failures() -> i32 {
    5
}
fn default_ip_failures() -> i32 {
    50
}
fn default_account_wide_failures() -> i32 {
    100
}
fn default_window() -> i64 {
    15 * 60
}
fn default_lockout() -> i64 {
    5 * 60
}
fn default_app_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_verify_ttl() -> i64 {
    24 * 3600
}
fn default_reset_ttl() -> i64 {
    30 * 60
}
fn default_resend_interval() -> i64 {
    60
}
fn default_resend_per_hour() -> i32 {
    5
}
fn default_forgot_per_account() -> i32 {
    3
}
fn default_forgot_per_ip() -> i32 {
    20
}
fn default_trusted_proxies() -> String {
    "127.0.0.1,::1".into()
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub mail: mail::MailSettings,
    pub oauth: oauth::OAuthSettings,
    pub deletion: deletion::DeletionSettings,
}

impl Settings {
    pub fn from_env() -> Result<Self, StartupError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Settings from an explicit variable list (tests, tools).
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, StartupError> {
        Ok(Self {
            server: ServerSettings::from_iter("AUTH_", vars.clone())?,
            auth: config::from_iter("AUTH_", vars.clone())?,
            mail: config::from_iter("AUTH_", vars.clone())?,
            oauth: config::from_iter("AUTH_", vars.clone())?,
            deletion: config::from_iter("AUTH_", vars)?,
        })
    }
}

impl HasServerSettings for Settings {
    const DEFAULT_PORT: u16 = DEFAULT_PORT;

    fn server(&self) -> &ServerSettings {
        &self.server
    }
}

/// Opens the database, loads the keys and starts listening.
pub async fn build(settings: Settings, logger: Logger) -> Result<Application, StartupError> {
    let auth = &settings.auth;
    let keys = Arc::new(keys::KeyRing::load(
        &auth.signing_key_file,
        auth.published_key_files.as_deref(),
    )?);
    slog::info!(logger, "signing key loaded";
        "kid" => keys.current_kid(), "alg" => format!("{:?}", keys.algorithm()),
        "published" => keys.jwks().keys.len());
    let db = peermesh_db::open(
        &settings.server,
        DEFAULT_DATABASE_URL,
        &MIGRATIONS,
        &[SERVICE],
        &logger,
    )?;
    let hasher = password::Hasher::new(
        auth.hash_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
    )?;
    let bootstrap_admin = bootstrap_admin(auth, &db, &hasher, &logger).await?;
    if let Some(path) = auth.clients_file.as_deref().filter(|p| !p.is_empty()) {
        for (id, outcome) in provision::clients_from_file(&db, path).await? {
            match outcome {
                provision::Provisioned::Revoked => slog::warn!(logger,
                    "a client of AUTH_CLIENTS_FILE was revoked by an admin and stays revoked"; "client" => id),
                outcome => slog::info!(logger, "service client provisioned";
                    "client" => id, "outcome" => format!("{outcome:?}")),
            }
        }
    }

    let mut jwt = JwtSettings::new("local");
    jwt.issuer = auth.jwt_issuer.clone();
    jwt.audience = auth.jwt_audience.clone();
    jwt.algorithm = format!("{:?}", keys.algorithm());
    let validator = JwtValidator::from_jwks(jwt, keys.jwks())?;

    let hour = TimeDelta::hours(1);
    let per_hour = |max_failures| Limit {
        max_failures,
        window: hour,
        lockout: hour,
    };
    let login_limit = |max_failures| Limit {
        max_failures,
        window: TimeDelta::seconds(auth.login_failure_window_secs),
        lockout: TimeDelta::seconds(auth.login_lockout_secs),
    };
    let registry = peermesh_common::metrics::Metrics::new(SERVICE)?;
    db.register_metrics(&registry)?;
    let issuer = Arc::new(tokens::TokenIssuer::new(
        keys.clone(),
        auth.jwt_issuer.clone(),
        auth.jwt_audience.clone(),
        auth.access_token_ttl_secs,
    ));
    let eraser = deletion::AccountEraser::new(&settings.deletion, issuer.clone(), logger.clone())?;
    let readiness = Readiness::new(SERVICE).with_check("database", db.ready_check());
    let closed = peermesh_db::closed_accounts::watch(&db, &readiness).await;
    let auth_metrics = metrics::AuthMetrics::register(&registry)?;
    let state = AppState {
        metrics: auth_metrics.clone(),
        oauth: Arc::new(oauth::OAuth::new(&settings.oauth)?),
        mailer: mail::Mailer::new(&settings.mail, logger.clone(), auth_metrics)?,
        mail_policy: Arc::new(routes::email::MailPolicy {
            app_url: auth.public_app_url.clone(),
            verify_ttl: TimeDelta::seconds(auth.verify_token_ttl_secs),
            reset_ttl: TimeDelta::seconds(auth.reset_token_ttl_secs),
            resend_interval: TimeDelta::seconds(auth.verify_resend_interval_secs),
            resend_limit: per_hour(auth.verify_resend_per_hour),
            forgot_account_limit: per_hour(auth.forgot_per_account_per_hour),
            forgot_ip_limit: per_hour(auth.forgot_per_ip_per_hour),
        }),
        logger: logger.clone(),
        db: db.clone(),
        issuer,
        keys,
        eraser,
        closed,
        reauth_window: TimeDelta::seconds(settings.deletion.reauth_window_secs),
        hasher,
        bootstrap_admin: bootstrap_admin.map(Arc::from),
        refresh: RefreshPolicy {
            ttl: TimeDelta::seconds(auth.refresh_token_ttl_secs),
            grace: TimeDelta::seconds(auth.refresh_grace_secs),
        },
        delegation_ttl: TimeDelta::seconds(auth.delegation_ttl_secs),
        login_limits: routes::account::LoginLimits {
            pair: login_limit(auth.login_max_failures_per_account),
            address: login_limit(auth.login_max_failures_per_ip),
            account: login_limit(auth.login_max_failures_account_wide),
        },
        trusted_proxies: Arc::new(Networks::from_var(
            "AUTH_TRUSTED_PROXIES",
            &auth.trusted_proxies,
        )?),
    };
    let listener = peermesh_common::server::bind(&settings.server, DEFAULT_PORT)?;
    let mail_sender = state.mailer.start(db.clone(), readiness.clone());
    let eraser = state.eraser.start(db.clone(), readiness.clone());
    let ctx = AppContext {
        service: SERVICE,
        prefix: PREFIX,
        title: "PeerMesh auth API",
        logger,
        readiness,
        metrics: registry,
        json_limit: settings.server.json_limit_bytes,
        contract: &routes::CONTRACT,
    };
    let validator = actix_web::web::Data::new(validator);
    let app = Application::start(
        ctx,
        listener,
        &settings.server,
        routes::configure,
        move |cfg| {
            cfg.app_data(actix_web::web::Data::new(state.clone()))
                .app_data(validator.clone())
                .app_data(actix_web::web::Data::new(state.closed.clone()));
        },
    )?
    .on_stop(async move {
        let _ = mail_sender.await;
        let _ = eraser.await;
    });
    Ok(app)
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub keys: Arc<keys::KeyRing>,
    pub issuer: Arc<tokens::TokenIssuer>,
    pub hasher: password::Hasher,
    pub refresh: RefreshPolicy,
    pub login_limits: routes::account::LoginLimits,
    /// How long a delegation lasts unrenewed (`AUTH_DELEGATION_TTL_SECS`).
    pub delegation_ttl: TimeDelta,
    pub trusted_proxies: Arc<Networks>,
    pub mailer: mail::Mailer,
    /// Asks the other services to erase deleted accounts.
    pub eraser: deletion::AccountEraser,
    /// Accounts deleted lately, whose access tokens are refused.
    pub closed: peermesh_common::auth::ClosedAccounts,
    /// How recent a sign-in must be to delete the account without the password.
    pub reauth_window: TimeDelta,
    pub oauth: Arc<oauth::OAuth>,
    pub metrics: metrics::AuthMetrics,
    pub mail_policy: Arc<routes::email::MailPolicy>,
    /// `AUTH_BOOTSTRAP_ADMIN_EMAIL`, normalised: promoted once verified.
    pub bootstrap_admin: Option<Arc<str>>,
    pub logger: Logger,
}

/// Applies `AUTH_BOOTSTRAP_ADMIN_EMAIL` (and its password file) at start-up; returns
/// the normalised address for the promotions that happen on verification later.
async fn bootstrap_admin(
    auth: &AuthSettings,
    db: &Db,
    hasher: &password::Hasher,
    logger: &Logger,
) -> Result<Option<String>, StartupError> {
    let Some(email) = auth
        .bootstrap_admin_email
        .as_deref()
        .filter(|e| !e.is_empty())
    else {
        return Ok(None);
    };
    let email = domain::Email::parse(email)
        .map_err(|e| format!("AUTH_BOOTSTRAP_ADMIN_EMAIL {}", e.message))?
        .into_string();
    let file = auth
        .bootstrap_admin_password_file
        .as_deref()
        .filter(|p| !p.is_empty());
    let address = email.clone();
    let outcome = match file {
        Some(path) => {
            let password = std::fs::read_to_string(path)
                .map_err(|e| format!("AUTH_BOOTSTRAP_ADMIN_PASSWORD_FILE {path}: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            password::check_new_password("AUTH_BOOTSTRAP_ADMIN_PASSWORD_FILE", &password)
                .map_err(|e| format!("AUTH_BOOTSTRAP_ADMIN_PASSWORD_FILE {}", e.message))?;
            let hash = hasher.hash(password).await.map_err(|e| e.to_string())?;
            db.write(move |conn| bootstrap::ensure_with_password(conn, &address, &hash))
                .await?
        }
        None => {
            db.write(move |conn| bootstrap::ensure(conn, &address))
                .await?
        }
    };
    match outcome {
        bootstrap::Outcome::Waiting => slog::warn!(logger,
            "the bootstrap admin's account does not exist or its address is unverified; it gets the admin role once the address is verified (or set AUTH_BOOTSTRAP_ADMIN_PASSWORD_FILE)"),
        outcome => slog::info!(logger, "bootstrap admin ensured"; "outcome" => format!("{outcome:?}")),
    }
    Ok(Some(email))
}

impl AppState {
    /// The client's address: `X-Real-IP` when the request came from the gateway,
    /// the peer address otherwise. Never `X-Forwarded-For`, which clients can forge.
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr().map(|a| a.ip())?;
        if self.trusted_proxies.contains(peer) {
            if let Some(real) = req
                .headers()
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
            {
                return Some(real);
            }
        }
        Some(peer)
    }
}
