//! Wiring: loads the keys, opens the database, applies the bootstrap admin and the
//! provisioned clients, starts the senders and the HTTP server.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::TimeDelta;
use peermesh_common::config::Networks;
use peermesh_common::health::Readiness;
use peermesh_common::jwt::{JwtSettings, JwtValidator};
use peermesh_common::server::{AppContext, Application, Shared, StartupError};
use peermesh_db::Db;
use slog::Logger;

use crate::config::{AuthSettings, Settings};
use crate::store::sessions::RefreshPolicy;
use crate::store::throttle::Limit;
use crate::{
    bootstrap, deletion, domain, keys, mail, metrics, oauth, password, provision, routes, tokens,
    DEFAULT_DATABASE_URL, DEFAULT_PORT, MIGRATIONS, PREFIX, SERVICE,
};

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
        trusted_proxies: Arc::new(auth.trusted_proxy_networks()?),
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
    let shared = Shared {
        closed: state.closed.clone(),
        state,
        validator,
    };
    let app = Application::serve(ctx, listener, &settings.server, routes::configure, shared)?
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
