//! Fetching a URL on a user's behalf without becoming a way into our own network
//! (SSRF): only http and https; every name is resolved by our resolver, which drops
//! loopback, private, link-local, multicast and other special addresses — and reqwest
//! connects only to the addresses it returns, so a name that re-resolves elsewhere
//! (DNS rebinding) gains nothing; IP literals are checked the same way; redirects are
//! followed by hand, each hop checked again, at most five; the body is streamed into
//! blob storage with the size limit, the whole fetch has a time limit.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::blobs::{BlobError, Blobs, Staged};

pub const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL itself is not acceptable (scheme, private address, …): 422.
    #[error("{0}")]
    Refused(String),
    /// The body is larger than allowed: 413.
    #[error("the document is larger than {0} bytes")]
    TooLarge(u64),
    /// The site could not be reached or answered with an error: 422 (its problem,
    /// not ours; retrying the request may help).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Storage(#[from] std::io::Error),
}

use peermesh_common::outbound::NoAllowedAddress;
pub use peermesh_common::outbound::{is_public, AddressPolicy};

#[derive(Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    policy: Arc<AddressPolicy>,
    timeout: Duration,
}

/// A fetched document, staged for storage.
#[derive(Debug)]
pub struct Fetched {
    pub stored: Staged,
    /// The URL after redirects.
    pub url: String,
    pub content_type: Option<String>,
    /// The last path segment, as a file name hint.
    pub filename: Option<String>,
}

impl Fetcher {
    pub fn new(policy: AddressPolicy, timeout: Duration) -> Result<Self, String> {
        let policy = Arc::new(policy);
        let http = peermesh_common::outbound::guarded_client(
            policy.clone(),
            "PeerMesh-Ingest/1.0 (+https://peermesh.dev)",
            None,
        )?;
        Ok(Self {
            http,
            policy,
            timeout,
        })
    }

    /// Checks a URL before connecting: scheme, and IP literals (names are checked by
    /// the resolver when connecting).
    pub fn check(&self, raw: &str) -> Result<Url, FetchError> {
        peermesh_common::outbound::check_url(&self.policy, raw).map_err(FetchError::Refused)
    }

    /// Fetches `raw` (following up to five checked redirects) into `blobs`, at most
    /// `max` bytes, within the time limit.
    pub async fn fetch(&self, raw: &str, blobs: &Blobs, max: u64) -> Result<Fetched, FetchError> {
        tokio::time::timeout(self.timeout, self.fetch_inner(raw, blobs, max))
            .await
            .map_err(|_| {
                FetchError::Failed(format!(
                    "the site did not answer within {} s",
                    self.timeout.as_secs()
                ))
            })?
    }

    /// GETs `raw` with `headers`, following up to five redirects, each checked.
    /// Returns the final URL and the first non-redirect answer.
    async fn get(
        &self,
        raw: &str,
        headers: &[(reqwest::header::HeaderName, String)],
    ) -> Result<(Url, reqwest::Response), FetchError> {
        let mut url = self.check(raw)?;
        for hop in 0..=MAX_REDIRECTS {
            let mut req = self.http.get(url.clone());
            for (name, value) in headers {
                req = req.header(name, value);
            }
            let resp = req.send().await.map_err(|e| {
                let refused = std::iter::successors(std::error::Error::source(&e), |s| s.source())
                    .find_map(|s| s.downcast_ref::<NoAllowedAddress>());
                match refused {
                    Some(refused) => FetchError::Refused(refused.to_string()),
                    None => FetchError::Failed(format!("fetching {url}: {}", describe(&e))),
                }
            })?;
            let status = resp.status();
            if !status.is_redirection() || status == reqwest::StatusCode::NOT_MODIFIED {
                return Ok((url, resp));
            }
            if hop == MAX_REDIRECTS {
                break;
            }
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    FetchError::Failed(format!("a {status} redirect without Location"))
                })?;
            let next = url
                .join(location)
                .map_err(|e| FetchError::Failed(format!("a redirect to a bad URL: {e}")))?;
            url = self.check(next.as_str())?;
        }
        Err(FetchError::Refused(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    async fn fetch_inner(&self, raw: &str, blobs: &Blobs, max: u64) -> Result<Fetched, FetchError> {
        let (url, resp) = self.get(raw, &[]).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Failed(format!("the site answered {status}")));
        }
        if resp.content_length().is_some_and(|len| len > max) {
            return Err(FetchError::TooLarge(max));
        }
        let content_type = header(&resp, reqwest::header::CONTENT_TYPE)
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned());
        let filename = url
            .path_segments()
            .and_then(|mut s| s.next_back().map(str::to_owned))
            .filter(|s| !s.is_empty());
        let stored = blobs
            .store(resp.bytes_stream(), max)
            .await
            .map_err(|e| match e {
                BlobError::TooLarge(max) => FetchError::TooLarge(max),
                BlobError::Upload(m) => FetchError::Failed(format!("the download broke off: {m}")),
                BlobError::Io(e) => FetchError::Storage(e),
            })?;
        Ok(Fetched {
            stored,
            url: url.to_string(),
            content_type,
            filename,
        })
    }

    /// A conditional GET of a feed into memory (at most `max` bytes): `None` when the
    /// server says it has not changed since `etag` / `last_modified`.
    pub async fn fetch_feed(
        &self,
        raw: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
        max: u64,
    ) -> Result<Option<FeedBody>, FetchError> {
        let mut headers = Vec::new();
        if let Some(etag) = etag {
            headers.push((reqwest::header::IF_NONE_MATCH, etag.to_owned()));
        }
        if let Some(lm) = last_modified {
            headers.push((reqwest::header::IF_MODIFIED_SINCE, lm.to_owned()));
        }
        let work = async {
            let (_, resp) = self.get(raw, &headers).await?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_MODIFIED {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(FetchError::Failed(format!("the feed answered {status}")));
            }
            let etag = header(&resp, reqwest::header::ETAG);
            let last_modified = header(&resp, reqwest::header::LAST_MODIFIED);
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            use futures_util::StreamExt;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk
                    .map_err(|e| FetchError::Failed(format!("the download broke off: {e}")))?;
                if (body.len() + chunk.len()) as u64 > max {
                    return Err(FetchError::TooLarge(max));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(FeedBody {
                bytes: body,
                etag,
                last_modified,
            }))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                FetchError::Failed(format!(
                    "the feed did not answer within {} s",
                    self.timeout.as_secs()
                ))
            })?
    }

    /// POSTs a signed JSON callback to `raw` (checked like any URL; redirects are not
    /// followed). Any 2xx counts as delivered.
    pub async fn post_json(
        &self,
        raw: &str,
        body: &str,
        signature: &str,
        timestamp: i64,
    ) -> Result<(), FetchError> {
        let url = self.check(raw)?;
        let send = peermesh_common::trace::propagate(self.http.post(url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(crate::callbacks::SIGNATURE_HEADER, signature)
            .header(crate::callbacks::TIMESTAMP_HEADER, timestamp.to_string())
            .body(body.to_owned())
            .send();
        let resp = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| FetchError::Failed("the callback did not answer in time".into()))?
            .map_err(|e| FetchError::Failed(describe(&e)))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(FetchError::Failed(format!(
                "the callback answered {}",
                resp.status()
            )))
        }
    }
}

/// A feed document as fetched, with its validators for the next conditional GET.
#[derive(Debug, Clone)]
pub struct FeedBody {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An error with its causes (reqwest hides the resolver's message in the source chain).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn special_addresses_are_not_public() {
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::",
            "198.18.0.1",
            "240.0.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:1",
            "fec0::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
        ] {
            assert!(!is_public(blocked.parse().unwrap()), "{blocked}");
        }
        for open in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "8.8.8.8",
            "2a00:1450:4001::200e",
            "2001:4860:4860::8888",
        ] {
            assert!(is_public(open.parse().unwrap()), "{open}");
        }
    }

    #[test]
    fn urls_are_checked_before_connecting() {
        let strict = Fetcher::new(AddressPolicy::default(), Duration::from_secs(5)).unwrap();
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "http://127.0.0.1/",
            "http://[::1]:8080/",
            "http://169.254.169.254/latest/meta-data",
            "http://user:pw@example.com/",
            "not a url",
            "http://0x7f000001/",
            "http://2130706433/",
        ] {
            assert!(strict.check(bad).is_err(), "{bad}");
        }
        assert!(strict.check("https://example.com/page").is_ok());
        let open = Fetcher::new(
            AddressPolicy {
                allow_private: true,
                ..Default::default()
            },
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(open.check("http://127.0.0.1:8080/").is_ok());
        assert!(open.check("gopher://127.0.0.1/").is_err());
        let intranet = AddressPolicy {
            allow_private: false,
            allowed: "10.1.2.0/24, fd00::7".parse().unwrap(),
        };
        let some = Fetcher::new(intranet, Duration::from_secs(5)).unwrap();
        assert!(some.check("http://10.1.2.200/wiki").is_ok());
        assert!(some.check("http://[fd00::7]/").is_ok());
        assert!(some.check("http://10.1.3.1/").is_err());
        assert!(some.check("http://127.0.0.1/").is_err());
    }

    /// Builds a fetcher with proxy variables pointing at a local listener and fetches
    /// through it: the listener must never be reached. Run in a child process
    /// (`fetches_ignore_proxy_variables`), because reqwest reads those variables once
    /// per process.
    #[test]
    #[ignore = "run by fetches_ignore_proxy_variables in a child process"]
    fn proxy_variables_child() {
        let proxy: SocketAddr = std::env::var("PEERMESH_TEST_PROXY")
            .unwrap()
            .parse()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(proxy).await.unwrap();
            let fetcher = Fetcher::new(
                AddressPolicy {
                    allow_private: true,
                    ..Default::default()
                },
                Duration::from_secs(5),
            )
            .unwrap();
            let dir = tempfile_dir();
            let blobs = Blobs::open(dir.clone()).unwrap();
            let fetched = fetcher
                .fetch("http://peermesh-proxy-test.invalid/", &blobs, 1024)
                .await;
            let _ = std::fs::remove_dir_all(dir);
            assert!(fetched.is_err(), "the name does not resolve: {fetched:?}");
            let reached = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
            assert!(reached.is_err(), "the fetch went through the proxy");
        });
    }

    fn tempfile_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("peermesh-proxy-test-{}", uuid::Uuid::now_v7()))
    }

    #[test]
    fn fetches_ignore_proxy_variables() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy = format!("http://127.0.0.1:{port}");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "fetch::tests::proxy_variables_child",
                "--ignored",
            ])
            .env("PEERMESH_TEST_PROXY", format!("127.0.0.1:{port}"))
            .env("HTTP_PROXY", &proxy)
            .env("http_proxy", &proxy)
            .env("HTTPS_PROXY", &proxy)
            .env("ALL_PROXY", &proxy)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
