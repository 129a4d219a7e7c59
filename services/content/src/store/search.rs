//! Full-text search: SQLite FTS5 ranked by bm25, PostgreSQL `tsvector` ranked by
//! `ts_rank_cd`. Both index the title and the first 200 000 characters of the body in
//! a `content_fts` table kept in step by triggers inside the writing transaction
//! (migration 000002), and both find one owner's matches inside the index.

use std::collections::HashSet;

use diesel::dsl::sql;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Nullable, Text};
use peermesh_db::{DbConnection, DbError, MultiBackend};

use crate::query::SearchQuery;
use crate::schema::content_items;

/// Highlight marks put in by the database, replaced by `<mark>` after HTML-escaping.
const MARK_START: char = '\u{E000}';
const MARK_END: char = '\u{E001}';

/// Characters of the body the index holds (as `substr(body, 1, 200000)` and
/// `left(body, 200000)` in the migrations' triggers and views).
pub const INDEXED_CHARS: usize = 200_000;

/// Writes a new item's SQLite index entry (PostgreSQL's trigger does it there). The
/// indexed part of the body is bound as a borrowed slice: the trigger this replaces
/// read `new.body` whole, copying up to 100 MiB beside the row's own record.
pub fn index_new_item(
    conn: &mut diesel::SqliteConnection,
    id: &str,
    body: &str,
) -> Result<(), DbError> {
    let indexed = body
        .char_indices()
        .nth(INDEXED_CHARS)
        .map_or(body, |(end, _)| &body[..end]);
    // The row's other columns come before `body` in its record, so reading them here
    // does not load the body.
    diesel::sql_query(
        "INSERT INTO content_fts (rowid, owner_key, title, body) \
         SELECT seq, replace(owner_id, '-', ''), title, ? FROM content_items WHERE id = ?",
    )
    .bind::<Text, _>(indexed)
    .bind::<Text, _>(id)
    .execute(conn)?;
    Ok(())
}

/// One ranked hit: higher `score` is better; `seq` breaks ties (and pages).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f64,
    pub seq: i32,
}

/// Where the previous page ended: (score, seq).
pub type After = Option<(f64, i32)>;

#[derive(QueryableByName)]
struct HitRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Double)]
    score: f64,
    #[diesel(sql_type = Integer)]
    seq: i32,
}

#[derive(QueryableByName)]
struct LexemeRow {
    #[diesel(sql_type = Text)]
    lexeme: String,
}

#[derive(QueryableByName)]
struct SnippetRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    snippet: Option<String>,
}

/// The FTS5 expression for one owner's items: the owner's single-token key (its id
/// without hyphens, as the index's source view writes it) and the query over the
/// title and body columns only.
fn fts5_for_owner(owner: &str, query: &SearchQuery) -> String {
    let key: String = owner
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!(
        "owner_key : \"{key}\" AND {{title body}} : ({})",
        query.to_fts5()
    )
}

type Predicate = Box<dyn BoxableExpression<content_items::table, MultiBackend, SqlType = Bool>>;

/// A filter on `content_items` keeping `owner`'s items that match `query`.
pub fn match_predicate(conn: &DbConnection, owner: &str, query: &SearchQuery) -> Predicate {
    match conn {
        DbConnection::Sqlite(_) => Box::new(
            sql::<Bool>(
                "content_items.seq IN (SELECT rowid FROM content_fts WHERE content_fts MATCH ",
            )
            .bind::<Text, _>(fts5_for_owner(owner, query))
            .sql(")"),
        ),
        DbConnection::Pg(_) => Box::new(
            sql::<Bool>("content_items.seq IN (SELECT seq FROM content_fts WHERE owner_id = ")
                .bind::<Text, _>(owner.to_owned())
                .sql(" AND document @@ websearch_to_tsquery('english', ")
                .bind::<Text, _>(query.to_websearch())
                .sql("))"),
        ),
    }
}

/// The best-ranked items of `owner` matching `query`, after `after`, among the newest
/// `candidates` matches (ranking every match of a frequent word costs time that grows
/// with the collection; the newest are found without reading the others).
pub fn ranked(
    conn: &mut DbConnection,
    owner: &str,
    query: &SearchQuery,
    limit: i64,
    after: &After,
    candidates: i64,
) -> Result<Vec<Hit>, DbError> {
    let (after_score, after_seq) = match after {
        Some((s, seq)) => (Some(*s), *seq),
        None => (None, 0),
    };
    let rows: Vec<HitRow> = match conn {
        // bm25 is negative, lower is better; weights: owner key 0, title 4, body 1.
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT i.id AS id, h.score AS score, h.seq AS seq FROM ( \
                 SELECT seq, score FROM ( \
                     SELECT rowid AS seq, -bm25(content_fts, 0.0, 4.0, 1.0) AS score \
                     FROM content_fts WHERE content_fts MATCH ?1 \
                     ORDER BY rowid DESC LIMIT ?5) \
                 WHERE ?2 IS NULL OR score < ?2 OR (score = ?2 AND seq < ?3) \
                 ORDER BY score DESC, seq DESC LIMIT ?4) h \
             JOIN content_items i ON i.seq = h.seq \
             ORDER BY h.score DESC, h.seq DESC",
        )
        .bind::<Text, _>(fts5_for_owner(owner, query))
        .bind::<Nullable<Double>, _>(after_score)
        .bind::<Integer, _>(after_seq)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(candidates)
        .load(c)?,
        DbConnection::Pg(c) => diesel::sql_query(
            "SELECT i.id, h.score, h.seq FROM ( \
                 SELECT seq, score FROM ( \
                     SELECT f.seq, ts_rank_cd(f.document, q)::float8 AS score \
                     FROM ( \
                         SELECT seq, document FROM content_fts \
                         WHERE owner_id = $2 \
                           AND document @@ websearch_to_tsquery('english', $1) \
                         ORDER BY seq DESC LIMIT $6) f, \
                         websearch_to_tsquery('english', $1) q) s \
                 WHERE ($3::float8 IS NULL OR score < $3 OR (score = $3 AND seq < $4)) \
                 ORDER BY score DESC, seq DESC LIMIT $5) h \
             JOIN content_items i ON i.seq = h.seq \
             ORDER BY h.score DESC, h.seq DESC",
        )
        .bind::<Text, _>(query.to_websearch())
        .bind::<Text, _>(owner)
        .bind::<Nullable<Double>, _>(after_score)
        .bind::<Integer, _>(after_seq)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(candidates)
        .load(c)?,
    };
    Ok(rows
        .into_iter()
        .map(|r| Hit {
            id: r.id,
            score: r.score,
            seq: r.seq,
        })
        .collect())
}

/// A passage of each item's body around the matches, HTML-escaped, matches in `<mark>`.
pub fn snippets(
    conn: &mut DbConnection,
    owner: &str,
    query: &SearchQuery,
    hits: &[Hit],
) -> Result<Vec<(String, String)>, DbError> {
    if hits.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i32> = hits.iter().map(|h| h.seq).collect();
    let rows: Vec<SnippetRow> = match conn {
        // One lookup per hit: FTS5 finds a match by rowid directly, but a `rowid IN
        // (…)` list is a filter over every match of the query (3-4 ms for a word in
        // 50 000 items). The owner's key stays out of the expression: the hits are the
        // owner's already (checked again in the join), and its position list — one
        // entry per item of the owner — would cost more than the snippet itself.
        DbConnection::Sqlite(c) => {
            let expression = format!("{{title body}} : ({})", query.to_fts5());
            let mut rows = Vec::with_capacity(seqs.len());
            for seq in &seqs {
                let row: Option<SnippetRow> = diesel::sql_query(format!(
                    "SELECT i.id AS id, \
                         snippet(content_fts, 2, '{MARK_START}', '{MARK_END}', '…', 24) AS snippet \
                     FROM content_fts JOIN content_items i ON i.seq = content_fts.rowid \
                     WHERE content_fts MATCH ? AND content_fts.rowid = ? AND i.owner_id = ?"
                ))
                .bind::<Text, _>(&expression)
                .bind::<Integer, _>(*seq)
                .bind::<Text, _>(owner)
                .get_result(c)
                .optional()?;
                rows.extend(row);
            }
            rows
        }
        // The passages are cut here (crate::snippet), from the text the index holds,
        // against the query's words as the index's configuration makes them lexemes.
        DbConnection::Pg(c) => {
            let lexemes: Vec<LexemeRow> = diesel::sql_query(
                "SELECT unnest(tsvector_to_array(to_tsvector('english', $1))) AS lexeme",
            )
            .bind::<Text, _>(query.wanted_words())
            .load(c)?;
            let lexemes: HashSet<String> = lexemes.into_iter().map(|l| l.lexeme).collect();
            let texts: Vec<SnippetRow> = diesel::sql_query(
                "SELECT i.id, left(i.body, $3) AS snippet \
                 FROM content_items i WHERE i.seq = ANY($1) AND i.owner_id = $2",
            )
            .bind::<Array<Integer>, _>(seqs)
            .bind::<Text, _>(owner)
            .bind::<Integer, _>(INDEXED_CHARS as i32)
            .load(c)?;
            texts
                .into_iter()
                .map(|r| SnippetRow {
                    snippet: Some(crate::snippet::cut(
                        r.snippet.as_deref().unwrap_or_default(),
                        &lexemes,
                        (MARK_START, MARK_END),
                    )),
                    id: r.id,
                })
                .collect()
        }
    };
    Ok(rows
        .into_iter()
        .map(|r| (r.id, highlight(r.snippet.as_deref().unwrap_or_default())))
        .collect())
}

/// Characters of a passage shown as the snippet of an item found by meaning alone.
const PASSAGE_CHARS: usize = 200;

/// The start of a passage (cut at a word, `…` when cut), HTML-escaped, unmarked.
pub fn passage_snippet(passage: &str) -> String {
    let passage = passage.trim();
    match passage.char_indices().nth(PASSAGE_CHARS) {
        None => highlight(passage),
        Some((end, _)) => {
            let cut = &passage[..end];
            let cut = cut.rfind(char::is_whitespace).map_or(cut, |at| &cut[..at]);
            format!("{}…", highlight(cut.trim_end()))
        }
    }
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
    fn passages_are_cut_at_a_word_and_escaped() {
        assert_eq!(passage_snippet("  a <short> one "), "a &lt;short&gt; one");
        let long = "word ".repeat(100);
        let snippet = passage_snippet(&long);
        assert!(snippet.ends_with("word…"), "{snippet}");
        assert!(snippet.chars().count() <= PASSAGE_CHARS + 1);
        let unbroken = "é".repeat(300);
        assert_eq!(
            passage_snippet(&unbroken).chars().count(),
            PASSAGE_CHARS + 1
        );
    }

    #[test]
    fn snippets_are_escaped_and_marked() {
        assert_eq!(
            highlight("a <b> \u{E000}word\u{E001} & 'c'"),
            "a &lt;b&gt; <mark>word</mark> &amp; &#39;c&#39;"
        );
    }
}
