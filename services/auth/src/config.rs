//! The auth service's settings (`AUTH_*`), their defaults and their checks. Mail,
//! sign-in providers and account deletion keep their sections beside their code.

use peermesh_common::config::{ConfigError, Networks, ServerSettings, ServiceSettings, Vars};
use serde::Deserialize;

use crate::{deletion, mail, oauth, DEFAULT_PORT};

/// `AUTH_*` settings of this service.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// PEM file with the private key access tokens are signed with (RSA or Ed25519).
    pub signing_key_file: String,
    /// More PEM files (public or private keys) whose public keys are published too,
    /// comma separated: the previous key during a rotation.
    pub published_key_files: Option<String>,
    #[serde(default = "default_issuer")]
    pub jwt_issuer: String,
    #[serde(default = "default_audience")]
    pub jwt_audience: String,
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: i64,
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: i64,
    /// How long a just-rotated refresh token may be presented again (several tabs).
    #[serde(default = "default_grace")]
    pub refresh_grace_secs: i64,
    /// This account gets the admin role once its address is verified.
    pub bootstrap_admin_email: Option<String>,
    /// A file holding the bootstrap admin's password: the account is then created
    /// (or taken over from an unverified sign-up) at start-up, verified by definition.
    pub bootstrap_admin_password_file: Option<String>,
    /// How long a user's delegation to a service client lasts without being renewed
    /// (each request of the user through that client renews it).
    #[serde(default = "default_delegation_ttl")]
    pub delegation_ttl_secs: i64,
    /// JSON file of service clients to create or update at start-up (see `provision`).
    pub clients_file: Option<String>,
    #[serde(default = "default_account_failures")]
    pub login_max_failures_per_account: i32,
    #[serde(default = "default_ip_failures")]
    pub login_max_failures_per_ip: i32,
    /// Failed logins on one account from all addresses together; reaching it locks the
    /// account for addresses that never signed in to it (its owner's still work).
    #[serde(default = "default_account_wide_failures")]
    pub login_max_failures_account_wide: i32,
    #[serde(default = "default_window")]
    pub login_failure_window_secs: i64,
    #[serde(default = "default_lockout")]
    pub login_lockout_secs: i64,
    /// Addresses or networks whose `X-Real-IP` header is believed (the gateway),
    /// comma separated.
    #[serde(default = "default_trusted_proxies")]
    pub trusted_proxies: String,
    /// Password hashes computed at once; defaults to the number of cores.
    pub hash_concurrency: Option<usize>,
    /// The frontend that mail links point at (never the request's Host).
    #[serde(default = "default_app_url")]
    pub public_app_url: String,
    #[serde(default = "default_verify_ttl")]
    pub verify_token_ttl_secs: i64,
    #[serde(default = "default_reset_ttl")]
    pub reset_token_ttl_secs: i64,
    /// Shortest time between two verification mails to one user.
    #[serde(default = "default_resend_interval")]
    pub verify_resend_interval_secs: i64,
    /// Verification mails per user per hour.
    #[serde(default = "default_resend_per_hour")]
    pub verify_resend_per_hour: i32,
    /// Reset mails per account per hour (more are silently not sent).
    #[serde(default = "default_forgot_per_account")]
    pub forgot_per_account_per_hour: i32,
    /// Reset requests per client address per hour (more get 429).
    #[serde(default = "default_forgot_per_ip")]
    pub forgot_per_ip_per_hour: i32,
}

fn default_issuer() -> String {
    peermesh_common::jwt::DEFAULT_ISSUER.into()
}
fn default_audience() -> String {
    peermesh_common::jwt::DEFAULT_AUDIENCE.into()
}
fn default_access_ttl() -> i64 {
    15 * 60
}
fn default_refresh_ttl() -> i64 {
    7 * 24 * 3600
}
fn default_grace() -> i64 {
    10
}
fn default_delegation_ttl() -> i64 {
    90 * 24 * 3600
}
fn default_account_failures() -> i32 {
    5
}
fn default_ip_failures() -> i32 {
    50
}
fn default_account_wide_failures() -> i32 {
    100
}
fn default_window() -> i64 {
    15 * 60
}
fn default_lockout() -> i64 {
    5 * 60
}
fn default_app_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_verify_ttl() -> i64 {
    24 * 3600
}
fn default_reset_ttl() -> i64 {
    30 * 60
}
fn default_resend_interval() -> i64 {
    60
}
fn default_resend_per_hour() -> i32 {
    5
}
fn default_forgot_per_account() -> i32 {
    3
}
fn default_forgot_per_ip() -> i32 {
    20
}
fn default_trusted_proxies() -> String {
    "127.0.0.1,::1".into()
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub mail: mail::MailSettings,
    pub oauth: oauth::OAuthSettings,
    pub deletion: deletion::DeletionSettings,
}

impl AuthSettings {
    /// `AUTH_TRUSTED_PROXIES`, parsed.
    pub fn trusted_proxy_networks(&self) -> Result<Networks, ConfigError> {
        Networks::from_var("AUTH_TRUSTED_PROXIES", &self.trusted_proxies)
    }
}

impl ServiceSettings for Settings {
    const PREFIX: &'static str = "AUTH_";
    const DEFAULT_PORT: u16 = DEFAULT_PORT;

    fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            server: vars.server()?,
            auth: vars.section()?,
            mail: vars.section()?,
            oauth: vars.section()?,
            deletion: vars.section()?,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.auth.trusted_proxy_networks()?;
        if self.auth.refresh_token_ttl_secs < self.auth.access_token_ttl_secs {
            return Err(ConfigError::invalid(
                "AUTH_REFRESH_TOKEN_TTL_SECS",
                "must not be shorter than AUTH_ACCESS_TOKEN_TTL_SECS",
            ));
        }
        Ok(())
    }

    fn server(&self) -> &ServerSettings {
        &self.server
    }
}
