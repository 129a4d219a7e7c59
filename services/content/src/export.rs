//! Exports and imports of one owner's whole content, as one tar archive:
//!
//! ```text
//! peermesh-export/items/<id>.json   the item: title, body, kind, tags, source, metadata,
//!                                   times, its chunks' offsets, its vectors
//! peermesh-export/items/<id>.md     the same item as Markdown with YAML front matter
//! peermesh-export/links.json        the links between the exported items
//! peermesh-export/manifest.json     format, version, counts, the originals' hashes
//! peermesh-export/originals/<sha256> the uploaded files kept by ingestion
//! ```
//!
//! An export is a job (`content_exports`): a task in every content process claims a
//! queued one with a lease and writes the archive to `CONTENT_EXPORT_DIR`, reading the
//! items one at a time, so its memory is bounded by the largest item. The originals
//! stay where they are kept, in the ingestion service: they are fetched and appended
//! while the archive is downloaded, with the downloading owner's own token (the content
//! service holds no credentials for ingestion), and streamed through.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::TimeDelta;
use peermesh_common::health::Readiness;
use peermesh_db::{Db, DbConnection, DbError};
use serde::{Deserialize, Serialize};
use slog::Logger;

use crate::store::exports::{self, Export};
use crate::store::items as items_store;

/// The folder every path of an archive is under.
pub const ROOT: &str = "peermesh-export";
pub const FORMAT: &str = "peermesh-export";
pub const VERSION: u32 = 1;

/// How long a process holds an export it works on before another may take it.
const LEASE_SECS: i64 = 300;
/// Items whose ids are read per query.
const ID_BATCH: i64 = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedSource {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: Option<String>,
    pub filename: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedChunk {
    pub index: i32,
    /// Character offsets into the body.
    pub start: i64,
    pub end: i64,
    /// Only when the chunk's text is not the body's characters `start..end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedVector {
    pub model: String,
    pub chunk: i32,
    pub vector: Vec<f32>,
    /// The body changed after the vector was computed.
    #[serde(default)]
    pub stale: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedItem {
    pub id: String,
    pub title: String,
    pub body: String,
    pub kind: String,
    pub tags: Vec<String>,
    pub source: Option<ArchivedSource>,
    pub metadata: serde_json::Value,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    pub chunks: Vec<ArchivedChunk>,
    #[serde(default)]
    pub vectors: Vec<ArchivedVector>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedLink {
    pub id: String,
    pub source_id: String,
    pub target_id: String,
    pub relation: String,
    pub weight: Option<f64>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub owner_id: String,
    pub exported_at: String,
    pub items: i64,
    pub links: i64,
    /// SHA-256 of each original file, appended under `originals/` when downloaded.
    pub originals: Vec<String>,
}

/// Where an export's archive is kept.
pub fn archive_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.tar"))
}

/// The task that works off queued exports until the process drains, and removes
/// expired ones.
pub fn start(
    db: Db,
    dir: PathBuf,
    queued: std::sync::Arc<tokio::sync::Notify>,
    readiness: Readiness,
    logger: Logger,
) -> tokio::task::JoinHandle<()> {
    actix_web::rt::spawn(async move {
        while !readiness.is_draining() {
            let worked = run_one(&db, &dir, &logger).await;
            if !worked {
                remove_expired(&db, &dir, None, &logger).await;
                let wait = std::time::Duration::from_secs(5);
                let _ = tokio::time::timeout(wait, queued.notified()).await;
            }
        }
    })
}

/// Removes expired exports (or all of `owner`'s) with their archives.
pub async fn remove_expired(db: &Db, dir: &Path, owner: Option<String>, logger: &Logger) {
    match db
        .write(move |conn| exports::remove_expired(conn, owner.as_deref()))
        .await
    {
        Ok(ids) => {
            for id in ids {
                let _ = tokio::fs::remove_file(archive_path(dir, &id)).await;
            }
        }
        Err(e) => slog::warn!(logger, "removing expired exports failed"; "error" => e.to_string()),
    }
}

/// Claims one export and writes its archive; whether there was one.
async fn run_one(db: &Db, dir: &Path, logger: &Logger) -> bool {
    let lease = TimeDelta::seconds(LEASE_SECS);
    let export = match db.write(move |conn| exports::claim(conn, lease)).await {
        Ok(Some(export)) => export,
        Ok(None) => return false,
        Err(e) => {
            slog::warn!(logger, "claiming an export failed"; "error" => e.to_string());
            return false;
        }
    };
    let path = archive_path(dir, &export.id);
    let (job, file) = (export.clone(), path.clone());
    let written = db.run(move |conn| write_archive(conn, job, &file)).await;
    let recorded = match written {
        Ok(done) => {
            slog::info!(logger, "export written"; "export" => &done.id, "owner_id" => &done.owner_id,
                "items" => done.items, "links" => done.links, "bytes" => done.size);
            db.write(move |conn| exports::succeed(conn, &done)).await
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            slog::warn!(logger, "export failed"; "export" => &export.id, "attempt" => export.attempts,
                "error" => e.to_string());
            let message = "the archive could not be written".to_owned();
            db.write(move |conn| exports::fail(conn, &export, &message))
                .await
        }
    };
    if let Err(e) = recorded {
        slog::warn!(logger, "recording an export's outcome failed"; "error" => e.to_string());
    }
    true
}

fn io_error(e: std::io::Error) -> DbError {
    DbError::Task(format!("writing the archive: {e}"))
}

/// Appends `bytes` as the file `name` under [`ROOT`].
fn append(tar: &mut tar::Builder<std::fs::File>, name: &str, bytes: &[u8]) -> Result<(), DbError> {
    let mut header = entry_header(name, bytes.len() as u64);
    tar.append_data(&mut header, format!("{ROOT}/{name}"), bytes)
        .map_err(io_error)
}

/// A tar header for a regular file of `size` bytes (the path is set by the caller
/// or by [`tar::Builder::append_data`]).
pub fn entry_header(name: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    let _ = header.set_path(format!("{ROOT}/{name}"));
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
}

/// Writes the archive of `export`'s owner (without the end-of-archive blocks, which
/// the download adds after the originals); returns the export with its counts.
fn write_archive(
    conn: &mut DbConnection,
    mut export: Export,
    path: &Path,
) -> Result<Export, DbError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let file = std::fs::File::create(path).map_err(io_error)?;
    let mut tar = tar::Builder::new(file);
    let owner = export.owner_id.clone();
    let mut exported: HashSet<String> = HashSet::new();
    let mut originals: Vec<String> = Vec::new();
    let mut after = None;
    loop {
        let batch = exports::item_ids(conn, &owner, after, ID_BATCH)?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(*last);
        for (_, id) in batch {
            // One item at a time: memory is bounded by the largest item.
            let Some(item) = items_store::get(conn, Some(&owner), &id)? else {
                continue; // deleted meanwhile
            };
            let archived = archived_item(conn, item)?;
            if let Some(sha) = archived.source.as_ref().and_then(|s| s.sha256.clone()) {
                if !originals.contains(&sha) {
                    originals.push(sha);
                }
            }
            let json =
                serde_json::to_vec_pretty(&archived).map_err(|e| DbError::Task(e.to_string()))?;
            append(&mut tar, &format!("items/{id}.json"), &json)?;
            drop(json);
            append(
                &mut tar,
                &format!("items/{id}.md"),
                markdown(&archived).as_bytes(),
            )?;
            exported.insert(id);
        }
    }
    let mut links = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let batch = exports::links(conn, &owner, after.as_deref(), ID_BATCH)?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id.clone());
        links.extend(
            batch
                .into_iter()
                // Only links between exported items (one may have gone meanwhile).
                .filter(|l| exported.contains(&l.source_id) && exported.contains(&l.target_id))
                .map(|l| ArchivedLink {
                    id: l.id,
                    source_id: l.source_id,
                    target_id: l.target_id,
                    relation: l.relation,
                    weight: l.weight,
                    created_at: crate::routes::rfc3339(l.created_at),
                }),
        );
    }
    let json = serde_json::to_vec_pretty(&links).map_err(|e| DbError::Task(e.to_string()))?;
    append(&mut tar, "links.json", &json)?;
    export.items = exported.len() as i64;
    export.links = links.len() as i64;
    export.originals = serde_json::Value::from(originals.clone()).to_string();
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        owner_id: owner,
        exported_at: crate::routes::rfc3339(exports::now()),
        items: export.items,
        links: export.links,
        originals,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| DbError::Task(e.to_string()))?;
    append(&mut tar, "manifest.json", &json)?;
    let mut file = tar.into_inner().map_err(io_error)?;
    file.flush().map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    export.size = i64::try_from(file.metadata().map_err(io_error)?.len()).unwrap_or(i64::MAX);
    Ok(export)
}

/// An item as the archive keeps it.
fn archived_item(
    conn: &mut DbConnection,
    item: items_store::Item,
) -> Result<ArchivedItem, DbError> {
    let mut chunks = Vec::new();
    let mut after = None;
    loop {
        let batch = items_store::chunks(conn, &item.id, after, 1000)?;
        let Some(last) = batch.last() else { break };
        after = Some(last.idx);
        chunks.extend(batch.into_iter().map(|c| ArchivedChunk {
            index: c.idx,
            start: c.start_offset,
            end: c.end_offset,
            text: (!c.text.is_empty()).then_some(c.text),
        }));
    }
    let vectors = exports::vectors(conn, &item.id)?
        .into_iter()
        .map(|(model, chunk, bytes, stale)| ArchivedVector {
            model,
            chunk,
            vector: crate::vectors::from_bytes(&bytes),
            stale,
        })
        .collect();
    Ok(ArchivedItem {
        tags: serde_json::from_str(&item.tags).unwrap_or_default(),
        metadata: serde_json::from_str(&item.metadata).unwrap_or(serde_json::Value::Null),
        source: item.source_type.map(|kind| ArchivedSource {
            kind,
            url: item.source_url,
            filename: item.source_filename,
            sha256: item.source_sha256,
        }),
        created_at: crate::routes::rfc3339(item.created_at),
        updated_at: crate::routes::rfc3339(item.updated_at),
        id: item.id,
        title: item.title,
        body: item.body,
        kind: item.kind,
        chunks,
        vectors,
    })
}

/// The item as Markdown: YAML front matter (JSON values are YAML too), then the body.
fn markdown(item: &ArchivedItem) -> String {
    let json = |v: serde_json::Value| v.to_string();
    let mut front = vec![
        format!("id: {}", json(item.id.clone().into())),
        format!("title: {}", json(item.title.clone().into())),
        format!("kind: {}", json(item.kind.clone().into())),
        format!("tags: {}", json(item.tags.clone().into())),
        format!("created_at: {}", json(item.created_at.clone().into())),
        format!("updated_at: {}", json(item.updated_at.clone().into())),
    ];
    if let Some(source) = &item.source {
        front.push(format!(
            "source: {}",
            serde_json::to_string(source).unwrap_or_default()
        ));
    }
    format!("---\n{}\n---\n\n{}\n", front.join("\n"), item.body)
}

/// The download of an archive: the stored archive (`size` bytes, ending in the two
/// zero blocks that close a tar), with each original fetched from `(ingestion base
/// URL, SHA-256)` with the downloader's `authorization` inserted before that end.
/// Streamed through a small channel: memory stays a few chunks whatever the sizes. An
/// original the ingestion service no longer has is left out; one that breaks off
/// mid-way ends the download with an error (the client sees a cut archive).
pub fn download(
    stored: tokio::fs::File,
    size: u64,
    originals: Vec<(String, String)>,
    authorization: actix_web::http::header::HeaderValue,
    http: reqwest::Client,
    logger: Logger,
) -> impl futures_util::Stream<Item = Result<actix_web::web::Bytes, std::io::Error>> {
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<actix_web::web::Bytes, std::io::Error>>(4);
    actix_web::rt::spawn(async move {
        let broken = |what: String| std::io::Error::other(what);
        // The stored archive up to its end blocks.
        let mut left = size.saturating_sub(END_BLOCKS as u64);
        let mut reader = stored.take(left);
        let mut buffer = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = match reader.read(&mut buffer).await {
                Ok(0) => {
                    let _ = tx
                        .send(Err(broken("the stored archive is short".into())))
                        .await;
                    return;
                }
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            left -= n as u64;
            if tx
                .send(Ok(actix_web::web::Bytes::copy_from_slice(&buffer[..n])))
                .await
                .is_err()
            {
                return;
            }
        }
        for (base, sha) in originals {
            let url = format!("{}/files/{sha}", base.trim_end_matches('/'));
            let response = match http
                .get(&url)
                .header(
                    actix_web::http::header::AUTHORIZATION.as_str(),
                    authorization.as_bytes(),
                )
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    slog::warn!(logger, "an original is left out of an export"; "sha256" => &sha, "status" => r.status().as_u16());
                    continue;
                }
                Err(e) => {
                    slog::warn!(logger, "an original is left out of an export"; "sha256" => &sha, "error" => e.to_string());
                    continue;
                }
            };
            let Some(length) = response.content_length() else {
                slog::warn!(logger, "an original without a length is left out of an export"; "sha256" => &sha);
                continue;
            };
            let header = entry_header(&format!("originals/{sha}"), length);
            if tx
                .send(Ok(actix_web::web::Bytes::copy_from_slice(
                    header.as_bytes(),
                )))
                .await
                .is_err()
            {
                return;
            }
            let mut sent = 0u64;
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(chunk) => {
                        sent += chunk.len() as u64;
                        if sent > length || tx.send(Ok(chunk)).await.is_err() {
                            let _ = tx
                                .send(Err(broken(format!(
                                    "original {sha} is longer than announced"
                                ))))
                                .await;
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(broken(format!("original {sha}: {e}")))).await;
                        return;
                    }
                }
            }
            if sent != length {
                let _ = tx
                    .send(Err(broken(format!("original {sha} broke off"))))
                    .await;
                return;
            }
            let pad = (512 - (length % 512) as usize) % 512;
            if pad > 0
                && tx
                    .send(Ok(actix_web::web::Bytes::from(vec![0u8; pad])))
                    .await
                    .is_err()
            {
                return;
            }
        }
        let _ = tx
            .send(Ok(actix_web::web::Bytes::from(vec![0u8; END_BLOCKS])))
            .await;
    });
    crate::routes::channel_body(rx)
}

/// The two zero blocks that end a tar archive.
const END_BLOCKS: usize = 1024;
