//! The ingestion service over real HTTP, on the backend of this run (PEERMESH_TEST_BACKEND).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod callbacks;
mod cli;
mod conformance;
mod documents;
mod exports;
mod feeds;
mod files;
mod limits;
mod metrics;
mod process;
mod urls;
