//! The ingestion service's tables.

pub mod accounts;
pub mod feeds;
pub mod jobs;
