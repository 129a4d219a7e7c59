//! The gateway as compose and Kubernetes run it: upstreams found by name through a DNS
//! resolver and re-resolved while running, so replicas that are added or removed are
//! balanced without restarting nginx. Replicas live on 127.0.0.2, 127.0.0.3, … (all
//! loopback) on one port, as containers of one service share a port on their own
//! addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use peermesh_test_stack::spawn::{jwks_url, spawn_auth, Spawned, Verifier};
use peermesh_test_support::dns::DnsServer;
use peermesh_test_support::gateway::{Gateway, Upstreams};
use peermesh_test_support::metrics::scrape;
use peermesh_test_support::TestClient;

const CONTENT: &str = "content.peermesh.test";

/// How often the gateway re-resolves (`valid=` in upstreams-dns.conf.template) plus a margin.
const RERESOLVE: Duration = Duration::from_secs(6);

fn replica_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

async fn replica(jwks: &str, n: u8, port: u16, database_url: Option<&str>) -> Spawned {
    let mut settings = vec![
        ("HOST", replica_ip(n).to_string()),
        ("PORT", port.to_string()),
    ];
    if let Some(url) = database_url {
        settings.push(("DATABASE_URL", url.to_owned()));
    }
    Verifier::Content.spawn(jwks, &settings).await
}

/// Readiness requests replica `n` has answered (the gateway maps
/// `/api/v1/content/ready` to the service's `/ready`).
async fn served(n: u8, port: u16) -> f64 {
    let client = TestClient::new(format!("http://{}:{port}", replica_ip(n)));
    scrape(&client)
        .await
        .value(
            "peermesh_http_requests_total",
            &[("route", "/ready"), ("status", "200")],
        )
        .unwrap_or(0.0)
}

async fn through_gateway(client: &TestClient, times: usize) {
    for _ in 0..times {
        let resp = client.get("/api/v1/content/ready").await;
        assert_eq!(resp.status(), 200);
    }
}

#[actix_web::test]
async fn the_gateway_balances_over_replicas_found_by_dns_and_follows_them_as_they_change() {
    let dns = DnsServer::start();
    let auth = spawn_auth(&[]).await;
    let jwks = jwks_url(&auth);
    dns.set("auth.peermesh.test", &[Ipv4Addr::LOCALHOST]);

    let port = TcpListener::bind((replica_ip(2), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let first = replica(&jwks, 2, port, None).await;
    let shared = first.db.url().to_owned();
    let second = replica(&jwks, 3, port, Some(&shared)).await;
    dns.set(CONTENT, &[replica_ip(2), replica_ip(3)]);

    let gateway = Gateway::start_resolving(
        &Upstreams {
            auth: format!("auth.peermesh.test:{}", auth.port),
            ingest: "ingest.peermesh.test:9".into(),
            content: format!("{CONTENT}:{port}"),
        },
        dns.addr,
    );
    let client = TestClient::new(gateway.base_url());

    // Two replicas: both take requests.
    through_gateway(&client, 40).await;
    let (a, b) = (served(2, port).await, served(3, port).await);
    assert_eq!(a + b, 40.0);
    assert!(a > 0.0 && b > 0.0, "not balanced: {a} and {b}");

    // Scale up: a third replica appears in DNS and gets traffic after re-resolution.
    let third = replica(&jwks, 4, port, Some(&shared)).await;
    dns.set(CONTENT, &[replica_ip(2), replica_ip(3), replica_ip(4)]);
    tokio::time::sleep(RERESOLVE).await;
    through_gateway(&client, 40).await;
    assert!(served(4, port).await > 0.0, "the new replica got nothing");

    // Scale down: two replicas leave; every request goes to the one left.
    dns.set(CONTENT, &[replica_ip(4)]);
    first.stop().await;
    second.stop().await;
    tokio::time::sleep(RERESOLVE).await;
    let before = served(4, port).await;
    through_gateway(&client, 20).await;
    assert_eq!(served(4, port).await - before, 20.0);

    // No replica at all: a problem+json 503 from the gateway, not a hang.
    dns.set(CONTENT, &[]);
    third.stop().await;
    tokio::time::sleep(RERESOLVE).await;
    let resp = client.get("/api/v1/content/ready").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}
