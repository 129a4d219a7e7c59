//! Requests to addresses users chose (URL imports, feeds, callbacks, webhooks) without
//! becoming a way into our own network (SSRF): only http and https; every name is
//! resolved by our resolver, which drops loopback, private, link-local, multicast and
//! other special addresses — and reqwest connects only to the addresses it returns, so
//! a name that re-resolves elsewhere (DNS rebinding) gains nothing; IP literals are
//! checked the same way. Also the signature such requests carry.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use sha2::Sha256;

use crate::config::Networks;

/// Whether an address may be fetched from when private networks are not allowed.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // IPv4-compatible ::a.b.c.d (deprecated; some stacks still route it to IPv4)
                || s[..6] == [0; 6]
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still private)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] == 0x0000) // Teredo 2001::/32 (tunnels to IPv4)
                || s[0] == 0x2002 // 6to4 2002::/16 (embeds any IPv4 address)
                || (s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only 100::/64
                // NAT64, well-known 64:ff9b::/96 and local-use 64:ff9b:1::/48: both
                // translate to IPv4 addresses, private ones included
                || (s[0] == 0x0064 && s[1] == 0xff9b))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240) // reserved
}

/// Which addresses fetches may reach: public ones and the networks an operator allows
/// (`INGEST_FETCH_ALLOWED_NETWORKS`, e.g. an intranet wiki), or any at all
/// (`INGEST_ALLOW_PRIVATE_NETWORKS`: local development and tests only).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    pub allow_private: bool,
    pub allowed: Networks,
}

impl AddressPolicy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.allowed.contains(ip)
    }
}

/// The resolver's refusal: the name has no address the policy permits.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no address that may be fetched")]
pub struct NoAllowedAddress(pub String);

/// Resolves names and keeps only the addresses the policy allows.
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(NoAllowedAddress(host)) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A client that connects only where `policy` permits, never through a proxy and
/// never following redirects (a caller that follows them checks each hop).
pub fn guarded_client(
    policy: Arc<AddressPolicy>,
    user_agent: &str,
    timeout: Option<Duration>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment (HTTP_PROXY, ALL_PROXY…) would resolve and
        // connect for us, past the resolver: never use one.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(policy)))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(user_agent);
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Checks a URL before connecting: scheme, no credentials, and IP literals (names are
/// checked by the resolver when connecting).
pub fn check_url(policy: &AddressPolicy, raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https URLs can be fetched".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("URLs with credentials are not fetched".into());
    }
    let literal = match url.host() {
        None => return Err("the URL has no host".into()),
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = literal {
        if !policy.permits(ip) {
            return Err(format!("{ip} is not a public address"));
        }
    }
    Ok(url)
}

pub const SIGNATURE_HEADER: &str = "x-peermesh-signature";
pub const TIMESTAMP_HEADER: &str = "x-peermesh-timestamp";

/// The signature of a request we send to a user's URL: `sha256=<hex>` of
/// HMAC-SHA256(secret, `"<timestamp>.<body>"`), so the receiver can tell it came from us.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error case cannot happen.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={:x}", mac.finalize().into_bytes())
}
