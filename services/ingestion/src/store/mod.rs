//! The ingestion service's tables.

pub mod jobs;
