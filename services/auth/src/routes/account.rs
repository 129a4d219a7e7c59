//! Register, log in, refresh, log out.

use actix_web::HttpRequest;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::auth::Principal;
use peermesh_common::http::JsonBody;
use peermesh_common::ApiError;
use serde::Deserialize;

use super::{tokens_for, user_agent, TokensOut};
use crate::domain::{parse_display_name, Email};
use crate::error::AuthError;
use crate::metrics::Grant;
use crate::password::check_new_password;
use crate::store::sessions::{self, Refresh};
use crate::store::{throttle, users};
use crate::tokens::{random_secret, secret_hash};
use crate::AppState;
use peermesh_common::reply::{Code, Reply};

pub(super) const REFRESH_PREFIX: &str = "pmr_";

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct RegisterIn {
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    pub display_name: Option<String>,
}

/// Creates an account and signs it in.
#[api_v2_operation(summary = "Register", tags(account))]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<RegisterIn>,
) -> Result<Reply<TokensOut, Code<201>>, ApiError> {
    let body = body.into_inner();
    let mut errors = Vec::new();
    let email = Email::parse(&body.email).map_err(|e| errors.push(e)).ok();
    if let Err(e) = check_new_password("password", &body.password) {
        errors.push(e);
    }
    let display_name = match body.display_name.as_deref() {
        Some(name) => parse_display_name(name).map_err(|e| errors.push(e)).ok(),
        None => None,
    };
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return Err(AuthError::Invalid(errors).into());
    };

    let hash = state
        .hasher
        .hash(body.password)
        .await
        .map_err(AuthError::from)?;
    let user = users::User::new(email.into_string(), display_name, hash);
    let refresh = random_secret(REFRESH_PREFIX);
    let refresh_hash = secret_hash(&refresh);
    let (ua, ip) = (
        user_agent(&req),
        state.client_ip(&req).map(|i| i.to_string()),
    );
    let policy = state.refresh;
    let (mail_policy, mailer) = (state.mail_policy.clone(), state.mailer.clone());
    let (user, family) = state
        .db
        .write(move |conn| {
            users::insert(conn, &user)?;
            let family = sessions::start(conn, &user.id, ua, ip, &refresh_hash, policy)?;
            let mail = super::email::issue_verification(conn, &mail_policy, &user.id, &user.email)?;
            mailer.queue(conn, &mail)?;
            Ok((user, family))
        })
        .await
        .map_err(|e| match e {
            e if e.is_unique_violation() => AuthError::EmailTaken,
            e => AuthError::Db(e),
        })?;
    state.mailer.wake();
    Ok(
        Reply::new(tokens_for(&state, &user, &family, refresh, Vec::new(), Grant::Register).await?)
            .no_store(),
    )
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    pub email: String,
    pub password: String,
}

/// Signs in with email and password: a new session (refresh family).
#[api_v2_operation(summary = "Log in", tags(account))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<LoginIn>,
) -> Result<Reply<TokensOut>, ApiError> {
    let answer = sign_in(&state, &req, body.into_inner()).await;
    state
        .metrics
        .login(answer.as_ref().err().map(|e| e.status()));
    answer
}

async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    body: LoginIn,
) -> Result<Reply<TokensOut>, ApiError> {
    let ip = state.client_ip(req).map(|i| i.to_string());
    let email = Email::parse(&body.email)
        .map(Email::into_string)
        .unwrap_or_else(|_| body.email.trim().to_lowercase());
    let keys = LoginKeys::new(&email, ip.as_deref());

    // Counted before the password is checked (see throttle::admit).
    let (admit_keys, limits) = (keys.clone(), state.login_limits);
    let lookup_email = email.clone();
    let lookup_ip = ip.clone();
    let (locked, user, known) = state
        .db
        .write(move |conn| {
            let user = users::by_email(conn, &lookup_email)?;
            // The account-wide count locks out only addresses that never signed in to
            // this account: a guessing botnet cannot lock its owner out.
            let known = match (&user, &lookup_ip) {
                (Some(user), Some(ip)) => sessions::signed_in_from(conn, &user.id, ip)?,
                _ => false,
            };
            let locked = throttle::admit(conn, &admit_keys.counted(limits, known))?;
            Ok((locked, user, known))
        })
        .await
        .map_err(AuthError::from)?;
    if let Some(secs) = locked {
        return Err(AuthError::Throttled(secs).into());
    }

    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified = state
        .hasher
        .verify(body.password, hash)
        .await
        .map_err(AuthError::from)?;
    let Some(user) = user.filter(|_| verified) else {
        return Err(AuthError::InvalidCredentials.into());
    };
    if user.disabled {
        return Err(AuthError::Disabled.into());
    }

    let refresh = random_secret(REFRESH_PREFIX);
    let refresh_hash = secret_hash(&refresh);
    let ua = user_agent(req);
    let policy = state.refresh;
    let user_id = user.id.clone();
    let (family, identities) = state
        .db
        .write(move |conn| {
            let (clear, uncount) = keys.settled(known);
            throttle::settle(conn, &clear, &uncount)?;
            let family = sessions::start(conn, &user_id, ua, ip, &refresh_hash, policy)?;
            Ok((family, users::providers(conn, &user_id)?))
        })
        .await
        .map_err(AuthError::from)?;
    Ok(
        Reply::new(tokens_for(state, &user, &family, refresh, identities, Grant::Password).await?)
            .no_store(),
    )
}

/// The failed-login limits (`AUTH_LOGIN_*`).
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// One account from one address.
    pub pair: throttle::Limit,
    /// One address, whatever the accounts.
    pub address: throttle::Limit,
    /// One account from every address (binds only addresses it never signed in from).
    pub account: throttle::Limit,
}

/// The throttle keys of one login attempt.
#[derive(Debug, Clone)]
struct LoginKeys {
    pair: String,
    address: Option<String>,
    account: String,
}

impl LoginKeys {
    fn new(email: &str, ip: Option<&str>) -> Self {
        Self {
            pair: format!("login:{email}|{}", ip.unwrap_or("-")),
            address: ip.map(|ip| format!("ip:{ip}")),
            account: format!("account:{email}"),
        }
    }

    /// The keys an attempt counts on; `known`: the address has signed in to this
    /// account before, so the account-wide lock does not apply to it.
    fn counted(&self, limits: LoginLimits, known: bool) -> Vec<(String, throttle::Limit)> {
        let mut keys = vec![(self.pair.clone(), limits.pair)];
        if let Some(address) = &self.address {
            keys.push((address.clone(), limits.address));
        }
        if !known {
            keys.push((self.account.clone(), limits.account));
        }
        keys
    }

    /// After a success: the pair starts afresh; the other keys [`Self::counted`]
    /// counted forget the attempt.
    fn settled(&self, known: bool) -> (Vec<&str>, Vec<&str>) {
        let mut uncount: Vec<&str> = self.address.as_deref().into_iter().collect();
        if !known {
            uncount.push(&self.account);
        }
        (vec![self.pair.as_str()], uncount)
    }
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct RefreshIn {
    pub refresh_token: String,
}

/// Trades a refresh token for a new pair. The presented token is rotated; presenting
/// it again after the grace window revokes the whole session.
#[api_v2_operation(summary = "Refresh tokens", tags(account))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: JsonBody<RefreshIn>,
) -> Result<Reply<TokensOut>, ApiError> {
    let presented = body.into_inner().refresh_token.trim().to_owned();
    let fresh = random_secret(REFRESH_PREFIX);
    let policy = state.refresh;
    let (outcome, identities) = state
        .db
        .write(move |conn| {
            let outcome = sessions::rotate(conn, &presented, &fresh, REFRESH_PREFIX, policy)?;
            let identities = match &outcome {
                Refresh::Issued { user, .. } => users::providers(conn, &user.id)?,
                _ => Vec::new(),
            };
            Ok((outcome, identities))
        })
        .await
        .map_err(AuthError::from)?;
    match outcome {
        Refresh::Issued {
            family,
            user,
            refresh_token,
        } => Ok(Reply::new(
            tokens_for(
                &state,
                &user,
                &family,
                refresh_token,
                identities,
                Grant::Refresh,
            )
            .await?,
        )
        .no_store()),
        Refresh::Refused(reason) => Err(AuthError::InvalidRefreshToken(reason).into()),
        Refresh::Reused => {
            state.metrics.reuse_detected();
            Err(AuthError::RefreshReused.into())
        }
    }
}

/// Ends the session the refresh token belongs to (if it is the caller's).
#[api_v2_operation(summary = "Log out of this session", tags(account))]
pub async fn logout(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody<RefreshIn>,
) -> Result<NoContent, ApiError> {
    let hash = secret_hash(body.refresh_token.trim());
    let user_id = principal.subject().to_owned();
    state
        .db
        .write(move |conn| {
            if let Some(family) = sessions::family_of(conn, &hash)? {
                sessions::revoke(conn, &family.id, Some(&user_id), "logout")?;
            }
            Ok(())
        })
        .await
        .map_err(AuthError::from)?;
    Ok(NoContent)
}

/// Ends every session of the caller. Access tokens already issued lapse by themselves.
#[api_v2_operation(summary = "Log out everywhere", tags(account))]
pub async fn logout_all(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<NoContent, ApiError> {
    let user_id = principal.subject().to_owned();
    state
        .db
        .write(move |conn| sessions::revoke_all(conn, &user_id, None, "logout-all"))
        .await
        .map_err(AuthError::from)?;
    Ok(NoContent)
}
