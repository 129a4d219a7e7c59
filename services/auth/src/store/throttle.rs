//! Failed-login counters: per account and per client address, in the database so
//! every replica of the service sees the same counts.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::login_throttle;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_throttle)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
struct Counter {
    throttle_key: String,
    failures: i32,
    window_started_at: NaiveDateTime,
    locked_until: Option<NaiveDateTime>,
}

/// How many failures within `window` lock a key, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max_failures: i32,
    pub window: TimeDelta,
    pub lockout: TimeDelta,
}

/// Seconds until the first locked key of `keys` unlocks, if any is locked.
pub fn locked_for(conn: &mut DbConnection, keys: &[&str]) -> Result<Option<i64>, DbError> {
    let now = super::now();
    let until: Vec<Option<NaiveDateTime>> = login_throttle::table
        .filter(login_throttle::throttle_key.eq_any(keys))
        .select(login_throttle::locked_until)
        .load(conn)?;
    Ok(until
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .map(|t| (t - now).num_seconds().max(1))
        .max())
}

/// Takes `key`'s row lock (creating the row) for the rest of the write transaction, so
/// that a [`locked_for`] check followed by [`record_failure`] is one step on PostgreSQL
/// too: without it two concurrent transactions could both pass the check before either
/// counts. (SQLite serialises writers anyway.)
pub fn hold(conn: &mut DbConnection, key: &str) -> Result<(), DbError> {
    let fresh = Counter {
        throttle_key: key.to_owned(),
        failures: 0,
        window_started_at: super::now(),
        locked_until: None,
    };
    peermesh_db::on_backend!(conn, |c| diesel::insert_into(login_throttle::table)
        .values(&fresh)
        .on_conflict(login_throttle::throttle_key)
        .do_update()
        .set(login_throttle::failures.eq(login_throttle::failures))
        .execute(c))?;
    Ok(())
}

/// Counts a failure for `key`; locks it when the limit is reached. Run in a write
/// transaction: the upsert takes the row's lock, so concurrent failures for one key
/// are counted one after the other on PostgreSQL too (SQLite serialises writers).
pub fn record_failure(conn: &mut DbConnection, key: &str, limit: Limit) -> Result<(), DbError> {
    let now = super::now();
    let first = Counter {
        throttle_key: key.to_owned(),
        failures: 1,
        window_started_at: now,
        locked_until: None,
    };
    peermesh_db::on_backend!(conn, |c| diesel::insert_into(login_throttle::table)
        .values(&first)
        .on_conflict(login_throttle::throttle_key)
        .do_update()
        .set(login_throttle::failures.eq(login_throttle::failures + 1))
        .execute(c))?;
    let counter: Counter = login_throttle::table
        .find(key)
        .select(Counter::as_select())
        .first(conn)?;
    if now - counter.window_started_at > limit.window {
        // The old window is over: this failure is the first of a new one.
        diesel::update(login_throttle::table.find(key))
            .set((
                login_throttle::failures.eq(1),
                login_throttle::window_started_at.eq(now),
            ))
            .execute(conn)?;
    } else if counter.failures >= limit.max_failures {
        diesel::update(login_throttle::table.find(key))
            .set((
                login_throttle::locked_until.eq(Some(now + limit.lockout)),
                login_throttle::failures.eq(0),
                login_throttle::window_started_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Admits one password attempt against every key, atomically: the keys' rows are
/// locked (in a fixed order, so concurrent attempts cannot deadlock), a key that is
/// locked refuses the attempt (`Some(seconds)`), and otherwise the attempt is counted
/// on each key *before* the password is checked. Counting first is what makes the
/// limit hold under concurrency: of any number of parallel guesses at most the limit
/// get to be checked; the rest are refused. A successful attempt is then taken back
/// with [`settle`]. Run in a write transaction.
pub fn admit(conn: &mut DbConnection, keys: &[(String, Limit)]) -> Result<Option<i64>, DbError> {
    let mut keys: Vec<&(String, Limit)> = keys.iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys.dedup_by(|a, b| a.0 == b.0);
    for (key, _) in &keys {
        hold(conn, key)?;
    }
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    if let Some(wait) = locked_for(conn, &names)? {
        return Ok(Some(wait));
    }
    for (key, limit) in &keys {
        record_failure(conn, key, *limit)?;
    }
    Ok(None)
}

/// After a successful attempt admitted by [`admit`]: `clear` keys start afresh (the
/// account and address that just proved the password), `uncount` keys forget this one
/// attempt (it was no failure).
pub fn settle(conn: &mut DbConnection, clear: &[&str], uncount: &[&str]) -> Result<(), DbError> {
    diesel::delete(login_throttle::table.filter(login_throttle::throttle_key.eq_any(clear)))
        .execute(conn)?;
    diesel::update(
        login_throttle::table
            .filter(login_throttle::throttle_key.eq_any(uncount))
            .filter(login_throttle::failures.gt(0)),
    )
    .set(login_throttle::failures.eq(login_throttle::failures - 1))
    .execute(conn)?;
    Ok(())
}

pub fn reset(conn: &mut DbConnection, key: &str) -> Result<(), DbError> {
    diesel::delete(login_throttle::table.find(key)).execute(conn)?;
    Ok(())
}
