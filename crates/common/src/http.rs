//! The JSON body extractor every service uses, and extractor configuration so malformed
//! input becomes problem+json, not actix's plain text.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::{mime, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// The largest JSON body of an app or scope, set by [`configure_extractors`].
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

/// A JSON request body. Like `web::Json` (the same limit, 413, 415 and 400 for broken
/// JSON), but a value of the wrong shape is a 422 naming where it was: `title`,
/// `tags[1]`, `source.url`, an unknown `source.colour` — not the whole body.
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json(req, payload);
        Box::pin(async move { from_json(&body.await?).map(JsonBody) })
    }
}

/// Documents a body extractor `$extractor<T>` in the OpenAPI document as the
/// `web::Json<T>` body it stands for.
#[macro_export]
macro_rules! document_as_json_body {
    ($extractor:ident) => {
        impl<T: ::paperclip::v2::schema::Apiv2Schema> ::paperclip::v2::schema::Apiv2Schema
            for $extractor<T>
        {
            fn name() -> Option<String> {
                T::name()
            }

            fn raw_schema() -> ::paperclip::v2::models::DefaultSchemaRaw {
                T::raw_schema()
            }
        }

        impl<T: ::paperclip::v2::schema::Apiv2Schema> ::paperclip::actix::OperationModifier
            for $extractor<T>
        {
            fn update_parameter(op: &mut ::paperclip::v2::models::DefaultOperationRaw) {
                <::paperclip::actix::web::Json<T> as ::paperclip::actix::OperationModifier>::update_parameter(op);
            }

            fn update_definitions(
                map: &mut ::std::collections::BTreeMap<
                    String,
                    ::paperclip::v2::models::DefaultSchemaRaw,
                >,
            ) {
                <::paperclip::actix::web::Json<T> as ::paperclip::actix::OperationModifier>::update_definitions(map);
            }
        }
    };
}

crate::document_as_json_body!(JsonBody);

/// Reads a JSON request body whole: 415 unless its type is JSON, 413 past the app's
/// [`JsonLimit`] (at once when `Content-Length` says so), into one buffer sized by
/// `Content-Length` (no doubling while it grows).
pub fn read_json(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<Vec<u8>, ApiError>> + 'static {
    let limit = req.app_data::<JsonLimit>().map_or(default_limit(), |l| l.0);
    let json = matches!(req.mime_type(), Ok(Some(mime))
        if mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON));
    let length = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let mut payload = payload.take();
    async move {
        if !json {
            return Err(ApiError::unsupported_media_type(
                "expected Content-Type: application/json",
            ));
        }
        if let Some(length) = length.filter(|&l| l > limit) {
            return Err(ApiError::payload_too_large(format!(
                "body of {length} bytes exceeds the limit of {limit} bytes"
            )));
        }
        let mut buf = Vec::with_capacity(length.unwrap_or(0));
        while let Some(piece) = payload.next().await {
            let piece = piece.map_err(|e| {
                ApiError::bad_request("bad_body", format!("could not read the body: {e}"))
            })?;
            if buf.len() + piece.len() > limit {
                return Err(ApiError::payload_too_large(format!(
                    "body exceeds the limit of {limit} bytes"
                )));
            }
            buf.extend_from_slice(&piece);
        }
        Ok(buf)
    }
}

/// actix's own JSON limit, for an app without [`JsonLimit`].
fn default_limit() -> usize {
    2 * 1024 * 1024
}

/// Parses a JSON body: 400 when it is not JSON, 422 naming the field when it is JSON of
/// the wrong shape.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        json_error_at(&path, e.into_inner())
    })?;
    deserializer.end().map_err(|e| json_error_at(".", e))?;
    Ok(value)
}

/// A refused body, `path` being where serde was in it (`.` for the top).
fn json_error_at(path: &str, e: serde_json::Error) -> ApiError {
    if !e.is_data() {
        return ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"));
    }
    let (named, message) = split_serde_message(&e.to_string());
    // The path of an unknown member ends with its name; a missing one is named by the
    // message, inside the object at `path`; any other mistake is the value at `path`.
    let field = match (path, named) {
        (".", Some(name)) => name,
        (".", None) => "body".to_owned(),
        (path, Some(name)) if path != name && !path.ends_with(&format!(".{name}")) => {
            format!("{path}.{name}")
        }
        (path, _) => path.to_owned(),
    };
    ApiError::validation(vec![FieldError::new(field, message)])
}

/// serde messages look like "unknown field `colour`, expected one of ..." or
/// "missing field `email` at line 1 column 2": the field name when there is one, and
/// the message without its position.
fn split_serde_message(msg: &str) -> (Option<String>, String) {
    let msg = msg.split(" at line ").next().unwrap_or(msg).to_owned();
    let field = msg
        .split('`')
        .nth(1)
        .filter(|_| msg.starts_with("unknown field") || msg.starts_with("missing field"))
        .map(str::to_owned);
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
    cfg.app_data(JsonLimit(json_limit))
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
        assert_eq!(f.as_deref(), Some("colour"));
        assert_eq!(m, "unknown field `colour`, expected `name`");
        let (f, _) =
            split_serde_message("invalid type: integer `3`, expected a string at line 1 column 2");
        assert_eq!(f, None);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        title: String,
        tags: Option<Vec<String>>,
        source: Option<Source>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Source {
        url: String,
    }

    #[test]
    fn refusals_name_where_the_value_was() {
        let field = |json: &str| {
            let e = from_json::<Item>(json.as_bytes()).unwrap_err();
            assert_eq!(e.status(), 422, "{json}");
            e.to_problem(None).errors.unwrap()[0].field.clone()
        };
        assert_eq!(field(r#"{"title": 5}"#), "title");
        assert_eq!(field(r#"{"title": "t", "tags": ["a", 7]}"#), "tags[1]");
        assert_eq!(
            field(r#"{"title": "t", "source": {"url": 1}}"#),
            "source.url"
        );
        assert_eq!(
            field(r#"{"title": "t", "source": {"colour": 1}}"#),
            "source.colour"
        );
        assert_eq!(field(r#"{"title": "t", "owner": 1}"#), "owner");
        assert_eq!(field(r#"{"tags": []}"#), "title");
        assert_eq!(field(r#""x""#), "body");
        for broken in [r#"{"title": "t""#, r#"{"title": "t"} x"#, ""] {
            let e = from_json::<Item>(broken.as_bytes()).unwrap_err();
            assert_eq!(
                (e.status().as_u16(), e.code()),
                (400, "malformed_json"),
                "{broken}"
            );
        }
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
