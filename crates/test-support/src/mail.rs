//! Reading the mails the auth service sends (over SMTP or into its outbox folder):
//! headers, the body with quoted-printable undone, the token of a link.

use std::path::Path;
use std::time::Duration;

/// One message as it went out (RFC 5322 text).
#[derive(Debug, Clone)]
pub struct Mail {
    pub raw: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.raw
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }

    /// The body, with quoted-printable undone.
    pub fn body(&self) -> String {
        let body = self
            .raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let qp = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if !qp {
            return body.to_owned();
        }
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).expect("UTF-8 mail body")
    }

    /// The token of the link to `{app_url}{path}?token=`.
    pub fn token(&self, app_url: &str, path: &str) -> String {
        let body = self.body();
        let start = format!("{app_url}{path}?token=");
        let at = body
            .find(&start)
            .unwrap_or_else(|| panic!("no {start} link in {body}"));
        body[at + start.len()..]
            .split_whitespace()
            .next()
            .expect("token")
            .to_owned()
    }
}

/// The mails in an outbox folder addressed to `to`, oldest first.
pub fn outbox_mails(dir: &Path, to: &str) -> Vec<Mail> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|raw| Mail { raw })
        .filter(|m| m.header("To").is_some_and(|h| h.contains(to)))
        .collect()
}

/// Waits (up to 10 s) for the `n`th mail (1-based) to `to` in the outbox folder.
pub async fn await_outbox_mail(dir: &Path, to: &str, n: usize) -> Mail {
    for _ in 0..500 {
        if let Some(mail) = outbox_mails(dir, to).into_iter().nth(n - 1) {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no mail #{n} to {to} in {}", dir.display())
}

/// The outbox folder the auth services of tests write their mail to (shared: tests
/// tell their mails apart by unique recipients).
pub fn test_outbox() -> std::path::PathBuf {
    std::env::temp_dir().join("peermesh-test-outbox")
}
