//! A service run as its real binary in a child process, so a test can kill it the
//! hard way (SIGKILL: no drain, no destructors) and start it again on the same data.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::TestClient;

pub struct ServiceProcess {
    child: Child,
    pub port: u16,
    pub client: TestClient,
    /// Where its JSON log goes (stdout and stderr), for a failing test to show.
    pub log: std::path::PathBuf,
    _log_dir: tempfile::TempDir,
}

impl ServiceProcess {
    /// Starts `binary` with `env` (full names, e.g. `AUTH_DATABASE_URL`) on a free port
    /// given as `{prefix}PORT`, and waits until `/health` answers.
    pub async fn start(binary: &str, prefix: &str, env: &[(String, String)]) -> Self {
        let port = crate::free_port();
        let log_dir = tempfile::tempdir().expect("log dir");
        let log = log_dir.path().join("service.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(binary)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(format!("{prefix}PORT"), port.to_string())
            .env(format!("{prefix}HOST"), "127.0.0.1")
            .env("LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        let mut process = Self {
            child,
            port,
            client: TestClient::new(format!("http://127.0.0.1:{port}")),
            log,
            _log_dir: log_dir,
        };
        process.await_health().await;
        process
    }

    async fn await_health(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the service exited ({status}):\n{}", self.log_text());
            }
            if let Ok(resp) = reqwest::get(self.client.url("/health")).await {
                if resp.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service never became healthy:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
