//! The caller's ingestion jobs.

use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::auth::Principal;

use super::delegating::Delegating;
use peermesh_common::pagination::PageRequest;
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};

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

fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
        if ![
            jobs::QUEUED,
            jobs::RUNNING,
            jobs::SUCCEEDED,
            jobs::FAILED,
            jobs::CANCELLED,
        ]
        .contains(&status.as_str())
        {
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
        .write(move |conn| {
            let active = jobs::active_jobs(conn, &o)?;
            if active >= cap {
                return Ok(Err(active));
            }
            jobs::retry(conn, Some(&o), &i).map(Ok)
        })
        .await?
        .map_err(super::files::too_many_jobs)?;
    let job = load(&state, &owner, &id).await?;
    if !retried {
        return Err(ApiError::conflict(
            "not_retryable",
            format!(
                "only failed or cancelled jobs can be retried; this one is {}",
                job.status
            ),
        ));
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
