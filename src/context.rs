//! Per-command settings: the platform spec, the state store and lock, and the providers for the
//! chosen cloud.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use matih_plans::{DesiredGraph, Ownership, Persist, Provider, Providers};
use matih_provider_kit::Cloud;
use matih_spec::StateBackend;
use matih_spec::{LoadedSpec, PlatformFile};
use matih_state::{
    LocalStore, LockOptions, RemoteLocation, RemoteStore, Service, Snapshot, State, StateError, StateStore, StoreLock,
};

use crate::cli::Global;
use crate::exit::Failure;

/// Loads and validates the platform spec named by `-c`.
pub fn load_spec(global: &Global) -> Result<LoadedSpec, Failure> {
    load_spec_at(&global.config)
}

/// Loads and validates the platform spec at `path`.
pub fn load_spec_at(path: &Path) -> Result<LoadedSpec, Failure> {
    load_spec_with(path, &mut |_| {})
}

/// [`load_spec_at`], calling `platform_read` once the platform file is read and valid, while the
/// tenant files are still being parsed.
pub fn load_spec_with(path: &Path, platform_read: &mut dyn FnMut(PlatformFile<'_>)) -> Result<LoadedSpec, Failure> {
    matih_spec::load_with(path, platform_read).map_err(|e| {
        let hint = e.hint();
        let mut f = Failure::user(e);
        f.hint = hint;
        f
    })
}

/// The cloud to work on: `--cloud`, or the only cloud the spec configures.
pub fn cloud<'a>(global: &Global, spec: impl Into<PlatformFile<'a>>) -> Result<Box<dyn Cloud>, Failure> {
    let spec = spec.into();
    let configured = spec.spec.clouds.configured();
    let name = match &global.cloud {
        Some(c) => c.clone(),
        None if configured.len() == 1 => configured[0].as_str().to_string(),
        None => {
            let names: Vec<String> = configured.iter().map(ToString::to_string).collect();
            return Err(Failure::usage(format!("the platform spec configures {}; choose one", names.join(", ")))
                .hint(format!("pass --cloud {}", names.join("|"))));
        }
    };
    let cloud = crate::clouds::get(&name).map_err(|e| {
        let hint = e.hint();
        Failure::user(e).hint(hint)
    })?;
    if let Some(kind) = cloud.section()
        && !configured.contains(&kind)
    {
        return Err(Failure::usage(format!(
            "--cloud {kind}: {} has no `clouds.{kind}` section",
            spec.config_path.display()
        ))
        .hint(format!("add a `clouds.{kind}` section to the platform spec or choose another cloud")));
    }
    Ok(cloud)
}

/// Where a command's state is: a file, or an object in a cloud's object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    Local(PathBuf),
    Remote(RemoteLocation),
}

impl StateLocation {
    /// A `--state` (or `state migrate --to`) value: `s3://`, `gs://` or `azblob://` URLs name an
    /// object, anything else a file.
    pub fn parse(s: &Path) -> Result<StateLocation, Failure> {
        let Some(text) = s.to_str() else { return Ok(StateLocation::Local(s.to_path_buf())) };
        match RemoteLocation::parse(text) {
            Ok(Some(r)) => Ok(StateLocation::Remote(r)),
            Ok(None) => Ok(StateLocation::Local(s.to_path_buf())),
            Err(e) => Err(Failure::usage(e).hint(
                "give a file path, or s3://<bucket>/<key>, gs://<bucket>/<key>, azblob://<account>/<container>/<key>",
            )),
        }
    }
}

impl std::fmt::Display for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::Local(p) => write!(f, "{}", p.display()),
            StateLocation::Remote(r) => write!(f, "{r}"),
        }
    }
}

/// Where state lives: `--state`, else what the platform spec's `state:` section names for `cloud`
/// (by default `.matih/state/<environment>-<cloud>.json` beside the spec).
pub fn state_location<'a>(
    global: &Global,
    spec: impl Into<PlatformFile<'a>>,
    cloud: &dyn Cloud,
) -> Result<StateLocation, Failure> {
    match &global.state {
        Some(s) => StateLocation::parse(s),
        None => Ok(spec_location(spec, cloud.name())),
    }
}

/// The state of `cloud` where the platform spec's `state:` section puts it.
pub fn spec_location<'a>(spec: impl Into<PlatformFile<'a>>, cloud: &str) -> StateLocation {
    let spec = spec.into();
    let key = spec.spec.state_key(cloud);
    let remote = |service, account: Option<&String>, bucket: &String, region: Option<&String>| {
        StateLocation::Remote(RemoteLocation {
            service,
            account: account.cloned(),
            bucket: bucket.clone(),
            key: key.clone(),
            region: region.cloned(),
        })
    };
    match &spec.spec.state.backend {
        StateBackend::Local => StateLocation::Local(local_state_path(spec, cloud)),
        StateBackend::S3 { bucket, region } => remote(Service::S3, None, bucket, region.as_ref()),
        StateBackend::Gcs { bucket } => remote(Service::Gcs, None, bucket, None),
        StateBackend::AzBlob { account, container } => remote(Service::AzBlob, Some(account), container, None),
    }
}

/// `.matih/state/<environment>-<cloud>.json` beside the spec.
pub fn local_state_path<'a>(spec: impl Into<PlatformFile<'a>>, cloud: &str) -> PathBuf {
    let spec = spec.into();
    spec_dir(spec).join(".matih").join("state").join(format!("{}-{cloud}.json", spec.spec.platform.environment))
}

/// The directory of the platform spec.
pub fn spec_dir<'a>(spec: impl Into<PlatformFile<'a>>) -> PathBuf {
    spec.into().config_path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Everything the platform spec asks of `cloud`: its resources and, for a cloud with clusters,
/// the bootstrap's add-on instances. No clients, no network.
pub fn desired(spec: &Arc<LoadedSpec>, cloud: &dyn Cloud) -> Result<DesiredGraph, Failure> {
    PendingDesired::start(spec, cloud)?.into_graph()
}

/// The desired graph of a command that refreshes first: the cloud's resources at once, and the
/// bootstrap's add-on instances (every instance's objects rendered and digested: a second and
/// more of CPU at 10,000 tenants) on a thread of their own, which runs while the state is read
/// and refreshed; [`PendingDesired::graph`] waits for it when planning needs it.
pub struct PendingDesired {
    types: std::collections::BTreeSet<matih_plans::ResourceType>,
    rendering: Option<std::thread::JoinHandle<Result<DesiredGraph, Failure>>>,
    graph: Option<DesiredGraph>,
}

impl PendingDesired {
    /// Builds the cloud's part of the graph here and starts rendering the bootstrap's.
    pub fn start(spec: &Arc<LoadedSpec>, cloud: &dyn Cloud) -> Result<Self, Failure> {
        let graph = cloud.desired_graph(&spec.spec);
        let mut types: std::collections::BTreeSet<_> = graph.resources.keys().map(|a| a.rtype.clone()).collect();
        let Some(binding) = cloud.bootstrap_binding(&spec.spec) else {
            return Ok(Self { types, rendering: None, graph: Some(graph) });
        };
        types.extend(bootstrap::types());
        let spec = Arc::clone(spec);
        let rendering = std::thread::Builder::new()
            .name("desired".into())
            .spawn(move || bootstrap::add(graph, &spec, &binding))
            .map_err(|e| Failure::new(crate::exit::Class::Unexpected, anyhow::anyhow!("starting a thread: {e}")))?;
        Ok(Self { types, rendering: Some(rendering), graph: None })
    }

    /// Every resource type the graph has, known before its rendering ends.
    pub fn types(&self) -> &std::collections::BTreeSet<matih_plans::ResourceType> {
        &self.types
    }

    /// The whole graph, waiting for its rendering to end.
    pub fn into_graph(mut self) -> Result<DesiredGraph, Failure> {
        self.graph()?;
        Ok(self.graph.take().expect("rendered above"))
    }

    /// The whole graph, waiting for its rendering to end.
    pub fn graph(&mut self) -> Result<&DesiredGraph, Failure> {
        if let Some(rendering) = self.rendering.take() {
            self.graph = Some(rendering.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?);
        }
        self.graph.as_ref().ok_or_else(|| {
            Failure::new(crate::exit::Class::Unexpected, anyhow::anyhow!("the desired graph failed to render"))
        })
    }
}

/// The providers for a cloud: its own and, for a cloud with clusters, the bootstrap's.
pub async fn providers(spec: &LoadedSpec, cloud: &dyn Cloud) -> Result<Providers, Failure> {
    let connected = cloud.connect(&spec.spec, &spec_dir(spec), &ownership(spec)).await.map_err(Failure::user)?;
    let mut list = connected.providers;
    if cloud.bootstrap_binding(&spec.spec).is_some() {
        let access = connected.access.ok_or_else(|| {
            Failure::new(
                crate::exit::Class::Unexpected,
                anyhow::anyhow!("the {} cloud has a cluster to bootstrap but gave no access to it", cloud.name()),
            )
        })?;
        list.push(bootstrap::provider(access)?);
    }
    with_hooks(list)
}

/// The cluster bootstrap, or (in a build without it, where no cloud with clusters exists either)
/// an error saying so.
#[cfg(feature = "bootstrap")]
mod bootstrap {
    use std::sync::Arc;

    use matih_plans::{DesiredGraph, Provider};
    use matih_provider_kit::{ClusterAccess, ClusterBinding};
    use matih_spec::LoadedSpec;

    use crate::exit::{Class, Failure};

    pub fn add(mut graph: DesiredGraph, spec: &LoadedSpec, binding: &ClusterBinding) -> Result<DesiredGraph, Failure> {
        matih_provider_kubernetes::add_bootstrap(&mut graph, &spec.spec, binding)
            .map_err(|e| Failure::new(Class::Unexpected, e))?;
        Ok(graph)
    }

    /// The types of the resources [`add`] adds.
    pub fn types() -> Vec<matih_plans::ResourceType> {
        vec![matih_provider_kubernetes::provider::addon_type()]
    }

    /// The bootstrap's provider for a cloud's clusters. Announces the API server override and a
    /// non-default manifest source on stderr whenever they are in effect.
    pub fn provider(access: Arc<dyn ClusterAccess>) -> Result<Arc<dyn Provider>, Failure> {
        use matih_provider_kubernetes::{cluster::ApiOverride, manifests::Source};
        let api_override = ApiOverride::from_env().map_err(Failure::usage)?;
        if let Some(o) = &api_override {
            eprintln!("note: {}", o.announcement());
        }
        let source = Source::from_env();
        if !matches!(source, Source::Upstream { .. }) {
            eprintln!("note: {}", source.describe());
        }
        let p =
            matih_provider_kubernetes::KubernetesProvider::new(access, api_override, source).map_err(Failure::usage)?;
        Ok(Arc::new(p))
    }
}

#[cfg(not(feature = "bootstrap"))]
mod bootstrap {
    use std::sync::Arc;

    use matih_plans::{DesiredGraph, Provider};
    use matih_provider_kit::{ClusterAccess, ClusterBinding};
    use matih_spec::LoadedSpec;

    use crate::exit::Failure;

    fn missing() -> Failure {
        Failure::user(anyhow::anyhow!("the cluster bootstrap is not part of this build"))
            .hint("build with the `bootstrap` cargo feature (every cloud feature brings it)")
    }

    pub fn add(_: DesiredGraph, _: &LoadedSpec, _: &ClusterBinding) -> Result<DesiredGraph, Failure> {
        Err(missing())
    }

    pub fn types() -> Vec<matih_plans::ResourceType> {
        Vec::new()
    }

    pub fn provider(_: Arc<dyn ClusterAccess>) -> Result<Arc<dyn Provider>, Failure> {
        Err(missing())
    }
}

fn with_hooks(list: Vec<Arc<dyn Provider>>) -> Result<Providers, Failure> {
    let list = crate::fault::wrap(list).map_err(Failure::usage)?;
    Ok(Providers::new(list)?)
}

pub fn ownership(spec: &LoadedSpec) -> Ownership {
    Ownership { platform: spec.spec.platform.name.clone(), environment: spec.spec.platform.environment.clone() }
}

/// The state store at `location`: a symbolic link to a local file is followed (and said so on
/// stderr); a remote location is reached through the cloud whose crate serves it, with settings
/// the location leaves out taken from `spec`. `--force-lineage` is applied to both.
pub async fn store(
    location: &StateLocation,
    global: &Global,
    spec: Option<&LoadedSpec>,
) -> Result<Box<dyn StateStore>, Failure> {
    let remote = match location {
        StateLocation::Local(path) => {
            let store = LocalStore::open(path.clone())?.accept_other_lineage(global.force_lineage);
            if let Some(link) = store.link()
                && !global.quiet
            {
                eprintln!(
                    "note: state file `{}` is a symbolic link: reading and writing `{}`, with its backup and lock beside it",
                    link.display(),
                    store.path().display()
                );
            }
            return Ok(Box::new(store));
        }
        StateLocation::Remote(r) => r,
    };
    let cloud = crate::clouds::for_state(remote.service).map_err(|e| {
        let hint = e.hint();
        Failure::user(e).hint(hint)
    })?;
    let objects = cloud.state_objects(spec.map(|s| &s.spec), remote).await.map_err(|e| {
        Failure::user(StateError::Remote { op: "reach", url: remote.to_string(), source: e })
            .hint("check the store's settings (`state:` in the platform spec, or --state) and the cloud's credentials")
    })?;
    // A state the store refuses (another writer won, the lock was broken) is kept beside the
    // spec, or in the working directory.
    let rescue = spec.map(spec_dir).unwrap_or_default().join(".matih").join("state").join("unsaved");
    let mut store = RemoteStore::new(objects, remote.key.clone())
        .accept_other_lineage(global.force_lineage)
        .with_rescue_dir(rescue);
    if let Some(lease) = lease_from_env()? {
        store = store.with_lease(lease, (lease / 4).min(matih_state::remote::CLOCK_SKEW));
    }
    Ok(Box::new(store))
}

/// `MATIH_STATE_LEASE`: how long a remote lock's lease lasts unless renewed (default 60s).
fn lease_from_env() -> Result<Option<std::time::Duration>, Failure> {
    match std::env::var("MATIH_STATE_LEASE") {
        Err(_) => Ok(None),
        Ok(v) => match humantime::parse_duration(&v) {
            Ok(d) if d >= std::time::Duration::from_secs(1) => Ok(Some(d)),
            _ => Err(Failure::usage(format!("MATIH_STATE_LEASE=`{v}` is not a duration of 1s or more"))
                .hint("write e.g. MATIH_STATE_LEASE=60s, or unset it for the default (60s)")),
        },
    }
}

/// The recorded state, or a new empty one; what the load fixed or let pass is printed as a
/// warning.
async fn load(store: &dyn StateStore, quiet: bool) -> Result<State, Failure> {
    let state = store
        .load(&|n| {
            if !quiet {
                eprintln!("warning: {n}");
            }
        })
        .await?;
    Ok(state.unwrap_or_default())
}

/// The state store, locked for the whole command.
/// Released when dropped, whatever way the command ends: a local lock by the OS, a remote lease
/// by deleting its lock object (a lease that cannot be deleted runs out on its own).
pub struct Locked {
    pub store: Box<dyn StateStore>,
    lock: Option<Box<dyn StoreLock>>,
    quiet: bool,
    writes: std::sync::atomic::AtomicU64,
}

impl Drop for Locked {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else { return };
        // The CLI's runtime has worker threads, so this thread may block on the release.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                let store = &self.store;
                if let Err(e) = tokio::task::block_in_place(|| h.block_on(store.unlock(lock)))
                    && !self.quiet
                {
                    eprintln!("warning: could not release the state lock (its lease runs out on its own): {e}");
                }
            }
            _ => drop(lock),
        }
    }
}

impl Locked {
    /// The recorded state without taking the lock (a store replaces state whole, so a reader
    /// sees the previous or the next state). Empty if there is none.
    pub async fn read_only(
        location: &StateLocation,
        global: &Global,
        spec: Option<&LoadedSpec>,
    ) -> Result<State, Failure> {
        load(store(location, global, spec).await?.as_ref(), global.quiet).await
    }

    pub async fn open(
        location: &StateLocation,
        global: &Global,
        spec: Option<&LoadedSpec>,
        command: &str,
    ) -> Result<Self, Failure> {
        let store = store(location, global, spec).await?;
        let opts = LockOptions { timeout: global.lock_timeout, command: command.to_string() };
        let quiet = global.quiet;
        let timeout = opts.timeout;
        let lock = store
            .lock(&opts, &|holder| {
                if quiet {
                    return;
                }
                let who = holder
                    .map(|h| format!(" held by `{}` (pid {} on {}, since {})", h.command, h.pid, h.host, h.started_at))
                    .unwrap_or_default();
                eprintln!("waiting up to {} for the state lock{who}", humantime::format_duration(timeout));
            })
            .await?;
        if let Some(before) = lock.took_over()
            && !quiet
        {
            eprintln!(
                "warning: took over the state lock of `{}` (pid {} on {}, since {}), whose lease ran out at {}; \
                 its unfinished creates are resolved from the intent journal",
                before.command,
                before.pid,
                before.host,
                before.started_at,
                before.expires_at.as_deref().unwrap_or("?")
            );
        }
        Ok(Self { store, lock: Some(lock), quiet, writes: Default::default() })
    }

    /// The recorded state, or a new empty one (serial 0, never written).
    pub async fn load(&self) -> Result<State, Failure> {
        load(self.store.as_ref(), self.quiet).await
    }

    /// The lock, held until `self` is dropped.
    pub fn lock(&self) -> &dyn StoreLock {
        self.lock.as_deref().expect("held until dropped")
    }

    /// State writes so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes `state` now, outside an apply.
    pub async fn save(&self, state: &mut State) -> Result<(), StateError> {
        let snapshot = self.store.snapshot(state);
        self.store.write(snapshot, self.lock()).await
    }
}

#[async_trait::async_trait]
impl Persist for Locked {
    fn snapshot(&self, state: &mut State) -> Snapshot {
        self.store.snapshot(state)
    }

    fn spare_buffers(&self) -> Vec<Vec<u8>> {
        self.store.spare_buffers()
    }

    async fn write(&self, snapshot: Snapshot) -> Result<(), StateError> {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.store.write(snapshot, self.lock()).await
    }
}
