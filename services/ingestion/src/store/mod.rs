//! The ingestion service's tables.

pub mod feeds;
pub mod jobs;
