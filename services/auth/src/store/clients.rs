//! Service clients (OAuth2 client credentials).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::service_clients;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_clients)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct ServiceClient {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    /// Space separated.
    pub scopes: String,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ServiceClient {
    pub fn scope_list(&self) -> Vec<String> {
        self.scopes.split_whitespace().map(str::to_owned).collect()
    }
}

pub fn insert(conn: &mut DbConnection, client: &ServiceClient) -> Result<(), DbError> {
    diesel::insert_into(service_clients::table)
        .values(client)
        .execute(conn)?;
    Ok(())
}

/// An active (not revoked) client.
pub fn active_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<ServiceClient>, DbError> {
    Ok(service_clients::table
        .find(id)
        .filter(service_clients::revoked_at.is_null())
        .select(ServiceClient::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_active(conn: &mut DbConnection) -> Result<Vec<ServiceClient>, DbError> {
    Ok(service_clients::table
        .filter(service_clients::revoked_at.is_null())
        .order(service_clients::id.desc())
        .select(ServiceClient::as_select())
        .load(conn)?)
}

/// True when an active client was revoked.
pub fn revoke(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::update(
        service_clients::table
            .find(id)
            .filter(service_clients::revoked_at.is_null()),
    )
    .set(service_clients::revoked_at.eq(super::now()))
    .execute(conn)?
        == 1)
}
