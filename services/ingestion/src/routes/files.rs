//! `POST /files`: a multipart upload (`file`, optional `title`, `tags`), stored by
//! content hash while it streams in, processed now when small, queued when large.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use futures_util::StreamExt;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::reply::{Accepted, Reply, Statuses};
use peermesh_common::{ApiError, FieldError};
use serde::Serialize;

use super::delegating::Delegating;
use super::jobs::JobOut;
use crate::blobs::{BlobError, Staged};
use crate::content_client::ContentError;
use crate::error::{IngestError, JobError};
use crate::formats::{self, FormatError};
use crate::jobs::pipeline::{self, FileInput};
use crate::metrics::Outcome;
use crate::store::jobs::{self, FileClaim, Job};
use crate::{AppState, PREFIX};
use peermesh_db::DbError;

/// Largest `title` or `tags` form field.
const MAX_TEXT_FIELD: usize = 4096;

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct UploadOut {
    pub job: JobOut,
    /// The items made (empty while the job is queued).
    pub content_ids: Vec<String>,
}

/// What an upload (or a URL import) answers: 201 with the items made now, 202 with
/// the queued job, 200 with the items of the same bytes sent before; always with the
/// job's `Location`.
pub struct UploadStatuses;

impl Statuses for UploadStatuses {
    const CODES: &'static [u16] = &[201, 200, 202];
}

pub type Answer = Reply<UploadOut, UploadStatuses>;

fn answer(status: StatusCode, job: &Job) -> Answer {
    let job = JobOut::from(job);
    let location = format!("{PREFIX}/jobs/{}", job.id);
    Reply::new(UploadOut {
        content_ids: job.content_ids.clone(),
        job,
    })
    .status(status)
    .location(location)
}

/// The multipart form of an upload, documented field by field in the OpenAPI
/// document (paperclip's own `Multipart` documents one unnamed field).
pub struct UploadForm(Multipart);

impl actix_web::FromRequest for UploadForm {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(UploadForm(Multipart::new(
            req.headers(),
            payload.take(),
        ))))
    }
}

impl paperclip::v2::schema::Apiv2Schema for UploadForm {}

impl paperclip::actix::OperationModifier for UploadForm {
    fn update_parameter(op: &mut paperclip::v2::models::DefaultOperationRaw) {
        use paperclip::v2::models::{DataType, Either, Parameter, ParameterIn};
        for (name, data_type, required, description) in [
            ("file", DataType::File, true, "the document"),
            (
                "title",
                DataType::String,
                false,
                "1..500 characters; default: from the document",
            ),
            (
                "tags",
                DataType::String,
                false,
                "a comma-separated list or a JSON array",
            ),
            (
                "callback_url",
                DataType::String,
                false,
                "gets a signed POST when the job finishes",
            ),
        ] {
            op.parameters.push(Either::Right(Parameter {
                description: Some(description.into()),
                in_: ParameterIn::FormData,
                name: name.into(),
                required,
                data_type: Some(data_type),
                ..Default::default()
            }));
        }
    }
}

/// A client's file name, reduced to a safe base name for metadata.
fn clean_filename(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let clean = clean.trim().to_owned();
    (!clean.is_empty()).then_some(clean)
}

async fn text_field(field: &mut actix_multipart::Field, name: &str) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("bad_multipart", e.to_string()))?;
        if buf.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(ApiError::invalid_field(
                name,
                format!("must be at most {MAX_TEXT_FIELD} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| ApiError::invalid_field(name, "must be UTF-8 text"))
}

fn parse_tags(raw: &str) -> Result<Vec<String>, ApiError> {
    // A JSON array, or a comma-separated list.
    let tags: Vec<String> = if raw.trim_start().starts_with('[') {
        serde_json::from_str(raw).map_err(|_| {
            ApiError::invalid_field(
                "tags",
                "must be a JSON array of strings or a comma-separated list",
            )
        })?
    } else {
        raw.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    };
    super::item_tags(&tags)
}

fn format_problem(e: &FormatError) -> ApiError {
    match e {
        FormatError::Unsupported(m) | FormatError::Mismatch(m) => {
            ApiError::unsupported_media_type(m.clone()).with_code("unsupported_format")
        }
        FormatError::Corrupt(m) => ApiError::validation(vec![FieldError::new("file", m.clone())])
            .with_code("unreadable_file"),
        FormatError::TooComplex(m) => {
            ApiError::validation(vec![FieldError::new("file", m.clone())])
                .with_code("file_too_complex")
        }
    }
}

/// Uploads a file. Up to `INGEST_SYNC_MAX_BYTES` it is processed now: 201 with the
/// job and the content ids. Larger (up to `INGEST_MAX_BYTES`): 202 with the queued job
/// and `Location`. The same bytes uploaded again by the same user: 200 with the
/// earlier job and its content ids (202 while that job is still queued or running).
#[api_v2_operation(
    summary = "Upload a file to ingest",
    tags(files),
    consumes = "multipart/form-data"
)]
pub async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Delegating,
    form: UploadForm,
) -> Result<Answer, ApiError> {
    let UploadForm(mut form) = form;
    let owner = principal.subject().to_owned();
    let settings = &state.settings;
    let mut stored = None;
    let mut filename = None;
    let mut declared = None;
    let mut title = None;
    let mut tags = Vec::new();
    let mut callback_url = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| ApiError::bad_request("bad_multipart", e.to_string()))?;
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" if stored.is_none() => {
                filename = field
                    .content_disposition()
                    .and_then(|cd| cd.get_filename())
                    .and_then(clean_filename);
                declared = field.content_type().map(|m| m.essence_str().to_owned());
                let result = state.blobs.store(&mut field, settings.max_bytes).await;
                stored = Some(result.map_err(|e| match e {
                    BlobError::TooLarge(max) => ApiError::payload_too_large(format!(
                        "the file is larger than the limit of {max} bytes"
                    )),
                    BlobError::Upload(m) => ApiError::bad_request("bad_multipart", m),
                    BlobError::Io(e) => ApiError::internal(e),
                })?);
            }
            "title" => {
                title = Some(super::item_title(&text_field(&mut field, "title").await?)?);
            }
            "tags" => tags = parse_tags(&text_field(&mut field, "tags").await?)?,
            "callback_url" => {
                let raw = text_field(&mut field, "callback_url").await?;
                callback_url = Some(crate::callbacks::validate(&state, raw.trim())?);
            }
            other => {
                return Err(ApiError::invalid_field(
                    if other.is_empty() { "form" } else { other },
                    "unknown form field; send file, title and tags",
                ))
            }
        }
    }
    let stored = stored.ok_or_else(|| ApiError::invalid_field("file", "a file is required"))?;
    let input = FileInput {
        sha256: stored.sha256.clone(),
        size: stored.size,
        filename,
        declared_type: declared,
        title,
        tags,
        url: None,
        callback_url,
    };
    let request_id = peermesh_common::middleware::request_id_of(&req);
    accept(&state, &owner, input, stored, request_id).await
}

/// Takes an uploaded file in: the earlier job for the same bytes, or a new job run now
/// (small files) or queued (large ones). The bytes enter storage only with a new job;
/// whatever refuses the file (format, quota, queue, an earlier job) leaves none.
pub(crate) async fn accept(
    state: &AppState,
    owner: &str,
    input: FileInput,
    staged: Staged,
    request_id: Option<String>,
) -> Result<Answer, ApiError> {
    let settings = &state.settings;
    let owner = owner.to_owned();

    // The same bytes from the same user: the earlier job answers, unless what it made
    // has been deleted since (then the file is taken in again).
    let (o, sha) = (owner.clone(), input.sha256.clone());
    let mut stale = None;
    if let Some(earlier) = state
        .db
        .run(move |conn| jobs::job_for_file(conn, &o, &sha))
        .await?
    {
        if let Some(answer) = earlier_answer(&earlier) {
            if !items_deleted(state, &earlier).await {
                return Ok(answer);
            }
            stale = Some(earlier.id);
        }
    }

    // Format check now (415 before anything is queued): of the whole file when it is
    // processed in the request, of its first 64 KiB when it is queued.
    let sync = input.size <= settings.sync_max_bytes;
    let head = read_head(staged.path(), if sync { input.size } else { 64 * 1024 }).await?;
    let (name, decl, whole) = (input.filename.clone(), input.declared_type.clone(), sync);
    tokio::task::spawn_blocking(move || {
        formats::detect_head(&head, name.as_deref(), decl.as_deref(), whole)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| format_problem(&e))?;

    let job = new_job(state, &owner, &input, sync, request_id.clone())?;
    let job = claim(state, job, &input, staged, stale).await?;
    let Claimed::New(job) = job else {
        let Claimed::Earlier(earlier) = job else {
            unreachable!("claim answers New or Earlier")
        };
        return earlier_answer(&earlier)
            .ok_or_else(|| ApiError::internal("an earlier job vanished"));
    };
    if !sync {
        return Ok(answer(StatusCode::ACCEPTED, &job));
    }
    let worker = format!("{}-api", state.instance);
    let outcome =
        pipeline::run_file(state, &owner, &input, &job.id, request_id.as_deref(), None).await;
    let callback = input.callback_url.clone();
    let (id, w) = (job.id.clone(), worker.clone());
    let error = match outcome {
        Ok(ids) => {
            state.metrics.record(&job.kind, Outcome::Succeeded);
            state
                .db
                .write(move |conn| jobs::succeed(conn, &id, &w, &ids))
                .await?;
            let done = state.db.run({
                let (o, id) = (owner.clone(), job.id.clone());
                move |conn| jobs::get(conn, &o, &id)
            });
            let done = done
                .await?
                .ok_or_else(|| ApiError::internal("job vanished"))?;
            if let Some(url) = callback {
                crate::callbacks::notify(state, &done.id, url);
            }
            return Ok(answer(StatusCode::CREATED, &done));
        }
        Err(e) => e,
    };
    // Transient trouble (the content service is down): the job stays queued and a
    // worker finishes it later; the client hears 503 now.
    let retry = error
        .is_transient()
        .then(|| crate::jobs::worker::backoff(settings.retry_base_ms, 1));
    let message = error.to_string();
    let finished = retry.is_none();
    state.metrics.record(&job.kind, Outcome::failure(finished));
    state
        .db
        .write(move |conn| jobs::fail(conn, &id, &w, &message, retry))
        .await?;
    if let (true, Some(url)) = (finished, callback) {
        crate::callbacks::notify(state, &job.id, url);
    }
    Err(match error {
        JobError::Format(e) => format_problem(&e),
        JobError::Content(ContentError::Unavailable(_) | ContentError::Credentials(_))
        | JobError::Internal(_) => ApiError::service_unavailable(
            "content_unavailable",
            format!("the file is stored and queued (job {}); the content service cannot take it right now", job.id),
        )
        .with_header(actix_web::http::header::RETRY_AFTER, "5")
        .with_extension("job", job.id.clone()),
        JobError::Content(e) => ApiError::validation(vec![FieldError::new("file", e.to_string())])
            .with_code("content_rejected"),
        // File jobs never fail as feeds do.
        JobError::Feed(m) => ApiError::internal(m),
    })
}

/// The answer an earlier job of the same bytes gives: done (200) or under way (202);
/// none when it failed or was cancelled (the file is taken in again).
/// Whether every item a succeeded job made has been deleted by its owner since. When
/// the content service cannot tell now, the earlier answer stands (as before).
async fn items_deleted(state: &AppState, earlier: &Job) -> bool {
    if earlier.status != jobs::SUCCEEDED {
        return false;
    }
    let ids: Vec<String> = serde_json::from_str(&earlier.content_ids).unwrap_or_default();
    if ids.is_empty() {
        return false;
    }
    for id in &ids {
        match state.content.item_exists(&earlier.owner_id, id).await {
            Ok(false) => {}
            Ok(true) => return false,
            Err(e) => {
                slog::warn!(state.logger, "cannot tell whether an upload's item still exists";
                    "job" => &earlier.id, "error" => e.to_string());
                return false;
            }
        }
    }
    true
}

fn earlier_answer(earlier: &Job) -> Option<Answer> {
    match earlier.status.as_str() {
        jobs::SUCCEEDED => Some(answer(StatusCode::OK, earlier)),
        jobs::QUEUED | jobs::RUNNING => Some(answer(StatusCode::ACCEPTED, earlier)),
        _ => None,
    }
}

/// The job a new file gets: running in this request (small) or queued.
fn new_job(
    state: &AppState,
    owner: &str,
    input: &FileInput,
    sync: bool,
    request_id: Option<String>,
) -> Result<Job, ApiError> {
    let settings = &state.settings;
    let now = jobs::now();
    Ok(Job {
        id: uuid::Uuid::now_v7().to_string(),
        owner_id: owner.to_owned(),
        kind: "file".into(),
        status: if sync { jobs::RUNNING } else { jobs::QUEUED }.into(),
        progress: 0.0,
        attempts: i32::from(sync),
        max_attempts: settings.job_max_attempts,
        error: None,
        input: serde_json::to_string(input).map_err(ApiError::internal)?,
        content_ids: "[]".into(),
        request_id,
        run_after: now,
        lease_until: sync.then(|| now + chrono::TimeDelta::seconds(settings.job_lease_secs)),
        worker: sync.then(|| format!("{}-api", state.instance)),
        created_at: now,
        updated_at: now,
        trace_parent: peermesh_common::trace::outgoing(),
    })
}

enum Claimed {
    New(Job),
    Earlier(Job),
}

/// Records the job and moves the staged bytes into storage, in one transaction:
/// of concurrent uploads of the same bytes by one user exactly one records a job,
/// and the others answer with it.
async fn claim(
    state: &AppState,
    job: Job,
    input: &FileInput,
    staged: Staged,
    stale: Option<String>,
) -> Result<Claimed, ApiError> {
    let settings = &state.settings;
    let limits = jobs::FileLimits {
        quota_bytes: settings.quota_bytes_per_user,
        active_jobs: settings.active_jobs_per_user,
    };
    let (record, sha, size) = (job.clone(), input.sha256.clone(), input.size);
    let outcome = state
        .db
        .write(move |conn| {
            let claim = jobs::claim_file(conn, &record, &sha, size, limits, stale.as_deref())?;
            if let FileClaim::New = claim {
                // Inside the transaction: a job exists exactly when its bytes do.
                staged
                    .commit_blocking()
                    .map_err(|e| DbError::Task(format!("storing the upload: {e}")))?;
            }
            Ok(claim)
        })
        .await;
    match outcome {
        Ok(FileClaim::New) => Ok(Claimed::New(job)),
        Ok(FileClaim::Earlier(earlier)) => Ok(Claimed::Earlier(*earlier)),
        Ok(FileClaim::OverQuota { used, quota }) => Err(ApiError::payload_too_large(format!(
            "this file ({size} bytes) does not fit in your storage quota: {used} of {quota} bytes are used"
        ))
        .with_code("storage_quota_exceeded")),
        Ok(FileClaim::QueueFull { active }) => Err(IngestError::TooManyJobs(active).into()),
        // Another upload of the same bytes recorded its job first: it answers.
        Err(e) if e.is_unique_violation() => {
            let (o, sha) = (job.owner_id.clone(), input.sha256.clone());
            let winner = state
                .db
                .run(move |conn| jobs::job_for_file(conn, &o, &sha))
                .await?
                .ok_or_else(|| ApiError::internal("the concurrent upload's job vanished"))?;
            Ok(Claimed::Earlier(winner))
        }
        Err(e) => Err(e.into()),
    }
}

/// The first `limit` bytes of a file.
async fn read_head(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, ApiError> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(ApiError::internal)?;
    let mut head = Vec::new();
    file.take(limit)
        .read_to_end(&mut head)
        .await
        .map_err(ApiError::internal)?;
    Ok(head)
}

/// A queued job: 202 with `Location` pointing at it.
pub fn accepted(job: JobOut) -> Accepted<JobOut> {
    let location = format!("{PREFIX}/jobs/{}", job.id);
    Reply::new(job).location(location)
}
