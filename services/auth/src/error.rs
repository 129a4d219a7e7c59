//! The auth service's errors and the one place they become HTTP answers.

use peermesh_common::{ApiError, FieldError};
use peermesh_db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("an account with this email already exists")]
    EmailTaken,
    /// The same answer for an unknown email and a wrong password.
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("this account is disabled")]
    Disabled,
    #[error("too many failed sign-ins; retry in {0} s")]
    Throttled(i64),
    #[error("{0}")]
    InvalidRefreshToken(&'static str),
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshReused,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("confirm with the password, or sign in again, before deleting the account")]
    ReauthenticationRequired,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Hash(#[from] crate::password::HashError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Internal(String),
}

impl AuthError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let detail = err.to_string();
        match err {
            AuthError::Invalid(fields) => ApiError::validation(fields),
            AuthError::EmailTaken => ApiError::conflict("email_taken", detail),
            AuthError::InvalidCredentials => {
                ApiError::unauthorized(detail).with_code("invalid_credentials")
            }
            AuthError::Disabled => ApiError::forbidden(detail).with_code("account_disabled"),
            AuthError::Throttled(secs) => ApiError::too_many_requests(secs.max(1) as u64),
            AuthError::InvalidRefreshToken(_) => {
                ApiError::unauthorized(detail).with_code("invalid_refresh_token")
            }
            AuthError::RefreshReused => {
                ApiError::unauthorized(detail).with_code("refresh_token_reused")
            }
            AuthError::WrongCurrentPassword => {
                ApiError::forbidden(detail).with_code("wrong_current_password")
            }
            AuthError::ReauthenticationRequired => {
                ApiError::forbidden(detail).with_code("reauthentication_required")
            }
            AuthError::NotFound => ApiError::not_found("no such resource"),
            AuthError::Hash(crate::password::HashError::Busy) => {
                ApiError::service_unavailable("busy", detail)
                    .with_header(actix_web::http::header::RETRY_AFTER, "1")
            }
            AuthError::Hash(other) => ApiError::internal(other),
            AuthError::Db(db) if db.is_unique_violation() => {
                ApiError::conflict("conflict", "this already exists")
            }
            AuthError::Db(db) => db.into(),
            AuthError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
