//! State: the model of what exists, its versioned file format, and the local store.
//!
//! Does not know about plans, providers or clouds.

pub mod model;

pub use model::{Attrs, Intent, Output, ResourceState, State};
