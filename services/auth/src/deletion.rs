//! Deleted accounts erased everywhere: the services that keep a user's data
//! (`AUTH_ACCOUNT_SERVICES`) are each asked to erase it, `DELETE <base>/accounts/{id}`
//! with this service's own token (scope `accounts:delete`), until each confirms. What
//! is still to ask is a row of `account_deletions`, written in the transaction that
//! deletes the account, so a stop or crash loses nothing; a sender task in every auth
//! process claims due rows with a lease and retries a failure with backoff (at most an
//! hour apart), never giving up. Erasing is idempotent, so asking twice is harmless.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use peermesh_common::auth::SCOPE_DELETE_ACCOUNTS;
use peermesh_common::health::Readiness;
use peermesh_db::{Db, DbConnection, DbError};
use serde::Deserialize;
use slog::Logger;

use crate::store::deletions::{self, Deletion};
use crate::tokens::{AccessGrant, TokenIssuer};

/// `AUTH_ACCOUNT_*` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct DeletionSettings {
    /// The services that keep users' data, as `name=base URL` pairs, comma separated
    /// (`content=http://content:8083/api/v1/content,ingest=http://ingestion:8082/api/v1/ingest`).
    #[serde(default)]
    pub account_services: String,
    /// First retry delay; each later one doubles, up to an hour.
    #[serde(default = "default_retry_ms")]
    pub account_deletion_retry_base_ms: u64,
    /// How often an idle sender looks for due deletions (a new one wakes it at once).
    #[serde(default = "default_poll_ms")]
    pub account_deletion_poll_ms: u64,
    /// Per request to a service.
    #[serde(default = "default_timeout")]
    pub account_deletion_timeout_secs: u64,
    /// Deleting an account without its password needs a sign-in at most this old.
    #[serde(default = "default_reauth")]
    pub reauth_window_secs: i64,
}

fn default_retry_ms() -> u64 {
    1000
}
fn default_poll_ms() -> u64 {
    5000
}
fn default_timeout() -> u64 {
    30
}
fn default_reauth() -> i64 {
    300
}

/// One service that keeps users' data.
#[derive(Debug, Clone)]
struct Service {
    name: String,
    /// Without a trailing slash.
    base: String,
}

/// Parses `AUTH_ACCOUNT_SERVICES`.
fn services(value: &str) -> Result<Vec<Service>, String> {
    let mut services: Vec<Service> = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: &str| format!("AUTH_ACCOUNT_SERVICES: {pair:?} {why}");
        let (name, base) = pair.split_once('=').ok_or_else(|| bad("is not name=URL"))?;
        let name = name.trim();
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(bad("needs a name of 1 to 32 of a-z 0-9 - _"));
        }
        if services.iter().any(|s| s.name == name) {
            return Err(bad("names a service twice"));
        }
        let base = url::Url::parse(base.trim().trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| bad("needs an http(s) URL"))?;
        services.push(Service {
            name: name.to_owned(),
            base: base.as_str().trim_end_matches('/').to_owned(),
        });
    }
    Ok(services)
}

/// How long a sender holds a claimed deletion before another may take it.
const LEASE_SECS: i64 = 120;
/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// The subject of this service's own token.
const SUBJECT: &str = "auth";

#[derive(Clone)]
pub struct AccountEraser {
    services: Arc<Vec<Service>>,
    http: reqwest::Client,
    issuer: Arc<TokenIssuer>,
    retry_base: Duration,
    wakeup: crate::outbox::Wakeup,
    logger: Logger,
}

impl AccountEraser {
    pub fn new(
        settings: &DeletionSettings,
        issuer: Arc<TokenIssuer>,
        logger: Logger,
    ) -> Result<Self, String> {
        let services = services(&settings.account_services)?;
        if services.is_empty() {
            slog::warn!(logger, "AUTH_ACCOUNT_SERVICES is empty: a deleted account's data in other services is not erased");
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(
                settings.account_deletion_timeout_secs.max(1),
            ))
            .build()
            .map_err(|e| format!("account deletion HTTP client: {e}"))?;
        Ok(Self {
            services: Arc::new(services),
            http,
            issuer,
            retry_base: Duration::from_millis(settings.account_deletion_retry_base_ms.max(1)),
            wakeup: crate::outbox::Wakeup::every(Duration::from_millis(
                settings.account_deletion_poll_ms.max(10),
            )),
            logger,
        })
    }

    /// Records, inside the caller's transaction (the one deleting the account), that
    /// every service must erase `user_id`; the services' names. Call
    /// [`AccountEraser::wake`] after the commit.
    pub fn queue(&self, conn: &mut DbConnection, user_id: &str) -> Result<Vec<String>, DbError> {
        let names = self.names();
        let rows: Vec<Deletion> = names
            .iter()
            .map(|service| Deletion::new(user_id, service))
            .collect();
        deletions::insert(conn, &rows)?;
        Ok(names)
    }

    /// The configured services' names.
    fn names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.name.clone()).collect()
    }

    pub fn wake(&self) {
        self.wakeup.wake();
    }

    /// The sender: until the process drains, claims due deletions and asks for them.
    pub fn start(&self, db: Db, readiness: Readiness) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        self.wakeup.spawn(readiness, move || {
            let (this, db) = (this.clone(), db.clone());
            async move { this.erase_due(&db).await }
        })
    }

    /// One round: claims up to a batch of due deletions and asks the services; how
    /// many it tried.
    async fn erase_due(&self, db: &Db) -> usize {
        let names = self.names();
        if names.is_empty() {
            return 0;
        }
        let due_names = names.clone();
        if !db
            .read(move |conn| deletions::any_due(conn, &due_names))
            .await
            .unwrap_or(true)
        {
            return 0;
        }
        let lease = TimeDelta::seconds(LEASE_SECS);
        let claimed = match db
            .write(move |conn| deletions::claim(conn, &names, lease, 10))
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                slog::warn!(self.logger, "reading the account deletions failed"; "error" => e.to_string());
                return 0;
            }
        };
        if claimed.is_empty() {
            return 0;
        }
        let token = self
            .issuer
            .sign(AccessGrant {
                sub: SUBJECT.to_owned(),
                roles: vec!["service".to_owned()],
                scope: SCOPE_DELETE_ACCOUNTS.to_owned(),
                sid: None,
                act_for: None,
            })
            .await;
        for deletion in &claimed {
            let outcome = match &token {
                Ok(token) => self.ask(deletion, token).await,
                Err(e) => Err(format!("signing this service's token: {e}")),
            };
            self.record(db, deletion, outcome).await;
        }
        claimed.len()
    }

    /// `DELETE <base>/accounts/{id}`: done when the service answers 2xx.
    async fn ask(&self, deletion: &Deletion, token: &str) -> Result<(), String> {
        let service = self
            .services
            .iter()
            .find(|s| s.name == deletion.service)
            .ok_or("the service is no longer configured")?;
        let url = format!("{}/accounts/{}", service.base, deletion.user_id);
        let response = self
            .http
            .delete(&url)
            .bearer_auth(token)
            .header(
                "x-request-id",
                format!("account-deletion-{}", deletion.user_id),
            )
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(format!("{url} answered {status}")),
        }
    }

    async fn record(&self, db: &Db, deletion: &Deletion, outcome: Result<(), String>) {
        let (user, service) = (deletion.user_id.clone(), deletion.service.clone());
        let attempt = u32::try_from(deletion.attempts).unwrap_or(u32::MAX);
        let recorded = match outcome {
            Ok(()) => {
                slog::info!(self.logger, "account erased by a service";
                    "user_id" => &user, "service" => &service, "attempt" => attempt);
                db.write(move |conn| deletions::confirm(conn, &user, &service))
                    .await
            }
            Err(error) => {
                let delay = self
                    .retry_base
                    .saturating_mul(1 << attempt.saturating_sub(1).min(20))
                    .min(MAX_DELAY);
                slog::warn!(self.logger, "a service did not erase a deleted account yet; will ask again";
                    "user_id" => &user, "service" => &service, "attempt" => attempt,
                    "retry_in_ms" => delay.as_millis() as u64, "error" => &error);
                let delay = TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(1));
                db.write(move |conn| deletions::retry_later(conn, &user, &service, &error, delay))
                    .await
            }
        };
        if let Err(e) = recorded {
            // The lease lapses and the service is asked again.
            slog::warn!(self.logger, "recording an account deletion's outcome failed"; "error" => e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_services_are_name_url_pairs() {
        let parsed = services(
            " content=http://content:8083/api/v1/content/ , ingest=https://i.example/api/v1/ingest",
        )
        .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].name, "content");
        assert_eq!(
            format!("{}/accounts/x", parsed[0].base),
            "http://content:8083/api/v1/content/accounts/x"
        );
        assert_eq!(parsed[1].base, "https://i.example/api/v1/ingest");
        assert_eq!(services("c=http://a").unwrap()[0].base, "http://a");
        assert!(services("").unwrap().is_empty());
        for bad in [
            "content",
            "=http://a",
            "Content=http://a",
            "c=ftp://a",
            "c=not a url",
            "c=http://a,c=http://b",
        ] {
            assert!(services(bad).is_err(), "{bad}");
        }
    }
}
