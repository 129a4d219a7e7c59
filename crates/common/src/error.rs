//! The one error type that reaches clients: RFC 9457 `application/problem+json`.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use paperclip::actix::{Apiv2Schema, OperationModifier};
use paperclip::v2::models::{DefaultOperationRaw, DefaultSchemaRaw, Either, Response};
use paperclip::v2::schema::{Apiv2Errors, Apiv2Schema as _};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request, listed under `errors` of a 400/422 problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, Apiv2Schema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An HTTP error with a stable snake_case `code`. Internal causes are kept for the
/// log (see `middleware`) and never serialised. Boxed: errors travel through every
/// `Result` of the request path, so the happy path stays small.
pub struct ApiError(Box<ApiErrorParts>);

struct ApiErrorParts {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    headers: Vec<(HeaderName, HeaderValue)>,
    internal: Option<String>,
    /// Extension members (RFC 9457 §3.2), e.g. OAuth's `error`.
    extensions: serde_json::Map<String, serde_json::Value>,
    content_type: &'static str,
}

/// The serialised problem document.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Apiv2Schema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The invalid fields of a 400/422, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(ApiErrorParts {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
            internal: None,
            extensions: serde_json::Map::new(),
            content_type: PROBLEM_JSON,
        }))
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 422 naming the one field that is wrong.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .with_header(header::WWW_AUTHENTICATE, "Bearer")
    }

    /// A bearer token was presented but rejected (RFC 6750 `invalid_token`).
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", detail)
            .with_header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this resource",
        )
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            detail,
        )
    }

    /// 422 naming every invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        );
        err.0.errors = errors;
        err
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        )
        .with_header(header::RETRY_AFTER, &retry_after_secs.to_string())
    }

    pub fn service_unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// A 500 whose cause is logged (with the request id) but never sent.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; quote the request id when reporting it",
        );
        err.0.internal = Some(cause.to_string());
        err
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.0.headers.push((name, value));
        }
        self
    }

    /// Adds an extension member to the body.
    pub fn with_extension(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.0.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// Answers with another JSON media type (OAuth 2.0 clients expect `application/json`).
    pub fn with_content_type(mut self, content_type: &'static str) -> Self {
        self.0.content_type = content_type;
        self
    }

    /// Replaces the stable code (keeps status, detail and headers).
    /// Names where the fields are: each field `f` becomes `<prefix>: f`.
    pub fn with_field_prefix(mut self, prefix: &str) -> Self {
        for error in &mut self.0.errors {
            error.field = format!("{prefix}: {}", error.field);
        }
        self
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.0.code = code;
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors = errors;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> &'static str {
        self.0.code
    }

    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    /// The cause to log, if this error hides one.
    pub fn internal_cause(&self) -> Option<&str> {
        self.0.internal.as_deref()
    }

    pub fn to_problem(&self, request_id: Option<&str>) -> Problem {
        Problem {
            type_uri: problem_type(self.0.code),
            title: self
                .0
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_owned(),
            status: self.0.status.as_u16(),
            code: self.0.code.to_owned(),
            detail: self.0.detail.clone(),
            request_id: request_id.map(str::to_owned),
            errors: (!self.0.errors.is_empty()).then(|| self.0.errors.clone()),
        }
    }

    /// The full response, with the request id when known.
    pub fn response_with_request_id(&self, request_id: Option<&str>) -> HttpResponse {
        let mut builder = HttpResponse::build(self.0.status);
        builder.insert_header((header::CONTENT_TYPE, self.0.content_type));
        for (name, value) in &self.0.headers {
            builder.insert_header((name.clone(), value.clone()));
        }
        let mut problem = serde_json::to_value(self.to_problem(request_id)).unwrap_or_default();
        if let Some(map) = problem.as_object_mut() {
            for (key, value) in &self.0.extensions {
                map.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        builder.body(body)
    }
}

pub fn problem_type(code: &str) -> String {
    format!("https://peermesh.dev/problems/{code}")
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.0.status.as_u16())
            .field("code", &self.0.code)
            .field("detail", &self.0.detail)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.internal {
            Some(cause) => write!(f, "{}: {cause}", self.0.code),
            None => write!(f, "{}: {}", self.0.code, self.0.detail),
        }
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    /// Without the request id; the request middleware re-renders it with the id.
    fn error_response(&self) -> HttpResponse {
        self.response_with_request_id(None)
    }
}

/// Documents the problem responses every operation can give.
impl Apiv2Errors for ApiError {
    fn update_error_definitions(op: &mut DefaultOperationRaw) {
        for (status, description) in [
            ("400", "Malformed request (problem+json)"),
            ("401", "Missing or invalid bearer token (problem+json)"),
            ("404", "Not found (problem+json)"),
            ("422", "Invalid input (problem+json)"),
            ("500", "Internal error (problem+json)"),
        ] {
            op.responses.entry(status.into()).or_insert_with(|| {
                let mut schema = Problem::schema_with_ref();
                schema.retain_ref();
                Either::Right(Response {
                    description: Some(description.into()),
                    schema: Some(schema),
                    ..Default::default()
                })
            });
        }
    }

    fn update_definitions(map: &mut BTreeMap<String, DefaultSchemaRaw>) {
        <Problem as OperationModifier>::update_definitions(map);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_never_show_their_cause() {
        let err = ApiError::internal("db password=hunter2 rejected");
        let problem = err.to_problem(Some("rid-1"));
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
        assert_eq!(err.internal_cause(), Some("db password=hunter2 rejected"));
        assert_eq!(problem.request_id.as_deref(), Some("rid-1"));
    }

    #[test]
    fn validation_lists_fields() {
        let err = ApiError::validation(vec![FieldError::new("email", "is not an email")]);
        let problem = err.to_problem(None);
        assert_eq!(problem.status, 422);
        assert_eq!(problem.detail, "email: is not an email");
        assert_eq!(problem.errors.map(|e| e.len()), Some(1));
    }

    #[test]
    fn unauthorized_carries_www_authenticate() {
        let resp = ApiError::unauthorized("no token").response_with_request_id(None);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()
                .get(header::WWW_AUTHENTICATE)
                .map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        assert_eq!(
            resp.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(PROBLEM_JSON.as_bytes())
        );
    }
}
