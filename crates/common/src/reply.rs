//! One answer type for every handler: a JSON body with its status and the headers a
//! REST answer carries (`ETag`, `Location`, `Cache-Control: no-store`,
//! `Preference-Applied`), documented in OpenAPI under the body's schema.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use actix_web::body::BoxBody;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, Responder};
use paperclip::actix::OperationModifier;
use paperclip::v2::models::{DefaultOperationRaw, DefaultSchemaRaw};
use paperclip::v2::schema::Apiv2Schema;
use serde::Serialize;

/// The success statuses an answer is documented with; the first is the one it has
/// unless the handler picks another of them.
pub trait Statuses {
    const CODES: &'static [u16];
}

/// One status: `Reply<T, Code<201>>`.
pub struct Code<const STATUS: u16>;

impl<const STATUS: u16> Statuses for Code<STATUS> {
    const CODES: &'static [u16] = &[STATUS];
}

/// 201 with the new thing (and its `Location`).
pub type Created<T> = Reply<T, Code<201>>;
/// 202: the work goes on in the background.
pub type Accepted<T> = Reply<T, Code<202>>;

enum Payload<T> {
    Json(T),
    /// What a client that sent `Prefer: return=minimal` gets instead of the whole
    /// representation (RFC 7240).
    Minimal(serde_json::Value),
    Empty,
}

/// A JSON answer: build it with [`Reply::new`], then add what it carries.
pub struct Reply<T, S: Statuses = Code<200>> {
    payload: Payload<T>,
    status: Option<StatusCode>,
    etag: Option<String>,
    location: Option<String>,
    no_store: bool,
    preference_applied: Option<&'static str>,
    statuses: PhantomData<S>,
}

impl<T, S: Statuses> Reply<T, S> {
    pub fn new(body: T) -> Self {
        Self::with(Payload::Json(body))
    }

    /// `304 Not Modified` with the current `ETag`: the client's copy is current.
    pub fn not_modified(etag: impl Into<String>) -> Self {
        Self::with(Payload::Empty)
            .status(StatusCode::NOT_MODIFIED)
            .etag(etag)
    }

    /// The minimal representation the client asked for with `Prefer: return=minimal`.
    pub fn minimal(body: serde_json::Value) -> Self {
        let mut reply = Self::with(Payload::Minimal(body));
        reply.preference_applied = Some("return=minimal");
        reply
    }

    fn with(payload: Payload<T>) -> Self {
        Self {
            payload,
            status: None,
            etag: None,
            location: None,
            no_store: false,
            preference_applied: None,
            statuses: PhantomData,
        }
    }

    /// Another of the documented statuses (or 304) than the first.
    pub fn status(mut self, status: StatusCode) -> Self {
        debug_assert!(
            status == StatusCode::NOT_MODIFIED || S::CODES.contains(&status.as_u16()),
            "{status} is not documented for this answer"
        );
        self.status = Some(status);
        self
    }

    pub fn etag(mut self, etag: impl Into<String>) -> Self {
        self.etag = Some(etag.into());
        self
    }

    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// `Cache-Control: no-store` (and `Pragma: no-cache`): the answer holds tokens or
    /// secrets.
    pub fn no_store(mut self) -> Self {
        self.no_store = true;
        self
    }

    fn status_code(&self) -> StatusCode {
        self.status
            .or_else(|| StatusCode::from_u16(*S::CODES.first()?).ok())
            .unwrap_or(StatusCode::OK)
    }
}

impl<T: Serialize, S: Statuses> Responder for Reply<T, S> {
    type Body = BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse<BoxBody> {
        let mut resp = HttpResponse::build(self.status_code());
        if let Some(etag) = &self.etag {
            resp.insert_header((header::ETAG, etag.as_str()));
        }
        if let Some(location) = &self.location {
            resp.insert_header((header::LOCATION, location.as_str()));
        }
        if self.no_store {
            resp.insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::PRAGMA, "no-cache"));
        }
        if let Some(applied) = self.preference_applied {
            resp.insert_header(("preference-applied", applied));
        }
        match &self.payload {
            Payload::Json(body) => crate::http::json_response(&mut resp, body),
            Payload::Minimal(body) => crate::http::json_response(&mut resp, body),
            Payload::Empty => resp.finish(),
        }
    }
}

impl<T: Apiv2Schema, S: Statuses> Apiv2Schema for Reply<T, S> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::raw_schema()
    }
}

impl<T: Apiv2Schema + OperationModifier, S: Statuses> OperationModifier for Reply<T, S> {
    fn update_response(op: &mut DefaultOperationRaw) {
        for status in S::CODES {
            crate::http::document_response::<T>(op, *status);
        }
    }

    fn update_definitions(map: &mut BTreeMap<String, DefaultSchemaRaw>) {
        <T as OperationModifier>::update_definitions(map);
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn answer<T: Serialize, S: Statuses>(
        reply: Reply<T, S>,
    ) -> (u16, Vec<(String, String)>, String) {
        let req = actix_web::test::TestRequest::default().to_http_request();
        let resp = reply.respond_to(&req);
        let status = resp.status().as_u16();
        let mut headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        headers.sort();
        let body = resp.into_body().try_into_bytes().unwrap_or_default();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_answer_carries_its_status_headers_and_body() {
        let created: Created<_> = Reply::new(serde_json::json!({"id": "a"}))
            .etag("\"1\"")
            .location("/x/a");
        assert_eq!(
            answer(created),
            (
                201,
                pairs(&[
                    ("content-type", "application/json"),
                    ("etag", "\"1\""),
                    ("location", "/x/a")
                ]),
                r#"{"id":"a"}"#.into()
            )
        );
        let secret: Reply<_> = Reply::new(serde_json::json!({"token": "t"})).no_store();
        assert_eq!(
            answer(secret).1,
            pairs(&[
                ("cache-control", "no-store"),
                ("content-type", "application/json"),
                ("pragma", "no-cache")
            ])
        );
    }

    #[test]
    fn minimal_and_not_modified_answers() {
        let minimal: Created<serde_json::Value> =
            Reply::minimal(serde_json::json!({"id": "a"})).location("/x/a");
        let (status, headers, body) = answer(minimal);
        assert_eq!((status, body.as_str()), (201, r#"{"id":"a"}"#));
        assert!(headers.contains(&("preference-applied".into(), "return=minimal".into())));

        let same: Reply<serde_json::Value> = Reply::not_modified("\"3\"");
        assert_eq!(
            answer(same),
            (304, pairs(&[("etag", "\"3\"")]), String::new())
        );
    }

    #[test]
    fn a_handler_picks_another_documented_status() {
        struct Upload;
        impl Statuses for Upload {
            const CODES: &'static [u16] = &[201, 200, 202];
        }
        let queued: Reply<_, Upload> = Reply::new(1).status(StatusCode::ACCEPTED);
        assert_eq!(answer(queued).0, 202);
        let made: Reply<_, Upload> = Reply::new(1);
        assert_eq!(answer(made).0, 201);
    }
}
