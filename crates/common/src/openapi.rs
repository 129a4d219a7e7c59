//! Finishing touches on the OpenAPI document paperclip generates, so that it says what
//! the services really send: security, every status with its problem+json body, the
//! request and response headers of the contract, and examples. What paperclip cannot
//! read from a handler's signature each service states in its [`Contract`].

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::error::{problem_type, PROBLEM_JSON};

/// A header of the contract, with what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    AccelBuffering,
    CacheControl,
    ContentDisposition,
    ContentSecurityPolicy,
    ContentTypeOptions,
    ETag,
    IdempotencyKey,
    IfMatch,
    IfNoneMatch,
    Location,
    OnBehalfOf,
    Pragma,
    Prefer,
    PreferenceApplied,
    ReferrerPolicy,
    RetryAfter,
    SetCookie,
    WwwAuthenticate,
}

impl Header {
    pub const fn name(self) -> &'static str {
        match self {
            Self::AccelBuffering => "X-Accel-Buffering",
            Self::CacheControl => "Cache-Control",
            Self::ContentDisposition => "Content-Disposition",
            Self::ContentSecurityPolicy => "Content-Security-Policy",
            Self::ContentTypeOptions => "X-Content-Type-Options",
            Self::ETag => "ETag",
            Self::IdempotencyKey => "Idempotency-Key",
            Self::IfMatch => "If-Match",
            Self::IfNoneMatch => "If-None-Match",
            Self::Location => "Location",
            Self::OnBehalfOf => "X-On-Behalf-Of",
            Self::Pragma => "Pragma",
            Self::Prefer => "Prefer",
            Self::PreferenceApplied => "Preference-Applied",
            Self::ReferrerPolicy => "Referrer-Policy",
            Self::RetryAfter => "Retry-After",
            Self::SetCookie => "Set-Cookie",
            Self::WwwAuthenticate => "WWW-Authenticate",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::CacheControl => "`no-store`: the answer carries tokens or secrets.",
            Self::ContentDisposition => "`attachment`, with the file's name.",
            Self::ContentSecurityPolicy => {
                "`sandbox; default-src 'none'`: the file never runs on our origin."
            }
            Self::ContentTypeOptions => "`nosniff`: the type given is the one used.",
            Self::AccelBuffering => "`no`: a proxy passes each event on at once.",
            Self::ETag => "The version of the resource, for `If-Match` / `If-None-Match`.",
            Self::IdempotencyKey => {
                "1..255 visible ASCII characters. A retry with the same key and body gets \
                 the first answer; with another body 422; while the first runs 409."
            }
            Self::IfMatch => "Act only if the resource is still at this ETag (412 otherwise).",
            Self::IfNoneMatch => "Answer 304 without a body if the resource is still at this ETag.",
            Self::Location => "Where the created resource (or the job) can be read.",
            Self::OnBehalfOf => {
                "A service token with the `content:act_as` scope acts for this user id."
            }
            Self::Pragma => "`no-cache`, for HTTP/1.0 caches.",
            Self::Prefer => "`return=minimal`: answer without the resource's body (RFC 7240).",
            Self::PreferenceApplied => "`return=minimal` when that preference was honoured.",
            Self::ReferrerPolicy => "`no-referrer`: the provider's codes never leak onward.",
            Self::RetryAfter => "Seconds to wait before trying again.",
            Self::SetCookie => {
                "The sign-in flow's cookie (HttpOnly, SameSite=Lax), binding the callback \
                 to the browser that started it; cleared by the callback."
            }
            Self::WwwAuthenticate => "`Bearer`, with `error=\"invalid_token\"` for a bad token.",
        }
    }

    fn example(self) -> Value {
        Value::from(match self {
            Self::CacheControl => "no-store",
            Self::ContentDisposition => "attachment; filename=\"notes.pdf\"",
            Self::ContentSecurityPolicy => "sandbox; default-src 'none'",
            Self::ContentTypeOptions => "nosniff",
            Self::AccelBuffering => "no",
            Self::ETag | Self::IfMatch | Self::IfNoneMatch => "\"3f9a1c0e5b7d2a64\"",
            Self::IdempotencyKey => "7c0d6a8e-create-notes-1",
            Self::Location => "/api/v1/content/0193a5b2-7c4e-7d3a-9f1e-2b3c4d5e6f70",
            Self::OnBehalfOf => "0193a5b2-7c4e-7d3a-9f1e-2b3c4d5e6f70",
            Self::Pragma => "no-cache",
            Self::Prefer | Self::PreferenceApplied => "return=minimal",
            Self::ReferrerPolicy => "no-referrer",
            Self::RetryAfter => "30",
            Self::SetCookie => "peermesh_oauth=…; Path=/api/v1/auth/oauth; HttpOnly; SameSite=Lax",
            Self::WwwAuthenticate => "Bearer error=\"invalid_token\"",
        })
    }

    fn schema(self) -> Value {
        match self {
            Self::RetryAfter => json!({"type": "integer", "minimum": 0}),
            _ => json!({"type": "string"}),
        }
    }
}

/// What one operation adds to the rules every operation follows (see [`finish`]).
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// `METHOD /path`, the path under the service's prefix (`/{id}`; `/` for the prefix).
    pub route: &'static str,
    pub statuses: &'static [u16],
    pub request_headers: &'static [Header],
    pub response_headers: &'static [(u16, &'static [Header])],
    /// Errors in OAuth's own `application/json` shape (RFC 6749 §5.2) as well.
    pub oauth_errors: bool,
    /// Called by service clients with their id and secret (OAuth's token endpoint):
    /// HTTP Basic, or the same two fields in the form body.
    pub client_credentials: bool,
    /// Answers 200 with a file of any type (a download), not JSON.
    pub download: bool,
    /// Only for service clients with this scope (scope, what it allows); user tokens
    /// get 403.
    pub service_only: Option<(&'static str, &'static str)>,
    /// The request body is raw bytes of this media type (an archive), not JSON.
    pub raw_body: Option<&'static str>,
    /// Answers 200 with Server-Sent Events (`text/event-stream`).
    pub event_stream: bool,
}

impl Operation {
    pub const fn new(route: &'static str) -> Self {
        Self {
            route,
            statuses: &[],
            request_headers: &[],
            response_headers: &[],
            oauth_errors: false,
            client_credentials: false,
            download: false,
            service_only: None,
            raw_body: None,
            event_stream: false,
        }
    }

    pub const fn event_stream(mut self) -> Self {
        self.event_stream = true;
        self
    }

    pub const fn raw_body(mut self, media_type: &'static str) -> Self {
        self.raw_body = Some(media_type);
        self
    }

    pub const fn service_only(mut self, scope: &'static str, what: &'static str) -> Self {
        self.service_only = Some((scope, what));
        self
    }

    pub const fn download(mut self) -> Self {
        self.download = true;
        self
    }

    pub const fn statuses(mut self, statuses: &'static [u16]) -> Self {
        self.statuses = statuses;
        self
    }

    pub const fn request_headers(mut self, headers: &'static [Header]) -> Self {
        self.request_headers = headers;
        self
    }

    pub const fn response_headers(mut self, headers: &'static [(u16, &'static [Header])]) -> Self {
        self.response_headers = headers;
        self
    }

    pub const fn oauth_errors(mut self) -> Self {
        self.oauth_errors = true;
        self
    }

    pub const fn client_credentials(mut self) -> Self {
        self.client_credentials = true;
        self
    }
}

/// What a service's document says beyond its handlers' signatures.
#[derive(Debug, Clone, Copy)]
pub struct Contract {
    /// Operations anyone may call (`METHOD /path` under the prefix); every other one
    /// needs a bearer token. Health and readiness are always public.
    pub public: &'static [&'static str],
    /// Scopes a service client's token may carry here; empty when this service takes
    /// user tokens only.
    pub service_scopes: &'static [(&'static str, &'static str)],
    pub operations: &'static [Operation],
}

/// Where service clients get their tokens.
const TOKEN_URL: &str = "/api/v1/auth/token";

/// The description of a status code in the document.
fn status_description(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted: the work continues in the background",
        204 => "Done; no body",
        302 => "Redirect (see `Location`)",
        304 => "Not modified since the ETag in `If-None-Match`; no body",
        400 => "Malformed request (problem+json)",
        401 => "Missing or invalid bearer token (problem+json)",
        403 => "The token's role or scope does not allow this (problem+json)",
        404 => "Not found, or not the caller's (problem+json)",
        409 => "Conflict with the current state, or the same Idempotency-Key still running (problem+json)",
        412 => "`If-Match` names another version (problem+json)",
        413 => "Request body too large (problem+json)",
        415 => "Unsupported content type or format (problem+json)",
        422 => "Invalid input; `errors` names the fields (problem+json)",
        429 => "Too many requests; see `Retry-After` (problem+json)",
        500 => "Internal error; the detail never shows the cause (problem+json)",
        502 => "An upstream (a fetched site, another service) failed (problem+json)",
        503 => "Not ready, draining, or the database is unavailable; retry (problem+json)",
        _ => "See the problem's code",
    }
}

/// A typical problem code for a status, for examples.
fn example_code(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "invalid_token",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        412 => "precondition_failed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        429 => "rate_limited",
        502 => "upstream_failed",
        503 => "database_unavailable",
        _ => "internal_error",
    }
}

/// Applies every rule to the document paperclip made for the service under `prefix`:
/// - security: bearer JWTs (and client-credentials tokens where `service_scopes` says
///   so) on every operation not listed public, `security: []` on the public ones;
/// - statuses: 401 and 403 where a token is needed, 404 where the path names something,
///   400/413/415/422 where a body is read, 400/422 for query parameters, and 429, 500,
///   503 everywhere; plus the operation's own;
/// - every error is `application/problem+json` with the `Problem` schema;
/// - headers: `X-Request-ID` on every request and answer, the operation's own;
/// - an example for every request body and every answer with a body.
pub fn finish(spec: &mut Value, prefix: &str, contract: &Contract) {
    set_security_schemes(spec, contract);
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, operations) in paths.iter_mut() {
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        let relative = path
            .strip_prefix(prefix)
            .map(|p| if p.is_empty() { "/" } else { p });
        for (method, operation) in operations.iter_mut() {
            let route = relative.map(|p| format!("{} {p}", method.to_ascii_uppercase()));
            let own = route
                .as_deref()
                .and_then(|r| contract.operations.iter().find(|o| o.route == r));
            let health = matches!(relative, Some("/health" | "/ready")) || relative.is_none();
            let public = health
                || route
                    .as_deref()
                    .is_some_and(|r| contract.public.contains(&r));
            finish_operation(operation, contract, own, public, health);
        }
    }
    mark_response_optionals_nullable(spec);
    add_examples(spec);
}

fn set_security_schemes(spec: &mut Value, contract: &Contract) {
    let mut schemes = json!({
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from the auth service (`POST /api/v1/auth/login`, \
                `/register`, `/refresh`, or `/token` for service clients): \
                `Authorization: Bearer <token>`."
        }
    });
    let scopes: Map<String, Value> = contract
        .service_scopes
        .iter()
        .chain(
            contract
                .operations
                .iter()
                .filter_map(|o| o.service_only.as_ref()),
        )
        .map(|(name, what)| ((*name).to_owned(), Value::from(*what)))
        .collect();
    if !scopes.is_empty() {
        schemes["serviceClient"] = json!({
            "type": "oauth2",
            "description": "Other modules: a service client's token from the client-credentials grant.",
            "flows": {"clientCredentials": {"tokenUrl": TOKEN_URL, "scopes": scopes}}
        });
    }
    if contract.operations.iter().any(|o| o.client_credentials) {
        schemes["clientCredentials"] = json!({
            "type": "http",
            "scheme": "basic",
            "description": "A service client's id and secret (RFC 6749 §2.3.1): HTTP Basic, \
                or `client_id` and `client_secret` in the form body instead."
        });
    }
    spec["components"]["securitySchemes"] = schemes;
}

fn finish_operation(
    operation: &mut Value,
    contract: &Contract,
    own: Option<&Operation>,
    public: bool,
    health: bool,
) {
    let secured = !public;
    operation["security"] = if own.is_some_and(|o| o.client_credentials) {
        // Basic, or the credentials in the form (no scheme describes that: optional).
        json!([{"clientCredentials": []}, {}])
    } else if let Some((scope, _)) = own.and_then(|o| o.service_only) {
        json!([{"serviceClient": [scope]}])
    } else if secured {
        let mut alternatives = vec![json!({"bearerAuth": []})];
        if !contract.service_scopes.is_empty() {
            alternatives.push(json!({"serviceClient": []}));
        }
        Value::Array(alternatives)
    } else {
        json!([])
    };

    // Request headers.
    let mut parameters = operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let has_path_parameter = parameters.iter().any(|p| p["in"] == "path");
    let has_query = parameters.iter().any(|p| p["in"] == "query");
    parameters.push(json!({
        "in": "header",
        "name": "X-Request-ID",
        "required": false,
        "description": "Kept when it is 1..128 of `A-Za-z0-9-_.:`, else replaced; echoed in the answer, the logs and every error.",
        "schema": {"type": "string", "maxLength": 128}
    }));
    parameters.push(json!({
        "in": "header",
        "name": "traceparent",
        "required": false,
        "description": "W3C Trace Context: the trace this request belongs to (a new one is started without it); logged as `trace_id` and sent on to every service this request calls.",
        "schema": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
        "example": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    }));
    for header in own.map(|o| o.request_headers).unwrap_or_default() {
        parameters.push(json!({
            "in": "header",
            "name": header.name(),
            "required": false,
            "description": header.description(),
            "schema": header.schema(),
            "example": header.example(),
        }));
    }
    operation["parameters"] = Value::Array(parameters);

    if let Some(media_type) = own.and_then(|o| o.raw_body) {
        if let Some(body) = operation.get_mut("requestBody") {
            body["content"] =
                json!({media_type: {"schema": {"type": "string", "format": "binary"}}});
        }
    }

    // Statuses.
    let has_body = operation.get("requestBody").is_some();
    let mut statuses: Vec<u16> = own.map(|o| o.statuses.to_vec()).unwrap_or_default();
    if !health {
        statuses.extend([429, 500, 503]);
    }
    if secured {
        statuses.extend([401, 403]);
    }
    if has_path_parameter {
        statuses.push(404);
    }
    if has_body {
        statuses.extend([400, 413, 415, 422]);
    }
    if has_query {
        statuses.extend([400, 422]);
    }
    if own.is_some_and(|o| o.download) {
        operation["responses"]["200"] = json!({
            "description": "The file, as an attachment; its type is what its bytes are",
            "content": {"*/*": {
                "schema": {"type": "string", "format": "binary"},
                "example": "(the file's bytes)"
            }}
        });
    }
    if own.is_some_and(|o| o.event_stream) {
        operation["responses"]["200"] = json!({
            "description": "Server-Sent Events: `id:` (a cursor), `event:`, `data:` (JSON), and comment lines that keep the connection open",
            "content": {"text/event-stream": {
                "schema": {"type": "string"},
                "example": "id: 42\nevent: change\ndata: {\"cursor\":\"42\"}\n\n"
            }}
        });
    }
    let mut responses = operation["responses"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let success_content = responses
        .iter()
        .filter(|(status, _)| status.starts_with('2'))
        .find_map(|(_, r)| r.get("content").cloned());
    for status in statuses {
        let key = status.to_string();
        if responses.contains_key(&key) {
            continue;
        }
        let mut response = json!({"description": status_description(status)});
        if (200..300).contains(&status) && status != 204 {
            if let Some(content) = &success_content {
                response["content"] = content.clone();
            }
        }
        responses.insert(key, response);
    }
    for (status, response) in responses.iter_mut() {
        let code: u16 = status.parse().unwrap_or(500);
        // Readiness answers 503 with its own JSON body naming the failing check.
        let own_body = health && response.get("content").is_some();
        if code >= 400 && !own_body {
            let mut content = Map::new();
            content.insert(
                PROBLEM_JSON.to_owned(),
                json!({"schema": {"$ref": "#/components/schemas/Problem"}}),
            );
            if own.is_some_and(|o| o.oauth_errors) {
                content.insert("application/json".to_owned(), json!({
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "description": "OAuth's shape: the problem plus `error` and `error_description`."
                }));
            }
            response["content"] = Value::Object(content);
            response["description"] = Value::from(status_description(code));
        }
        let mut headers = Map::new();
        headers.insert(
            "X-Request-ID".to_owned(),
            json!({"description": "The request's id.", "schema": {"type": "string"}}),
        );
        let mut named: Vec<Header> = own
            .map(|o| o.response_headers)
            .unwrap_or_default()
            .iter()
            .filter(|(s, _)| *s == code)
            .flat_map(|(_, h)| h.iter().copied())
            .collect();
        if health {
            named.push(Header::CacheControl);
        }
        match code {
            401 => named.push(Header::WwwAuthenticate),
            429 | 503 => named.push(Header::RetryAfter),
            _ => {}
        }
        for header in named {
            headers.insert(
                header.name().to_owned(),
                json!({
                    "description": header.description(),
                    "schema": header.schema(),
                    "example": header.example(),
                }),
            );
        }
        response["headers"] = Value::Object(headers);
    }
    operation["responses"] = Value::Object(responses);
}

/// Puts an example on every request body and every answer with a body that has none:
/// a problem fitting the status for errors, and otherwise a value built from the
/// schema, with realistic values chosen by each property's name.
fn add_examples(spec: &mut Value) {
    let components = spec["components"]["schemas"].clone();
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|ops| ops.values_mut())
    {
        if let Some(content) = operation
            .pointer_mut("/requestBody/content")
            .and_then(Value::as_object_mut)
        {
            for media in content.values_mut() {
                if media.get("example").is_none() {
                    let example = example_of(&media["schema"], "", &components, 0);
                    media["example"] = example;
                }
            }
        }
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let code: u16 = status.parse().unwrap_or(500);
            let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
                continue;
            };
            for (media_type, media) in content.iter_mut() {
                if media.get("example").is_some() {
                    continue;
                }
                media["example"] = if code >= 400 {
                    problem_example(code, media_type != PROBLEM_JSON)
                } else {
                    example_of(&media["schema"], "", &components, 0)
                };
            }
        }
    }
}

fn problem_example(status: u16, oauth: bool) -> Value {
    let code = if oauth {
        "invalid_client"
    } else {
        example_code(status)
    };
    let mut problem = json!({
        "type": problem_type(code),
        "title": actix_web::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error"),
        "status": status,
        "code": code,
        "detail": match status {
            404 => "no such item",
            422 => "title: must not be empty",
            _ => status_description(status),
        },
        "request_id": "0193a5b27c4e7d3a9f1e2b3c4d5e6f70",
    });
    if status == 422 {
        problem["errors"] = json!([{"field": "title", "message": "must not be empty"}]);
    }
    if oauth {
        problem["error"] = json!(code);
        problem["error_description"] = json!("unknown client or wrong secret");
    }
    problem
}

/// An example value for `schema`, the value of a property called `name`.
fn example_of(schema: &Value, name: &str, components: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(target) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        return example_of(&components[target], name, components, depth + 1);
    }
    if let Some(first) = schema["allOf"].get(0).or_else(|| schema["oneOf"].get(0)) {
        return example_of(first, name, components, depth + 1);
    }
    if let Some(first) = schema["enum"].get(0) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("object") | None if schema.get("properties").is_some() => {
            let mut object = Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (property, inner) in properties {
                    object.insert(
                        property.clone(),
                        example_of(inner, property, components, depth + 1),
                    );
                }
            }
            Value::Object(object)
        }
        Some("object") => json!({"lang": "en"}),
        Some("array") => {
            let singular = name.strip_suffix('s').unwrap_or(name);
            json!([example_of(
                &schema["items"],
                singular,
                components,
                depth + 1
            )])
        }
        Some("integer") => json!(match name {
            "status" => 200,
            "expires_in" => 900,
            "limit" | "k" => 10,
            "depth" => 2,
            "index" | "chunk" | "start" | "attempts" => 0,
            "end" => 480,
            "size" | "bytes" => 18_342,
            "progress" => 100,
            _ => 1,
        }),
        Some("number") => json!(match name {
            "score" => 0.82,
            "weight" => 1.0,
            _ => 0.5,
        }),
        Some("boolean") => json!(false),
        _ => string_example(schema, name),
    }
}

fn string_example(schema: &Value, name: &str) -> Value {
    if schema["format"] == "date-time" || name.ends_with("_at") {
        return json!("2026-12-07T11:25:34.123Z");
    }
    let value = match name {
        "id" | "sub" | "user_id" | "owner_id" | "target_id" | "source_id" | "content_id"
        | "link_id" | "job_id" | "feed_id" | "item" | "family_id" | "sid" => {
            "0193a5b2-7c4e-7d3a-9f1e-2b3c4d5e6f70"
        }
        "email" => "ada@example.com",
        "password" | "current_password" | "new_password" => "correct horse battery staple",
        "display_name" => "Ada",
        "access_token" | "subject_token" => {
            "eyJhbGciOiJSUzI1NiIsImtpZCI6IjIwMjYtMTIifQ.eyJzdWIiOiIuLi4ifQ.c2ln"
        }
        "refresh_token" => "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u",
        "token_type" => "Bearer",
        "code" => "mK2pQ7xYb1",
        "title" => "Notes on knowledge graphs",
        "body" | "text" | "excerpt" => "Creators bring their material in and find it again.",
        "snippet" => "…bring their material in and find it <mark>again</mark>…",
        "type" => "upload",
        "kind" => "note",
        "tag" | "tags" => "research",
        "relation" => "cites",
        "direction" => "out",
        "model" => "all-MiniLM-L6-v2",
        "url" | "redirect_uri" | "source_url" => "https://example.com/posts/knowledge-graphs",
        "filename" => "notes.pdf",
        "mime" | "media_type" | "content_type" => "application/pdf",
        "sha256" => "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "scope" => "content:write",
        "name" => "publishing-module",
        "client_secret" | "secret" => "pm_s3cr3t_shown_once",
        "client_id" => "0193a5b2-7c4e-7d3a-9f1e-2b3c4d5e6f70",
        "status" => "succeeded",
        "provider" | "identity" | "identitie" => "google",
        "role" | "roles" | "role_" => "admin",
        "cursor" | "next_cursor" => "eyJ0IjoiMjAyNi0xMi0wNyJ9",
        "error" | "last_error" => "the site answered 503",
        _ => "string",
    };
    json!(value)
}

/// Marks every optional property of a schema that appears in a response as
/// `nullable`: our handlers serialize an absent `Option` as `null` (`next_cursor`, a
/// feed's `last_error`…), which paperclip's OpenAPI 3.0 output would otherwise forbid,
/// and a generated client must be ready for it. Request schemas are left alone: null
/// is not something we invite clients to send.
pub fn mark_response_optionals_nullable(spec: &mut Value) {
    let mut roots = Vec::new();
    if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
        for operation in paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|ops| ops.values())
        {
            let Some(responses) = operation.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for media in responses
                .values()
                .filter_map(|r| r.get("content").and_then(Value::as_object))
                .flat_map(|c| c.values())
            {
                if let Some(schema) = media.get("schema") {
                    roots.push(schema.clone());
                }
            }
        }
    }
    // The named schemas reached from any response, directly or through others.
    let mut named = HashSet::new();
    let mut pending = roots;
    while let Some(schema) = pending.pop() {
        for name in references(&schema) {
            if named.insert(name.clone()) {
                if let Some(target) = spec.pointer(&format!("/components/schemas/{name}")) {
                    pending.push(target.clone());
                }
            }
        }
    }
    // Inline response schemas.
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for media in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|ops| ops.values_mut())
            .filter_map(|op| op.get_mut("responses").and_then(Value::as_object_mut))
            .flat_map(|responses| responses.values_mut())
            .filter_map(|r| r.get_mut("content").and_then(Value::as_object_mut))
            .flat_map(|content| content.values_mut())
        {
            if let Some(schema) = media.get_mut("schema") {
                nullable_optionals(schema);
            }
        }
    }
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if named.contains(name) {
                nullable_optionals(schema);
            }
        }
    }
}

/// The component names a schema refers to (`#/components/schemas/<name>`).
fn references(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![schema];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    found.push(name.to_owned());
                }
                pending.extend(map.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    found
}

/// Within one schema (nested objects and arrays included), every property that is not
/// `required` may be null.
fn nullable_optionals(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let required: HashSet<String> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(properties) = map.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            if !required.contains(name) {
                make_nullable(property);
            }
            nullable_optionals(property);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = map.get_mut(key) {
            nullable_optionals(inner);
        }
    }
}

fn make_nullable(property: &mut Value) {
    let Some(map) = property.as_object_mut() else {
        return;
    };
    if map.contains_key("$ref") {
        // OpenAPI 3.0 ignores siblings of `$ref`: wrap it.
        let reference = std::mem::take(map);
        *map = Map::from_iter([
            ("allOf".to_owned(), json!([Value::Object(reference)])),
            ("nullable".to_owned(), Value::Bool(true)),
        ]);
    } else {
        map.insert("nullable".to_owned(), Value::Bool(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_response_fields_become_nullable_and_requests_stay() {
        let mut spec = json!({
            "paths": {"/x": {"post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/In"}}}},
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}}}
            }}},
            "components": {"schemas": {
                "In": {"type": "object", "properties": {"title": {"type": "string"}}},
                "Page": {"type": "object", "required": ["items"], "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                    "next_cursor": {"type": "string"}
                }},
                "Item": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string"},
                    "source": {"$ref": "#/components/schemas/Source"},
                    "nested": {"type": "object", "properties": {"deep": {"type": "integer"}}}
                }},
                "Source": {"type": "object", "properties": {"url": {"type": "string"}}}
            }}
        });
        mark_response_optionals_nullable(&mut spec);
        let schemas = &spec["components"]["schemas"];
        assert_eq!(
            schemas["Page"]["properties"]["next_cursor"]["nullable"],
            true
        );
        assert!(schemas["Page"]["properties"]["items"]
            .get("nullable")
            .is_none());
        assert!(schemas["Item"]["properties"]["id"]
            .get("nullable")
            .is_none());
        assert_eq!(
            schemas["Item"]["properties"]["source"],
            json!({"allOf": [{"$ref": "#/components/schemas/Source"}], "nullable": true})
        );
        assert_eq!(
            schemas["Item"]["properties"]["nested"]["properties"]["deep"]["nullable"],
            true
        );
        assert_eq!(schemas["Source"]["properties"]["url"]["nullable"], true);
        assert!(schemas["In"]["properties"]["title"]
            .get("nullable")
            .is_none());
    }
}
