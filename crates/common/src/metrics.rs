//! Prometheus metrics. Every service gets request counts and latency histograms by
//! route and status (recorded by the request middleware) and the process's own figures;
//! services add theirs to the same registry. `GET /metrics` (on the service's port,
//! never routed by the gateway) answers in the text exposition format.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub use prometheus::Error as MetricsError;

type HookFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Hook = Arc<dyn Fn() -> HookFuture + Send + Sync>;

/// Latency buckets in seconds: sub-millisecond reads up to slow uploads.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The service's registry and the HTTP metrics every service records.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    process: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    hooks: Arc<Mutex<Vec<Hook>>>,
}

impl Metrics {
    /// A registry whose metrics are named `peermesh_*` and labelled with `service`.
    pub fn new(service: &'static str) -> Result<Self, MetricsError> {
        let labels = [("service".to_owned(), service.to_owned())].into();
        let registry = Registry::new_custom(Some("peermesh".into()), Some(labels))?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from receiving a request to its response being ready",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route", "status"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        // The standard `process_*` names (CPU, memory, file descriptors, start time),
        // outside our prefix so that stock dashboards and alerts find them.
        let process = Registry::new_custom(
            None,
            Some([("service".to_owned(), service.to_owned())].into()),
        )?;
        #[cfg(target_os = "linux")]
        process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            process,
            requests,
            latency,
            hooks: Arc::default(),
        })
    }

    /// Registers a service's own metric.
    pub fn register<C: Collector + Clone + 'static>(&self, metric: C) -> Result<C, MetricsError> {
        self.registry.register(Box::new(metric.clone()))?;
        Ok(metric)
    }

    /// A counter with labels, registered.
    pub fn counter(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, MetricsError> {
        self.register(IntCounterVec::new(Opts::new(name, help), labels)?)
    }

    /// A gauge with labels, registered.
    pub fn gauge(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, MetricsError> {
        self.register(IntGaugeVec::new(Opts::new(name, help), labels)?)
    }

    /// Work run before every scrape, e.g. reading a queue's depth into a gauge.
    pub fn on_scrape<F, Fut>(&self, hook: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let hook: Hook = Arc::new(move || Box::pin(hook()) as HookFuture);
        self.hooks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(hook);
    }

    /// Records one answered request. `route` is the matched pattern (`/api/v1/content/{id}`),
    /// never the raw path, so the label set stays bounded.
    pub fn observe(&self, method: &Method, route: Option<&str>, status: u16, seconds: f64) {
        // Standard methods only: a client may send any token as a method.
        let method = match *method {
            Method::GET
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::HEAD
            | Method::OPTIONS => method.as_str(),
            _ => "other",
        };
        let status = status.to_string();
        let labels = [method, route.unwrap_or("unmatched"), status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// Runs the scrape hooks, then renders every metric in the text format.
    pub async fn render(&self) -> Result<String, MetricsError> {
        let hooks = self
            .hooks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        for hook in hooks {
            hook().await;
        }
        let mut out = Vec::new();
        let mut families = self.process.gather();
        families.extend(self.registry.gather());
        TextEncoder::new().encode(&families, &mut out)?;
        String::from_utf8(out).map_err(|e| MetricsError::Msg(e.to_string()))
    }
}

/// `GET /metrics`.
pub async fn handler(metrics: web::Data<Metrics>) -> Result<HttpResponse, crate::ApiError> {
    let text = metrics.render().await.map_err(crate::ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(TextEncoder::new().format_type())
        .insert_header(("Cache-Control", "no-store"))
        .body(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn requests_are_counted_by_route_and_hooks_run_before_a_scrape() {
        let metrics = Metrics::new("test").unwrap();
        metrics.observe(&Method::GET, Some("/api/v1/x/{id}"), 200, 0.003);
        metrics.observe(&Method::GET, Some("/api/v1/x/{id}"), 200, 0.004);
        metrics.observe(&Method::from_bytes(b"BREW").unwrap(), None, 404, 0.0001);
        let depth = metrics
            .gauge("queue_depth", "test gauge", &["status"])
            .unwrap();
        let hook_depth = depth.clone();
        metrics.on_scrape(move || {
            let depth = hook_depth.clone();
            async move { depth.with_label_values(&["queued"]).set(7) }
        });
        let text = metrics.render().await.unwrap();
        assert!(text.contains(
            r#"peermesh_http_requests_total{method="GET",route="/api/v1/x/{id}",status="200",service="test"} 2"#
        ), "{text}");
        assert!(text.contains(
            r#"peermesh_http_requests_total{method="other",route="unmatched",status="404",service="test"} 1"#
        ));
        assert!(text.contains(
            r#"peermesh_http_request_duration_seconds_bucket{method="GET",route="/api/v1/x/{id}",status="200",service="test",le="0.005"} 2"#
        ));
        assert!(text.contains(r#"peermesh_queue_depth{status="queued",service="test"} 7"#));
        assert!(metrics.counter("queue_depth", "again", &[]).is_err());
        #[cfg(target_os = "linux")]
        assert!(
            text.lines()
                .any(|l| l.starts_with(r#"process_resident_memory_bytes{service="test"}"#)),
            "{text}"
        );
    }
}
