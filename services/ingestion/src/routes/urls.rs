//! `POST /urls`: fetch a web page or document (SSRF-safe) and ingest it like an upload.

use actix_web::HttpRequest;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::http::JsonBody;
use peermesh_common::ApiError;
use serde::Deserialize;

use super::delegating::Delegating;
use super::files::{accept, Answer};
use crate::fetch::FetchError;
use crate::jobs::pipeline::FileInput;
use crate::AppState;

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct UrlIn {
    /// An http(s) URL of a public site.
    pub url: String,
    pub title: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Gets a signed POST of the job when it finishes.
    pub callback_url: Option<String>,
}

/// Fetches the URL (only public addresses, at most five redirects, size and time
/// limits) and ingests what it gets: the same answers as `POST /files`.
#[api_v2_operation(summary = "Ingest a web page or document by URL", tags(files))]
pub async fn import(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Delegating,
    body: JsonBody<UrlIn>,
) -> Result<Answer, ApiError> {
    let body = body.into_inner();
    if body.url.chars().count() > 2048 {
        return Err(ApiError::invalid_field(
            "url",
            "must be at most 2048 characters",
        ));
    }
    let title = body.title.as_deref().map(super::item_title).transpose()?;
    let tags = super::item_tags(&body.tags.unwrap_or_default())?;
    let callback_url = body
        .callback_url
        .as_deref()
        .map(|u| crate::callbacks::validate(&state, u.trim()))
        .transpose()?;
    let fetched = state
        .fetcher
        .fetch(&body.url, &state.blobs, state.settings.max_bytes)
        .await
        .map_err(|e| match e {
            FetchError::Refused(m) => ApiError::invalid_field("url", m).with_code("url_refused"),
            FetchError::TooLarge(max) => ApiError::payload_too_large(format!(
                "the document is larger than the limit of {max} bytes"
            )),
            FetchError::Failed(m) => ApiError::invalid_field("url", m).with_code("fetch_failed"),
            FetchError::Storage(e) => ApiError::internal(e),
        })?;
    let input = FileInput {
        sha256: fetched.stored.sha256.clone(),
        size: fetched.stored.size,
        filename: fetched.filename,
        declared_type: fetched.content_type,
        title,
        tags,
        url: Some(fetched.url),
        callback_url,
    };
    let request_id = peermesh_common::middleware::request_id_of(&req);
    accept(
        &state,
        principal.subject(),
        input,
        fetched.stored,
        request_id,
    )
    .await
}
