//! One job's work: read the stored file, find its format and text, split it into
//! chunks and write it to the content service as one item.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::content_client::NewItem;
use crate::error::JobError;
use crate::formats::{self, FormatError};
use crate::jobs::large_text::{self, ItemHead, TextFile};
use crate::sandbox::SandboxError;
use crate::AppState;

/// What a file job ingests (the job's `input`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileInput {
    pub sha256: String,
    pub size: u64,
    pub filename: Option<String>,
    pub declared_type: Option<String>,
    pub title: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where it was fetched from (URL imports).
    #[serde(default)]
    pub url: Option<String>,
    /// Gets a signed POST of the job when it finishes.
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// Reports how far a running job has come (its `progress`, 0..1) and renews its lease.
pub struct Progress<'a> {
    pub state: &'a AppState,
    pub job: &'a str,
    /// The worker (or API instance) holding the job.
    pub worker: &'a str,
}

impl Progress<'_> {
    /// Records `done`; a failure to record is not the job's failure (the next step or
    /// the heartbeat writes again).
    pub async fn set(&self, done: f64) {
        let lease = chrono::TimeDelta::seconds(self.state.settings.job_lease_secs.max(1));
        let (id, worker) = (self.job.to_owned(), self.worker.to_owned());
        let _ = self
            .state
            .db
            .write(move |conn| crate::store::jobs::heartbeat(conn, &id, &worker, lease, Some(done)))
            .await;
    }
}

/// Runs a file job; returns the ids of the items it made. `key` is the job id: the
/// content service's idempotency key, so a retry after a lost answer creates nothing
/// twice.
pub async fn run_file(
    state: &AppState,
    owner: &str,
    input: &FileInput,
    key: &str,
    request_id: Option<&str>,
    // `None` in a request, whose caller waits for the answer anyway: no extra writes.
    progress: Option<&Progress<'_>>,
) -> Result<Vec<String>, JobError> {
    if input.size > large_text::STREAM_ABOVE {
        let (path, meta) = (state.blobs.path(&input.sha256), input.clone());
        let text = tokio::task::spawn_blocking(move || {
            TextFile::open_if_text(
                path,
                meta.filename.as_deref(),
                meta.declared_type.as_deref(),
            )
        })
        .await
        .map_err(|e| JobError::Internal(e.to_string()))??;
        if let Some(text) = text {
            if let Some(progress) = progress {
                progress.set(0.2).await;
            }
            return run_large_text(state, owner, input, text, key, request_id).await;
        }
    }
    if let Some(progress) = progress {
        progress.set(0.2).await;
    }
    let (document, chunks) = state
        .sandbox
        .parse(
            state.blobs.path(&input.sha256),
            input.filename.clone(),
            input.declared_type.clone(),
            state.settings.chunk_chars,
            state.settings.chunk_overlap,
            // A fetched web page: its article, not its navigation and footers.
            input.url.is_some(),
        )
        .await
        .map_err(|e| match e {
            SandboxError::Format(e) => JobError::Format(e),
            SandboxError::Internal(m) => JobError::Internal(m),
        })?;
    if document.text.trim().is_empty() {
        return Err(FormatError::Corrupt("the file holds no text".into()).into());
    }
    // Read, converted and chunked; what is left is writing to the content service.
    if let Some(progress) = progress {
        progress.set(0.6).await;
    }
    let item = NewItem {
        title: input.title.clone().unwrap_or(document.title),
        body: document.text,
        kind: "document".into(),
        tags: input.tags.clone(),
        source: source(input),
        metadata: serde_json::Value::Object(document.metadata),
        chunks,
    };
    let id = state
        .content
        .create_item(owner, &item, key, request_id)
        .await?;
    Ok(vec![id])
}

/// Where an item came from: the upload or the URL, and the stored file.
fn source(input: &FileInput) -> serde_json::Value {
    match &input.url {
        Some(url) => {
            json!({"type": "url", "url": url, "filename": input.filename, "sha256": input.sha256})
        }
        None => json!({"type": "upload", "filename": input.filename, "sha256": input.sha256}),
    }
}

/// A large plain-text file, read and sent in blocks (see [`large_text`]).
async fn run_large_text(
    state: &AppState,
    owner: &str,
    input: &FileInput,
    text: TextFile,
    key: &str,
    request_id: Option<&str>,
) -> Result<Vec<String>, JobError> {
    let metadata = formats::base_metadata(formats::Format::Text, input.filename.as_deref());
    let head = Arc::new(ItemHead {
        title: input.title.clone(),
        filename: input.filename.clone(),
        tags: input.tags.clone(),
        source: source(input),
        metadata: serde_json::Value::Object(metadata),
        chunk_chars: state.settings.chunk_chars,
        overlap: state.settings.chunk_overlap,
    });
    let mut failure = None;
    let created = state
        .content
        .post_item(owner, key, request_id, || {
            let (body, slot) = large_text::item_body(text.clone(), head.clone());
            failure = Some(slot);
            body
        })
        .await;
    // A body that broke off because of the file, not the content service.
    if let Some(e) = failure.and_then(|slot| slot.lock().unwrap_or_else(|p| p.into_inner()).take())
    {
        return Err(e);
    }
    Ok(vec![created?])
}
