//! Content items, one file per verb: create, read (list and one), update, delete; an
//! item's chunks and the caller's tags. What more than one of them checks lives here.

mod chunks;
mod create;
mod delete;
mod read;
mod tags;
mod update;

pub use chunks::chunks;
pub use create::{create, idempotency_key, prepare_import};
pub use delete::delete;
pub use read::{get, list};
pub use tags::tags;
pub use update::patch;

use paperclip::actix::Apiv2Schema;
use serde::{Deserialize, Serialize};

use crate::store::items::{ChunkText, NewChunk, Source};
use crate::validate::{self, Errors};
use crate::Limits;
use peermesh_chunking as chunking;

#[derive(Debug, Clone, Serialize, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct SourceIn {
    /// What the item came from: `upload`, `url`, `feed`, `manual`, … (a slug).
    #[serde(rename = "type")]
    pub kind: String,
    pub url: Option<String>,
    pub filename: Option<String>,
    /// SHA-256 of the original bytes, lower-case hex.
    pub sha256: Option<String>,
}

/// A chunk given by the client; offsets count characters of the body.
#[derive(Debug, Clone, Serialize, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct ChunkIn {
    /// The chunk's text; when omitted, the body's characters `start..end`.
    pub text: Option<String>,
    pub start: u64,
    pub end: u64,
}

fn source(input: &SourceIn, errors: &mut Errors) -> Source {
    errors.check("source.type", validate::slug(&input.kind));
    if let Some(url) = &input.url {
        errors.check("source.url", validate::url(url));
    }
    if let Some(name) = &input.filename {
        errors.check("source.filename", validate::filename(name));
    }
    if let Some(sha) = &input.sha256 {
        errors.check("source.sha256", validate::sha256(sha));
    }
    Source {
        kind: input.kind.clone(),
        url: input.url.clone(),
        filename: input.filename.clone(),
        sha256: input.sha256.clone(),
    }
}

/// Checks client chunks against the body, or computes them.
fn chunks_for(
    body: &str,
    given: Option<Vec<ChunkIn>>,
    limits: &Limits,
    errors: &mut Errors,
) -> Vec<NewChunk> {
    let Some(given) = given else {
        let spans = chunking::spans(body, limits.chunk_chars);
        return spans.into_iter().map(NewChunk::from).collect();
    };
    if given.len() > validate::MAX_CHUNKS {
        errors.add("chunks", format!("at most {} chunks", validate::MAX_CHUNKS));
        return Vec::new();
    }
    let body_chars = body.chars().count() as u64;
    let mut out = Vec::with_capacity(given.len());
    let mut numbers = Vec::with_capacity(given.len());
    for (i, c) in given.into_iter().enumerate() {
        if c.start > c.end || c.end > body_chars {
            errors.add(
                format!("chunks[{i}]"),
                format!("start..end must lie within the body's {body_chars} characters"),
            );
            continue;
        }
        let text = match c.text {
            Some(text) if text.len() > limits.max_body_bytes => {
                errors.add(format!("chunks[{i}].text"), "is longer than a body may be");
                continue;
            }
            Some(text) => ChunkText::Own(text),
            // Byte offsets are found below, in one pass over the body.
            None => ChunkText::Body(c.start as usize..c.end as usize),
        };
        out.push(NewChunk {
            start: c.start as usize,
            end: c.end as usize,
            text,
        });
        numbers.push(i);
    }
    chars_to_bytes(body, &mut out);
    for (i, c) in numbers.into_iter().zip(&out) {
        if c.text(body).trim().is_empty() {
            errors.add(format!("chunks[{i}].text"), "must not be empty");
        }
    }
    out
}

/// Turns the character ranges of chunks given as offsets into byte ranges of `body`.
fn chars_to_bytes(body: &str, chunks: &mut [NewChunk]) {
    let mut wanted: Vec<usize> = chunks
        .iter()
        .filter_map(|c| match &c.text {
            ChunkText::Body(chars) => Some([chars.start, chars.end]),
            ChunkText::Own(_) => None,
        })
        .flatten()
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut bytes = std::collections::HashMap::with_capacity(wanted.len());
    let mut positions = body
        .char_indices()
        .map(|(byte, _)| byte)
        .chain(std::iter::once(body.len()))
        .enumerate();
    for want in wanted {
        if let Some((_, byte)) = positions.find(|&(chars, _)| chars == want) {
            bytes.insert(want, byte);
        }
    }
    let byte = |chars: &usize| bytes.get(chars).copied().unwrap_or(body.len());
    for c in chunks {
        if let ChunkText::Body(range) = &mut c.text {
            *range = byte(&range.start)..byte(&range.end);
        }
    }
}

fn kind(value: Option<&str>, errors: &mut Errors) -> String {
    let kind = value.unwrap_or("note");
    errors.check("kind", validate::slug(kind));
    kind.to_owned()
}

fn metadata(value: Option<&serde_json::Value>, limits: &Limits, errors: &mut Errors) -> String {
    match value {
        None => "{}".into(),
        Some(v) => validate::metadata(v, limits.metadata_max_bytes, limits.metadata_max_depth)
            .unwrap_or_else(|message| {
                errors.add("metadata", message);
                String::new()
            }),
    }
}
