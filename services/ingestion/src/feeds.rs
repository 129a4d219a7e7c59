//! Feed subscriptions: a poll fetches the feed conditionally (ETag/Last-Modified),
//! turns each entry not seen before into one content item, and records it so it is
//! never ingested twice. Polls run as queue jobs; a scheduler in worker processes
//! queues them when feeds fall due.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::content_client::NewItem;
use crate::error::JobError;
use crate::formats::feed;
use crate::store::{feeds, jobs};
use crate::AppState;

/// The input of a feed-poll job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollInput {
    pub feed_id: String,
}

/// Polls one feed; returns the ids of the items made.
pub async fn poll(
    state: &AppState,
    feed_id: &str,
    request_id: Option<&str>,
) -> Result<Vec<String>, JobError> {
    let id = feed_id.to_owned();
    let Some(feed) = state
        .db
        .run(move |conn| feeds::by_id(conn, &id))
        .await
        .map_err(internal)?
    else {
        return Ok(Vec::new()); // unsubscribed meanwhile
    };
    let interval = TimeDelta::seconds(state.settings.feed_poll_secs.max(1));
    let fetched = state
        .fetcher
        .fetch_feed(
            &feed.url,
            feed.etag.as_deref(),
            feed.last_modified.as_deref(),
            state.settings.feed_max_bytes,
        )
        .await;
    let outcome = match fetched {
        Err(e) => Err(e.to_string()),
        Ok(None) => Ok((None, Vec::new(), None, None)),
        Ok(Some(body)) => {
            let bytes = body.bytes;
            match tokio::task::spawn_blocking(move || feed::parse(&bytes))
                .await
                .map_err(internal)?
            {
                Ok((title, entries)) => Ok((title, entries, body.etag, body.last_modified)),
                Err(e) => Err(e),
            }
        }
    };
    let (title, entries, etag, last_modified) = match outcome {
        Ok(parts) => parts,
        Err(error) => {
            let (id, message) = (feed.id.clone(), error.clone());
            state
                .db
                .write(move |conn| feeds::poll_failed(conn, &id, &message, interval))
                .await
                .map_err(internal)?;
            return Err(JobError::Feed(error));
        }
    };
    let mut made = Vec::new();
    // Oldest first, so items are created in the feed's order.
    for entry in entries.into_iter().rev() {
        let (fid, key) = (feed.id.clone(), entry.key.clone());
        if state
            .db
            .run(move |conn| feeds::has_entry(conn, &fid, &key))
            .await
            .map_err(internal)?
        {
            continue;
        }
        let body = if entry.text.is_empty() {
            entry.title.clone()
        } else {
            entry.text.clone()
        };
        let item = NewItem {
            chunks: peermesh_chunking::split_with_overlap(
                &body,
                state.settings.chunk_chars,
                state.settings.chunk_overlap,
            ),
            title: entry.title.clone(),
            body,
            kind: "article".into(),
            tags: Vec::new(),
            source: json!({"type": "feed", "url": entry.link}),
            metadata: json!({"format": "feed", "feed": feed.url, "feed_title": title.clone().or(feed.title.clone()), "published": entry.published}),
        };
        // The same entry always gets the same key: a retried poll replays, never duplicates.
        let key = format!(
            "feed:{}:{:x}",
            feed.id,
            Sha256::digest(entry.key.as_bytes())
        );
        let content_id = state
            .content
            .create_item(&feed.owner_id, &item, &key, request_id)
            .await?;
        let (fid, ekey, cid) = (feed.id.clone(), entry.key.clone(), content_id.clone());
        state
            .db
            .write(
                move |conn| match feeds::add_entry(conn, &fid, &ekey, &cid) {
                    Err(e) if e.is_unique_violation() => Ok(()),
                    other => other,
                },
            )
            .await
            .map_err(internal)?;
        made.push(content_id);
    }
    let fid = feed.id.clone();
    state
        .db
        .write(move |conn| {
            feeds::polled(
                conn,
                &fid,
                title.as_deref(),
                etag.as_deref(),
                last_modified.as_deref(),
            )
        })
        .await
        .map_err(internal)?;
    Ok(made)
}

fn internal(e: impl std::fmt::Display) -> JobError {
    JobError::Internal(e.to_string())
}

/// Queues a poll of `feed` now.
pub fn poll_job(feed: &feeds::Feed, request_id: Option<String>) -> jobs::Job {
    let input = serde_json::to_string(&PollInput {
        feed_id: feed.id.clone(),
    })
    .unwrap_or_default();
    // One attempt: a failing feed is retried by its own (backed-off) schedule.
    jobs::Job::queued(&feed.owner_id, "feed", input, 1, request_id)
}

/// Every `INGEST_FEED_TICK_MS`, queues polls of the feeds that are due, until the
/// process drains.
pub async fn schedule(state: AppState, readiness: peermesh_common::health::Readiness) {
    let interval = TimeDelta::seconds(state.settings.feed_poll_secs.max(1));
    while !readiness.is_draining() {
        let queued = state
            .db
            .write(move |conn| {
                let due = feeds::take_due(conn, interval, 50)?;
                for feed in &due {
                    jobs::insert(conn, &poll_job(feed, None))?;
                }
                Ok(due.len())
            })
            .await;
        if let Err(e) = queued {
            slog::warn!(state.logger, "scheduling feed polls failed"; "error" => e.to_string());
        }
        tokio::time::sleep(std::time::Duration::from_millis(
            state.settings.feed_tick_ms.max(50),
        ))
        .await;
    }
}
