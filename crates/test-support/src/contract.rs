//! Holds the OpenAPI documents to what the services really answer: while the API tests
//! run, every routed answer (route, status, headers, content type) is written down, and
//! [`check`] then fails for each one the committed document does not describe.
//!
//! Recording is on when `PEERMESH_CONTRACT_DIR` names a folder (`scripts/test` sets it);
//! each test process appends what it saw, once per distinct answer, to its own file.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use peermesh_common::middleware::{tap_responses, Observed};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const DIR_VAR: &str = "PEERMESH_CONTRACT_DIR";

/// Headers every HTTP answer may carry, which no contract needs to name.
const TRANSPORT_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "date",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "vary",
    "content-encoding",
    "server",
];

/// One distinct answer seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seen {
    pub method: String,
    pub pattern: String,
    pub status: u16,
    /// Lower-case names of the headers beyond [`TRANSPORT_HEADERS`].
    pub headers: BTreeSet<String>,
    /// The media type without parameters, when the answer had a body type.
    pub content_type: Option<String>,
}

/// Starts recording this process's answers (a no-op without `PEERMESH_CONTRACT_DIR`).
pub fn install() {
    if std::env::var_os(DIR_VAR).is_some() {
        tap_responses(record);
    }
}

fn record(observed: &Observed) {
    static SEEN: Mutex<Option<HashSet<Seen>>> = Mutex::new(None);
    let seen = Seen {
        method: observed.method.to_owned(),
        pattern: observed.pattern.to_owned(),
        status: observed.status,
        headers: observed
            .headers
            .keys()
            .map(|name| name.as_str().to_owned())
            .filter(|name| !TRANSPORT_HEADERS.contains(&name.as_str()))
            .collect(),
        content_type: observed
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase()),
    };
    let mut guard = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !guard.get_or_insert_with(HashSet::new).insert(seen.clone()) {
        return;
    }
    let Some(dir) = std::env::var_os(DIR_VAR).map(PathBuf::from) else {
        return;
    };
    // Written under the lock, so lines of one process never interleave.
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("{}.jsonl", std::process::id()));
    if let Ok(mut out) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = writeln!(out, "{}", serde_json::to_string(&seen).unwrap_or_default());
    }
}

/// Every distinct answer recorded under `dir`, by route.
pub fn load(dir: &Path) -> Vec<Seen> {
    let mut all = BTreeSet::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        all.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Seen>(l).ok()),
        );
    }
    all.into_iter().collect()
}

/// The routes outside the API contract: the document and the UI themselves.
fn outside_the_contract(path: &str) -> bool {
    path.ends_with("/openapi.json") || path.contains("/docs")
}

/// What `spec` (the document of the service under `prefix`) fails to say about the
/// answers in `seen`, one line each; answers of other services are left alone.
pub fn check(spec: &Value, prefix: &str, seen: &[Seen]) -> Vec<String> {
    let mut gaps = Vec::new();
    for s in seen {
        if !s.pattern.starts_with(prefix) || outside_the_contract(&s.pattern) {
            continue;
        }
        let method = s.method.to_ascii_lowercase();
        let what = format!("{} {} → {}", s.method, s.pattern, s.status);
        // The prefix itself and the prefix with a trailing slash are one route.
        let bare = s.pattern.trim_end_matches('/');
        let Some(operation) = [s.pattern.clone(), bare.to_owned(), format!("{bare}/")]
            .iter()
            .find_map(|p| spec["paths"][p][&method].as_object())
        else {
            // A method the route does not take, answered by the catch-all.
            if !matches!(s.status, 404 | 405) {
                gaps.push(format!("{what}: the operation is not in the document"));
            }
            continue;
        };
        let responses = &operation["responses"];
        let Some(response) = responses
            .get(s.status.to_string())
            .or_else(|| responses.get("default"))
            .and_then(Value::as_object)
        else {
            gaps.push(format!("{what}: the status is not documented"));
            continue;
        };
        let documented: HashSet<String> = response
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        for header in s.headers.iter().filter(|h| !documented.contains(*h)) {
            gaps.push(format!("{what}: header {header} is not documented"));
        }
        if let Some(content_type) = &s.content_type {
            let listed = response
                .get("content")
                .and_then(Value::as_object)
                .is_some_and(|c| {
                    c.keys()
                        .any(|k| k == "*/*" || k.eq_ignore_ascii_case(content_type))
                });
            if !listed {
                gaps.push(format!(
                    "{what}: content type {content_type} is not documented"
                ));
            }
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seen(method: &str, pattern: &str, status: u16, headers: &[&str], ct: Option<&str>) -> Seen {
        Seen {
            method: method.into(),
            pattern: pattern.into(),
            status,
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            content_type: ct.map(str::to_owned),
        }
    }

    #[test]
    fn answers_the_document_does_not_describe_are_reported() {
        let spec = json!({"paths": {"/api/v1/x/{id}": {"get": {"responses": {
            "200": {"headers": {"ETag": {}}, "content": {"application/json": {}}},
            "404": {"content": {"application/problem+json": {}}}
        }}}}});
        let described = [
            seen(
                "GET",
                "/api/v1/x/{id}",
                200,
                &["etag"],
                Some("application/json"),
            ),
            seen(
                "GET",
                "/api/v1/x/{id}",
                404,
                &[],
                Some("application/problem+json"),
            ),
            // Another service's answer and the document's own route are not judged here.
            seen("GET", "/api/v1/y/{id}", 500, &[], None),
            seen(
                "GET",
                "/api/v1/x/openapi.json",
                200,
                &[],
                Some("application/json"),
            ),
        ];
        assert!(check(&spec, "/api/v1/x", &described).is_empty());

        let gaps = check(
            &spec,
            "/api/v1/x",
            &[
                seen("GET", "/api/v1/x/{id}", 304, &[], None),
                seen(
                    "GET",
                    "/api/v1/x/{id}",
                    200,
                    &["etag", "location"],
                    Some("application/json"),
                ),
                seen("GET", "/api/v1/x/{id}", 404, &[], Some("application/json")),
                seen("DELETE", "/api/v1/x/{id}", 204, &[], None),
                // An unrouted method is the catch-all's 404, not an operation.
                seen(
                    "POST",
                    "/api/v1/x/{id}",
                    404,
                    &[],
                    Some("application/problem+json"),
                ),
            ],
        );
        assert_eq!(
            gaps,
            [
                "GET /api/v1/x/{id} → 304: the status is not documented",
                "GET /api/v1/x/{id} → 200: header location is not documented",
                "GET /api/v1/x/{id} → 404: content type application/json is not documented",
                "DELETE /api/v1/x/{id} → 204: the operation is not in the document",
            ]
        );
    }
}
