//! `content_exports`: one owner's export jobs (see `crate::export`), and the reads an
//! export makes of the owner's items, links and vectors, in bounded batches.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::{content_embeddings, content_exports, content_items, content_links};
use crate::store::links::Link;

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

/// Attempts before an export is given up.
pub const MAX_ATTEMPTS: i32 = 3;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = content_exports)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Export {
    pub id: String,
    pub owner_id: String,
    pub status: String,
    pub attempts: i32,
    pub lease_until: Option<NaiveDateTime>,
    pub error: Option<String>,
    pub items: i64,
    pub links: i64,
    /// Bytes of the archive as stored (the originals are added when it is downloaded).
    pub size: i64,
    /// JSON list of the originals' SHA-256 hashes, fetched when it is downloaded.
    pub originals: String,
    pub created_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub expires_at: NaiveDateTime,
}

impl Export {
    pub fn queued(owner: &str, ttl: TimeDelta) -> Self {
        let now = now();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            owner_id: owner.to_owned(),
            status: QUEUED.into(),
            attempts: 0,
            lease_until: None,
            error: None,
            items: 0,
            links: 0,
            size: 0,
            originals: "[]".into(),
            created_at: now,
            finished_at: None,
            expires_at: now + ttl,
        }
    }

    pub fn original_hashes(&self) -> Vec<String> {
        serde_json::from_str(&self.originals).unwrap_or_default()
    }
}

pub use peermesh_db::now;

pub fn insert(conn: &mut DbConnection, export: &Export) -> Result<(), DbError> {
    diesel::insert_into(content_exports::table)
        .values(export)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, owner: &str, id: &str) -> Result<Option<Export>, DbError> {
    Ok(content_exports::table
        .find(id.to_owned())
        .filter(content_exports::owner_id.eq(owner.to_owned()))
        .select(Export::as_select())
        .first(conn)
        .optional()?)
}

/// The owner's export that is queued or running, if any.
pub fn active(conn: &mut DbConnection, owner: &str) -> Result<Option<Export>, DbError> {
    Ok(content_exports::table
        .filter(content_exports::owner_id.eq(owner.to_owned()))
        .filter(content_exports::status.eq_any([QUEUED, RUNNING]))
        .select(Export::as_select())
        .first(conn)
        .optional()?)
}

/// Takes the oldest export that is queued, or running under a lapsed lease, for
/// `lease`, counting an attempt. Run in a write transaction; the update checks the
/// state again, so two processes never take one export.
pub fn claim(conn: &mut DbConnection, lease: TimeDelta) -> Result<Option<Export>, DbError> {
    let now = now();
    let takeable = content_exports::status
        .eq(QUEUED)
        .or(content_exports::status
            .eq(RUNNING)
            .and(content_exports::lease_until.lt(now)));
    let Some(id) = content_exports::table
        .filter(takeable)
        .order(content_exports::id.asc())
        .select(content_exports::id)
        .first::<String>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let taken = diesel::update(content_exports::table.find(id.clone()).filter(takeable))
        .set((
            content_exports::status.eq(RUNNING),
            content_exports::lease_until.eq(Some(now + lease)),
            content_exports::attempts.eq(content_exports::attempts + 1),
        ))
        .execute(conn)?;
    if taken == 0 {
        return Ok(None);
    }
    Ok(Some(
        content_exports::table
            .find(id)
            .select(Export::as_select())
            .first(conn)?,
    ))
}

/// The archive is written: the export succeeded.
pub fn succeed(conn: &mut DbConnection, done: &Export) -> Result<(), DbError> {
    diesel::update(content_exports::table.find(done.id.clone()))
        .set((
            content_exports::status.eq(SUCCEEDED),
            content_exports::lease_until.eq(None::<NaiveDateTime>),
            content_exports::items.eq(done.items),
            content_exports::links.eq(done.links),
            content_exports::size.eq(done.size),
            content_exports::originals.eq(done.originals.clone()),
            content_exports::finished_at.eq(Some(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// A failed attempt: queued again, or failed for good after [`MAX_ATTEMPTS`].
pub fn fail(conn: &mut DbConnection, export: &Export, error: &str) -> Result<(), DbError> {
    let last = export.attempts >= MAX_ATTEMPTS;
    diesel::update(content_exports::table.find(export.id.clone()))
        .set((
            content_exports::status.eq(if last { FAILED } else { QUEUED }),
            content_exports::lease_until.eq(None::<NaiveDateTime>),
            content_exports::error.eq(Some(error)),
            content_exports::finished_at.eq(last.then(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Removes the exports past their expiry (or all of `owner`'s): their ids, whose
/// archives the caller deletes.
pub fn remove_expired(
    conn: &mut DbConnection,
    owner: Option<&str>,
) -> Result<Vec<String>, DbError> {
    let mut query = content_exports::table
        .select(content_exports::id)
        .into_boxed();
    query = match owner {
        Some(owner) => query.filter(content_exports::owner_id.eq(owner.to_owned())),
        None => query.filter(content_exports::expires_at.lt(now())),
    };
    let ids: Vec<String> = query.load(conn)?;
    diesel::delete(content_exports::table.filter(content_exports::id.eq_any(&ids)))
        .execute(conn)?;
    Ok(ids)
}

/// The ids of up to `limit` of the owner's items after `after`, oldest first.
pub fn item_ids(
    conn: &mut DbConnection,
    owner: &str,
    after: Option<i32>,
    limit: i64,
) -> Result<Vec<(i32, String)>, DbError> {
    Ok(content_items::table
        .filter(content_items::owner_id.eq(owner.to_owned()))
        .filter(content_items::seq.gt(after.unwrap_or(0)))
        .order(content_items::seq.asc())
        .limit(limit)
        .select((content_items::seq, content_items::id))
        .load(conn)?)
}

/// Up to `limit` of the owner's links after the id `after`.
pub fn links(
    conn: &mut DbConnection,
    owner: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Link>, DbError> {
    let mut query = content_links::table
        .filter(content_links::owner_id.eq(owner.to_owned()))
        .order(content_links::id.asc())
        .limit(limit)
        .select(Link::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(content_links::id.gt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// One stored vector: (model, chunk, vector bytes, stale).
pub type VectorRow = (String, i32, Vec<u8>, bool);

/// Every vector of the item.
pub fn vectors(conn: &mut DbConnection, item_id: &str) -> Result<Vec<VectorRow>, DbError> {
    Ok(content_embeddings::table
        .filter(content_embeddings::item_id.eq(item_id.to_owned()))
        .order((
            content_embeddings::model.asc(),
            content_embeddings::chunk.asc(),
        ))
        .select((
            content_embeddings::model,
            content_embeddings::chunk,
            content_embeddings::vector,
            content_embeddings::stale,
        ))
        .load(conn)?)
}
