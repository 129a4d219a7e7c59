//! Per-request plumbing: request ids, the per-request logger, one access-log line per
//! request, and turning every error response into problem+json carrying the request id.

use std::time::Instant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use slog::Logger;

use crate::error::ApiError;
use crate::metrics::Metrics;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who made the request, once authenticated; read by the access log.
#[derive(Debug, Clone)]
pub struct AccessSubject(pub String);

/// The request's logger (service + request_id), in the request's extensions.
#[derive(Clone)]
pub struct RequestLogger(pub Logger);

/// One answer as the API contract sees it: the route that took the request (its
/// pattern, e.g. `/api/v1/content/{id}`), the status and the response headers.
pub struct Observed<'a> {
    pub method: &'a str,
    pub pattern: &'a str,
    pub status: u16,
    pub headers: &'a header::HeaderMap,
}

static RESPONSE_TAP: std::sync::OnceLock<fn(&Observed)> = std::sync::OnceLock::new();

/// Hands every routed answer of this process to `tap` (the test suites use it to hold
/// the OpenAPI documents to what the services really send). Only the first call counts;
/// without one the cost is a single load per request.
pub fn tap_responses(tap: fn(&Observed)) {
    let _ = RESPONSE_TAP.set(tap);
}

/// An incoming id is kept when it is 1..=128 visible, unambiguous characters.
pub fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The middleware body; install with `actix_web::middleware::from_fn` through
/// [`crate::server`], which captures the service's root logger.
pub async fn request_context(
    logger: Logger,
    metrics: Metrics,
    spans: Option<crate::trace::SpanExport>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let trace = crate::trace::TraceContext::continue_from(
        req.headers()
            .get(crate::trace::TRACEPARENT)
            .and_then(|v| v.to_str().ok()),
    );
    let req_logger = logger.new(slog::o!(
        "request_id" => request_id.clone(),
        "trace_id" => trace.trace_id.clone(),
        "span_id" => trace.span_id.clone(),
    ));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut()
        .insert(RequestLogger(req_logger.clone()));
    let span_start = spans
        .as_ref()
        .map(|_| (trace.clone(), std::time::SystemTime::now()));
    // Handlers' errors arrive inside the response; an `Err` here can only come from
    // an inner middleware, and actix renders it. (No clone of the request may be held
    // across the call: routing needs it unshared.)
    let serve = crate::trace::scope(trace, next.call(req));
    let mut res = match crate::logging::scope(req_logger.clone(), serve).await {
        Ok(res) => problem_response(res, &request_id, &req_logger),
        Err(err) => {
            slog::error!(req_logger, "request failed in middleware"; "error" => err.to_string());
            return Err(err);
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    // An answer without a body has no type (paperclip's `NoContent` sets one).
    if matches!(
        res.status(),
        StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
    ) {
        res.headers_mut().remove(header::CONTENT_TYPE);
    }

    let status = res.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let latency_ms = elapsed * 1000.0;
    let request = res.request();
    let pattern = request.match_pattern();
    metrics.observe(request.method(), pattern.as_deref(), status, elapsed);
    if let (Some(spans), Some((context, started))) = (&spans, &span_start) {
        spans.served(&crate::trace::ServedSpan {
            context,
            method: request.method().as_str(),
            route: pattern.as_deref().unwrap_or("unmatched"),
            status,
            started: *started,
        });
    }
    if let (Some(tap), Some(pattern)) = (RESPONSE_TAP.get(), pattern.as_deref()) {
        tap(&Observed {
            method: request.method().as_str(),
            pattern,
            status,
            headers: res.headers(),
        });
    }
    // The line's values are made only when it will be written.
    if !slog::Drain::is_info_enabled(&req_logger) {
        return Ok(res);
    }
    let subject = request
        .extensions()
        .get::<AccessSubject>()
        .map(|s| s.0.clone());
    slog::info!(req_logger, "request";
        "method" => request.method().as_str(),
        "path" => request.path(),
        "status" => status,
        "latency_ms" => (latency_ms * 1000.0).round() / 1000.0,
        "user_id" => subject,
        "remote_addr" => request.peer_addr().map(|a| a.ip().to_string()),
    );
    Ok(res)
}

/// Errors produced by handlers or by actix itself (bad path, wrong method, …) are
/// re-rendered as problem+json with the request id; everything else passes through.
fn problem_response<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    request_id: &str,
    logger: &Logger,
) -> ServiceResponse<EitherBody<B, BoxBody>> {
    let status = res.status();
    if let Some(err) = res.response().error() {
        let resp = render_error(err, request_id, logger);
        return res.into_response(resp).map_into_right_body();
    }
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if (status.is_client_error() || status.is_server_error()) && plain {
        let resp = status_problem(status).response_with_request_id(Some(request_id));
        return res.into_response(resp).map_into_right_body();
    }
    res.map_into_left_body()
}

fn render_error(
    err: &actix_web::Error,
    request_id: &str,
    logger: &Logger,
) -> actix_web::HttpResponse {
    if let Some(api) = err.as_error::<ApiError>() {
        if let Some(cause) = api.internal_cause() {
            slog::error!(logger, "internal error"; "error" => cause);
        }
        return api.response_with_request_id(Some(request_id));
    }
    let status = err.as_response_error().status_code();
    let api = if status.is_server_error() {
        slog::error!(logger, "internal error"; "error" => err.to_string());
        ApiError::internal(err)
    } else {
        // actix's own client errors (bad path segment, bad query, …) describe the input.
        let mut api = status_problem(status);
        api = ApiError::new(status, api.code(), err.to_string());
        api
    };
    api.response_with_request_id(Some(request_id))
}

/// The problem for a bare status code.
pub fn status_problem(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::method_not_allowed(),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large("request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::unsupported_media_type("unsupported content type")
        }
        StatusCode::UNAUTHORIZED => ApiError::unauthorized("authentication required"),
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal("unspecified"),
        s if s.is_server_error() => {
            ApiError::new(s, "unavailable", "the service cannot answer now")
        }
        s => ApiError::new(
            s,
            "bad_request",
            s.canonical_reason().unwrap_or("bad request"),
        ),
    }
}

/// The request's id as the middleware kept or made it (checked), for storing and
/// forwarding — never the raw `X-Request-ID` header, which may be anything.
pub fn request_id_of(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|id| id.0.clone())
}

/// Extractor for the request id (always present behind the middleware).
impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let id = req
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(new_request_id()));
        std::future::ready(Ok(id))
    }
}

impl paperclip::v2::schema::Apiv2Schema for RequestId {}
impl paperclip::actix::OperationModifier for RequestId {}

/// Extractor for the per-request logger.
impl FromRequest for RequestLogger {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let logger = req
            .extensions()
            .get::<RequestLogger>()
            .cloned()
            .unwrap_or_else(|| RequestLogger(crate::logging::discard()));
        std::future::ready(Ok(logger))
    }
}

impl paperclip::v2::schema::Apiv2Schema for RequestLogger {}
impl paperclip::actix::OperationModifier for RequestLogger {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sanitised() {
        assert!(is_valid_request_id("0f2c9a51b2d34e6f8a1b2c3d4e5f6a7b"));
        assert!(is_valid_request_id("abc-DEF_1.2:3"));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("has space"));
        assert!(!is_valid_request_id("new\nline"));
        assert!(!is_valid_request_id(&"a".repeat(129)));
        assert_eq!(new_request_id().len(), 32);
    }
}
