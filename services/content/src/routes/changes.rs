//! `GET /content/changes` and `GET /content/changes/stream`: the caller's change feed,
//! every create, update and delete of their items in the order they were made, from a
//! cursor on — as pages, or as Server-Sent Events that follow new changes as they
//! happen (including the items the ingestion service writes for the caller).

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::ApiError;
use serde::{Deserialize, Serialize};

use crate::caller::Caller;
use crate::routes::{channel_body, rfc3339, Streamed};
use crate::store::changes::{self, Change};
use crate::AppState;

/// Changes per page at most.
const MAX_LIMIT: i64 = 1000;
/// A stream's comment line when nothing happened for this long (keeps proxies open).
const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// Where to go on from: the `next_cursor` of an earlier answer, or `0` (the
    /// default) for the oldest change kept.
    pub since: Option<String>,
    /// 1..1000, default 100.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ChangeOut {
    /// The feed's position just after this change.
    pub cursor: String,
    pub item_id: String,
    /// `created`, `updated` or `deleted`.
    pub op: String,
    /// The item's version after the change (its ETag's number); the last version for
    /// a deletion.
    pub version: i64,
    pub changed_at: String,
}

impl From<Change> for ChangeOut {
    fn from(c: Change) -> Self {
        Self {
            cursor: c.seq.to_string(),
            item_id: c.item_id,
            op: c.op,
            version: c.version,
            changed_at: rfc3339(c.changed_at),
        }
    }
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ChangesOut {
    pub items: Vec<ChangeOut>,
    /// Where the next read goes on from (the same cursor when nothing was new).
    pub next_cursor: String,
}

/// The cursor a client sent: a change's position, or 0.
fn cursor(raw: Option<&str>) -> Result<i32, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(0),
        Some(raw) => raw
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::invalid_field("since", "must be a cursor from this feed")),
    }
}

/// 410 when changes after `since` were removed already (older than the retention):
/// the client reads its items again and follows the feed from `0`.
async fn check_kept(state: &AppState, since: i32) -> Result<(), ApiError> {
    if since == 0 {
        return Ok(());
    }
    let oldest = state.db.read(changes::oldest).await?;
    if oldest.is_some_and(|oldest| since < oldest - 1) {
        return Err(ApiError::new(
            StatusCode::GONE,
            "cursor_expired",
            "changes after this cursor are no longer kept: read the items again and follow the feed from 0",
        ));
    }
    Ok(())
}

/// The caller's changes after `since`, oldest first.
#[api_v2_operation(summary = "The change feed", tags(changes))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ChangesQuery>,
) -> Result<web::Json<ChangesOut>, ApiError> {
    let since = cursor(query.since.as_deref())?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be 1..{MAX_LIMIT}"),
        ));
    }
    check_kept(&state, since).await?;
    let owner = caller.owner.clone();
    let rows = state
        .db
        .read(move |conn| changes::after(conn, &owner, since, limit))
        .await?;
    let next = rows.last().map_or(since, |c| c.seq);
    Ok(web::Json(ChangesOut {
        items: rows.into_iter().map(ChangeOut::from).collect(),
        next_cursor: next.to_string(),
    }))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// As for `GET /changes`; a `Last-Event-ID` header (a reconnecting browser's)
    /// takes its place.
    pub since: Option<String>,
}

/// The caller's changes after `since` as Server-Sent Events (`id:` the cursor,
/// `event: change`, `data:` the change as JSON), then each new one as it happens, with
/// a comment line every 15 s when nothing does. The stream ends after
/// `CONTENT_CHANGES_STREAM_SECS`; browsers reconnect by themselves and go on from
/// the last event's id.
#[api_v2_operation(summary = "Follow the change feed (Server-Sent Events)", tags(changes))]
pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<StreamQuery>,
) -> Result<Streamed, ApiError> {
    let resumed = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let since = cursor(resumed.as_deref().or(query.since.as_deref()))?;
    check_kept(&state, since).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(16);
    let (db, owner, mut latest) = (
        state.db.clone(),
        caller.owner.clone(),
        state.changes.clone(),
    );
    let lifetime = Duration::from_secs(state.feed.changes_stream_secs.max(1));
    actix_web::rt::spawn(async move {
        let ends = Instant::now() + lifetime;
        let send = |text: String| tx.send(Ok(web::Bytes::from(text)));
        if send("retry: 2000\n\n".into()).await.is_err() {
            return;
        }
        let mut position = since;
        loop {
            latest.borrow_and_update();
            loop {
                let who = owner.clone();
                let rows = match db
                    .read(move |conn| changes::after(conn, &who, position, 100))
                    .await
                {
                    Ok(rows) => rows,
                    Err(_) => return, // the client reconnects and goes on
                };
                let full = rows.len() == 100;
                for change in rows {
                    position = change.seq;
                    let data = serde_json::to_string(&ChangeOut::from(change)).unwrap_or_default();
                    if send(format!("id: {position}\nevent: change\ndata: {data}\n\n"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if !full {
                    break;
                }
            }
            let left = ends.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match tokio::time::timeout(left.min(HEARTBEAT), latest.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    if send(": keep-alive\n\n".into()).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let body = channel_body(rx);
    Ok(Streamed(
        HttpResponse::Ok()
            .content_type("text/event-stream")
            // nginx passes each event on at once, whatever the route's buffering.
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(body),
    ))
}
