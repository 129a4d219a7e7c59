//! Real services on random ports, each with a fresh database, in the test's runtime.

use peermesh_common::server::Application;

use peermesh_test_support::auth::{login, unique_email, TestUser, PASSWORD};
use peermesh_test_support::client::TestClient;
use peermesh_test_support::db::TestDb;
use peermesh_test_support::gateway::{Gateway, Upstreams};
use peermesh_test_support::keys;

/// A running service: its port, a client for it and its database.
pub struct Spawned {
    pub port: u16,
    pub client: TestClient,
    pub db: TestDb,
    pub handle: actix_web::dev::ServerHandle,
}

impl Spawned {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the service (e.g. to test what happens when it is down).
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }

    /// Stops the service and hands back its database, to start it again.
    pub async fn stop_keep_db(self) -> TestDb {
        self.handle.stop(false).await;
        self.db
    }
}

fn vars(prefix: &str, db: &TestDb, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut vars = vec![
        (format!("{prefix}PORT"), "0".to_owned()),
        (format!("{prefix}DATABASE_URL"), db.url().to_owned()),
        (format!("{prefix}WORKERS"), "1".to_owned()),
        (format!("{prefix}DB_POOL_SIZE"), "4".to_owned()),
    ];
    // A setting given in `extra` replaces the default (e.g. DATABASE_URL, to start a
    // second replica on the first one's database).
    vars.retain(|(k, _)| !extra.iter().any(|(e, _)| format!("{prefix}{e}") == *k));
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v.clone())),
    );
    vars
}

fn started(app: Application, db: TestDb) -> Spawned {
    peermesh_test_support::contract::install();
    let port = app.port();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    Spawned {
        port,
        client: TestClient::new(format!("http://127.0.0.1:{port}")),
        db,
        handle,
    }
}

/// The auth service, signing with the shared test RSA key; `extra` are `AUTH_*`
/// settings without the prefix.
pub async fn spawn_auth(extra: &[(&str, String)]) -> Spawned {
    spawn_auth_on(TestDb::new("auth"), extra).await
}

/// Auth signing in with Google (`google`, a local OpenID provider) behind a real
/// gateway on a free port, whose URL is also the public base of the callbacks; `app`
/// is the one allowed redirect URI. Returns the service, the gateway and that URL.
pub async fn google_sign_in_behind_gateway(
    google: &peermesh_test_support::providers::FakeProvider,
    app: &str,
) -> (Spawned, Gateway, String) {
    use peermesh_test_support::providers::{CLIENT_ID, CLIENT_SECRET};
    let port = peermesh_test_support::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let auth = spawn_auth(&[
        ("OAUTH_CALLBACK_BASE_URL", public.clone()),
        ("OAUTH_REDIRECT_ALLOWLIST", app.to_owned()),
        ("GOOGLE_CLIENT_ID", CLIENT_ID.into()),
        ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("GOOGLE_ISSUER_URL", google.base.clone()),
    ])
    .await;
    let gateway = Gateway::start_on_port(
        &Upstreams {
            auth: auth.addr(),
            ingest: "127.0.0.1:9".into(),
            content: "127.0.0.1:9".into(),
        },
        port,
    );
    (auth, gateway, public)
}

/// The auth service on an existing database (e.g. to restart it with other settings).
pub async fn spawn_auth_on(db: TestDb, extra: &[(&str, String)]) -> Spawned {
    let mut all = vec![
        (
            "SIGNING_KEY_FILE",
            keys::rsa_key().path.display().to_string(),
        ),
        // Without an SMTP server mail goes to an outbox folder: keep it out of the tree.
        (
            "MAIL_OUTBOX_DIR",
            peermesh_test_support::mail::test_outbox()
                .display()
                .to_string(),
        ),
    ];
    all.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    all.extend(extra.iter().cloned());
    let settings =
        peermesh_common::config::load::<peermesh_auth::Settings>(vars("AUTH_", &db, &all))
            .expect("auth settings");
    let app = peermesh_auth::build(settings, peermesh_test_support::logs::logger("auth"))
        .await
        .expect("auth starts");
    started(app, db)
}

/// The services that verify access tokens against the auth service's JWKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verifier {
    Content,
    Ingestion,
}

impl Verifier {
    pub fn name(self) -> &'static str {
        match self {
            Verifier::Content => peermesh_content::SERVICE,
            Verifier::Ingestion => peermesh_ingestion::SERVICE,
        }
    }

    pub fn path_prefix(self) -> &'static str {
        match self {
            Verifier::Content => peermesh_content::PREFIX,
            Verifier::Ingestion => peermesh_ingestion::PREFIX,
        }
    }

    fn env_prefix(self) -> &'static str {
        match self {
            Verifier::Content => "CONTENT_",
            Verifier::Ingestion => "INGEST_",
        }
    }

    /// Starts the service validating tokens against `jwks_url`; `extra` are its
    /// settings without the prefix.
    pub async fn spawn(self, jwks_url: &str, extra: &[(&str, String)]) -> Spawned {
        self.try_spawn(jwks_url, extra)
            .await
            .expect("service starts")
    }

    /// [`Verifier::spawn`], or why the service refused to start.
    pub async fn try_spawn(
        self,
        jwks_url: &str,
        extra: &[(&str, String)],
    ) -> Result<Spawned, String> {
        let db = TestDb::new(self.name());
        let mut all = vec![("JWKS_URL", jwks_url.to_owned())];
        if self == Verifier::Content {
            // Export archives and imports being read, outside the tree.
            let exports = std::env::temp_dir().join("peermesh-test-exports");
            all.push(("EXPORT_DIR", exports.display().to_string()));
        }
        if self == Verifier::Ingestion {
            // Blobs are content-addressed, so tests may share one folder outside the tree.
            let blobs = std::env::temp_dir().join("peermesh-test-blobs");
            all.push(("BLOB_DIR", blobs.display().to_string()));
            // In-process, this binary is the test harness: files are read by the real
            // service binary's parser child.
            all.push((
                "PARSER_BIN",
                peermesh_test_support::service_binary("peermesh-ingestion")
                    .display()
                    .to_string(),
            ));
        }
        all.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        all.extend(extra.iter().cloned());
        let vars = vars(self.env_prefix(), &db, &all);
        let logger = peermesh_test_support::logs::logger(match self {
            Verifier::Content => "content",
            Verifier::Ingestion => "ingestion",
        });
        let app = match self {
            Verifier::Content => {
                let settings = peermesh_common::config::load::<peermesh_content::Settings>(vars)
                    .expect("settings");
                peermesh_content::build(settings, logger).await
            }
            Verifier::Ingestion => {
                let settings = peermesh_common::config::load::<peermesh_ingestion::Settings>(vars)
                    .expect("settings");
                peermesh_ingestion::build(settings, logger).await
            }
        };
        Ok(started(app.map_err(|e| e.to_string())?, db))
    }
}

pub fn jwks_url(auth: &Spawned) -> String {
    auth.client.url("/api/v1/auth/.well-known/jwks.json")
}

/// The whole system: three services behind a real nginx.
pub struct Stack {
    pub auth: Spawned,
    pub ingestion: Spawned,
    pub content: Spawned,
    pub gateway: Gateway,
    pub client: TestClient,
}

pub async fn spawn_stack() -> Stack {
    let auth = spawn_auth(&[]).await;
    let jwks = jwks_url(&auth);
    let content = Verifier::Content.spawn(&jwks, &[]).await;
    let ingestion = Verifier::Ingestion.spawn(&jwks, &[]).await;
    let gateway = Gateway::start(&Upstreams {
        auth: auth.addr(),
        ingest: ingestion.addr(),
        content: content.addr(),
    });
    let client = TestClient::new(gateway.base_url());
    Stack {
        auth,
        ingestion,
        content,
        gateway,
        client,
    }
}

/// An auth service with an administrator, made the supported way for a first admin:
/// `AUTH_BOOTSTRAP_ADMIN_EMAIL` with `AUTH_BOOTSTRAP_ADMIN_PASSWORD_FILE`.
pub async fn auth_with_admin(extra: &[(&str, String)]) -> (Spawned, TestUser) {
    let email = unique_email("admin");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("admin-password");
    std::fs::write(&file, format!("{}\n", PASSWORD)).expect("password file");
    let mut settings = extra.to_vec();
    settings.push(("BOOTSTRAP_ADMIN_EMAIL", email.clone()));
    settings.push(("BOOTSTRAP_ADMIN_PASSWORD_FILE", file.display().to_string()));
    // The file is read at start-up only.
    let app = spawn_auth(&settings).await;
    let admin = login(&app.client, &email, PASSWORD).await;
    (app, admin)
}
