//! The content service's errors and the one place they become HTTP answers.

use actix_web::http::{header, StatusCode};
use peermesh_common::{ApiError, FieldError};
use peermesh_db::{DbError, DbFailure};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The item is not there, or not the caller's: the same answer for both.
    #[error("no such content item")]
    NotFound,
    /// A link's target is not there, or not the caller's.
    #[error("the target item does not exist")]
    TargetNotFound,
    /// `If-Match` names another version, or another writer came first.
    #[error("{detail}")]
    Changed {
        detail: String,
        /// The item's ETag now.
        current: String,
    },
    #[error("these items are already linked with this relation")]
    LinkExists,
    #[error("an item may have at most {0} outgoing links")]
    TooManyLinks(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ContentError {
    /// 422 naming one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    /// 412: the item is no longer at the version the client had (`current` is its
    /// ETag now).
    pub fn changed(current: String) -> Self {
        Self::Changed {
            detail: format!("the item has changed; its current ETag is {current}"),
            current,
        }
    }
}

impl DbFailure for ContentError {
    fn database(&self) -> Option<&DbError> {
        match self {
            Self::Db(db) => Some(db),
            _ => None,
        }
    }
}

impl From<ContentError> for ApiError {
    fn from(err: ContentError) -> Self {
        let detail = err.to_string();
        match err {
            ContentError::Invalid(fields) => ApiError::validation(fields),
            ContentError::NotFound => ApiError::not_found(detail),
            ContentError::TargetNotFound => ApiError::not_found(detail)
                .with_errors(vec![FieldError::new("target_id", "no such content item")]),
            ContentError::Changed { current, .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                detail,
            )
            .with_header(header::ETAG, &current),
            ContentError::LinkExists => ApiError::conflict("link_exists", detail),
            ContentError::TooManyLinks(_) => ApiError::conflict("too_many_links", detail),
            ContentError::Db(db) => db.into(),
        }
    }
}
