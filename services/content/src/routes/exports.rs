//! `POST /content/export`, `GET /content/exports/{id}`, `GET /content/exports/{id}/archive`
//! and `POST /content/import`: the owner's whole content out as one archive, and back
//! in (see `crate::export` and `crate::import`). For users only: an export is theirs
//! alone (not even an admin reads it), and its download fetches their original files
//! from ingestion with their own token.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::auth::Principal;
use peermesh_common::reply::{Code, Reply};
use peermesh_common::ApiError;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::export;
use crate::import::{self, ImportOut};
use crate::routes::{rfc3339, Streamed};
use crate::store::exports::{self as store, Export};
use crate::store::items as items_store;
use crate::{AppState, PREFIX};
use peermesh_db::now;
use sha2::Digest as _;

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ExportOut {
    pub id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub items: i64,
    pub links: i64,
    /// Original files the download adds (fetched from the ingestion service).
    pub originals: usize,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// The export and its archive are removed then.
    pub expires_at: String,
    /// Where the archive is downloaded once the export succeeded.
    pub archive_url: String,
}

impl From<Export> for ExportOut {
    fn from(e: Export) -> Self {
        Self {
            originals: e.original_hashes().len(),
            archive_url: format!("{PREFIX}/exports/{}/archive", e.id),
            status: e.status,
            items: e.items,
            links: e.links,
            error: e.error,
            created_at: rfc3339(e.created_at),
            finished_at: e.finished_at.map(rfc3339),
            expires_at: rfc3339(e.expires_at),
            id: e.id,
        }
    }
}

/// The signed-in user (a service token has no export of its own here).
fn user(principal: &Principal) -> Result<String, ApiError> {
    if principal.claims.has_role("service") {
        return Err(ApiError::forbidden(
            "exports and imports are for users: use a user's access token",
        )
        .with_code("user_token_required"));
    }
    Ok(principal.subject().to_owned())
}

fn no_export() -> ApiError {
    ApiError::not_found("no such export")
}

/// Starts an export of all the caller's content (202 with the export to poll). While
/// one is queued or running, that one is the answer.
#[api_v2_operation(summary = "Export everything", tags(exports))]
pub async fn start(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<Reply<ExportOut, Code<202>>, ApiError> {
    let owner = user(&principal)?;
    let ttl = chrono::TimeDelta::seconds(state.exports.export_ttl_secs);
    let export = state
        .db
        .write(move |conn| match store::active(conn, &owner)? {
            Some(active) => Ok(active),
            None => {
                let export = Export::queued(&owner, ttl);
                store::insert(conn, &export)?;
                Ok(export)
            }
        })
        .await?;
    state.export_queued.notify_one();
    let location = format!("{PREFIX}/exports/{}", export.id);
    Ok(Reply::new(export.into()).location(location))
}

async fn load(state: &AppState, owner: String, raw: &str) -> Result<Export, ApiError> {
    let id = crate::routes::item_id(raw).map_err(|_| no_export())?;
    state
        .db
        .read(move |conn| store::get(conn, &owner, &id))
        .await?
        .ok_or_else(no_export)
}

#[api_v2_operation(summary = "An export and its state", tags(exports))]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<web::Json<ExportOut>, ApiError> {
    let owner = user(&principal)?;
    Ok(web::Json(load(&state, owner, &path).await?.into()))
}

/// The archive, streamed: what the export wrote, then the original files, fetched
/// from the ingestion service with the caller's token as they are sent.
#[api_v2_operation(summary = "Download an export's archive", tags(exports))]
pub async fn archive(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<Streamed, ApiError> {
    let owner = user(&principal)?;
    let export = load(&state, owner, &path).await?;
    if export.status != store::SUCCEEDED {
        return Err(ApiError::conflict(
            "export_not_ready",
            format!(
                "the export is {}; download it once it succeeded",
                export.status
            ),
        ));
    }
    let file = export::archive_path(&state.exports.dir(), &export.id);
    let stored = tokio::fs::File::open(&file)
        .await
        .map_err(|_| no_export())?;
    let originals = match &state.exports.ingest_url {
        Some(base) => export
            .original_hashes()
            .into_iter()
            .map(|sha| (base.clone(), sha))
            .collect(),
        None => Vec::new(),
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("this endpoint needs a bearer token"))?;
    let stream = export::download(
        stored,
        export.size.max(0) as u64,
        originals,
        token,
        state.http.clone(),
        state.logger.clone(),
    );
    let date = export.created_at.format("%Y-%m-%d");
    Ok(Streamed(
        HttpResponse::Ok()
            .content_type("application/x-tar")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"peermesh-export-{date}.tar\""),
            ))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .streaming(stream),
    ))
}

/// The raw request body (an archive).
pub struct ArchiveBody(actix_web::dev::Payload);

impl actix_web::FromRequest for ArchiveBody {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(_: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(ArchiveBody(payload.take())))
    }
}

impl paperclip::v2::schema::Apiv2Schema for ArchiveBody {}

impl paperclip::actix::OperationModifier for ArchiveBody {
    fn update_parameter(op: &mut paperclip::v2::models::DefaultOperationRaw) {
        use paperclip::v2::models::{DataType, DefaultSchemaRaw, Either, Parameter, ParameterIn};
        op.parameters.push(Either::Right(Parameter {
            description: Some("an archive made by `POST /export`".into()),
            in_: ParameterIn::Body,
            name: "archive".into(),
            required: true,
            schema: Some(DefaultSchemaRaw {
                data_type: Some(DataType::String),
                format: Some(paperclip::v2::models::DataTypeFormat::Binary),
                ..Default::default()
            }),
            ..Default::default()
        }));
    }
}

/// Takes an archive made by an export into the caller's account (201 with counts):
/// every item with a new id, its chunks, tags and vectors, and the links between them.
/// Nothing is written unless all of it is valid.
#[api_v2_operation(
    summary = "Import an export's archive",
    tags(exports),
    consumes = "application/x-tar"
)]
pub async fn import(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: ArchiveBody,
) -> Result<Reply<ImportOut, Code<201>>, ApiError> {
    let owner = user(&principal)?;
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !media.trim().starts_with("application/x-tar") {
        return Err(ApiError::unsupported_media_type(
            "send the archive as application/x-tar",
        ));
    }
    let key = crate::routes::items::idempotency_key(&req)?;
    let limit = state.exports.import_max_bytes;
    let mut hasher = sha2::Sha256::new();
    let staged =
        tempfile::NamedTempFile::new_in(state.exports.dir()).map_err(ApiError::internal)?;
    let mut file = tokio::fs::File::from_std(staged.reopen().map_err(ApiError::internal)?);
    let (mut payload, mut received) = (body.0, 0u64);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(ApiError::payload_too_large(format!(
                "the archive is larger than {limit} bytes"
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    drop(file);
    let idempotent = key.map(|key| (key, format!("{:x}", hasher.finalize())));
    // A retry answers at once, without reading the archive again.
    if let Some((key, hash)) = idempotent.clone() {
        let who = owner.clone();
        let first = state
            .db
            .write(move |conn| items_store::import_replay(conn, &who, &key, now()))
            .await?;
        if let Some(first) = first {
            return replayed(first, &hash);
        }
    }

    let who = owner.clone();
    let models = state
        .db
        .read(move |conn| crate::store::embeddings::models(conn, &who))
        .await?
        .into_iter()
        .collect();
    let (limits, path) = (state.limits.clone(), staged.path().to_owned());
    let checked = tokio::task::spawn_blocking(move || import::check(&path, &limits, &models))
        .await
        .map_err(ApiError::internal)??;
    let (limits, path, who) = (state.limits.clone(), staged.path().to_owned(), owner);
    let request_hash = idempotent
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_default();
    let written = state
        .db
        .write(move |conn| {
            let Some((key, hash)) = &idempotent else {
                return Ok(Written::New(import::write(
                    conn, &path, &who, &limits, checked,
                )?));
            };
            // Another request with the key may have finished meanwhile.
            if let Some(first) = items_store::import_replay(conn, &who, key, now())? {
                return Ok(Written::Earlier(first));
            }
            let imported = import::write(conn, &path, &who, &limits, checked)?;
            let answer = serde_json::to_string(&imported).unwrap_or_default();
            items_store::remember_import(conn, &who, key, hash, &answer, now())?;
            Ok(Written::New(imported))
        })
        .await?;
    drop(staged);
    match written {
        Written::New(imported) => Ok(Reply::new(imported)),
        Written::Earlier(first) => replayed(first, &request_hash),
    }
}

/// What an import's write did: imported the archive, or found its Idempotency-Key
/// used before (that request's hash and answer).
enum Written {
    New(ImportOut),
    Earlier((String, Option<String>)),
}

/// The answer of the import an `Idempotency-Key` was first used for, or 422 when it
/// was used for another request.
fn replayed(
    (first_hash, answer): (String, Option<String>),
    hash: &str,
) -> Result<Reply<ImportOut, Code<201>>, ApiError> {
    let body = answer
        .filter(|_| first_hash == hash)
        .and_then(|a| serde_json::from_str(&a).ok())
        .ok_or_else(|| {
            ApiError::validation(vec![peermesh_common::FieldError::new(
                "Idempotency-Key",
                "was already used with a different request",
            )])
            .with_code("idempotency_key_reused")
        })?;
    Ok(Reply::new(body))
}
