//! Feed subscriptions: `POST /feeds`, `GET /feeds`, `GET|DELETE /feeds/{id}`,
//! `POST /feeds/{id}/refresh`.

use actix_web::HttpRequest;
use chrono::TimeDelta;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::auth::Principal;
use peermesh_common::http::rfc3339;
use peermesh_common::http::JsonBody;
use peermesh_common::reply::{Accepted, Created, Reply};
use peermesh_common::ApiError;
use serde::{Deserialize, Serialize};

use super::delegating::Delegating;
use super::jobs::JobOut;
use crate::error::IngestError;
use crate::fetch::FetchError;
use crate::store::feeds::{self, Feed};
use crate::store::jobs;
use crate::{feeds as polling, AppState, PREFIX};

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct FeedOut {
    pub id: String,
    pub url: String,
    pub title: Option<String>,
    /// Entries ingested so far.
    pub entries: i64,
    /// Failed polls in a row; the next poll is pushed back while it grows.
    pub failures: i32,
    pub last_error: Option<String>,
    pub last_polled_at: Option<String>,
    pub next_poll_at: String,
    pub created_at: String,
}

fn out(feed: &Feed, entries: i64) -> FeedOut {
    FeedOut {
        id: feed.id.clone(),
        url: feed.url.clone(),
        title: feed.title.clone(),
        entries,
        failures: feed.failures,
        last_error: feed.last_error.clone(),
        last_polled_at: feed.last_polled_at.map(rfc3339),
        next_poll_at: rfc3339(feed.next_poll_at),
        created_at: rfc3339(feed.created_at),
    }
}

fn feed_id(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::not_found("no such feed"))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct FeedIn {
    /// An RSS, Atom or JSON Feed URL on a public site.
    pub url: String,
    pub title: Option<String>,
}

/// Subscribes to a feed: it is fetched once to check it is a feed, then polled in the
/// background (the first poll is queued at once). At most `INGEST_FEEDS_PER_USER`.
#[api_v2_operation(summary = "Subscribe to a feed", tags(feeds))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Delegating,
    body: JsonBody<FeedIn>,
) -> Result<Created<FeedOut>, ApiError> {
    let body = body.into_inner();
    let owner = principal.subject().to_owned();
    if body.url.chars().count() > 2048 {
        return Err(ApiError::invalid_field(
            "url",
            "must be at most 2048 characters",
        ));
    }
    let url = state
        .fetcher
        .check(&body.url)
        .map_err(|e| ApiError::invalid_field("url", e.to_string()).with_code("url_refused"))?
        .to_string();
    let o = owner.clone();
    if state.db.run(move |conn| feeds::count(conn, &o)).await? >= state.settings.feeds_per_user {
        return Err(ApiError::conflict(
            "feed_limit",
            format!("at most {} feeds per user", state.settings.feeds_per_user),
        ));
    }
    let fetched = state
        .fetcher
        .fetch_feed(&url, None, None, state.settings.max_bytes)
        .await
        .map_err(|e| match e {
            FetchError::Refused(m) => ApiError::invalid_field("url", m).with_code("url_refused"),
            FetchError::TooLarge(max) => {
                ApiError::payload_too_large(format!("the feed is larger than {max} bytes"))
            }
            FetchError::Failed(m) => ApiError::invalid_field("url", m).with_code("fetch_failed"),
            FetchError::Storage(e) => ApiError::internal(e),
        })?
        .ok_or_else(|| {
            ApiError::invalid_field("url", "the site answered 304 to an unconditional request")
        })?;
    let bytes = fetched.bytes;
    let (found_title, _) = tokio::task::spawn_blocking(move || crate::formats::feed::parse(&bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(|m| ApiError::invalid_field("url", m).with_code("not_a_feed"))?;
    let title = body
        .title
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .or(found_title);
    let now = jobs::now();
    let feed = Feed {
        id: uuid::Uuid::now_v7().to_string(),
        owner_id: owner,
        url,
        title: title.map(|t| t.chars().take(500).collect()),
        etag: None,
        last_modified: None,
        failures: 0,
        last_error: None,
        last_polled_at: None,
        next_poll_at: now + chrono::TimeDelta::seconds(state.settings.feed_poll_secs.max(1)),
        created_at: now,
    };
    let (record, job) = (
        feed.clone(),
        polling::poll_job(&feed, peermesh_common::middleware::request_id_of(&req)),
    );
    state
        .db
        .write(move |conn| {
            feeds::insert(conn, &record)?;
            jobs::insert(conn, &job)
        })
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                ApiError::conflict("feed_exists", "you already follow this feed")
            } else {
                e.into()
            }
        })?;
    let location = format!("{PREFIX}/feeds/{}", feed.id);
    Ok(Reply::new(out(&feed, 0)).location(location))
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct FeedsOut {
    pub items: Vec<FeedOut>,
}

#[api_v2_operation(summary = "List feed subscriptions", tags(feeds))]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<FeedsOut>, ApiError> {
    let owner = principal.subject().to_owned();
    let items = state
        .db
        .run(move |conn| {
            let mut items = Vec::new();
            for feed in feeds::list(conn, &owner)? {
                let entries = feeds::entry_count(conn, &feed.id)?;
                items.push(out(&feed, entries));
            }
            Ok(items)
        })
        .await?;
    Ok(web::Json(FeedsOut { items }))
}

async fn load(state: &AppState, owner: &str, id: &str) -> Result<(Feed, i64), ApiError> {
    let (owner, id) = (owner.to_owned(), id.to_owned());
    state
        .db
        .run(move |conn| match feeds::get(conn, &owner, &id)? {
            Some(feed) => {
                let entries = feeds::entry_count(conn, &feed.id)?;
                Ok(Some((feed, entries)))
            }
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such feed"))
}

#[api_v2_operation(summary = "Get a feed subscription", tags(feeds))]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<web::Json<FeedOut>, ApiError> {
    let id = feed_id(&path)?;
    let (feed, entries) = load(&state, principal.subject(), &id).await?;
    Ok(web::Json(out(&feed, entries)))
}

/// Unsubscribes; the items already made stay.
#[api_v2_operation(summary = "Unsubscribe from a feed", tags(feeds))]
pub async fn delete(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<NoContent, ApiError> {
    let id = feed_id(&path)?;
    let owner = principal.subject().to_owned();
    if state
        .db
        .write(move |conn| feeds::delete(conn, &owner, &id))
        .await?
    {
        Ok(NoContent)
    } else {
        Err(ApiError::not_found("no such feed"))
    }
}

/// Queues a poll now: 202 with the job.
#[api_v2_operation(summary = "Poll a feed now", tags(feeds))]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Delegating,
    path: web::Path<String>,
) -> Result<Accepted<JobOut>, ApiError> {
    let id = feed_id(&path)?;
    let (feed, _) = load(&state, principal.subject(), &id).await?;
    let job = polling::poll_job(&feed, peermesh_common::middleware::request_id_of(&req));
    let record = job.clone();
    let interval = TimeDelta::seconds(state.settings.feed_refresh_interval_secs.max(0));
    let cap = state.settings.active_jobs_per_user;
    state
        .db
        .try_write(move |conn| {
            let active = jobs::active_jobs(conn, &record.owner_id)?;
            if active >= cap {
                return Err(IngestError::TooManyJobs(active));
            }
            if let Some(wait) = feeds::request_refresh(conn, &record.owner_id, &feed.id, interval)?
            {
                return Err(IngestError::RefreshTooSoon(wait));
            }
            Ok(jobs::insert(conn, &record)?)
        })
        .await?;
    Ok(super::files::accepted(JobOut::from(&job)))
}
