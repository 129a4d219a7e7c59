//! What a file is and what text it holds. The format comes from the bytes (magic
//! numbers, then the text itself) and must agree with the file's name and declared
//! type; each format yields a title, clean text and metadata.

pub mod feed;

use scraper::{Html, Node};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
    Json,
    Csv,
    Pdf,
    Docx,
    /// RSS, Atom or JSON Feed.
    Feed,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Text,
        Format::Markdown,
        Format::Html,
        Format::Json,
        Format::Csv,
        Format::Pdf,
        Format::Docx,
        Format::Feed,
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The media type a file of this format is served as.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain",
            Format::Markdown => "text/markdown",
            Format::Html => "text/html",
            Format::Json => "application/json",
            Format::Csv => "text/csv",
            Format::Pdf => "application/pdf",
            Format::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            Format::Feed => "application/xml",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Feed => "feed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not a format we read (415).
    #[error("{0}")]
    Unsupported(String),
    /// The bytes say one thing, the name or declared type another (415).
    #[error("{0}")]
    Mismatch(String),
    /// A format we read, but this file is broken (a failed job, 422 when synchronous).
    #[error("{0}")]
    Corrupt(String),
    /// Reading it would take more than its budget of memory, time or pages (a failed
    /// job, 422 when synchronous).
    #[error("{0}")]
    TooComplex(String),
}

/// Bounds on what one file may make its reader do (besides the sandbox's memory and
/// time).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most pages read from a PDF; more is refused.
    pub max_pdf_pages: usize,
    /// HTML is a web page (a URL import): keep its main text, as a reader view would,
    /// rather than every text node (navigation, footers, sidebars).
    pub readable: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pdf_pages: 2000,
            readable: false,
        }
    }
}

/// A file's text, ready to become a content item.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub format: Format,
    pub title: String,
    pub text: String,
    pub metadata: Map<String, Value>,
}

/// Extensions of formats recognised by their bytes: a text file named like one of
/// these is a mismatch.
const BINARY_EXTENSIONS: &[&str] = &[
    "pdf", "docx", "doc", "xlsx", "pptx", "zip", "gz", "png", "jpg", "jpeg", "gif", "webp", "exe",
    "mp3", "mp4", "mov",
];

/// The most a DOCX's main XML part may decompress to (zip bombs stop here).
pub const MAX_DOCX_XML_BYTES: u64 = 64 * 1024 * 1024;
/// The deepest XML nesting read from a DOCX.
pub const MAX_XML_DEPTH: usize = 256;
const DOCX_MAIN: &str = "word/document.xml";

fn extension(filename: Option<&str>) -> Option<String> {
    let name = filename?;
    let (_, ext) = name.rsplit_once('.')?;
    Some(ext.to_ascii_lowercase())
}

fn format_of_extension(ext: &str) -> Option<Format> {
    Some(match ext {
        "txt" | "text" | "log" => Format::Text,
        "md" | "markdown" | "mdown" => Format::Markdown,
        "html" | "htm" | "xhtml" => Format::Html,
        "json" => Format::Json,
        "csv" => Format::Csv,
        "rss" | "atom" => Format::Feed,
        _ => return None,
    })
}

fn format_of_media_type(declared: &str) -> Option<Format> {
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Some(match essence.as_str() {
        "text/plain" => Format::Text,
        "text/markdown" | "text/x-markdown" => Format::Markdown,
        "text/html" | "application/xhtml+xml" => Format::Html,
        "application/json" => Format::Json,
        "text/csv" => Format::Csv,
        "application/rss+xml" | "application/atom+xml" | "application/feed+json" => Format::Feed,
        // Generic XML is read as text unless it turns out to be a feed.
        "application/xml" | "text/xml" => Format::Text,
        _ => return None,
    })
}

/// Decodes text in any common encoding to UTF-8: a BOM decides, else valid UTF-8 is
/// taken as such, else the encoding is guessed from the bytes. `None` for binary data.
pub fn decode_text(bytes: &[u8]) -> Option<String> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return (!had_errors).then(|| text.into_owned());
    }
    if bytes.contains(&0) {
        return None;
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(text.to_owned());
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Allow);
    let (text, _, had_errors) = encoding.decode(bytes);
    (!had_errors).then(|| text.into_owned())
}

/// RSS or Atom (`<rss`, `<feed` near the start) or a JSON Feed.
fn looks_like_feed(text: &str) -> bool {
    let head: String = text
        .chars()
        .take(1024)
        .collect::<String>()
        .to_ascii_lowercase();
    head.contains("<rss") || head.contains("<feed") || head.contains("jsonfeed.org/version")
}

fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .trim_start()
        .chars()
        .take(256)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<body")
}

/// Decides the format from the bytes and checks it against the name and declared type.
pub fn detect(
    bytes: &[u8],
    filename: Option<&str>,
    declared: Option<&str>,
) -> Result<(Format, String), FormatError> {
    detect_inner(bytes, filename, declared, true)
}

/// [`detect`] on the first bytes of a larger file (`whole` = false): the check a
/// request gets before its file is queued.
pub fn detect_head(
    bytes: &[u8],
    filename: Option<&str>,
    declared: Option<&str>,
    whole: bool,
) -> Result<Format, FormatError> {
    if whole {
        return detect(bytes, filename, declared).map(|(format, _)| format);
    }
    // A zip's directory is at its end: from the head alone, trust the name for DOCX
    // (the worker checks the whole file again before reading it).
    if bytes.starts_with(b"PK\x03\x04") && extension(filename).as_deref() == Some("docx") {
        return Ok(Format::Docx);
    }
    // The head may end inside a UTF-8 sequence: cut before it.
    let cut = match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        _ => bytes.len(),
    };
    detect_inner(&bytes[..cut], filename, declared, false).map(|(format, _)| format)
}

fn detect_inner(
    bytes: &[u8],
    filename: Option<&str>,
    declared: Option<&str>,
    whole: bool,
) -> Result<(Format, String), FormatError> {
    if bytes.is_empty() {
        return Err(FormatError::Unsupported("the file is empty".into()));
    }
    if let Some(format) = binary_format(bytes) {
        let ext = extension(filename);
        let named = ext.as_deref();
        let expected = match format {
            Format::Pdf => "pdf",
            _ => "docx",
        };
        if named.is_some_and(|e| {
            e != expected && (BINARY_EXTENSIONS.contains(&e) || format_of_extension(e).is_some())
        }) {
            return Err(FormatError::Mismatch(format!(
                "the file holds {} but is named .{}",
                format.name().to_uppercase(),
                named.unwrap_or_default()
            )));
        }
        if declared.is_some_and(|d| format_of_media_type(d).is_some()) {
            return Err(FormatError::Mismatch(format!(
                "the file holds {} but was sent as text",
                format.name().to_uppercase()
            )));
        }
        return Ok((format, String::new()));
    }
    if let Some(kind) = infer::get(bytes) {
        let mime = kind.mime_type();
        let textual = mime.starts_with("text/") || mime == "application/xml";
        if !textual {
            return Err(FormatError::Unsupported(format!(
                "{mime} files cannot be ingested (text, Markdown, HTML, JSON, CSV, PDF and DOCX can)"
            )));
        }
    }
    let Some(text) = decode_text(bytes) else {
        return Err(FormatError::Unsupported(
            "the file is binary data of no known format".into(),
        ));
    };
    let ext = extension(filename);
    if let Some(ext) = ext.as_deref().filter(|e| BINARY_EXTENSIONS.contains(e)) {
        return Err(FormatError::Mismatch(format!(
            "the file is named .{ext} but holds text"
        )));
    }
    let declared_format = declared.and_then(format_of_media_type);
    if let Some(d) = declared {
        let essence = d.split(';').next().unwrap_or_default().trim();
        if declared_format.is_none() && !essence.is_empty() && essence != "application/octet-stream"
        {
            return Err(FormatError::Mismatch(format!(
                "the file was sent as {essence} but holds text"
            )));
        }
    }
    let named = ext.as_deref().and_then(format_of_extension);
    let format = match (named, declared_format) {
        (Some(n), Some(d)) if n != d && d != Format::Text => {
            return Err(FormatError::Mismatch(format!(
                "the file is named as {} but sent as {}",
                n.name(),
                d.name()
            )))
        }
        (Some(n), _) => n,
        (None, Some(d)) => d,
        (None, None) if looks_like_html(&text) => Format::Html,
        (None, None) => {
            let trimmed = text.trim_start();
            if (trimmed.starts_with('{') || trimmed.starts_with('['))
                && (!whole || serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok())
            {
                Format::Json
            } else {
                Format::Text
            }
        }
    };
    let format = if matches!(format, Format::Text | Format::Json)
        && !matches!(named, Some(Format::Markdown | Format::Csv | Format::Html))
        && looks_like_feed(&text)
    {
        Format::Feed
    } else {
        format
    };
    // Named or sent as JSON but not JSON at all: the label is wrong, not the file broken.
    if format == Format::Json && !text.trim_start().starts_with(['{', '[', '"']) {
        return Err(FormatError::Mismatch(
            "the file is labelled JSON but is not JSON".into(),
        ));
    }
    Ok((format, text))
}

fn stem(filename: Option<&str>) -> Option<String> {
    let name = filename?.rsplit(['/', '\\']).next()?;
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s).trim();
    (!stem.is_empty()).then(|| stem.to_owned())
}

/// How much of a text's first line becomes its title.
pub const TITLE_LINE_CHARS: usize = 200;

fn first_line(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(TITLE_LINE_CHARS).collect())
}

/// A document's title: the one found in it, else the file's name without its
/// extension, else "Untitled"; at most 500 characters.
pub fn title_or_name(found: Option<String>, filename: Option<&str>) -> String {
    let title = found
        .or_else(|| stem(filename))
        .unwrap_or_else(|| "Untitled".into());
    title.chars().take(500).collect()
}

/// Collapses white space inside lines and runs of blank lines.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&line);
    }
    out
}

/// What every document's metadata says: its format and file name.
pub fn base_metadata(format: Format, filename: Option<&str>) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("format".into(), json!(format.name()));
    if let Some(name) = filename {
        metadata.insert("filename".into(), json!(name));
    }
    metadata
}

/// The text of a file of `format`.
pub fn extract(
    format: Format,
    text: String,
    bytes: &[u8],
    filename: Option<&str>,
    limits: &Limits,
) -> Result<Document, FormatError> {
    let mut metadata = base_metadata(format, filename);
    let (title, body) = match format {
        Format::Text => {
            // Taken over, not copied (it may be 100 MiB).
            let body = if text.contains('\r') {
                text.replace("\r\n", "\n")
            } else {
                text
            };
            (first_line(&body), body)
        }
        Format::Markdown => markdown(&text),
        Format::Html if limits.readable => {
            readable_html(&text, &mut metadata).unwrap_or_else(|| html(&text, &mut metadata))
        }
        Format::Html => html(&text, &mut metadata),
        Format::Json => json_text(&text, &mut metadata)?,
        Format::Csv => csv_text(&text, &mut metadata)?,
        Format::Pdf => pdf(bytes, &mut metadata, limits)?,
        Format::Docx => docx(bytes, &mut metadata)?,
        Format::Feed => feed(&text, &mut metadata)?,
    };
    Ok(Document {
        format,
        title: title_or_name(title, filename),
        text: body,
        metadata,
    })
}

/// PDF or DOCX, by their bytes; `None` for everything else.
fn binary_format(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"%PDF-") {
        return Some(Format::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
        let is_docx = zip.file_names().any(|n| n.is_ok_and(|n| n == DOCX_MAIN));
        return is_docx.then_some(Format::Docx);
    }
    None
}

fn pdf(
    bytes: &[u8],
    metadata: &mut Map<String, Value>,
    limits: &Limits,
) -> Result<(Option<String>, String), FormatError> {
    // The PDF parser may panic on hostile input: that is a broken file, not a crash.
    let pages = std::panic::catch_unwind(|| pdf_pages(bytes, limits))
        .map_err(|_| FormatError::Corrupt("the PDF is damaged and cannot be read".into()))??;
    metadata.insert("pages".into(), json!(pages.len()));
    let text = tidy(&pages.join("\n\n"));
    Ok((first_line(&text), text))
}

/// The text of each page, refusing more than `limits.max_pdf_pages` pages before any
/// is read (the reader walks the page tree again for every page it extracts, so a
/// huge page count costs time by the square).
fn pdf_pages(bytes: &[u8], limits: &Limits) -> Result<Vec<String>, FormatError> {
    let broken =
        |e: &dyn std::fmt::Display| FormatError::Corrupt(format!("the PDF cannot be read: {e}"));
    let mut doc = pdf_extract::Document::load_mem(bytes).map_err(|e| broken(&e))?;
    if doc.is_encrypted() {
        doc.decrypt("").map_err(|e| broken(&e))?;
    }
    let numbers: Vec<u32> = doc.get_pages().into_keys().collect();
    if numbers.len() > limits.max_pdf_pages {
        return Err(FormatError::TooComplex(format!(
            "the PDF has {} pages; at most {} are read",
            numbers.len(),
            limits.max_pdf_pages
        )));
    }
    let mut pages = Vec::with_capacity(numbers.len());
    for number in numbers {
        let mut text = String::new();
        let mut out = pdf_extract::PlainTextOutput::new(&mut text);
        // A page that cannot be read ends the text, as the reader's own loop does.
        if pdf_extract::output_doc_page(&doc, &mut out, number).is_err() {
            break;
        }
        pages.push(text);
    }
    Ok(pages)
}

/// Reads one zip entry, refusing more than `limit` bytes (whatever the entry claims).
fn zip_entry(
    zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, FormatError> {
    use std::io::Read;
    let entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => {
            return Err(FormatError::Corrupt(format!(
                "the DOCX cannot be read: {e}"
            )))
        }
    };
    if entry.size() > limit {
        return Err(FormatError::Corrupt(format!(
            "the DOCX expands to more than {limit} bytes"
        )));
    }
    let mut out = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| FormatError::Corrupt(format!("the DOCX cannot be read: {e}")))?;
    if out.len() as u64 > limit {
        return Err(FormatError::Corrupt(format!(
            "the DOCX expands to more than {limit} bytes"
        )));
    }
    Ok(Some(out))
}

fn docx(
    bytes: &[u8],
    metadata: &mut Map<String, Value>,
) -> Result<(Option<String>, String), FormatError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| FormatError::Corrupt(format!("the DOCX cannot be read: {e}")))?;
    let main = zip_entry(&mut zip, DOCX_MAIN, MAX_DOCX_XML_BYTES)?
        .ok_or_else(|| FormatError::Corrupt("the DOCX has no document part".into()))?;
    let text = tidy(&xml_text(
        &main,
        |name| match name {
            b"w:p" => Some("\n\n"),
            b"w:br" | b"w:cr" => Some("\n"),
            b"w:tab" => Some("\t"),
            _ => None,
        },
        b"w:t",
    )?);
    let mut title = None;
    if let Some(core) = zip_entry(&mut zip, "docProps/core.xml", 1024 * 1024)? {
        title = xml_element_text(&core, b"dc:title")?.filter(|t| !t.is_empty());
        if let Some(author) = xml_element_text(&core, b"dc:creator")?.filter(|a| !a.is_empty()) {
            metadata.insert("author".into(), json!(author));
        }
    }
    Ok((title.or_else(|| first_line(&text)), text))
}

/// The text inside `text_tag` elements, with `breaks` written at the end of elements
/// (and at empty ones). Entities other than XML's five are refused, DTDs are never
/// read, nesting is bounded.
fn xml_text(
    xml: &[u8],
    breaks: impl Fn(&[u8]) -> Option<&'static str>,
    text_tag: &[u8],
) -> Result<String, FormatError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut out = String::new();
    let mut depth = 0usize;
    let mut in_text = false;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| FormatError::Corrupt(format!("the document's XML is broken: {e}")))?;
        match event {
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    return Err(FormatError::Corrupt(
                        "the document's XML is nested too deeply".into(),
                    ));
                }
                in_text = e.name().as_ref() == text_tag;
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                in_text = false;
                if let Some(b) = breaks(e.name().as_ref()) {
                    out.push_str(b);
                }
            }
            Event::Empty(e) => {
                if let Some(b) = breaks(e.name().as_ref()) {
                    out.push_str(b);
                }
            }
            Event::Text(t) if in_text => {
                // Only XML's own entities and character references; anything a DTD
                // would define is an error (no billion laughs, no external entities).
                let text = t.unescape().map_err(|e| {
                    FormatError::Corrupt(format!(
                        "the document's XML uses entities that are not read: {e}"
                    ))
                })?;
                out.push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

/// The text of the first `tag` element.
fn xml_element_text(xml: &[u8], tag: &[u8]) -> Result<Option<String>, FormatError> {
    let text = xml_text(xml, |_| None, tag)?;
    Ok((!text.trim().is_empty()).then(|| text.trim().to_owned()))
}

/// A feed file: its title, and each entry's title and text.
fn feed(
    text: &str,
    metadata: &mut Map<String, Value>,
) -> Result<(Option<String>, String), FormatError> {
    let (title, entries) = feed::parse(text.as_bytes()).map_err(FormatError::Corrupt)?;
    metadata.insert("entries".into(), json!(entries.len()));
    let body = entries
        .iter()
        .map(|e| {
            if e.text.is_empty() {
                e.title.clone()
            } else {
                format!("{}\n\n{}", e.title, e.text)
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok((title, body))
}

fn markdown(text: &str) -> (Option<String>, String) {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = String::new();
    let mut title: Option<String> = None;
    let mut in_heading = false;
    let mut heading = String::new();
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::Heading { .. }) => {
                in_heading = true;
                heading.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                in_heading = false;
                if title.is_none() && !heading.trim().is_empty() {
                    title = Some(heading.trim().to_owned());
                }
                out.push_str("\n\n");
            }
            Event::Text(t) | Event::Code(t) => {
                if in_heading {
                    heading.push_str(&t);
                }
                out.push_str(&t);
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::End(
                TagEnd::Paragraph | TagEnd::Item | TagEnd::CodeBlock | TagEnd::BlockQuote(_),
            ) => out.push_str("\n\n"),
            _ => {}
        }
    }
    (title, tidy(&out))
}

const SKIPPED_ELEMENTS: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "head", "iframe", "object",
];
const BLOCK_ELEMENTS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "nav",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "table",
    "tr",
    "br",
    "hr",
    "dd",
    "dt",
    "figcaption",
    "form",
];

/// The main text of a web page (Readability's article: no navigation, footers or
/// sidebars), with its title and byline; `None` when no article stands out, and the
/// whole page's text is taken instead.
fn readable_html(
    text: &str,
    metadata: &mut Map<String, Value>,
) -> Option<(Option<String>, String)> {
    let config = dom_smoothie::Config {
        text_mode: dom_smoothie::TextMode::Formatted,
        // Pages are bounded by the fetch limit; this bounds the work on one.
        max_elements_to_parse: 100_000,
        ..Default::default()
    };
    let mut reader = dom_smoothie::Readability::new(text, None, Some(config)).ok()?;
    let article = reader.parse().ok()?;
    let body = tidy(&article.text_content);
    if body.trim().is_empty() {
        return None;
    }
    if let Some(byline) = article.byline.filter(|b| !b.trim().is_empty()) {
        metadata.insert("author".into(), json!(byline.trim()));
    }
    if let Some(lang) = article.lang.filter(|l| !l.trim().is_empty()) {
        metadata.insert("language".into(), json!(lang.trim()));
    }
    metadata.insert("extraction".into(), json!("readability"));
    let title = Some(article.title.trim().to_owned()).filter(|t| !t.is_empty());
    Some((title, body))
}

/// The readable text of an HTML fragment (a feed entry's content).
pub fn html_to_text(fragment: &str) -> String {
    html(fragment, &mut Map::new()).1
}

fn html(text: &str, metadata: &mut Map<String, Value>) -> (Option<String>, String) {
    let doc = Html::parse_document(text);
    let select = |css: &str| scraper::Selector::parse(css).ok();
    let text_of = |el: scraper::ElementRef| {
        el.text()
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let title = select("title")
        .and_then(|s| doc.select(&s).next().map(text_of))
        .filter(|t| !t.is_empty())
        .or_else(|| {
            select("h1")
                .and_then(|s| doc.select(&s).next().map(text_of))
                .filter(|t| !t.is_empty())
        });
    if let Some(lang) = doc.root_element().value().attr("lang") {
        metadata.insert("language".into(), json!(lang));
    }
    if let Some(author) = select("meta[name=author]")
        .and_then(|s| doc.select(&s).next())
        .and_then(|m| m.value().attr("content"))
    {
        metadata.insert("author".into(), json!(author));
    }
    // Iterative walk (no recursion: a deeply nested document cannot exhaust the stack).
    let mut out = String::new();
    let mut stack = vec![(doc.tree.root(), false)];
    while let Some((node, closing)) = stack.pop() {
        if closing {
            out.push_str("\n\n");
            continue;
        }
        match node.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(el) => {
                let name = el.name();
                if SKIPPED_ELEMENTS.contains(&name) {
                    continue;
                }
                if BLOCK_ELEMENTS.contains(&name) {
                    out.push_str("\n\n");
                    stack.push((node, true));
                }
                for child in node.children().rev() {
                    stack.push((child, false));
                }
            }
            _ => {
                for child in node.children().rev() {
                    stack.push((child, false));
                }
            }
        }
    }
    (title, tidy(&out))
}

fn json_text(
    text: &str,
    metadata: &mut Map<String, Value>,
) -> Result<(Option<String>, String), FormatError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FormatError::Corrupt(format!("the JSON cannot be read: {e}")))?;
    let title = value
        .get("title")
        .or_else(|| value.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Value::Object(map) = &value {
        metadata.insert("keys".into(), json!(map.len()));
    }
    let pretty =
        serde_json::to_string_pretty(&value).map_err(|e| FormatError::Corrupt(e.to_string()))?;
    Ok((title, pretty))
}

fn csv_text(
    text: &str,
    metadata: &mut Map<String, Value>,
) -> Result<(Option<String>, String), FormatError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| FormatError::Corrupt(format!("the CSV cannot be read: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut out = headers.join(" | ");
    let mut rows = 0u64;
    for record in reader.records() {
        let record =
            record.map_err(|e| FormatError::Corrupt(format!("the CSV cannot be read: {e}")))?;
        out.push('\n');
        out.push_str(&record.iter().collect::<Vec<_>>().join(" | "));
        rows += 1;
    }
    metadata.insert("rows".into(), json!(rows));
    metadata.insert("columns".into(), json!(headers));
    Ok((None, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(
        bytes: &[u8],
        name: Option<&str>,
        declared: Option<&str>,
    ) -> Result<Document, FormatError> {
        let (format, text) = detect(bytes, name, declared)?;
        extract(format, text, bytes, name, &Limits::default())
    }

    #[test]
    fn formats_come_from_bytes_and_names_agree() {
        assert_eq!(
            doc(b"hello\nworld", Some("a.txt"), None).unwrap().format,
            Format::Text
        );
        assert_eq!(
            doc(b"<!DOCTYPE html><p>x</p>", None, None).unwrap().format,
            Format::Html
        );
        assert_eq!(doc(b"{\"a\": 1}", None, None).unwrap().format, Format::Json);
        assert_eq!(
            doc(b"# T\n\nbody", Some("n.md"), None).unwrap().format,
            Format::Markdown
        );
        assert_eq!(
            detect(b"%PDF-1.7 ...", Some("x.pdf"), None).unwrap().0,
            Format::Pdf
        );
        assert!(matches!(
            doc(b"%PDF-1.7 not really", Some("x.pdf"), None),
            Err(FormatError::Corrupt(_))
        ));
        assert!(matches!(
            detect(b"%PDF-1.7 ...", Some("x.txt"), None),
            Err(FormatError::Mismatch(_))
        ));
        assert!(matches!(
            detect(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", None, None),
            Err(FormatError::Unsupported(_))
        ));
        assert!(matches!(
            detect(b"just text", Some("report.pdf"), None),
            Err(FormatError::Mismatch(_))
        ));
        assert!(matches!(
            detect(b"just text", None, Some("image/png")),
            Err(FormatError::Mismatch(_))
        ));
        assert!(matches!(
            detect(b"", Some("a.txt"), None),
            Err(FormatError::Unsupported(_))
        ));
        assert!(matches!(
            detect(b"a\0b", None, None),
            Err(FormatError::Unsupported(_))
        ));
    }

    #[test]
    fn encodings_become_utf8() {
        // "Grüße" in Latin-1 and UTF-16LE with a BOM.
        assert_eq!(
            decode_text(b"Gr\xfc\xdfe aus K\xf6ln, sch\xf6ne Gr\xfc\xdfe").unwrap(),
            "Grüße aus Köln, schöne Grüße"
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("Grüße".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(decode_text(&utf16).unwrap(), "Grüße");
    }

    #[test]
    fn html_keeps_the_text_and_drops_scripts() {
        let page =
            br#"<html lang="en"><head><title> My  Page </title><meta name="author" content="Ada">
            <style>p{color:red}</style></head><body><script>alert(1)</script>
            <h1>Heading</h1><p>First   para.</p><div>Second <b>bold</b> para.</div></body></html>"#;
        let d = doc(page, Some("p.html"), None).unwrap();
        assert_eq!(d.title, "My Page");
        assert_eq!(d.text, "Heading\n\nFirst para.\n\nSecond bold para.");
        assert_eq!(d.metadata["language"], "en");
        assert_eq!(d.metadata["author"], "Ada");
    }

    #[test]
    fn markdown_csv_and_json_become_text() {
        let d = doc(
            b"Intro line\n\n# The Title\n\nSome *emphasis* and `code`.\n\n- one\n- two",
            Some("x.md"),
            None,
        )
        .unwrap();
        assert_eq!(d.title, "The Title");
        assert_eq!(
            d.text,
            "Intro line\n\nThe Title\n\nSome emphasis and code.\n\none\n\ntwo"
        );
        let d = doc(b"name,age\nAda,36\nAlan,41\n", Some("people.csv"), None).unwrap();
        assert_eq!(d.text, "name | age\nAda | 36\nAlan | 41");
        assert_eq!(d.metadata["rows"], 2);
        assert_eq!(d.title, "people");
        let d = doc(br#"{"title": "Config", "x": [1, 2]}"#, Some("c.json"), None).unwrap();
        assert_eq!(d.title, "Config");
        assert!(d.text.contains("\"x\""));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            doc(deep.as_bytes(), Some("deep.json"), None),
            Err(FormatError::Corrupt(_))
        ));
    }

    #[test]
    fn deeply_nested_html_does_not_overflow() {
        let page = format!(
            "<html><body>{}deep{}</body></html>",
            "<div>".repeat(50_000),
            "</div>".repeat(50_000)
        );
        let d = doc(page.as_bytes(), Some("deep.html"), None).unwrap();
        assert_eq!(d.text, "deep");
    }
}
