//! PDF and DOCX, built here byte by byte, and hostile versions of them.

use std::io::Write;

use peermesh_test_support::client::assert_problem;
use serde_json::Value;

use crate::files::{file, stack};

/// A PDF of `objects` (object 1 the catalog), xref offsets computed.
fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A ~2 MiB PDF whose one page's content stream inflates to 2 GiB of spaces: 1 MiB of
/// spaces deflated once (byte-aligned by a sync flush, so copies of it chain: every
/// back-reference points at spaces) and repeated 2 048 times.
fn pdf_bomb() -> Vec<u8> {
    let mut deflate = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(64 * 1024);
    deflate
        .compress_vec(
            &vec![b' '; 1 << 20],
            &mut block,
            flate2::FlushCompress::Sync,
        )
        .unwrap();
    let mut stream = vec![0x78, 0xda];
    for _ in 0..2048 {
        stream.extend_from_slice(&block);
    }
    // A final empty block and an Adler-32 (never reached).
    stream.extend_from_slice(&[0x03, 0x00, 0, 0, 0, 0]);
    let mut content = format!(
        "<< /Length {} /Filter /FlateDecode >>\nstream\n",
        stream.len()
    )
    .into_bytes();
    content.extend_from_slice(&stream);
    content.extend_from_slice(b"\nendstream");
    pdf_of(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec(),
        content,
    ])
}

/// A PDF of `n` (empty) pages sharing one content stream.
fn pdf_of_pages(n: usize) -> Vec<u8> {
    let kids: String = (0..n).map(|i| format!("{} 0 R ", 4 + i)).collect();
    let mut objects = vec![
        b"<</Type/Catalog/Pages 2 0 R>>".to_vec(),
        format!("<</Type/Pages/MediaBox[0 0 612 792]/Resources<<>>/Kids[{kids}]/Count {n}>>")
            .into_bytes(),
        b"<</Length 0>>\nstream\n\nendstream".to_vec(),
    ];
    objects.extend((0..n).map(|_| b"<</Type/Page/Parent 2 0 R/Contents 3 0 R>>".to_vec()));
    pdf_of(&objects)
}

/// A real PDF with one page per entry (Helvetica text), xref offsets computed.
fn pdf(pages: &[&str]) -> Vec<u8> {
    let mut objects: Vec<String> = Vec::new();
    let n = pages.len();
    // 1: catalog, 2: pages, 3: font, then per page: page object, content stream.
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {n} >>",
        kids.join(" ")
    ));
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    );
    for (i, text) in pages.iter().enumerate() {
        let content = format!("BT /F1 12 Tf 72 712 Td ({text}) Tj ET");
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    let objects: Vec<Vec<u8>> = objects.into_iter().map(String::into_bytes).collect();
    pdf_of(&objects)
}

/// A DOCX: a zip with the parts Word writes, `document` as word/document.xml.
fn docx(document: &[u8], core: Option<&str>) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("[Content_Types].xml", options).unwrap();
    zip.write_all(br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#).unwrap();
    zip.start_file("word/document.xml", options).unwrap();
    zip.write_all(document).unwrap();
    if let Some(core) = core {
        zip.start_file("docProps/core.xml", options).unwrap();
        zip.write_all(core.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    buf.into_inner()
}

fn word(paragraphs: &[&str]) -> Vec<u8> {
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    )
    .into_bytes()
}

const DOCX_MIME: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

#[actix_web::test]
async fn pdf_and_docx_become_text() {
    let env = stack(None, true, &[]).await;

    let resp = env
        .upload(file(
            "report.pdf",
            "application/pdf",
            pdf(&["First page words", "Second page words"]),
        ))
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let item = env
        .content_item(body["content_ids"][0].as_str().unwrap())
        .await;
    let text = item["body"].as_str().unwrap();
    assert!(
        text.contains("First page words") && text.contains("Second page words"),
        "{text}"
    );
    assert_eq!(item["metadata"]["pages"], 2);
    assert_eq!(item["metadata"]["format"], "pdf");

    let core = r#"<cp:coreProperties xmlns:cp="x" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Quarterly plan</dc:title><dc:creator>Grace</dc:creator></cp:coreProperties>"#;
    let resp = env
        .upload(file(
            "plan.docx",
            DOCX_MIME,
            docx(
                &word(&["Goals &amp; means", "Second paragraph"]),
                Some(core),
            ),
        ))
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let item = env
        .content_item(body["content_ids"][0].as_str().unwrap())
        .await;
    assert_eq!(item["title"], "Quarterly plan");
    assert_eq!(item["body"], "Goals & means\n\nSecond paragraph");
    assert_eq!(item["metadata"]["author"], "Grace");
}

#[actix_web::test]
async fn hostile_documents_fail_cleanly() {
    let env = stack(None, true, &[]).await;

    // A zip bomb: 100 MiB of one character compresses to ~100 KiB.
    let mut bomb = b"<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>".to_vec();
    bomb.extend(std::iter::repeat_n(b'a', 100 * 1024 * 1024));
    bomb.extend_from_slice(b"</w:t></w:r></w:p></w:body></w:document>");
    let bomb = docx(&bomb, None);
    assert!(
        bomb.len() < 1024 * 1024,
        "compressed to {} bytes",
        bomb.len()
    );
    let problem = assert_problem(
        env.upload(file("bomb.docx", DOCX_MIME, bomb)).await,
        422,
        "unreadable_file",
    )
    .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expands"),
        "{problem}"
    );

    // Billion laughs: entities defined in a DTD are never expanded.
    let laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><w:document xmlns:w="w"><w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>"#;
    assert_problem(
        env.upload(file("laughs.docx", DOCX_MIME, docx(laughs, None)))
            .await,
        422,
        "unreadable_file",
    )
    .await;

    // External entities neither.
    let xxe = br#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><w:document xmlns:w="w"><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"#;
    assert_problem(
        env.upload(file("xxe.docx", DOCX_MIME, docx(xxe, None)))
            .await,
        422,
        "unreadable_file",
    )
    .await;

    // Deep nesting.
    let deep = format!(
        "<w:document xmlns:w=\"w\">{}{}</w:document>",
        "<w:b>".repeat(10_000),
        "</w:b>".repeat(10_000)
    );
    assert_problem(
        env.upload(file("deep.docx", DOCX_MIME, docx(deep.as_bytes(), None)))
            .await,
        422,
        "unreadable_file",
    )
    .await;

    // A truncated PDF.
    let whole = pdf(&["Some text"]);
    let cut = whole[..whole.len() / 2].to_vec();
    assert_problem(
        env.upload(file("cut.pdf", "application/pdf", cut)).await,
        422,
        "unreadable_file",
    )
    .await;

    // Right bytes, wrong name.
    let resp = env
        .upload(file("notes.txt", "text/plain", pdf(&["x"])))
        .await;
    assert_problem(resp, 415, "unsupported_format").await;
    let resp = env
        .upload(file("plan.md", "text/markdown", docx(&word(&["x"]), None)))
        .await;
    assert_problem(resp, 415, "unsupported_format").await;

    assert_eq!(
        env.content_get("/api/v1/content").await["items"],
        serde_json::json!([])
    );
}

/// A PDF that inflates to gigabytes and one of 100 000 pages are refused with their
/// reason (422), within their budgets, and the service carries on; nothing is written.
#[actix_web::test]
async fn parser_bombs_are_refused_within_their_budgets() {
    let env = stack(None, true, &[]).await;
    let bomb = pdf_bomb();
    assert!(bomb.len() < 3 << 20, "{} bytes", bomb.len());
    let started = std::time::Instant::now();
    let resp = env.upload(file("bomb.pdf", "application/pdf", bomb)).await;
    let problem = assert_problem(resp, 422, "file_too_complex").await;
    let reason = problem["errors"][0]["message"].as_str().unwrap();
    assert!(reason.contains("1024 MiB of memory"), "{reason}");

    let resp = env
        .upload(file("pages.pdf", "application/pdf", pdf_of_pages(100_000)))
        .await;
    let problem = assert_problem(resp, 422, "file_too_complex").await;
    let reason = problem["errors"][0]["message"].as_str().unwrap();
    assert_eq!(reason, "the PDF has 100000 pages; at most 2000 are read");
    // Not a benchmark: the unbounded readers took minutes or exhausted memory here.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    // The service is fine, and neither file left an item behind.
    let resp = env
        .upload(file("fine.pdf", "application/pdf", pdf(&["Still reading"])))
        .await;
    assert_eq!(resp.status(), 201);
    let items = env.content_get("/api/v1/content").await;
    assert_eq!(items["items"].as_array().unwrap().len(), 1, "{items}");
}

/// The wall-clock budget: a file whose reading takes longer is stopped (its reader
/// killed) and refused; a queued one fails for good, with the reason, not retried.
#[actix_web::test]
async fn slow_files_are_stopped_at_the_time_budget() {
    let env = stack(
        None,
        true,
        &[
            ("PARSE_TIMEOUT_SECS", "1".into()),
            ("PDF_MAX_PAGES", "1000000".into()),
            ("SYNC_MAX_BYTES", "1000".into()),
        ],
    )
    .await;
    let resp = env
        .upload(file("pages.pdf", "application/pdf", pdf_of_pages(100_000)))
        .await;
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    let done = env.finished(job["job"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(done["error"], "reading the file took longer than 1 s");
}
