//! Embedding vectors per (item, model, chunk) and exact cosine search over one
//! owner's vectors of one model.

use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::{content_embeddings, embedding_models};
use crate::vectors::{self, TopK};

/// Rows read per round trip while scanning: bounded memory whatever the corpus size.
const SCAN_BATCH: i64 = 4096;

/// The model's fixed dimensions for this owner, if it has vectors of it.
pub fn model_dims(
    conn: &mut DbConnection,
    owner: &str,
    model: &str,
) -> Result<Option<i32>, DbError> {
    Ok(embedding_models::table
        .filter(embedding_models::owner_id.eq(owner.to_owned()))
        .filter(embedding_models::model.eq(model.to_owned()))
        .select(embedding_models::dims)
        .first(conn)
        .optional()?)
}

/// The owner's models, by name.
pub fn models(conn: &mut DbConnection, owner: &str) -> Result<Vec<(String, i32)>, DbError> {
    Ok(embedding_models::table
        .filter(embedding_models::owner_id.eq(owner.to_owned()))
        .select((embedding_models::model, embedding_models::dims))
        .order(embedding_models::model.asc())
        .load(conn)?)
}

/// The model's dimensions for this owner, registering `dims` if it has none yet. Two
/// first writers of a model at once on PostgreSQL both found no row and both inserted
/// it, and one failed; now the second waits for the first's row and reads it.
pub fn claim_model(
    conn: &mut DbConnection,
    owner: &str,
    model: &str,
    dims: i32,
) -> Result<i32, DbError> {
    let row = (
        embedding_models::owner_id.eq(owner.to_owned()),
        embedding_models::model.eq(model.to_owned()),
        embedding_models::dims.eq(dims),
        embedding_models::generation.eq(0i64),
    );
    peermesh_db::on_backend!(conn, |c| diesel::insert_into(embedding_models::table)
        .values(row)
        .on_conflict((embedding_models::owner_id, embedding_models::model))
        .do_nothing()
        .execute(c))?;
    Ok(model_dims(conn, owner, model)?.unwrap_or(dims))
}

/// Bumps the model's generation (its vectors changed); see [`claim_model`].
fn touch_model(conn: &mut DbConnection, owner: &str, model: &str) -> Result<(), DbError> {
    diesel::update(
        embedding_models::table
            .filter(embedding_models::owner_id.eq(owner.to_owned()))
            .filter(embedding_models::model.eq(model.to_owned())),
    )
    .set(embedding_models::generation.eq(embedding_models::generation + 1))
    .execute(conn)?;
    Ok(())
}

/// Replaces the item's vectors of `model` (claimed first, see [`claim_model`]) with
/// `vectors` (chunk, unit vector).
pub fn replace(
    conn: &mut DbConnection,
    owner: &str,
    item_id: &str,
    model: &str,
    vectors: &[(i32, Vec<f32>)],
) -> Result<(), DbError> {
    touch_model(conn, owner, model)?;
    diesel::delete(
        content_embeddings::table
            .filter(content_embeddings::item_id.eq(item_id.to_owned()))
            .filter(content_embeddings::model.eq(model.to_owned())),
    )
    .execute(conn)?;
    for batch in vectors.chunks(500) {
        let rows: Vec<_> = batch
            .iter()
            .map(|(chunk, v)| {
                (
                    content_embeddings::item_id.eq(item_id.to_owned()),
                    content_embeddings::owner_id.eq(owner.to_owned()),
                    content_embeddings::model.eq(model.to_owned()),
                    content_embeddings::chunk.eq(*chunk),
                    content_embeddings::vector.eq(vectors::to_bytes(v)),
                )
            })
            .collect();
        peermesh_db::on_backend!(conn, |c| diesel::insert_into(content_embeddings::table)
            .values(rows)
            .execute(c))?;
    }
    Ok(())
}

/// Drops the item's vectors (all models), marking those models changed.
pub fn delete_for_item(conn: &mut DbConnection, owner: &str, item_id: &str) -> Result<(), DbError> {
    let models: Vec<String> = content_embeddings::table
        .filter(content_embeddings::item_id.eq(item_id.to_owned()))
        .select(content_embeddings::model)
        .distinct()
        .load(conn)?;
    if models.is_empty() {
        return Ok(());
    }
    diesel::delete(
        content_embeddings::table.filter(content_embeddings::item_id.eq(item_id.to_owned())),
    )
    .execute(conn)?;
    diesel::update(
        embedding_models::table
            .filter(embedding_models::owner_id.eq(owner.to_owned()))
            .filter(embedding_models::model.eq_any(models)),
    )
    .set(embedding_models::generation.eq(embedding_models::generation + 1))
    .execute(conn)?;
    Ok(())
}

/// Marks the item's vectors stale (its body changed: they describe the old text) and
/// returns their models. They stay usable until new ones are PUT.
pub fn mark_stale(conn: &mut DbConnection, item_id: &str) -> Result<Vec<String>, DbError> {
    diesel::update(
        content_embeddings::table.filter(content_embeddings::item_id.eq(item_id.to_owned())),
    )
    .set(content_embeddings::stale.eq(true))
    .execute(conn)?;
    item_models(conn, item_id)
}

/// The item's vectors per model: (model, how many chunks have one, stale).
pub fn item_overview(
    conn: &mut DbConnection,
    item_id: &str,
) -> Result<Vec<(String, i64, bool)>, DbError> {
    let rows: Vec<(String, bool)> = content_embeddings::table
        .filter(content_embeddings::item_id.eq(item_id.to_owned()))
        .select((content_embeddings::model, content_embeddings::stale))
        .order(content_embeddings::model.asc())
        .load(conn)?;
    let mut overview: Vec<(String, i64, bool)> = Vec::new();
    for (model, stale) in rows {
        match overview.last_mut() {
            Some(last) if last.0 == model => {
                last.1 += 1;
                last.2 |= stale;
            }
            _ => overview.push((model, 1, stale)),
        }
    }
    Ok(overview)
}

/// The text of the item's chunk whose vector of `model` is nearest to `query` (unit
/// length); empty when it has none.
pub fn nearest_passage(
    conn: &mut DbConnection,
    item_id: &str,
    model: &str,
    query: &[f32],
) -> Result<String, DbError> {
    let rows: Vec<(i32, Vec<u8>)> = content_embeddings::table
        .filter(content_embeddings::item_id.eq(item_id.to_owned()))
        .filter(content_embeddings::model.eq(model.to_owned()))
        .select((content_embeddings::chunk, content_embeddings::vector))
        .load(conn)?;
    let best = rows
        .iter()
        .filter_map(|(chunk, v)| vectors::dot_bytes(query, v).map(|score| (*chunk, score)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((chunk, _)) = best else {
        return Ok(String::new());
    };
    Ok(super::items::chunks(conn, item_id, Some(chunk - 1), 1)?
        .pop()
        .map(|c| c.text)
        .unwrap_or_default())
}

/// The item's unit vectors of `model`, by chunk.
pub fn item_vectors(
    conn: &mut DbConnection,
    item_id: &str,
    model: &str,
) -> Result<Vec<Vec<f32>>, DbError> {
    let rows: Vec<Vec<u8>> = content_embeddings::table
        .filter(content_embeddings::item_id.eq(item_id.to_owned()))
        .filter(content_embeddings::model.eq(model.to_owned()))
        .order(content_embeddings::chunk.asc())
        .select(content_embeddings::vector)
        .load(conn)?;
    Ok(rows.iter().map(|b| vectors::from_bytes(b)).collect())
}

/// The models the item has vectors of.
pub fn item_models(conn: &mut DbConnection, item_id: &str) -> Result<Vec<String>, DbError> {
    Ok(content_embeddings::table
        .filter(content_embeddings::item_id.eq(item_id.to_owned()))
        .select(content_embeddings::model)
        .distinct()
        .load(conn)?)
}

/// The model's generation: it changes on every write to the owner's vectors of it.
pub fn generation(
    conn: &mut DbConnection,
    owner: &str,
    model: &str,
) -> Result<Option<i64>, DbError> {
    Ok(embedding_models::table
        .filter(embedding_models::owner_id.eq(owner.to_owned()))
        .filter(embedding_models::model.eq(model.to_owned()))
        .select(embedding_models::generation)
        .first(conn)
        .optional()?)
}

/// Visits every vector of `owner` and `model`, ordered by item then chunk, in batches:
/// memory stays bounded whatever the corpus size.
fn scan(
    conn: &mut DbConnection,
    owner: &str,
    model: &str,
    mut visit: impl FnMut(&str, &[u8]),
) -> Result<(), DbError> {
    let mut after: Option<(String, i32)> = None;
    loop {
        let mut q = content_embeddings::table
            .filter(content_embeddings::owner_id.eq(owner.to_owned()))
            .filter(content_embeddings::model.eq(model.to_owned()))
            .order((
                content_embeddings::item_id.asc(),
                content_embeddings::chunk.asc(),
            ))
            .select((
                content_embeddings::item_id,
                content_embeddings::chunk,
                content_embeddings::vector,
            ))
            .limit(SCAN_BATCH)
            .into_boxed();
        if let Some((item, chunk)) = &after {
            q = q.filter(
                content_embeddings::item_id
                    .gt(item.clone())
                    .or(content_embeddings::item_id
                        .eq(item.clone())
                        .and(content_embeddings::chunk.gt(*chunk))),
            );
        }
        let rows: Vec<(String, i32, Vec<u8>)> = q.load(conn)?;
        let full = rows.len() as i64 == SCAN_BATCH;
        for (item, _, bytes) in &rows {
            visit(item, bytes);
        }
        match rows.into_iter().last() {
            Some((item, chunk, _)) if full => after = Some((item, chunk)),
            _ => return Ok(()),
        }
    }
}

/// One owner's vectors of one model in memory: a dense row-major matrix.
pub struct Matrix {
    pub generation: i64,
    dims: usize,
    items: Vec<String>,
    /// Index into `items` of each row.
    row_item: Vec<u32>,
    data: Vec<f32>,
}

impl Matrix {
    /// Reads the vectors; `generation` must have been read before them, so a write in
    /// between makes the matrix look older than it is (reloaded next time), never newer.
    pub fn load(
        conn: &mut DbConnection,
        owner: &str,
        model: &str,
        dims: usize,
        generation: i64,
    ) -> Result<Self, DbError> {
        let mut m = Matrix {
            generation,
            dims,
            items: Vec::new(),
            row_item: Vec::new(),
            data: Vec::new(),
        };
        scan(conn, owner, model, |item, bytes| {
            if bytes.len() != dims * 4 {
                return;
            }
            if m.items.last().map(String::as_str) != Some(item) {
                m.items.push(item.to_owned());
            }
            m.row_item.push((m.items.len() - 1) as u32);
            m.data.extend(vectors::from_bytes(bytes));
        })?;
        Ok(m)
    }

    /// Approximate heap size, for the cache's budget.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
            + self.row_item.len() * 4
            + self.items.iter().map(|s| s.len() + 24).sum::<usize>()
    }

    /// The `k` items whose best row is most similar to `query` (unit length).
    pub fn nearest(&self, query: &[f32], k: usize, exclude: Option<&str>) -> Vec<(String, f32)> {
        let mut top = TopK::new(k);
        if query.len() != self.dims || self.dims == 0 {
            return Vec::new();
        }
        for (row, values) in self.data.chunks_exact(self.dims).enumerate() {
            let item = &self.items[self.row_item[row] as usize];
            if exclude == Some(item.as_str()) {
                continue;
            }
            top.offer(item, vectors::dot(query, values));
        }
        top.finish()
    }
}

/// How many vectors the owner has of `model`.
pub fn row_count(conn: &mut DbConnection, owner: &str, model: &str) -> Result<i64, DbError> {
    Ok(content_embeddings::table
        .filter(content_embeddings::owner_id.eq(owner.to_owned()))
        .filter(content_embeddings::model.eq(model.to_owned()))
        .count()
        .get_result(conn)?)
}

/// [`Matrix::nearest`] straight from the database, in bounded memory: for an owner
/// whose vectors do not fit the cache (≈ 20× slower than the in-memory matrix).
pub fn nearest_scan(
    conn: &mut DbConnection,
    owner: &str,
    model: &str,
    query: &[f32],
    k: usize,
    exclude: Option<&str>,
) -> Result<Vec<(String, f32)>, DbError> {
    let mut top = TopK::new(k);
    scan(conn, owner, model, |item, bytes| {
        if exclude != Some(item) {
            if let Some(score) = vectors::dot_bytes(query, bytes) {
                top.offer(item, score);
            }
        }
    })?;
    Ok(top.finish())
}
