//! Refresh families (sessions) and their rotating refresh tokens.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use super::users::{self, User};
use crate::schema::{refresh_families, refresh_tokens};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_families)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Family {
    pub id: String,
    pub user_id: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoke_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct RefreshToken {
    pub token_hash: String,
    pub family_id: String,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub rotated_at: Option<NaiveDateTime>,
}

/// How long tokens live and how long a rotated one may still be presented.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    pub ttl: TimeDelta,
    pub grace: TimeDelta,
}

/// Starts a family for a sign-in, holding its first refresh token.
pub fn start(
    conn: &mut DbConnection,
    user_id: &str,
    user_agent: Option<String>,
    ip: Option<String>,
    token_hash: &str,
    policy: RefreshPolicy,
) -> Result<Family, DbError> {
    let now = super::now();
    let family = Family {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_owned(),
        user_agent,
        ip,
        created_at: now,
        last_used_at: now,
        revoked_at: None,
        revoke_reason: None,
    };
    diesel::insert_into(refresh_families::table)
        .values(&family)
        .execute(conn)?;
    insert_token(conn, &family.id, token_hash, now, policy)?;
    Ok(family)
}

fn insert_token(
    conn: &mut DbConnection,
    family_id: &str,
    token_hash: &str,
    now: NaiveDateTime,
    policy: RefreshPolicy,
) -> Result<(), DbError> {
    diesel::insert_into(refresh_tokens::table)
        .values(&RefreshToken {
            token_hash: token_hash.to_owned(),
            family_id: family_id.to_owned(),
            issued_at: now,
            expires_at: now + policy.ttl,
            rotated_at: None,
        })
        .execute(conn)?;
    Ok(())
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Refresh {
    /// A new token (`new_hash`) now belongs to the family.
    Issued {
        family: Box<Family>,
        user: Box<User>,
    },
    /// Unknown, expired, revoked, or its user is disabled.
    Refused(&'static str),
    /// An already rotated token presented after the grace window: the family is revoked.
    Reused,
}

/// Rotates `presented_hash` to `new_hash`. Must run inside a write transaction: the
/// rotation is a conditional update, so of two racing refreshes exactly one rotates
/// and the other lands in the grace window — both succeed, the family survives.
pub fn rotate(
    conn: &mut DbConnection,
    presented_hash: &str,
    new_hash: &str,
    policy: RefreshPolicy,
) -> Result<Refresh, DbError> {
    let now = super::now();
    let Some(token) = refresh_tokens::table
        .find(presented_hash)
        .select(RefreshToken::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(Refresh::Refused("unknown refresh token"));
    };
    let family: Family = refresh_families::table
        .find(&token.family_id)
        .select(Family::as_select())
        .first(conn)?;
    if family.revoked_at.is_some() {
        return Ok(Refresh::Refused("this session has been revoked"));
    }
    if token.expires_at <= now {
        return Ok(Refresh::Refused("the refresh token has expired"));
    }
    let Some(user) = users::by_id(conn, &family.user_id)? else {
        return Ok(Refresh::Refused("unknown refresh token"));
    };
    if user.disabled {
        revoke(conn, &family.id, None, "user disabled")?;
        return Ok(Refresh::Refused("this account is disabled"));
    }

    let rotated_now = token.rotated_at.is_none()
        && diesel::update(
            refresh_tokens::table
                .find(presented_hash)
                .filter(refresh_tokens::rotated_at.is_null()),
        )
        .set(refresh_tokens::rotated_at.eq(now))
        .execute(conn)?
            == 1;
    if !rotated_now {
        // Rotated before (or a moment ago by a racing request): a sibling token is
        // fine within the grace window; afterwards it is a stolen token being replayed.
        let rotated_at = refresh_tokens::table
            .find(presented_hash)
            .select(refresh_tokens::rotated_at)
            .first::<Option<NaiveDateTime>>(conn)?
            .unwrap_or(now);
        if now - rotated_at > policy.grace {
            revoke(conn, &family.id, None, "refresh token reused")?;
            return Ok(Refresh::Reused);
        }
    }
    insert_token(conn, &family.id, new_hash, now, policy)?;
    diesel::update(refresh_families::table.find(&family.id))
        .set(refresh_families::last_used_at.eq(now))
        .execute(conn)?;
    Ok(Refresh::Issued {
        family: Box::new(family),
        user: Box::new(user),
    })
}

/// Revokes one family (of `user_id`, when given). True when it was active.
pub fn revoke(
    conn: &mut DbConnection,
    family_id: &str,
    user_id: Option<&str>,
    reason: &str,
) -> Result<bool, DbError> {
    let mut query = diesel::update(refresh_families::table)
        .filter(refresh_families::id.eq(family_id))
        .filter(refresh_families::revoked_at.is_null())
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(refresh_families::user_id.eq(user_id.to_owned()));
    }
    let changed = query
        .set((
            refresh_families::revoked_at.eq(super::now()),
            refresh_families::revoke_reason.eq(reason),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Revokes every active family of a user except `keep`; returns how many.
pub fn revoke_all(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
) -> Result<usize, DbError> {
    let mut query = diesel::update(refresh_families::table)
        .filter(refresh_families::user_id.eq(user_id.to_owned()))
        .filter(refresh_families::revoked_at.is_null())
        .into_boxed();
    if let Some(keep) = keep {
        query = query.filter(refresh_families::id.ne(keep.to_owned()));
    }
    Ok(query
        .set((
            refresh_families::revoked_at.eq(super::now()),
            refresh_families::revoke_reason.eq(reason),
        ))
        .execute(conn)?)
}

/// The family a refresh token belongs to.
pub fn family_of(conn: &mut DbConnection, token_hash: &str) -> Result<Option<Family>, DbError> {
    Ok(refresh_tokens::table
        .inner_join(refresh_families::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(Family::as_select())
        .first(conn)
        .optional()?)
}

/// Whether the family is still usable (not revoked).
pub fn is_active(conn: &mut DbConnection, family_id: &str) -> Result<bool, DbError> {
    Ok(refresh_families::table
        .find(family_id)
        .select(refresh_families::revoked_at)
        .first::<Option<NaiveDateTime>>(conn)
        .optional()?
        .is_some_and(|revoked| revoked.is_none()))
}

/// A user's families that are neither revoked nor past the life of their newest token.
pub fn active(conn: &mut DbConnection, user_id: &str) -> Result<Vec<Family>, DbError> {
    let now = super::now();
    let live = refresh_tokens::table
        .filter(refresh_tokens::expires_at.gt(now))
        .select(refresh_tokens::family_id);
    Ok(refresh_families::table
        .filter(refresh_families::user_id.eq(user_id))
        .filter(refresh_families::revoked_at.is_null())
        .filter(refresh_families::id.eq_any(live))
        .order(refresh_families::last_used_at.desc())
        .select(Family::as_select())
        .load(conn)?)
}
