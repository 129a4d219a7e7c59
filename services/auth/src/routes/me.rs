//! The signed-in user's own account and sessions.

use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::auth::Principal;
use peermesh_common::http::JsonBody;
use peermesh_common::ApiError;
use serde::{Deserialize, Serialize};

use super::{current_user, UserOut};
use crate::domain::parse_display_name;
use crate::error::AuthError;
use crate::password::check_new_password;
use crate::store::{self, mail_outbox, rfc3339, sessions, throttle, users};
use crate::AppState;
use peermesh_common::reply::{Code, Reply};

async fn user_out(state: &AppState, user: &users::User) -> Result<UserOut, ApiError> {
    let id = user.id.clone();
    let identities = state
        .db
        .read(move |conn| users::providers(conn, &id))
        .await
        .map_err(AuthError::from)?;
    Ok(UserOut::new(user, identities))
}

#[api_v2_operation(summary = "The signed-in user", tags(me))]
pub async fn get_me(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<UserOut>, ApiError> {
    let user = current_user(&state, principal.subject()).await?;
    Ok(web::Json(user_out(&state, &user).await?))
}

/// Only the display name can be changed here; roles are an administrator's business.
#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    /// `null` clears it.
    pub display_name: Option<String>,
}

#[api_v2_operation(summary = "Change the signed-in user's profile", tags(me))]
pub async fn patch_me(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody<MePatch>,
) -> Result<web::Json<UserOut>, ApiError> {
    let name = match body.into_inner().display_name {
        Some(name) => Some(parse_display_name(&name).map_err(|e| AuthError::Invalid(vec![e]))?),
        None => None,
    };
    let id = principal.subject().to_owned();
    let (user, identities) = state
        .db
        .write(move |conn| {
            users::set_display_name(conn, &id, name)?;
            let Some(user) = users::by_id(conn, &id)? else {
                return Ok(None);
            };
            let identities = users::providers(conn, &id)?;
            Ok(Some((user, identities)))
        })
        .await
        .map_err(AuthError::from)?
        .ok_or(AuthError::NotFound)?;
    Ok(web::Json(UserOut::new(&user, identities)))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeIn {
    pub current_password: String,
    /// 8 to 128 characters.
    pub new_password: String,
}

/// Changes the password; every other session is signed out.
#[api_v2_operation(summary = "Change the password", tags(me))]
pub async fn change_password(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody<PasswordChangeIn>,
) -> Result<NoContent, ApiError> {
    let body = body.into_inner();
    check_new_password("new_password", &body.new_password)
        .map_err(|e| AuthError::Invalid(vec![e]))?;
    let user = current_user(&state, principal.subject()).await?;
    let key = confirm_password(&state, &user, body.current_password).await?;
    let hash = state
        .hasher
        .hash(body.new_password)
        .await
        .map_err(AuthError::from)?;
    let keep = principal.claims.sid.clone();
    state
        .db
        .write(move |conn| {
            throttle::settle(conn, &[&key], &[])?;
            users::set_password_hash(conn, &user.id, &hash)?;
            sessions::revoke_all(conn, &user.id, keep.as_deref(), "password changed")?;
            Ok(())
        })
        .await
        .map_err(AuthError::from)?;
    Ok(NoContent)
}

/// Checks the account's password before a change only its owner may make. Guessing
/// it with a stolen access token is throttled like a login: counted before the check,
/// at most the limit per window. Returns the throttle key, to settle once the change
/// is made.
async fn confirm_password(
    state: &AppState,
    user: &users::User,
    password: String,
) -> Result<String, ApiError> {
    let key = format!("password-change:{}", user.id);
    let (admitted, limit) = (key.clone(), state.login_limits.pair);
    let locked = state
        .db
        .write(move |conn| throttle::admit(conn, &[(admitted, limit)]))
        .await
        .map_err(AuthError::from)?;
    if let Some(secs) = locked {
        return Err(AuthError::Throttled(secs).into());
    }
    if !state
        .hasher
        .verify(password, user.password_hash.clone())
        .await
        .map_err(AuthError::from)?
    {
        return Err(AuthError::WrongCurrentPassword.into());
    }
    Ok(key)
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct AccountDeleteIn {
    /// The account's password. Without it, the session of the access token must have
    /// signed in within the last 5 minutes (`AUTH_REAUTH_WINDOW_SECS`): how accounts
    /// without a password (Google, GitHub) confirm.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct AccountDeletedOut {
    /// The deleted account.
    pub id: String,
    /// The services still to erase its data there; each is asked until it confirms.
    pub pending: Vec<String>,
}

/// Deletes the signed-in user's account: at once here (sessions, identities, tokens;
/// the access tokens already issued are refused everywhere), and the data kept by the
/// other services (items, links, vectors, jobs, feeds, stored files) by requests to
/// them that are retried until each confirms.
#[api_v2_operation(summary = "Delete the account", tags(me))]
pub async fn delete_me(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody<AccountDeleteIn>,
) -> Result<Reply<AccountDeletedOut, Code<202>>, ApiError> {
    if principal.claims.has_role("service") {
        return Err(
            ApiError::forbidden("a service client has no account to delete")
                .with_code("user_token_required"),
        );
    }
    let user = current_user(&state, principal.subject()).await?;
    let settled = match body.into_inner().password {
        Some(password) => Some(confirm_password(&state, &user, password).await?),
        None => {
            let sid = principal.claims.sid.clone().unwrap_or_default();
            let signed_in = state
                .db
                .read(move |conn| sessions::signed_in_at(conn, &sid))
                .await
                .map_err(AuthError::from)?;
            if signed_in.is_none_or(|at| store::now() - at > state.reauth_window) {
                return Err(AuthError::ReauthenticationRequired.into());
            }
            None
        }
    };
    let eraser = state.eraser.clone();
    let (id, email) = (user.id.clone(), user.email.clone());
    let pending = state
        .db
        .write(move |conn| {
            if let Some(key) = settled {
                throttle::settle(conn, &[&key], &[])?;
            }
            users::delete(conn, &id)?;
            mail_outbox::remove_to(conn, &email)?;
            peermesh_db::closed_accounts::record(conn, &id)?;
            eraser.queue(conn, &id)
        })
        .await
        .map_err(AuthError::from)?;
    state.closed.close(user.id.clone());
    state.eraser.wake();
    slog::info!(state.logger, "account deleted"; "user_id" => &user.id, "pending" => pending.join(","));
    Ok(Reply::new(AccountDeletedOut {
        id: user.id,
        pending,
    })
    .no_store())
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct SessionOut {
    pub id: String,
    pub created_at: String,
    pub last_used_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The session this access token belongs to.
    pub current: bool,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct SessionsOut {
    pub items: Vec<SessionOut>,
}

#[api_v2_operation(summary = "Active sessions", tags(me))]
pub async fn list_sessions(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<SessionsOut>, ApiError> {
    let user_id = principal.subject().to_owned();
    let families = state
        .db
        .run(move |conn| sessions::active(conn, &user_id))
        .await
        .map_err(AuthError::from)?;
    let current = principal.claims.sid.as_deref();
    let items = families
        .into_iter()
        .map(|f| SessionOut {
            current: current == Some(f.id.as_str()),
            id: f.id,
            created_at: rfc3339(f.created_at),
            last_used_at: rfc3339(f.last_used_at),
            user_agent: f.user_agent,
            ip: f.ip,
        })
        .collect();
    Ok(web::Json(SessionsOut { items }))
}

#[api_v2_operation(summary = "Revoke a session", tags(me))]
pub async fn revoke_session(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<NoContent, ApiError> {
    let user_id = principal.subject().to_owned();
    let id = id.into_inner();
    let revoked = state
        .db
        .write(move |conn| sessions::revoke(conn, &id, Some(&user_id), "revoked by user"))
        .await
        .map_err(AuthError::from)?;
    if !revoked {
        return Err(AuthError::NotFound.into());
    }
    Ok(NoContent)
}
