//! JSON logs with slog: one object per line on stdout with `ts` (RFC 3339 UTC, ms),
//! `level`, `msg`, `service` and the record's own fields.

use std::io;
use std::str::FromStr;

use slog::{o, Drain, Level};

pub use slog::{debug, error, info, warn, Logger};

/// Keeps the async drain alive; dropping it flushes pending lines.
pub struct LogGuard(#[allow(dead_code)] slog_async::AsyncGuard);

/// Builds the root logger for `service`. `level` is `trace|debug|info|warning|error|critical`
/// (default `info`); an unknown level is an error naming the value.
pub fn init(service: &'static str, level: Option<&str>) -> Result<(Logger, LogGuard), String> {
    let level = parse_level(level)?;
    let (logger, guard) = build(service, level, io::stdout());
    Ok((logger, LogGuard(guard)))
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

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level(None).unwrap(), Level::Info);
        assert_eq!(parse_level(Some("warn")).unwrap(), Level::Warning);
        assert_eq!(parse_level(Some("debug")).unwrap(), Level::Debug);
        assert!(parse_level(Some("loud")).is_err());
    }
}
