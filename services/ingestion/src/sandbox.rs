//! Reading files in a bounded child process. Parsers of compressed formats can be made
//! to blow up: a 2 MiB PDF whose content stream inflates to gigabytes, a PDF of 100 000
//! pages that its reader walks again for every page, a DOCX crafted for its XML. So a
//! file's format is read by a child process of this same binary
//! (`peermesh-ingestion parse`), which limits its own address space (`RLIMIT_AS`) and
//! CPU time before it reads anything; the parent kills it at its wall-clock deadline.
//! A child that runs out of either ends the job with a clear reason (422 in a request),
//! never the service.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::formats::{self, Document, Format, FormatError};

/// The argument that makes the binary a parser child.
pub const CHILD_ARG: &str = "parse";

/// What the child is asked to read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParseRequest {
    pub path: PathBuf,
    pub filename: Option<String>,
    pub declared_type: Option<String>,
    pub chunk_chars: usize,
    pub overlap: usize,
    pub max_pdf_pages: usize,
    /// A web page: keep its main text only (see `formats::Limits::readable`).
    #[serde(default)]
    pub readable: bool,
    /// The child's address-space limit, in bytes.
    pub memory_bytes: u64,
    /// The child's CPU-time limit, in seconds.
    pub cpu_secs: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChunkOut {
    text: String,
    start: usize,
    end: usize,
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Parsed {
        format: String,
        title: String,
        text: String,
        metadata: Map<String, Value>,
        chunks: Vec<ChunkOut>,
    },
    Unsupported(String),
    Mismatch(String),
    Corrupt(String),
    TooComplex(String),
}

/// How files are parsed (`INGEST_PARSER_BIN`, `INGEST_PARSE_MEMORY_MB`,
/// `INGEST_PARSE_TIMEOUT_SECS`, `INGEST_PDF_MAX_PAGES`).
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub binary: PathBuf,
    pub memory_bytes: u64,
    pub timeout: Duration,
    pub max_pdf_pages: usize,
}

impl Sandbox {
    /// Reads the stored file at `path`: its document and chunks.
    pub async fn parse(
        &self,
        path: PathBuf,
        filename: Option<String>,
        declared_type: Option<String>,
        chunk_chars: usize,
        overlap: usize,
        readable: bool,
    ) -> Result<(Document, Vec<peermesh_chunking::Chunk>), SandboxError> {
        let request = ParseRequest {
            path,
            filename,
            declared_type,
            chunk_chars,
            overlap,
            max_pdf_pages: self.max_pdf_pages,
            readable,
            memory_bytes: self.memory_bytes,
            cpu_secs: self.timeout.as_secs().max(1),
        };
        let input =
            serde_json::to_vec(&request).map_err(|e| SandboxError::Internal(e.to_string()))?;
        let mut child = tokio::process::Command::new(&self.binary)
            .arg(CHILD_ARG)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                SandboxError::Internal(format!("starting {}: {e}", self.binary.display()))
            })?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| SandboxError::Internal("no stdin".into()))?;
        let run = async {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(&input)
                .await
                .map_err(|e| SandboxError::Internal(e.to_string()))?;
            drop(stdin);
            child
                .wait_with_output()
                .await
                .map_err(|e| SandboxError::Internal(e.to_string()))
        };
        let output = match tokio::time::timeout(self.timeout, run).await {
            Ok(output) => output?,
            // Dropping the future drops the child, which kills it.
            Err(_) => {
                return Err(SandboxError::Format(FormatError::TooComplex(format!(
                    "reading the file took longer than {} s",
                    self.timeout.as_secs()
                ))))
            }
        };
        if !output.status.success() {
            return Err(SandboxError::Format(FormatError::TooComplex(
                self.why_it_died(output.status),
            )));
        }
        let reply: Reply = serde_json::from_slice(&output.stdout)
            .map_err(|e| SandboxError::Internal(format!("the parser's answer: {e}")))?;
        match reply {
            Reply::Parsed {
                format,
                title,
                text,
                metadata,
                chunks,
            } => Ok((
                Document {
                    format: Format::from_name(&format)
                        .ok_or_else(|| SandboxError::Internal(format!("format {format:?}")))?,
                    title,
                    text,
                    metadata,
                },
                chunks
                    .into_iter()
                    .map(|c| peermesh_chunking::Chunk {
                        text: c.text,
                        start: c.start,
                        end: c.end,
                    })
                    .collect(),
            )),
            Reply::Unsupported(m) => Err(SandboxError::Format(FormatError::Unsupported(m))),
            Reply::Mismatch(m) => Err(SandboxError::Format(FormatError::Mismatch(m))),
            Reply::Corrupt(m) => Err(SandboxError::Format(FormatError::Corrupt(m))),
            Reply::TooComplex(m) => Err(SandboxError::Format(FormatError::TooComplex(m))),
        }
    }

    fn why_it_died(&self, status: std::process::ExitStatus) -> String {
        use std::os::unix::process::ExitStatusExt;
        let mib = self.memory_bytes / (1024 * 1024);
        match status.signal() {
            // SIGXCPU (24): the CPU limit.
            Some(24) => format!(
                "reading the file took more than {} s of CPU time",
                self.timeout.as_secs()
            ),
            // An allocation refused under RLIMIT_AS aborts (SIGABRT) or, in C code,
            // crashes (SIGSEGV); SIGKILL is the kernel's out-of-memory killer.
            Some(_) => format!("reading the file needs more than {mib} MiB of memory"),
            None => "the file could not be read (its reader failed)".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The sandbox itself failed (not the file): worth another attempt.
    #[error("the parser could not run: {0}")]
    Internal(String),
}

/// The child: limits itself, reads the request from stdin, parses, answers on stdout.
pub fn child_main() -> std::process::ExitCode {
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return std::process::ExitCode::FAILURE;
    }
    let Ok(request) = serde_json::from_slice::<ParseRequest>(&input) else {
        return std::process::ExitCode::FAILURE;
    };
    drop(input);
    if limit_self(&request).is_err() {
        return std::process::ExitCode::FAILURE;
    }
    let reply = match parse_in_child(&request) {
        Ok((document, chunks)) => Reply::Parsed {
            format: document.format.name().to_owned(),
            title: document.title,
            text: document.text,
            metadata: document.metadata,
            chunks: chunks
                .into_iter()
                .map(|c| ChunkOut {
                    text: c.text,
                    start: c.start,
                    end: c.end,
                })
                .collect(),
        },
        Err(FormatError::Unsupported(m)) => Reply::Unsupported(m),
        Err(FormatError::Mismatch(m)) => Reply::Mismatch(m),
        Err(FormatError::Corrupt(m)) => Reply::Corrupt(m),
        Err(FormatError::TooComplex(m)) => Reply::TooComplex(m),
    };
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &reply).map_err(std::io::Error::from);
    match written.and_then(|()| out.flush()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}

fn limit_self(request: &ParseRequest) -> rustix::io::Result<()> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    // Dies with the service: a killed worker leaves no reader running on.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(request.memory_bytes),
            maximum: Some(request.memory_bytes),
        },
    )?;
    // SIGXCPU at the soft limit, SIGKILL a second later.
    setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(request.cpu_secs),
            maximum: Some(request.cpu_secs + 1),
        },
    )
}

fn parse_in_child(
    request: &ParseRequest,
) -> Result<(Document, Vec<peermesh_chunking::Chunk>), FormatError> {
    let bytes = std::fs::read(&request.path)
        .map_err(|e| FormatError::Corrupt(format!("the stored file cannot be read: {e}")))?;
    let (format, text) = formats::detect(
        &bytes,
        request.filename.as_deref(),
        request.declared_type.as_deref(),
    )?;
    // Text formats need only the decoded text from here on: free the bytes first.
    let bytes = if matches!(format, Format::Pdf | Format::Docx) {
        bytes
    } else {
        drop(bytes);
        Vec::new()
    };
    let limits = formats::Limits {
        max_pdf_pages: request.max_pdf_pages,
        readable: request.readable,
    };
    let document = formats::extract(format, text, &bytes, request.filename.as_deref(), &limits)?;
    drop(bytes);
    let chunks =
        peermesh_chunking::split_with_overlap(&document.text, request.chunk_chars, request.overlap);
    Ok((document, chunks))
}
