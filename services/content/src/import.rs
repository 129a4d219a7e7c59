//! `POST /import`: an archive made by an export (see `crate::export`), taken into the
//! caller's account with new ids, in the archive's order (so lists keep their order),
//! with the items' times, chunks, tags, links and vectors. The archive is read twice:
//! first everything is checked and nothing written, then it is written in one
//! transaction, so an archive that is refused, or fails half-way, leaves nothing.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use peermesh_common::{ApiError, FieldError};
use peermesh_db::{DbConnection, DbError};
use serde::{Deserialize, Serialize};

use crate::export::{ArchivedItem, ArchivedLink, Manifest, FORMAT, ROOT, VERSION};
use crate::routes::items::{prepare_import, ChunkIn, SourceIn};
use crate::routes::MAX_LINKS_PER_ITEM;
use crate::store::{embeddings, items as items_store, links};
use crate::validate;
use crate::{vectors, Limits};

#[derive(Debug, Clone, Serialize, Deserialize, paperclip::actix::Apiv2Schema)]
pub struct ImportOut {
    pub items: usize,
    pub links: usize,
    pub vectors: usize,
}

/// What the first reading found: the links to make and the counts.
pub struct Checked {
    links: Vec<ArchivedLink>,
    items: usize,
    vectors: usize,
}

/// What an archive entry is.
enum Entry {
    Manifest,
    Item,
    Links,
    /// Markdown copies and originals: not needed to import.
    Skipped,
}

fn entry_kind(path: &str) -> Option<Entry> {
    let rest = path.strip_prefix(ROOT)?.strip_prefix('/')?;
    Some(match rest {
        "manifest.json" => Entry::Manifest,
        "links.json" => Entry::Links,
        r if r.starts_with("items/") && r.ends_with(".json") => Entry::Item,
        _ => Entry::Skipped,
    })
}

fn refused(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, message)]).with_code("invalid_archive")
}

/// Visits the archive's entries that matter, each read whole up to `max_entry` bytes.
fn entries<E: From<ApiError>>(
    path: &Path,
    max_entry: u64,
    mut visit: impl FnMut(Entry, &str, Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let file = std::fs::File::open(path).map_err(ApiError::internal)?;
    let mut archive = tar::Archive::new(file);
    let unreadable =
        |e: std::io::Error| refused("archive", format!("not a readable tar archive: {e}"));
    for entry in archive.entries().map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry
            .path()
            .map_err(unreadable)?
            .to_string_lossy()
            .into_owned();
        let kind = match entry_kind(&name) {
            Some(Entry::Skipped) | None => continue,
            Some(kind) => kind,
        };
        if entry.size() > max_entry {
            return Err(refused(name, format!("is larger than {max_entry} bytes")).into());
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .take(max_entry + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        visit(kind, &name, bytes)?;
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| refused(name, e.to_string()))
}

/// The biggest entry read: an item of the largest body, escaped, with its chunks.
fn max_entry(limits: &Limits) -> u64 {
    (limits.max_body_bytes as u64).saturating_mul(7) + 16 * 1024 * 1024
}

/// Reads the whole archive and checks every item, link and vector as the API would;
/// `models` are the account's models and their dimensions. Nothing is written.
pub fn check(
    path: &Path,
    limits: &Limits,
    models: &HashMap<String, i32>,
) -> Result<Checked, ApiError> {
    let mut manifest: Option<Manifest> = None;
    let mut links: Option<Vec<ArchivedLink>> = None;
    let mut ids: HashSet<String> = HashSet::new();
    let mut dims: HashMap<String, usize> = models
        .iter()
        .map(|(m, d)| (m.clone(), *d as usize))
        .collect();
    let mut vector_count = 0;
    entries(path, max_entry(limits), |kind, name, bytes| {
        match kind {
            Entry::Manifest => manifest = Some(parse(name, &bytes)?),
            Entry::Links => links = Some(parse(name, &bytes)?),
            Entry::Item => {
                let item: ArchivedItem = parse(name, &bytes)?;
                drop(bytes);
                if !ids.insert(item.id.clone()) {
                    return Err(refused(name, "holds an item whose id came before"));
                }
                vector_count += check_vectors(name, &item, &mut dims)?;
                prepare_import(item, "check".into(), limits)
                    .map_err(|e| e.with_field_prefix(name))?;
            }
            Entry::Skipped => {}
        }
        Ok(())
    })?;
    let manifest =
        manifest.ok_or_else(|| refused("archive", format!("has no {ROOT}/manifest.json")))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(refused(
            "manifest.json",
            format!("is not a {FORMAT} archive of version {VERSION}"),
        ));
    }
    let links = links.unwrap_or_default();
    let mut edges = HashSet::new();
    let mut outgoing: HashMap<&str, i64> = HashMap::new();
    for (i, link) in links.iter().enumerate() {
        let field = |f: &str| format!("links.json[{i}].{f}");
        for (end, id) in [
            ("source_id", &link.source_id),
            ("target_id", &link.target_id),
        ] {
            if !ids.contains(id) {
                return Err(refused(field(end), "names no item of the archive"));
            }
        }
        if let Err(m) = validate::slug(&link.relation) {
            return Err(refused(field("relation"), m));
        }
        if link.weight.is_some_and(|w| !w.is_finite()) || link.source_id == link.target_id {
            return Err(refused(
                field("weight"),
                "must be finite, between two items",
            ));
        }
        // As `POST /{id}/links` refuses them: the same typed edge twice, too many.
        if !edges.insert((&link.source_id, &link.target_id, &link.relation)) {
            return Err(refused(
                field("relation"),
                "links these items a second time",
            ));
        }
        let count = outgoing.entry(&link.source_id).or_default();
        *count += 1;
        if *count > MAX_LINKS_PER_ITEM {
            return Err(refused(field("source_id"), "has too many outgoing links"));
        }
    }
    Ok(Checked {
        links,
        items: ids.len(),
        vectors: vector_count,
    })
}

/// Checks an item's vectors as `PUT /{id}/embeddings` does; how many there are.
fn check_vectors(
    name: &str,
    item: &ArchivedItem,
    dims: &mut HashMap<String, usize>,
) -> Result<usize, ApiError> {
    let mut seen = HashSet::new();
    for (i, v) in item.vectors.iter().enumerate() {
        let field = |f: &str| format!("{name}: vectors[{i}].{f}");
        validate::model(&v.model).map_err(|m| refused(field("model"), m))?;
        let want = *dims.entry(v.model.clone()).or_insert(v.vector.len());
        if v.vector.len() != want || want == 0 || vectors::normalize(&v.vector).is_none() {
            return Err(refused(
                field("vector"),
                format!("must be {want} finite numbers, not all zero (the model's dimensions)"),
            ));
        }
        if v.chunk < 0
            || v.chunk as usize >= item.chunks.len().max(1)
            || !seen.insert((&v.model, v.chunk))
        {
            return Err(refused(
                field("chunk"),
                "names no chunk of the item, or one twice",
            ));
        }
    }
    Ok(item.vectors.len())
}

/// Why writing stopped: the database, or an archive that no longer reads as checked.
enum Stopped {
    Db(DbError),
    Archive(ApiError),
}

impl From<DbError> for Stopped {
    fn from(e: DbError) -> Self {
        Self::Db(e)
    }
}

impl From<ApiError> for Stopped {
    fn from(e: ApiError) -> Self {
        Self::Archive(e)
    }
}

/// Writes the checked archive into `owner`'s account; run in one write transaction.
pub fn write(
    conn: &mut DbConnection,
    path: &Path,
    owner: &str,
    limits: &Limits,
    checked: Checked,
) -> Result<ImportOut, DbError> {
    let mut new_ids: HashMap<String, String> = HashMap::new();
    entries(
        path,
        max_entry(limits),
        |kind, name, bytes| -> Result<(), Stopped> {
            if !matches!(kind, Entry::Item) {
                return Ok(());
            }
            let mut item: ArchivedItem = parse(name, &bytes)?;
            drop(bytes);
            let (old_id, vectors) = (item.id.clone(), std::mem::take(&mut item.vectors));
            let stale = vectors.iter().any(|v| v.stale);
            let prepared = prepare_import(item, owner.to_owned(), limits)?;
            let id = prepared.item.id.clone();
            items_store::insert(conn, &prepared.item, &prepared.tags, &prepared.chunks)?;
            let mut by_model: HashMap<&str, Vec<(i32, Vec<f32>)>> = HashMap::new();
            for v in &vectors {
                by_model
                    .entry(&v.model)
                    .or_default()
                    .push((v.chunk, vectors::normalize(&v.vector).unwrap_or_default()));
            }
            for (model, unit) in by_model {
                let dims = unit.first().map_or(0, |(_, v)| v.len()) as i32;
                embeddings::claim_model(conn, owner, model, dims)?;
                embeddings::replace(conn, owner, &id, model, &unit)?;
            }
            if stale {
                embeddings::mark_stale(conn, &id)?;
            }
            new_ids.insert(old_id, id);
            Ok(())
        },
    )
    .map_err(|stopped| match stopped {
        Stopped::Db(e) => e,
        Stopped::Archive(e) => DbError::Task(format!("the checked archive changed: {e}")),
    })?;
    for link in &checked.links {
        let (Some(source), Some(target)) =
            (new_ids.get(&link.source_id), new_ids.get(&link.target_id))
        else {
            return Err(DbError::Task("a link's item was not written".into()));
        };
        links::insert(
            conn,
            &links::Link {
                id: uuid::Uuid::now_v7().to_string(),
                owner_id: owner.to_owned(),
                source_id: source.clone(),
                target_id: target.clone(),
                relation: link.relation.clone(),
                weight: link.weight,
                created_at: chrono::DateTime::parse_from_rfc3339(&link.created_at)
                    .map(|t| t.naive_utc())
                    .unwrap_or_else(|_| chrono::Utc::now().naive_utc()),
            },
        )?;
    }
    Ok(ImportOut {
        items: checked.items,
        links: checked.links.len(),
        vectors: checked.vectors,
    })
}

/// The archived item as a create request would give it.
pub fn create_parts(item: &ArchivedItem) -> (Option<SourceIn>, Vec<ChunkIn>) {
    let source = item.source.as_ref().map(|s| SourceIn {
        kind: s.kind.clone(),
        url: s.url.clone(),
        filename: s.filename.clone(),
        sha256: s.sha256.clone(),
    });
    let chunks = item
        .chunks
        .iter()
        .map(|c| ChunkIn {
            text: c.text.clone(),
            start: c.start.max(0) as u64,
            end: c.end.max(0) as u64,
        })
        .collect();
    (source, chunks)
}
