//! `mail_outbox`: mail waiting to be sent (see `crate::mail`).

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};
use peermesh_db::{DbConnection, DbError};

use crate::schema::mail_outbox;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = mail_outbox)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Outgoing {
    pub id: String,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Delivery attempts begun (counted when claimed).
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, mail: &Outgoing) -> Result<(), DbError> {
    diesel::insert_into(mail_outbox::table)
        .values(mail)
        .execute(conn)?;
    Ok(())
}

pub fn pending(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(mail_outbox::table.count().get_result(conn)?)
}

/// Whether any mail is due (a read, before a sender takes the write lock to claim).
pub fn any_due(conn: &mut DbConnection) -> Result<bool, DbError> {
    let now = super::now();
    Ok(diesel::select(diesel::dsl::exists(
        mail_outbox::table
            .filter(mail_outbox::next_attempt_at.le(now))
            .filter(
                mail_outbox::lease_until
                    .is_null()
                    .or(mail_outbox::lease_until.lt(now)),
            ),
    ))
    .get_result(conn)?)
}

/// Takes up to `limit` due mails (not leased, or leased by a sender that stopped)
/// for `lease`, counting an attempt on each. Run in a write transaction; on
/// PostgreSQL concurrent senders skip each other's rows.
pub fn claim(
    conn: &mut DbConnection,
    lease: TimeDelta,
    limit: i64,
) -> Result<Vec<Outgoing>, DbError> {
    let now = super::now();
    match conn {
        DbConnection::Pg(c) => Ok(diesel::sql_query(
            "UPDATE mail_outbox SET lease_until = $1, attempts = attempts + 1 \
             WHERE id IN ( \
                 SELECT id FROM mail_outbox \
                 WHERE next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2) \
                 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING *",
        )
        .bind::<Timestamp, _>(now + lease)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .load(c)?),
        DbConnection::Sqlite(_) => {
            let due: Vec<String> = mail_outbox::table
                .filter(mail_outbox::next_attempt_at.le(now))
                .filter(
                    mail_outbox::lease_until
                        .is_null()
                        .or(mail_outbox::lease_until.lt(now)),
                )
                .order(mail_outbox::next_attempt_at.asc())
                .limit(limit)
                .select(mail_outbox::id)
                .load(conn)?;
            diesel::update(mail_outbox::table.filter(mail_outbox::id.eq_any(&due)))
                .set((
                    mail_outbox::lease_until.eq(Some(now + lease)),
                    mail_outbox::attempts.eq(mail_outbox::attempts + 1),
                ))
                .execute(conn)?;
            Ok(mail_outbox::table
                .filter(mail_outbox::id.eq_any(&due))
                .select(Outgoing::as_select())
                .load(conn)?)
        }
    }
}

/// Sent, or given up: the row (and the link it holds) goes.
pub fn remove(conn: &mut DbConnection, id: &str) -> Result<(), DbError> {
    diesel::delete(mail_outbox::table.find(id)).execute(conn)?;
    Ok(())
}

/// A failed attempt: due again after `delay`.
pub fn retry_later(
    conn: &mut DbConnection,
    id: &str,
    error: &str,
    delay: TimeDelta,
) -> Result<(), DbError> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::next_attempt_at.eq(super::now() + delay),
            mail_outbox::lease_until.eq(None::<NaiveDateTime>),
            mail_outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Drops the mail waiting for `recipient` (their account was deleted).
pub fn remove_to(conn: &mut DbConnection, recipient: &str) -> Result<(), DbError> {
    diesel::delete(mail_outbox::table.filter(mail_outbox::recipient.eq(recipient)))
        .execute(conn)?;
    Ok(())
}
