//! Knowledge-graph edges and their traversal (a recursive CTE, in the database).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::content_links;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = content_links)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Link {
    pub id: String,
    pub owner_id: String,
    pub source_id: String,
    pub target_id: String,
    pub relation: String,
    pub weight: Option<f64>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
    Both,
}

/// Inserts a link; `Err` with a unique violation when the same edge exists.
pub fn insert(conn: &mut DbConnection, link: &Link) -> Result<(), DbError> {
    diesel::insert_into(content_links::table)
        .values(link)
        .execute(conn)?;
    Ok(())
}

pub fn list(
    conn: &mut DbConnection,
    owner: &str,
    item_id: &str,
    direction: Direction,
    relation: Option<&str>,
    limit: i64,
    after: Option<&str>,
) -> Result<Vec<Link>, DbError> {
    let mut query = content_links::table
        .filter(content_links::owner_id.eq(owner.to_owned()))
        .select(Link::as_select())
        .order(content_links::id.asc())
        .limit(limit)
        .into_boxed();
    query = match direction {
        Direction::Out => query.filter(content_links::source_id.eq(item_id.to_owned())),
        Direction::In => query.filter(content_links::target_id.eq(item_id.to_owned())),
        Direction::Both => query.filter(
            content_links::source_id
                .eq(item_id.to_owned())
                .or(content_links::target_id.eq(item_id.to_owned())),
        ),
    };
    if let Some(relation) = relation {
        query = query.filter(content_links::relation.eq(relation.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(content_links::id.gt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// Deletes a link of `item_id` (either end); whether one went.
pub fn delete(
    conn: &mut DbConnection,
    owner: &str,
    item_id: &str,
    link_id: &str,
) -> Result<bool, DbError> {
    let n = diesel::delete(
        content_links::table
            .filter(content_links::id.eq(link_id.to_owned()))
            .filter(content_links::owner_id.eq(owner.to_owned()))
            .filter(
                content_links::source_id
                    .eq(item_id.to_owned())
                    .or(content_links::target_id.eq(item_id.to_owned())),
            ),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// An item found by a traversal, with its fewest hops from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub id: String,
    pub depth: i32,
}

/// Every item reachable from `start` within `depth` hops (the start at depth 0),
/// nearest first, at most `cap` + 1 (one more tells the caller it was cut).
///
/// Breadth first, one query per hop, with the items already found excluded in the
/// query: each item is expanded once, so cycles end by themselves, and each hop asks
/// only for as many new items as the cap still has room for. The work is therefore
/// bounded by the cap (at most `cap` items expanded, each with at most
/// `MAX_LINKS_PER_ITEM` outgoing links), not by how dense the graph is. (A recursive
/// CTE cannot do this: it has no "already found" set, so in a dense graph it meets
/// every item again at every depth before any limit applies.) Which items of the last
/// hop make the cut, when it is cut, is up to the database.
pub fn reachable(
    conn: &mut DbConnection,
    owner: &str,
    start: &str,
    depth: i32,
    direction: Direction,
    relation: Option<&str>,
    cap: i64,
) -> Result<Vec<Reached>, DbError> {
    let wanted = usize::try_from(cap.max(0) + 1).unwrap_or(usize::MAX);
    let mut reached = vec![Reached {
        id: start.to_owned(),
        depth: 0,
    }];
    let mut seen: Vec<String> = vec![start.to_owned()];
    let mut frontier: Vec<String> = vec![start.to_owned()];
    for hop in 1..=depth {
        let room = wanted.saturating_sub(reached.len());
        if frontier.is_empty() || room == 0 {
            break;
        }
        let mut found = Vec::new();
        if matches!(direction, Direction::Out | Direction::Both) {
            found = neighbours(conn, owner, &frontier, &seen, true, relation, room)?;
        }
        if matches!(direction, Direction::In | Direction::Both) && found.len() < room {
            let mut also = neighbours(conn, owner, &frontier, &seen, false, relation, room)?;
            also.retain(|id| !found.contains(id));
            found.extend(also);
        }
        found.sort();
        found.truncate(room);
        seen.extend(found.iter().cloned());
        reached.extend(found.iter().map(|id| Reached {
            id: id.clone(),
            depth: hop,
        }));
        frontier = found;
    }
    Ok(reached)
}

/// Up to `room` distinct items one hop from `frontier` (forward when `out`), none of
/// them in `seen`.
fn neighbours(
    conn: &mut DbConnection,
    owner: &str,
    frontier: &[String],
    seen: &[String],
    out: bool,
    relation: Option<&str>,
    room: usize,
) -> Result<Vec<String>, DbError> {
    let limit = i64::try_from(room).unwrap_or(i64::MAX);
    let links = content_links::table
        .filter(content_links::owner_id.eq(owner.to_owned()))
        .into_boxed();
    let links = match relation {
        Some(r) => links.filter(content_links::relation.eq(r.to_owned())),
        None => links,
    };
    let query = if out {
        links
            .filter(content_links::source_id.eq_any(frontier.to_vec()))
            .filter(content_links::target_id.ne_all(seen.to_vec()))
            .select(content_links::target_id)
    } else {
        links
            .filter(content_links::target_id.eq_any(frontier.to_vec()))
            .filter(content_links::source_id.ne_all(seen.to_vec()))
            .select(content_links::source_id)
    };
    Ok(query.distinct().limit(limit).load(conn)?)
}

/// The edges among `nodes` (both ends inside), at most `cap` + 1.
pub fn among(
    conn: &mut DbConnection,
    owner: &str,
    nodes: &[String],
    relation: Option<&str>,
    cap: i64,
) -> Result<Vec<Link>, DbError> {
    let mut query = content_links::table
        .filter(content_links::owner_id.eq(owner.to_owned()))
        .filter(content_links::source_id.eq_any(nodes.to_vec()))
        .filter(content_links::target_id.eq_any(nodes.to_vec()))
        .select(Link::as_select())
        .limit(cap + 1)
        .into_boxed();
    if let Some(relation) = relation {
        query = query.filter(content_links::relation.eq(relation.to_owned()));
    }
    // Sorted here, not in the database: ordering there would first gather every edge
    // among the nodes (up to nodes × links per item) to return the first few.
    let mut edges: Vec<Link> = query.load(conn)?;
    edges.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(edges)
}

/// How many links leave the item.
pub fn outgoing_count(conn: &mut DbConnection, source_id: &str) -> Result<i64, DbError> {
    Ok(content_links::table
        .filter(content_links::source_id.eq(source_id.to_owned()))
        .count()
        .get_result(conn)?)
}
