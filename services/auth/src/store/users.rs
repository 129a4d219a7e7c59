//! `users` and their `identities`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::{identities, users};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub email_verified: bool,
    pub roles: String,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl User {
    pub fn new(email: String, display_name: Option<String>, password_hash: String) -> Self {
        let now = super::now();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            email,
            display_name,
            password_hash: Some(password_hash),
            email_verified: false,
            roles: "user".into(),
            disabled: false,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.split_whitespace().any(|r| r == "admin")
    }
}

pub fn insert(conn: &mut DbConnection, user: &User) -> Result<(), DbError> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)?;
    Ok(())
}

pub fn by_email(conn: &mut DbConnection, email: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn by_id(conn: &mut DbConnection, id: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn set_display_name(
    conn: &mut DbConnection,
    id: &str,
    name: Option<String>,
) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::display_name.eq(name),
            users::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_password_hash(conn: &mut DbConnection, id: &str, hash: &str) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks the address verified if it is still the user's address; whether it was.
pub fn mark_email_verified(
    conn: &mut DbConnection,
    id: &str,
    email: &str,
) -> Result<bool, DbError> {
    let n = diesel::update(users::table.find(id).filter(users::email.eq(email)))
        .set((
            users::email_verified.eq(true),
            users::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

pub fn set_roles(conn: &mut DbConnection, id: &str, roles: &str) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((users::roles.eq(roles), users::updated_at.eq(super::now())))
        .execute(conn)?;
    Ok(())
}

pub fn set_disabled(conn: &mut DbConnection, id: &str, disabled: bool) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::disabled.eq(disabled),
            users::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Newest first; `after` is the id of the last user of the previous page.
pub fn page(
    conn: &mut DbConnection,
    limit: i64,
    after: Option<&str>,
) -> Result<Vec<User>, DbError> {
    let mut query = users::table
        .select(User::as_select())
        .order(users::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.lt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// The providers a user can sign in with besides a password.
pub fn providers(conn: &mut DbConnection, user_id: &str) -> Result<Vec<String>, DbError> {
    Ok(identities::table
        .filter(identities::user_id.eq(user_id))
        .select(identities::provider)
        .order(identities::provider.asc())
        .load(conn)?)
}

/// The providers of several users at once (one query for a page of users).
pub fn providers_of(
    conn: &mut DbConnection,
    user_ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<String>>, DbError> {
    let rows: Vec<(String, String)> = identities::table
        .filter(identities::user_id.eq_any(user_ids))
        .select((identities::user_id, identities::provider))
        .order((identities::user_id.asc(), identities::provider.asc()))
        .load(conn)?;
    let mut map: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (user, provider) in rows {
        map.entry(user).or_default().push(provider);
    }
    Ok(map)
}

/// Gives the account with this email the admin role; false when there is none.
pub fn promote_admin(conn: &mut DbConnection, email: &str) -> Result<bool, DbError> {
    let Some(user) = by_email(conn, email)? else {
        return Ok(false);
    };
    if !user.is_admin() {
        let mut roles: Vec<&str> = user.roles.split_whitespace().collect();
        roles.push("admin");
        roles.sort_unstable();
        roles.dedup();
        set_roles(conn, &user.id, &roles.join(" "))?;
    }
    Ok(true)
}

/// Deletes the account; its sessions, identities, delegations and tokens go by cascade.
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(users::table.find(id)).execute(conn)? > 0)
}
