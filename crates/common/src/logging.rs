//! JSON logs with slog: one object per line on stdout with `ts` (RFC 3339 UTC, ms),
//! `level`, `msg`, `service` and the record's own fields. Libraries' records (the `log`
//! facade, which `tracing` events reach too) join the same stream with their `target`,
//! and with the request's `request_id` and `trace_id` when they happen while it is
//! served.

use std::io;
use std::str::FromStr;

use slog::{o, Drain, Level};

pub use slog::{debug, error, info, warn, Logger};

/// Keeps the async drain alive; dropping it flushes pending lines.
pub struct LogGuard(#[allow(dead_code)] slog_async::AsyncGuard);

tokio::task_local! {
    /// The logger of the request being served (its id and trace), for library records.
    static REQUEST_LOGGER: Logger;
}

/// Runs `work` (serving one request) with `logger` as the one library records use.
pub async fn scope<F: std::future::Future>(logger: Logger, work: F) -> F::Output {
    REQUEST_LOGGER.scope(logger, work).await
}

/// Builds the root logger for `service`. `level` is `trace|debug|info|warning|error|critical`
/// (default `info`); an unknown level is an error naming the value. Library records
/// at that level and above go to the same logger (the first call in a process wins).
pub fn init(service: &'static str, level: Option<&str>) -> Result<(Logger, LogGuard), String> {
    let level = parse_level(level)?;
    let (logger, guard) = build(service, level, io::stdout());
    let bridge = LibraryLogs {
        root: logger.clone(),
        max: log_filter(level),
    };
    if log::set_boxed_logger(Box::new(bridge)).is_ok() {
        log::set_max_level(log_filter(level));
    }
    Ok((logger, LogGuard(guard)))
}

fn log_filter(level: Level) -> log::LevelFilter {
    match level {
        Level::Critical | Level::Error => log::LevelFilter::Error,
        Level::Warning => log::LevelFilter::Warn,
        Level::Info => log::LevelFilter::Info,
        Level::Debug => log::LevelFilter::Debug,
        Level::Trace => log::LevelFilter::Trace,
    }
}

/// The `log` facade's records, as slog records of the request being served (when a
/// library logs while serving one) or of the service.
struct LibraryLogs {
    root: Logger,
    max: log::LevelFilter,
}

impl log::Log for LibraryLogs {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= self.max
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let logger = REQUEST_LOGGER
            .try_with(Logger::clone)
            .unwrap_or_else(|_| self.root.clone());
        let target = record.target().to_owned();
        let message = record.args();
        match record.level() {
            log::Level::Error => slog::error!(logger, "{}", message; "target" => target),
            log::Level::Warn => slog::warn!(logger, "{}", message; "target" => target),
            log::Level::Info => slog::info!(logger, "{}", message; "target" => target),
            log::Level::Debug => slog::debug!(logger, "{}", message; "target" => target),
            log::Level::Trace => slog::trace!(logger, "{}", message; "target" => target),
        }
    }

    fn flush(&self) {}
}

pub fn parse_level(level: Option<&str>) -> Result<Level, String> {
    match level.map(str::trim) {
        None | Some("") => Ok(Level::Info),
        Some("warn") | Some("warning") => Ok(Level::Warning),
        Some(other) => Level::from_str(other).map_err(|_| {
            format!("invalid LOG_LEVEL {other:?}: use trace, debug, info, warning or error")
        }),
    }
}

fn build<W: io::Write + Send + 'static>(
    service: &'static str,
    level: Level,
    out: W,
) -> (Logger, slog_async::AsyncGuard) {
    let json = json_drain(out).fuse();
    let (drain, guard) = slog_async::Async::new(json)
        .chan_size(8192)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .thread_name("log".into())
        .build_with_guard();
    let drain = drain.filter_level(level).fuse();
    (Logger::root(drain, o!("service" => service)), guard)
}

fn json_drain<W: io::Write>(out: W) -> slog_json::Json<W> {
    slog_json::Json::new(out)
        .set_newlines(true)
        .set_flush(true)
        .add_key_value(o!(
            "ts" => slog::PushFnValue(|_, ser| {
                ser.emit(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            }),
            "level" => slog::FnValue(|rec| rec.level().as_str().to_ascii_lowercase()),
            "msg" => slog::PushFnValue(|rec, ser| ser.emit(rec.msg())),
        ))
        .build()
}

/// A logger writing the same JSON lines to `out`, synchronously (for tests that read
/// what a service logged).
pub fn to_writer<W: io::Write + Send + 'static>(service: &'static str, out: W) -> Logger {
    let drain = std::sync::Mutex::new(json_drain(out)).fuse();
    Logger::root(drain, o!("service" => service))
}

/// A logger that drops everything, for tests that do not look at logs.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_json_with_the_required_keys() {
        let buf = Buf::default();
        let logger = Logger::root(
            std::sync::Mutex::new(json_drain(buf.clone())).fuse(),
            o!("service" => "auth"),
        );
        slog::info!(logger, "hello"; "request_id" => "abc", "status" => 200);
        slog::warn!(logger, "second");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let first = &lines[0];
        assert_eq!(first["msg"], "hello");
        assert_eq!(first["level"], "info");
        assert_eq!(first["service"], "auth");
        assert_eq!(first["request_id"], "abc");
        assert_eq!(first["status"], 200);
        let ts = first["ts"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        assert!(
            ts.ends_with('Z') && ts.len() == "2026-01-01T00:00:00.000Z".len(),
            "{ts}"
        );
        assert_eq!(lines[1]["level"], "warning");
    }

    #[tokio::test]
    async fn library_records_join_the_stream_with_the_request_when_there_is_one() {
        use log::Log as _;
        let buf = Buf::default();
        let root = Logger::root(
            std::sync::Mutex::new(json_drain(buf.clone())).fuse(),
            o!("service" => "content"),
        );
        let bridge = LibraryLogs {
            root: root.clone(),
            max: log::LevelFilter::Info,
        };
        let record = |level, text: &'static str| {
            bridge.log(
                &log::Record::builder()
                    .level(level)
                    .target("r2d2")
                    .args(format_args!("{text}"))
                    .build(),
            )
        };
        record(log::Level::Error, "connection refused");
        record(log::Level::Debug, "too chatty");
        let request = root.new(o!("request_id" => "rid-7", "trace_id" => "t-7"));
        scope(request, async {
            record(log::Level::Warn, "pool timed out")
        })
        .await;

        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["msg"], "connection refused");
        assert_eq!(lines[0]["level"], "error");
        assert_eq!(lines[0]["target"], "r2d2");
        assert_eq!(lines[0]["service"], "content");
        assert!(lines[0].get("request_id").is_none());
        assert_eq!(lines[1]["msg"], "pool timed out");
        assert_eq!(lines[1]["request_id"], "rid-7");
        assert_eq!(lines[1]["trace_id"], "t-7");
    }

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level(None).unwrap(), Level::Info);
        assert_eq!(parse_level(Some("warn")).unwrap(), Level::Warning);
        assert_eq!(parse_level(Some("debug")).unwrap(), Level::Debug);
        assert!(parse_level(Some("loud")).is_err());
    }
}
