//! What the services of this test process logged, for tests that check log lines
//! (e.g. that a trace id reached every service). Off until a test calls [`capture`];
//! then every service spawned in this process writes its JSON lines to one buffer, and
//! tests pick their own lines out by a value only they used.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use peermesh_common::logging::{self, Logger};
use serde_json::Value;

static ON: AtomicBool = AtomicBool::new(false);
static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// One service's writer: a record arrives in several writes, and services log at the
/// same time, so only whole lines go to the shared buffer.
#[derive(Default)]
struct Shared {
    pending: Vec<u8>,
}

impl io::Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        if let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') {
            let whole: Vec<u8> = self.pending.drain(..=end).collect();
            LINES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&whole);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// From now on, services spawned in this process log into the shared buffer.
pub fn capture() {
    ON.store(true, Ordering::SeqCst);
}

/// The logger a spawned service gets.
pub fn logger(service: &'static str) -> Logger {
    if ON.load(Ordering::SeqCst) {
        logging::to_writer(service, Shared::default())
    } else {
        logging::discard()
    }
}

/// Every line logged so far, parsed.
pub fn lines() -> Vec<Value> {
    let bytes = LINES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
