//! W3C Trace Context (`traceparent`): every request continues the caller's trace (or
//! starts one), its log lines carry `trace_id`, and every call to another of our
//! services made while it runs sends the trace on. The context of the request being
//! served is task-local, so outbound clients find it without it being passed down;
//! background work (a queued job) re-enters the trace it was made in with [`scope`].

use std::future::Future;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

pub const TRACEPARENT: &str = "traceparent";

/// The trace a piece of work belongs to and this work's own span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lower-case hex digits, never all zero.
    pub trace_id: String,
    /// This service's span (16 hex digits): the parent of the calls it makes.
    pub span_id: String,
    /// The caller's span, when the trace came in with the request.
    pub parent_id: Option<String>,
    /// `01` when sampled.
    pub flags: String,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

fn random_hex(digits: usize) -> String {
    let mut hex = String::with_capacity(32);
    while hex.len() < digits {
        hex.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    hex.truncate(digits);
    hex
}

fn is_hex(value: &str, digits: usize) -> bool {
    value.len() == digits
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && value.bytes().any(|b| b != b'0')
}

impl TraceContext {
    /// A new trace (no valid one came in).
    pub fn start() -> Self {
        Self {
            trace_id: random_hex(32),
            span_id: random_hex(16),
            parent_id: None,
            flags: "01".to_owned(),
        }
    }

    /// Continues the trace of an incoming `traceparent` header (version 00, RFC-style
    /// lower-case hex, non-zero ids), or starts a new one when it is absent or invalid.
    pub fn continue_from(traceparent: Option<&str>) -> Self {
        let Some(value) = traceparent.map(str::trim) else {
            return Self::start();
        };
        let mut parts = value.split('-');
        match (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            (Some("00"), Some(trace), Some(parent), Some(flags), None)
                if is_hex(trace, 32)
                    && is_hex(parent, 16)
                    && flags.len() == 2
                    && flags.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Self {
                    trace_id: trace.to_owned(),
                    span_id: random_hex(16),
                    parent_id: Some(parent.to_owned()),
                    flags: flags.to_ascii_lowercase(),
                }
            }
            _ => Self::start(),
        }
    }

    /// The header a call made from this work sends: same trace, this span as parent.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// Runs `work` as part of `context` (a request, or a job re-entering its trace).
pub async fn scope<F: Future>(context: TraceContext, work: F) -> F::Output {
    CURRENT.scope(context, work).await
}

/// The `traceparent` for a call made now to another service, if work is traced.
pub fn outgoing() -> Option<String> {
    CURRENT.try_with(TraceContext::traceparent).ok()
}

/// Adds the current `traceparent` to a request to another of our services.
pub fn propagate(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match outgoing() {
        Some(value) => request.header(TRACEPARENT, value),
        None => request,
    }
}

/// One answered request, as its span is exported.
pub struct ServedSpan<'a> {
    pub context: &'a TraceContext,
    pub method: &'a str,
    /// The matched route pattern (bounded), or the path when nothing matched.
    pub route: &'a str,
    pub status: u16,
    pub started: SystemTime,
}

/// Sends every request's span to an OpenTelemetry collector over OTLP (HTTP, protobuf),
/// in batches from a thread of its own; off unless an endpoint is configured.
#[derive(Clone)]
pub struct SpanExport {
    provider: SdkTracerProvider,
    tracer: opentelemetry_sdk::trace::SdkTracer,
}

impl SpanExport {
    /// `endpoint` is the collector's traces URL, e.g. `http://collector:4318/v1/traces`.
    pub fn new(service: &'static str, endpoint: &str) -> Result<Self, String> {
        // The blocking HTTP client owns a runtime of its own, which may be neither made
        // nor dropped on an async thread: the exporter is built on a plain one.
        let endpoint = endpoint.to_owned();
        std::thread::spawn(move || Self::build(service, &endpoint))
            .join()
            .map_err(|_| "building the OTLP exporter panicked".to_owned())?
    }

    fn build(service: &'static str, endpoint: &str) -> Result<Self, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(
                reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("OTLP client: {e}"))?,
            )
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| format!("OTLP exporter for {endpoint}: {e}"))?;
        let batches = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(Duration::from_secs(1))
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batches)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(format!("peermesh-{service}"))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("peermesh");
        Ok(Self { provider, tracer })
    }

    /// Records the server span of one answered request, ending now.
    pub fn served(&self, span: &ServedSpan) {
        let (Some(trace_id), Some(span_id)) = (
            TraceId::from_hex(&span.context.trace_id).ok(),
            SpanId::from_hex(&span.context.span_id).ok(),
        ) else {
            return;
        };
        let flags = TraceFlags::new(u8::from_str_radix(&span.context.flags, 16).unwrap_or(1));
        let parent = match span
            .context
            .parent_id
            .as_deref()
            .and_then(|p| SpanId::from_hex(p).ok())
        {
            Some(parent) => opentelemetry::Context::new().with_remote_span_context(
                SpanContext::new(trace_id, parent, flags, true, TraceState::default()),
            ),
            None => opentelemetry::Context::new(),
        };
        let mut builder = SpanBuilder::from_name(format!("{} {}", span.method, span.route))
            .with_kind(SpanKind::Server)
            .with_start_time(span.started)
            .with_attributes([
                KeyValue::new("http.request.method", span.method.to_owned()),
                KeyValue::new("http.route", span.route.to_owned()),
                KeyValue::new("http.response.status_code", i64::from(span.status)),
            ]);
        builder.trace_id = Some(trace_id);
        builder.span_id = Some(span_id);
        if span.status >= 500 {
            builder.status = Status::error("server error");
        }
        let mut exported = self.tracer.build_with_context(builder, &parent);
        opentelemetry::trace::Span::end(&mut exported);
    }

    /// Sends what is still buffered (at shutdown).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let t = TraceContext::continue_from(Some(INCOMING));
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(t.flags, "01");
        assert!(is_hex(&t.span_id, 16) && t.span_id != "00f067aa0ba902b7");
        let out = t.traceparent();
        assert!(
            out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{out}"
        );
        assert_eq!(out.len(), INCOMING.len());
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            let t = TraceContext::continue_from(Some(bad));
            assert_ne!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
            assert!(t.parent_id.is_none() && is_hex(&t.trace_id, 32), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_current_trace_is_visible_inside_its_scope_only() {
        assert!(outgoing().is_none());
        let t = TraceContext::continue_from(Some(INCOMING));
        let seen = scope(t.clone(), async { outgoing() }).await;
        assert_eq!(seen, Some(t.traceparent()));
        assert!(outgoing().is_none());
    }
}
