//! The local store: one state file on disk, its backup, and its lock.
//!
//! For a state file `F` (the CLI picks `.matih/state/<env>-<cloud>.json` next to the platform
//! spec) the store uses:
//!
//! - `F` — the state, in the format of [`crate::format`], mode 0600 in a directory created 0700;
//! - `F.backup` — the state as it was before the last save;
//! - `F.lock` — an OS lock ([`File::try_lock`], `flock` on Unix) plus who holds it, as JSON
//!   ([`LockInfo`]). The file itself stays in place (deleting a lock file someone may be waiting
//!   on would let two processes lock two different files); it is emptied on release. Taking or
//!   releasing the lock together with writing or clearing the owner, and reading the owner,
//!   happen under a short OS lock on the directory (the gate), so whoever finds the lock held
//!   always finds its owner recorded;
//! - `F.tmp` — the file a save writes into. Between saves it holds the state from before the
//!   backup (a save recycles the outgoing backup as the next save's scratch file rather than
//!   delete it, see below); it is never read;
//! - `F.backup.tmp` — the current state's second name during a save.
//!
//! A save ([`LocalStore::save`]):
//!
//! 1. writes the new state into `F.tmp` (mode 0600) and syncs it;
//! 2. hard-links `F` to `F.backup.tmp` (a synced copy where there are no hard links);
//! 3. renames `F.tmp` over `F` — the commit point;
//! 4. renames the old `F.backup` to `F.tmp` and `F.backup.tmp` to `F.backup`;
//! 5. syncs the directory.
//!
//! `F` exists at every moment and is always a whole file, old or new: a crash anywhere leaves
//! the last committed state loadable (at worst with an older backup, or none). Reusing the
//! outgoing backup's inode means a save allocates and frees no disk blocks in the steady state,
//! which matters on file systems mounted with `discard`, where freeing a large file costs
//! milliseconds. The price: a program that keeps `F` open across three saves sees its content
//! change when that file comes round as scratch; readers that read the file in one go (as
//! [`LocalStore::load`] does) are not affected.
//!
//! A load ([`LocalStore::load`]) refuses rather than guesses: a corrupt file, a file of another
//! lineage than its backup (swapped for another environment's), a file older than its backup,
//! or a missing file with a backup present are errors that leave every file untouched. A file
//! it accepts that other users could read is set back to 0600, with a notice.
//!
//! A state path that is a symbolic link is followed ([`LocalStore::open`]): the store reads and
//! writes the link's target, with the backup and lock beside the target, and the link stays a
//! link. (Renaming a new file over the link, as a save does, would replace the link and leave
//! its target stale, so a store made with [`LocalStore::new`] refuses links instead.)
//!
//! The OS lock belongs to the open lock file: it is released when the [`StateLock`] guard is
//! dropped or the process dies, however it dies, so a lock left behind by a crash never blocks
//! anyone. Programs the CLI starts do not inherit it (the file is opened close-on-exec), and two
//! `lock` calls in one process exclude each other like two processes do. The recorded owner is
//! only for messages.
//!
//! Not here: remote stores (object storage with a lock table), state migrations across lineages,
//! or any decision about *what* to save — the engine calls [`LocalStore::save`] after every
//! finished resource.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::backend::Snapshot;
use crate::error::StateError;
use crate::format;
use crate::model::State;

/// How many symbolic links [`LocalStore::open`] follows before calling it a loop (Linux's own
/// limit).
const MAX_LINKS: usize = 40;

/// How often a waiting [`LocalStore::lock`] retries.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// How to take the state lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOptions {
    /// How long to wait for another holder to let go. Zero fails at once.
    pub timeout: Duration,
    /// The command taking the lock, recorded for others to see (`matih-infra apply`).
    pub command: String,
}

/// Who holds the lock, as recorded in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Names this holding of the lock, for `state unlock --force <id>`. Absent in lock files of
    /// older releases.
    #[serde(default)]
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// RFC 3339, seconds precision, UTC.
    pub started_at: String,
    /// When the lease runs out unless renewed (remote stores only), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl LockInfo {
    /// The info for this process, starting now.
    pub fn current(command: &str) -> Self {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            // Containers and CI runners often share one host name: MATIH_LOCK_HOST names the
            // machine in lock records instead.
            host: std::env::var("MATIH_LOCK_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned()),
            pid: std::process::id(),
            command: command.to_string(),
            started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            expires_at: None,
        }
    }
}

/// Proof of holding the state lock. The lock is released when this is dropped (or the process
/// exits); [`StateLock::release`] does the same and reports errors.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
    info: LockInfo,
    released: bool,
}

impl StateLock {
    /// What this process recorded in the lock file.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Empties the lock file and releases the lock.
    pub fn release(mut self) -> Result<(), StateError> {
        self.released = true;
        let _gate = Gate::exclusive(&self.path)?;
        self.file.set_len(0).map_err(|e| io_err("clear", &self.path, e))?;
        self.file.unlock().map_err(|e| io_err("unlock", &self.path, e))
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        if !self.released {
            // Best effort: the info is only advisory, and closing the file releases the lock.
            let _gate = Gate::exclusive(&self.path);
            let _ = self.file.set_len(0);
            let _ = self.file.unlock();
        }
    }
}

/// The gate: a short OS lock on the state directory, held while a process takes or lets go of
/// the state lock together with its recorded owner, and while another reads that owner. Without
/// it a process that finds the lock taken can read the lock file in the instant between the
/// holder's taking the lock and its writing who it is, and report "no owner recorded". With it,
/// "the lock is held" and "the holder's info is in the file" change together, as seen by anyone
/// who looks under the gate. Every hold is a few system calls long.
struct Gate(#[allow(dead_code)] Option<File>);

impl Gate {
    /// Takes the gate of the directory holding `lock_file`, waiting for it.
    fn exclusive(lock_file: &Path) -> Result<Gate, StateError> {
        Gate::take(lock_file, false)
    }

    /// Takes the gate shared, to read the lock file.
    fn shared(lock_file: &Path) -> Result<Gate, StateError> {
        Gate::take(lock_file, true)
    }

    #[cfg(unix)]
    fn take(lock_file: &Path, shared: bool) -> Result<Gate, StateError> {
        let dir = parent_dir(lock_file);
        let d = File::open(dir).map_err(|e| io_err("open", dir, e))?;
        if shared { d.lock_shared() } else { d.lock() }.map_err(|e| io_err("lock", dir, e))?;
        Ok(Gate(Some(d)))
    }

    /// Directories cannot be opened as files here; the race the gate closes stays open.
    #[cfg(not(unix))]
    fn take(_: &Path, _: bool) -> Result<Gate, StateError> {
        Ok(Gate(None))
    }
}

/// Something a load noticed and fixed or let pass, for the CLI to print as a warning.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateNotice {
    /// The file was readable or writable by others; its mode was set to 0600.
    ModeTightened { path: PathBuf, was: u32 },
    /// The file is readable or writable by others and its mode could not be changed.
    ModeTooWide { path: PathBuf, mode: u32, error: io::Error },
    /// The state file's lineage differs from its backup's and the store was told to accept it
    /// ([`LocalStore::accept_other_lineage`]).
    OtherLineageAccepted { path: PathBuf, lineage: String, backup_lineage: String },
}

impl fmt::Display for StateNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateNotice::ModeTightened { path, was } => write!(
                f,
                "state file `{}` had mode {was:04o}, open to other users; set it to 0600 (state records resource ids and endpoints)",
                path.display()
            ),
            StateNotice::ModeTooWide { path, mode, error } => write!(
                f,
                "state file `{}` has mode {mode:04o}, open to other users, and could not be set to 0600 ({error}); run `chmod 600` on it",
                path.display()
            ),
            StateNotice::OtherLineageAccepted { path, lineage, backup_lineage } => write!(
                f,
                "using state file `{}` (lineage {lineage}) although its backup is of lineage {backup_lineage} (--force-lineage); the next save replaces the backup",
                path.display()
            ),
        }
    }
}

/// One state file on the local file system, with its backup and lock file beside it.
#[derive(Debug)]
pub struct LocalStore {
    path: PathBuf,
    /// The path the store was opened with, when it was a symbolic link to `path`.
    link: Option<PathBuf>,
    /// Load a state file whose backup is of another lineage instead of refusing it.
    accept_other_lineage: bool,
    backup: PathBuf,
    lock: PathBuf,
    tmp: PathBuf,
    backup_tmp: PathBuf,
    /// The buffers of the last snapshot, reused by the next (see `spare_buffers`).
    buffers: Mutex<Vec<Vec<u8>>>,
    /// Held while a write is under way; shared by clones, which write the same files.
    writing: Arc<Mutex<()>>,
}

impl Clone for LocalStore {
    fn clone(&self) -> Self {
        let mut s = LocalStore::new(self.path.clone());
        s.link = self.link.clone();
        s.accept_other_lineage = self.accept_other_lineage;
        s.writing = self.writing.clone();
        s
    }
}

impl LocalStore {
    /// A store for the state file at `path`, taken as the file itself. Touches nothing on disk.
    /// If `path` is a symbolic link, loads and saves refuse it ([`StateError::UnexpectedSymlink`])
    /// rather than replace the link: use [`open`](Self::open) for paths that may be links.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        LocalStore {
            link: None,
            accept_other_lineage: false,
            backup: with_suffix(&path, ".backup"),
            lock: with_suffix(&path, ".lock"),
            tmp: with_suffix(&path, ".tmp"),
            backup_tmp: with_suffix(&path, ".backup.tmp"),
            buffers: Mutex::new(Vec::new()),
            writing: Arc::new(Mutex::new(())),
            path,
        }
    }

    /// A store for the state file at `path`, following symbolic links: when `path` is a link
    /// (or a chain of them), the store reads and writes the file it points to, and keeps the
    /// backup and lock beside that file, so every link to one state shares one lock. A link
    /// whose target does not exist yet is written through on the first save. Fails with
    /// [`StateError::SymlinkLoop`] for a chain that never ends. Reads links only; writes nothing.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StateError> {
        let given = path.into();
        let mut path = given.clone();
        for _ in 0..=MAX_LINKS {
            let is_link = match fs::symlink_metadata(&path) {
                Ok(m) => m.file_type().is_symlink(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(io_err("inspect", &path, e)),
            };
            if !is_link {
                let mut store = LocalStore::new(path.clone());
                store.link = (path != given).then_some(given);
                return Ok(store);
            }
            let target = fs::read_link(&path).map_err(|e| io_err("read link", &path, e))?;
            path = match path.parent() {
                Some(dir) if target.is_relative() => dir.join(target),
                _ => target,
            };
        }
        Err(StateError::SymlinkLoop { path: given })
    }

    /// Accept a state file whose backup is of another lineage (the CLI's `--force-lineage`):
    /// the load reports [`StateNotice::OtherLineageAccepted`] instead of failing with
    /// [`StateError::LineageMismatch`].
    pub fn accept_other_lineage(mut self, yes: bool) -> Self {
        self.accept_other_lineage = yes;
        self
    }

    /// The state file (the target, when the store was opened through a link).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The symbolic link the store was opened with, when [`open`](Self::open) followed one.
    pub fn link(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// The previous version of the state file: `<file>.backup`.
    pub fn backup_path(&self) -> &Path {
        &self.backup
    }

    /// The lock file: `<file>.lock`.
    pub fn lock_path(&self) -> &Path {
        &self.lock
    }

    /// Takes the state lock, waiting up to `opts.timeout` for another holder to release it.
    ///
    /// Creates the directory (0700) and the lock file (0600) if needed, and records
    /// [`LockInfo`] for this process in the lock file. Fails with [`StateError::Locked`], naming
    /// the holder, when the lock is still held after the timeout.
    pub fn lock(&self, opts: &LockOptions) -> Result<StateLock, StateError> {
        self.lock_with(opts, |_| {})
    }

    /// Like [`lock`](Self::lock), but calls `on_wait` once, with the holder, when it finds the
    /// lock held and is about to wait for it (never when `opts.timeout` is zero). The CLI uses it
    /// to say who it is waiting for.
    pub fn lock_with(
        &self,
        opts: &LockOptions,
        on_wait: impl FnOnce(Option<&LockInfo>),
    ) -> Result<StateLock, StateError> {
        ensure_dir(self.dir())?;
        let mut file = open_lock_file(&self.lock)?;
        let start = Instant::now();
        let mut on_wait = Some(on_wait);
        let info = LockInfo::current(&opts.command);
        let mut json = serde_json::to_vec_pretty(&info).expect("lock info serializes");
        json.push(b'\n');
        let _gate = loop {
            // Taking the lock and recording who took it happen under the gate, and so does a
            // loser's reading of the holder (see `Gate`).
            let gate = Gate::exclusive(&self.lock)?;
            let holder = match file.try_lock() {
                Ok(()) => break gate,
                Err(TryLockError::WouldBlock) => read_info(&self.lock),
                Err(TryLockError::Error(e)) => return Err(io_err("lock", &self.lock, e)),
            };
            drop(gate);
            let waited = start.elapsed();
            if waited >= opts.timeout {
                return Err(StateError::Locked {
                    path: self.lock.clone(),
                    holder: holder.map(Box::new),
                    waited: if opts.timeout.is_zero() { Duration::ZERO } else { waited },
                });
            }
            if let Some(f) = on_wait.take() {
                f(holder.as_ref());
            }
            std::thread::sleep(LOCK_POLL.min(opts.timeout - waited));
        };
        // The lock is ours, and the gate still held; whatever a dead holder left in the file is
        // overwritten.
        let written = file.set_len(0).and_then(|()| file.seek(SeekFrom::Start(0))).and_then(|_| file.write_all(&json));
        if let Err(e) = written {
            let _ = file.unlock();
            return Err(io_err("write lock info to", &self.lock, e));
        }
        Ok(StateLock { file, path: self.lock.clone(), info, released: false })
    }

    /// Who holds (or, if it died, last held) the lock, as recorded in the lock file. `None` when
    /// the file is missing, empty or unreadable. This does not tell whether the lock is held.
    pub fn read_lock_info(&self) -> Option<LockInfo> {
        let _gate = Gate::shared(&self.lock).ok();
        read_info(&self.lock)
    }

    /// Clears a lock left behind, returning what it recorded.
    ///
    /// For a local store there is rarely anything to do: the OS releases the lock the moment its
    /// holder exits, whatever way it exits, and the next `lock` overwrites stale info. So this
    /// only empties the info of a lock nobody holds; if a live process holds the lock it fails
    /// with [`StateError::Locked`] rather than break a lock that is protecting a running command
    /// (stop that command instead). The command exists for the remote stores to come, whose locks
    /// can outlive their holder.
    pub fn force_unlock(&self) -> Result<Option<LockInfo>, StateError> {
        let mut file = match OpenOptions::new().read(true).write(true).open(&self.lock) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &self.lock, e)),
        };
        let _gate = Gate::exclusive(&self.lock)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StateError::Locked {
                    path: self.lock.clone(),
                    holder: read_info(&self.lock).map(Box::new),
                    waited: Duration::ZERO,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &self.lock, e)),
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io_err("read", &self.lock, e))?;
        let stale = serde_json::from_slice(&bytes).ok();
        file.set_len(0).map_err(|e| io_err("clear", &self.lock, e))?;
        file.unlock().map_err(|e| io_err("unlock", &self.lock, e))?;
        Ok(stale)
    }

    /// Reads the state. `None` when there is neither a state file nor a backup (a new
    /// environment). Needs no lock: a save replaces the file by renaming, so a load sees either
    /// the old file or the new one.
    ///
    /// Refuses, leaving every file as it is: a corrupt or unreadable file
    /// ([`StateError::Corrupt`], naming the backup to restore from), a format it cannot read, a
    /// state file whose backup is of another lineage ([`StateError::LineageMismatch`]: someone
    /// swapped the file; see [`accept_other_lineage`](Self::accept_other_lineage)), a state file
    /// older than its backup ([`StateError::OlderThanBackup`]), and a missing state file whose
    /// backup exists ([`StateError::MissingWithBackup`]). A backup that cannot be read is
    /// ignored: the next save replaces it.
    ///
    /// A state file (or backup) that other users may read or write is set to mode 0600; use
    /// [`load_noting`](Self::load_noting) to hear about it.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        self.load_noting(|_| {})
    }

    /// [`load`](Self::load), telling `notice` what it fixed or let pass.
    pub fn load_noting(&self, mut notice: impl FnMut(StateNotice)) -> Result<Option<State>, StateError> {
        self.refuse_link()?;
        // The backup first: a save in progress elsewhere replaces the state file before it
        // moves the backup, so at every moment the backup is no newer than the state file, and
        // reading the backup before the state file can never see it newer by accident.
        let backup_header = read_header_of(&self.backup);
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return if exists(&self.backup)? {
                    Err(StateError::MissingWithBackup { path: self.path.clone(), backup: self.backup.clone() })
                } else {
                    Ok(None)
                };
            }
            Err(e) => return Err(io_err("read", &self.path, e)),
        };
        let state = match format::decode(&bytes, &self.path) {
            Ok(s) => s,
            Err(StateError::Corrupt { path, kind, line, column, source, .. }) => {
                let backup = exists(&self.backup)?.then(|| self.backup.clone());
                return Err(StateError::Corrupt { path, kind, line, column, backup, source });
            }
            Err(e) => return Err(e),
        };
        if let Some(h) = &backup_header
            && let Some(backup_lineage) = &h.lineage
            && *backup_lineage != state.lineage
        {
            if !self.accept_other_lineage {
                return Err(StateError::LineageMismatch {
                    path: self.path.clone(),
                    lineage: state.lineage,
                    backup: self.backup.clone(),
                    backup_lineage: backup_lineage.clone(),
                });
            }
            notice(StateNotice::OtherLineageAccepted {
                path: self.path.clone(),
                lineage: state.lineage.clone(),
                backup_lineage: backup_lineage.clone(),
            });
        } else if let Some(h) = backup_header
            && let Some(backup_serial) = h.serial
            && backup_serial > state.serial
        {
            return Err(StateError::OlderThanBackup {
                path: self.path.clone(),
                serial: state.serial,
                backup: self.backup.clone(),
                backup_serial,
            });
        }
        // Accepted: only now fix what is wide open (a refusal changes nothing).
        for path in [&self.path, &self.backup] {
            tighten_mode(path, &mut notice);
        }
        Ok(Some(state))
    }

    /// Writes `state` as the new state file, keeping the current one as the backup.
    ///
    /// Sorts the keys of JSON objects in `state` (see [`format::sort_objects`]) and increments
    /// `state.serial`, then replaces the file atomically (the steps are in the
    /// [module docs](self)). If anything fails before the new file is renamed into place, the
    /// state file, its backup and `state.serial` are as they were, and the temporary file is
    /// removed. If a step after that fails (moving the backup into place, syncing the
    /// directory), the new state is already the state file, so the serial stays incremented to
    /// match it, and the error is still returned.
    pub fn save(&self, state: &mut State, lock: &StateLock) -> Result<(), StateError> {
        self.check_lock(lock)?;
        let previous = state.serial;
        let snapshot = Snapshot::take_into(state, self.spare_buffers());
        let written = self.write_parts(&snapshot.parts);
        self.keep_buffers(snapshot.parts);
        match written {
            Ok(()) => Ok(()),
            Err((committed, e)) => {
                if !committed {
                    state.serial = previous;
                }
                Err(e)
            }
        }
    }

    /// Writes a snapshot taken by [`StateStore::snapshot`](crate::StateStore::snapshot), as
    /// [`save`](Self::save) does, on the blocking pool: the task awaiting it (an apply's walk,
    /// which is one task) goes on meanwhile, and what finishes then rides on the next write.
    pub(crate) async fn write_snapshot(&self, snapshot: Snapshot, lock: &StateLock) -> Result<(), StateError> {
        self.check_lock(lock)?;
        let store = self.clone();
        let parts = snapshot.parts;
        let (written, parts) = tokio::task::spawn_blocking(move || {
            let written = store.write_parts(&parts).map_err(|(_, e)| e);
            (written, parts)
        })
        .await
        .map_err(|e| io_err("write", &self.path, io::Error::other(e.to_string())))?;
        self.keep_buffers(parts);
        written
    }

    /// The lock `lock` as this store's own, or [`StateError::WrongLock`].
    pub(crate) fn own_lock<'l>(&self, lock: &'l dyn crate::StoreLock) -> Result<&'l StateLock, StateError> {
        match lock.as_any().downcast_ref::<StateLock>() {
            Some(l) => self.check_lock(l).map(|()| l),
            None => Err(StateError::WrongLock { path: self.path.clone(), lock: PathBuf::from(lock.info().id.clone()) }),
        }
    }

    fn check_lock(&self, lock: &StateLock) -> Result<(), StateError> {
        if lock.path != self.lock {
            return Err(StateError::WrongLock { path: self.path.clone(), lock: lock.path.clone() });
        }
        Ok(())
    }

    /// The buffers of the last snapshot, to encode the next one into: saves come after every
    /// finished resource, and a fresh file-sized buffer each time costs more than rendering
    /// into it.
    pub(crate) fn spare_buffers(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.buffers.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn keep_buffers(&self, parts: Vec<Vec<u8>>) {
        *self.buffers.lock().unwrap_or_else(|p| p.into_inner()) = parts;
    }

    /// Writes the encoded state, one write at a time (two would share the scratch file). The
    /// flag in the error says whether the new file was already renamed into place.
    #[allow(clippy::result_large_err)] // private, and the size is only paid on failure
    fn write_parts(&self, parts: &[Vec<u8>]) -> Result<(), (bool, StateError)> {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        self.write_pieces(parts)
    }

    #[allow(clippy::result_large_err)] // as `write`
    fn write_pieces(&self, pieces: &[Vec<u8>]) -> Result<(), (bool, StateError)> {
        self.refuse_link().map_err(|e| (false, e))?;
        let dir = self.dir();
        let staged = ensure_dir(dir).and_then(|()| write_synced(&self.tmp, pieces)).and_then(|()| self.link_previous());
        let has_previous = match staged {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_file(&self.tmp);
                return Err((false, e));
            }
        };
        if let Err(e) = fs::rename(&self.tmp, &self.path) {
            let _ = fs::remove_file(&self.tmp);
            let _ = fs::remove_file(&self.backup_tmp);
            return Err((false, io_err("rename into place", &self.path, e)));
        }
        // Committed. The previous state becomes the backup; the backup before it is kept as the
        // scratch file of the next save rather than deleted (see `open_scratch`).
        if has_previous {
            if is_lone_file(&self.backup) {
                let _ = fs::rename(&self.backup, &self.tmp);
            }
            fs::rename(&self.backup_tmp, &self.backup)
                .map_err(|e| (true, io_err("rename into place", &self.backup, e)))?;
        }
        sync_dir(dir).map_err(|e| (true, e))
    }

    /// Gives the current state file a second name, `<file>.backup.tmp`, to become the backup
    /// once the new file has replaced it. Hard link where the file system has them, else a
    /// synced copy. `false` if there is no current state file (the first save).
    fn link_previous(&self) -> Result<bool, StateError> {
        remove_if_exists(&self.backup_tmp)?;
        match fs::hard_link(&self.path, &self.backup_tmp) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(_) => {
                let copied = fs::copy(&self.path, &self.backup_tmp)
                    .and_then(|_| File::open(&self.backup_tmp))
                    .and_then(|f| f.sync_data());
                match copied {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::NotFound && !self.path.exists() => Ok(false),
                    Err(e) => {
                        let _ = fs::remove_file(&self.backup_tmp);
                        Err(io_err("copy to backup", &self.backup_tmp, e))
                    }
                }
            }
        }
    }

    fn dir(&self) -> &Path {
        parent_dir(&self.path)
    }

    /// Refuses a state path that is a symbolic link: renaming over it would replace the link
    /// and leave its target stale. [`open`](Self::open) resolves links before this is reached.
    fn refuse_link(&self) -> Result<(), StateError> {
        match fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => Err(StateError::UnexpectedSymlink { path: self.path.clone() }),
            _ => Ok(()),
        }
    }
}

/// The directory a state file (or its lock) sits in.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Sets a state file that others may read or write to 0600, saying so. Missing files and
/// platforms without modes are left alone.
fn tighten_mode(path: &Path, notice: &mut impl FnMut(StateNotice)) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = fs::metadata(path) else { return };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return;
        }
        match fs::set_permissions(path, fs::Permissions::from_mode(0o600)) {
            Ok(()) => notice(StateNotice::ModeTightened { path: path.to_path_buf(), was: mode }),
            Err(error) => notice(StateNotice::ModeTooWide { path: path.to_path_buf(), mode, error }),
        }
    }
    #[cfg(not(unix))]
    let _ = (path, notice);
}

fn read_info(lock: &Path) -> Option<LockInfo> {
    let bytes = fs::read(lock).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> StateError {
    StateError::Io { op, path: path.to_path_buf(), source }
}

fn exists(path: &Path) -> Result<bool, StateError> {
    path.try_exists().map_err(|e| io_err("check", path, e))
}

fn remove_if_exists(path: &Path) -> Result<(), StateError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path, e)),
    }
}

/// The header of the backup, reading only its start when that suffices. `None` when there is
/// no backup or it cannot be read or parsed: the next save replaces it anyway.
fn read_header_of(path: &Path) -> Option<format::Header> {
    let mut file = File::open(path).ok()?;
    let mut head = Vec::with_capacity(4096);
    (&mut file).take(4096).read_to_end(&mut head).ok()?;
    if let Ok(h) = format::read_header(&head, path)
        && h.serial.is_some()
        && h.lineage.is_some()
    {
        return Some(h);
    }
    file.read_to_end(&mut head).ok()?;
    format::read_header(&head, path).ok()
}

fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| io_err("create directory", dir, e))
}

fn open_lock_file(path: &Path) -> Result<File, StateError> {
    let mut o = OpenOptions::new();
    // Never truncate on open: until we hold the lock, the content is the holder's.
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|e| io_err("open", path, e))
}

/// Writes `pieces`, one after the other, to the scratch file at `path` (mode 0600) and syncs it.
fn write_synced(path: &Path, pieces: &[Vec<u8>]) -> Result<(), StateError> {
    let mut f = open_scratch(path)?;
    #[cfg(unix)]
    {
        // Whatever the umask, or the mode of a recycled file: exactly 0600.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(|e| io_err("set permissions of", path, e))?;
    }
    let mut len = 0;
    for bytes in pieces {
        f.write_all(bytes).map_err(|e| io_err("write", path, e))?;
        len += bytes.len() as u64;
    }
    f.set_len(len).map_err(|e| io_err("write", path, e))?;
    f.sync_data().map_err(|e| io_err("sync", path, e))
}

/// Opens the file a save writes into, positioned at its start: the scratch file kept by the
/// previous save (what was the backup before it) when there is one, else a new file.
///
/// Rewriting an existing file in place spares the file system from freeing one file's blocks
/// and allocating another's on every save; on a file system mounted with `discard`, freeing
/// alone costs milliseconds for a large state. A scratch file that anything else links to, or
/// that is not a plain file, is replaced rather than written through.
fn open_scratch(path: &Path) -> Result<File, StateError> {
    if is_lone_file(path)
        && let Ok(f) = OpenOptions::new().write(true).open(path)
    {
        return Ok(f);
    }
    remove_if_exists(path)?;
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|e| io_err("create", path, e))
}

/// Whether `path` is a plain file with no other name, so that recycling it as scratch cannot
/// write through to anything else.
fn is_lone_file(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        #[cfg(unix)]
        Ok(meta) => meta.is_file() && std::os::unix::fs::MetadataExt::nlink(&meta) == 1,
        #[cfg(not(unix))]
        Ok(meta) => meta.is_file(),
        Err(_) => false,
    }
}

/// Makes the renames in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StateError> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err("sync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
