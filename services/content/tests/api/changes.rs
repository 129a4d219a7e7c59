//! The change feed: every write of the caller's items, in order, from a cursor on — as
//! pages and as Server-Sent Events.

use std::time::Duration;

use peermesh_test_support::client::assert_problem;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{env, id, item};

fn ops(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!([c["item_id"], c["op"], c["version"]]))
        .collect()
}

#[actix_web::test]
async fn the_change_feed_lists_every_write_in_order_from_a_cursor() {
    let env = env(&[]).await;
    let (alice, bob) = (env.user().await, env.user().await);
    let a = &alice.access_token;
    let empty = env.get("/api/v1/content/changes", a).await;
    assert_eq!(empty, json!({"items": [], "next_cursor": "0"}));

    let first = env.create(a, item("First", "one")).await;
    let second = env.create(a, item("Second", "two")).await;
    let resp = env
        .call(
            Method::PATCH,
            format!("/api/v1/content/{}", id(&first)),
            a,
            Some(json!({"title": "First, renamed"})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = env
        .call(
            Method::DELETE,
            format!("/api/v1/content/{}", id(&second)),
            a,
            None,
        )
        .await;
    assert_eq!(resp.status(), 204);

    let all = env.get("/api/v1/content/changes?since=0", a).await;
    let (f, s) = (id(&first), id(&second));
    assert_eq!(
        ops(&all),
        vec![
            json!([f, "created", 1]),
            json!([s, "created", 1]),
            json!([f, "updated", 2]),
            json!([s, "deleted", 1]),
        ]
    );
    assert_eq!(all["next_cursor"], all["items"][3]["cursor"]);

    // From a cursor: what came after it; page by page with `limit`.
    let after = all["items"][1]["cursor"].as_str().unwrap();
    let rest = env
        .get(&format!("/api/v1/content/changes?since={after}"), a)
        .await;
    assert_eq!(ops(&rest), ops(&all)[2..].to_vec());
    let mut cursor = "0".to_owned();
    let mut paged = Vec::new();
    loop {
        let page = env
            .get(
                &format!("/api/v1/content/changes?since={cursor}&limit=1"),
                a,
            )
            .await;
        if page["items"].as_array().unwrap().is_empty() {
            assert_eq!(
                page["next_cursor"],
                cursor.as_str(),
                "a reader waits where it is"
            );
            break;
        }
        paged.extend(ops(&page));
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(paged, ops(&all));

    // Owners see only their own.
    let theirs = env.get("/api/v1/content/changes", &bob.access_token).await;
    assert_eq!(theirs["items"], json!([]));

    for (query, field) in [
        ("since=x", "since"),
        ("since=-1", "since"),
        ("limit=0", "limit"),
    ] {
        let resp = env
            .call(
                Method::GET,
                format!("/api/v1/content/changes?{query}"),
                a,
                None,
            )
            .await;
        let body = assert_problem(resp, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], field, "{query}");
    }
}

#[actix_web::test]
async fn a_cursor_from_before_what_is_kept_is_gone() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let a = &alice.access_token;
    for i in 0..3 {
        env.create(a, item(&format!("Old {i}"), "x")).await;
    }
    let old = env.get("/api/v1/content/changes", a).await["items"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // What the retention removes after its days, removed now.
    let db =
        peermesh_db::Db::connect(env.content.db.url(), 1, &peermesh_content::MIGRATIONS).unwrap();
    let later = chrono::Utc::now().naive_utc() + chrono::TimeDelta::seconds(1);
    db.write(move |conn| peermesh_content::store::changes::prune(conn, later))
        .await
        .unwrap();
    let kept = env.create(a, item("New", "y")).await;
    let resp = env
        .call(
            Method::GET,
            format!("/api/v1/content/changes?since={old}"),
            a,
            None,
        )
        .await;
    assert_problem(resp, 410, "cursor_expired").await;
    let from_start = env.get("/api/v1/content/changes?since=0", a).await;
    assert_eq!(ops(&from_start), vec![json!([id(&kept), "created", 1])]);
}

/// Reads Server-Sent Events from `resp` until `done` holds for what came (10 s at most).
async fn events_until(mut resp: reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if done(&text) {
                return;
            }
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(10), read).await;
    assert!(
        finished.is_ok(),
        "the stream never sent what was awaited: {text:?}"
    );
    text
}

#[actix_web::test]
async fn the_change_stream_sends_changes_as_they_happen_and_resumes() {
    let env = env(&[("CHANGES_POLL_MS", "50".into())]).await;
    let alice = env.user().await;
    let a = &alice.access_token;
    let before = env.create(a, item("Before", "already there")).await;

    let resp = env
        .request(Method::GET, "/api/v1/content/changes/stream", a)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    // The past first, then what happens while it is open.
    let created = {
        let env = &env;
        let creating = async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            env.create(a, item("While open", "new")).await
        };
        let (text, created) = tokio::join!(
            events_until(resp, |t| t.matches("event: change").count() >= 2),
            creating
        );
        assert!(text.starts_with("retry: "), "{text}");
        let first = text.find(&id(&before)).unwrap();
        let second = text.find(&id(&created)).unwrap();
        assert!(first < second, "{text}");
        created
    };

    // A reconnecting browser sends the last id it saw: only what came after.
    let all = env.get("/api/v1/content/changes", a).await;
    let first_cursor = all["items"][0]["cursor"].as_str().unwrap().to_owned();
    let resp = env
        .request(Method::GET, "/api/v1/content/changes/stream", a)
        .header("Last-Event-ID", &first_cursor)
        .send()
        .await
        .unwrap();
    let text = events_until(resp, |t| t.contains("event: change")).await;
    assert!(
        text.contains(&id(&created)) && !text.contains(&id(&before)),
        "{text}"
    );
}
