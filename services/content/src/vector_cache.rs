//! Similarity search over an in-memory copy of each owner's vectors. The copy is
//! checked against the model's `generation` (bumped in the database by every write)
//! before each use, so every replica sees writes made through any other; it is
//! reloaded when stale. The total size is bounded; an owner whose vectors alone would
//! exceed the budget is searched straight from the database instead.

use std::sync::Arc;

use peermesh_db::{DbConnection, DbError};

use crate::store::embeddings::{self, Matrix};

pub struct VectorCache {
    cache: moka::sync::Cache<(String, String), Arc<Matrix>>,
    budget_bytes: usize,
}

impl VectorCache {
    pub fn new(budget_bytes: usize) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity((budget_bytes / 1024) as u64)
            .weigher(|_, m: &Arc<Matrix>| u32::try_from(m.bytes() / 1024 + 1).unwrap_or(u32::MAX))
            .time_to_idle(std::time::Duration::from_secs(600))
            .build();
        Self {
            cache,
            budget_bytes,
        }
    }

    /// The `k` items of `owner` nearest to `query` (unit length) among its vectors of
    /// `model`, best first.
    pub fn nearest(
        &self,
        conn: &mut DbConnection,
        owner: &str,
        model: &str,
        query: &[f32],
        k: usize,
        exclude: Option<&str>,
    ) -> Result<Vec<(String, f32)>, DbError> {
        let Some(generation) = embeddings::generation(conn, owner, model)? else {
            return Ok(Vec::new());
        };
        let key = (owner.to_owned(), model.to_owned());
        if let Some(m) = self.cache.get(&key) {
            if m.generation == generation {
                return Ok(m.nearest(query, k, exclude));
            }
            self.cache.invalidate(&key);
        }
        let rows = embeddings::row_count(conn, owner, model)? as usize;
        if rows * query.len() * 4 > self.budget_bytes {
            return embeddings::nearest_scan(conn, owner, model, query, k, exclude);
        }
        // Concurrent misses of one key load once.
        let matrix = self
            .cache
            .try_get_with(key, || {
                Matrix::load(conn, owner, model, query.len(), generation).map(Arc::new)
            })
            .map_err(|e: Arc<DbError>| DbError::Task(e.to_string()))?;
        Ok(matrix.nearest(query, k, exclude))
    }

    /// Drops every copy of `owner`'s vectors (their account was deleted).
    pub fn forget_owner(&self, owner: &str) {
        for (key, _) in self.cache.iter() {
            if key.0 == owner {
                self.cache.invalidate(&*key);
            }
        }
    }
}
