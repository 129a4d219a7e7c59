//! `POST /content/webhooks`, `GET /content/webhooks`, `DELETE /content/webhooks/{id}`:
//! the caller's subscriptions to their change feed (see `crate::webhooks`).

use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::http::JsonBody;
use peermesh_common::reply::{Code, Reply};
use peermesh_common::ApiError;
use serde::{Deserialize, Serialize};

use crate::caller::Caller;
use crate::routes::rfc3339;
use crate::store::webhooks::{self as store, Webhook};
use crate::{AppState, PREFIX};

/// Subscriptions per owner at most.
pub const MAX_WEBHOOKS: usize = 10;

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    /// Where the changes are POSTed (http or https; a public address).
    pub url: String,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct WebhookOut {
    pub id: String,
    pub url: String,
    /// The last change delivered.
    pub cursor: String,
    /// Failed deliveries in a row (they are retried).
    pub failures: i32,
    pub last_error: Option<String>,
    pub created_at: String,
    /// Signs each delivery; shown only in the answer that creates the subscription.
    pub secret: Option<String>,
}

impl WebhookOut {
    fn new(hook: Webhook, with_secret: bool) -> Self {
        Self {
            secret: with_secret.then_some(hook.secret),
            id: hook.id,
            url: hook.url,
            cursor: hook.cursor.to_string(),
            failures: hook.failures,
            last_error: hook.last_error,
            created_at: rfc3339(hook.created_at),
        }
    }
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct WebhooksOut {
    pub items: Vec<WebhookOut>,
}

/// Subscribes a URL to the caller's changes from now on (201, with the secret that
/// signs every delivery; it is not shown again).
#[api_v2_operation(summary = "Subscribe a webhook to the change feed", tags(changes))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<WebhookIn>,
) -> Result<Reply<WebhookOut, Code<201>>, ApiError> {
    let owner = caller.writable_owner()?;
    let raw = body.into_inner().url;
    if raw.chars().count() > 2048 {
        return Err(ApiError::invalid_field(
            "url",
            "must be at most 2048 characters",
        ));
    }
    let url = peermesh_common::outbound::check_url(&state.webhook_policy, &raw)
        .map_err(|m| ApiError::invalid_field("url", m))?;
    let secret = format!(
        "whsec_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = peermesh_db::now();
    let result = state
        .db
        .write(move |conn| {
            if store::list(conn, &owner)?.len() >= MAX_WEBHOOKS {
                return Ok(None);
            }
            let hook = Webhook {
                id: uuid::Uuid::now_v7().to_string(),
                cursor: store::owner_latest(conn, &owner)?,
                owner_id: owner,
                url: url.to_string(),
                secret,
                failures: 0,
                next_attempt_at: now,
                lease_until: None,
                last_error: None,
                created_at: now,
            };
            store::insert(conn, &hook)?;
            Ok(Some(hook))
        })
        .await?;
    let hook = result.ok_or_else(|| {
        ApiError::conflict(
            "webhook_limit",
            format!("an account may have at most {MAX_WEBHOOKS} webhooks"),
        )
    })?;
    let location = format!("{PREFIX}/webhooks/{}", hook.id);
    Ok(Reply::new(WebhookOut::new(hook, true)).location(location))
}

#[api_v2_operation(summary = "The caller's webhooks", tags(changes))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<WebhooksOut>, ApiError> {
    let owner = caller.owner.clone();
    let hooks = state.db.read(move |conn| store::list(conn, &owner)).await?;
    Ok(web::Json(WebhooksOut {
        items: hooks
            .into_iter()
            .map(|h| WebhookOut::new(h, false))
            .collect(),
    }))
}

#[api_v2_operation(summary = "Remove a webhook", tags(changes))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<NoContent, ApiError> {
    let owner = caller.writable_owner()?;
    let id = path.into_inner();
    let gone = state
        .db
        .write(move |conn| store::delete(conn, &owner, &id))
        .await?;
    if !gone {
        return Err(ApiError::not_found("no such webhook"));
    }
    Ok(NoContent)
}
