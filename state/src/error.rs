//! The one error type of this crate, [`StateError`], and its "how to fix it" hints.
//!
//! Every refusal the format and the store make is a variant of its own, so callers match on the
//! type, never on the text. The messages name the files involved; [`StateError::hint`] gives the
//! line the CLI prints as `hint:`. This module does not print anything or choose exit codes.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use matih_addrs::ResourceAddr;

use crate::format::TOOL_VERSION;
use crate::store::LockInfo;

/// Why a state file could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptKind {
    /// The file has no content at all.
    Empty,
    /// The file ends in the middle of the document (an interrupted copy, a full disk).
    Truncated,
    /// The text is not JSON.
    Syntax,
    /// The text is JSON, but not a state file of the version it claims (a missing or unknown
    /// field, a value of the wrong type, an address that does not parse).
    Invalid,
}

impl fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CorruptKind::Empty => "is empty",
            CorruptKind::Truncated => "is truncated",
            CorruptKind::Syntax => "is not valid JSON",
            CorruptKind::Invalid => "is not a valid state file",
        })
    }
}

/// Everything that can go wrong reading, writing or locking state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A file system operation on the state file, its backup, temporary or lock file failed.
    #[error("could not {op} `{}`", path.display())]
    Io {
        /// What was being done, as a verb phrase: "read", "create directory", "rename into place".
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The file is empty, truncated or not a state file. It was left untouched.
    #[error("state file `{}` {kind} (line {line}, column {column})", path.display())]
    Corrupt {
        path: PathBuf,
        kind: CorruptKind,
        /// 1-based line of the problem, as reported by the JSON parser.
        line: usize,
        /// 1-based column of the problem; 0 when the problem is at the very start of the line
        /// (as for an empty file, or one cut off right after a newline).
        column: usize,
        /// The backup next to the file, when there is one to restore from.
        backup: Option<PathBuf>,
        #[source]
        source: serde_json::Error,
    },

    /// The file is in a format newer than this matih-infra reads.
    #[error(
        "state file `{}` is in format version {found}; this matih-infra ({TOOL_VERSION}) reads format versions up to {supported}{}",
        path.display(),
        written_by.as_deref().map(|v| format!(" (the file says matih-infra {v} wrote it)")).unwrap_or_default()
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
        /// The `tool_version` recorded in the file, when it has one.
        written_by: Option<String>,
    },

    /// The file has no `format_version`, or one older than any matih-infra ever wrote.
    #[error(
        "state file `{}` has {}, which this matih-infra cannot read",
        path.display(),
        match found { Some(v) => format!("unknown format version {v}"), None => "no `format_version`".to_string() }
    )]
    UnknownFormat { path: PathBuf, found: Option<u32> },

    /// The state file's serial is older than its backup's: the file was replaced by an older
    /// copy, or the backup by a newer one. Loading it would lose the newer records.
    #[error(
        "state file `{}` (serial {serial}) is older than its backup `{}` (serial {backup_serial})",
        path.display(),
        backup.display()
    )]
    OlderThanBackup { path: PathBuf, serial: u64, backup: PathBuf, backup_serial: u64 },

    /// The state file is missing but its backup exists; starting from empty state would forget
    /// every resource the backup records.
    #[error("state file `{}` is missing, but its backup `{}` exists", path.display(), backup.display())]
    MissingWithBackup { path: PathBuf, backup: PathBuf },

    /// The state file and its backup belong to different lineages: the state file was replaced
    /// by another environment's (or another copy's) since the last save. Loading it would make
    /// this environment's resources look absent and plan to create them again.
    #[error(
        "state file `{}` (lineage {lineage}) is not the file its backup `{}` (lineage {backup_lineage}) was saved from: it was replaced since the last save",
        path.display(),
        backup.display()
    )]
    LineageMismatch { path: PathBuf, lineage: String, backup: PathBuf, backup_lineage: String },

    /// The state path is a chain of symbolic links that never ends in a file (a loop, or more
    /// than 40 links).
    #[error("state file `{}` is a symbolic link that loops (or goes through more than 40 links)", path.display())]
    SymlinkLoop { path: PathBuf },

    /// The state file became a symbolic link after the store was opened; saving would replace
    /// the link and leave its target stale.
    #[error("state file `{}` is a symbolic link; this store was opened on the file itself", path.display())]
    UnexpectedSymlink { path: PathBuf },

    /// Another process holds the state lock.
    #[error("{}", locked_message(path, holder.as_deref(), *waited))]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as recorded in the lock file (absent if it could not be read).
        holder: Option<Box<LockInfo>>,
        /// How long this process waited before giving up.
        waited: Duration,
    },

    /// The same address appears twice in `resources` or `intents`.
    #[error("state file `{}` lists `{address}` more than once", path.display())]
    DuplicateAddress {
        path: PathBuf,
        /// Boxed to keep `StateError` small.
        address: Box<ResourceAddr>,
    },

    /// An entry's `type` does not match the type part of its address.
    #[error("state file `{}` records `{address}` with type `{rtype}`, which does not match its address", path.display())]
    TypeMismatch {
        path: PathBuf,
        /// Boxed to keep `StateError` small.
        address: Box<ResourceAddr>,
        rtype: String,
    },

    /// A call to a remote store failed.
    #[error("could not {op} `{url}`")]
    Remote {
        op: &'static str,
        url: String,
        #[source]
        source: crate::remote::ObjectError,
    },

    /// The remote state changed since this process read it: another writer (with the lock
    /// broken or bypassed) got there first. Nothing was written.
    #[error(
        "the state at `{url}` changed since this command read it (expected serial {expected_serial}, found {}): another writer saved it; nothing was written",
        match (found_serial, found_lineage) {
            (Some(s), Some(l)) => format!("serial {s} of lineage {l}"),
            (Some(s), None) => format!("serial {s}"),
            _ => "no state".to_string(),
        }
    )]
    WriteConflict {
        url: String,
        expected_serial: u64,
        found_serial: Option<u64>,
        found_lineage: Option<String>,
        /// Where the state this command could not write was saved instead.
        saved: Option<PathBuf>,
    },

    /// This process's lease on the lock ran out or was taken over; it must not write.
    #[error(
        "the state lock `{url}` is no longer held by this command (its lease could not be renewed in time{})",
        holder.as_ref().map(|h| format!("; now held by `{}` (pid {} on host {})", h.command, h.pid, h.host)).unwrap_or_default()
    )]
    LockLost {
        url: String,
        holder: Option<Box<LockInfo>>,
        /// Where the state this command could not write was saved instead.
        saved: Option<PathBuf>,
    },

    /// `state unlock --force` was given an id that is not the current holder's.
    #[error("the lock `{url}` is held under id {}, not {given}", holder.id)]
    LockIdMismatch { url: String, given: String, holder: Box<LockInfo> },

    /// `save` was given the lock of another store. A bug in the caller, not in the files.
    #[error("the lock `{}` does not guard state file `{}`", lock.display(), path.display())]
    WrongLock { path: PathBuf, lock: PathBuf },
}

/// Whether a `tool_version` is a later release than this one (dotted numbers compared as
/// numbers; anything that does not parse counts as later, so the hint stays "upgrade").
fn newer_than_this(v: &str) -> bool {
    fn parts(v: &str) -> Option<Vec<u64>> {
        v.split(['-', '+']).next()?.split('.').map(|p| p.parse().ok()).collect()
    }
    match (parts(v), parts(TOOL_VERSION)) {
        (Some(theirs), Some(ours)) => theirs > ours,
        _ => true,
    }
}

fn locked_message(path: &Path, holder: Option<&LockInfo>, waited: Duration) -> String {
    let waited = if waited.is_zero() {
        String::new()
    } else {
        format!(" (gave up after {})", humantime::format_duration(Duration::from_millis(waited.as_millis() as u64)))
    };
    match holder {
        Some(h) => format!(
            "state is locked by `{}` (pid {} on host {}, since {}){waited}",
            h.command, h.pid, h.host, h.started_at
        ),
        None => format!("state is locked by another process (no owner recorded in `{}`){waited}", path.display()),
    }
}

impl StateError {
    /// How to fix it, for the CLI's `hint:` line. `None` when there is nothing better to say
    /// than the message.
    pub fn hint(&self) -> Option<String> {
        match self {
            StateError::Io { path, source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied => Some(format!(
                    "check that you own `{}` and its directory (state files are created with mode 0600)",
                    path.display()
                )),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Some(format!(
                    "free some space on the file system holding `{}`; the state file was not changed",
                    path.display()
                )),
                _ => None,
            },
            StateError::Corrupt { path, line, column, backup, .. } => Some(match backup {
                Some(b) => format!(
                    "the previous version is kept in `{b}`: check it, then `cp {b} {p}` to restore it (or fix `{p}` by hand at line {line}, column {column})",
                    b = b.display(),
                    p = path.display()
                ),
                None => format!(
                    "fix `{}` by hand at line {line}, column {column}, or restore it from your own copies; there is no backup next to it",
                    path.display()
                ),
            }),
            StateError::NewerFormat { found, written_by, .. } => Some(match written_by {
                Some(v) if newer_than_this(v) => {
                    format!("upgrade matih-infra to {v} or later (a release that reads state format version {found})")
                }
                Some(v) => format!(
                    "matih-infra {v} writes format version {}, not {found}: the file was edited by hand or written by a development build; restore it from its backup or your own copies",
                    crate::format::FORMAT_VERSION
                ),
                None => format!("upgrade matih-infra to a release that reads state format version {found}"),
            }),
            StateError::UnknownFormat { path, .. } => Some(format!(
                "`{}` was not written by a released matih-infra; restore the file from its backup or your own copies",
                path.display()
            )),
            StateError::OlderThanBackup { path, backup, .. } => Some(format!(
                "if the backup is the right state, `cp {b} {p}`; if you restored `{p}` on purpose, move `{b}` aside",
                b = backup.display(),
                p = path.display()
            )),
            StateError::MissingWithBackup { path, backup } => Some(format!(
                "to continue from the backup, `cp {b} {p}`; to start from empty state, move `{b}` aside (resources it records will no longer be managed)",
                b = backup.display(),
                p = path.display()
            )),
            StateError::LineageMismatch { path, backup, .. } => Some(format!(
                "put back the state file that belongs here; if `{p}` is the state you mean to use (you restored or moved it on purpose), pass --force-lineage once: the next save makes `{b}` match it",
                b = backup.display(),
                p = path.display()
            )),
            StateError::SymlinkLoop { path } => Some(format!(
                "point `{}` at a real file (`ls -l` shows where each link leads), or pass --state with the file's own path",
                path.display()
            )),
            StateError::UnexpectedSymlink { path } => Some(format!(
                "something replaced `{}` with a link while matih-infra ran; run the command again (it writes through links it finds at the start)",
                path.display()
            )),
            StateError::Locked { .. } => Some(
                "wait for the other command to finish, or pass `--lock-timeout <duration>` (e.g. `--lock-timeout 5m`) to wait for it; a local lock is released as soon as its holder exits"
                    .to_string(),
            ),
            StateError::DuplicateAddress { path, address } => Some(format!(
                "remove all but one entry for `{address}` from `{}`, or restore the file from its backup",
                path.display()
            )),
            StateError::TypeMismatch { path, address, .. } => Some(format!(
                "correct the `type` of `{address}` in `{}`, or restore the file from its backup",
                path.display()
            )),
            StateError::Remote { source, .. } => Some(match source {
                crate::remote::ObjectError::Conflict => "run the command again: it reads the store afresh".to_string(),
                crate::remote::ObjectError::Api { .. } => {
                    "check the credentials and the bucket named in the platform spec's `state` section; the state was not changed by this failure"
                        .to_string()
                }
            }),
            StateError::WriteConflict { saved, .. } => Some(format!(
                "someone wrote the state without holding the lock (or broke it): find that run, then plan again here{}",
                saved_hint(saved)
            )),
            StateError::LockLost { saved, .. } => Some(format!(
                "the network or the store was unreachable for longer than the lease, or the lock was broken: run the command again{}",
                saved_hint(saved)
            )),
            StateError::LockIdMismatch { holder, .. } => Some(format!(
                "`matih-infra state lock status` shows the current holder; to break its lock, pass its id: `state unlock --force {}`",
                holder.id
            )),
            StateError::WrongLock { .. } => None,
        }
    }
}

/// The end of a hint for a state that could not be written to its store.
fn saved_hint(saved: &Option<PathBuf>) -> String {
    match saved {
        Some(p) => format!(
            "; this command's state, with everything it created, is saved in `{}` (`state list --state {}` reads \
             it); what the store's state lacks, the next plan reports as orphans found by their owner tags, to \
             `state import`",
            p.display(),
            p.display()
        ),
        None => "; what the store's state lacks, the next plan reports as orphans found by their owner tags, to `state import`".to_string(),
    }
}
