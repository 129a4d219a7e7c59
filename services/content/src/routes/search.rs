//! Full-text search, embeddings and similarity search over the caller's items.

use peermesh_common::http::JsonBody;
use std::collections::HashMap;

use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::pagination::PageRequest;
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};

use super::{item_id, ItemSummary};
use crate::caller::Caller;
use crate::error::ContentError;
use crate::hybrid;
use crate::query::SearchQuery;
use crate::store::{embeddings, items as items_store, search as store};
use crate::validate::{self, Errors};
use crate::vectors::{self, MAX_DIMS};
use crate::AppState;

/// Numbers one embeddings request may carry in all (16 MiB of f32).
pub const MAX_VECTOR_VALUES: usize = 4 * 1024 * 1024;
pub const MAX_K: usize = 100;

/// How hits are ranked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, Apiv2Schema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Words only (bm25 on SQLite, `ts_rank_cd` on PostgreSQL).
    #[default]
    Fulltext,
    /// Words and meaning: the full-text ranking fused with similarity to the query's
    /// vector of the service's own model (reciprocal rank fusion), so an item that
    /// says the same in other words is found too.
    Hybrid,
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Words (all must match), "exact phrases", -excluded, and OR between two terms.
    pub q: String,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `fulltext` (default) or `hybrid`.
    pub mode: Option<SearchMode>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct SearchHit {
    pub item: ItemSummary,
    /// Higher is better; comparable within one result list only.
    pub score: f64,
    /// HTML-escaped text around the matches, which are wrapped in `<mark>`; for an
    /// item found by meaning alone, its passage nearest to the query, unmarked.
    pub snippet: String,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct SearchPage {
    pub items: Vec<SearchHit>,
    pub next_cursor: Option<String>,
    /// How these hits were ranked: `hybrid` only when it was asked for and this
    /// deployment has an embedding model (see `/ready`), else `fulltext`.
    pub mode: SearchMode,
}

/// A search cursor: the last hit's exact score and its row number.
fn cursor_of(score: f64, seq: i32) -> String {
    format!("{:016x}:{seq}", score.to_bits())
}

fn bad_cursor() -> ContentError {
    ContentError::field("cursor", "is not a cursor this API gave out")
}

fn parse_cursor(raw: &str) -> Result<(f64, i32), ContentError> {
    raw.split_once(':')
        .and_then(|(bits, seq)| {
            let score = f64::from_bits(u64::from_str_radix(bits, 16).ok()?);
            Some((score, seq.parse().ok()?))
        })
        .filter(|(score, _)| score.is_finite())
        .ok_or_else(bad_cursor)
}

/// The caller's items ranked by relevance to `q`, best first.
#[api_v2_operation(summary = "Full-text or hybrid search", tags(search))]
pub async fn search(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SearchParams>,
) -> Result<web::Json<SearchPage>, ApiError> {
    let parsed = SearchQuery::parse(&query.q)
        .map_err(|m| ApiError::validation(vec![FieldError::new("q", m)]))?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let owner = caller.owner.clone();
    if let (Some(SearchMode::Hybrid), Some(embedder)) = (query.mode, state.embedder.clone()) {
        return hybrid_search(&state, owner, parsed, query.into_inner().q, page, embedder).await;
    }
    let after = page.after.as_deref().map(parse_cursor).transpose()?;
    let candidates = state.limits.search_candidates as i64;
    let (hits, next_cursor, summaries, snippets) = state
        .db
        .run(move |conn| {
            let hits = store::ranked(conn, &owner, &parsed, page.fetch(), &after, candidates)?;
            let mut keyed: Vec<(String, store::Hit)> = hits
                .into_iter()
                .map(|h| (cursor_of(h.score, h.seq), h))
                .collect();
            let next_cursor = page.finish(&mut keyed, |(cursor, _)| cursor);
            let page_hits: Vec<store::Hit> = keyed.iter().map(|(_, h)| h.clone()).collect();
            let ids: Vec<String> = page_hits.iter().map(|h| h.id.clone()).collect();
            let summaries = items_store::summaries(conn, &owner, &ids)?;
            let snippets = store::snippets(conn, &owner, &parsed, &page_hits)?;
            Ok((keyed, next_cursor, summaries, snippets))
        })
        .await?;
    let ranked = hits.into_iter().map(|(_, hit)| (hit.id, hit.score));
    Ok(web::Json(SearchPage {
        items: assemble(ranked, summaries, snippets.into_iter().collect()),
        next_cursor,
        mode: SearchMode::Fulltext,
    }))
}

/// Hits in rank order, with their items' summaries and snippets.
fn assemble(
    ranked: impl Iterator<Item = (String, f64)>,
    summaries: Vec<items_store::Summary>,
    mut snippets: HashMap<String, String>,
) -> Vec<SearchHit> {
    let mut summaries: HashMap<String, _> =
        summaries.into_iter().map(|s| (s.id.clone(), s)).collect();
    ranked
        .filter_map(|(id, score)| {
            summaries.remove(&id).map(|s| SearchHit {
                snippet: snippets.remove(&id).unwrap_or_default(),
                item: ItemSummary::from(&s),
                score,
            })
        })
        .collect()
}

/// `mode=hybrid`: the best [`hybrid::DEPTH`] of the full-text ranking and of the
/// similarity ranking, fused; pages are cut from the fused list.
async fn hybrid_search(
    state: &AppState,
    owner: String,
    parsed: SearchQuery,
    text: String,
    page: PageRequest,
    embedder: std::sync::Arc<crate::embedder::Embedder>,
) -> Result<web::Json<SearchPage>, ApiError> {
    let model = embedder.name().to_owned();
    let query_vector = web::block(move || embedder.embed(&[text.as_str()]))
        .await
        .map_err(|e| ApiError::internal(format!("embedding the query: {e}")))?
        .map_err(|e| ApiError::internal(format!("embedding the query: {e}")))?
        .pop()
        .ok_or_else(|| ApiError::internal("the model gave no vector for the query"))?;
    let candidates = state.limits.search_candidates as i64;
    let cache = state.vectors.clone();
    let (hits, next_cursor, summaries, snippets) = state
        .db
        .try_run(move |conn| -> Result<_, ContentError> {
            let depth = hybrid::DEPTH as i64;
            let by_text = store::ranked(conn, &owner, &parsed, depth, &None, candidates)?;
            let by_vector =
                cache.nearest(conn, &owner, &model, &query_vector, hybrid::DEPTH, None)?;
            let text_ids: Vec<String> = by_text.iter().map(|h| h.id.clone()).collect();
            let vector_ids: Vec<String> = by_vector.into_iter().map(|(id, _)| id).collect();
            let fused = hybrid::fuse(&text_ids, &vector_ids);
            let rest = match page.after.as_deref() {
                None => &fused[..],
                Some(cursor) => match hybrid::after(&fused, cursor) {
                    Some(rest) => rest,
                    None => return Err(bad_cursor()),
                },
            };
            let mut keyed: Vec<(String, hybrid::Fused)> = rest
                .iter()
                .take(page.fetch() as usize)
                .map(|hit| (hybrid::cursor_of(hit), hit.clone()))
                .collect();
            let next_cursor = page.finish(&mut keyed, |(cursor, _)| cursor);
            let ids: Vec<String> = keyed.iter().map(|(_, h)| h.id.clone()).collect();
            let summaries = items_store::summaries(conn, &owner, &ids)?;
            // Words matched: the index's snippet. Found by meaning alone: the passage.
            let matched: Vec<store::Hit> = by_text
                .into_iter()
                .filter(|h| ids.contains(&h.id))
                .collect();
            let mut snippets: HashMap<String, String> =
                store::snippets(conn, &owner, &parsed, &matched)?
                    .into_iter()
                    .collect();
            for (_, hit) in &keyed {
                if !snippets.contains_key(&hit.id) {
                    let passage =
                        embeddings::nearest_passage(conn, &hit.id, &model, &query_vector)?;
                    snippets.insert(hit.id.clone(), store::passage_snippet(&passage));
                }
            }
            Ok((keyed, next_cursor, summaries, snippets))
        })
        .await?;
    let ranked = hits.into_iter().map(|(_, hit)| (hit.id, hit.score));
    Ok(web::Json(SearchPage {
        items: assemble(ranked, summaries, snippets),
        next_cursor,
        mode: SearchMode::Hybrid,
    }))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct VectorIn {
    /// Index of the item's chunk this vector embeds.
    pub chunk: i32,
    pub vector: Vec<f32>,
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct PutEmbeddings {
    /// The embedding model's name; its dimensions are fixed per owner on first use.
    pub model: String,
    pub vectors: Vec<VectorIn>,
}

/// Replaces the item's vectors of one model (one per chunk at most): 204.
#[api_v2_operation(summary = "Store an item's embedding vectors", tags(search))]
pub async fn put_embeddings(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    input: JsonBody<PutEmbeddings>,
) -> Result<NoContent, ApiError> {
    let id = item_id(&path)?;
    let owner = caller.writable_owner()?;
    let input = input.into_inner();
    let mut errors = Errors::default();
    errors.check("model", validate::model(&input.model));
    let dims = input.vectors.first().map(|v| v.vector.len()).unwrap_or(0);
    if input.vectors.is_empty() {
        errors.add("vectors", "must hold at least one vector");
    } else if input.vectors.len() > validate::MAX_VECTORS {
        errors.add(
            "vectors",
            format!("at most {} vectors", validate::MAX_VECTORS),
        );
    } else if dims == 0 || dims > MAX_DIMS {
        errors.add(
            "vectors[0].vector",
            format!("must have 1..{MAX_DIMS} numbers"),
        );
    } else if dims * input.vectors.len() > MAX_VECTOR_VALUES {
        errors.add(
            "vectors",
            format!("at most {MAX_VECTOR_VALUES} numbers in all"),
        );
    }
    if let Some(own) = state.embedder.as_deref() {
        if input.model == own.name() && dims != own.dims() && dims > 0 {
            errors.add(
                "vectors",
                format!(
                    "this model's vectors have {} dimensions (the service computes them)",
                    own.dims()
                ),
            );
        }
    }
    errors.finish()?;
    let mut errors = Errors::default();
    let mut seen = std::collections::HashSet::new();
    let mut unit = Vec::with_capacity(input.vectors.len());
    for (i, v) in input.vectors.iter().enumerate() {
        if v.vector.len() != dims {
            errors.add(
                format!("vectors[{i}].vector"),
                format!("must have {dims} numbers like the first"),
            );
        } else if let Some(n) = vectors::normalize(&v.vector) {
            unit.push((v.chunk, n));
        } else {
            errors.add(
                format!("vectors[{i}].vector"),
                "must be finite numbers, not all zero",
            );
        }
        if !seen.insert(v.chunk) {
            errors.add(format!("vectors[{i}].chunk"), "appears twice");
        }
    }
    errors.finish()?;
    let model = input.model;
    let chunks: Vec<i32> = input.vectors.iter().map(|v| v.chunk).collect();
    state
        .db
        .try_write(move |conn| {
            if items_store::visible_owner(conn, Some(&owner), &id)?.is_none() {
                return Err(ContentError::NotFound);
            }
            let count = items_store::chunk_count(conn, &id)?;
            if let Some(i) = chunks
                .iter()
                .position(|c| i64::from(*c) < 0 || i64::from(*c) >= count)
            {
                return Err(ContentError::field(
                    format!("vectors[{i}].chunk"),
                    format!("must be a chunk index of the item, 0..{}", count - 1),
                ));
            }
            let fixed = embeddings::claim_model(conn, &owner, &model, dims as i32)?;
            if fixed as usize != dims {
                return Err(ContentError::field(
                    "vectors",
                    format!("this model's vectors have {fixed} dimensions"),
                ));
            }
            embeddings::replace(conn, &owner, &id, &model, &unit)?;
            Ok(())
        })
        .await?;
    Ok(NoContent)
}

/// The item's vectors of one model.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ModelVectorsOut {
    pub model: String,
    /// How many of the item's chunks have a vector of this model.
    pub vectors: i64,
    /// The body changed after they were written: they describe the old text (still
    /// used by similarity search) until new ones are PUT.
    pub stale: bool,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct EmbeddingsOut {
    pub models: Vec<ModelVectorsOut>,
}

/// Lists the item's vectors per model, saying which are stale.
#[api_v2_operation(summary = "The item's vectors per model", tags(search))]
pub async fn list_embeddings(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<EmbeddingsOut>, ApiError> {
    let id = item_id(&path)?;
    let scope = caller.read_scope();
    let overview = state
        .db
        .run(move |conn| {
            if items_store::visible_owner(conn, scope.as_deref(), &id)?.is_none() {
                return Ok(None);
            }
            embeddings::item_overview(conn, &id).map(Some)
        })
        .await?
        .ok_or(ContentError::NotFound)?;
    Ok(web::Json(EmbeddingsOut {
        models: overview
            .into_iter()
            .map(|(model, vectors, stale)| ModelVectorsOut {
                model,
                vectors,
                stale,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct SimilarQuery {
    /// Find items like this one (its chunks' mean vector)…
    pub content_id: Option<String>,
    /// …or like this vector (exactly one of the two).
    pub vector: Option<Vec<f32>>,
    /// How many items: 1..=100, default 10.
    pub k: Option<usize>,
    /// Needed when the caller has vectors of several models.
    pub model: Option<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct SimilarHit {
    pub item: ItemSummary,
    /// Cosine similarity of the item's best chunk, -1..1.
    pub score: f32,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct SimilarOut {
    pub model: String,
    pub items: Vec<SimilarHit>,
}

/// The caller's items nearest to an item or a vector by cosine similarity (exact).
#[api_v2_operation(summary = "Similarity search", tags(search))]
pub async fn similar(
    state: web::Data<AppState>,
    caller: Caller,
    input: JsonBody<SimilarQuery>,
) -> Result<web::Json<SimilarOut>, ApiError> {
    let input = input.into_inner();
    let k = input.k.unwrap_or(10);
    if !(1..=MAX_K).contains(&k) {
        return Err(ApiError::invalid_field(
            "k",
            format!("must be between 1 and {MAX_K}"),
        ));
    }
    if let Some(model) = &input.model {
        validate::model(model).map_err(|m| ApiError::invalid_field("model", m))?;
    }
    let owner = caller.owner.clone();
    let cache = state.vectors.clone();
    let (model, hits, summaries) = state
        .db
        .try_run(move |conn| -> Result<_, ContentError> {
            let (model, query, exclude) = match (input.content_id, input.vector) {
                (Some(raw), None) => {
                    let id = item_id(&raw)?;
                    if items_store::visible_owner(conn, Some(&owner), &id)?.is_none() {
                        return Err(ContentError::NotFound);
                    }
                    let model = match input.model {
                        Some(m) => m,
                        None => match embeddings::item_models(conn, &id)?.as_slice() {
                            [one] => one.clone(),
                            [] => {
                                return Err(ContentError::field(
                                    "content_id",
                                    "the item has no vectors yet",
                                ))
                            }
                            _ => {
                                return Err(ContentError::field(
                                    "model",
                                    "the item has vectors of several models; name one",
                                ))
                            }
                        },
                    };
                    let own = embeddings::item_vectors(conn, &id, &model)?;
                    let Some(query) = vectors::centroid(&own) else {
                        return Err(ContentError::field(
                            "content_id",
                            format!("the item has no vectors of model {model}"),
                        ));
                    };
                    (model, query, Some(id))
                }
                (None, Some(vector)) => {
                    let model = match input.model {
                        Some(m) => m,
                        None => match embeddings::models(conn, &owner)?.as_slice() {
                            [(one, _)] => one.clone(),
                            [] => {
                                return Err(ContentError::field(
                                    "vector",
                                    "there are no vectors to compare with yet",
                                ))
                            }
                            _ => {
                                return Err(ContentError::field(
                                    "model",
                                    "you have vectors of several models; name one",
                                ))
                            }
                        },
                    };
                    let Some(dims) = embeddings::model_dims(conn, &owner, &model)? else {
                        return Err(ContentError::field(
                            "model",
                            "you have no vectors of this model",
                        ));
                    };
                    if vector.len() != dims as usize {
                        return Err(ContentError::field(
                            "vector",
                            format!("must have {dims} numbers for this model"),
                        ));
                    }
                    let Some(query) = vectors::normalize(&vector) else {
                        return Err(ContentError::field(
                            "vector",
                            "must be finite numbers, not all zero",
                        ));
                    };
                    (model, query, None)
                }
                _ => {
                    return Err(ContentError::field(
                        "content_id",
                        "send exactly one of content_id and vector",
                    ))
                }
            };
            let hits = cache.nearest(conn, &owner, &model, &query, k, exclude.as_deref())?;
            let ids: Vec<String> = hits.iter().map(|(id, _)| id.clone()).collect();
            let summaries = items_store::summaries(conn, &owner, &ids)?;
            Ok((model, hits, summaries))
        })
        .await?;
    let mut by_id: HashMap<String, _> = summaries.into_iter().map(|s| (s.id.clone(), s)).collect();
    let items = hits
        .into_iter()
        .filter_map(|(id, score)| {
            by_id.remove(&id).map(|s| SimilarHit {
                item: ItemSummary::from(&s),
                score,
            })
        })
        .collect();
    Ok(web::Json(SimilarOut { model, items }))
}
