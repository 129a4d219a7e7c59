//! The first administrator (`AUTH_BOOTSTRAP_ADMIN_EMAIL`). Whoever registers an
//! address first has not proved they own it, so the role goes to that account only
//! once its address is verified (by the mailed link, a password reset, or a provider
//! that vouches for it) — or, with `AUTH_BOOTSTRAP_ADMIN_PASSWORD_FILE`, to an account
//! the operator's password defines, verified by the operator's word.

use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::{identities, users as users_table};
use crate::store::{sessions, users};

/// What happened to the bootstrap admin at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The verified account has the admin role.
    Ensured,
    /// No account yet, or its address is unverified: the role waits for verification.
    Waiting,
    /// Made from the password file: a new account, or one that held the address
    /// unverified (a squatter's or a stale sign-up), taken over.
    Created,
    TakenOver,
}

/// Gives `user_id` the admin role when its verified address is the bootstrap one.
/// Called wherever an address becomes verified.
pub fn promote_if_bootstrap(
    conn: &mut DbConnection,
    bootstrap: Option<&str>,
    user_id: &str,
) -> Result<(), DbError> {
    let Some(email) = bootstrap else {
        return Ok(());
    };
    match users::by_id(conn, user_id)? {
        Some(user) if user.email_verified && user.email == email => {
            users::promote_admin(conn, email).map(|_| ())
        }
        _ => Ok(()),
    }
}

/// At start-up, without a password file: promote the account only if verified.
pub fn ensure(conn: &mut DbConnection, email: &str) -> Result<Outcome, DbError> {
    match users::by_email(conn, email)? {
        Some(user) if user.email_verified => {
            users::promote_admin(conn, email)?;
            Ok(Outcome::Ensured)
        }
        _ => Ok(Outcome::Waiting),
    }
}

/// At start-up, with a password file (`password_hash` is its hash): a missing account
/// is created verified with that password; an unverified one is taken over — the
/// password set, every session ended, every identity dropped — since the operator, not
/// whoever signed up first, owns the address; a verified one is only promoted (its
/// owner proved the mailbox, and the file must not reset a password at every start).
pub fn ensure_with_password(
    conn: &mut DbConnection,
    email: &str,
    password_hash: &str,
) -> Result<Outcome, DbError> {
    let outcome = match users::by_email(conn, email)? {
        Some(user) if user.email_verified => Outcome::Ensured,
        Some(user) => {
            users::set_password_hash(conn, &user.id, password_hash)?;
            users::mark_email_verified(conn, &user.id, email)?;
            sessions::revoke_all(conn, &user.id, None, "bootstrap admin taken over")?;
            diesel::delete(identities::table.filter(identities::user_id.eq(&user.id)))
                .execute(conn)?;
            diesel::update(users_table::table.find(&user.id))
                .set(users_table::disabled.eq(false))
                .execute(conn)?;
            Outcome::TakenOver
        }
        None => {
            let mut user = users::User::new(email.to_owned(), None, password_hash.to_owned());
            user.email_verified = true;
            users::insert(conn, &user)?;
            Outcome::Created
        }
    };
    users::promote_admin(conn, email)?;
    Ok(outcome)
}
