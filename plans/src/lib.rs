//! The engine: resource addresses and values, the desired graph, diffs, plans as data, the
//! dependency-graph walker, and the provider trait.
//!
//! It depends on no cloud SDK and no Kubernetes crate: providers implement [`Provider`] in their
//! own crates. It does not read the platform spec or write files; the CLI wires those in.

// Engine errors carry typed addresses for callers to act on; they are built at most a few times
// per run, next to network I/O, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod diff;
pub mod engine;
pub mod graph;
pub mod plan;
pub mod provider;
pub mod resource;
pub mod value;
pub mod wait;

pub use diff::AttrChange;
pub use engine::*;
pub use matih_addrs::{AddrError, InstanceKey, ResourceAddr, ResourceType};
pub use plan::*;
pub use provider::*;
pub use resource::{Desired, DesiredGraph, OutputSpec};
pub use value::{Ref, Value};
