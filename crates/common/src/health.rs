//! `/health` (the process is alive) and `/ready` (it can serve: named checks pass).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder};
use paperclip::actix::{api_v2_operation, web, Apiv2Schema, OperationModifier};
use paperclip::v2::models::{DefaultOperationRaw, Either, Response};
use paperclip::v2::schema::Apiv2Schema as _;
use serde::{Deserialize, Serialize};

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The service's readiness checks plus the draining flag set on shutdown.
#[derive(Clone)]
pub struct Readiness {
    service: &'static str,
    checks: Vec<(&'static str, CheckFn)>,
    /// Parts that are off by choice: reported, never failing.
    notes: Vec<(&'static str, String)>,
    draining: Arc<AtomicBool>,
}

#[derive(Debug, Serialize, Deserialize, Apiv2Schema)]
pub struct HealthOut {
    /// Always `ok` when the process answers.
    pub status: String,
    pub service: String,
}

#[derive(Debug, Serialize, Deserialize, Apiv2Schema)]
pub struct ReadyOut {
    /// `ready` or `unavailable`.
    pub status: String,
    pub service: String,
    /// Each named check: `ok` or the reason it failed; an optional part that is off
    /// says so (`off: …`) without failing.
    pub checks: BTreeMap<String, String>,
}

impl Readiness {
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            checks: Vec::new(),
            notes: Vec::new(),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Adds a named check; `Err(reason)` makes the service unready.
    pub fn with_check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()) as CheckFuture)));
        self
    }

    /// Adds a named entry that states how an optional part is set up (`off: …`); it
    /// is listed with the checks and never makes the service unready.
    pub fn with_note(mut self, name: &'static str, text: impl Into<String>) -> Self {
        self.notes.push((name, text.into()));
        self
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// From now on `/ready` answers 503: the process is shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun (background work should wind down).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub async fn evaluate(&self) -> (bool, ReadyOut) {
        let runs = self.checks.iter().map(|(name, check)| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(reason)) => Err(reason),
                Err(_) => Err(format!("timed out after {}s", CHECK_TIMEOUT.as_secs())),
            };
            (*name, outcome)
        });
        let results = futures_util::future::join_all(runs).await;
        let mut ok = true;
        let mut checks = BTreeMap::new();
        if self.draining.load(Ordering::SeqCst) {
            ok = false;
            checks.insert("shutdown".to_owned(), "draining".to_owned());
        }
        for (name, outcome) in results {
            let text = match outcome {
                Ok(()) => "ok".to_owned(),
                Err(reason) => {
                    ok = false;
                    reason
                }
            };
            checks.insert(name.to_owned(), text);
        }
        for (name, text) in &self.notes {
            checks.insert((*name).to_owned(), text.clone());
        }
        let out = ReadyOut {
            status: if ok { "ready" } else { "unavailable" }.to_owned(),
            service: self.service.to_owned(),
            checks,
        };
        (ok, out)
    }
}

/// Process is alive. Touches no dependency.
#[api_v2_operation(summary = "Liveness", tags(health))]
pub async fn health(readiness: web::Data<Readiness>) -> web::Json<HealthOut> {
    web::Json(HealthOut {
        status: "ok".into(),
        service: readiness.service.to_owned(),
    })
}

/// Every readiness check passes (200) or not (503, naming the failing check).
#[api_v2_operation(summary = "Readiness", tags(health))]
pub async fn ready(readiness: web::Data<Readiness>) -> ReadyResponse {
    let (ok, out) = readiness.evaluate().await;
    ReadyResponse { ok, out }
}

/// 200 or 503 with the same [`ReadyOut`] body.
pub struct ReadyResponse {
    ok: bool,
    out: ReadyOut,
}

impl Responder for ReadyResponse {
    type Body = BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse<BoxBody> {
        let status = if self.ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        HttpResponse::build(status)
            .insert_header(("Cache-Control", "no-store"))
            .json(&self.out)
    }
}

impl paperclip::v2::schema::Apiv2Schema for ReadyResponse {}

impl OperationModifier for ReadyResponse {
    fn update_response(op: &mut DefaultOperationRaw) {
        for (status, description) in [
            ("200", "Ready"),
            ("503", "Not ready; names the failing check"),
        ] {
            let mut schema = ReadyOut::schema_with_ref();
            schema.retain_ref();
            op.responses.insert(
                status.into(),
                Either::Right(Response {
                    description: Some(description.into()),
                    schema: Some(schema),
                    ..Default::default()
                }),
            );
        }
    }

    fn update_definitions(map: &mut BTreeMap<String, paperclip::v2::models::DefaultSchemaRaw>) {
        <ReadyOut as OperationModifier>::update_definitions(map);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failing_and_slow_checks_are_named() {
        let r = Readiness::new("t")
            .with_check("database", || async { Ok(()) })
            .with_check("keys", || async { Err("no keys loaded".to_owned()) });
        let (ok, out) = r.evaluate().await;
        assert!(!ok);
        assert_eq!(out.checks["database"], "ok");
        assert_eq!(out.checks["keys"], "no keys loaded");
        assert_eq!(out.status, "unavailable");
    }

    #[tokio::test]
    async fn draining_makes_it_unready() {
        let r = Readiness::new("t").with_check("database", || async { Ok(()) });
        assert!(r.evaluate().await.0);
        r.start_draining();
        let (ok, out) = r.evaluate().await;
        assert!(!ok);
        assert_eq!(out.checks["shutdown"], "draining");
    }
}
