//! Items, their tags and chunks. Every function takes the owner it is scoped to (or
//! `None` for an admin's read of anyone's item).

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use peermesh_db::{DbConnection, DbError};

use crate::schema::{content_chunks, content_items, content_tags, idempotency_keys};
use peermesh_chunking::Span;

/// An item with its whole body (also what is inserted; `seq` is the database's).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = content_items)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Item {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub body: String,
    pub body_bytes: i64,
    pub kind: String,
    pub tags: String,
    pub metadata: String,
    pub source_type: Option<String>,
    pub source_url: Option<String>,
    pub source_filename: Option<String>,
    pub source_sha256: Option<String>,
    pub version: i64,
    #[diesel(deserialize_as = peermesh_db::DbTime)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = peermesh_db::DbTime)]
    pub updated_at: NaiveDateTime,
}

/// Characters of the body that list and search answers carry.
pub const EXCERPT_CHARS: i32 = 280;

/// An item without its body: what lists, search hits and graph nodes show.
#[derive(Debug, Clone, Queryable)]
pub struct Summary {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub excerpt: String,
    pub body_bytes: i64,
    pub kind: String,
    pub tags: String,
    pub metadata: String,
    pub source_type: Option<String>,
    pub source_url: Option<String>,
    pub source_filename: Option<String>,
    pub source_sha256: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

macro_rules! summary_columns {
    () => {
        (
            content_items::id,
            content_items::owner_id,
            content_items::title,
            sql::<Text>("substr(body, 1, ")
                .bind::<Integer, _>(EXCERPT_CHARS)
                .sql(")"),
            content_items::body_bytes,
            content_items::kind,
            content_items::tags,
            content_items::metadata,
            content_items::source_type,
            content_items::source_url,
            content_items::source_filename,
            content_items::source_sha256,
            content_items::version,
            content_items::created_at,
            content_items::updated_at,
        )
    };
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = content_chunks)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct StoredChunk {
    pub idx: i32,
    pub text: String,
    pub start_offset: i64,
    pub end_offset: i64,
}

/// Rows per multi-row INSERT: well under SQLite's bound-parameter limit.
const INSERT_BATCH: usize = 500;

pub fn get(
    conn: &mut DbConnection,
    owner: Option<&str>,
    id: &str,
) -> Result<Option<Item>, DbError> {
    // Two fixed queries rather than one boxed, each run on the backend's own
    // connection: there diesel finds the prepared statement by the query's type. Through
    // the multi-backend connection (or boxed) it writes the SQL anew for every call,
    // which was a tenth of the CPU of `GET /content/{id}`.
    let by_id = content_items::table.filter(content_items::id.eq(id));
    let item = peermesh_db::on_backend!(conn, |c| match owner {
        Some(owner) => by_id
            .filter(content_items::owner_id.eq(owner))
            .select(Item::as_select())
            .first(c),
        None => by_id.select(Item::as_select()).first(c),
    });
    Ok(item.optional()?)
}

/// The owner of an item the caller may see (`owner` = `None`: any), or `None`.
pub fn visible_owner(
    conn: &mut DbConnection,
    owner: Option<&str>,
    id: &str,
) -> Result<Option<String>, DbError> {
    let mut query = content_items::table
        .filter(content_items::id.eq(id.to_owned()))
        .select(content_items::owner_id)
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(content_items::owner_id.eq(owner.to_owned()));
    }
    Ok(query.first(conn).optional()?)
}

/// Filters of the item list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub tag: Option<String>,
    pub kind: Option<String>,
    /// Ids matching a full-text query, already resolved by the search store.
    pub text: Option<crate::query::SearchQuery>,
}

/// Newest first (ids are UUIDv7); `after` is the last id of the previous page.
pub fn page(
    conn: &mut DbConnection,
    owner: &str,
    filter: &ListFilter,
    limit: i64,
    after: Option<&str>,
) -> Result<Vec<Summary>, DbError> {
    let text_match = filter
        .text
        .as_ref()
        .map(|q| super::search::match_predicate(conn, owner, q));
    let mut query = content_items::table
        .filter(content_items::owner_id.eq(owner.to_owned()))
        .select(summary_columns!())
        .order(content_items::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(content_items::id.lt(after.to_owned()));
    }
    if let Some(kind) = &filter.kind {
        query = query.filter(content_items::kind.eq(kind.clone()));
    }
    if let Some(tag) = &filter.tag {
        let tagged = content_tags::table
            .filter(content_tags::owner_id.eq(owner.to_owned()))
            .filter(content_tags::tag.eq(tag.clone()))
            .select(content_tags::item_id);
        query = query.filter(content_items::id.eq_any(tagged));
    }
    if let Some(predicate) = text_match {
        query = query.filter(predicate);
    }
    Ok(query.load(conn)?)
}

/// Summaries of the given items (any order), scoped to `owner`.
pub fn summaries(
    conn: &mut DbConnection,
    owner: &str,
    ids: &[String],
) -> Result<Vec<Summary>, DbError> {
    let mut out = Vec::with_capacity(ids.len());
    for batch in ids.chunks(INSERT_BATCH) {
        let rows: Vec<Summary> = content_items::table
            .filter(content_items::owner_id.eq(owner.to_owned()))
            .filter(content_items::id.eq_any(batch.to_vec()))
            .select(summary_columns!())
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}

/// A chunk to store. Its text is a span of the item's body (computed by the service,
/// or given by the client as offsets alone, so a 100 MiB body is not held twice) or
/// the text a client gave.
#[derive(Debug, Clone)]
pub struct NewChunk {
    /// Characters of the body.
    pub start: usize,
    pub end: usize,
    pub text: ChunkText,
}

#[derive(Debug, Clone)]
pub enum ChunkText {
    /// `&body[start..end]`, in bytes.
    Body(std::ops::Range<usize>),
    Own(String),
}

impl From<Span> for NewChunk {
    fn from(span: Span) -> Self {
        NewChunk {
            start: span.start,
            end: span.end,
            text: ChunkText::Body(span.byte_start..span.byte_end),
        }
    }
}

impl NewChunk {
    pub fn text<'a>(&'a self, body: &'a str) -> &'a str {
        match &self.text {
            ChunkText::Body(bytes) => &body[bytes.clone()],
            ChunkText::Own(text) => text,
        }
    }
}

pub fn insert(
    conn: &mut DbConnection,
    item: &Item,
    tags: &[String],
    chunks: &[NewChunk],
) -> Result<(), DbError> {
    diesel::insert_into(content_items::table)
        .values(item)
        .execute(conn)?;
    if let DbConnection::Sqlite(c) = conn {
        super::search::index_new_item(c, &item.id, &item.body)?;
    }
    replace_tags(conn, &item.owner_id, &item.id, tags)?;
    replace_chunks(conn, &item.id, &item.body, chunks)?;
    super::embed_jobs::enqueue(conn, &item.owner_id, &item.id, item.version)?;
    Ok(())
}

pub fn replace_tags(
    conn: &mut DbConnection,
    owner: &str,
    item_id: &str,
    tags: &[String],
) -> Result<(), DbError> {
    diesel::delete(content_tags::table.filter(content_tags::item_id.eq(item_id.to_owned())))
        .execute(conn)?;
    let rows: Vec<_> = tags
        .iter()
        .map(|tag| {
            (
                content_tags::item_id.eq(item_id.to_owned()),
                content_tags::owner_id.eq(owner.to_owned()),
                content_tags::tag.eq(tag.clone()),
            )
        })
        .collect();
    if !rows.is_empty() {
        peermesh_db::on_backend!(conn, |c| diesel::insert_into(content_tags::table)
            .values(rows)
            .execute(c))?;
    }
    Ok(())
}

/// Replaces an item's chunks; `body` is the item's (new) body, which spans point into.
pub fn replace_chunks(
    conn: &mut DbConnection,
    item_id: &str,
    body: &str,
    chunks: &[NewChunk],
) -> Result<(), DbError> {
    diesel::delete(content_chunks::table.filter(content_chunks::item_id.eq(item_id.to_owned())))
        .execute(conn)?;
    for (batch_no, batch) in chunks.chunks(INSERT_BATCH).enumerate() {
        let batch: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    content_chunks::item_id.eq(item_id),
                    content_chunks::idx.eq((batch_no * INSERT_BATCH + i) as i32),
                    content_chunks::text.eq(c.text(body)),
                    content_chunks::start_offset.eq(c.start as i64),
                    content_chunks::end_offset.eq(c.end as i64),
                )
            })
            .collect();
        peermesh_db::on_backend!(conn, |c| diesel::insert_into(content_chunks::table)
            .values(batch)
            .execute(c))?;
    }
    Ok(())
}

pub fn chunk_count(conn: &mut DbConnection, item_id: &str) -> Result<i64, DbError> {
    Ok(content_chunks::table
        .filter(content_chunks::item_id.eq(item_id.to_owned()))
        .count()
        .get_result(conn)?)
}

/// The item's chunks in order, after index `after`.
pub fn chunks(
    conn: &mut DbConnection,
    item_id: &str,
    after: Option<i32>,
    limit: i64,
) -> Result<Vec<StoredChunk>, DbError> {
    Ok(content_chunks::table
        .filter(content_chunks::item_id.eq(item_id.to_owned()))
        .filter(content_chunks::idx.gt(after.unwrap_or(-1)))
        .order(content_chunks::idx.asc())
        .limit(limit)
        .select(StoredChunk::as_select())
        .load(conn)?)
}

/// The new values of a PATCH, already validated.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub title: Option<String>,
    pub body: Option<String>,
    pub kind: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<String>,
    pub source: Option<Source>,
    /// New chunks, when the body changed (given by the client or computed).
    pub chunks: Option<Vec<NewChunk>>,
}

#[derive(Debug, Clone, Default)]
pub struct Source {
    pub kind: String,
    pub url: Option<String>,
    pub filename: Option<String>,
    pub sha256: Option<String>,
}

/// Applies `changes` if the item is still at `version`; returns whether it was.
pub fn update(
    conn: &mut DbConnection,
    item: &Item,
    changes: &Changes,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let target = content_items::table
        .filter(content_items::id.eq(item.id.clone()))
        .filter(content_items::owner_id.eq(item.owner_id.clone()))
        .filter(content_items::version.eq(item.version));
    let body_bytes = changes.body.as_ref().map(|b| b.len() as i64);
    let tags_json = changes
        .tags
        .as_ref()
        .map(|t| serde_json::Value::from(t.clone()).to_string());
    let updated = diesel::update(target)
        .set((
            content_items::version.eq(item.version + 1),
            content_items::updated_at.eq(now),
            changes.title.clone().map(|v| content_items::title.eq(v)),
            changes.body.as_deref().map(|v| content_items::body.eq(v)),
            body_bytes.map(|v| content_items::body_bytes.eq(v)),
            changes.kind.clone().map(|v| content_items::kind.eq(v)),
            tags_json.map(|v| content_items::tags.eq(v)),
            changes
                .metadata
                .clone()
                .map(|v| content_items::metadata.eq(v)),
            changes.source.as_ref().map(|s| {
                (
                    content_items::source_type.eq(Some(s.kind.clone())),
                    content_items::source_url.eq(s.url.clone()),
                    content_items::source_filename.eq(s.filename.clone()),
                    content_items::source_sha256.eq(s.sha256.clone()),
                )
            }),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Ok(false);
    }
    if let Some(tags) = &changes.tags {
        replace_tags(conn, &item.owner_id, &item.id, tags)?;
    }
    if let (Some(chunks), Some(body)) = (&changes.chunks, &changes.body) {
        replace_chunks(conn, &item.id, body, chunks)?;
    }
    if changes.body.is_some() {
        super::embed_jobs::enqueue(conn, &item.owner_id, &item.id, item.version + 1)?;
    }
    Ok(true)
}

/// Deletes an item (chunks, tags, links and vectors go with it by cascade).
pub fn delete(conn: &mut DbConnection, owner: &str, id: &str) -> Result<bool, DbError> {
    super::embeddings::delete_for_item(conn, owner, id)?;
    let deleted = diesel::delete(
        content_items::table
            .filter(content_items::id.eq(id.to_owned()))
            .filter(content_items::owner_id.eq(owner.to_owned())),
    )
    .execute(conn)?;
    Ok(deleted > 0)
}

/// Per-tag item counts of one owner, most used first.
pub fn tag_counts(
    conn: &mut DbConnection,
    owner: &str,
    limit: i64,
) -> Result<Vec<(String, i64)>, DbError> {
    Ok(content_tags::table
        .filter(content_tags::owner_id.eq(owner.to_owned()))
        .group_by(content_tags::tag)
        .select((content_tags::tag, diesel::dsl::count_star()))
        .order((diesel::dsl::count_star().desc(), content_tags::tag.asc()))
        .limit(limit)
        .load(conn)?)
}

/// How long an Idempotency-Key is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

/// The item an earlier request with this key created, with that request's hash.
pub fn idempotent_replay(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    now: NaiveDateTime,
) -> Result<Option<(String, String)>, DbError> {
    let cutoff = now - chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS);
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(cutoff)))
        .execute(conn)?;
    Ok(idempotency_keys::table
        .filter(idempotency_keys::owner_id.eq(owner.to_owned()))
        .filter(idempotency_keys::key.eq(key.to_owned()))
        .select((idempotency_keys::request_hash, idempotency_keys::item_id))
        .first(conn)
        .optional()?)
}

/// The answer an earlier import with this key gave, with that request's hash (the
/// key of a created item has no answer).
pub fn import_replay(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    now: NaiveDateTime,
) -> Result<Option<(String, Option<String>)>, DbError> {
    idempotent_replay(conn, owner, key, now)?;
    Ok(idempotency_keys::table
        .filter(idempotency_keys::owner_id.eq(owner.to_owned()))
        .filter(idempotency_keys::key.eq(key.to_owned()))
        .select((idempotency_keys::request_hash, idempotency_keys::answer))
        .first(conn)
        .optional()?)
}

/// Remembers an import's answer under its key.
pub fn remember_import(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    request_hash: &str,
    answer: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    remember(conn, owner, key, request_hash, "", Some(answer), now)
}

/// Remembers the item a create made under its key.
pub fn remember_key(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    request_hash: &str,
    item_id: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    remember(conn, owner, key, request_hash, item_id, None, now)
}

fn remember(
    conn: &mut DbConnection,
    owner: &str,
    key: &str,
    request_hash: &str,
    item_id: &str,
    answer: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::owner_id.eq(owner.to_owned()),
            idempotency_keys::key.eq(key.to_owned()),
            idempotency_keys::request_hash.eq(request_hash.to_owned()),
            idempotency_keys::item_id.eq(item_id.to_owned()),
            idempotency_keys::answer.eq(answer.map(str::to_owned)),
            idempotency_keys::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes up to `batch` of `owner`'s items (their chunks, tags, links and vectors go
/// by cascade); how many went. Called until it returns 0, so that no one transaction
/// holds the database for a whole large account.
pub fn delete_some_of_owner(
    conn: &mut DbConnection,
    owner: &str,
    batch: i64,
) -> Result<usize, DbError> {
    let ids: Vec<String> = content_items::table
        .filter(content_items::owner_id.eq(owner.to_owned()))
        .select(content_items::id)
        .limit(batch)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(content_items::table.filter(content_items::id.eq_any(&ids))).execute(conn)?;
    Ok(ids.len())
}

/// What `owner` keeps beside items: its embedding models and Idempotency-Keys.
pub fn delete_owner_records(conn: &mut DbConnection, owner: &str) -> Result<(), DbError> {
    use crate::schema::embedding_models;
    diesel::delete(embedding_models::table.filter(embedding_models::owner_id.eq(owner.to_owned())))
        .execute(conn)?;
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::owner_id.eq(owner.to_owned())))
        .execute(conn)?;
    super::changes::delete_owner(conn, owner)?;
    super::webhooks::delete_owner(conn, owner)?;
    Ok(())
}
