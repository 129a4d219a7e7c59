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
        })
    }

    pub fn issued(&self, grant: Grant) {
        self.issued.with_label_values(&[grant.label()]).inc();
    }

    pub fn reuse_detected(&self) {
        self.reused.inc();
    }
}
