//! The engine's phases: resolve pending intents, refresh, plan, apply.
//!
//! Each phase is a function over values (state in, state or plan out). Persisting state is the
//! caller's business through [`Persist`]; talking to clouds is the providers' business through
//! [`Provider`]. The engine decides order, diffs, guards and bookkeeping, nothing else.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use matih_addrs::{ResourceAddr, ResourceType};
use matih_state::{Attrs, Deposed, Intent, Output, ResourceState, Snapshot, State, StateCopy, StateError};

use crate::diff::diff_attrs;
use crate::graph::{Dag, Outcome, walk_batched};
use crate::plan::*;
use crate::provider::*;
use crate::resource::DesiredGraph;
use crate::value::{Ref, Value};

/// The providers of one run, indexed by the resource types they own.
pub struct Providers {
    by_type: HashMap<ResourceType, (Arc<dyn Provider>, TypeSchema)>,
    all: Vec<Arc<dyn Provider>>,
}

impl Providers {
    pub fn new(list: Vec<Arc<dyn Provider>>) -> Result<Self, EngineError> {
        let mut by_type: HashMap<ResourceType, (Arc<dyn Provider>, TypeSchema)> = HashMap::new();
        for p in &list {
            for s in p.schemas() {
                if let Some((other, _)) = by_type.get(&s.rtype) {
                    return Err(EngineError::DuplicateType {
                        rtype: s.rtype.clone(),
                        first: other.name().to_string(),
                        second: p.name().to_string(),
                    });
                }
                by_type.insert(s.rtype.clone(), (p.clone(), s));
            }
        }
        Ok(Self { by_type, all: list })
    }

    fn get(&self, rtype: &ResourceType) -> Result<(&Arc<dyn Provider>, &TypeSchema), EngineError> {
        self.by_type.get(rtype).map(|(p, s)| (p, s)).ok_or_else(|| EngineError::NoProvider { rtype: rtype.clone() })
    }

    /// Calls, retries and reconciled creates of every provider so far, summed by name.
    pub fn stats(&self) -> CallStats {
        let mut out = CallStats::default();
        for p in &self.all {
            out.add(&p.stats());
        }
        out
    }

    /// How each provider retries (for `-v` and statistics), one line per provider that says.
    pub fn retry_budgets(&self) -> Vec<String> {
        self.all.iter().filter_map(|p| p.retry_budget().map(|b| format!("{}: {b}", p.name()))).collect()
    }

    /// The provider that owns a resource type.
    pub fn provider(&self, rtype: &ResourceType) -> Result<&Arc<dyn Provider>, EngineError> {
        self.get(rtype).map(|(p, _)| p)
    }

    /// The schema of a resource type, if a provider owns it.
    pub fn schema(&self, rtype: &ResourceType) -> Option<&TypeSchema> {
        self.by_type.get(rtype).map(|(_, s)| s)
    }

    /// The owner tags a resource at `addr` carries, in its provider's encoding.
    pub fn owner_tags(
        &self,
        ownership: &Ownership,
        addr: &ResourceAddr,
    ) -> Result<BTreeMap<String, String>, EngineError> {
        let (p, _) = self.get(&addr.rtype)?;
        Ok(p.owner_tags(ownership, addr))
    }
}

/// Who owns what the engine creates: written as tags on every taggable resource.
#[derive(Debug, Clone)]
pub struct Ownership {
    pub platform: String,
    pub environment: String,
}

impl Ownership {
    pub fn tags(&self, addr: &ResourceAddr) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("matih:platform".to_string(), self.platform.clone()),
            ("matih:environment".to_string(), self.environment.clone()),
            ("matih:address".to_string(), addr.to_string()),
        ])
    }
}

/// Writes state durably: after every finished resource and before every create.
///
/// A write is two steps so that work finishing together shares one write: `snapshot` (numbering
/// and encoding, no I/O) runs with the engine's state lock held, `write` (the I/O) without it.
/// The engine writes one snapshot at a time, each newer than the last. During an apply's walk it
/// encodes its own copy of the state instead of calling `snapshot` (see [`Committer`]), into
/// `spare_buffers`.
#[async_trait::async_trait]
pub trait Persist: Send + Sync {
    fn snapshot(&self, state: &mut State) -> Snapshot;
    async fn write(&self, snapshot: Snapshot) -> Result<(), StateError>;
    /// Buffers to encode the next snapshot into (a store may keep those of its last write).
    fn spare_buffers(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

/// Takes a snapshot of `state` and writes it: for the places that write alone.
async fn persist_now(persist: &dyn Persist, state: &mut State) -> Result<(), StateError> {
    let snapshot = persist.snapshot(state);
    persist.write(snapshot).await
}

/// Group commit for the apply walk. Units of work change the shared state under its lock, take
/// a ticket, and wait until a write that includes their change is stored. One write runs at a
/// time; every change made while it runs rides on the next, so ten units finishing together
/// cost two writes, not ten, and a slow store does not make the walk serial.
///
/// The walk is one task: whatever a write costs in it, every unit waits for. So the writer keeps
/// its own copy of the state ([`StateCopy`]: each resource's line as the file holds it), renders
/// under the state lock only the resources changed since the last write (each ticket names
/// them), and puts the file together on the blocking pool. At 10,000 tenants (a 19 MB state) a
/// full encode takes about 150 ms and a copy of the state about 60: done on every write, in
/// the walk, they were the apply's bottleneck.
struct Committer<'a> {
    persist: &'a dyn Persist,
    /// Changes made to the shared state so far (each ticket is one), and how many are stored.
    made: AtomicU64,
    stored: AtomicU64,
    /// Held by the unit writing, with the writer's copy of the state (made at the first write;
    /// gone only if an encode panicked, and made again then).
    writing: tokio::sync::Mutex<Option<StateCopy>>,
    /// Addresses whose resource changed since the copy was last brought up to date; changed
    /// with the state lock held.
    dirty: Mutex<Vec<ResourceAddr>>,
    /// Why a write failed; once set nothing new starts and nothing more is written.
    failed: Mutex<Option<String>>,
}

/// Why a unit's change was not stored.
enum CommitError {
    /// This unit's write failed.
    Write(StateError),
    /// An earlier write failed, and nothing more is written.
    Earlier(String),
}

impl<'a> Committer<'a> {
    fn new(persist: &'a dyn Persist) -> Self {
        Committer {
            persist,
            made: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            writing: tokio::sync::Mutex::new(None),
            dirty: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
        }
    }

    /// Records a change to the shared state, naming every address whose resource it inserted,
    /// changed or removed; call with its lock held. Returns the ticket to wait for.
    fn changed<'c>(&self, addrs: impl IntoIterator<Item = &'c ResourceAddr>) -> u64 {
        self.dirty.lock().unwrap().extend(addrs.into_iter().cloned());
        self.made.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn has_failed(&self) -> bool {
        self.failed.lock().unwrap().is_some()
    }

    /// Waits until the change with `ticket` is stored, writing it (and every change made
    /// since) when no write is running.
    async fn commit(&self, shared: &Mutex<State>, ticket: u64) -> Result<(), CommitError> {
        loop {
            if self.stored.load(Ordering::SeqCst) >= ticket {
                return Ok(());
            }
            let mut writing = self.writing.lock().await;
            if let Some(cause) = self.failed.lock().unwrap().clone() {
                return Err(CommitError::Earlier(cause));
            }
            if self.stored.load(Ordering::SeqCst) >= ticket {
                return Ok(());
            }
            // Every change with a ticket up to `upto` was made under the lock held here, so
            // the copy holds it.
            let (copy, upto, expected) = {
                let mut st = shared.lock().unwrap();
                st.serial += 1;
                let dirty = std::mem::take(&mut *self.dirty.lock().unwrap());
                let copy = match writing.take() {
                    Some(mut copy) => {
                        copy.update(&st, &dirty);
                        copy
                    }
                    None => StateCopy::new(&st),
                };
                // What the copy must encode to: checked in debug builds (the tests), where the
                // O(state) it costs does not matter.
                let expected = cfg!(debug_assertions).then(|| matih_state::format::encode(&st));
                (copy, self.made.load(Ordering::SeqCst), expected)
            };
            let parts = self.persist.spare_buffers();
            let (copy, snapshot) = tokio::task::spawn_blocking(move || {
                let snapshot = copy.encode(parts);
                (copy, snapshot)
            })
            .await
            .expect("encoding a state does not panic");
            if let Some(expected) = expected {
                assert!(
                    snapshot.to_bytes() == expected,
                    "a unit changed a resource in state without naming it in its ticket"
                );
            }
            *writing = Some(copy);
            match self.persist.write(snapshot).await {
                Ok(()) => {
                    self.stored.fetch_max(upto, Ordering::SeqCst);
                }
                Err(e) => {
                    *self.failed.lock().unwrap() = Some(e.to_string());
                    return Err(CommitError::Write(e));
                }
            }
        }
    }
}

/// Which half of a change a graph node performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Create or update.
    Apply,
    /// Delete (of a removed resource, or of the old instance in a replacement).
    Destroy,
}

/// Progress reported while the engine works.
#[derive(Debug)]
pub enum Event<'a> {
    Refreshing {
        rtype: &'a ResourceType,
        count: usize,
    },
    IntentResolved {
        addr: &'a ResourceAddr,
        adopted: bool,
    },
    Started {
        addr: &'a ResourceAddr,
        action: Action,
        phase: Phase,
    },
    Finished {
        addr: &'a ResourceAddr,
        action: Action,
        phase: Phase,
        elapsed: Duration,
    },
    Failed {
        addr: &'a ResourceAddr,
        action: Action,
        phase: Phase,
        error: &'a EngineError,
    },
    Skipped {
        addr: &'a ResourceAddr,
        because: &'a ResourceAddr,
    },
    /// A provider's word on a long operation in progress.
    Status {
        addr: &'a ResourceAddr,
        status: &'a str,
    },
}

pub trait Observer: Send + Sync {
    fn event(&self, e: Event<'_>);
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: Event<'_>) {}
}

/// Why the engine stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No provider owns a resource type (a platform spec mapping bug, or a missing cargo feature).
    #[error("no provider for resource type {rtype}")]
    NoProvider { rtype: ResourceType },
    /// Two providers claim the same resource type.
    #[error("resource type {rtype} is claimed by both {first} and {second}")]
    DuplicateType { rtype: ResourceType, first: String, second: String },
    /// The desired resources depend on each other in a circle.
    #[error("dependency cycle: {}", .addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(" -> "))]
    Cycle { addrs: Vec<String> },
    /// A resource refers to one that is not part of the platform.
    #[error("{from} refers to {to}, which is not part of the platform")]
    DanglingRef { from: ResourceAddr, to: ResourceAddr },
    /// The provider rejected a resource's configuration.
    #[error("invalid configuration for {addr}: {}", .errors.join("; "))]
    InvalidConfig { addr: ResourceAddr, errors: Vec<String> },
    /// A saved plan no longer matches the state or the platform spec.
    #[error("the saved plan is stale: {what}")]
    StalePlan { what: String },
    /// The plan document is of another version.
    #[error("the plan file has format version {found}; this matih-infra reads version {PLAN_FORMAT_VERSION}")]
    PlanFormat { found: u32 },
    /// The replacement guard stopped the plan.
    #[error("the plan would replace or delete {} protected resource(s): {}", .0.len(), .0.iter().map(|b| b.address.to_string()).collect::<Vec<_>>().join(", "))]
    Blocked(Vec<Blocked>),
    /// A provider call failed for one resource.
    #[error("{op} {addr}")]
    Provider {
        addr: ResourceAddr,
        op: &'static str,
        #[source]
        source: ProviderError,
    },
    /// Refreshing a resource type failed.
    #[error("refreshing {rtype}")]
    Refresh {
        rtype: ResourceType,
        #[source]
        source: ProviderError,
    },
    /// At apply time a reference had no value.
    #[error("{addr} needs {} of {}, which is not in state", .reference.attr, .reference.addr)]
    Unresolved { addr: ResourceAddr, reference: Ref },
    /// Writing state failed. Work done before this point is in the previous state write.
    #[error(transparent)]
    State(#[from] StateError),
    /// A provider answered with a cloud id that state already holds for another address: two
    /// addresses must never share one resource, so nothing was recorded.
    #[error("{addr}: the cloud returned {rtype} {id}, which state already records as {other}; not recording it twice")]
    SharedId { addr: ResourceAddr, other: ResourceAddr, rtype: ResourceType, id: String },
    /// State holds attributes of a schema version newer than this build's provider knows.
    #[error(
        "{addr} was recorded with schema version {recorded} of its type; this matih-infra knows up to version {supported}"
    )]
    NewerSchema { addr: ResourceAddr, recorded: u32, supported: u32 },
    /// Upgrading recorded attributes to the provider's schema version failed.
    #[error("upgrading the recorded attributes of {addr} from schema version {from}")]
    Upgrade {
        addr: ResourceAddr,
        from: u32,
        #[source]
        source: ProviderError,
    },
    /// Another resource of the same batch could not be recorded because writing state failed.
    #[error("{addr} was not recorded: writing state failed: {cause}")]
    NotRecorded { addr: ResourceAddr, cause: String },
}

/// What resolving the intent journal did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IntentReport {
    pub adopted: Vec<ResourceAddr>,
    pub forgotten: Vec<ResourceAddr>,
    /// Intents whose resource turned out to be one state records for another address (first):
    /// not adopted twice.
    pub shared: Vec<(ResourceAddr, ResourceAddr)>,
}

/// The address (other than `addr`) state records the cloud resource `rtype`/`id` under, if any.
pub fn holder_of(state: &State, rtype: &ResourceType, id: &str, addr: &ResourceAddr) -> Option<ResourceAddr> {
    state.resources.iter().find(|(a, r)| *a != addr && &r.rtype == rtype && r.id == id).map(|(a, _)| a.clone())
}

/// The addresses that held each cloud id at some point of an apply: [`holder_of`] without a scan
/// of the whole state for every finished resource (O(resources²) over an apply of 24,000). An
/// address is added when its resource is recorded and never taken out; a lookup checks each
/// candidate against the state, so one that has moved on or gone is passed over.
struct Ids(Mutex<HashMap<String, Vec<ResourceAddr>>>);

impl Ids {
    fn of(state: &State) -> Ids {
        let mut ids: HashMap<String, Vec<ResourceAddr>> = HashMap::new();
        for (a, r) in &state.resources {
            ids.entry(r.id.clone()).or_default().push(a.clone());
        }
        Ids(Mutex::new(ids))
    }

    /// [`holder_of`] in `state`, which every recorded address was [`add`](Self::add)ed for.
    fn holder(&self, state: &State, rtype: &ResourceType, id: &str, addr: &ResourceAddr) -> Option<ResourceAddr> {
        let ids = self.0.lock().unwrap();
        ids.get(id)?
            .iter()
            .find(|a| *a != addr && state.resources.get(*a).is_some_and(|r| &r.rtype == rtype && r.id == id))
            .cloned()
    }

    fn add(&self, id: &str, addr: &ResourceAddr) {
        self.0.lock().unwrap().entry(id.to_string()).or_default().push(addr.clone());
    }
}

/// How long after an intent was recorded its create may still land in the cloud (sent by a
/// process that died with the request in flight, processed by a slow server).
const INTENT_SETTLE: Duration = Duration::from_secs(10);

/// How many interrupted creates are looked for at once.
const INTENT_LOOKS_AT_ONCE: usize = 10;

/// Resolves creates that were started but never recorded: a resource found by its owner tags is
/// adopted into state, one not found is forgotten. Persists after each.
pub async fn resolve_intents(
    state: &mut State,
    providers: &Providers,
    persist: &dyn Persist,
    obs: &dyn Observer,
) -> Result<IntentReport, EngineError> {
    let mut report = IntentReport::default();
    let pending: Vec<(ResourceAddr, Intent)> = state.intents.iter().map(|(a, i)| (a.clone(), i.clone())).collect();
    // The looks run concurrently: a provider may wait a little before it concludes that an
    // interrupted create never happened.
    let finds = stream::iter(pending.into_iter().map(|(addr, intent)| async move {
        let (provider, _) = providers.get(&intent.rtype)?;
        let found = provider
            .find_by_owner(FindRequest {
                addr: addr.clone(),
                rtype: intent.rtype.clone(),
                name: intent.name.clone(),
                client_token: intent.client_token.clone(),
                owner_tags: intent.owner_tags.clone(),
                settled_at: humantime::parse_rfc3339_weak(&intent.recorded_at).ok().map(|t| t + INTENT_SETTLE),
            })
            .await
            .map_err(|source| EngineError::Provider { addr: addr.clone(), op: "finding", source })?;
        Ok::<_, EngineError>((addr, intent, found))
    }))
    .buffered(INTENT_LOOKS_AT_ONCE)
    .collect::<Vec<_>>()
    .await;
    for result in finds {
        let (addr, intent, found) = result?;
        state.intents.remove(&addr);
        let found = match found {
            Some(f) => match holder_of(state, &intent.rtype, &f.id, &addr) {
                Some(other) => {
                    report.shared.push((addr.clone(), other));
                    None
                }
                None => Some(f),
            },
            None => None,
        };
        let adopted = found.is_some();
        if let Some(found) = found {
            state.resources.insert(
                addr.clone(),
                ResourceState {
                    rtype: intent.rtype.clone(),
                    id: found.id,
                    attrs: Arc::new(found.attrs),
                    dependencies: intent.dependencies.clone(),
                    owner_tags: intent.owner_tags.clone(),
                    protected: intent.protected,
                },
            );
            note_version(state, providers, &intent.rtype);
            report.adopted.push(addr.clone());
        } else {
            report.forgotten.push(addr.clone());
        }
        persist_now(persist, state).await?;
        obs.event(Event::IntentResolved { addr: &addr, adopted });
    }
    Ok(report)
}

/// Brings every recorded resource (and deposed instance) whose type was recorded under an older
/// schema version up to its provider's current version ([`Provider::upgrade`]), and records the
/// versions. Returns the addresses whose attributes changed. Attributes recorded by a newer
/// provider than this one are refused: they may mean something this version cannot know.
pub fn upgrade_state(state: &mut State, providers: &Providers) -> Result<Vec<ResourceAddr>, EngineError> {
    let mut changed = Vec::new();
    let recorded = std::mem::take(&mut state.schema_versions);
    let mut now = BTreeMap::new();
    let mut upgrade = |addr: &ResourceAddr, r: &mut ResourceState| -> Result<(), EngineError> {
        let (provider, schema) = providers.get(&r.rtype)?;
        let from = recorded.get(&r.rtype).copied().unwrap_or(0);
        if from > schema.version {
            return Err(EngineError::NewerSchema { addr: addr.clone(), recorded: from, supported: schema.version });
        }
        if schema.version > 0 {
            now.insert(r.rtype.clone(), schema.version);
        }
        if from < schema.version {
            let attrs = Arc::unwrap_or_clone(std::mem::take(&mut r.attrs));
            let req = UpgradeRequest { addr, rtype: &r.rtype, from, id: &r.id, attrs };
            r.attrs = Arc::new(provider.upgrade(req).map_err(|source| EngineError::Upgrade {
                addr: addr.clone(),
                from,
                source,
            })?);
            changed.push(addr.clone());
        }
        Ok(())
    };
    for (addr, r) in state.resources.iter_mut() {
        upgrade(addr, r)?;
    }
    for d in state.deposed.iter_mut() {
        upgrade(&d.addr, &mut d.resource)?;
    }
    state.schema_versions = now;
    Ok(changed)
}

/// Records that `rtype`'s attributes in state follow its provider's current schema version.
fn note_version(st: &mut State, providers: &Providers, rtype: &ResourceType) {
    if let Some(v) = providers.schema(rtype).map(|s| s.version).filter(|v| *v > 0) {
        st.schema_versions.insert(rtype.clone(), v);
    }
}

/// State as the clouds see it now, and what moved since the last apply.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub state: State,
    pub drift: Vec<Drift>,
    /// Resources carrying the platform's owner tags that state does not know, by type and id.
    pub orphans: Vec<Orphan>,
    /// What providers asked to tell the user.
    pub warnings: Vec<String>,
    /// The calls refresh made.
    pub stats: CallStats,
    pub elapsed: Duration,
    /// Each type's read (its slowest, reading per resource), in milliseconds.
    pub by_type_ms: BTreeMap<ResourceType, u64>,
}

/// How [`refresh_with`] reads.
#[derive(Debug, Clone, Default)]
pub struct RefreshOptions {
    /// Reads in flight at once when reading per resource. A batched refresh makes one read per
    /// type (a few dozen at most) and sends them all at once: a slow type (a zone of thousands of
    /// records, a cluster's add-ons) never holds back the start of another.
    pub parallelism: usize,
    pub mode: RefreshMode,
    /// Types to list even when state records none of them, so orphans of those types show too
    /// (the desired graph's types, once the platform exists).
    pub list_types: BTreeSet<ResourceType>,
}

/// How refresh asks the providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshMode {
    /// One read per resource type, with every instance of that type.
    #[default]
    Batched,
    /// One read per resource, the way Terraform refreshes; for comparison and for providers
    /// under investigation.
    PerResource,
}

/// Refreshes every recorded resource with one batched read per resource type (or one per
/// resource in [`RefreshMode::PerResource`]). The input state is not changed; the caller decides
/// whether to persist the result.
pub async fn refresh(
    state: &State,
    providers: &Providers,
    parallelism: usize,
    mode: RefreshMode,
    obs: &dyn Observer,
) -> Result<Refreshed, EngineError> {
    refresh_with(state, providers, &RefreshOptions { parallelism, mode, list_types: BTreeSet::new() }, obs).await
}

/// [`refresh`], listing `opts.list_types` too.
pub async fn refresh_with(
    state: &State,
    providers: &Providers,
    opts: &RefreshOptions,
    obs: &dyn Observer,
) -> Result<Refreshed, EngineError> {
    let (parallelism, mode) = (opts.parallelism, opts.mode);
    let start = Instant::now();
    let before = providers.stats();
    let mut by_type: BTreeMap<ResourceType, Vec<ReadItem>> = BTreeMap::new();
    for (addr, r) in &state.resources {
        by_type.entry(r.rtype.clone()).or_default().push(ReadItem {
            addr: addr.clone(),
            id: r.id.clone(),
            attrs: r.attrs.clone(),
        });
    }
    for rtype in &opts.list_types {
        by_type.entry(rtype.clone()).or_default();
    }
    let mut reads = Vec::with_capacity(by_type.len());
    for (rtype, items) in by_type {
        let (provider, _) = providers.get(&rtype)?;
        obs.event(Event::Refreshing { rtype: &rtype, count: items.len() });
        match mode {
            RefreshMode::PerResource if !items.is_empty() => {
                for item in items {
                    reads.push((provider.clone(), ReadRequest { rtype: rtype.clone(), items: vec![item] }));
                }
            }
            _ => reads.push((provider.clone(), ReadRequest { rtype, items })),
        }
    }
    let in_flight = match mode {
        RefreshMode::Batched => reads.len(),
        RefreshMode::PerResource => parallelism,
    };
    let results: Vec<(ResourceType, Duration, Result<ReadResponse, ProviderError>)> = stream::iter(reads)
        .map(|(p, req)| async move {
            let rtype = req.rtype.clone();
            let started = Instant::now();
            let read = p.read(req).await;
            (rtype, started.elapsed(), read)
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    let mut by_type_ms: BTreeMap<ResourceType, u64> = BTreeMap::new();
    for (rtype, took, _) in &results {
        let ms = by_type_ms.entry(rtype.clone()).or_default();
        *ms = (*ms).max(took.as_millis() as u64);
    }

    let mut found: BTreeMap<ResourceAddr, ReadResource> = BTreeMap::new();
    let mut orphans: BTreeMap<(ResourceType, String), Orphan> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (rtype, _, result) in results {
        let resp = result.map_err(|source| EngineError::Refresh { rtype: rtype.clone(), source })?;
        found.extend(resp.found);
        warnings.extend(resp.warnings);
        for o in resp.orphans {
            orphans.insert((o.rtype.clone(), o.id.clone()), o);
        }
    }
    // A per-resource read reports its type's other recorded resources as unrequested: only what
    // state knows nowhere (resources and deposed instances alike) is an orphan.
    for r in state.resources.values() {
        orphans.remove(&(r.rtype.clone(), r.id.clone()));
    }
    for d in &state.deposed {
        orphans.remove(&(d.resource.rtype.clone(), d.resource.id.clone()));
    }
    warnings.dedup();
    // The refreshed state: each recorded resource with what was seen laid over what was
    // recorded. What was seen is moved in, not copied: at 10,000 tenants a copy of every
    // resource's attributes is some hundred megabytes.
    let mut next = State {
        serial: state.serial,
        lineage: state.lineage.clone(),
        resources: BTreeMap::new(),
        intents: state.intents.clone(),
        deposed: state.deposed.clone(),
        outputs: state.outputs.clone(),
        schema_versions: state.schema_versions.clone(),
    };
    let mut drift = Vec::new();
    for (addr, r) in state.resources.iter() {
        let Some(seen) = found.remove(addr) else {
            drift.push(Drift { address: addr.clone(), deleted: true, attributes: Vec::new(), parts: Vec::new() });
            continue;
        };
        // The common case is "nothing moved": check that before building a diff, and then keep
        // the recorded attributes (shared, not copied) and drop what was seen.
        let same = seen.attrs.iter().all(|(k, v)| r.attrs.get(k) == Some(v));
        let attrs = if same {
            r.attrs.clone()
        } else {
            let seen_values: BTreeMap<String, Value> =
                seen.attrs.iter().map(|(k, v)| (k.clone(), Value::Known(v.clone()))).collect();
            let changed = diff_attrs(Some(&r.attrs), &seen_values, &[]);
            if !changed.is_empty() {
                let (attributes, parts) = split_parts(providers, addr, changed, Some(&r.attrs), Some(&seen.attrs));
                drift.push(Drift { address: addr.clone(), deleted: false, attributes, parts });
            }
            let mut attrs = Attrs::clone(&r.attrs);
            attrs.extend(seen.attrs);
            Arc::new(attrs)
        };
        next.resources.insert(
            addr.clone(),
            ResourceState {
                rtype: r.rtype.clone(),
                id: seen.id,
                attrs,
                dependencies: r.dependencies.clone(),
                owner_tags: r.owner_tags.clone(),
                protected: r.protected,
            },
        );
    }
    drift.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(Refreshed {
        state: next,
        drift,
        orphans: orphans.into_values().collect(),
        warnings,
        stats: providers.stats().since(&before),
        elapsed: start.elapsed(),
        by_type_ms,
    })
}

/// The address an orphan is shown and deleted under: `<type>.orphan["<id>"]` (its tagged address
/// may be one state holds for another resource).
pub fn orphan_addr(o: &Orphan) -> ResourceAddr {
    ResourceAddr::keyed(&o.rtype, "orphan", o.id.as_str()).expect("`orphan` is a valid name")
}

/// Deletes orphans (resources carrying the platform's owner tags that state does not know),
/// without touching state. Some can go only after others (a VPC after its subnets), so it works
/// in rounds: what fails with a conflict is tried again once the rest of its round is done,
/// while rounds make progress. One result per orphan, in order.
pub async fn prune_orphans(
    orphans: &[Orphan],
    providers: &Providers,
    parallelism: usize,
    obs: &dyn Observer,
) -> Vec<Result<(), EngineError>> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let mut results: Vec<Option<Result<(), EngineError>>> = orphans.iter().map(|_| None).collect();
    let mut todo: Vec<usize> = (0..orphans.len()).collect();
    while !todo.is_empty() {
        let round: Vec<(usize, Result<(), EngineError>)> = stream::iter(todo.iter().copied())
            .map(|i| {
                let o = &orphans[i];
                let tx = tx.clone();
                async move {
                    let addr = orphan_addr(o);
                    obs.event(Event::Started { addr: &addr, action: Action::Delete, phase: Phase::Destroy });
                    let started = Instant::now();
                    let r = match providers.get(&o.rtype) {
                        Err(e) => Err(e),
                        Ok((p, _)) => p
                            .delete(DeleteRequest {
                                addr: addr.clone(),
                                rtype: o.rtype.clone(),
                                id: o.id.clone(),
                                attrs: o.attrs.clone(),
                                status: StatusSink::new(addr.clone(), tx),
                            })
                            .await
                            .map_err(|source| EngineError::Provider { addr: addr.clone(), op: "deleting", source }),
                    };
                    match &r {
                        Ok(()) => obs.event(Event::Finished {
                            addr: &addr,
                            action: Action::Delete,
                            phase: Phase::Destroy,
                            elapsed: started.elapsed(),
                        }),
                        Err(error) => obs.event(Event::Failed {
                            addr: &addr,
                            action: Action::Delete,
                            phase: Phase::Destroy,
                            error,
                        }),
                    }
                    (i, r)
                }
            })
            .buffer_unordered(parallelism.max(1))
            .collect()
            .await;
        let before = todo.len();
        todo.clear();
        for (i, r) in round {
            let again = matches!(&r, Err(EngineError::Provider { source, .. }) if source.kind() == ErrorKind::Conflict);
            if again {
                todo.push(i);
            }
            results[i] = Some(r);
        }
        if todo.len() == before {
            break;
        }
        todo.sort_unstable();
    }
    results.into_iter().map(|r| r.expect("every orphan was tried")).collect()
}

/// Everything `plan` needs besides the providers.
pub struct PlanInput<'a> {
    pub operation: Operation,
    pub desired: &'a DesiredGraph,
    /// The refreshed state.
    pub state: &'a State,
    /// The serial of the state as persisted (the refreshed copy is not written by `plan`).
    pub recorded_serial: u64,
    pub drift: Vec<Drift>,
    /// Resources of the platform's that state does not know (reported, never acted on by a plan).
    pub orphans: Vec<Orphan>,
    /// Protected resources the user allowed to be replaced or deleted.
    pub allow_replace: &'a BTreeSet<ResourceAddr>,
    /// `destroy --include-protected`: every protected resource may go.
    pub allow_all_protected: bool,
    pub cloud: String,
    pub environment: String,
    pub spec_hash: String,
    pub statistics: Statistics,
}

/// Checks the desired graph: every type has a provider, references point inside the graph, no
/// cycles, and each provider accepts its resources' configuration. Returns a dependency order.
pub async fn validate(desired: &DesiredGraph, providers: &Providers) -> Result<Vec<ResourceAddr>, EngineError> {
    let mut dag = Dag::new();
    let mut index = HashMap::with_capacity(desired.resources.len());
    for addr in desired.resources.keys() {
        index.insert(addr, dag.add(addr));
    }
    for (addr, d) in &desired.resources {
        providers.get(&addr.rtype)?;
        for dep in d.dependencies() {
            let Some(&to) = index.get(&dep) else {
                return Err(EngineError::DanglingRef { from: addr.clone(), to: dep });
            };
            dag.depend(index[addr], to);
        }
    }
    let order = dag
        .topo_order()
        .map_err(|c| EngineError::Cycle { addrs: c.0.iter().map(|&i| dag.node(i).to_string()).collect() })?;
    for (addr, d) in &desired.resources {
        let (provider, _) = providers.get(&addr.rtype)?;
        let resp = provider.validate(ValidateRequest { addr, config: &d.config }).await;
        if !resp.errors.is_empty() {
            return Err(EngineError::InvalidConfig { addr: addr.clone(), errors: resp.errors });
        }
    }
    Ok(order.into_iter().map(|i| (*dag.node(i)).clone()).collect())
}

/// Makes a plan: diffs the refreshed state against the desired graph (or against nothing, for
/// destroy), applies the replacement guard, and records what it was made against.
pub async fn plan(input: PlanInput<'_>, providers: &Providers) -> Result<Plan, EngineError> {
    let start = Instant::now();
    let empty = DesiredGraph::default();
    let desired = if input.operation == Operation::Destroy { &empty } else { input.desired };
    let order = validate(desired, providers).await?;
    let state = input.state;
    let drifted: HashMap<&ResourceAddr, &Drift> = input.drift.iter().map(|d| (&d.address, d)).collect();
    let allowed = |a: &ResourceAddr| input.allow_all_protected || input.allow_replace.contains(a);

    // The attributes other resources and the outputs refer to: the only planned values kept past
    // their own resource (at 10,000 tenants, keeping every resource's took 115 MB).
    let mut refs = Vec::new();
    for d in desired.resources.values() {
        d.config.values().for_each(|v| v.refs(&mut refs));
    }
    desired.outputs.values().for_each(|o| o.value.refs(&mut refs));
    let mut referenced: HashMap<ResourceAddr, BTreeSet<String>> = HashMap::new();
    for r in refs {
        referenced.entry(r.addr).or_default().insert(r.attr);
    }
    let mut planned: HashMap<ResourceAddr, BTreeMap<String, Value>> = HashMap::with_capacity(referenced.len());
    let mut actions: HashMap<ResourceAddr, Action> = HashMap::with_capacity(order.len());
    let mut changes = Vec::with_capacity(order.len() + state.resources.len());
    let mut blocked = Vec::new();
    for addr in &order {
        let d = &desired.resources[addr];
        let (provider, schema) = providers.get(&addr.rtype)?;
        let config: BTreeMap<String, Value> = d
            .config
            .iter()
            .map(|(k, v)| {
                let resolved = v.resolve(&mut |r: &Ref| {
                    planned.get(&r.addr).and_then(|p| p.get(&r.attr)).and_then(|v| v.as_known().cloned())
                });
                (k.clone(), resolved)
            })
            .collect();
        let prior = state.resources.get(addr);
        let resp = provider.plan(PlanRequest { addr, schema, prior: prior.map(|p| &*p.attrs), config: &config });
        let protected = d.protected.unwrap_or(schema.protected_by_default);
        let all_attributes = diff_attrs(prior.map(|p| &*p.attrs), &resp.planned, &resp.requires_replace);
        let (action, reason) = match prior {
            None if drifted.get(addr).is_some_and(|d| d.deleted) => (Action::Create, Reason::DeletedOutside),
            None => (Action::Create, Reason::New),
            Some(_) if !resp.requires_replace.is_empty() => {
                // The old instance cannot outlive a dependency that is destroyed before its own
                // replacement is created, so create-before-destroy degrades to destroy-first.
                let dep_destroyed_first = d.dependencies().iter().any(|dep| actions.get(dep) == Some(&Action::Replace));
                let action = if schema.create_before_destroy && !dep_destroyed_first {
                    Action::CreateBeforeDestroy
                } else {
                    Action::Replace
                };
                (action, Reason::ForcedReplace { attributes: resp.requires_replace.clone() })
            }
            Some(_) if !all_attributes.is_empty() => {
                if drifted.contains_key(addr) {
                    (Action::Update, Reason::DriftRepair)
                } else {
                    (Action::Update, Reason::SpecChanged)
                }
            }
            Some(_) => (Action::NoOp, Reason::Unchanged),
        };
        if action.is_replace() && protected && !allowed(addr) {
            blocked.push(Blocked { address: addr.clone(), action, forced_by: resp.requires_replace.clone() });
        }
        let applies = action != Action::NoOp;
        let (attributes, parts) = if applies {
            let after: matih_state::Attrs = resp.planned.iter().map(|(k, v)| (k.clone(), v.display_json())).collect();
            split_parts(providers, addr, all_attributes, prior.map(|p| &*p.attrs), Some(&after))
        } else {
            (all_attributes, Vec::new())
        };
        changes.push(Change {
            address: addr.clone(),
            rtype: addr.rtype.clone(),
            action,
            reason,
            protected,
            deposed: false,
            attributes,
            parts,
            config: applies.then(|| d.config.clone()),
            name: applies.then(|| d.name.clone()),
            depends_on: d.dependencies(),
        });
        if let Some(attrs) = referenced.get(addr) {
            let mut kept = resp.planned;
            kept.retain(|k, _| attrs.contains(k));
            planned.insert(addr.clone(), kept);
        }
        actions.insert(addr.clone(), action);
    }
    for (addr, r) in &state.resources {
        if desired.resources.contains_key(addr) {
            continue;
        }
        providers.get(&r.rtype)?;
        let reason = if input.operation == Operation::Destroy { Reason::Destroy } else { Reason::RemovedFromSpec };
        if r.protected && !allowed(addr) {
            blocked.push(Blocked { address: addr.clone(), action: Action::Delete, forced_by: Vec::new() });
        }
        changes.push(delete_change(providers, addr, r, reason, false));
    }
    for dep in &state.deposed {
        changes.push(delete_change(providers, &dep.addr, &dep.resource, Reason::Deposed, true));
    }
    changes.sort_by(|a, b| (&a.address, a.deposed).cmp(&(&b.address, b.deposed)));
    blocked.sort_by(|a, b| a.address.cmp(&b.address));

    let mut outputs = Vec::new();
    for (name, o) in &desired.outputs {
        let after = o.value.resolve(&mut |r: &Ref| {
            planned.get(&r.addr).and_then(|p| p.get(&r.attr)).and_then(|v| v.as_known().cloned())
        });
        let action = match (state.outputs.get(name), &after) {
            (None, _) => Action::Create,
            (Some(prev), Value::Known(v)) if &prev.value == v && prev.sensitive == o.sensitive => Action::NoOp,
            (Some(_), _) => Action::Update,
        };
        outputs.push(OutputChange {
            name: name.clone(),
            action,
            sensitive: o.sensitive,
            after: (!o.sensitive).then_some(after),
            config: Some(o.value.clone()),
        });
    }
    for (name, prev) in &state.outputs {
        if !desired.outputs.contains_key(name) {
            outputs.push(OutputChange {
                name: name.clone(),
                action: Action::Delete,
                sensitive: prev.sensitive,
                after: None,
                config: None,
            });
        }
    }
    outputs.sort_by(|a, b| a.name.cmp(&b.name));

    let mut orphans = input.orphans;
    for o in &mut orphans {
        let wanted = o.address.as_ref().filter(|a| a.rtype == o.rtype && desired.resources.contains_key(*a));
        o.remedy = match wanted {
            Some(a) if !state.resources.contains_key(a) => Remedy::Import,
            _ => Remedy::Prune,
        };
    }
    let summary = Summary::count(&changes, input.drift.len());
    let mut statistics = input.statistics;
    statistics.resources_in_state = state.resources.len();
    statistics.plan_ms = start.elapsed().as_millis() as u64;
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        operation: input.operation,
        cloud: input.cloud,
        environment: input.environment,
        state: StateRef { serial: input.recorded_serial, lineage: state.lineage.clone() },
        spec_hash: input.spec_hash,
        warnings: desired.warnings.clone(),
        drift: input.drift,
        orphans,
        changes,
        outputs,
        blocked,
        summary,
        statistics,
    })
}

fn delete_change(
    providers: &Providers,
    addr: &ResourceAddr,
    r: &ResourceState,
    reason: Reason,
    deposed: bool,
) -> Change {
    let (_, parts) = split_parts(providers, addr, Vec::new(), Some(&r.attrs), None);
    Change {
        address: addr.clone(),
        rtype: r.rtype.clone(),
        action: Action::Delete,
        reason,
        protected: r.protected,
        deposed,
        attributes: Vec::new(),
        parts,
        config: None,
        name: None,
        depends_on: Vec::new(),
    }
}

/// For a type with parts ([`TypeSchema::parts`]): the attribute changes without those of the
/// parts attribute, and the parts that change from `before` to what `after` says the parts
/// attribute becomes. Other types: the changes as they are, no parts.
fn split_parts(
    providers: &Providers,
    addr: &ResourceAddr,
    changes: Vec<crate::diff::AttrChange>,
    before: Option<&matih_state::Attrs>,
    after: Option<&matih_state::Attrs>,
) -> (Vec<crate::diff::AttrChange>, Vec<PartChange>) {
    let Ok((provider, schema)) = providers.get(&addr.rtype) else { return (changes, Vec::new()) };
    let Some(attr) = schema.parts.as_deref() else { return (changes, Vec::new()) };
    let under = |path: &str| path == attr || path.strip_prefix(attr).is_some_and(|rest| rest.starts_with(['.', '[']));
    let rest = changes.into_iter().filter(|c| !under(&c.path)).collect();
    let parts = provider.parts(addr, attr, before, after);
    (rest, parts)
}

/// Refuses a plan made against another state, or another version of the plan format.
pub fn check_plan(plan: &Plan, state: &State) -> Result<(), EngineError> {
    if plan.format_version != PLAN_FORMAT_VERSION {
        return Err(EngineError::PlanFormat { found: plan.format_version });
    }
    if plan.state.lineage != state.lineage {
        return Err(EngineError::StalePlan {
            what: format!(
                "it was made for state lineage {}, but the state has lineage {}",
                plan.state.lineage, state.lineage
            ),
        });
    }
    if plan.state.serial != state.serial {
        return Err(EngineError::StalePlan {
            what: format!(
                "it was made against state serial {}, but the state is now at serial {}",
                plan.state.serial, state.serial
            ),
        });
    }
    if !plan.blocked.is_empty() {
        return Err(EngineError::Blocked(plan.blocked.clone()));
    }
    Ok(())
}

/// Knobs for apply.
pub struct ApplyOptions {
    pub parallelism: usize,
    /// Set on the first Ctrl-C: nothing new starts, running operations finish.
    pub stop: Arc<AtomicBool>,
    pub ownership: Ownership,
}

/// How one graph node ended.
#[derive(Debug)]
pub enum NodeResult {
    Done,
    Failed(EngineError),
    Skipped { because: ResourceAddr },
    NotStarted,
}

/// One graph node's result.
#[derive(Debug)]
pub struct NodeReport {
    pub address: ResourceAddr,
    pub action: Action,
    pub phase: Phase,
    pub deposed: bool,
    pub result: NodeResult,
    /// When its unit of work started, from the start of the walk, and how long it took (a
    /// batched unit's members share both); `None` if it never ran.
    pub timing: Option<(Duration, Duration)>,
}

/// The result of an apply: final state and what happened to every node.
#[derive(Debug)]
pub struct ApplyReport {
    pub state: State,
    pub nodes: Vec<NodeReport>,
    /// What providers asked to tell the user, each prefixed with its resource's address.
    pub warnings: Vec<String>,
}

impl ApplyReport {
    pub fn failed(&self) -> impl Iterator<Item = &NodeReport> {
        self.nodes.iter().filter(|n| matches!(n.result, NodeResult::Failed(_)))
    }
    pub fn is_complete(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n.result, NodeResult::Done))
    }
}

#[derive(Debug, Clone, Copy)]
struct Node {
    change: usize,
    phase: Phase,
}

/// Builds the apply graph from a plan and the state it was made against.
fn apply_graph(plan: &Plan, state: &State) -> Result<Dag<Node>, EngineError> {
    let mut dag = Dag::new();
    let mut apply_node: HashMap<&ResourceAddr, usize> = HashMap::new();
    // Destroy nodes with the dependencies their instance had.
    let mut destroy_nodes: Vec<(usize, &ResourceAddr, Vec<ResourceAddr>)> = Vec::new();
    for (i, c) in plan.changes.iter().enumerate() {
        let prior_deps = |deposed: bool| -> Vec<ResourceAddr> {
            if deposed {
                state
                    .deposed
                    .iter()
                    .filter(|d| d.addr == c.address)
                    .flat_map(|d| d.resource.dependencies.clone())
                    .collect()
            } else {
                state.resources.get(&c.address).map(|r| r.dependencies.clone()).unwrap_or_default()
            }
        };
        match c.action {
            Action::NoOp => {}
            Action::Create | Action::Update => {
                apply_node.insert(&c.address, dag.add(Node { change: i, phase: Phase::Apply }));
            }
            Action::Delete => {
                let n = dag.add(Node { change: i, phase: Phase::Destroy });
                destroy_nodes.push((n, &c.address, prior_deps(c.deposed)));
            }
            Action::Replace => {
                let d = dag.add(Node { change: i, phase: Phase::Destroy });
                let a = dag.add(Node { change: i, phase: Phase::Apply });
                dag.depend(a, d);
                apply_node.insert(&c.address, a);
                destroy_nodes.push((d, &c.address, prior_deps(false)));
            }
            Action::CreateBeforeDestroy => {
                let a = dag.add(Node { change: i, phase: Phase::Apply });
                let d = dag.add(Node { change: i, phase: Phase::Destroy });
                dag.depend(d, a);
                apply_node.insert(&c.address, a);
                destroy_nodes.push((d, &c.address, prior_deps(false)));
            }
        }
    }
    // Creates and updates wait for what they depend on.
    for c in &plan.changes {
        if let Some(&a) = apply_node.get(&c.address) {
            for dep in &c.depends_on {
                if let Some(&b) = apply_node.get(dep) {
                    dag.depend(a, b);
                }
            }
        }
    }
    let new_deps: HashMap<&ResourceAddr, &Vec<ResourceAddr>> =
        plan.changes.iter().map(|c| (&c.address, &c.depends_on)).collect();
    for &(d, addr, _) in &destroy_nodes {
        let cbd = plan.changes[dag.node(d).change].action == Action::CreateBeforeDestroy;
        // A resource is deleted only after everything that depended on it is deleted ...
        for (other, _, other_prior) in &destroy_nodes {
            if *other != d && other_prior.contains(addr) {
                dag.depend(d, *other);
            }
        }
        // ... or has moved off it.
        for (y, &a) in &apply_node {
            let prior_has = state.resources.get(*y).is_some_and(|r| r.dependencies.contains(addr));
            let still = new_deps.get(y).is_some_and(|deps| deps.contains(addr));
            if (prior_has && !still) || (cbd && still) {
                dag.depend(d, a);
            }
        }
    }
    dag.topo_order().map_err(|c| EngineError::Cycle {
        addrs: c
            .0
            .iter()
            .map(|&i| {
                let n = dag.node(i);
                format!(
                    "{} ({})",
                    plan.changes[n.change].address,
                    if n.phase == Phase::Apply { "apply" } else { "destroy" }
                )
            })
            .collect(),
    })?;
    Ok(dag)
}

/// Applies a plan. The caller has checked it with [`check_plan`] and holds the state lock.
/// State is persisted before every create (intent) and after every finished resource; on
/// failure the returned state keeps everything that finished.
pub async fn apply(
    plan: &Plan,
    state: State,
    providers: &Providers,
    persist: &dyn Persist,
    opts: &ApplyOptions,
    obs: &dyn Observer,
) -> Result<ApplyReport, EngineError> {
    check_plan(plan, &state)?;
    let dag = apply_graph(plan, &state)?;
    let ids = &Ids::of(&state);
    let shared = Mutex::new(state);
    let committer = &Committer::new(persist);
    let warned = &Mutex::new(Vec::new());
    let batch_of = |i: usize| {
        let n = dag.node(i);
        let c = &plan.changes[n.change];
        let batched = providers.get(&c.rtype).is_ok_and(|(_, schema)| schema.batched);
        batched.then(|| (c.rtype.clone(), n.phase))
    };
    let dag_ref = &dag;
    let (status_tx, mut status_rx) = tokio::sync::mpsc::unbounded_channel::<(ResourceAddr, String)>();
    let status_tx = &status_tx;
    // Nothing new starts after Ctrl-C, or once a write of state has failed.
    let stop = || opts.stop.load(Ordering::SeqCst) || committer.has_failed();
    let walk_started = Instant::now();
    let timings: &Mutex<Vec<Option<(Duration, Duration)>>> = &Mutex::new(vec![None; dag.len()]);
    let walking = walk_batched(&dag, opts.parallelism, &stop, batch_of, |unit: Vec<usize>| {
        let (shared, dag) = (&shared, dag_ref);
        async move {
            let started = Instant::now();
            let nodes: Vec<Node> = unit.iter().map(|&i| *dag.node(i)).collect();
            let changes: Vec<&Change> = nodes.iter().map(|n| &plan.changes[n.change]).collect();
            let phase = nodes[0].phase;
            for c in &changes {
                obs.event(Event::Started { addr: &c.address, action: c.action, phase });
            }
            let results = match phase {
                Phase::Apply => {
                    apply_unit(&changes, shared, ids, warned, providers, committer, &opts.ownership, status_tx).await
                }
                Phase::Destroy => destroy_unit(&changes, shared, providers, committer, status_tx).await,
            };
            for (c, r) in changes.iter().zip(&results) {
                let (addr, action) = (&c.address, c.action);
                match r {
                    Ok(()) => obs.event(Event::Finished { addr, action, phase, elapsed: started.elapsed() }),
                    Err(error) => obs.event(Event::Failed { addr, action, phase, error }),
                }
            }
            let timing = (started.duration_since(walk_started), started.elapsed());
            let mut t = timings.lock().unwrap();
            for &i in &unit {
                t[i] = Some(timing);
            }
            drop(t);
            unit.into_iter().zip(results).collect::<Vec<_>>()
        }
    });
    // Relay providers' status words to the observer while the walk runs.
    let relay = async {
        while let Some((addr, status)) = status_rx.recv().await {
            obs.event(Event::Status { addr: &addr, status: &status });
        }
    };
    let outcomes = tokio::select! {
        outcomes = walking => outcomes,
        _ = relay => unreachable!("the walk holds a sender until it ends"),
    };

    let mut state = shared.into_inner().expect("no panics while holding the state lock");
    let timings = std::mem::take(&mut *timings.lock().unwrap());
    let mut nodes = Vec::with_capacity(outcomes.len());
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let n = *dag.node(i);
        let c = &plan.changes[n.change];
        let result = match outcome {
            Outcome::Done => NodeResult::Done,
            Outcome::Failed(e) => NodeResult::Failed(e),
            Outcome::Skipped { because } => {
                let because = plan.changes[dag.node(because).change].address.clone();
                obs.event(Event::Skipped { addr: &c.address, because: &because });
                NodeResult::Skipped { because }
            }
            Outcome::NotStarted => NodeResult::NotStarted,
        };
        nodes.push(NodeReport {
            address: c.address.clone(),
            action: c.action,
            phase: n.phase,
            deposed: c.deposed,
            result,
            timing: timings[i],
        });
    }

    // Outputs whose inputs are all known now.
    let mut outputs_changed = false;
    for o in &plan.outputs {
        match (&o.config, o.action) {
            (_, Action::NoOp) => {}
            (None, _) => outputs_changed |= state.outputs.remove(&o.name).is_some(),
            (Some(cfg), _) => {
                let v = cfg.resolve(&mut |r: &Ref| {
                    state.resources.get(&r.addr).and_then(|res| res.attrs.get(&r.attr)).cloned()
                });
                if let Value::Known(value) = v {
                    state.outputs.insert(o.name.clone(), Output { value, sensitive: o.sensitive });
                    outputs_changed = true;
                }
            }
        }
    }
    if outputs_changed {
        persist_now(persist, &mut state).await?;
    }
    Ok(ApplyReport { state, nodes, warnings: std::mem::take(&mut *warned.lock().unwrap()) })
}

fn resolve_config(change: &Change, state: &State) -> Result<serde_json::Map<String, serde_json::Value>, EngineError> {
    let mut missing = None;
    let mut out = serde_json::Map::new();
    for (k, v) in change.config.iter().flatten() {
        let resolved = v.resolve(&mut |r: &Ref| {
            let got = state.resources.get(&r.addr).and_then(|res| res.attrs.get(&r.attr)).cloned();
            if got.is_none() && missing.is_none() {
                missing = Some(r.clone());
            }
            got
        });
        match resolved {
            Value::Known(j) => {
                out.insert(k.clone(), j);
            }
            _ => {
                let reference = missing.take().unwrap_or_else(|| Ref { addr: change.address.clone(), attr: k.clone() });
                return Err(EngineError::Unresolved { addr: change.address.clone(), reference });
            }
        }
    }
    Ok(out)
}

/// Resolves a change's configuration against state and, for a create, records its intent
/// (the caller persists). Returns the request to send.
fn prepare_apply(
    change: &Change,
    st: &mut State,
    provider: &dyn Provider,
    ownership: &Ownership,
    status: &tokio::sync::mpsc::UnboundedSender<(ResourceAddr, String)>,
) -> Result<ApplyRequest, EngineError> {
    let addr = &change.address;
    let config = resolve_config(change, st)?;
    let owner_tags = provider.owner_tags(ownership, addr);
    let name = change.name.clone().unwrap_or_else(|| addr.to_string());
    let prior = match change.action {
        Action::Update => {
            st.resources.get(addr).map(|r| ReadResource { id: r.id.clone(), attrs: Attrs::clone(&r.attrs) })
        }
        _ => None,
    };
    let mut client_token = String::new();
    if prior.is_none() {
        // Record the intent first: if we die after the cloud creates the resource, the next run
        // finds it by its owner tags instead of creating it again.
        if change.action == Action::CreateBeforeDestroy
            && let Some(old) = st.resources.remove(addr)
        {
            st.deposed.push(Deposed { addr: addr.clone(), resource: old });
        }
        client_token = uuid::Uuid::new_v4().to_string();
        st.intents.insert(
            addr.clone(),
            Intent {
                rtype: change.rtype.clone(),
                name: name.clone(),
                client_token: client_token.clone(),
                owner_tags: owner_tags.clone(),
                dependencies: change.depends_on.clone(),
                protected: change.protected,
                recorded_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            },
        );
    }
    Ok(ApplyRequest {
        addr: addr.clone(),
        rtype: change.rtype.clone(),
        prior,
        config,
        identity: Identity { name, client_token, owner_tags },
        status: StatusSink::new(addr.clone(), status.clone()),
    })
}

fn not_recorded(changes: &[&Change], e: CommitError) -> Vec<Result<(), EngineError>> {
    let (first, cause) = match e {
        CommitError::Write(e) => {
            let cause = e.to_string();
            (EngineError::State(e), cause)
        }
        CommitError::Earlier(cause) => {
            (EngineError::NotRecorded { addr: changes[0].address.clone(), cause: cause.clone() }, cause)
        }
    };
    let mut out = vec![Err(first)];
    out.extend(
        changes[1..].iter().map(|c| Err(EngineError::NotRecorded { addr: c.address.clone(), cause: cause.clone() })),
    );
    out
}

/// Creates or updates a unit of resources: one resource, or a batch of a batched type.
/// State is persisted once before the cloud is called (intents) and once after.
#[allow(clippy::too_many_arguments)]
async fn apply_unit(
    changes: &[&Change],
    shared: &Mutex<State>,
    ids: &Ids,
    warned: &Mutex<Vec<String>>,
    providers: &Providers,
    committer: &Committer<'_>,
    ownership: &Ownership,
    status: &tokio::sync::mpsc::UnboundedSender<(ResourceAddr, String)>,
) -> Vec<Result<(), EngineError>> {
    let (provider, schema) = match providers.get(&changes[0].rtype) {
        Ok(p) => p,
        Err(e) => {
            return vec![Err(e)]
                .into_iter()
                .chain(changes[1..].iter().map(|c| Err(EngineError::NoProvider { rtype: c.rtype.clone() })))
                .collect();
        }
    };
    let mut results: Vec<Result<(), EngineError>> = Vec::with_capacity(changes.len());
    let mut requests = Vec::with_capacity(changes.len());
    let intents_ticket = {
        let mut st = shared.lock().unwrap();
        for c in changes {
            match prepare_apply(c, &mut st, provider.as_ref(), ownership, status) {
                Ok(req) => {
                    requests.push((results.len(), req));
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        // Intents, and the old instance of a create-before-destroy moved to `deposed`.
        requests.iter().any(|(_, r)| r.prior.is_none()).then(|| committer.changed(changes.iter().map(|c| &c.address)))
    };
    // Every intent is stored before its create starts.
    if let Some(ticket) = intents_ticket
        && let Err(e) = committer.commit(shared, ticket).await
    {
        return not_recorded(changes, e);
    }
    let (slots, reqs): (Vec<usize>, Vec<ApplyRequest>) = requests.into_iter().unzip();
    let updating: Vec<bool> = reqs.iter().map(|r| r.prior.is_some()).collect();
    let identities: Vec<Identity> = reqs.iter().map(|r| r.identity.clone()).collect();
    let responses = if schema.batched {
        provider.apply_batch(reqs).await
    } else {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(provider.apply(r).await);
        }
        out
    };
    let ticket = {
        let mut st = shared.lock().unwrap();
        let mut warnings = warned.lock().unwrap();
        record_applied(
            changes,
            &mut results,
            &mut st,
            ids,
            &mut warnings,
            providers,
            slots,
            responses,
            identities,
            updating,
        );
        committer.changed(changes.iter().map(|c| &c.address))
    };
    if let Err(e) = committer.commit(shared, ticket).await {
        return not_recorded(changes, e);
    }
    results
}

/// Records the outcome of a unit's creates and updates in state.
#[allow(clippy::too_many_arguments)]
fn record_applied(
    changes: &[&Change],
    results: &mut [Result<(), EngineError>],
    st: &mut State,
    ids: &Ids,
    warnings: &mut Vec<String>,
    providers: &Providers,
    slots: Vec<usize>,
    responses: Vec<Result<ApplyResponse, ProviderError>>,
    identities: Vec<Identity>,
    updating: Vec<bool>,
) {
    for (((slot, resp), identity), updating) in slots.into_iter().zip(responses).zip(identities).zip(updating) {
        let c = changes[slot];
        match resp {
            Ok(resp) if ids.holder(st, &c.rtype, &resp.id, &c.address).is_some() => {
                // Nothing new exists for this address: its intent is settled.
                st.intents.remove(&c.address);
                let other = ids.holder(st, &c.rtype, &resp.id, &c.address).expect("checked above");
                results[slot] =
                    Err(EngineError::SharedId { addr: c.address.clone(), other, rtype: c.rtype.clone(), id: resp.id });
            }
            Ok(resp) => {
                // On failure the intent stays: the outcome may be ambiguous, and the next run
                // resolves it by the owner tags.
                st.intents.remove(&c.address);
                warnings.extend(resp.warnings.into_iter().map(|w| format!("{}: {w}", c.address)));
                note_version(st, providers, &c.rtype);
                ids.add(&resp.id, &c.address);
                st.resources.insert(
                    c.address.clone(),
                    ResourceState {
                        rtype: c.rtype.clone(),
                        id: resp.id,
                        attrs: Arc::new(resp.attrs),
                        dependencies: c.depends_on.clone(),
                        owner_tags: identity.owner_tags,
                        protected: c.protected,
                    },
                );
            }
            Err(source) => {
                let op = if updating { "updating" } else { "creating" };
                results[slot] = Err(EngineError::Provider { addr: c.address.clone(), op, source });
            }
        }
    }
}

/// Deletes a unit of resources (the old instance, for replacements).
async fn destroy_unit(
    changes: &[&Change],
    shared: &Mutex<State>,
    providers: &Providers,
    committer: &Committer<'_>,
    status: &tokio::sync::mpsc::UnboundedSender<(ResourceAddr, String)>,
) -> Vec<Result<(), EngineError>> {
    let deposed = |c: &Change| c.deposed || c.action == Action::CreateBeforeDestroy;
    let targets: Vec<Option<ResourceState>> = {
        let st = shared.lock().unwrap();
        changes
            .iter()
            .map(|c| {
                if deposed(c) {
                    st.deposed.iter().find(|d| d.addr == c.address).map(|d| d.resource.clone())
                } else {
                    st.resources.get(&c.address).cloned()
                }
            })
            .collect()
    };
    let mut results: Vec<Result<(), EngineError>> = changes.iter().map(|_| Ok(())).collect();
    let mut slots = Vec::new();
    let mut reqs = Vec::new();
    for (slot, (c, t)) in changes.iter().zip(&targets).enumerate() {
        // Already gone from state: nothing to delete.
        let Some(t) = t else { continue };
        slots.push(slot);
        reqs.push(DeleteRequest {
            addr: c.address.clone(),
            rtype: t.rtype.clone(),
            id: t.id.clone(),
            attrs: Attrs::clone(&t.attrs),
            status: StatusSink::new(c.address.clone(), status.clone()),
        });
    }
    if reqs.is_empty() {
        return results;
    }
    let (provider, schema) = match providers.get(&reqs[0].rtype) {
        Ok(p) => p,
        Err(e) => {
            return vec![Err(e)]
                .into_iter()
                .chain(changes[1..].iter().map(|c| Err(EngineError::NoProvider { rtype: c.rtype.clone() })))
                .collect();
        }
    };
    let responses = if schema.batched {
        provider.delete_batch(reqs).await
    } else {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(provider.delete(r).await);
        }
        out
    };
    let ticket = {
        let mut st = shared.lock().unwrap();
        for (slot, resp) in slots.into_iter().zip(responses) {
            let c = changes[slot];
            match resp {
                Ok(()) => {
                    let id = &targets[slot].as_ref().expect("slot has a target").id;
                    if deposed(c) {
                        if let Some(i) = st.deposed.iter().position(|d| d.addr == c.address && &d.resource.id == id) {
                            st.deposed.remove(i);
                        }
                    } else {
                        st.resources.remove(&c.address);
                    }
                }
                Err(source) => {
                    results[slot] = Err(EngineError::Provider { addr: c.address.clone(), op: "deleting", source })
                }
            }
        }
        committer.changed(changes.iter().map(|c| &c.address))
    };
    if let Err(e) = committer.commit(shared, ticket).await {
        return not_recorded(changes, e);
    }
    results
}
