//! The auth service over real HTTP, on the backend of this run (PEERMESH_TEST_BACKEND).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod admin;
mod cli;
mod conformance;
mod db;
mod deletion;
mod jwks;
mod mail;
mod metrics;
mod oauth;
mod sessions;
