//! Extractor configuration so malformed input becomes problem+json, not actix's plain text.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::web;
use actix_web::HttpRequest;

use crate::error::{ApiError, FieldError};

/// JSON bodies: 413 over `limit`, 415 for a non-JSON content type, 400 for broken JSON,
/// 422 for well-formed JSON of the wrong shape (unknown field, wrong type, missing field).
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(err).into())
}

pub fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::payload_too_large(
            format!("body of {length} bytes exceeds the limit of {limit} bytes"),
        ),
        JsonPayloadError::Overflow { limit } => {
            ApiError::payload_too_large(format!("body exceeds the limit of {limit} bytes"))
        }
        JsonPayloadError::ContentType => {
            ApiError::unsupported_media_type("expected Content-Type: application/json")
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            let (field, message) = split_serde_message(&e.to_string());
            ApiError::validation(vec![FieldError::new(field, message)])
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
        }
        JsonPayloadError::Payload(e) => {
            ApiError::bad_request("bad_body", format!("could not read the body: {e}"))
        }
        other => ApiError::bad_request("bad_body", other.to_string()),
    }
}

/// serde messages look like "unknown field `colour`, expected one of ..." or
/// "missing field `email` at line 1 column 2": pull out the field name when there is one.
fn split_serde_message(msg: &str) -> (String, String) {
    let msg = msg.split(" at line ").next().unwrap_or(msg).to_owned();
    let field = msg
        .split('`')
        .nth(1)
        .filter(|_| msg.starts_with("unknown field") || msg.starts_with("missing field"))
        .unwrap_or("body")
        .to_owned();
    (field, msg)
}

/// A stored time as the API shows it: RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req: &HttpRequest| {
        ApiError::bad_request("bad_query", format!("invalid query string: {err}")).into()
    })
}

pub fn path_config() -> web::PathConfig {
    // A path segment that cannot parse names nothing that exists: not found.
    web::PathConfig::default().error_handler(|_: PathError, _: &HttpRequest| {
        ApiError::not_found("no such resource").into()
    })
}

/// Registers the extractor configs on an app (or scope).
pub fn configure_extractors(cfg: &mut web::ServiceConfig, json_limit: usize) {
    cfg.app_data(json_config(json_limit))
        .app_data(query_config())
        .app_data(path_config());
}

/// Documents an operation's answer as `status` with `T`'s JSON schema — for custom
/// responders (a status other than 200, extra headers) whose `OperationModifier`
/// would otherwise leave the answer undocumented.
pub fn document_response<T: paperclip::v2::schema::Apiv2Schema>(
    op: &mut paperclip::v2::models::DefaultOperationRaw,
    status: u16,
) {
    let reason = actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(str::to_owned);
    let mut schema = T::schema_with_ref();
    schema.retain_ref();
    op.responses.insert(
        status.to_string(),
        paperclip::v2::models::Either::Right(paperclip::v2::models::Response {
            description: reason,
            schema: Some(schema),
            ..Default::default()
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_the_field() {
        let (f, m) =
            split_serde_message("unknown field `colour`, expected `name` at line 1 column 10");
        assert_eq!(f, "colour");
        assert_eq!(m, "unknown field `colour`, expected `name`");
        let (f, _) =
            split_serde_message("invalid type: integer `3`, expected a string at line 1 column 2");
        assert_eq!(f, "body");
    }
}

thread_local! {
    /// The size of the last JSON answer this thread wrote (bounded): the next one's
    /// buffer starts there instead of at 128 bytes doubled a few times over.
    static LAST_JSON_SIZE: std::cell::Cell<usize> = const { std::cell::Cell::new(1024) };
}

/// Finishes `builder` with `value` as a JSON body, written by sonic-rs into a buffer
/// sized like the thread's previous answer (a 2 KB item was five reallocations of a
/// growing one).
pub fn json_response<T: serde::Serialize>(
    builder: &mut actix_web::HttpResponseBuilder,
    value: &T,
) -> actix_web::HttpResponse {
    let mut buf = Vec::with_capacity(LAST_JSON_SIZE.get());
    match sonic_rs::to_writer(&mut buf, value) {
        Ok(()) => {
            LAST_JSON_SIZE.set((buf.len() + 64).clamp(256, 64 * 1024));
            builder
                .insert_header((
                    actix_web::http::header::CONTENT_TYPE,
                    actix_web::http::header::HeaderValue::from_static("application/json"),
                ))
                .body(buf)
        }
        Err(e) => actix_web::ResponseError::error_response(&ApiError::internal(e)),
    }
}

#[cfg(test)]
mod json_tests {
    use actix_web::body::MessageBody;

    /// The answers carry what serde_json would write, byte for byte, for every string
    /// that needs escaping, numbers and nested values.
    #[test]
    fn json_answers_match_serde_json() {
        let value = serde_json::json!({
            "body": "plain \"quoted\" back\\slash\n\t\r\u{1}\u{1f} é € 😀 \u{2028}",
            "size": 1_711,
            "score": -2.5,
            "tags": ["a", "b"],
            "source": null,
            "metadata": {"nested": [1, true, {"x": "y"}]},
        });
        let resp = super::json_response(&mut actix_web::HttpResponse::Ok(), &value);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/json"
        );
        let body = resp.into_body().try_into_bytes().unwrap();
        assert_eq!(body, serde_json::to_vec(&value).unwrap());
    }
}
