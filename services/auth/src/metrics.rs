//! The auth service's own metrics beside the shared HTTP and pool ones.

use peermesh_common::metrics::{Metrics, MetricsError};
use prometheus::{IntCounter, IntCounterVec};

/// How a token was obtained.
#[derive(Debug, Clone, Copy)]
pub enum Grant {
    Register,
    Password,
    Refresh,
    ClientCredentials,
    /// Google or GitHub sign-in, at `/oauth/exchange`.
    OAuth,
}

impl Grant {
    fn label(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Password => "password",
            Self::Refresh => "refresh",
            Self::ClientCredentials => "client_credentials",
            Self::OAuth => "oauth",
        }
    }
}

#[derive(Clone)]
pub struct AuthMetrics {
    issued: IntCounterVec,
    reused: IntCounter,
    logins: IntCounterVec,
    mails: IntCounterVec,
    oauth_callbacks: IntCounterVec,
}

impl AuthMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, MetricsError> {
        Ok(Self {
            issued: metrics.counter(
                "auth_tokens_issued_total",
                "Access tokens issued, by grant",
                &["grant"],
            )?,
            reused: metrics.register(IntCounter::new(
                "auth_refresh_reuse_total",
                "Rotated refresh tokens presented after the grace window (the session was revoked)",
            )?)?,
            logins: metrics.counter(
                "auth_logins_total",
                "Password sign-ins by outcome: succeeded, invalid_credentials, disabled, throttled, error",
                &["outcome"],
            )?,
            mails: metrics.counter(
                "auth_mails_total",
                "Mail deliveries by kind and outcome: sent, retrying (an attempt failed), failed (given up), dropped (queue full)",
                &["kind", "outcome"],
            )?,
            oauth_callbacks: metrics.counter(
                "auth_oauth_callbacks_total",
                "Provider callbacks by provider and outcome: signed_in, or the error code the client was sent back with",
                &["provider", "outcome"],
            )?,
        })
    }

    pub fn issued(&self, grant: Grant) {
        self.issued.with_label_values(&[grant.label()]).inc();
    }

    pub fn reuse_detected(&self) {
        self.reused.inc();
    }

    /// One password sign-in, by the status it was answered with.
    pub fn login(&self, status: Option<actix_web::http::StatusCode>) {
        let outcome = match status.map(|s| s.as_u16()) {
            None => "succeeded",
            Some(401) => "invalid_credentials",
            Some(403) => "disabled",
            Some(429) => "throttled",
            Some(_) => "error",
        };
        self.logins.with_label_values(&[outcome]).inc();
    }

    /// One provider callback; `outcome` is `signed_in` or one of the callback's fixed
    /// error codes (never text from the request).
    pub fn oauth_callback(&self, provider: &str, outcome: &str) {
        self.oauth_callbacks
            .with_label_values(&[provider, outcome])
            .inc();
    }

    /// One mail delivery step; `kind` is one of the service's own mail kinds.
    pub fn mail(&self, kind: &str, outcome: &'static str) {
        self.mails.with_label_values(&[kind, outcome]).inc();
    }
}
