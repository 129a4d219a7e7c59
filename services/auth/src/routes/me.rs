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
use crate::store::{rfc3339, sessions, throttle, users};
use crate::AppState;

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
    // Guessing the current password with a stolen access token is throttled like a
    // login: counted before the check, at most the limit per window.
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
        .verify(body.current_password, user.password_hash.clone())
        .await
        .map_err(AuthError::from)?
    {
        return Err(AuthError::WrongCurrentPassword.into());
    }
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
