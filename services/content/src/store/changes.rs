//! `content_changes`: the change feed's rows (written by triggers on `content_items`,
//! see the migration), read per owner after a cursor.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::content_changes;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = content_changes)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Change {
    pub seq: i32,
    pub owner_id: String,
    pub item_id: String,
    /// `created`, `updated` or `deleted`.
    pub op: String,
    pub version: i64,
    pub changed_at: NaiveDateTime,
}

/// Up to `limit` of the owner's changes after `since`, in order.
pub fn after(
    conn: &mut DbConnection,
    owner: &str,
    since: i32,
    limit: i64,
) -> Result<Vec<Change>, DbError> {
    Ok(content_changes::table
        .filter(content_changes::owner_id.eq(owner.to_owned()))
        .filter(content_changes::seq.gt(since))
        .order(content_changes::seq.asc())
        .limit(limit)
        .select(Change::as_select())
        .load(conn)?)
}

/// The newest change of anyone (0 when there is none): what streams wait on.
pub fn latest(conn: &mut DbConnection) -> Result<i32, DbError> {
    Ok(content_changes::table
        .select(diesel::dsl::max(content_changes::seq))
        .first::<Option<i32>>(conn)?
        .unwrap_or(0))
}

/// The oldest change still kept, if any.
pub fn oldest(conn: &mut DbConnection) -> Result<Option<i32>, DbError> {
    Ok(content_changes::table
        .select(diesel::dsl::min(content_changes::seq))
        .first::<Option<i32>>(conn)?)
}

/// Removes changes made before `before`; how many.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, DbError> {
    Ok(
        diesel::delete(content_changes::table.filter(content_changes::changed_at.lt(before)))
            .execute(conn)?,
    )
}

/// Removes all of the owner's changes (their account was deleted).
pub fn delete_owner(conn: &mut DbConnection, owner: &str) -> Result<(), DbError> {
    diesel::delete(content_changes::table.filter(content_changes::owner_id.eq(owner.to_owned())))
        .execute(conn)?;
    Ok(())
}
