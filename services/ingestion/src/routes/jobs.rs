//! The caller's ingestion jobs.

use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::auth::Principal;
use peermesh_common::http::rfc3339;

use super::delegating::Delegating;
use peermesh_common::pagination::PageRequest;
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};

use crate::error::IngestError;
use crate::store::jobs::{self, Job};
use crate::AppState;

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct JobOut {
    pub id: String,
    /// `file` (more kinds arrive with URL and feed imports).
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// 0..1.
    pub progress: f64,
    pub attempts: i32,
    pub max_attempts: i32,
    pub error: Option<String>,
    /// The content items the job made.
    pub content_ids: Vec<String>,
    /// When the next attempt may start (queued jobs).
    pub run_after: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Job> for JobOut {
    fn from(j: &Job) -> Self {
        Self {
            id: j.id.clone(),
            kind: j.kind.clone(),
            status: j.status.clone(),
            progress: j.progress,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            error: j.error.clone(),
            content_ids: serde_json::from_str(&j.content_ids).unwrap_or_default(),
            run_after: rfc3339(j.run_after),
            created_at: rfc3339(j.created_at),
            updated_at: rfc3339(j.updated_at),
        }
    }
}

pub(crate) fn job_id(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::not_found("no such job"))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct JobsPage {
    pub items: Vec<JobOut>,
    pub next_cursor: Option<String>,
}

/// The caller's jobs, newest first.
#[api_v2_operation(summary = "List ingestion jobs", tags(jobs))]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<JobsQuery>,
) -> Result<web::Json<JobsPage>, ApiError> {
    if let Some(status) = &query.status {
        if !jobs::STATUSES.contains(&status.as_str()) {
            return Err(ApiError::validation(vec![FieldError::new(
                "status",
                "must be queued, running, succeeded, failed or cancelled",
            )]));
        }
    }
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let (owner, status, request) = (
        principal.subject().to_owned(),
        query.status.clone(),
        page.clone(),
    );
    let mut rows = state
        .db
        .run(move |conn| {
            jobs::page(
                conn,
                Some(&owner),
                status.as_deref(),
                request.fetch(),
                request.after.as_deref(),
            )
        })
        .await?;
    let next_cursor = page.finish(&mut rows, |j| &j.id);
    Ok(web::Json(JobsPage {
        items: rows.iter().map(JobOut::from).collect(),
        next_cursor,
    }))
}

async fn load(state: &AppState, owner: &str, id: &str) -> Result<Job, ApiError> {
    let (owner, id) = (owner.to_owned(), id.to_owned());
    state
        .db
        .run(move |conn| jobs::get(conn, &owner, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("no such job"))
}

#[api_v2_operation(summary = "Get an ingestion job", tags(jobs))]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<web::Json<JobOut>, ApiError> {
    let id = job_id(&path)?;
    Ok(web::Json(JobOut::from(
        &load(&state, principal.subject(), &id).await?,
    )))
}

/// Queues a failed or cancelled job again, with fresh attempts.
#[api_v2_operation(summary = "Retry a job", tags(jobs))]
pub async fn retry(
    state: web::Data<AppState>,
    principal: Delegating,
    path: web::Path<String>,
) -> Result<web::Json<JobOut>, ApiError> {
    let id = job_id(&path)?;
    let owner = principal.subject().to_owned();
    let (o, i) = (owner.clone(), id.clone());
    let cap = state.settings.active_jobs_per_user;
    let retried = state
        .db
        .try_write(move |conn| {
            let active = jobs::active_jobs(conn, &o)?;
            if active >= cap {
                return Err(IngestError::TooManyJobs(active));
            }
            Ok(jobs::retry(conn, Some(&o), &i)?)
        })
        .await?;
    let job = load(&state, &owner, &id).await?;
    if !retried {
        return Err(IngestError::NotRetryable(job.status).into());
    }
    Ok(web::Json(JobOut::from(&job)))
}

/// Cancels a queued job (running and finished ones cannot be).
#[api_v2_operation(summary = "Cancel a queued job", tags(jobs))]
pub async fn cancel(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<NoContent, ApiError> {
    let id = job_id(&path)?;
    let owner = principal.subject().to_owned();
    let (o, i) = (owner.clone(), id.clone());
    let cancelled = state
        .db
        .write(move |conn| jobs::cancel(conn, &o, &i))
        .await?;
    if cancelled {
        return Ok(NoContent);
    }
    let job = load(&state, &owner, &id).await?;
    Err(ApiError::conflict(
        "not_cancellable",
        format!(
            "only queued jobs can be cancelled; this one is {}",
            job.status
        ),
    ))
}

/// A job's original file, sent as a download.
pub struct Original {
    file: tokio::fs::File,
    size: u64,
    media_type: &'static str,
    filename: String,
}

impl actix_web::Responder for Original {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _req: &actix_web::HttpRequest) -> actix_web::HttpResponse {
        use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
        let ascii: String = self
            .filename
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut parameters = vec![DispositionParam::Filename(ascii)];
        if !self.filename.is_ascii() {
            parameters.push(DispositionParam::FilenameExt(
                actix_web::http::header::ExtendedValue {
                    charset: actix_web::http::header::Charset::Ext("UTF-8".into()),
                    language_tag: None,
                    value: self.filename.into_bytes(),
                },
            ));
        }
        let stream = tokio_util::io::ReaderStream::with_capacity(self.file, 64 * 1024);
        actix_web::HttpResponse::Ok()
            .content_type(self.media_type)
            .insert_header(ContentDisposition {
                disposition: DispositionType::Attachment,
                parameters,
            })
            // Never run or rendered on our origin, whatever the bytes are.
            .insert_header(("Content-Security-Policy", "sandbox; default-src 'none'"))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(actix_web::body::SizedStream::new(self.size, stream))
    }
}

impl paperclip::v2::schema::Apiv2Schema for Original {}
impl paperclip::actix::OperationModifier for Original {}

/// The original file of an upload (or the document a URL import fetched), exactly as
/// it came in: as an attachment, typed by its bytes, never shown inline.
#[api_v2_operation(summary = "Download a job's original file", tags(jobs))]
pub async fn original(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<Original, ApiError> {
    let id = job_id(&path)?;
    let job = load(&state, principal.subject(), &id).await?;
    send_original(&state, job).await
}

/// The original file of one of the caller's uploads or URL imports, by its SHA-256
/// (what a content item's `source.sha256` names); how an export's download gets it.
#[api_v2_operation(summary = "Download an original file by its SHA-256", tags(jobs))]
pub async fn original_by_hash(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<Original, ApiError> {
    let sha = path.trim().to_ascii_lowercase();
    let gone = || ApiError::not_found("no such file");
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(gone());
    }
    let owner = principal.subject().to_owned();
    let job = state
        .db
        .run(move |conn| jobs::job_for_file(conn, &owner, &sha))
        .await?
        .ok_or_else(gone)?;
    send_original(&state, job).await
}

/// A job's stored file as a download.
async fn send_original(state: &AppState, job: Job) -> Result<Original, ApiError> {
    let gone = || ApiError::not_found("this job has no stored file");
    let input: crate::jobs::pipeline::FileInput = (job.kind != "feed")
        .then(|| serde_json::from_str(&job.input).ok())
        .flatten()
        .ok_or_else(gone)?;
    let path = state.blobs.path(&input.sha256);
    let mut file = tokio::fs::File::open(&path).await.map_err(|_| gone())?;
    let mut head = vec![0u8; 64 * 1024];
    let read = tokio::io::AsyncReadExt::read(&mut file, &mut head)
        .await
        .map_err(ApiError::internal)?;
    head.truncate(read);
    tokio::io::AsyncSeekExt::rewind(&mut file)
        .await
        .map_err(ApiError::internal)?;
    let whole = (read as u64) >= input.size;
    let media_type = crate::formats::detect_head(
        &head,
        input.filename.as_deref(),
        input.declared_type.as_deref(),
        whole,
    )
    .map_or(
        "application/octet-stream",
        crate::formats::Format::media_type,
    );
    Ok(Original {
        file,
        size: input.size,
        media_type,
        filename: input
            .filename
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("{}.bin", &input.sha256[..16.min(input.sha256.len())])),
    })
}
