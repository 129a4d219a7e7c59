//! `content_webhooks`: subscriptions to an owner's change feed (see `crate::webhooks`).

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::{content_changes, content_webhooks};
use peermesh_db::now;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = content_webhooks)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Webhook {
    pub id: String,
    pub owner_id: String,
    pub url: String,
    /// Signs every delivery; shown once, when the subscription is made.
    pub secret: String,
    /// The last change delivered.
    pub cursor: i32,
    /// Failed deliveries in a row.
    pub failures: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, hook: &Webhook) -> Result<(), DbError> {
    diesel::insert_into(content_webhooks::table)
        .values(hook)
        .execute(conn)?;
    Ok(())
}

pub fn list(conn: &mut DbConnection, owner: &str) -> Result<Vec<Webhook>, DbError> {
    Ok(content_webhooks::table
        .filter(content_webhooks::owner_id.eq(owner.to_owned()))
        .order(content_webhooks::id.asc())
        .select(Webhook::as_select())
        .load(conn)?)
}

pub fn delete(conn: &mut DbConnection, owner: &str, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(
        content_webhooks::table
            .filter(content_webhooks::owner_id.eq(owner.to_owned()))
            .filter(content_webhooks::id.eq(id.to_owned())),
    )
    .execute(conn)?
        > 0)
}

pub fn delete_owner(conn: &mut DbConnection, owner: &str) -> Result<(), DbError> {
    diesel::delete(content_webhooks::table.filter(content_webhooks::owner_id.eq(owner.to_owned())))
        .execute(conn)?;
    Ok(())
}

/// The owner's newest change (0 when none): where a new subscription starts.
pub fn owner_latest(conn: &mut DbConnection, owner: &str) -> Result<i32, DbError> {
    Ok(content_changes::table
        .filter(content_changes::owner_id.eq(owner.to_owned()))
        .select(diesel::dsl::max(content_changes::seq))
        .first::<Option<i32>>(conn)?
        .unwrap_or(0))
}

/// Takes a subscription that is due, not leased, and behind its owner's feed, for
/// `lease`. Run in a write transaction; the update checks the lease again.
pub fn claim(conn: &mut DbConnection, lease: TimeDelta) -> Result<Option<Webhook>, DbError> {
    let now = now();
    let free = content_webhooks::lease_until
        .is_null()
        .or(content_webhooks::lease_until.lt(now));
    let behind = diesel::dsl::exists(
        content_changes::table
            .filter(content_changes::owner_id.eq(content_webhooks::owner_id))
            .filter(content_changes::seq.gt(content_webhooks::cursor)),
    );
    let Some(id) = content_webhooks::table
        .filter(content_webhooks::next_attempt_at.le(now))
        .filter(free)
        .filter(behind)
        .order(content_webhooks::next_attempt_at.asc())
        .select(content_webhooks::id)
        .first::<String>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let taken = diesel::update(content_webhooks::table.find(id.clone()).filter(free))
        .set(content_webhooks::lease_until.eq(Some(now + lease)))
        .execute(conn)?;
    if taken == 0 {
        return Ok(None);
    }
    Ok(content_webhooks::table
        .find(id)
        .select(Webhook::as_select())
        .first(conn)
        .optional()?)
}

/// Delivered up to `cursor`.
pub fn delivered(conn: &mut DbConnection, id: &str, cursor: i32) -> Result<(), DbError> {
    diesel::update(content_webhooks::table.find(id.to_owned()))
        .set((
            content_webhooks::cursor.eq(cursor),
            content_webhooks::failures.eq(0),
            content_webhooks::lease_until.eq(None::<NaiveDateTime>),
            content_webhooks::last_error.eq(None::<String>),
            content_webhooks::next_attempt_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Not delivered: due again after `delay`.
pub fn failed(
    conn: &mut DbConnection,
    id: &str,
    error: &str,
    delay: TimeDelta,
) -> Result<(), DbError> {
    diesel::update(content_webhooks::table.find(id.to_owned()))
        .set((
            content_webhooks::failures.eq(content_webhooks::failures + 1),
            content_webhooks::lease_until.eq(None::<NaiveDateTime>),
            content_webhooks::last_error.eq(Some(error.to_owned())),
            content_webhooks::next_attempt_at.eq(now() + delay),
        ))
        .execute(conn)?;
    Ok(())
}
