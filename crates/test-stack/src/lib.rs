//! Dev-only: the services started for tests, in-process on random ports or as their
//! binaries, alone or as a whole stack behind a real nginx, and the conformance checks
//! every service passes. The helpers that know no service are in
//! `peermesh-test-support`.

// Dev-only: a failed set-up step is a failed test, so panicking is the right answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;
pub mod spawn;
