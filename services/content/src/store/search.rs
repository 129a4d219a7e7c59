//! Full-text search: SQLite FTS5 ranked by bm25, PostgreSQL `tsvector` (a GIN
//! expression index) ranked by `ts_rank_cd`. Both index the title and the first
//! 200 000 characters of the body, and both are kept in step by the database itself
//! (FTS5 triggers, the expression index) inside the writing transaction.

use diesel::dsl::sql;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, Text};
use peermesh_db::{DbConnection, DbError, MultiBackend};

use crate::query::SearchQuery;
use crate::schema::content_items;

/// The document expression of the PostgreSQL GIN index (migration 000002); queries
/// must use exactly this expression for the index to apply.
const PG_DOCUMENT: &str = "(setweight(to_tsvector('english', title), 'A') \
     || setweight(to_tsvector('english', left(body, 200000)), 'B'))";

/// Highlight marks put in by the database, replaced by `<mark>` after HTML-escaping.
const MARK_START: char = '\u{E000}';
const MARK_END: char = '\u{E001}';

/// One ranked hit: higher `score` is better.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f64,
}

/// Where the previous page ended: (score, id).
pub type After = Option<(f64, String)>;

#[derive(QueryableByName)]
struct HitRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Double)]
    score: f64,
}

#[derive(QueryableByName)]
struct SnippetRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    snippet: Option<String>,
}

type Predicate = Box<dyn BoxableExpression<content_items::table, MultiBackend, SqlType = Bool>>;

/// A filter on `content_items` keeping the items that match `query`.
pub fn match_predicate(conn: &DbConnection, query: &SearchQuery) -> Predicate {
    match conn {
        DbConnection::Sqlite(_) => Box::new(
            sql::<Bool>(
                "content_items.seq IN (SELECT rowid FROM content_fts WHERE content_fts MATCH ",
            )
            .bind::<Text, _>(query.to_fts5())
            .sql(")"),
        ),
        DbConnection::Pg(_) => Box::new(
            sql::<Bool>(&format!(
                "{PG_DOCUMENT} @@ websearch_to_tsquery('english', "
            ))
            .bind::<Text, _>(query.to_websearch())
            .sql(")"),
        ),
    }
}

/// The best-ranked items of `owner` matching `query`, after `after`.
pub fn ranked(
    conn: &mut DbConnection,
    owner: &str,
    query: &SearchQuery,
    limit: i64,
    after: &After,
) -> Result<Vec<Hit>, DbError> {
    let (after_score, after_id) = match after {
        Some((s, id)) => (Some(*s), id.clone()),
        None => (None, String::new()),
    };
    let rows: Vec<HitRow> = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT id, score FROM ( \
                 SELECT i.id AS id, -bm25(content_fts, 4.0, 1.0) AS score \
                 FROM content_fts JOIN content_items i ON i.seq = content_fts.rowid \
                 WHERE content_fts MATCH ? AND i.owner_id = ?) \
             WHERE (? IS NULL OR score < ? OR (score = ? AND id < ?)) \
             ORDER BY score DESC, id DESC LIMIT ?",
        )
        .bind::<Text, _>(query.to_fts5())
        .bind::<Text, _>(owner)
        .bind::<Nullable<Double>, _>(after_score)
        .bind::<Nullable<Double>, _>(after_score)
        .bind::<Nullable<Double>, _>(after_score)
        .bind::<Text, _>(&after_id)
        .bind::<BigInt, _>(limit)
        .load(c)?,
        DbConnection::Pg(c) => diesel::sql_query(format!(
            "SELECT id, score FROM ( \
                 SELECT i.id, ts_rank_cd({PG_DOCUMENT}, q)::float8 AS score \
                 FROM content_items i, websearch_to_tsquery('english', $1) q \
                 WHERE i.owner_id = $2 AND {PG_DOCUMENT} @@ q) s \
             WHERE ($3::float8 IS NULL OR score < $3 OR (score = $3 AND id < $4)) \
             ORDER BY score DESC, id DESC LIMIT $5"
        ))
        .bind::<Text, _>(query.to_websearch())
        .bind::<Text, _>(owner)
        .bind::<Nullable<Double>, _>(after_score)
        .bind::<Text, _>(&after_id)
        .bind::<BigInt, _>(limit)
        .load(c)?,
    };
    Ok(rows
        .into_iter()
        .map(|r| Hit {
            id: r.id,
            score: r.score,
        })
        .collect())
}

/// A short passage of each item around the matches, HTML-escaped, matches in `<mark>`.
pub fn snippets(
    conn: &mut DbConnection,
    query: &SearchQuery,
    ids: &[String],
) -> Result<Vec<(String, String)>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<SnippetRow> = match conn {
        DbConnection::Sqlite(c) => {
            let placeholders = vec!["?"; ids.len()].join(", ");
            let mut q = diesel::sql_query(format!(
                "SELECT i.id AS id, \
                     snippet(content_fts, -1, '{MARK_START}', '{MARK_END}', '…', 24) AS snippet \
                 FROM content_fts JOIN content_items i ON i.seq = content_fts.rowid \
                 WHERE content_fts MATCH ? AND i.id IN ({placeholders})"
            ))
            .into_boxed::<diesel::sqlite::Sqlite>()
            .bind::<Text, _>(query.to_fts5());
            for id in ids {
                q = q.bind::<Text, _>(id.clone());
            }
            q.load(c)?
        }
        DbConnection::Pg(c) => diesel::sql_query(format!(
            "SELECT i.id, ts_headline('english', left(i.body, 200000), q, \
                 'StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12, \
                  MaxFragments=2, FragmentDelimiter=\" … \"') AS snippet \
             FROM content_items i, websearch_to_tsquery('english', $1) q \
             WHERE i.id = ANY($2)"
        ))
        .bind::<Text, _>(query.to_websearch())
        .bind::<Array<Text>, _>(ids)
        .load(c)?,
    };
    Ok(rows
        .into_iter()
        .map(|r| (r.id, highlight(r.snippet.as_deref().unwrap_or_default())))
        .collect())
}

/// HTML-escapes a snippet and turns the database's marks into `<mark>` elements.
fn highlight(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        match c {
            MARK_START => out.push_str("<mark>"),
            MARK_END => out.push_str("</mark>"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_escaped_and_marked() {
        assert_eq!(
            highlight("a <b> \u{E000}word\u{E001} & 'c'"),
            "a &lt;b&gt; <mark>word</mark> &amp; &#39;c&#39;"
        );
    }
}
