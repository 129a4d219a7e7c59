//! The ingestion service's errors: what a request is refused for (and the one place
//! that becomes an HTTP answer), and why a job failed and whether to try it again.

use actix_web::http::{header, StatusCode};
use peermesh_common::ApiError;
use peermesh_db::{DbError, DbFailure};

use crate::content_client::ContentError;
use crate::formats::FormatError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The user's jobs fill their share of the queue.
    #[error(
        "you have {0} jobs queued or running, the most allowed; retry when some have finished"
    )]
    TooManyJobs(i64),
    /// A feed's manual refresh came too soon after the last (seconds to wait).
    #[error("this feed was refreshed moments ago; retry in {0} s")]
    RefreshTooSoon(i64),
    #[error("only failed or cancelled jobs can be retried; this one is {0}")]
    NotRetryable(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl DbFailure for IngestError {
    fn database(&self) -> Option<&DbError> {
        match self {
            Self::Db(db) => Some(db),
            _ => None,
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        let detail = err.to_string();
        match err {
            IngestError::TooManyJobs(_) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_jobs", detail)
                    .with_header(header::RETRY_AFTER, "30")
            }
            IngestError::RefreshTooSoon(wait) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "refresh_too_soon", detail)
                    .with_header(header::RETRY_AFTER, &wait.to_string())
            }
            IngestError::NotRetryable(_) => ApiError::conflict("not_retryable", detail),
            IngestError::Db(db) => db.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("{0}")]
    Internal(String),
    /// A feed could not be fetched or read (its own schedule retries it).
    #[error("{0}")]
    Feed(String),
}

impl JobError {
    /// Worth another attempt later (the content service was down, a disk hiccup).
    pub fn is_transient(&self) -> bool {
        match self {
            JobError::Content(e) => e.is_transient(),
            JobError::Internal(_) => true,
            JobError::Format(_) | JobError::Feed(_) => false,
        }
    }
}
