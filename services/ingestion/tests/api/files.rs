//! Uploads through a real stack: auth (tokens, the ingestion service's own client
//! credentials), content (where the items land) and ingestion with its workers.

use std::time::Duration;

use peermesh_test_stack::spawn::auth_with_admin;
use peermesh_test_stack::spawn::{jwks_url, Spawned, Verifier};
use peermesh_test_support::auth::{register, unique_email, DeclaredClient, TestUser};
use peermesh_test_support::client::assert_problem;
use peermesh_test_support::free_port;
use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::Value;

pub struct Env {
    pub auth: Spawned,
    pub content: Option<Spawned>,
    pub ingest: Spawned,
    pub user: TestUser,
    /// The auth service's bootstrap administrator.
    pub admin: TestUser,
    /// The ingestion settings the stack was started with.
    pub settings: std::collections::HashMap<&'static str, String>,
    /// The auth settings (without the bootstrap admin's), to start it again.
    pub auth_settings: Vec<(&'static str, String)>,
    pub content_port: u16,
}

/// The stack; `content_port` starts the content service on that port (or none, when
/// the test brings it up later), `extra` are `INGEST_*` settings. Auth asks content
/// and ingestion to erase deleted accounts, as `scripts/run` and compose set it up.
pub async fn stack(
    content_port: Option<u16>,
    start_content: bool,
    extra: &[(&'static str, String)],
) -> Env {
    // This service's client, declared by the operator as in scripts/run and compose.
    let client = DeclaredClient::new(&["content:write", "content:act_as"]);
    let port = content_port.unwrap_or_else(free_port);
    let ingest_port = free_port();
    let auth_settings = vec![
        client.setting(),
        (
            "ACCOUNT_SERVICES",
            format!(
                "content=http://127.0.0.1:{port}/api/v1/content,\
                 ingest=http://127.0.0.1:{ingest_port}/api/v1/ingest"
            ),
        ),
        ("ACCOUNT_DELETION_RETRY_BASE_MS", "100".into()),
        ("ACCOUNT_DELETION_POLL_MS", "100".into()),
    ];
    let (auth, admin) = auth_with_admin(&auth_settings).await;
    let jwks = jwks_url(&auth);
    let content = if start_content {
        Some(
            Verifier::Content
                .spawn(
                    &jwks,
                    &[
                        ("PORT", port.to_string()),
                        (
                            "INGEST_URL",
                            format!("http://127.0.0.1:{ingest_port}/api/v1/ingest"),
                        ),
                    ],
                )
                .await,
        )
    } else {
        None
    };
    let (id, secret) = (client.id.clone(), client.secret.clone());
    let mut settings = vec![
        ("PORT", ingest_port.to_string()),
        ("CONTENT_URL", format!("http://127.0.0.1:{port}")),
        ("TOKEN_URL", auth.client.url("/api/v1/auth/token")),
        ("CLIENT_ID", id),
        ("CLIENT_SECRET", secret),
        ("POLL_MS", "50".into()),
        ("RETRY_BASE_MS", "200".into()),
        ("CONTENT_TIMEOUT_SECS", "5".into()),
    ];
    settings.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    settings.extend(extra.iter().cloned());
    let ingest = Verifier::Ingestion.spawn(&jwks, &settings).await;
    let user = register(&auth.client, &unique_email("ingest")).await;
    Env {
        auth,
        content,
        ingest,
        user,
        admin,
        settings: settings.into_iter().collect(),
        auth_settings,
        content_port: port,
    }
}

pub fn file(name: &str, mime: &str, bytes: Vec<u8>) -> Form {
    Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(mime)
            .unwrap(),
    )
}

impl Env {
    pub async fn upload(&self, form: Form) -> reqwest::Response {
        self.upload_with(form, &[]).await
    }

    /// An upload with extra request headers.
    pub async fn upload_with(&self, form: Form, headers: &[(&str, String)]) -> reqwest::Response {
        let mut request = self
            .ingest
            .client
            .request(Method::POST, "/api/v1/ingest/files")
            .bearer_auth(&self.user.access_token)
            .multipart(form);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap()
    }

    pub async fn content_item(&self, id: &str) -> Value {
        let content = self.content.as_ref().expect("content service");
        let resp = content
            .client
            .request(Method::GET, &format!("/api/v1/content/{id}"))
            .bearer_auth(&self.user.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    pub async fn content_get(&self, path: &str) -> Value {
        let content = self.content.as_ref().expect("content service");
        let resp = content
            .client
            .request(Method::GET, path)
            .bearer_auth(&self.user.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    pub async fn job(&self, id: &str) -> Value {
        let resp = self
            .ingest
            .client
            .request(Method::GET, &format!("/api/v1/ingest/jobs/{id}"))
            .bearer_auth(&self.user.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Polls the job (up to 15 s) until `done` holds for it; `what` names the wait.
    pub async fn job_when(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..300 {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {id} never {what}");
    }

    /// Polls until the job is no longer queued or running.
    pub async fn finished(&self, id: &str) -> Value {
        self.job_when(id, "finished", |job| {
            !matches!(job["status"].as_str(), Some("queued" | "running"))
        })
        .await
    }
}

#[actix_web::test]
async fn a_small_file_becomes_a_content_item_at_once_and_only_once() {
    let env = stack(
        None,
        true,
        &[("CHUNK_CHARS", "60".into()), ("CHUNK_OVERLAP", "20".into())],
    )
    .await;
    let markdown = "# Field notes\n\nThe heron waits. It does not move. The reeds sway. A fish jumps. \
                    The heron strikes. Then it flies.\n\nLater the heron flies off over the water, slowly.\n";
    let form = file("notes.md", "text/markdown", markdown.as_bytes().to_vec())
        .text("tags", "birds, Nature")
        .text("title", "Heron log");
    let resp = env.upload(form).await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    let job_id = body["job"]["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/ingest/jobs/{job_id}"));
    assert_eq!(body["job"]["status"], "succeeded");
    assert_eq!(body["job"]["progress"], 1.0);
    let ids: Vec<String> = serde_json::from_value(body["content_ids"].clone()).unwrap();
    assert_eq!(ids.len(), 1);

    let item = env.content_item(&ids[0]).await;
    assert_eq!(item["title"], "Heron log");
    assert_eq!(item["owner_id"], env.user.id.as_str());
    assert_eq!(item["kind"], "document");
    assert_eq!(item["tags"], serde_json::json!(["birds", "nature"]));
    assert_eq!(item["source"]["type"], "upload");
    assert_eq!(item["source"]["filename"], "notes.md");
    assert_eq!(item["source"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(item["metadata"]["format"], "markdown");
    let text = item["body"].as_str().unwrap();
    assert!(
        text.starts_with("Field notes\n\nThe heron waits. It does not move."),
        "{text}"
    );
    assert!(!text.contains('#'), "Markdown syntax is gone: {text}");
    let chunks = env
        .content_get(&format!("/api/v1/content/{}/chunks?limit=100", ids[0]))
        .await;
    let chunks = chunks["items"].as_array().unwrap();
    assert!(chunks.len() >= 2, "{chunks:?}");
    assert!(chunks
        .iter()
        .all(|c| c["text"].as_str().unwrap().chars().count() <= 60));
    assert!(
        chunks
            .windows(2)
            .any(|p| p[1]["start"].as_u64() < p[0]["end"].as_u64()),
        "sentences are shared between neighbouring chunks: {chunks:?}"
    );

    // The same bytes again: the first answer, nothing new.
    let again = env
        .upload(file(
            "copy.md",
            "text/markdown",
            markdown.as_bytes().to_vec(),
        ))
        .await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["job"]["id"], job_id.as_str());
    assert_eq!(again["content_ids"], body["content_ids"]);
    let list = env.content_get("/api/v1/content").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(env.job(&job_id).await["status"], "succeeded");

    // Once the user has deleted the item, the same bytes are taken in again (not
    // answered with the dead item), and the new item answers from then on.
    let content = env.content.as_ref().unwrap();
    let deleted = content
        .client
        .request(Method::DELETE, &format!("/api/v1/content/{}", ids[0]))
        .bearer_auth(&env.user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let upload = || file("notes.md", "text/markdown", markdown.as_bytes().to_vec());
    let renewed = env.upload(upload()).await;
    assert_eq!(renewed.status(), 201);
    let renewed: Value = renewed.json().await.unwrap();
    assert_ne!(renewed["job"]["id"], job_id.as_str());
    let new_id = renewed["content_ids"][0].as_str().unwrap().to_owned();
    assert_ne!(new_id, ids[0]);
    assert!(env.content_item(&new_id).await["body"]
        .as_str()
        .unwrap()
        .starts_with("Field notes"));
    let third = env.upload(upload()).await;
    assert_eq!(third.status(), 200);
    let third: Value = third.json().await.unwrap();
    assert_eq!(third["content_ids"], serde_json::json!([new_id]));
}

/// The original of an upload comes back byte for byte, to its owner only, typed by
/// its bytes and always as an attachment (an HTML file is never rendered by us).
#[actix_web::test]
async fn the_original_file_is_downloadable_by_its_owner_as_an_attachment() {
    let env = stack(None, true, &[]).await;
    let download = |job: String, token: String| {
        let client = env.ingest.client.clone();
        async move {
            client
                .request(Method::GET, &format!("/api/v1/ingest/jobs/{job}/file"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let token = env.user.access_token.clone();
    let cases: [(&str, &str, &[u8], &str, &str); 3] = [
        (
            "notes.md",
            "text/markdown",
            b"# Notes\n\nKept as they came.\n",
            "text/markdown",
            "attachment; filename=\"notes.md\"",
        ),
        (
            "page.html",
            "text/html",
            b"<html><body><script>alert(1)</script><p>Hello there, reader.</p></body></html>",
            "text/html",
            "attachment; filename=\"page.html\"",
        ),
        (
            "résumé.txt",
            "text/plain",
            b"Plain words in a file with an accented name.",
            "text/plain",
            "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
        ),
    ];
    for (name, mime, bytes, served_as, disposition) in cases {
        let resp = env.upload(file(name, mime, bytes.to_vec())).await;
        assert_eq!(resp.status(), 201, "{name}");
        let job: Value = resp.json().await.unwrap();
        let job_id = job["job"]["id"].as_str().unwrap().to_owned();

        let resp = download(job_id.clone(), token.clone()).await;
        assert_eq!(resp.status(), 200, "{name}");
        let header = |n: &str| resp.headers()[n].to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), served_as, "{name}");
        assert_eq!(header("content-disposition"), disposition, "{name}");
        assert!(header("content-security-policy").starts_with("sandbox"));
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("content-length"), bytes.len().to_string());
        assert_eq!(&resp.bytes().await.unwrap()[..], bytes, "{name}");

        // Another user does not learn the job exists.
        let other = register(&env.auth.client, &unique_email("peer")).await;
        assert_problem(download(job_id, other.access_token).await, 404, "not_found").await;
    }
    assert_problem(
        download(uuid::Uuid::new_v4().to_string(), token.clone()).await,
        404,
        "not_found",
    )
    .await;
}

/// A job keeps (and forwards to content) the request id the service checked, never the
/// raw header: a hostile one is replaced like everywhere else.
#[actix_web::test]
async fn a_job_keeps_the_checked_request_id_not_the_raw_header() {
    let env = stack(None, true, &[]).await;
    let hostile = format!("bad id {}", "x".repeat(500));
    let resp = env
        .upload_with(
            file(
                "id.txt",
                "text/plain",
                b"a file uploaded with a hostile request id".to_vec(),
            ),
            &[("x-request-id", hostile.clone())],
        )
        .await;
    assert_eq!(resp.status(), 201);
    let answered = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(answered, hostile);
    let body: Value = resp.json().await.unwrap();
    let id = body["job"]["id"].as_str().unwrap().to_owned();
    let db =
        peermesh_db::Db::connect(env.ingest.db.url(), 1, &peermesh_ingestion::MIGRATIONS).unwrap();
    let job = db
        .run(move |conn| peermesh_ingestion::store::jobs::by_id(conn, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.request_id.as_deref(), Some(answered.as_str()));
}

#[actix_web::test]
async fn every_text_format_is_read_and_others_are_refused() {
    let env = stack(None, true, &[]).await;
    let cases: Vec<(&str, &str, Vec<u8>, &str, &str)> = vec![
        ("page.html", "text/html",
            b"<html lang=\"de\"><head><title>Seite</title><script>evil()</script></head><body><p>Hallo Welt</p></body></html>".to_vec(),
            "Seite", "Hallo Welt"),
        ("people.csv", "text/csv", b"name,city\nAda,London\n".to_vec(), "people", "Ada | London"),
        ("data.json", "application/json", br#"{"title": "Settings", "volume": 11}"#.to_vec(), "Settings", "\"volume\": 11"),
        ("latin1.txt", "text/plain", b"Gr\xfc\xdfe aus K\xf6ln\nzweite Zeile".to_vec(), "Grüße aus Köln", "zweite Zeile"),
    ];
    let atom = br#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom News</title><id>urn:x</id><updated>2026-01-01T00:00:00Z</updated><entry><title>Launch</title><id>urn:e1</id><updated>2026-01-01T00:00:00Z</updated><summary>Entry body text</summary></entry></feed>"#.to_vec();
    let json_feed = br#"{"version": "https://jsonfeed.org/version/1.1", "title": "JSON News", "items": [{"id": "1", "title": "Hello", "content_text": "json entry text"}]}"#.to_vec();
    let mut cases = cases;
    cases.push((
        "news.atom",
        "application/atom+xml",
        atom,
        "Atom News",
        "Launch\n\nEntry body text",
    ));
    cases.push((
        "feed.json",
        "application/json",
        json_feed,
        "JSON News",
        "json entry text",
    ));
    for (name, mime, bytes, title, text) in cases {
        let resp = env.upload(file(name, mime, bytes)).await;
        assert_eq!(resp.status(), 201, "{name}");
        let body: Value = resp.json().await.unwrap();
        let item = env
            .content_item(body["content_ids"][0].as_str().unwrap())
            .await;
        assert_eq!(item["title"], title, "{name}");
        let body_text = item["body"].as_str().unwrap();
        assert!(body_text.contains(text), "{name}: {body_text}");
        assert!(!body_text.contains("evil"), "{name}: scripts are dropped");
    }

    let refused: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "image.png",
            "image/png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec(),
            415,
            "unsupported_format",
        ),
        (
            "report.pdf",
            "application/pdf",
            b"plain words, not a PDF".to_vec(),
            415,
            "unsupported_format",
        ),
        (
            "empty.txt",
            "text/plain",
            Vec::new(),
            415,
            "unsupported_format",
        ),
        (
            "deep.json",
            "application/json",
            format!("{}{}", "[".repeat(300), "]".repeat(300)).into_bytes(),
            422,
            "unreadable_file",
        ),
    ];
    for (name, mime, bytes, status, code) in refused {
        let resp = env.upload(file(name, mime, bytes)).await;
        assert_problem(resp, status, code).await;
    }
    assert_eq!(
        env.content_get("/api/v1/content").await["items"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

#[actix_web::test]
async fn large_files_are_queued_and_the_limit_is_exact() {
    let env = stack(
        None,
        true,
        &[
            ("SYNC_MAX_BYTES", "1000".into()),
            ("MAX_BYTES", "5000".into()),
        ],
    )
    .await;
    let text = |n: usize| "lorem ipsum ".repeat(n / 12 + 1).into_bytes()[..n].to_vec();

    let resp = env.upload(file("big.txt", "text/plain", text(5001))).await;
    assert_problem(resp, 413, "payload_too_large").await;

    let resp = env.upload(file("max.txt", "text/plain", text(5000))).await;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["job"]["status"], "queued");
    assert_eq!(body["content_ids"], serde_json::json!([]));
    let id = body["job"]["id"].as_str().unwrap();
    assert!(location.ends_with(id));
    let job = env.finished(id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let item = env
        .content_item(job["content_ids"][0].as_str().unwrap())
        .await;
    assert_eq!(item["size"], 5000);

    // One byte over the synchronous limit is queued too; at the limit it is not.
    assert_eq!(
        env.upload(file("sync.txt", "text/plain", text(1000)))
            .await
            .status(),
        201
    );
    assert_eq!(
        env.upload(file("async.txt", "text/plain", b"x".repeat(1001)))
            .await
            .status(),
        202
    );
}

/// A text of about `len` bytes of UTF-8 in paragraphs of sentences, with accented
/// letters, blank lines and a title line first.
fn long_text(len: usize) -> String {
    let mut text = String::from("\n   \n  Notizen über Käse, Brühe & Crème brûlée   \n\n");
    let mut n = 0;
    while text.len() < len {
        n += 1;
        text.push_str(&format!("Satz {n}: Der Käse reift, die Brühe köchelt. "));
        if n % 7 == 0 {
            text.push('\n');
        }
        if n % 23 == 0 {
            text.push_str("\n\n");
        }
    }
    text
}

/// The item made of `bytes` is the one the in-memory reading makes of the whole file:
/// same text, title and chunks.
async fn assert_read_whole(env: &Env, id: &str, bytes: &[u8], name: &str, sizes: (usize, usize)) {
    use peermesh_ingestion::formats;
    let (format, text) = formats::detect(bytes, Some(name), None).unwrap();
    let expected =
        formats::extract(format, text, bytes, Some(name), &formats::Limits::default()).unwrap();
    let item = env.content_item(id).await;
    assert_eq!(item["title"], expected.title.as_str());
    assert_eq!(item["metadata"]["format"], "text");
    assert_eq!(item["metadata"]["filename"], name);
    let body = item["body"].as_str().unwrap();
    assert_eq!(body.len(), expected.text.len());
    assert!(body == expected.text, "the bodies differ");
    let mut chunks = Vec::new();
    let mut path = format!("/api/v1/content/{id}/chunks?limit=100");
    loop {
        let page = env.content_get(&path).await;
        chunks.extend(page["items"].as_array().unwrap().iter().map(|c| {
            (
                c["text"].as_str().unwrap().to_owned(),
                c["start"].as_u64().unwrap() as usize,
                c["end"].as_u64().unwrap() as usize,
            )
        }));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/content/{id}/chunks?limit=100&cursor={cursor}"),
            None => break,
        }
    }
    let whole: Vec<_> = peermesh_chunking::split_with_overlap(&expected.text, sizes.0, sizes.1)
        .into_iter()
        .map(|c| (c.text, c.start, c.end))
        .collect();
    assert_eq!(chunks.len(), whole.len());
    assert!(chunks == whole, "the chunks differ");
}

#[actix_web::test]
async fn large_plain_text_is_read_in_blocks_into_the_same_item() {
    let sync_max = 3 << 20;
    let env = stack(
        None,
        true,
        &[
            ("SYNC_MAX_BYTES", sync_max.to_string()),
            ("CHUNK_CHARS", "2000".into()),
            ("CHUNK_OVERLAP", "300".into()),
        ],
    )
    .await;
    let sizes = (2000, 300);

    // Windows-1252 with CRLF line ends (guessed, decoded, turned into LF), in the
    // request; UTF-16 with a BOM, in the request; UTF-8 in a worker.
    let crlf = long_text(1_600_000).replace('\n', "\r\n");
    let latin = encoding_rs::WINDOWS_1252.encode(&crlf).0.into_owned();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(long_text(700_000).encode_utf16().flat_map(u16::to_le_bytes));
    let utf8 = long_text(sync_max + 500_000).into_bytes();
    for (name, bytes, status) in [
        ("latin.txt", latin, 201),
        ("utf16.txt", utf16, 201),
        ("utf8.txt", utf8, 202),
    ] {
        let resp = env.upload(file(name, "text/plain", bytes.clone())).await;
        assert_eq!(resp.status(), status, "{name}");
        let body: Value = resp.json().await.unwrap();
        let job = env.finished(body["job"]["id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "succeeded", "{name}: {job}");
        let id = job["content_ids"][0].as_str().unwrap();
        assert_read_whole(&env, id, &bytes, name, sizes).await;
    }

    // Found out only past the first block, in a worker: binary data (a NUL near the
    // end) and a file with no text. Each job fails with the reason; nothing is made.
    let mut nul = long_text(sync_max + 100_000).into_bytes();
    let at = nul.len() - 10;
    nul[at] = 0;
    let blank = " \n\t\n".repeat(sync_max / 4 + 1000).into_bytes();
    for (bytes, reason) in [(nul, "binary data"), (blank, "holds no text")] {
        let resp = env.upload(file("odd.txt", "text/plain", bytes)).await;
        assert_eq!(resp.status(), 202);
        let body: Value = resp.json().await.unwrap();
        let job = env.finished(body["job"]["id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["attempts"], 1, "not worth retrying: {job}");
        assert!(job["error"].as_str().unwrap().contains(reason), "{job}");
    }
    let list = env.content_get("/api/v1/content?limit=100").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn nothing_is_lost_while_the_content_service_is_down() {
    let port = free_port();
    let mut env = stack(Some(port), false, &[]).await;
    let resp = env
        .upload(file(
            "later.txt",
            "text/plain",
            b"written while content was down".to_vec(),
        ))
        .await;
    let problem = assert_problem(resp, 503, "content_unavailable").await;
    let job_id = problem["job"].as_str().unwrap().to_owned();
    let job = env.job(&job_id).await;
    assert_eq!(job["status"], "queued");
    assert!(
        job["error"].as_str().unwrap().contains("unavailable"),
        "{job}"
    );

    // Content comes up on the port ingestion knows; a worker finishes the job, once.
    let jwks = jwks_url(&env.auth);
    env.content = Some(
        Verifier::Content
            .spawn(&jwks, &[("PORT", port.to_string())])
            .await,
    );
    let job = env.finished(&job_id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let list = env.content_get("/api/v1/content").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], job["content_ids"][0]);
    // Uploading it again now answers with the finished job.
    let again = env
        .upload(file(
            "later.txt",
            "text/plain",
            b"written while content was down".to_vec(),
        ))
        .await;
    assert_eq!(again.status(), 200);
}

#[actix_web::test]
async fn jobs_are_listed_cancelled_and_retried_by_their_owner_only() {
    // API role only: queued jobs stay queued.
    let env = stack(
        None,
        true,
        &[("ROLE", "api".into()), ("SYNC_MAX_BYTES", "10".into())],
    )
    .await;
    let resp = env
        .upload(file("q.txt", "text/plain", b"queued for later".to_vec()))
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = |method: Method, path: String, token: String| {
        let req = env.ingest.client.request(method, &path).bearer_auth(token);
        async move { req.send().await.unwrap() }
    };
    let t = env.user.access_token.clone();
    let list: Value = call(
        Method::GET,
        "/api/v1/ingest/jobs?status=queued".into(),
        t.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["items"][0]["id"], id.as_str());
    let none: Value = call(
        Method::GET,
        "/api/v1/ingest/jobs?status=failed".into(),
        t.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(none["items"], serde_json::json!([]));
    assert_problem(
        call(
            Method::GET,
            "/api/v1/ingest/jobs?status=odd".into(),
            t.clone(),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;

    let other = register(&env.auth.client, &unique_email("other")).await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/ingest/jobs/{id}")),
        (Method::DELETE, format!("/api/v1/ingest/jobs/{id}")),
        (Method::POST, format!("/api/v1/ingest/jobs/{id}/retry")),
    ] {
        let resp = call(method.clone(), path.clone(), other.access_token.clone()).await;
        assert_eq!(resp.status(), 404, "{method} {path}");
    }
    let theirs: Value = call(
        Method::GET,
        "/api/v1/ingest/jobs".into(),
        other.access_token.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(theirs["items"], serde_json::json!([]));

    assert_problem(
        call(
            Method::POST,
            format!("/api/v1/ingest/jobs/{id}/retry"),
            t.clone(),
        )
        .await,
        409,
        "not_retryable",
    )
    .await;
    assert_eq!(
        call(
            Method::DELETE,
            format!("/api/v1/ingest/jobs/{id}"),
            t.clone()
        )
        .await
        .status(),
        204
    );
    assert_eq!(env.job(&id).await["status"], "cancelled");
    assert_problem(
        call(
            Method::DELETE,
            format!("/api/v1/ingest/jobs/{id}"),
            t.clone(),
        )
        .await,
        409,
        "not_cancellable",
    )
    .await;
    let retried: Value = call(
        Method::POST,
        format!("/api/v1/ingest/jobs/{id}/retry"),
        t.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(retried["status"], "queued");
    assert_eq!(retried["attempts"], 0);
}

#[actix_web::test]
async fn bad_uploads_are_refused_clearly() {
    let env = stack(None, true, &[]).await;
    let text = || file("a.txt", "text/plain", b"x".to_vec());
    // Refused before anything is stored or queued, each naming its field; titles and
    // tags by the content service's own rules (a tag too long, a control character).
    let cases = [
        (Form::new().text("title", "no file"), Some("file")),
        (text().text("colour", "red"), Some("colour")),
        (text().text("title", ""), None),
        (
            text().text("tags", format!("ok,{}", "y".repeat(65))),
            Some("tags[1]"),
        ),
        (text().text("title", "bell\u{7}"), Some("title")),
    ];
    for (form, field) in cases {
        let problem = assert_problem(env.upload(form).await, 422, "validation_failed").await;
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field);
        }
    }
    let resp = env
        .ingest
        .client
        .request(Method::POST, "/api/v1/ingest/files")
        .multipart(file("a.txt", "text/plain", b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "unauthorized").await;
    let resp = env
        .ingest
        .client
        .request(Method::POST, "/api/v1/ingest/files")
        .bearer_auth(&env.user.access_token)
        .json(&serde_json::json!({"file": "not multipart"}))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(resp.status().as_u16(), 400 | 415),
        "{}",
        resp.status()
    );
    assert_eq!(
        env.content_get("/api/v1/content").await["items"],
        serde_json::json!([])
    );
}
