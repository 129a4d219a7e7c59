//! A real nginx in front of services on random ports, configured from the same
//! templates as `scripts/run` and the containers (deploy/nginx/).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::workspace_root;

pub struct Gateway {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

/// Upstream addresses (host:port) of the three services.
pub struct Upstreams {
    pub auth: String,
    pub ingest: String,
    pub content: String,
}

pub fn nginx_binary() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!("nginx is not installed: run `apt-get install -y nginx` (see README.md)");
}

/// Replaces `${NAME}` placeholders; a placeholder left over is a bug in the caller.
pub fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    out
}

impl Gateway {
    pub fn start(upstreams: &Upstreams) -> Self {
        Self::start_with(upstreams, &[])
    }

    /// `overrides` replace template values, e.g. `("GATEWAY_AUTH_RATE", "2r/s")`.
    pub fn start_with(upstreams: &Upstreams, overrides: &[(&str, &str)]) -> Self {
        Self::launch(upstreams, None, None, overrides)
    }

    /// On a port chosen beforehand (a service must know the public URL before the
    /// gateway exists, e.g. the OAuth callback).
    pub fn start_on_port(upstreams: &Upstreams, port: u16) -> Self {
        Self::launch(upstreams, None, Some(port), &[])
    }

    /// The gateway as compose and Kubernetes run it: upstream names re-resolved
    /// through the DNS server at `resolver` (deploy/nginx/upstreams-dns.conf.template).
    pub fn start_resolving(upstreams: &Upstreams, resolver: std::net::SocketAddr) -> Self {
        Self::launch(upstreams, Some(resolver), None, &[])
    }

    fn launch(
        upstreams: &Upstreams,
        resolver: Option<std::net::SocketAddr>,
        port: Option<u16>,
        overrides: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("nginx prefix");
        let deploy = workspace_root().join("deploy/nginx");
        let read = |name: &str| {
            std::fs::read_to_string(deploy.join(name))
                .unwrap_or_else(|e| panic!("reading deploy/nginx/{name}: {e}"))
        };
        let port = port.unwrap_or_else(free_port);
        let gateway_conf = dir.path().join("gateway.conf");
        let access_log = dir.path().join("access.log");
        let mut vars = vec![
            ("GATEWAY_LISTEN", format!("127.0.0.1:{port}")),
            ("AUTH_UPSTREAM", upstreams.auth.clone()),
            ("INGEST_UPSTREAM", upstreams.ingest.clone()),
            ("CONTENT_UPSTREAM", upstreams.content.clone()),
            ("GATEWAY_BODY_LIMIT", "10m".into()),
            ("GATEWAY_UPLOAD_LIMIT", "101m".into()),
            ("GATEWAY_ACCESS_LOG", access_log.display().to_string()),
            ("GATEWAY_AUTH_RATE", "10r/s".into()),
            ("GATEWAY_AUTH_BURST", "20".into()),
            (
                "GATEWAY_RESOLVER",
                resolver.map(|r| r.to_string()).unwrap_or_default(),
            ),
        ];
        for (name, value) in overrides {
            if let Some(slot) = vars.iter_mut().find(|(n, _)| n == name) {
                slot.1 = (*value).to_owned();
            }
        }
        // The upstreams (fixed addresses, or names and a resolver), then the routes.
        let upstream_file = if resolver.is_some() {
            "upstreams-dns.conf.template"
        } else {
            "upstreams-static.conf.template"
        };
        let gateway = render(
            &(read(upstream_file) + &read("gateway.conf.template")),
            &vars,
        );
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let main = render(
            &read("nginx.conf.template"),
            &[
                (
                    "NGINX_USER_LINE",
                    if is_root {
                        "user root;".into()
                    } else {
                        String::new()
                    },
                ),
                ("NGINX_PREFIX", dir.path().display().to_string()),
                ("GATEWAY_CONF", gateway_conf.display().to_string()),
                ("NGINX_WORKERS", "1".into()),
            ],
        );
        for (name, text) in [("gateway.conf", &gateway), ("nginx.conf", &main)] {
            assert!(
                !text.contains("${"),
                "unrendered placeholder in {name}:\n{text}"
            );
        }
        std::fs::write(&gateway_conf, gateway).expect("write gateway.conf");
        let main_conf = dir.path().join("nginx.conf");
        std::fs::write(&main_conf, main).expect("write nginx.conf");

        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg("stderr")
            .arg("-c")
            .arg(&main_conf)
            .stdin(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut gw = Self { port, child, dir };
        gw.wait_until_listening();
        gw
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited at start-up: {status}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nginx did not listen on port {} within 10 s", self.port);
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The JSON access-log lines written so far.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("access log line {l:?}: {e}"))
            })
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers too (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
