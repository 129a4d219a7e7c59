//! Outgoing mail: over SMTP (lettre) when `AUTH_SMTP_HOST` is set, otherwise into a
//! local outbox folder (one `.eml` file per message) for development. A mail is first
//! written to the `mail_outbox` table in the same transaction as the token it carries,
//! so a stop or crash of the service loses none; a sender task in every auth process
//! claims due mails with a lease, delivers them and deletes them, retrying a failed
//! attempt with backoff a bounded number of times. Sending never holds up the request
//! that asked for it. Delivery is at least once: a process killed between delivering
//! and deleting sends that mail again after the lease. Logs name the kind of message
//! and the recipient's domain — never the message, which carries a token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use peermesh_common::config::Secret;
use peermesh_common::health::Readiness;
use peermesh_db::{Db, DbConnection, DbError};
use serde::Deserialize;
use slog::Logger;

use crate::store::mail_outbox::{self, Outgoing};

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
    /// How often an idle sender looks for due mail (new mail wakes it at once).
    #[serde(default = "default_poll_ms")]
    pub mail_poll_ms: u64,
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
fn default_poll_ms() -> u64 {
    1000
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
    capacity: i64,
    max_attempts: u32,
    retry_base: Duration,
    /// Wakes the sender when a mail was queued.
    wakeup: crate::outbox::Wakeup,
    logger: Logger,
    metrics: crate::metrics::AuthMetrics,
}

/// How long a sender holds a claimed mail before another may take it.
const LEASE_SECS: i64 = 120;

impl Mailer {
    pub fn new(
        settings: &MailSettings,
        logger: Logger,
        metrics: crate::metrics::AuthMetrics,
    ) -> Result<Self, String> {
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
            capacity: i64::try_from(settings.mail_queue_capacity.max(1)).unwrap_or(i64::MAX),
            max_attempts: settings.mail_max_attempts.max(1),
            retry_base: Duration::from_millis(settings.mail_retry_base_ms.max(1)),
            wakeup: crate::outbox::Wakeup::every(Duration::from_millis(
                settings.mail_poll_ms.max(10),
            )),
            logger,
            metrics,
        })
    }

    /// Writes `mail` to the outbox, inside the caller's transaction (so it exists
    /// exactly when what it announces does). Call [`Mailer::wake`] after the commit.
    /// Past `AUTH_MAIL_QUEUE_CAPACITY` waiting mails it is dropped and logged.
    pub fn queue(&self, conn: &mut DbConnection, mail: &Mail) -> Result<(), DbError> {
        if mail_outbox::pending(conn)? >= self.capacity {
            self.metrics.mail(mail.kind, "dropped");
            slog::error!(self.logger, "mail queue full; message dropped";
                "kind" => mail.kind, "to_domain" => domain_of(&mail.to));
            return Ok(());
        }
        let now = crate::store::now();
        mail_outbox::insert(
            conn,
            &Outgoing {
                id: uuid::Uuid::now_v7().to_string(),
                kind: mail.kind.to_owned(),
                recipient: mail.to.clone(),
                subject: mail.subject.clone(),
                body: mail.text.clone(),
                attempts: 0,
                next_attempt_at: now,
                lease_until: None,
                last_error: None,
                created_at: now,
            },
        )
    }

    /// Tells the sender that mail is waiting.
    pub fn wake(&self) {
        self.wakeup.wake();
    }

    /// The sender: until the process drains, claims due mail and delivers it.
    pub fn start(&self, db: Db, readiness: Readiness) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        self.wakeup.spawn(readiness, move || {
            let (this, db) = (this.clone(), db.clone());
            async move { this.send_due(&db).await }
        })
    }

    /// One round: claims and delivers up to a batch of due mails; how many it tried.
    async fn send_due(&self, db: &Db) -> usize {
        if !db.read(mail_outbox::any_due).await.unwrap_or(true) {
            return 0;
        }
        let lease = TimeDelta::seconds(LEASE_SECS);
        let claimed = match db
            .write(move |conn| mail_outbox::claim(conn, lease, 10))
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                slog::warn!(self.logger, "reading the mail outbox failed"; "error" => e.to_string());
                return 0;
            }
        };
        for mail in &claimed {
            self.deliver_one(db, mail).await;
        }
        claimed.len()
    }

    async fn deliver_one(&self, db: &Db, mail: &Outgoing) {
        let domain = domain_of(&mail.recipient);
        let attempt = u32::try_from(mail.attempts).unwrap_or(u32::MAX);
        let outcome = match self.build(mail) {
            Ok(message) => self.deliver(&message).await,
            Err(e) => Err(e),
        };
        let id = mail.id.clone();
        let recorded = match outcome {
            Ok(()) => {
                self.metrics.mail(&mail.kind, "sent");
                slog::info!(self.logger, "mail sent";
                    "kind" => &mail.kind, "to_domain" => domain, "attempt" => attempt);
                db.write(move |conn| mail_outbox::remove(conn, &id)).await
            }
            Err(e) if attempt < self.max_attempts => {
                self.metrics.mail(&mail.kind, "retrying");
                let delay = self
                    .retry_base
                    .saturating_mul(1 << attempt.saturating_sub(1).min(16))
                    .min(Duration::from_secs(300));
                slog::warn!(self.logger, "mail not sent; will retry";
                    "kind" => &mail.kind, "to_domain" => domain, "attempt" => attempt,
                    "retry_in_ms" => delay.as_millis() as u64, "error" => &e);
                let delay = TimeDelta::from_std(delay).unwrap_or(TimeDelta::seconds(300));
                db.write(move |conn| mail_outbox::retry_later(conn, &id, &e, delay))
                    .await
            }
            Err(e) => {
                self.metrics.mail(&mail.kind, "failed");
                slog::error!(self.logger, "mail given up";
                    "kind" => &mail.kind, "to_domain" => domain, "attempts" => attempt, "error" => e);
                db.write(move |conn| mail_outbox::remove(conn, &id)).await
            }
        };
        if let Err(e) = recorded {
            // The lease lapses and the mail is tried again.
            slog::warn!(self.logger, "recording a mail's outcome failed"; "error" => e.to_string());
        }
    }

    fn build(&self, mail: &Outgoing) -> Result<Message, String> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| format!("recipient: {e}"))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
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

fn domain_of(address: &str) -> &str {
    address.rsplit('@').next().unwrap_or_default()
}
