//! Service clients declared by configuration (`AUTH_CLIENTS_FILE`), so a deployment
//! can hand the same id and secret to the auth service and to the module that uses
//! them (compose's first-run script, a Kubernetes Secret) without calling the admin
//! API. At every start each declared client is created, or updated to the declared
//! secret and scopes (that is how its secret is rotated). A client an admin revoked
//! stays revoked.
//!
//! The file is JSON: `[{"id": "ingestion", "name": "ingestion", "secret": "…",
//! "scopes": ["content:write", "content:act_as"]}]` (`name` defaults to the id).

use diesel::prelude::*;
use peermesh_db::{Db, DbConnection, DbError};
use serde::Deserialize;

use crate::error::AuthError;
use crate::routes::admin::check_client;
use crate::schema::service_clients;
use crate::store::clients::{self, ServiceClient};
use crate::tokens::secret_hash;

/// Shortest secret accepted from the file (the generated ones are 43+ characters).
const MIN_SECRET_CHARS: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declared {
    id: String,
    name: Option<String>,
    secret: String,
    scopes: Vec<String>,
}

/// What happened to one declared client.
#[derive(Debug, PartialEq, Eq)]
pub enum Provisioned {
    Created,
    Updated,
    Unchanged,
    /// Revoked by an admin: left alone.
    Revoked,
}

/// Reads and checks the file; every problem names the client and the field.
fn read(path: &str) -> Result<Vec<ServiceClient>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("AUTH_CLIENTS_FILE {path}: {e}"))?;
    let declared: Vec<Declared> = serde_json::from_str(&text)
        .map_err(|e| format!("AUTH_CLIENTS_FILE {path}: not a list of clients: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    declared
        .into_iter()
        .map(|d| {
            let valid_id = !d.id.is_empty()
                && d.id.len() <= 64
                && d.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !valid_id {
                return Err(format!(
                    "AUTH_CLIENTS_FILE: client id {:?} must be 1 to 64 letters, digits, '-', '_' or '.'",
                    d.id
                ));
            }
            if !seen.insert(d.id.clone()) {
                return Err(format!("AUTH_CLIENTS_FILE: client {:?} is declared twice", d.id));
            }
            if d.secret.chars().count() < MIN_SECRET_CHARS {
                return Err(format!(
                    "AUTH_CLIENTS_FILE: the secret of client {:?} must have at least {MIN_SECRET_CHARS} characters",
                    d.id
                ));
            }
            let name = d.name.unwrap_or_else(|| d.id.clone());
            let scopes = check_client(&name, &d.scopes).map_err(|e| {
                let reason = match e {
                    AuthError::Invalid(fields) => fields
                        .iter()
                        .map(|f| format!("{}: {}", f.field, f.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                    other => other.to_string(),
                };
                format!("AUTH_CLIENTS_FILE: client {:?}: {reason}", d.id)
            })?;
            Ok(ServiceClient {
                id: d.id,
                name,
                secret_hash: secret_hash(&d.secret),
                scopes,
                created_by: None,
                created_at: crate::store::now(),
                revoked_at: None,
            })
        })
        .collect()
}

fn apply(conn: &mut DbConnection, wanted: &ServiceClient) -> Result<Provisioned, DbError> {
    let existing = service_clients::table
        .find(&wanted.id)
        .select(ServiceClient::as_select())
        .first(conn)
        .optional()?;
    Ok(match existing {
        None => {
            clients::insert(conn, wanted)?;
            Provisioned::Created
        }
        Some(c) if c.revoked_at.is_some() => Provisioned::Revoked,
        Some(c)
            if c.secret_hash == wanted.secret_hash
                && c.scopes == wanted.scopes
                && c.name == wanted.name =>
        {
            Provisioned::Unchanged
        }
        Some(_) => {
            diesel::update(service_clients::table.find(&wanted.id))
                .set((
                    service_clients::name.eq(&wanted.name),
                    service_clients::secret_hash.eq(&wanted.secret_hash),
                    service_clients::scopes.eq(&wanted.scopes),
                ))
                .execute(conn)?;
            Provisioned::Updated
        }
    })
}

/// Creates or updates the clients declared in `path`, in one transaction.
pub async fn clients_from_file(db: &Db, path: &str) -> Result<Vec<(String, Provisioned)>, String> {
    let wanted = read(path)?;
    db.write(move |conn| {
        wanted
            .iter()
            .map(|c| Ok((c.id.clone(), apply(conn, c)?)))
            .collect()
    })
    .await
    .map_err(|e| format!("AUTH_CLIENTS_FILE: {e}"))
}
