//! The content service over real HTTP, on the backend of this run (PEERMESH_TEST_BACKEND).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod changes;
mod conformance;
mod embeddings;
mod exports;
mod graph;
mod items;
mod recall;
mod search;
mod support;
mod telemetry;
mod webhooks;
