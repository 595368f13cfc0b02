//! State: the model of what exists, its versioned file format, and the local store.
//!
//! - [`model`]: plain data — resources, the intent journal, deposed instances, outputs.
//! - [`format`](mod@format): the versioned JSON layout on disk, with upgrade on read.
//! - [`store`]: one state file on the local file system — lock, atomic write, backup.
//!
//! Every failure is a [`StateError`], with a [`StateError::hint`] for the CLI to print.
//!
//! Does not know about plans, providers or clouds, and prints nothing. Remote stores (object
//! storage with a lock table) are not written yet; they will sit next to [`LocalStore`].

mod error;
pub mod format;
pub mod model;
pub mod store;

pub use error::{CorruptKind, StateError};
pub use format::FORMAT_VERSION;
pub use model::{Attrs, Deposed, Intent, Output, ResourceState, State};
pub use store::{LocalStore, LockInfo, LockOptions, StateLock, StateNotice};
