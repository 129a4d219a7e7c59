//! The side-by-side measurement of `GET /api/v1/content/{id}`: our stack, the ceiling
//! (the same gateway proxying to a static nginx) and a FastAPI reference, all behind
//! the same nginx config, all driven by the same load generator (wrk, a C program
//! that costs the machine far less per request than any client we could write in
//! Rust with reqwest). Scenarios are interleaved — ceiling, ours, FastAPI, then again
//! — so that a slow minute of the machine hits all three alike, and every figure is
//! the median of the repetitions with their range beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One server under test: a gateway base URL that answers `GET /api/v1/content/{id}`.
pub struct Target {
    pub name: &'static str,
    pub base: String,
}

/// What wrk measured in one run.
#[derive(Debug, Clone, Copy)]
struct Measured {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Non-2xx answers and socket errors together.
    errors: u64,
}

/// The wrk script: a random id of the list for every request, the bearer token on all.
const SCRIPT: &str = r#"
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
function init(args)
    math.randomseed(os.time() * 1000 + tid)
    ids = {}
    for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
    headers = { ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN") }
end
function request()
    return wrk.format("GET", "/api/v1/content/" .. ids[math.random(#ids)], headers)
end
"#;

pub struct Compare {
    dir: PathBuf,
    secs: u64,
    reps: usize,
    threads: usize,
}

impl Compare {
    /// `dir` holds the wrk script and the id lists; `threads` wrk threads per run.
    pub fn new(dir: &Path, secs: u64, reps: usize, threads: usize) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("get.lua"), SCRIPT).unwrap();
        Self {
            dir: dir.to_owned(),
            secs,
            reps,
            threads,
        }
    }

    /// Runs every target at every concurrency `reps` times, interleaved, over random
    /// ids of `ids`, and prints medians, ranges and the ratios of the first target
    /// ("ours") to each other. Returns the median ratios ours/other per concurrency.
    pub fn run(
        &self,
        label: &str,
        targets: &[Target],
        ids: &[String],
        token: &str,
        concurrencies: &[usize],
    ) -> Vec<(usize, Vec<f64>)> {
        let ids_file = self.dir.join(format!("ids-{}", ids.len()));
        std::fs::write(&ids_file, ids.join("\n") + "\n").unwrap();
        // A short warm-up of each target: caches, pools and the JIT of the reference.
        for t in targets {
            self.wrk(t, &ids_file, token, concurrencies[0], 2);
        }
        let mut out = Vec::new();
        for &conc in concurrencies {
            let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); targets.len()];
            for _ in 0..self.reps {
                for (i, t) in targets.iter().enumerate() {
                    runs[i].push(self.wrk(t, &ids_file, token, conc, self.secs));
                }
            }
            println!(
                "GET /content/{{id}}, {label}, {conc} connections, {} × {} s each, interleaved:",
                self.reps, self.secs
            );
            for (t, r) in targets.iter().zip(&runs) {
                let rps: Vec<f64> = r.iter().map(|m| m.rps).collect();
                let p50: Vec<f64> = r.iter().map(|m| m.p50_ms).collect();
                let p99: Vec<f64> = r.iter().map(|m| m.p99_ms).collect();
                let errors: u64 = r.iter().map(|m| m.errors).sum();
                println!(
                    "  {:<9} {} req/s, p50 {} ms, p99 {} ms{}",
                    t.name,
                    spread(&rps, 0),
                    spread(&p50, 2),
                    spread(&p99, 2),
                    if errors > 0 {
                        format!(", {errors} ERRORS")
                    } else {
                        String::new()
                    }
                );
            }
            // Ratios per repetition (the runs of one repetition are minutes apart at
            // most), then their median and range.
            let mut medians = Vec::new();
            let mut line = String::from("  ratios:");
            for (i, t) in targets.iter().enumerate().skip(1) {
                let ratios: Vec<f64> = runs[0]
                    .iter()
                    .zip(&runs[i])
                    .map(|(ours, other)| ours.rps / other.rps)
                    .collect();
                write!(
                    line,
                    " {}/{} {}×",
                    targets[0].name,
                    t.name,
                    spread(&ratios, 2)
                )
                .unwrap();
                medians.push(median(&ratios));
            }
            println!("{line}");
            out.push((conc, medians));
        }
        out
    }

    fn wrk(&self, target: &Target, ids: &Path, token: &str, conc: usize, secs: u64) -> Measured {
        let output = Command::new("wrk")
            .args([
                "--latency",
                "-t",
                &self.threads.min(conc).to_string(),
                "-c",
                &conc.to_string(),
                "-d",
                &format!("{secs}s"),
                "--timeout",
                "10s",
                "-s",
            ])
            .arg(self.dir.join("get.lua"))
            .arg(&target.base)
            .env("BENCH_IDS", ids)
            .env("BENCH_TOKEN", token)
            .output()
            .expect("wrk (apt-get install wrk)");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk's report:\n{text}"))
    }
}

/// Reads requests/s, the 50th and 99th latency percentiles and the error counts from
/// wrk's `--latency` report.
fn parse_wrk(text: &str) -> Option<Measured> {
    let mut m = Measured {
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
    };
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => m.rps = v.parse().ok()?,
            (Some("50%"), Some(v)) => m.p50_ms = millis(v)?,
            (Some("99%"), Some(v)) => m.p99_ms = millis(v)?,
            _ => {}
        }
        if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            m.errors += n.trim().parse::<u64>().ok()?;
        }
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            m.errors += rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    (!m.rps.is_nan()).then_some(m)
}

/// wrk prints durations as `512.00us`, `1.23ms`, `2.00s` or `1.00m`.
fn millis(v: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    Some(number.parse::<f64>().ok()? * factor)
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// "median (min–max)".
fn spread(values: &[f64], decimals: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{:.decimals$} ({:.decimals$}–{:.decimals$})",
        median(values),
        min,
        max
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 10s test @ http://127.0.0.1:18080
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.10ms    1.20ms  30.00ms   80.00%
    Req/Sec    15.60k     1.00k   17.00k    70.00%
  Latency Distribution
     50%  850.00us
     75%    4.50ms
     90%    5.00ms
     99%    1.20s
  156000 requests in 10.00s, 400.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  15600.12
Transfer/sec:     40.00MB
";
        let m = parse_wrk(report).unwrap();
        assert_eq!(m.rps, 15600.12);
        assert!((m.p50_ms - 0.85).abs() < 1e-9);
        assert_eq!(m.p99_ms, 1200.0);
        assert_eq!(m.errors, 12);
        assert!(parse_wrk("no report").is_none());
    }

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(spread(&[0.8, 0.7, 0.9], 2), "0.80 (0.70–0.90)");
    }
}
