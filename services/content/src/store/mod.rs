//! The content service's tables. Every query takes the owner it is scoped to; none
//! reads another service's tables.

pub mod changes;
pub mod embed_jobs;
pub mod embeddings;
pub mod exports;
pub mod items;
pub mod links;
pub mod search;
pub mod webhooks;
