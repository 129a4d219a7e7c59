//! Feed subscriptions and the entries already ingested from them.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};
use peermesh_db::{DbConnection, DbError};

use super::jobs::now;
use crate::schema::{feed_entries, feeds};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = feeds)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Feed {
    pub id: String,
    pub owner_id: String,
    pub url: String,
    pub title: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub failures: i32,
    pub last_error: Option<String>,
    pub last_polled_at: Option<NaiveDateTime>,
    pub next_poll_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, feed: &Feed) -> Result<(), DbError> {
    diesel::insert_into(feeds::table)
        .values(feed)
        .execute(conn)?;
    Ok(())
}

pub fn count(conn: &mut DbConnection, owner: &str) -> Result<i64, DbError> {
    Ok(feeds::table
        .filter(feeds::owner_id.eq(owner.to_owned()))
        .count()
        .get_result(conn)?)
}

pub fn list(conn: &mut DbConnection, owner: &str) -> Result<Vec<Feed>, DbError> {
    Ok(feeds::table
        .filter(feeds::owner_id.eq(owner.to_owned()))
        .order(feeds::id.asc())
        .select(Feed::as_select())
        .load(conn)?)
}

pub fn get(conn: &mut DbConnection, owner: &str, id: &str) -> Result<Option<Feed>, DbError> {
    Ok(feeds::table
        .filter(feeds::id.eq(id.to_owned()))
        .filter(feeds::owner_id.eq(owner.to_owned()))
        .select(Feed::as_select())
        .first(conn)
        .optional()?)
}

pub fn by_id(conn: &mut DbConnection, id: &str) -> Result<Option<Feed>, DbError> {
    Ok(feeds::table
        .find(id.to_owned())
        .select(Feed::as_select())
        .first(conn)
        .optional()?)
}

pub fn delete(conn: &mut DbConnection, owner: &str, id: &str) -> Result<bool, DbError> {
    let n = diesel::delete(
        feeds::table
            .filter(feeds::id.eq(id.to_owned()))
            .filter(feeds::owner_id.eq(owner.to_owned())),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// How many entries of the feed became items.
pub fn entry_count(conn: &mut DbConnection, feed_id: &str) -> Result<i64, DbError> {
    Ok(feed_entries::table
        .filter(feed_entries::feed_id.eq(feed_id.to_owned()))
        .count()
        .get_result(conn)?)
}

pub fn has_entry(conn: &mut DbConnection, feed_id: &str, key: &str) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        feed_entries::table
            .filter(feed_entries::feed_id.eq(feed_id.to_owned()))
            .filter(feed_entries::entry_key.eq(key.to_owned())),
    ))
    .get_result(conn)?)
}

pub fn add_entry(
    conn: &mut DbConnection,
    feed_id: &str,
    key: &str,
    content_id: &str,
) -> Result<(), DbError> {
    diesel::insert_into(feed_entries::table)
        .values((
            feed_entries::feed_id.eq(feed_id.to_owned()),
            feed_entries::entry_key.eq(key.to_owned()),
            feed_entries::content_id.eq(content_id.to_owned()),
            feed_entries::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// A poll went through: new validators, errors cleared.
pub fn polled(
    conn: &mut DbConnection,
    id: &str,
    title: Option<&str>,
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> Result<(), DbError> {
    diesel::update(feeds::table.find(id.to_owned()))
        .set((
            feeds::failures.eq(0),
            feeds::last_error.eq(None::<String>),
            feeds::last_polled_at.eq(Some(now())),
            title.map(|t| feeds::title.eq(Some(t.to_owned()))),
            etag.map(|e| feeds::etag.eq(Some(e.to_owned()))),
            last_modified.map(|l| feeds::last_modified.eq(Some(l.to_owned()))),
        ))
        .execute(conn)?;
    Ok(())
}

/// A poll failed: counted, shown, and the next one pushed back (doubling per
/// consecutive failure, at most a day).
pub fn poll_failed(
    conn: &mut DbConnection,
    id: &str,
    error: &str,
    interval: TimeDelta,
) -> Result<(), DbError> {
    let Some(feed) = by_id(conn, id)? else {
        return Ok(());
    };
    let failures = feed.failures + 1;
    let factor = 1i32 << failures.clamp(0, 10);
    let delay = (interval * factor).min(TimeDelta::days(1));
    diesel::update(feeds::table.find(id.to_owned()))
        .set((
            feeds::failures.eq(failures),
            feeds::last_error.eq(Some(error.to_owned())),
            feeds::last_polled_at.eq(Some(now())),
            feeds::next_poll_at.eq(now() + delay),
        ))
        .execute(conn)?;
    Ok(())
}

/// Takes the feeds due for a poll (at most `limit`), moving their next poll one
/// interval on so no other scheduler takes them too; returns (feed id, owner).
/// Run in a write transaction (SKIP LOCKED on PostgreSQL).
pub fn take_due(
    conn: &mut DbConnection,
    interval: TimeDelta,
    limit: i64,
) -> Result<Vec<Feed>, DbError> {
    let now = now();
    let next = now + interval;
    match conn {
        DbConnection::Pg(c) => Ok(diesel::sql_query(
            "UPDATE feeds SET next_poll_at = $1 WHERE id IN ( \
                 SELECT id FROM feeds WHERE next_poll_at <= $2 \
                 ORDER BY next_poll_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING *",
        )
        .bind::<Timestamp, _>(next)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .load(c)?),
        DbConnection::Sqlite(_) => {
            let due: Vec<Feed> = feeds::table
                .filter(feeds::next_poll_at.le(now))
                .order(feeds::next_poll_at.asc())
                .limit(limit)
                .select(Feed::as_select())
                .load(conn)?;
            for feed in &due {
                diesel::update(feeds::table.find(feed.id.clone()))
                    .set(feeds::next_poll_at.eq(next))
                    .execute(conn)?;
            }
            Ok(due)
        }
    }
}

/// Records a manual refresh of the owner's feed unless one was asked for within
/// `interval`: `None` when recorded, else the seconds until one may be asked again.
pub fn request_refresh(
    conn: &mut DbConnection,
    owner: &str,
    id: &str,
    interval: TimeDelta,
) -> Result<Option<i64>, DbError> {
    let now = now();
    let n = diesel::update(
        feeds::table
            .filter(feeds::id.eq(id.to_owned()))
            .filter(feeds::owner_id.eq(owner.to_owned()))
            .filter(
                feeds::refresh_requested_at
                    .is_null()
                    .or(feeds::refresh_requested_at.le(now - interval)),
            ),
    )
    .set(feeds::refresh_requested_at.eq(Some(now)))
    .execute(conn)?;
    if n == 1 {
        return Ok(None);
    }
    let last: Option<NaiveDateTime> = feeds::table
        .find(id.to_owned())
        .select(feeds::refresh_requested_at)
        .first::<Option<NaiveDateTime>>(conn)?;
    Ok(Some(last.map_or(1, |at| {
        (at + interval - now).num_seconds().max(1)
    })))
}
