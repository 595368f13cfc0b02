//! State: the model of what exists, its versioned file format, and the local store.
//!
//! - [`model`]: plain data — resources, the intent journal, deposed instances, outputs.
//! - [`format`](mod@format): the versioned JSON layout on disk, with upgrade on read.
//! - [`StateStore`]: the seam every store implements — load, lock, snapshot and write, lock
//!   status, unlock.
//! - [`store`]: one state file on the local file system — lock, atomic write, backup.
//!
//! Every failure is a [`StateError`], with a [`StateError::hint`] for the CLI to print.
//!
//! Does not know about plans, providers or clouds, and prints nothing. The clouds' object stores
//! implement [`StateStore`] in their own crates.

mod backend;
mod error;
pub mod format;
mod location;
pub mod model;
pub mod remote;
pub mod store;

pub use backend::{OnNotice, OnWait, Snapshot, StateCopy, StateStore, StoreLock};
pub use error::{CorruptKind, StateError};
pub use format::FORMAT_VERSION;
pub use location::{RemoteLocation, Service};
pub use model::{Attrs, Deposed, Intent, Output, ResourceState, State};
pub use remote::{Object, ObjectError, ObjectStore, RemoteStore, Stored, Version};
pub use store::{LocalStore, LockInfo, LockOptions, StateLock, StateNotice};
