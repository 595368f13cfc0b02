//! Remote stores: state kept as one object in a cloud's object store (S3, GCS, Azure Blob),
//! written only on a condition and locked by a lease, for teams that apply from many machines.
//!
//! Each cloud's crate implements [`ObjectStore`] — five calls over its SDK, each create and
//! replace conditional on the object's version (S3 and Azure Blob ETags with `If-None-Match: *`
//! and `If-Match`, GCS generations with `ifGenerationMatch`). [`RemoteStore`] does the rest once
//! for all of them:
//!
//! - **No lost update.** A write replaces the state object only if it is still the version this
//!   process last read or wrote; creating it only if it does not exist. A write that loses the
//!   race (another writer, with or without the lock) fails with [`StateError::WriteConflict`]
//!   and changes nothing. A condition failure that meets exactly the bytes this process was
//!   writing is its own earlier attempt whose answer was lost, and counts as written.
//! - **The previous version is kept**: by the bucket itself when it versions objects (the store
//!   says so of each object it reads or writes: [`Object::kept`]), else as `<key>.backup`,
//!   written before the state is replaced.
//! - **Lease locks.** The lock is the object `<key>.lock`, holding [`LockInfo`] with an expiry.
//!   It is created only if absent; the holder renews it (conditionally) every third of the lease
//!   while it works. A lock whose lease has expired — its holder died or lost its network — is
//!   taken over, conditionally on the expired version, and the new holder says so
//!   ([`StoreLock::took_over`]). A holder that cannot renew in time, or finds its lock taken,
//!   stops writing: [`StateError::LockLost`].
//!
//! Expiry is judged by the reader's clock against the expiry the holder wrote with its own, so
//! clocks that disagree by more than [`CLOCK_SKEW`] shorten or lengthen a lease by the
//! difference; NTP-synchronised machines are well within it.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use crate::backend::{OnNotice, OnWait, Snapshot, StateStore, StoreLock};
use crate::error::StateError;
use crate::format;
use crate::model::State;
use crate::store::{LockInfo, LockOptions, StateNotice};

/// How long a lease lasts unless renewed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How far apart two machines' clocks may be before leases are judged wrongly.
pub const CLOCK_SKEW: Duration = Duration::from_secs(10);

/// How often a waiting `lock` looks again.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// The version of an object as the store names it: an ETag, a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

/// An object's bytes and version.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub version: Version,
    /// Whether the store keeps this version when the object is replaced (bucket versioning).
    pub kept: bool,
}

/// What a write stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub version: Version,
    /// Whether the store keeps this version when the object is replaced (S3: the answer carried
    /// a version id; Azure Blob: `x-ms-version-id`; Cloud Storage: the bucket's versioning).
    pub kept: bool,
}

/// Why an object store call failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The condition did not hold: the object exists (create), or is not the version given
    /// (replace, delete), or is gone.
    #[error("the object is not as expected (precondition failed)")]
    Conflict,
    /// Anything else, with the store's own words (code, message, request id).
    #[error("{message}")]
    Api {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// The calls a remote store needs from an object store. Implementations retry what their SDK
/// retries (throttling, 5xx, lost connections); a retried conditional write that meets its own
/// first attempt fails with [`ObjectError::Conflict`], which [`RemoteStore`] resolves.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// `s3://bucket/key` and the like, for messages.
    fn url(&self, key: &str) -> String;
    /// The object, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError>;
    /// Creates the object only if there is none (`If-None-Match: *`, `ifGenerationMatch=0`).
    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError>;
    /// Replaces the object only if it is at `expected` (`If-Match`, `ifGenerationMatch`).
    async fn replace(&self, key: &str, bytes: Vec<u8>, expected: &Version) -> Result<Stored, ObjectError>;
    /// Writes the object whatever is there (for the backup copy only).
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError>;
    /// Deletes the object only if it is at `expected`.
    async fn delete(&self, key: &str, expected: &Version) -> Result<(), ObjectError>;
}

/// State in an object store: see the [module docs](self).
#[derive(Debug)]
pub struct RemoteStore {
    objects: Arc<dyn ObjectStore>,
    key: String,
    lease: Duration,
    skew: Duration,
    accept_other_lineage: bool,
    /// Where a state that cannot be written (lost race, lost lock) is saved instead.
    rescue_dir: Option<PathBuf>,
    /// The state object as this process last read or wrote it.
    seen: Mutex<Option<Object>>,
}

impl RemoteStore {
    /// State at `key` in `objects`.
    pub fn new(objects: Arc<dyn ObjectStore>, key: impl Into<String>) -> Self {
        RemoteStore {
            objects,
            key: key.into(),
            lease: DEFAULT_LEASE,
            skew: CLOCK_SKEW,
            accept_other_lineage: false,
            rescue_dir: None,
            seen: Mutex::new(None),
        }
    }

    /// A lease of another length, and another allowance for clock skew (tests use short ones).
    pub fn with_lease(mut self, lease: Duration, skew: Duration) -> Self {
        self.lease = lease;
        self.skew = skew;
        self
    }

    /// As [`LocalStore::accept_other_lineage`](crate::LocalStore::accept_other_lineage).
    pub fn accept_other_lineage(mut self, yes: bool) -> Self {
        self.accept_other_lineage = yes;
        self
    }

    /// Saves a state that cannot be written to the store in `dir` instead (as
    /// `<lineage>.unsaved.json`, readable by its owner only; a later one replaces it), so that nothing a command
    /// recorded is lost when another writer wins the race or its lock is broken.
    pub fn with_rescue_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.rescue_dir = Some(dir.into());
        self
    }

    /// Writes `bytes` to the rescue directory; `None` when there is none or it cannot be written.
    fn rescue(&self, snapshot: &Snapshot, bytes: &[u8]) -> Option<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.rescue_dir.as_ref()?;
        std::fs::create_dir_all(dir).ok()?;
        // One file per lineage: a later snapshot holds everything an earlier one did.
        let path = dir.join(format!("{}.unsaved.json", snapshot.lineage()));
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path).ok()?;
        f.write_all(bytes).ok()?;
        f.sync_all().ok()?;
        Some(path)
    }

    fn backup_key(&self) -> String {
        format!("{}.backup", self.key)
    }

    fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }

    fn url(&self) -> String {
        self.objects.url(&self.key)
    }

    fn remote(&self, op: &'static str, key: &str, source: ObjectError) -> StateError {
        StateError::Remote { op, url: self.objects.url(key), source }
    }

    /// The lease record in the lock object, or an error naming the object when it is not one.
    fn lease_of(&self, o: &Object) -> Result<LockInfo, StateError> {
        serde_json::from_slice(&o.bytes).map_err(|e| StateError::Remote {
            op: "read the lock record in",
            url: self.objects.url(&self.lock_key()),
            source: ObjectError::Api { message: format!("not a lock record: {e}"), source: None },
        })
    }

    fn lease_bytes(&self, info: &LockInfo) -> Vec<u8> {
        let mut info = info.clone();
        info.expires_at = Some(humantime::format_rfc3339_millis(SystemTime::now() + self.lease).to_string());
        serde_json::to_vec_pretty(&info).expect("lock info serializes")
    }

    fn held(&self, info: LockInfo, version: Version, took_over: Option<LockInfo>) -> RemoteLock {
        let version = Arc::new(Mutex::new(version));
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat(
            Arc::clone(&self.objects),
            self.lock_key(),
            info.clone(),
            self.lease,
            self.skew,
            Arc::clone(&version),
            Arc::clone(&lost),
        ));
        RemoteLock { info, version, lost, heartbeat, key: self.lock_key(), took_over }
    }

    fn own<'l>(&self, lock: &'l dyn StoreLock) -> Result<&'l RemoteLock, StateError> {
        match lock.as_any().downcast_ref::<RemoteLock>() {
            Some(l) if l.key == self.lock_key() => Ok(l),
            _ => Err(StateError::WrongLock { path: PathBuf::from(self.url()), lock: PathBuf::from(&lock.info().id) }),
        }
    }
}

/// Whether a lease has run out, by this machine's clock (with `skew` to spare).
fn expired(info: &LockInfo, skew: Duration) -> bool {
    match info.expires_at.as_deref().and_then(|t| humantime::parse_rfc3339_weak(t).ok()) {
        Some(at) => SystemTime::now() > at + skew,
        // A record without an expiry was not written by a lease holder: never taken over.
        None => false,
    }
}

/// Renews the lease every third of its length until the lock is dropped; marks it lost when it
/// is taken over or cannot be renewed before it runs out.
async fn heartbeat(
    objects: Arc<dyn ObjectStore>,
    key: String,
    info: LockInfo,
    lease: Duration,
    skew: Duration,
    version: Arc<Mutex<Version>>,
    lost: Arc<AtomicBool>,
) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(lease / 3).await;
        let mut next = info.clone();
        next.expires_at = Some(humantime::format_rfc3339_millis(SystemTime::now() + lease).to_string());
        let bytes = serde_json::to_vec_pretty(&next).expect("lock info serializes");
        let expected = version.lock().unwrap().clone();
        match objects.replace(&key, bytes.clone(), &expected).await {
            Ok(v) => {
                *version.lock().unwrap() = v.version;
                renewed = Instant::now();
            }
            Err(ObjectError::Conflict) => {
                // Our own renewal whose answer was lost, or someone took the lock over.
                match objects.get(&key).await {
                    Ok(Some(o)) if o.bytes == bytes => {
                        *version.lock().unwrap() = o.version;
                        renewed = Instant::now();
                    }
                    Ok(_) => {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(_) => {}
                }
            }
            Err(_) => {}
        }
        // Renewals that keep failing: once the lease may have run out, someone may hold it.
        if renewed.elapsed() + skew >= lease {
            lost.store(true, Ordering::SeqCst);
            return;
        }
    }
}

/// A held lease on a remote store's lock.
#[derive(Debug)]
pub struct RemoteLock {
    info: LockInfo,
    version: Arc<Mutex<Version>>,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
    key: String,
    took_over: Option<LockInfo>,
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        // Unreleased, the lease runs out on its own.
        self.heartbeat.abort();
    }
}

impl StoreLock for RemoteLock {
    fn info(&self) -> &LockInfo {
        &self.info
    }

    fn took_over(&self) -> Option<&LockInfo> {
        self.took_over.as_ref()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

#[async_trait]
impl StateStore for RemoteStore {
    fn location(&self) -> String {
        self.url()
    }

    async fn load(&self, notice: OnNotice<'_>) -> Result<Option<State>, StateError> {
        let path = PathBuf::from(self.url());
        // The backup first, as the local store does: it is never newer than the state object.
        let backup = match self.objects.get(&self.backup_key()).await {
            Ok(b) => b,
            Err(e) => return Err(self.remote("read", &self.backup_key(), e)),
        };
        let Some(object) = self.objects.get(&self.key).await.map_err(|e| self.remote("read", &self.key, e))? else {
            *self.seen.lock().unwrap() = None;
            return match backup {
                Some(_) => Err(StateError::MissingWithBackup {
                    path,
                    backup: PathBuf::from(self.objects.url(&self.backup_key())),
                }),
                None => Ok(None),
            };
        };
        let state = format::decode(&object.bytes, &path)?;
        if let Some(b) = backup
            && let Ok(h) = format::read_header(&b.bytes, &path)
        {
            let backup_path = PathBuf::from(self.objects.url(&self.backup_key()));
            match (h.lineage, h.serial) {
                (Some(l), _) if l != state.lineage && !self.accept_other_lineage => {
                    return Err(StateError::LineageMismatch {
                        path,
                        lineage: state.lineage,
                        backup: backup_path,
                        backup_lineage: l,
                    });
                }
                (Some(l), _) if l != state.lineage => notice(StateNotice::OtherLineageAccepted {
                    path: path.clone(),
                    lineage: state.lineage.clone(),
                    backup_lineage: l,
                }),
                (_, Some(s)) if s > state.serial => {
                    return Err(StateError::OlderThanBackup {
                        path,
                        serial: state.serial,
                        backup: backup_path,
                        backup_serial: s,
                    });
                }
                _ => {}
            }
        }
        *self.seen.lock().unwrap() = Some(object);
        Ok(Some(state))
    }

    async fn lock(&self, opts: &LockOptions, on_wait: OnWait<'_>) -> Result<Box<dyn StoreLock>, StateError> {
        let key = self.lock_key();
        let info = LockInfo::current(&opts.command);
        let start = Instant::now();
        let mut waited_once = false;
        let mut vanished = 0;
        loop {
            let bytes = self.lease_bytes(&info);
            let holder = match self.objects.create(&key, bytes.clone()).await {
                Ok(v) => return Ok(Box::new(self.held(info, v.version, None))),
                Err(ObjectError::Conflict) => {
                    let Some(current) = self.objects.get(&key).await.map_err(|e| self.remote("read", &key, e))? else {
                        // Released in between: try again at once, a few times, then as a waiter.
                        vanished += 1;
                        if vanished <= 3 {
                            continue;
                        }
                        let waited = start.elapsed();
                        if waited >= opts.timeout {
                            return Err(StateError::Locked {
                                path: PathBuf::from(self.objects.url(&key)),
                                holder: None,
                                waited,
                            });
                        }
                        tokio::time::sleep(LOCK_POLL.min(opts.timeout - waited)).await;
                        continue;
                    };
                    let holder = self.lease_of(&current)?;
                    if holder.id == info.id {
                        // Our own create, whose answer was lost.
                        return Ok(Box::new(self.held(info, current.version, None)));
                    }
                    if expired(&holder, self.skew) {
                        match self.objects.replace(&key, bytes.clone(), &current.version).await {
                            Ok(v) => return Ok(Box::new(self.held(info, v.version, Some(holder)))),
                            Err(ObjectError::Conflict) => match self.objects.get(&key).await {
                                Ok(Some(o)) if o.bytes == bytes => {
                                    return Ok(Box::new(self.held(info, o.version, Some(holder))));
                                }
                                _ => continue, // someone else took it over first
                            },
                            Err(e) => return Err(self.remote("take over", &key, e)),
                        }
                    }
                    holder
                }
                Err(e) => return Err(self.remote("create", &key, e)),
            };
            let waited = start.elapsed();
            if waited >= opts.timeout {
                return Err(StateError::Locked {
                    path: PathBuf::from(self.objects.url(&key)),
                    holder: Some(Box::new(holder)),
                    waited: if opts.timeout.is_zero() { Duration::ZERO } else { waited },
                });
            }
            if !waited_once {
                waited_once = true;
                on_wait(Some(&holder));
            }
            tokio::time::sleep(LOCK_POLL.min(opts.timeout - waited)).await;
        }
    }

    async fn unlock(&self, lock: Box<dyn StoreLock>) -> Result<(), StateError> {
        let lock = self.own(lock.as_ref())?;
        lock.heartbeat.abort();
        if lock.lost.load(Ordering::SeqCst) {
            return Ok(()); // someone else holds it now: not ours to delete
        }
        let version = lock.version.lock().unwrap().clone();
        match self.objects.delete(&self.lock_key(), &version).await {
            Ok(()) | Err(ObjectError::Conflict) => Ok(()),
            Err(e) => Err(self.remote("delete", &self.lock_key(), e)),
        }
    }

    async fn lock_status(&self) -> Result<Option<LockInfo>, StateError> {
        let key = self.lock_key();
        match self.objects.get(&key).await.map_err(|e| self.remote("read", &key, e))? {
            Some(o) => self.lease_of(&o).map(Some),
            None => Ok(None),
        }
    }

    async fn force_unlock(&self, id: &str) -> Result<Option<LockInfo>, StateError> {
        let key = self.lock_key();
        let Some(current) = self.objects.get(&key).await.map_err(|e| self.remote("read", &key, e))? else {
            return Ok(None);
        };
        let holder = self.lease_of(&current)?;
        if holder.id != id {
            let holder = Box::new(holder);
            return Err(StateError::LockIdMismatch { url: self.objects.url(&key), given: id.to_string(), holder });
        }
        match self.objects.delete(&key, &current.version).await {
            Ok(()) => Ok(Some(holder)),
            // Renewed or taken over since it was read: the id no longer names what is there.
            Err(ObjectError::Conflict) => {
                let holder = Box::new(self.lock_status().await?.unwrap_or(holder));
                Err(StateError::LockIdMismatch { url: self.objects.url(&key), given: id.to_string(), holder })
            }
            Err(e) => Err(self.remote("delete", &key, e)),
        }
    }

    async fn write(&self, snapshot: Snapshot, lock: &dyn StoreLock) -> Result<(), StateError> {
        let lock = self.own(lock)?;
        let bytes = snapshot.to_bytes();
        if lock.lost.load(Ordering::SeqCst) {
            let holder = self.lock_status().await.ok().flatten().map(Box::new);
            let saved = self.rescue(&snapshot, &bytes);
            return Err(StateError::LockLost { url: self.objects.url(&self.lock_key()), holder, saved });
        }
        let previous = self.seen.lock().unwrap().clone();
        // The previous state is kept by the store's versioning where it is on, else as a copy.
        if let Some(prev) = &previous
            && !prev.kept
        {
            self.objects
                .put(&self.backup_key(), prev.bytes.clone())
                .await
                .map_err(|e| self.remote("write", &self.backup_key(), e))?;
        }
        let written = match &previous {
            Some(prev) => self.objects.replace(&self.key, bytes.clone(), &prev.version).await,
            None => self.objects.create(&self.key, bytes.clone()).await,
        };
        let stored = match written {
            Ok(v) => v,
            Err(ObjectError::Conflict) => {
                let now = self.objects.get(&self.key).await.map_err(|e| self.remote("read", &self.key, e))?;
                match now {
                    // Our own write, whose answer was lost and whose retry met it.
                    Some(o) if o.bytes == bytes => Stored { version: o.version, kept: o.kept },
                    other => {
                        let path = PathBuf::from(self.url());
                        let found = other.as_ref().and_then(|o| format::read_header(&o.bytes, &path).ok());
                        return Err(StateError::WriteConflict {
                            url: self.url(),
                            expected_serial: snapshot.serial().saturating_sub(1),
                            found_serial: found.as_ref().and_then(|h| h.serial),
                            found_lineage: found.and_then(|h| h.lineage),
                            saved: self.rescue(&snapshot, &bytes),
                        });
                    }
                }
            }
            Err(e) => return Err(self.remote("write", &self.key, e)),
        };
        *self.seen.lock().unwrap() = Some(Object { bytes, version: stored.version, kept: stored.kept });
        Ok(())
    }
}

/// An object store in memory, with the behaviour of the real ones that matters here
/// (conditional creates and replaces, versions that change on every write) and the faults the
/// network adds: an answer lost after the write happened, seen by the caller as its SDK sees it
/// — the retry meets its own write and fails its condition.
#[derive(Debug, Default)]
pub struct MemoryObjects {
    objects: Mutex<std::collections::BTreeMap<String, Object>>,
    next: std::sync::atomic::AtomicU64,
    versioned: bool,
    /// The next this-many conditional writes happen, then report a failed condition.
    lose_answers: std::sync::atomic::AtomicUsize,
    /// Conditional writes so far (creates, replaces, deletes and puts).
    pub writes: std::sync::atomic::AtomicUsize,
}

impl MemoryObjects {
    /// An empty store; `versioned` says whether it keeps old versions itself.
    pub fn new(versioned: bool) -> Self {
        MemoryObjects { versioned, ..MemoryObjects::default() }
    }

    /// Makes the next `n` creates or replaces lose their answer after writing.
    pub fn lose_answers(&self, n: usize) {
        self.lose_answers.store(n, Ordering::SeqCst);
    }

    /// The bytes at `key`.
    pub fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(key).map(|o| o.bytes.clone())
    }

    fn store(&self, key: &str, bytes: Vec<u8>) -> Stored {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let v = Version(format!("v{}", self.next.fetch_add(1, Ordering::SeqCst) + 1));
        let kept = self.versioned;
        self.objects.lock().unwrap().insert(key.to_string(), Object { bytes, version: v.clone(), kept });
        Stored { version: v, kept }
    }

    fn answer(&self, v: Stored) -> Result<Stored, ObjectError> {
        let lose = self.lose_answers.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if lose { Err(ObjectError::Conflict) } else { Ok(v) }
    }
}

#[async_trait]
impl ObjectStore for MemoryObjects {
    fn url(&self, key: &str) -> String {
        format!("mem://bucket/{key}")
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }

    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError> {
        if self.objects.lock().unwrap().contains_key(key) {
            return Err(ObjectError::Conflict);
        }
        let v = self.store(key, bytes);
        self.answer(v)
    }

    async fn replace(&self, key: &str, bytes: Vec<u8>, expected: &Version) -> Result<Stored, ObjectError> {
        if self.objects.lock().unwrap().get(key).map(|o| &o.version) != Some(expected) {
            return Err(ObjectError::Conflict);
        }
        let v = self.store(key, bytes);
        self.answer(v)
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError> {
        Ok(self.store(key, bytes))
    }

    async fn delete(&self, key: &str, expected: &Version) -> Result<(), ObjectError> {
        let mut objects = self.objects.lock().unwrap();
        if objects.get(key).map(|o| &o.version) != Some(expected) {
            return Err(ObjectError::Conflict);
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        objects.remove(key);
        Ok(())
    }
}
