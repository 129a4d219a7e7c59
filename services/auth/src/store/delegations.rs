//! `delegations`: which service clients a user has let act for them.

use chrono::TimeDelta;
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::delegations;

/// Records (or renews) that `user_id` lets `client_id` act for them.
pub fn grant(conn: &mut DbConnection, client_id: &str, user_id: &str) -> Result<(), DbError> {
    let now = super::now();
    peermesh_db::on_backend!(conn, |c| diesel::insert_into(delegations::table)
        .values((
            delegations::client_id.eq(client_id),
            delegations::user_id.eq(user_id),
            delegations::created_at.eq(now),
            delegations::renewed_at.eq(now),
        ))
        .on_conflict((delegations::client_id, delegations::user_id))
        .do_update()
        .set(delegations::renewed_at.eq(now))
        .execute(c))?;
    Ok(())
}

/// Whether `user_id` let `client_id` act for them within the last `ttl`.
pub fn is_live(
    conn: &mut DbConnection,
    client_id: &str,
    user_id: &str,
    ttl: TimeDelta,
) -> Result<bool, DbError> {
    let since = super::now() - ttl;
    Ok(diesel::select(diesel::dsl::exists(
        delegations::table
            .filter(delegations::client_id.eq(client_id))
            .filter(delegations::user_id.eq(user_id))
            .filter(delegations::renewed_at.gt(since)),
    ))
    .get_result(conn)?)
}
