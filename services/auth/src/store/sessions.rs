//! Refresh families (sessions) and their rotating refresh tokens.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use super::users::{self, User};
use crate::schema::{refresh_families, refresh_tokens};
use crate::tokens::{open_successor, seal_successor, secret_hash};

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
    /// Set at rotation: the successor, sealed under this token (see `tokens`).
    pub successor_sealed: Option<String>,
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
            successor_sealed: None,
        })
        .execute(conn)?;
    Ok(())
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Refresh {
    /// The family's current refresh token is `refresh_token`: the new one, or — for a
    /// replay within the grace window — the one the first presentation got.
    Issued {
        family: Box<Family>,
        user: Box<User>,
        refresh_token: String,
    },
    /// Unknown, expired, revoked, or its user is disabled.
    Refused(&'static str),
    /// An already rotated token presented after the grace window: the family is revoked.
    Reused,
}

/// How far a replay follows successors to the family's newest token.
const MAX_CHAIN_STEPS: usize = 32;

/// Rotates `presented` to `fresh` (both plain tokens with `prefix`). Must run inside a
/// write transaction: the rotation is a conditional update, so of racing refreshes
/// exactly one rotates. Presenting a rotated token again within the grace window
/// returns the family's newest token — the same one the first presentation started
/// — so a family is always one chain; after the window it revokes the family.
pub fn rotate(
    conn: &mut DbConnection,
    presented: &str,
    fresh: &str,
    prefix: &str,
    policy: RefreshPolicy,
) -> Result<Refresh, DbError> {
    let now = super::now();
    let presented_hash = secret_hash(presented);
    let Some(token) = find_token(conn, &presented_hash)? else {
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

    let sealed = seal_successor(presented, prefix, fresh);
    let rotated_now = token.rotated_at.is_none()
        && sealed.is_some()
        && diesel::update(
            refresh_tokens::table
                .find(&presented_hash)
                .filter(refresh_tokens::rotated_at.is_null()),
        )
        .set((
            refresh_tokens::rotated_at.eq(now),
            refresh_tokens::successor_sealed.eq(&sealed),
        ))
        .execute(conn)?
            == 1;
    let refresh_token = if rotated_now {
        insert_token(conn, &family.id, &secret_hash(fresh), now, policy)?;
        fresh.to_owned()
    } else {
        // Rotated before (or a moment ago by a racing request). Within the grace
        // window that is another tab of the same browser: it gets the chain's newest
        // token. Afterwards it is a stolen token being replayed.
        let Some(rotated) = find_token(conn, &presented_hash)? else {
            return Ok(Refresh::Refused("unknown refresh token"));
        };
        if now - rotated.rotated_at.unwrap_or(now) > policy.grace {
            revoke(conn, &family.id, None, "refresh token reused")?;
            return Ok(Refresh::Reused);
        }
        match newest_of_chain(conn, presented.to_owned(), rotated, prefix, now)? {
            Some(newest) => newest,
            None => return Ok(Refresh::Refused("this refresh token has been replaced")),
        }
    };
    diesel::update(refresh_families::table.find(&family.id))
        .set(refresh_families::last_used_at.eq(now))
        .execute(conn)?;
    Ok(Refresh::Issued {
        family: Box::new(family),
        user: Box::new(user),
        refresh_token,
    })
}

fn find_token(conn: &mut DbConnection, hash: &str) -> Result<Option<RefreshToken>, DbError> {
    Ok(refresh_tokens::table
        .find(hash)
        .select(RefreshToken::as_select())
        .first(conn)
        .optional()?)
}

/// Follows sealed successors from the rotated `plain` to the first token not yet
/// rotated (and not expired). `None` when the chain is broken (e.g. rotated before
/// successors were kept).
fn newest_of_chain(
    conn: &mut DbConnection,
    mut plain: String,
    mut row: RefreshToken,
    prefix: &str,
    now: NaiveDateTime,
) -> Result<Option<String>, DbError> {
    for _ in 0..MAX_CHAIN_STEPS {
        let Some(next) = row
            .successor_sealed
            .as_deref()
            .and_then(|sealed| open_successor(&plain, prefix, sealed))
        else {
            return Ok(None);
        };
        let Some(next_row) = find_token(conn, &secret_hash(&next))? else {
            return Ok(None);
        };
        if next_row.family_id != row.family_id || next_row.expires_at <= now {
            return Ok(None);
        }
        if next_row.rotated_at.is_none() {
            return Ok(Some(next));
        }
        (plain, row) = (next, next_row);
    }
    Ok(None)
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

/// Whether the user has ever signed in from `ip` (a session started there).
pub fn signed_in_from(conn: &mut DbConnection, user_id: &str, ip: &str) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        refresh_families::table
            .filter(refresh_families::user_id.eq(user_id))
            .filter(refresh_families::ip.eq(ip)),
    ))
    .get_result(conn)?)
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

/// When the family's sign-in happened, while it is active.
pub fn signed_in_at(
    conn: &mut DbConnection,
    family_id: &str,
) -> Result<Option<NaiveDateTime>, DbError> {
    Ok(refresh_families::table
        .find(family_id)
        .filter(refresh_families::revoked_at.is_null())
        .select(refresh_families::created_at)
        .first(conn)
        .optional()?)
}
