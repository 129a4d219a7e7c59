//! Large plain-text files, read in blocks from start to end: checked and decoded block
//! by block, cut into chunks by a [`Splitter`] and sent to the content service as a
//! JSON body written while it is sent. Memory holds a few blocks and the chunk being
//! packed, never the file: a 100 MiB log costs what a 1 MiB one does.
//!
//! The item is the one [`formats::extract`] makes of the whole text: the same
//! decoding (BOM, else UTF-8, else the guessed encoding; binary data refused), `\r\n`
//! turned into `\n`, the first non-blank line as the title and the same chunks.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use encoding_rs::{DecoderResult, Encoding, UTF_8};
use peermesh_chunking::{Span, Splitter};
use serde_json::Value;

use crate::error::JobError;
use crate::formats::{self, FormatError};

/// Plain-text files larger than this are streamed; smaller ones are read whole.
pub const STREAM_ABOVE: u64 = 1 << 20;

/// Bytes read from the file at a time, and the size of the pieces of the body sent.
const BLOCK: usize = 64 * 1024;

/// A plain-text file checked from end to end, with the encoding to read it in.
#[derive(Debug, Clone)]
pub struct TextFile {
    path: PathBuf,
    encoding: &'static Encoding,
    /// The length of its byte-order mark.
    bom: usize,
}

fn binary() -> JobError {
    FormatError::Unsupported("the file is binary data of no known format".into()).into()
}

fn io_error(e: io::Error) -> JobError {
    JobError::Internal(format!("reading the stored file: {e}"))
}

/// Calls `f` with each block of the file, in order.
fn blocks(
    path: &PathBuf,
    mut f: impl FnMut(&[u8]) -> Result<(), JobError>,
) -> Result<(), JobError> {
    let mut file = File::open(path).map_err(io_error)?;
    let mut block = vec![0; BLOCK];
    loop {
        let n = file.read(&mut block).map_err(io_error)?;
        if n == 0 {
            return Ok(());
        }
        f(&block[..n])?;
    }
}

impl TextFile {
    /// The file at `path` as plain text to stream, when its first bytes say it is
    /// plain text (other formats are read whole).
    pub fn open_if_text(
        path: PathBuf,
        filename: Option<&str>,
        declared: Option<&str>,
    ) -> Result<Option<Self>, JobError> {
        let mut head = Vec::with_capacity(BLOCK);
        File::open(&path)
            .and_then(|f| f.take(BLOCK as u64).read_to_end(&mut head))
            .map_err(io_error)?;
        match formats::detect_head(&head, filename, declared, false) {
            Ok(formats::Format::Text) => Self::scan(path).map(Some),
            _ => Ok(None),
        }
    }

    /// Decides the encoding as [`formats::decode_text`] does for a whole file: a BOM
    /// decides; else valid UTF-8 is taken as such; else the encoding is guessed from
    /// all the bytes. A NUL without a BOM is refused here; bytes the encoding cannot
    /// decode are found while the text is read (the body then breaks off).
    pub fn scan(path: PathBuf) -> Result<Self, JobError> {
        let mut head = Vec::with_capacity(4);
        File::open(&path)
            .and_then(|f| f.take(4).read_to_end(&mut head))
            .map_err(io_error)?;
        if let Some((encoding, bom)) = Encoding::for_bom(&head) {
            return Ok(Self {
                path,
                encoding,
                bom,
            });
        }
        // UTF-8 (and no NUL), carrying a sequence cut by the end of a block over.
        let (mut utf8, mut carry) = (true, Vec::new());
        blocks(&path, |block| {
            if block.contains(&0) {
                return Err(binary());
            }
            if utf8 {
                carry.extend_from_slice(block);
                match std::str::from_utf8(&carry) {
                    Ok(_) => carry.clear(),
                    Err(e) if e.error_len().is_none() => {
                        carry.drain(..e.valid_up_to());
                    }
                    Err(_) => utf8 = false,
                }
            }
            Ok(())
        })?;
        let encoding = if utf8 && carry.is_empty() {
            UTF_8
        } else {
            let mut detector =
                chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
            blocks(&path, |block| {
                detector.feed(block, false);
                Ok(())
            })?;
            detector.feed(&[], true);
            detector.guess(None, chardetng::Utf8Detection::Allow)
        };
        Ok(Self {
            path,
            encoding,
            bom: 0,
        })
    }

    /// Calls `f` with the text in blocks, `\r\n` already turned into `\n`.
    fn decode(&self, mut f: impl FnMut(&str) -> Result<(), JobError>) -> Result<(), JobError> {
        let mut decoder = self.encoding.new_decoder_without_bom_handling();
        let mut text = String::new();
        // A `\r` ending a block waits for the next one, which may start with `\n`.
        let mut held_cr = false;
        let mut skip = self.bom;
        let mut step = |input: &[u8], last: bool| -> Result<(), JobError> {
            let cut = skip.min(input.len());
            skip -= cut;
            let input = &input[cut..];
            text.clear();
            if held_cr {
                text.push('\r');
            }
            let room = decoder
                .max_utf8_buffer_length_without_replacement(input.len())
                .ok_or_else(binary)?;
            text.reserve(room);
            let (result, _) = decoder.decode_to_string_without_replacement(input, &mut text, last);
            if !matches!(result, DecoderResult::InputEmpty) {
                return Err(binary());
            }
            held_cr = !last && text.ends_with('\r');
            if held_cr {
                text.pop();
            }
            if text.contains('\r') {
                f(&text.replace("\r\n", "\n"))
            } else {
                f(&text)
            }
        };
        blocks(&self.path, |block| step(block, false))?;
        step(&[], true)
    }
}

/// What the item gets besides the file's text.
pub struct ItemHead {
    pub title: Option<String>,
    pub filename: Option<String>,
    pub tags: Vec<String>,
    pub source: Value,
    pub metadata: Value,
    pub chunk_chars: usize,
    pub overlap: usize,
}

/// The body of `POST /api/v1/content` for `file`, written by a blocking task while it
/// is sent. When writing fails (the file cannot be read, it holds no text) the body
/// breaks off — the content service creates nothing from a cut body — and the reason
/// is left in the returned slot.
pub fn item_body(
    file: TextFile,
    head: Arc<ItemHead>,
) -> (reqwest::Body, Arc<Mutex<Option<JobError>>>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    let failure = Arc::new(Mutex::new(None));
    let slot = failure.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Sender {
            tx,
            buf: Vec::with_capacity(BLOCK),
        };
        if let Err(e) = write_item(&file, &head, &mut out) {
            // A closed channel means the request ended first: nothing to report.
            if !out.tx.is_closed() {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                let _ = out
                    .tx
                    .blocking_send(Err(io::Error::other("the document could not be read")));
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (reqwest::Body::wrap_stream(stream), failure)
}

/// Sends what is written in pieces of [`BLOCK`] bytes, waiting while the request is
/// behind.
struct Sender {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for Sender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= BLOCK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK)));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

fn write_error(e: impl std::fmt::Display) -> JobError {
    JobError::Internal(format!("sending the document: {e}"))
}

/// The item's JSON: chunks first (cut while the text is read), then the text read
/// again, then the title (its first non-blank line, seen on the way).
fn write_item(file: &TextFile, head: &ItemHead, out: &mut Sender) -> Result<(), JobError> {
    let fields = serde_json::json!({
        "kind": "document",
        "tags": head.tags,
        "source": head.source,
        "metadata": head.metadata,
    });
    let fields = serde_json::to_string(&fields).map_err(write_error)?;
    out.write_all(&fields.as_bytes()[..fields.len() - 1])
        .map_err(write_error)?;
    out.write_all(b",\"chunks\":[").map_err(write_error)?;

    let mut splitter = Splitter::new(head.chunk_chars, head.overlap);
    let mut title = FirstLine::default();
    let mut chunks = 0usize;
    let mut written: io::Result<()> = Ok(());
    // Offsets alone: the content service takes each chunk's text from the body.
    let mut write_chunk = |span: Span, _: &str| {
        if written.is_ok() {
            written = (|| {
                if chunks > 0 {
                    out.write_all(b",")?;
                }
                write!(out, "{{\"start\":{},\"end\":{}}}", span.start, span.end)
            })();
            chunks += 1;
        }
    };
    file.decode(|text| {
        title.feed(text);
        splitter.push_spans(text, &mut write_chunk);
        Ok(())
    })?;
    splitter.finish_spans(&mut write_chunk);
    written.map_err(write_error)?;
    if chunks == 0 {
        return Err(FormatError::Corrupt("the file holds no text".into()).into());
    }

    out.write_all(b"],\"body\":\"").map_err(write_error)?;
    file.decode(|text| {
        let quoted = serde_json::to_string(text).map_err(write_error)?;
        out.write_all(&quoted.as_bytes()[1..quoted.len() - 1])
            .map_err(write_error)
    })?;
    out.write_all(b"\",\"title\":").map_err(write_error)?;
    let title = head
        .title
        .clone()
        .unwrap_or_else(|| formats::title_or_name(title.line(), head.filename.as_deref()));
    serde_json::to_writer(&mut *out, &title).map_err(write_error)?;
    out.write_all(b"}").map_err(write_error)?;
    out.flush().map_err(write_error)
}

/// The first non-blank line of a text given in blocks, trimmed, at most
/// [`formats::TITLE_LINE_CHARS`] characters (as [`formats`] takes it from a whole
/// text).
#[derive(Default)]
struct FirstLine {
    /// The line so far, from its first non-blank character, cut at the limit.
    line: String,
    chars: usize,
    /// Text follows the kept characters: they are kept as they are, not trimmed.
    trailing: bool,
    found: Option<String>,
}

impl FirstLine {
    fn feed(&mut self, text: &str) {
        for c in text.chars() {
            if self.found.is_some() {
                return;
            }
            if c == '\n' {
                self.found = self.line();
                continue;
            }
            if self.line.is_empty() && c.is_whitespace() {
                continue;
            }
            if self.chars < formats::TITLE_LINE_CHARS {
                self.line.push(c);
                self.chars += 1;
            } else if !c.is_whitespace() && !self.trailing {
                // More text follows the kept part: the kept part stays as it is.
                self.trailing = true;
            }
        }
    }

    /// The title line: the one found, else the line so far (the text may end in it).
    fn line(&self) -> Option<String> {
        if let Some(found) = &self.found {
            return Some(found.clone());
        }
        let line = if self.trailing {
            self.line.as_str()
        } else {
            self.line.trim_end()
        };
        (!line.is_empty()).then(|| line.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_found_in_parts_is_the_whole_text_s_title() {
        let long = "word ".repeat(60);
        for text in [
            "Title\nbody".to_owned(),
            "\n \t\n   Indented title   \nbody".to_owned(),
            format!("{long}\nbody"),
            format!("  {}  \t\nbody", "x".repeat(200)),
            format!("{} tail", "y".repeat(199)),
            "only one line without an end  ".to_owned(),
            "mid\rline carriage\r\nnext".replace("\r\n", "\n"),
        ] {
            let whole = formats::extract(
                formats::Format::Text,
                text.clone(),
                &[],
                None,
                &formats::Limits::default(),
            )
            .unwrap();
            for size in [1, 2, 7, 1000] {
                let mut title = FirstLine::default();
                let chars: Vec<char> = text.chars().collect();
                for part in chars.chunks(size) {
                    title.feed(&part.iter().collect::<String>());
                }
                let found = formats::title_or_name(title.line(), None);
                assert_eq!(found, whole.title, "{text:?} in parts of {size}");
            }
        }
    }
}
