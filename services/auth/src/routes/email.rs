//! Email verification and password reset, by single-use links sent by mail.

use actix_web::HttpRequest;
use chrono::TimeDelta;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::auth::Principal;
use peermesh_common::http::JsonBody;
use peermesh_common::ApiError;
use serde::{Deserialize, Serialize};

use super::{current_user, UserOut};
use crate::bootstrap::promote_if_bootstrap;
use crate::domain::Email;
use crate::error::AuthError;
use crate::mail::Mail;
use crate::password::check_new_password;
use crate::store::email_tokens::{self, Purpose, Refused};
use crate::store::throttle::{self, Limit};
use crate::store::{sessions, users};
use crate::tokens::{random_secret, secret_hash};
use crate::AppState;
use peermesh_common::reply::{Code, Reply};

const VERIFY_PREFIX: &str = "pmv_";
const RESET_PREFIX: &str = "pmp_";

/// Token lifetimes and mail rate limits (`AUTH_VERIFY_*`, `AUTH_RESET_*`, …).
#[derive(Debug, Clone)]
pub struct MailPolicy {
    /// Links point here (`AUTH_PUBLIC_APP_URL`), never at the request's Host.
    pub app_url: String,
    pub verify_ttl: TimeDelta,
    pub reset_ttl: TimeDelta,
    /// Shortest time between two verification mails to one user.
    pub resend_interval: TimeDelta,
    pub resend_limit: Limit,
    pub forgot_account_limit: Limit,
    pub forgot_ip_limit: Limit,
}

fn verification_mail(policy: &MailPolicy, to: &str, token: &str) -> Mail {
    Mail {
        kind: "verify_email",
        to: to.to_owned(),
        subject: "Confirm your email address for PeerMesh".into(),
        text: format!(
            "Hello,\n\nplease confirm that this is your email address by opening this link:\n\n\
             {}/verify-email?token={token}\n\n\
             The link works once, for {} hours. If you did not sign up for PeerMesh, \
             you can ignore this mail.\n",
            policy.app_url.trim_end_matches('/'),
            policy.verify_ttl.num_hours().max(1),
        ),
    }
}

fn reset_mail(policy: &MailPolicy, to: &str, token: &str) -> Mail {
    Mail {
        kind: "password_reset",
        to: to.to_owned(),
        subject: "Reset your PeerMesh password".into(),
        text: format!(
            "Hello,\n\nsomeone (hopefully you) asked to reset the password of your PeerMesh \
             account. To choose a new one, open this link:\n\n\
             {}/reset-password?token={token}\n\n\
             The link works once, for {} minutes. If you did not ask for this, ignore this \
             mail: your password stays as it is.\n",
            policy.app_url.trim_end_matches('/'),
            policy.reset_ttl.num_minutes().max(1),
        ),
    }
}

/// Stores a fresh verification token for the user and mails the link (in the
/// background). Used at registration and on resend.
pub fn issue_verification(
    conn: &mut peermesh_db::DbConnection,
    policy: &MailPolicy,
    user_id: &str,
    email: &str,
) -> Result<Mail, peermesh_db::DbError> {
    let token = random_secret(VERIFY_PREFIX);
    email_tokens::issue(
        conn,
        user_id,
        email,
        Purpose::VerifyEmail,
        &secret_hash(&token),
        policy.verify_ttl,
    )?;
    Ok(verification_mail(policy, email, &token))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// The token from the link in the mail.
    pub token: String,
}

fn refused(why: Refused, what: &str) -> ApiError {
    let detail = match why {
        Refused::Unknown => format!("this {what} link is not valid"),
        Refused::Used => format!("this {what} link was already used; ask for a new one"),
        Refused::Expired => format!("this {what} link has expired; ask for a new one"),
    };
    let code = match why {
        Refused::Unknown => "invalid_token",
        Refused::Used => "token_used",
        Refused::Expired => "token_expired",
    };
    ApiError::bad_request(code, detail)
}

/// Confirms the address the link was sent to (if it is still the account's address).
#[api_v2_operation(summary = "Verify an email address", tags(account))]
pub async fn verify_email(
    state: web::Data<AppState>,
    body: JsonBody<TokenIn>,
) -> Result<web::Json<UserOut>, ApiError> {
    let hash = secret_hash(body.token.trim());
    let bootstrap = state.bootstrap_admin.clone();
    let outcome = state
        .db
        .write(move |conn| {
            let (user_id, email) = match email_tokens::consume(conn, &hash, Purpose::VerifyEmail)? {
                Ok(found) => found,
                Err(why) => return Ok(Err(why)),
            };
            if !users::mark_email_verified(conn, &user_id, &email)? {
                // The account's address changed since the mail went out.
                return Ok(Err(Refused::Unknown));
            }
            promote_if_bootstrap(conn, bootstrap.as_deref(), &user_id)?;
            let user = users::by_id(conn, &user_id)?;
            let identities = users::providers(conn, &user_id)?;
            Ok(Ok(user.map(|u| UserOut::new(&u, identities))))
        })
        .await
        .map_err(AuthError::from)?;
    match outcome {
        Ok(Some(user)) => Ok(web::Json(user)),
        Ok(None) => Err(refused(Refused::Unknown, "verification")),
        Err(why) => Err(refused(why, "verification")),
    }
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct Accepted {
    pub status: String,
}

/// Mails the signed-in user a new verification link (rate limited).
#[api_v2_operation(summary = "Send the verification mail again", tags(account))]
pub async fn resend_verification(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<Reply<Accepted, Code<202>>, ApiError> {
    let user = current_user(&state, principal.subject()).await?;
    if user.email_verified {
        return Err(ApiError::conflict(
            "already_verified",
            "this email address is already verified",
        ));
    }
    let (policy, mailer) = (state.mail_policy.clone(), state.mailer.clone());
    let outcome = state
        .db
        .write(move |conn| {
            let key = format!("verify-resend:{}", user.id);
            throttle::hold(conn, &key)?;
            if let Some(wait) = throttle::locked_for(conn, &[&key])? {
                return Ok(Err(wait));
            }
            if let Some(last) = email_tokens::last_issued(conn, &user.id, Purpose::VerifyEmail)? {
                let next = last + policy.resend_interval;
                let now = crate::store::now();
                if next > now {
                    return Ok(Err((next - now).num_seconds().max(1)));
                }
            }
            throttle::record_failure(conn, &key, policy.resend_limit)?;
            let mail = issue_verification(conn, &policy, &user.id, &user.email)?;
            mailer.queue(conn, &mail).map(Ok)
        })
        .await
        .map_err(AuthError::from)?;
    match outcome {
        Ok(()) => {
            state.mailer.wake();
            Ok(accepted("a new verification link is on its way"))
        }
        Err(wait) => Err(AuthError::Throttled(wait).into()),
    }
}

fn accepted(status: &str) -> Reply<Accepted, Code<202>> {
    Reply::new(Accepted {
        status: status.into(),
    })
    .no_store()
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct ForgotIn {
    pub email: String,
}

/// The same answer for every address, known or not; the mail (if any) is prepared
/// after the answer, so timing tells nothing either. Limited per client address
/// (429) and, silently, per account.
#[api_v2_operation(summary = "Ask for a password-reset link", tags(account))]
pub async fn forgot_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<ForgotIn>,
) -> Result<Reply<Accepted, Code<202>>, ApiError> {
    let email = Email::parse(&body.email).map_err(|e| AuthError::Invalid(vec![e]))?;
    let ip_key = format!(
        "forgot-ip:{}",
        state
            .client_ip(&req)
            .map(|i| i.to_string())
            .unwrap_or_default()
    );
    let policy = state.mail_policy.clone();
    let limited = state
        .db
        .write(move |conn| {
            throttle::hold(conn, &ip_key)?;
            if let Some(wait) = throttle::locked_for(conn, &[&ip_key])? {
                return Ok(Some(wait));
            }
            throttle::record_failure(conn, &ip_key, policy.forgot_ip_limit)?;
            Ok(None)
        })
        .await
        .map_err(AuthError::from)?;
    if let Some(wait) = limited {
        return Err(AuthError::Throttled(wait).into());
    }

    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        let (policy, mailer) = (state.mail_policy.clone(), state.mailer.clone());
        let address = email.into_string();
        let prepared = state
            .db
            .write(move |conn| {
                let Some(user) = users::by_email(conn, &address)? else {
                    return Ok(None);
                };
                if user.disabled {
                    return Ok(None);
                }
                let key = format!("forgot-account:{}", user.id);
                throttle::hold(conn, &key)?;
                if throttle::locked_for(conn, &[&key])?.is_some() {
                    return Ok(None);
                }
                throttle::record_failure(conn, &key, policy.forgot_account_limit)?;
                let token = random_secret(RESET_PREFIX);
                email_tokens::issue(
                    conn,
                    &user.id,
                    &user.email,
                    Purpose::ResetPassword,
                    &secret_hash(&token),
                    policy.reset_ttl,
                )?;
                mailer.queue(conn, &reset_mail(&policy, &user.email, &token))?;
                Ok(Some(()))
            })
            .await;
        match prepared {
            Ok(Some(())) => state.mailer.wake(),
            Ok(None) => {}
            Err(e) => {
                slog::error!(state.logger, "password reset not prepared"; "error" => e.to_string())
            }
        }
    });
    Ok(accepted(
        "if an account uses this address, a password-reset link is on its way",
    ))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct ResetIn {
    pub token: String,
    /// 8 to 128 characters.
    pub new_password: String,
}

/// Sets a new password from a reset link: the address is thereby verified, and every
/// session of the account ends.
#[api_v2_operation(summary = "Reset the password", tags(account))]
pub async fn reset_password(
    state: web::Data<AppState>,
    body: JsonBody<ResetIn>,
) -> Result<NoContent, ApiError> {
    let body = body.into_inner();
    check_new_password("new_password", &body.new_password)
        .map_err(|e| AuthError::Invalid(vec![e]))?;
    let hash = secret_hash(body.token.trim());
    // Hash only for a token that can work; it is checked again, atomically, below.
    let probe = hash.clone();
    let usable = state
        .db
        .run(move |conn| email_tokens::peek(conn, &probe, Purpose::ResetPassword))
        .await
        .map_err(AuthError::from)?;
    if let Err(why) = usable {
        return Err(refused(why, "password-reset"));
    }
    let password_hash = state
        .hasher
        .hash(body.new_password)
        .await
        .map_err(AuthError::from)?;
    let bootstrap = state.bootstrap_admin.clone();
    let outcome = state
        .db
        .write(move |conn| {
            let (user_id, email) = match email_tokens::consume(conn, &hash, Purpose::ResetPassword)?
            {
                Ok(found) => found,
                Err(why) => return Ok(Err(why)),
            };
            users::set_password_hash(conn, &user_id, &password_hash)?;
            users::mark_email_verified(conn, &user_id, &email)?;
            // The mailbox is proved: whatever was linked before it was not goes.
            crate::store::oauth::drop_unproven_identities(conn, &user_id)?;
            promote_if_bootstrap(conn, bootstrap.as_deref(), &user_id)?;
            sessions::revoke_all(conn, &user_id, None, "password_reset")?;
            Ok(Ok(()))
        })
        .await
        .map_err(AuthError::from)?;
    outcome.map_err(|why| refused(why, "password-reset"))?;
    Ok(NoContent)
}
