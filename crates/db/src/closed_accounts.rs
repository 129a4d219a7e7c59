//! `closed_accounts`: the accounts deleted lately, kept by every service in its own
//! database (each service's migrations create this same table), so that each replica
//! can refuse their access tokens, which stay valid for up to their 15 minutes.

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeDelta;
use diesel::prelude::*;
use peermesh_common::auth::{ClosedAccounts, Principal, SCOPE_DELETE_ACCOUNTS};
use peermesh_common::health::Readiness;
use peermesh_common::ApiError;

use crate::{now, Db, DbConnection, DbError};

diesel::table! {
    closed_accounts (user_id) {
        user_id -> Text,
        closed_at -> Timestamp,
    }
}

/// How long a closing is held in memory: far longer than any access token lives
/// (15 minutes by default), so none signed before the closing is ever taken again.
pub fn remembered() -> TimeDelta {
    TimeDelta::hours(24)
}

/// How often each process reads the closings other replicas recorded.
pub const REFRESH: Duration = Duration::from_secs(5);

/// Records that `user_id`'s account is closed (again: the first time stays).
pub fn record(conn: &mut DbConnection, user_id: &str) -> Result<(), DbError> {
    let row = (
        closed_accounts::user_id.eq(user_id.to_owned()),
        closed_accounts::closed_at.eq(now()),
    );
    crate::on_backend!(conn, |c| diesel::insert_into(closed_accounts::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

/// Whether `user_id`'s account was closed (ever).
pub fn is_closed(conn: &mut DbConnection, user_id: &str) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        closed_accounts::table.filter(closed_accounts::user_id.eq(user_id.to_owned())),
    ))
    .get_result(conn)?)
}

/// The accounts closed within [`remembered`].
pub fn recent(conn: &mut DbConnection) -> Result<HashSet<String>, DbError> {
    let ids: Vec<String> = closed_accounts::table
        .filter(closed_accounts::closed_at.gt(now() - remembered()))
        .select(closed_accounts::user_id)
        .load(conn)?;
    Ok(ids.into_iter().collect())
}

/// The closed accounts of this service, read from the database now and again every
/// [`REFRESH`] until the process drains. A failed read (the database away, or its
/// migrations not applied yet: the service then is not ready) keeps the set as it was.
pub async fn watch(db: &Db, readiness: &Readiness) -> ClosedAccounts {
    let closed = ClosedAccounts::new();
    if let Ok(ids) = db.run(recent).await {
        closed.replace(ids);
    }
    let (db, set, readiness) = (db.clone(), closed.clone(), readiness.clone());
    actix_web::rt::spawn(async move {
        while !readiness.is_draining() {
            tokio::time::sleep(REFRESH).await;
            if let Ok(fresh) = db.run(recent).await {
                set.replace(fresh);
            }
        }
    });
    closed
}

/// The first step of each service's `DELETE /accounts/{id}`: only the auth service's
/// own token (scope `accounts:delete`) may ask; the account is closed here at once, in
/// the database (for the other replicas and later starts) and in this process's set,
/// so nothing more is written for it while its data goes. Returns the account's id.
pub async fn close_on_request(
    db: &Db,
    closed: &ClosedAccounts,
    caller: &Principal,
    raw_id: &str,
) -> Result<String, ApiError> {
    caller.require_service_scope(SCOPE_DELETE_ACCOUNTS)?;
    let user_id = uuid::Uuid::parse_str(raw_id)
        .map_err(|_| ApiError::not_found("no such account"))?
        .hyphenated()
        .to_string();
    let id = user_id.clone();
    db.write(move |conn| record(conn, &id)).await?;
    closed.close(user_id.clone());
    Ok(user_id)
}
