//! `content_embedding_jobs`: items whose vectors of the service's own model are to be
//! computed (see `crate::auto_embed`). A row is written with the item and again when
//! its body changes; the task that computes its vectors removes it.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use peermesh_db::{now, DbConnection, DbError};

use crate::schema::content_embedding_jobs;

/// A claimed job: the item and the version of it whose body is to be embedded.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = content_embedding_jobs)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct EmbedJob {
    pub item_id: String,
    pub owner_id: String,
    pub version: i64,
    pub attempts: i32,
}

/// Queues the item (again): its body at `version` needs vectors.
pub fn enqueue(
    conn: &mut DbConnection,
    owner: &str,
    item_id: &str,
    version: i64,
) -> Result<(), DbError> {
    let now = now();
    let row = (
        content_embedding_jobs::item_id.eq(item_id.to_owned()),
        content_embedding_jobs::owner_id.eq(owner.to_owned()),
        content_embedding_jobs::version.eq(version),
        content_embedding_jobs::attempts.eq(0),
        content_embedding_jobs::next_attempt_at.eq(now),
    );
    let again = (
        content_embedding_jobs::version.eq(version),
        content_embedding_jobs::attempts.eq(0),
        content_embedding_jobs::next_attempt_at.eq(now),
        content_embedding_jobs::lease_until.eq(None::<NaiveDateTime>),
        content_embedding_jobs::last_error.eq(None::<String>),
    );
    peermesh_db::on_backend!(conn, |c| diesel::insert_into(content_embedding_jobs::table)
        .values(row)
        .on_conflict(content_embedding_jobs::item_id)
        .do_update()
        .set(again)
        .execute(c))?;
    Ok(())
}

/// Takes up to `n` due jobs nobody holds, for `lease`. Run in a write transaction;
/// each update checks the lease again, so two processes never take the same job.
pub fn claim(conn: &mut DbConnection, n: i64, lease: TimeDelta) -> Result<Vec<EmbedJob>, DbError> {
    let now = now();
    let free = content_embedding_jobs::lease_until
        .is_null()
        .or(content_embedding_jobs::lease_until.lt(now));
    let due: Vec<EmbedJob> = content_embedding_jobs::table
        .filter(content_embedding_jobs::next_attempt_at.le(now))
        .filter(free)
        .order(content_embedding_jobs::next_attempt_at.asc())
        .limit(n)
        .select(EmbedJob::as_select())
        .load(conn)?;
    let mut taken = Vec::with_capacity(due.len());
    for job in due {
        let updated = diesel::update(
            content_embedding_jobs::table
                .find(job.item_id.clone())
                .filter(free),
        )
        .set(content_embedding_jobs::lease_until.eq(Some(now + lease)))
        .execute(conn)?;
        if updated == 1 {
            taken.push(job);
        }
    }
    Ok(taken)
}

/// Done: removes the job if it still asks for `version` (whether it did). When the
/// body changed meanwhile the job stays, free to be claimed for the new text.
pub fn finish(conn: &mut DbConnection, item_id: &str, version: i64) -> Result<bool, DbError> {
    let removed = diesel::delete(
        content_embedding_jobs::table
            .find(item_id.to_owned())
            .filter(content_embedding_jobs::version.eq(version)),
    )
    .execute(conn)?;
    if removed == 0 {
        diesel::update(content_embedding_jobs::table.find(item_id.to_owned()))
            .set(content_embedding_jobs::lease_until.eq(None::<NaiveDateTime>))
            .execute(conn)?;
    }
    Ok(removed == 1)
}

/// Not done: due again after `delay`.
pub fn failed(
    conn: &mut DbConnection,
    item_id: &str,
    error: &str,
    delay: TimeDelta,
) -> Result<(), DbError> {
    diesel::update(content_embedding_jobs::table.find(item_id.to_owned()))
        .set((
            content_embedding_jobs::attempts.eq(content_embedding_jobs::attempts + 1),
            content_embedding_jobs::lease_until.eq(None::<NaiveDateTime>),
            content_embedding_jobs::last_error.eq(Some(error.to_owned())),
            content_embedding_jobs::next_attempt_at.eq(now() + delay),
        ))
        .execute(conn)?;
    Ok(())
}

/// Jobs waiting, for the backlog gauge.
pub fn backlog(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(content_embedding_jobs::table.count().get_result(conn)?)
}
