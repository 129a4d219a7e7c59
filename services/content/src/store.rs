//! The content service's tables; every query takes the owner it is scoped to.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::content_items;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = content_items)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct ContentItem {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub body: String,
    pub kind: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Newest first (ids are UUIDv7); `after` is the last id of the previous page.
pub fn page(
    conn: &mut DbConnection,
    owner_id: &str,
    limit: i64,
    after: Option<&str>,
) -> Result<Vec<ContentItem>, DbError> {
    let mut query = content_items::table
        .filter(content_items::owner_id.eq(owner_id.to_owned()))
        .select(ContentItem::as_select())
        .order(content_items::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(content_items::id.lt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}
