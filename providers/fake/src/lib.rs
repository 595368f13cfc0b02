//! The fake cloud: a provider whose "cloud" is a map in memory or a JSON file on disk.
//!
//! It exists to prove the engine: it records every call, can add latency, fail chosen operations, and answers
//! refreshes with one batched call per type, as real providers must. The file-backed mode lets
//! several processes (the CLI under test, the test itself acting as "the cloud console") share one
//! cloud. It is not a model of any real cloud's API and makes no claims about one.

mod cloud;
mod graph;

pub use cloud::{Call, FailOn, FakeCloud, FakeObject, FakeOptions};
pub use graph::{desired_graph, schemas};
