//! The state-store seam: what the engine and the CLI need of a place that keeps state —
//! load, lock, write, lock status, unlock — whatever that place is. [`LocalStore`] (a file beside
//! the spec) is one implementation; the object stores of the clouds are others.
//!
//! A write is split in two so that many finished resources can share one: [`Snapshot::take`]
//! numbers and encodes the state while the caller holds its state lock (no I/O), and
//! [`StateStore::write`] stores it afterwards, one write at a time, without that lock. The engine
//! lets every unit of work that finished while a write was in flight ride on the next one.
//!
//! An apply's walk cannot afford even the encode: it is one task, and at 10,000 tenants an
//! encode takes about 150 ms and a copy of the state about 60, O(state) on every write. The
//! engine keeps a [`StateCopy`] instead, renders only what changed into it, and puts the file
//! together off the walk.
//!
//! Not here: choosing a store from the platform spec (the CLI), or any cloud's API (each cloud's
//! crate implements the trait over its own SDK).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use matih_addrs::ResourceAddr;

use crate::error::StateError;
use crate::format;
use crate::model::State;
use crate::store::{LocalStore, LockInfo, LockOptions, StateLock, StateNotice};

/// State encoded for one write, with the serial it carries.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) serial: u64,
    pub(crate) lineage: String,
    pub(crate) parts: Vec<Vec<u8>>,
}

impl Snapshot {
    /// Sorts the keys of `state`'s JSON objects (see [`format::sort_objects`]), increments its
    /// serial and encodes it in the current format.
    pub fn take(state: &mut State) -> Snapshot {
        Snapshot::take_into(state, Vec::new())
    }

    /// [`take`](Self::take), encoding into buffers kept from an earlier snapshot.
    pub(crate) fn take_into(state: &mut State, mut parts: Vec<Vec<u8>>) -> Snapshot {
        format::sort_objects(state);
        state.serial += 1;
        format::encode_into(state, &mut parts);
        Snapshot { serial: state.serial, lineage: state.lineage.clone(), parts }
    }

    /// The state as it is, serial unchanged: to copy a state to another store (`state migrate`),
    /// where it must stay the same state.
    pub fn exact(state: &mut State) -> Snapshot {
        format::sort_objects(state);
        let mut parts = Vec::new();
        format::encode_into(state, &mut parts);
        Snapshot { serial: state.serial, lineage: state.lineage.clone(), parts }
    }

    /// The serial the snapshot records.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The lineage the snapshot records.
    pub fn lineage(&self) -> &str {
        &self.lineage
    }

    /// The encoded file, in pieces to be written one after the other.
    pub fn parts(&self) -> &[Vec<u8>] {
        &self.parts
    }

    /// The encoded file in one buffer (for stores whose API takes one body).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.parts.concat()
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    /// Whether it is empty (never: a state file has a header).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A writer's own copy of a state that others keep changing, kept as each resource's rendered
/// line and brought up to date by rendering only what changed: so that keeping it costs
/// O(changes) under the caller's state lock, and the encode of the whole file, which copies
/// lines rather than rendering them, runs where it stops nobody (the engine runs it on the
/// blocking pool).
#[derive(Debug)]
pub struct StateCopy {
    /// The state without its resources.
    rest: State,
    lines: BTreeMap<ResourceAddr, format::Line>,
}

impl StateCopy {
    /// A copy of `live`.
    pub fn new(live: &State) -> StateCopy {
        let mut copy = StateCopy { rest: State::new(), lines: BTreeMap::new() };
        copy.update(live, live.resources.keys());
        copy
    }

    /// Brings the copy up to `live`, given every address whose resource was inserted, changed or
    /// removed since the copy was made or last updated. Everything else in a state (the serial,
    /// intents, deposed instances, outputs, schema versions) is small and copied whole.
    pub fn update<'a>(&mut self, live: &State, changed: impl IntoIterator<Item = &'a ResourceAddr>) {
        for addr in changed {
            match live.resources.get(addr) {
                Some(r) => {
                    self.lines.insert(addr.clone(), format::Line::render(addr, r));
                }
                None => {
                    self.lines.remove(addr);
                }
            }
        }
        let State { serial, lineage, resources: _, intents, deposed, outputs, schema_versions } = live;
        self.rest.serial = *serial;
        self.rest.lineage.clone_from(lineage);
        self.rest.intents.clone_from(intents);
        self.rest.deposed.clone_from(deposed);
        self.rest.outputs.clone_from(outputs);
        self.rest.schema_versions.clone_from(schema_versions);
    }

    /// Encodes the copy as it is (serial unchanged: number the live state before updating the
    /// copy), into buffers kept from an earlier snapshot. The bytes are those
    /// [`Snapshot::take`] gives for the state the copy follows.
    pub fn encode(&self, mut parts: Vec<Vec<u8>>) -> Snapshot {
        format::encode_lines_into(&self.rest, self.lines.values(), &mut parts);
        Snapshot { serial: self.rest.serial, lineage: self.rest.lineage.clone(), parts }
    }
}

/// Proof of holding a store's lock. Dropping it without [`StateStore::unlock`] releases what can
/// be released at once (a local OS lock); a remote lease left behind expires on its own.
pub trait StoreLock: Send + Sync + fmt::Debug {
    /// What this holder recorded: host, pid, command, since when, and the lock's id.
    fn info(&self) -> &LockInfo;
    /// The holder whose expired lease this lock took over, if it did.
    fn took_over(&self) -> Option<&LockInfo> {
        None
    }
    /// For the store that issued it, to recover its own type.
    fn as_any(&self) -> &dyn Any;
    /// The same, owned, to release it.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// What is called once, with the holder, when `lock` finds the lock held and is about to wait.
pub type OnWait<'a> = &'a (dyn Fn(Option<&LockInfo>) + Send + Sync);

/// What is told about anything a load fixed or let pass.
pub type OnNotice<'a> = &'a (dyn Fn(StateNotice) + Send + Sync);

/// A place that keeps one environment's state for one cloud.
#[async_trait]
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Where the state is, for messages: a path, `s3://bucket/key`, ...
    fn location(&self) -> String;

    /// Reads the state; `None` when there is none yet. Refuses (leaving everything as it is) a
    /// state it cannot trust: corrupt, of a newer format, or older than what it replaced.
    async fn load(&self, notice: OnNotice<'_>) -> Result<Option<State>, StateError>;

    /// Takes the lock, waiting up to `opts.timeout` for another holder.
    async fn lock(&self, opts: &LockOptions, on_wait: OnWait<'_>) -> Result<Box<dyn StoreLock>, StateError>;

    /// Releases a lock this store issued.
    async fn unlock(&self, lock: Box<dyn StoreLock>) -> Result<(), StateError>;

    /// Who holds the lock (or, for a local store, last held it), if anyone.
    async fn lock_status(&self) -> Result<Option<LockInfo>, StateError>;

    /// Breaks a lock left behind, given the id [`lock_status`](Self::lock_status) shows; a store
    /// refuses to break a lock whose holder is alive where it can tell. Returns what it cleared.
    async fn force_unlock(&self, id: &str) -> Result<Option<LockInfo>, StateError>;

    /// Takes a snapshot of `state` to write; called with the caller's state lock held, so it
    /// does no I/O.
    fn snapshot(&self, state: &mut State) -> Snapshot {
        Snapshot::take_into(state, self.spare_buffers())
    }

    /// Buffers to encode the next snapshot into: a store may keep those of its last write, as
    /// a fresh file-sized buffer each time costs more than rendering into it.
    fn spare_buffers(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    /// Stores a snapshot as the new state, keeping the previous one. Snapshots are written one
    /// at a time, each newer than the last.
    async fn write(&self, snapshot: Snapshot, lock: &dyn StoreLock) -> Result<(), StateError>;
}

impl StoreLock for StateLock {
    fn info(&self) -> &LockInfo {
        StateLock::info(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

#[async_trait]
impl StateStore for LocalStore {
    fn location(&self) -> String {
        self.path().display().to_string()
    }

    async fn load(&self, notice: OnNotice<'_>) -> Result<Option<State>, StateError> {
        self.load_noting(notice)
    }

    async fn lock(&self, opts: &LockOptions, on_wait: OnWait<'_>) -> Result<Box<dyn StoreLock>, StateError> {
        Ok(Box::new(self.lock_with(opts, on_wait)?))
    }

    async fn unlock(&self, lock: Box<dyn StoreLock>) -> Result<(), StateError> {
        self.own_lock(lock.as_ref())?;
        match lock.into_any().downcast::<StateLock>() {
            Ok(lock) => lock.release(),
            Err(_) => unreachable!("own_lock checked the type"),
        }
    }

    async fn lock_status(&self) -> Result<Option<LockInfo>, StateError> {
        Ok(self.read_lock_info())
    }

    async fn force_unlock(&self, id: &str) -> Result<Option<LockInfo>, StateError> {
        // Records of older releases have no id; any id clears those.
        if let Some(holder) = self.read_lock_info()
            && !holder.id.is_empty()
            && holder.id != id
        {
            return Err(StateError::LockIdMismatch {
                url: self.location(),
                given: id.to_string(),
                holder: Box::new(holder),
            });
        }
        LocalStore::force_unlock(self)
    }

    fn spare_buffers(&self) -> Vec<Vec<u8>> {
        LocalStore::spare_buffers(self)
    }

    async fn write(&self, snapshot: Snapshot, lock: &dyn StoreLock) -> Result<(), StateError> {
        let lock = self.own_lock(lock)?;
        // The write and its fsyncs block: they run on the blocking pool, so an apply's walk (one
        // task) goes on while they do.
        self.write_snapshot(snapshot, lock).await
    }
}
