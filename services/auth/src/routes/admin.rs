//! Administration: service clients and users. Every handler takes `AdminOnly`.

use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::auth::{AdminOnly, SCOPE_DELETE_ACCOUNTS};
use peermesh_common::http::JsonBody;
use peermesh_common::pagination::PageRequest;
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};

use super::UserOut;
use crate::domain::{parse_roles, parse_scope};
use crate::error::AuthError;
use crate::store::clients::{self, ServiceClient};
use crate::store::{rfc3339, sessions, users};
use crate::tokens::{random_secret, secret_hash};
use crate::AppState;
use peermesh_common::reply::{Code, Reply};

const MAX_SCOPES: usize = 20;

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct ClientIn {
    pub name: String,
    /// Scopes the client may ask for, e.g. `content:write`.
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ClientOut {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ClientCreatedOut {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    /// Shown once; only a hash is kept.
    pub client_secret: String,
}

fn client_out(c: &ServiceClient) -> ClientOut {
    ClientOut {
        id: c.id.clone(),
        name: c.name.clone(),
        scopes: c.scope_list(),
        created_at: rfc3339(c.created_at),
    }
}

/// Checks a client's name and scopes; returns the stored scope string.
pub fn check_client(name: &str, scopes: &[String]) -> Result<String, AuthError> {
    let mut errors = Vec::new();
    let name_chars = name.trim().chars().count();
    if name_chars == 0 || name_chars > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    if scopes.is_empty() || scopes.len() > MAX_SCOPES {
        errors.push(FieldError::new(
            "scopes",
            format!("give 1 to {MAX_SCOPES} scopes"),
        ));
    }
    let mut valid: Vec<&str> = Vec::new();
    for scope in scopes {
        match parse_scope(scope) {
            // Erasing any account's data is for auth's own token only.
            Ok(SCOPE_DELETE_ACCOUNTS) => errors.push(FieldError::new(
                "scopes",
                format!(
                    "{SCOPE_DELETE_ACCOUNTS} belongs to the auth service itself; no client gets it"
                ),
            )),
            Ok(s) => valid.push(s),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(AuthError::Invalid(errors));
    }
    valid.sort_unstable();
    valid.dedup();
    Ok(valid.join(" "))
}

/// A new client with a fresh secret; the caller shows the secret once.
pub fn new_client(
    name: &str,
    scopes: String,
    created_by: Option<String>,
) -> (ServiceClient, String) {
    let secret = random_secret("pms_");
    let client = ServiceClient {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.trim().to_owned(),
        secret_hash: secret_hash(&secret),
        scopes,
        created_by,
        created_at: crate::store::now(),
        revoked_at: None,
    };
    (client, secret)
}

#[api_v2_operation(summary = "Create a service client", tags(admin))]
pub async fn create_client(
    state: web::Data<AppState>,
    admin: AdminOnly,
    body: JsonBody<ClientIn>,
) -> Result<Reply<ClientCreatedOut, Code<201>>, ApiError> {
    let scopes = check_client(&body.name, &body.scopes)?;
    // Acting for users is beyond any admin's own rights (an admin writes only their
    // own items): only the operator grants it, through AUTH_CLIENTS_FILE or the CLI.
    if scopes
        .split(' ')
        .any(|s| s == super::oauth_token::ACT_AS_SCOPE)
    {
        return Err(AuthError::Invalid(vec![FieldError::new(
            "scopes",
            format!(
                "{} is granted only by the operator (AUTH_CLIENTS_FILE or `peermesh-auth clients create`)",
                super::oauth_token::ACT_AS_SCOPE
            ),
        )])
        .into());
    }
    let (client, secret) = new_client(&body.name, scopes, Some(admin.0.subject().to_owned()));
    let out = client_out(&client);
    state
        .db
        .write(move |conn| clients::insert(conn, &client))
        .await
        .map_err(AuthError::from)?;
    Ok(Reply::new(ClientCreatedOut {
        id: out.id,
        name: out.name,
        scopes: out.scopes,
        created_at: out.created_at,
        client_secret: secret,
    })
    .no_store())
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ClientsOut {
    pub items: Vec<ClientOut>,
}

#[api_v2_operation(summary = "List service clients", tags(admin))]
pub async fn list_clients(
    state: web::Data<AppState>,
    _admin: AdminOnly,
) -> Result<web::Json<ClientsOut>, ApiError> {
    let all = state
        .db
        .run(clients::list_active)
        .await
        .map_err(AuthError::from)?;
    Ok(web::Json(ClientsOut {
        items: all.iter().map(client_out).collect(),
    }))
}

#[api_v2_operation(summary = "Revoke a service client", tags(admin))]
pub async fn delete_client(
    state: web::Data<AppState>,
    _admin: AdminOnly,
    id: web::Path<String>,
) -> Result<NoContent, ApiError> {
    let id = id.into_inner();
    let revoked = state
        .db
        .write(move |conn| clients::revoke(conn, &id))
        .await
        .map_err(AuthError::from)?;
    if !revoked {
        return Err(AuthError::NotFound.into());
    }
    Ok(NoContent)
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1..=100, default 20.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct UsersPage {
    pub items: Vec<UserOut>,
    pub next_cursor: Option<String>,
}

#[api_v2_operation(summary = "List users", tags(admin))]
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: AdminOnly,
    query: web::Query<PageQuery>,
) -> Result<web::Json<UsersPage>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let request = page.clone();
    let (mut users_page, mut providers) = state
        .db
        .run(move |conn| {
            let rows = users::page(conn, request.fetch(), request.after.as_deref())?;
            let ids: Vec<String> = rows.iter().map(|u| u.id.clone()).collect();
            Ok((rows, users::providers_of(conn, &ids)?))
        })
        .await
        .map_err(AuthError::from)?;
    let next_cursor = page.finish(&mut users_page, |u| &u.id);
    Ok(web::Json(UsersPage {
        items: users_page
            .iter()
            .map(|u| UserOut::new(u, providers.remove(&u.id).unwrap_or_default()))
            .collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// The complete new set; `user` is always kept.
    pub roles: Option<Vec<String>>,
    /// A disabled user cannot sign in or refresh; their sessions end at once.
    pub disabled: Option<bool>,
}

#[api_v2_operation(summary = "Change a user's roles or disable them", tags(admin))]
pub async fn patch_user(
    state: web::Data<AppState>,
    admin: AdminOnly,
    id: web::Path<String>,
    body: JsonBody<UserPatch>,
) -> Result<web::Json<UserOut>, ApiError> {
    let id = id.into_inner();
    let body = body.into_inner();
    let roles = body
        .roles
        .as_deref()
        .map(parse_roles)
        .transpose()
        .map_err(|e| AuthError::Invalid(vec![e]))?;
    if id == admin.0.subject() {
        // An administrator cannot lock themselves out by accident.
        if body.disabled == Some(true) {
            return Err(AuthError::field("disabled", "you cannot disable yourself").into());
        }
        if roles.as_deref().is_some_and(|r| !r.contains("admin")) {
            return Err(AuthError::field("roles", "you cannot remove your own admin role").into());
        }
    }
    let (user, identities) = state
        .db
        .write(move |conn| {
            if users::by_id(conn, &id)?.is_none() {
                return Ok(None);
            }
            if let Some(roles) = &roles {
                users::set_roles(conn, &id, roles)?;
            }
            if let Some(disabled) = body.disabled {
                users::set_disabled(conn, &id, disabled)?;
                if disabled {
                    sessions::revoke_all(conn, &id, None, "user disabled")?;
                }
            }
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
