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
/// log (see `middleware`) and never serialised.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    headers: Vec<(HeaderName, HeaderValue)>,
    internal: Option<String>,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
            internal: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
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
        err.errors = errors;
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
        err.internal = Some(cause.to_string());
        err
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The cause to log, if this error hides one.
    pub fn internal_cause(&self) -> Option<&str> {
        self.internal.as_deref()
    }

    pub fn to_problem(&self, request_id: Option<&str>) -> Problem {
        Problem {
            type_uri: problem_type(self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: self.detail.clone(),
            request_id: request_id.map(str::to_owned),
            errors: self.errors.clone(),
        }
    }

    /// The full response, with the request id when known.
    pub fn response_with_request_id(&self, request_id: Option<&str>) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        for (name, value) in &self.headers {
            builder.insert_header((name.clone(), value.clone()));
        }
        let body = serde_json::to_vec(&self.to_problem(request_id)).unwrap_or_default();
        builder.body(body)
    }
}

pub fn problem_type(code: &str) -> String {
    format!("https://peermesh.dev/problems/{code}")
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status.as_u16())
            .field("code", &self.code)
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.internal {
            Some(cause) => write!(f, "{}: {cause}", self.code),
            None => write!(f, "{}: {}", self.code, self.detail),
        }
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
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
        assert_eq!(problem.errors.len(), 1);
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
