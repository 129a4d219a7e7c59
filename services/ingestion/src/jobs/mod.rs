//! The job pipeline: what a job does with a file or a feed (`pipeline`), the queue
//! workers that run jobs (`worker`), and large text files streamed in parts
//! (`large_text`).

pub mod large_text;
pub mod pipeline;
pub mod worker;
