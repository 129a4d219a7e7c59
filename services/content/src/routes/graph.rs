//! The knowledge graph: typed, directed links between one owner's items, and
//! traversal from an item.

use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::http::JsonBody;
use peermesh_common::pagination::PageRequest;
use peermesh_common::reply::{Code, Reply};
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};

use super::{item_id, rfc3339};
use crate::caller::Caller;
use crate::error::ContentError;
use crate::store::items as items_store;
use crate::store::links::{self as store, Direction, Link};
use crate::validate::{self, Errors};
use crate::{AppState, PREFIX};

/// Outgoing links one item may have.
pub const MAX_LINKS_PER_ITEM: i64 = 1000;
pub const MAX_DEPTH: i32 = 5;

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    /// Another item of the same owner.
    pub target_id: String,
    /// What the link means: a slug such as `references`, `part-of`.
    pub relation: String,
    /// Optional strength, a finite number.
    pub weight: Option<f64>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct LinkOut {
    pub id: String,
    pub source_id: String,
    pub target_id: String,
    pub relation: String,
    pub weight: Option<f64>,
    pub created_at: String,
}

impl From<&Link> for LinkOut {
    fn from(l: &Link) -> Self {
        Self {
            id: l.id.clone(),
            source_id: l.source_id.clone(),
            target_id: l.target_id.clone(),
            relation: l.relation.clone(),
            weight: l.weight,
            created_at: rfc3339(l.created_at),
        }
    }
}

/// Links the item to another of the caller's items: 201; 404 when either item is
/// missing or someone else's; 409 when the same typed edge exists.
#[api_v2_operation(summary = "Link two items", tags(graph))]
pub async fn create_link(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    input: JsonBody<CreateLink>,
) -> Result<Reply<LinkOut, Code<201>>, ApiError> {
    let source_id = item_id(&path)?;
    let owner = caller.writable_owner()?;
    let mut errors = Errors::default();
    errors.check("relation", validate::slug(&input.relation));
    if input.weight.is_some_and(|w| !w.is_finite()) {
        errors.add("weight", "must be a finite number");
    }
    let target_id = uuid::Uuid::parse_str(&input.target_id)
        .map(|u| u.hyphenated().to_string())
        .unwrap_or_else(|_| {
            errors.add("target_id", "must be a content item id");
            String::new()
        });
    if target_id == source_id {
        errors.add("target_id", "must be another item than the link's source");
    }
    errors.finish()?;
    let link = Link {
        id: uuid::Uuid::now_v7().to_string(),
        owner_id: owner.clone(),
        source_id,
        target_id,
        relation: input.relation.clone(),
        weight: input.weight,
        created_at: chrono::Utc::now().naive_utc(),
    };
    let stored = link.clone();
    state
        .db
        .try_write(move |conn| {
            if items_store::visible_owner(conn, Some(&owner), &stored.source_id)?.is_none() {
                return Err(ContentError::NotFound);
            }
            if items_store::visible_owner(conn, Some(&owner), &stored.target_id)?.is_none() {
                return Err(ContentError::TargetNotFound);
            }
            if store::outgoing_count(conn, &stored.source_id)? >= MAX_LINKS_PER_ITEM {
                return Err(ContentError::TooManyLinks(MAX_LINKS_PER_ITEM));
            }
            store::insert(conn, &stored).map_err(|e| match e {
                e if e.is_unique_violation() => ContentError::LinkExists,
                e => e.into(),
            })
        })
        .await?;
    let location = format!("{PREFIX}/{}/links/{}", link.source_id, link.id);
    Ok(Reply::new(LinkOut::from(&link)).location(location))
}

fn direction(value: Option<&str>, default: Direction) -> Result<Direction, ApiError> {
    match value {
        None => Ok(default),
        Some("out") => Ok(Direction::Out),
        Some("in") => Ok(Direction::In),
        Some("both") => Ok(Direction::Both),
        Some(_) => Err(ApiError::validation(vec![FieldError::new(
            "direction",
            "must be out, in or both",
        )])),
    }
}

fn relation(value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(r) => validate::slug(r)
            .map(|()| Some(r.to_owned()))
            .map_err(|m| ApiError::validation(vec![FieldError::new("relation", m)])),
    }
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct LinksQuery {
    /// `out` (default: links from this item), `in` or `both`.
    pub direction: Option<String>,
    pub relation: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct LinksPage {
    pub items: Vec<LinkOut>,
    pub next_cursor: Option<String>,
}

/// The item's links, oldest first.
#[api_v2_operation(summary = "List an item's links", tags(graph))]
pub async fn list_links(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<LinksQuery>,
) -> Result<web::Json<LinksPage>, ApiError> {
    let id = item_id(&path)?;
    let dir = direction(query.direction.as_deref(), Direction::Out)?;
    let rel = relation(query.relation.as_deref())?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let scope = caller.read_scope();
    let request = page.clone();
    let mut links = state
        .db
        .run(move |conn| {
            let Some(owner) = items_store::visible_owner(conn, scope.as_deref(), &id)? else {
                return Ok(None);
            };
            store::list(
                conn,
                &owner,
                &id,
                dir,
                rel.as_deref(),
                request.fetch(),
                request.after.as_deref(),
            )
            .map(Some)
        })
        .await?
        .ok_or(ContentError::NotFound)?;
    let next_cursor = page.finish(&mut links, |l| &l.id);
    Ok(web::Json(LinksPage {
        items: links.iter().map(LinkOut::from).collect(),
        next_cursor,
    }))
}

/// Removes one of the item's links (either end).
#[api_v2_operation(summary = "Delete a link", tags(graph))]
pub async fn delete_link(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<NoContent, ApiError> {
    let (raw_item, raw_link) = path.into_inner();
    let id = item_id(&raw_item)?;
    let link_id = uuid::Uuid::parse_str(&raw_link)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::not_found("no such link"))?;
    let owner = caller.writable_owner()?;
    let deleted = state
        .db
        .write(move |conn| store::delete(conn, &owner, &id, &link_id))
        .await?;
    if deleted {
        Ok(NoContent)
    } else {
        Err(ApiError::not_found("no such link"))
    }
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct GraphQuery {
    /// Hops from the item: 1..=5, default 2.
    pub depth: Option<i32>,
    /// Follow only links of this relation.
    pub relation: Option<String>,
    /// `out` (default: follow links forward), `in` or `both`.
    pub direction: Option<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct GraphNode {
    pub id: String,
    pub title: String,
    pub kind: String,
    /// Fewest hops from the start item (0 for the item itself).
    pub depth: i32,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct GraphOut {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<LinkOut>,
    /// More was reachable than the node or edge cap allows.
    pub truncated: bool,
}

/// Everything reachable from the item within `depth` hops, cycle-safe, nearest first,
/// with the links among those items; capped (`truncated` then says so).
#[api_v2_operation(summary = "Traverse the knowledge graph from an item", tags(graph))]
pub async fn graph(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<GraphQuery>,
) -> Result<web::Json<GraphOut>, ApiError> {
    let id = item_id(&path)?;
    let depth = query.depth.unwrap_or(2);
    if !(1..=MAX_DEPTH).contains(&depth) {
        return Err(ApiError::validation(vec![FieldError::new(
            "depth",
            format!("must be between 1 and {MAX_DEPTH}"),
        )]));
    }
    let dir = direction(query.direction.as_deref(), Direction::Out)?;
    let rel = relation(query.relation.as_deref())?;
    let scope = caller.read_scope();
    let node_cap = state.limits.graph_max_nodes.max(1) as i64;
    let edge_cap = node_cap * 5;
    let out = state
        .db
        .run(move |conn| {
            let Some(owner) = items_store::visible_owner(conn, scope.as_deref(), &id)? else {
                return Ok(None);
            };
            let mut reached =
                store::reachable(conn, &owner, &id, depth, dir, rel.as_deref(), node_cap)?;
            let mut truncated = reached.len() as i64 > node_cap;
            reached.truncate(node_cap as usize);
            let ids: Vec<String> = reached.iter().map(|r| r.id.clone()).collect();
            let mut edges = store::among(conn, &owner, &ids, rel.as_deref(), edge_cap)?;
            if edges.len() as i64 > edge_cap {
                truncated = true;
                edges.truncate(edge_cap as usize);
            }
            let summaries = items_store::summaries(conn, &owner, &ids)?;
            Ok(Some((reached, edges, summaries, truncated)))
        })
        .await?
        .ok_or(ContentError::NotFound)?;
    let (reached, edges, summaries, truncated) = out;
    let by_id: std::collections::HashMap<&str, &items_store::Summary> =
        summaries.iter().map(|s| (s.id.as_str(), s)).collect();
    let nodes = reached
        .iter()
        .filter_map(|r| {
            by_id.get(r.id.as_str()).map(|s| GraphNode {
                id: s.id.clone(),
                title: s.title.clone(),
                kind: s.kind.clone(),
                depth: r.depth,
            })
        })
        .collect();
    Ok(web::Json(GraphOut {
        nodes,
        edges: edges.iter().map(LinkOut::from).collect(),
        truncated,
    }))
}
