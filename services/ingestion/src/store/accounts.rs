//! What a deleted account leaves here: its jobs, the record of its files and its feeds.

use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::{feeds, ingest_jobs, ingested_files};

/// Deletes the owner's jobs, files records and feeds (with their entries); returns the
/// hashes of the files it had, whose stored bytes may now be unused.
pub fn erase(conn: &mut DbConnection, owner: &str) -> Result<Vec<String>, DbError> {
    let files: Vec<String> = ingested_files::table
        .filter(ingested_files::owner_id.eq(owner.to_owned()))
        .select(ingested_files::sha256)
        .load(conn)?;
    diesel::delete(ingested_files::table.filter(ingested_files::owner_id.eq(owner.to_owned())))
        .execute(conn)?;
    diesel::delete(ingest_jobs::table.filter(ingest_jobs::owner_id.eq(owner.to_owned())))
        .execute(conn)?;
    diesel::delete(feeds::table.filter(feeds::owner_id.eq(owner.to_owned()))).execute(conn)?;
    Ok(files)
}

/// Whether another owner's upload holds the same bytes (blobs are shared by hash).
pub fn file_in_use(conn: &mut DbConnection, sha256: &str) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        ingested_files::table.filter(ingested_files::sha256.eq(sha256.to_owned())),
    ))
    .get_result(conn)?)
}
