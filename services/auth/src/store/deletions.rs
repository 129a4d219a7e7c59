//! `account_deletions`: what each other service still has to erase of a deleted
//! account (see `crate::deletion`).

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::account_deletions;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = account_deletions)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Deletion {
    pub user_id: String,
    pub service: String,
    /// Requests begun (counted when claimed).
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub requested_at: NaiveDateTime,
    pub confirmed_at: Option<NaiveDateTime>,
}

impl Deletion {
    pub fn new(user_id: &str, service: &str) -> Self {
        let now = super::now();
        Self {
            user_id: user_id.to_owned(),
            service: service.to_owned(),
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            last_error: None,
            requested_at: now,
            confirmed_at: None,
        }
    }
}

pub fn insert(conn: &mut DbConnection, rows: &[Deletion]) -> Result<(), DbError> {
    peermesh_db::on_backend!(conn, |c| diesel::insert_into(account_deletions::table)
        .values(rows)
        .execute(c))?;
    Ok(())
}

/// Whether any deletion for `services` is due (a read, before a sender takes the
/// write lock to claim).
pub fn any_due(conn: &mut DbConnection, services: &[String]) -> Result<bool, DbError> {
    Ok(!due(conn, services, super::now(), 1)?.is_empty())
}

/// The keys of up to `limit` unconfirmed deletions of `services` that are due and not
/// leased, oldest first.
fn due(
    conn: &mut DbConnection,
    services: &[String],
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<(String, String)>, DbError> {
    Ok(account_deletions::table
        .filter(account_deletions::confirmed_at.is_null())
        .filter(account_deletions::service.eq_any(services))
        .filter(account_deletions::next_attempt_at.le(now))
        .filter(
            account_deletions::lease_until
                .is_null()
                .or(account_deletions::lease_until.lt(now)),
        )
        .order(account_deletions::next_attempt_at.asc())
        .limit(limit)
        .select((account_deletions::user_id, account_deletions::service))
        .load(conn)?)
}

/// Takes up to `limit` due deletions of `services` for `lease`, counting an attempt on
/// each. Run in a write transaction: a row another sender leased meanwhile is not
/// taken (the update checks the lease again, after any concurrent one committed).
pub fn claim(
    conn: &mut DbConnection,
    services: &[String],
    lease: TimeDelta,
    limit: i64,
) -> Result<Vec<Deletion>, DbError> {
    let now = super::now();
    let due = due(conn, services, now, limit)?;
    let mut claimed = Vec::with_capacity(due.len());
    for key in due {
        let free = account_deletions::lease_until
            .is_null()
            .or(account_deletions::lease_until.lt(now));
        let taken = diesel::update(account_deletions::table.find(key.clone()).filter(free))
            .set((
                account_deletions::lease_until.eq(Some(now + lease)),
                account_deletions::attempts.eq(account_deletions::attempts + 1),
            ))
            .execute(conn)?;
        if taken == 1 {
            claimed.push(
                account_deletions::table
                    .find(key)
                    .select(Deletion::as_select())
                    .first(conn)?,
            );
        }
    }
    Ok(claimed)
}

/// The service confirmed: the row stays, as the record of when.
pub fn confirm(conn: &mut DbConnection, user_id: &str, service: &str) -> Result<(), DbError> {
    diesel::update(account_deletions::table.find((user_id, service)))
        .set((
            account_deletions::confirmed_at.eq(Some(super::now())),
            account_deletions::lease_until.eq(None::<NaiveDateTime>),
            account_deletions::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// A failed attempt: due again after `delay`.
pub fn retry_later(
    conn: &mut DbConnection,
    user_id: &str,
    service: &str,
    error: &str,
    delay: TimeDelta,
) -> Result<(), DbError> {
    diesel::update(account_deletions::table.find((user_id, service)))
        .set((
            account_deletions::next_attempt_at.eq(super::now() + delay),
            account_deletions::lease_until.eq(None::<NaiveDateTime>),
            account_deletions::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(())
}
