//! Single-use tokens sent by mail (verification, password reset), stored hashed.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use crate::schema::email_tokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }
}

/// Stores a new token for `user_id` and voids the user's earlier unused ones of the
/// same purpose: only the newest link works.
pub fn issue(
    conn: &mut DbConnection,
    user_id: &str,
    email: &str,
    purpose: Purpose,
    token_hash: &str,
    ttl: TimeDelta,
) -> Result<(), DbError> {
    let now = super::now();
    diesel::update(
        email_tokens::table
            .filter(email_tokens::user_id.eq(user_id.to_owned()))
            .filter(email_tokens::purpose.eq(purpose.as_str()))
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    diesel::insert_into(email_tokens::table)
        .values((
            email_tokens::token_hash.eq(token_hash.to_owned()),
            email_tokens::user_id.eq(user_id.to_owned()),
            email_tokens::purpose.eq(purpose.as_str()),
            email_tokens::email.eq(email.to_owned()),
            email_tokens::created_at.eq(now),
            email_tokens::expires_at.eq(now + ttl),
        ))
        .execute(conn)?;
    Ok(())
}

/// Why a presented token does not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    Used,
    Expired,
}

/// The token's user and address if it can still be used.
pub fn peek(
    conn: &mut DbConnection,
    token_hash: &str,
    purpose: Purpose,
) -> Result<Result<(String, String), Refused>, DbError> {
    let row: Option<(String, String, NaiveDateTime, Option<NaiveDateTime>)> = email_tokens::table
        .filter(email_tokens::token_hash.eq(token_hash.to_owned()))
        .filter(email_tokens::purpose.eq(purpose.as_str()))
        .select((
            email_tokens::user_id,
            email_tokens::email,
            email_tokens::expires_at,
            email_tokens::used_at,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        None => Err(Refused::Unknown),
        Some((_, _, _, Some(_))) => Err(Refused::Used),
        Some((_, _, expires_at, None)) if expires_at <= super::now() => Err(Refused::Expired),
        Some((user_id, email, _, None)) => Ok((user_id, email)),
    })
}

/// Marks the token used and returns (user id, email it was sent to) — once. Run in a
/// write transaction: the conditional update lets only one of two racing uses win.
pub fn consume(
    conn: &mut DbConnection,
    token_hash: &str,
    purpose: Purpose,
) -> Result<Result<(String, String), Refused>, DbError> {
    let found = match peek(conn, token_hash, purpose)? {
        Ok(found) => found,
        Err(why) => return Ok(Err(why)),
    };
    let won = diesel::update(
        email_tokens::table
            .filter(email_tokens::token_hash.eq(token_hash.to_owned()))
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(Some(super::now())))
    .execute(conn)?;
    if won == 0 {
        return Ok(Err(Refused::Used));
    }
    Ok(Ok(found))
}

/// When the user's newest token of `purpose` was issued.
pub fn last_issued(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: Purpose,
) -> Result<Option<NaiveDateTime>, DbError> {
    Ok(email_tokens::table
        .filter(email_tokens::user_id.eq(user_id.to_owned()))
        .filter(email_tokens::purpose.eq(purpose.as_str()))
        .select(diesel::dsl::max(email_tokens::created_at))
        .first(conn)?)
}
