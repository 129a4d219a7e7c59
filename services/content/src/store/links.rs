//! Knowledge-graph edges and their traversal (a recursive CTE, in the database).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
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

#[derive(Debug, Clone, QueryableByName)]
pub struct Reached {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Integer)]
    pub depth: i32,
}

/// Every item reachable from `start` within `depth` hops (the start at depth 0),
/// nearest first, at most `cap` + 1 rows (one more tells the caller it was cut).
/// `UNION` (not `UNION ALL`) drops repeated (item, depth) rows and the depth bound
/// ends every path, so cycles cannot make it loop.
pub fn reachable(
    conn: &mut DbConnection,
    owner: &str,
    start: &str,
    depth: i32,
    direction: Direction,
    relation: Option<&str>,
    cap: i64,
) -> Result<Vec<Reached>, DbError> {
    let (join, next) = match direction {
        Direction::Out => ("l.source_id = w.id", "l.target_id"),
        Direction::In => ("l.target_id = w.id", "l.source_id"),
        Direction::Both => (
            "(l.source_id = w.id OR l.target_id = w.id)",
            "CASE WHEN l.source_id = w.id THEN l.target_id ELSE l.source_id END",
        ),
    };
    let sql = |p: [&str; 5]| {
        format!(
            "WITH RECURSIVE walk(id, depth) AS ( \
                 SELECT CAST({p0} AS TEXT), 0 \
                 UNION \
                 SELECT {next}, w.depth + 1 FROM walk w JOIN content_links l ON {join} \
                 WHERE w.depth < {p1} AND l.owner_id = {p2} \
                   AND (CAST({p3} AS TEXT) IS NULL OR l.relation = {p3}) \
             ) \
             SELECT id, CAST(MIN(depth) AS INTEGER) AS depth FROM walk \
             GROUP BY id ORDER BY depth, id LIMIT {p4}",
            p0 = p[0],
            p1 = p[1],
            p2 = p[2],
            p3 = p[3],
            p4 = p[4],
        )
    };
    let relation = relation.map(str::to_owned);
    let rows = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(sql(["?1", "?2", "?3", "?4", "?5"]))
            .bind::<Text, _>(start)
            .bind::<Integer, _>(depth)
            .bind::<Text, _>(owner)
            .bind::<Nullable<Text>, _>(relation)
            .bind::<BigInt, _>(cap + 1)
            .load(c)?,
        DbConnection::Pg(c) => diesel::sql_query(sql(["$1", "$2", "$3", "$4", "$5"]))
            .bind::<Text, _>(start)
            .bind::<Integer, _>(depth)
            .bind::<Text, _>(owner)
            .bind::<Nullable<Text>, _>(relation)
            .bind::<BigInt, _>(cap + 1)
            .load(c)?,
    };
    Ok(rows)
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
        .order(content_links::id.asc())
        .limit(cap + 1)
        .into_boxed();
    if let Some(relation) = relation {
        query = query.filter(content_links::relation.eq(relation.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// How many links leave the item.
pub fn outgoing_count(conn: &mut DbConnection, source_id: &str) -> Result<i64, DbError> {
    Ok(content_links::table
        .filter(content_links::source_id.eq(source_id.to_owned()))
        .count()
        .get_result(conn)?)
}
