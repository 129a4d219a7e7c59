//! Social sign-in: pending authorizations (`oauth_states`), one-time codes for the
//! client (`oauth_codes`) and the rules that map a provider identity to an account.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use peermesh_db::{DbConnection, DbError};

use super::users::{self, User};
use crate::schema::{identities, oauth_codes, oauth_states, users as users_table};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_states)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct PendingState {
    pub state_hash: String,
    pub provider: String,
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect_uri: String,
    pub link_user_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    /// The client's PKCE S256 challenge, handed on to the one-time code.
    pub client_challenge: Option<String>,
}

pub fn insert_state(conn: &mut DbConnection, state: &PendingState) -> Result<(), DbError> {
    // Expired authorizations are of no use to anyone: clear them on the way.
    diesel::delete(oauth_states::table.filter(oauth_states::expires_at.lt(super::now())))
        .execute(conn)?;
    diesel::insert_into(oauth_states::table)
        .values(state)
        .execute(conn)?;
    Ok(())
}

/// Takes the pending authorization for `state_hash` (single use): `None` when it does
/// not exist; `Some((state, first_use))` otherwise.
pub fn take_state(
    conn: &mut DbConnection,
    state_hash: &str,
) -> Result<Option<(PendingState, bool)>, DbError> {
    let Some(state) = oauth_states::table
        .find(state_hash)
        .select(PendingState::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let first = diesel::update(
        oauth_states::table
            .find(state_hash)
            .filter(oauth_states::used_at.is_null()),
    )
    .set(oauth_states::used_at.eq(super::now()))
    .execute(conn)?
        == 1;
    Ok(Some((state, first)))
}

pub fn insert_code(
    conn: &mut DbConnection,
    code_hash: &str,
    user_id: &str,
    provider: &str,
    client_challenge: Option<&str>,
    ttl: TimeDelta,
) -> Result<(), DbError> {
    let now = super::now();
    diesel::delete(oauth_codes::table.filter(oauth_codes::expires_at.lt(now))).execute(conn)?;
    diesel::insert_into(oauth_codes::table)
        .values((
            oauth_codes::code_hash.eq(code_hash),
            oauth_codes::user_id.eq(user_id),
            oauth_codes::provider.eq(provider),
            oauth_codes::created_at.eq(now),
            oauth_codes::expires_at.eq(now + ttl),
            oauth_codes::client_challenge.eq(client_challenge),
        ))
        .execute(conn)?;
    Ok(())
}

/// Redeems a one-time code: the user it was issued for, if the code is known, unused,
/// not expired and `verifies` accepts the client challenge it was bound to. A code
/// whose verifier is wrong stays unused (the verifier is far too long to guess, and
/// burning the code would let whoever stole it end the real sign-in); a second
/// redemption finds nothing.
pub fn redeem_code(
    conn: &mut DbConnection,
    code_hash: &str,
    verifies: impl FnOnce(&str) -> bool,
) -> Result<Option<String>, DbError> {
    let now = super::now();
    let live: Option<(String, Option<String>)> = oauth_codes::table
        .find(code_hash)
        .filter(oauth_codes::used_at.is_null())
        .filter(oauth_codes::expires_at.gt(now))
        .select((oauth_codes::user_id, oauth_codes::client_challenge))
        .first(conn)
        .optional()?;
    let Some((user_id, Some(challenge))) = live else {
        return Ok(None);
    };
    if !verifies(&challenge) {
        return Ok(None);
    }
    let taken = diesel::update(
        oauth_codes::table
            .find(code_hash)
            .filter(oauth_codes::used_at.is_null()),
    )
    .set(oauth_codes::used_at.eq(now))
    .execute(conn)?;
    Ok((taken == 1).then_some(user_id))
}

/// What a provider says about the person who signed in.
#[derive(Debug, Clone)]
pub struct ProviderIdentity {
    pub provider: &'static str,
    /// Stable and unique at the provider: Google's `iss` and `sub`, GitHub's numeric id.
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches for the address.
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Why a provider identity does not lead to an account (each becomes `?error=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An account has this email but has not verified it: sign in with the password
    /// and link from the account (a pre-registered account is not taken over).
    LinkFromAccount,
    /// The provider does not vouch for the email, and an account already has it.
    EmailNotVerified,
    /// The provider gave no email at all.
    EmailMissing,
    /// The identity belongs to another account (linking).
    IdentityInUse,
    /// Linking to an account whose address is not verified: whoever is signed in has
    /// not proved the mailbox, and the real owner could later recover the account
    /// with the identity still attached.
    AccountEmailNotVerified,
    AccountDisabled,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::LinkFromAccount => "account_exists_sign_in_to_link",
            Self::EmailNotVerified => "email_not_verified",
            Self::EmailMissing => "email_missing",
            Self::IdentityInUse => "identity_linked_to_another_account",
            Self::AccountEmailNotVerified => "verify_email_to_link",
            Self::AccountDisabled => "account_disabled",
        }
    }
}

fn add_identity(
    conn: &mut DbConnection,
    user_id: &str,
    who: &ProviderIdentity,
) -> Result<(), DbError> {
    diesel::insert_into(identities::table)
        .values((
            identities::id.eq(uuid::Uuid::now_v7().to_string()),
            identities::user_id.eq(user_id),
            identities::provider.eq(who.provider),
            identities::subject.eq(&who.subject),
            identities::email.eq(&who.email),
            identities::email_verified.eq(who.email_verified),
            identities::created_at.eq(super::now()),
            // Links are only made to verified accounts (see `resolve`).
            identities::linked_unverified.eq(false),
        ))
        .execute(conn)?;
    Ok(())
}

/// Removes the identities linked while the account's address was unverified (after
/// a password reset has proved the mailbox); how many went.
pub fn drop_unproven_identities(conn: &mut DbConnection, user_id: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(
        identities::table
            .filter(identities::user_id.eq(user_id))
            .filter(identities::linked_unverified.eq(true)),
    )
    .execute(conn)?)
}

/// The account a provider identity signs in to, creating or linking as the rules
/// allow; `link_to` is the signed-in user asking to link.
pub fn resolve(
    conn: &mut DbConnection,
    who: &ProviderIdentity,
    link_to: Option<&str>,
) -> Result<Result<User, Refusal>, DbError> {
    let known: Option<String> = identities::table
        .filter(identities::provider.eq(who.provider))
        .filter(identities::subject.eq(&who.subject))
        .select(identities::user_id)
        .first(conn)
        .optional()?;
    let user = match (known, link_to) {
        (Some(owner), Some(me)) if owner != me => return Ok(Err(Refusal::IdentityInUse)),
        (Some(owner), _) => users::by_id(conn, &owner)?,
        (None, Some(me)) => match users::by_id(conn, me)? {
            Some(account) if !account.email_verified => {
                return Ok(Err(Refusal::AccountEmailNotVerified))
            }
            Some(account) => {
                add_identity(conn, me, who)?;
                Some(account)
            }
            None => None,
        },
        (None, None) => {
            let Some(email) = who.email.as_deref() else {
                return Ok(Err(Refusal::EmailMissing));
            };
            match users::by_email(conn, email)? {
                Some(_) if !who.email_verified => return Ok(Err(Refusal::EmailNotVerified)),
                Some(existing) if !existing.email_verified => {
                    return Ok(Err(Refusal::LinkFromAccount))
                }
                Some(existing) => {
                    add_identity(conn, &existing.id, who)?;
                    Some(existing)
                }
                // An address the provider does not vouch for never becomes an
                // account's address either: whoever holds it would own the account.
                None if !who.email_verified => return Ok(Err(Refusal::EmailNotVerified)),
                None => {
                    let now = super::now();
                    let user = User {
                        id: uuid::Uuid::now_v7().to_string(),
                        email: email.to_owned(),
                        display_name: who.name.clone(),
                        password_hash: None,
                        email_verified: true,
                        roles: "user".into(),
                        disabled: false,
                        created_at: now,
                        updated_at: now,
                    };
                    users::insert(conn, &user)?;
                    add_identity(conn, &user.id, who)?;
                    Some(user)
                }
            }
        }
    };
    let Some(user) = user else {
        return Err(DbError::Query(diesel::result::Error::NotFound));
    };
    if user.disabled {
        return Ok(Err(Refusal::AccountDisabled));
    }
    Ok(Ok(user))
}

/// Removes the user's `provider` identity unless it is their last way to sign in.
/// `None`: no such identity; `Some(false)`: refused (last way in).
pub fn unlink(
    conn: &mut DbConnection,
    user_id: &str,
    provider: &str,
) -> Result<Option<bool>, DbError> {
    let providers = users::providers(conn, user_id)?;
    if !providers.iter().any(|p| p == provider) {
        return Ok(None);
    }
    let has_password: bool = users_table::table
        .find(user_id)
        .select(users_table::password_hash.is_not_null())
        .first(conn)?;
    if !has_password && providers.len() == 1 {
        return Ok(Some(false));
    }
    diesel::delete(
        identities::table
            .filter(identities::user_id.eq(user_id))
            .filter(identities::provider.eq(provider)),
    )
    .execute(conn)?;
    Ok(Some(true))
}
