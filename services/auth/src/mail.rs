//! Outgoing mail: over SMTP (lettre) when `AUTH_SMTP_HOST` is set, otherwise into a
//! local outbox folder (one `.eml` file per message) for development. Sending never
//! holds up the request that asked for it: each message is handed to a background
//! task that retries with backoff a bounded number of times, and the number of
//! messages waiting is bounded too. Logs name the kind of message and the recipient's
//! domain — never the message, which carries a token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use peermesh_common::config::Secret;
use serde::Deserialize;
use slog::Logger;
use tokio::sync::Semaphore;

/// `AUTH_SMTP_*` and `AUTH_MAIL_*` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    /// The SMTP server; without it mail goes to the outbox folder.
    pub smtp_host: Option<String>,
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// `starttls` (default), `tls` (implicit TLS, port 465) or `none` (local only).
    #[serde(default = "default_smtp_security")]
    pub smtp_security: String,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// The sender, e.g. `PeerMesh <no-reply@example.com>`.
    #[serde(default = "default_mail_from")]
    pub mail_from: String,
    /// Where mail goes without an SMTP server.
    #[serde(default = "default_outbox")]
    pub mail_outbox_dir: String,
    /// Attempts per message before it is given up (and logged).
    #[serde(default = "default_attempts")]
    pub mail_max_attempts: u32,
    /// First retry delay; each later one doubles, up to 5 minutes.
    #[serde(default = "default_retry_ms")]
    pub mail_retry_base_ms: u64,
    /// Messages waiting to be sent at most; more are dropped (and logged).
    #[serde(default = "default_queue")]
    pub mail_queue_capacity: usize,
    /// Per SMTP attempt.
    #[serde(default = "default_smtp_timeout")]
    pub smtp_timeout_secs: u64,
}

fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_security() -> String {
    "starttls".into()
}
fn default_mail_from() -> String {
    "PeerMesh <no-reply@localhost>".into()
}
fn default_outbox() -> String {
    "data/outbox".into()
}
fn default_attempts() -> u32 {
    6
}
fn default_retry_ms() -> u64 {
    2000
}
fn default_queue() -> usize {
    1000
}
fn default_smtp_timeout() -> u64 {
    15
}

/// One message: plain text, to one person.
#[derive(Debug, Clone)]
pub struct Mail {
    /// What it is, for logs (`verify_email`, `password_reset`).
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Arc<Transport>,
    from: Mailbox,
    slots: Arc<Semaphore>,
    max_attempts: u32,
    retry_base: Duration,
    logger: Logger,
}

impl Mailer {
    pub fn new(settings: &MailSettings, logger: Logger) -> Result<Self, String> {
        let from: Mailbox = settings
            .mail_from
            .parse()
            .map_err(|e| format!("AUTH_MAIL_FROM: {e}"))?;
        // An empty value (e.g. `AUTH_SMTP_HOST=` from a compose file) means unset.
        let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let transport = match set(&settings.smtp_host) {
            Some(host) => {
                let host = host.as_str();
                let tls = |host: &str| {
                    TlsParameters::new(host.to_owned()).map_err(|e| format!("AUTH_SMTP_HOST: {e}"))
                };
                let security = match settings.smtp_security.as_str() {
                    "starttls" => Tls::Required(tls(host)?),
                    "tls" => Tls::Wrapper(tls(host)?),
                    "none" => Tls::None,
                    other => {
                        return Err(format!(
                            "AUTH_SMTP_SECURITY must be starttls, tls or none, not {other:?}"
                        ))
                    }
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(settings.smtp_port)
                    .tls(security)
                    .timeout(Some(Duration::from_secs(settings.smtp_timeout_secs)));
                if let (Some(user), Some(password)) = (
                    set(&settings.smtp_username),
                    settings
                        .smtp_password
                        .as_ref()
                        .filter(|p| !p.expose().is_empty()),
                ) {
                    builder =
                        builder.credentials(Credentials::new(user, password.expose().to_owned()));
                }
                slog::info!(logger, "mail goes out over SMTP";
                    "host" => host, "port" => settings.smtp_port, "security" => &settings.smtp_security);
                Transport::Smtp(builder.build())
            }
            None => {
                let dir = PathBuf::from(&settings.mail_outbox_dir);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("AUTH_MAIL_OUTBOX_DIR {}: {e}", dir.display()))?;
                let shown = dir.canonicalize().unwrap_or_else(|_| dir.clone());
                slog::info!(logger, "no SMTP server configured: mail is written to the outbox folder";
                    "outbox" => shown.display().to_string());
                Transport::Outbox(dir)
            }
        };
        Ok(Self {
            transport: Arc::new(transport),
            from,
            slots: Arc::new(Semaphore::new(settings.mail_queue_capacity.max(1))),
            max_attempts: settings.mail_max_attempts.max(1),
            retry_base: Duration::from_millis(settings.mail_retry_base_ms.max(1)),
            logger,
        })
    }

    /// Queues `mail` and returns at once; it is sent (and retried) in the background.
    pub fn send(&self, mail: Mail) {
        let domain = mail.to.rsplit('@').next().unwrap_or_default().to_owned();
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            slog::error!(self.logger, "mail queue full; message dropped";
                "kind" => mail.kind, "to_domain" => domain);
            return;
        };
        let message = match self.build(&mail) {
            Ok(m) => m,
            Err(e) => {
                slog::error!(self.logger, "mail could not be built";
                    "kind" => mail.kind, "to_domain" => domain, "error" => e);
                return;
            }
        };
        let this = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut delay = this.retry_base;
            for attempt in 1..=this.max_attempts {
                match this.deliver(&message).await {
                    Ok(()) => {
                        slog::info!(this.logger, "mail sent";
                            "kind" => mail.kind, "to_domain" => &domain, "attempt" => attempt);
                        return;
                    }
                    Err(e) if attempt < this.max_attempts => {
                        slog::warn!(this.logger, "mail not sent; will retry";
                            "kind" => mail.kind, "to_domain" => &domain, "attempt" => attempt,
                            "retry_in_ms" => delay.as_millis() as u64, "error" => e);
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(300));
                    }
                    Err(e) => {
                        slog::error!(this.logger, "mail given up";
                            "kind" => mail.kind, "to_domain" => &domain, "attempts" => attempt, "error" => e);
                    }
                }
            }
        });
    }

    fn build(&self, mail: &Mail) -> Result<Message, String> {
        let to: Mailbox = mail.to.parse().map_err(|e| format!("recipient: {e}"))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
            .map_err(|e| e.to_string())
    }

    /// One attempt. SMTP errors are described without the message itself.
    async fn deliver(&self, message: &Message) -> Result<(), String> {
        match &*self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message.clone())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Transport::Outbox(dir) => {
                let name = format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
                    uuid::Uuid::now_v7().simple()
                );
                tokio::fs::write(dir.join(name), message.formatted())
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}
