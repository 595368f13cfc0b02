//! Per-command settings: the platform spec, the state store and lock, and the providers for the
//! chosen cloud.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use matih_plans::{DesiredGraph, Ownership, Persist, Provider, Providers};
use matih_provider_kit::Cloud;
use matih_spec::LoadedSpec;
use matih_state::{LocalStore, LockOptions, State, StateError, StateLock};

use crate::cli::Global;
use crate::exit::Failure;

/// Loads and validates the platform spec named by `-c`.
pub fn load_spec(global: &Global) -> Result<LoadedSpec, Failure> {
    load_spec_at(&global.config)
}

/// Loads and validates the platform spec at `path`.
pub fn load_spec_at(path: &Path) -> Result<LoadedSpec, Failure> {
    matih_spec::load(path).map_err(|e| {
        let hint = e.hint();
        let mut f = Failure::user(e);
        f.hint = hint;
        f
    })
}

/// The cloud to work on: `--cloud`, or the only cloud the spec configures.
pub fn cloud(global: &Global, spec: &LoadedSpec) -> Result<Box<dyn Cloud>, Failure> {
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

/// Where state lives: `--state`, or `.matih/state/<environment>-<cloud>.json` beside the spec.
pub fn state_path(global: &Global, spec: &LoadedSpec, cloud: &dyn Cloud) -> PathBuf {
    global.state.clone().unwrap_or_else(|| {
        spec_dir(spec).join(".matih").join("state").join(format!(
            "{}-{}.json",
            spec.spec.platform.environment,
            cloud.name()
        ))
    })
}

/// The directory of the platform spec.
pub fn spec_dir(spec: &LoadedSpec) -> PathBuf {
    spec.config_path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Everything the platform spec asks of `cloud`: its resources and, for a cloud with clusters,
/// the bootstrap's add-on instances. No clients, no network.
pub fn desired(spec: &LoadedSpec, cloud: &dyn Cloud) -> Result<DesiredGraph, Failure> {
    let graph = cloud.desired_graph(&spec.spec);
    match cloud.bootstrap_binding(&spec.spec) {
        None => Ok(graph),
        Some(binding) => bootstrap::add(graph, spec, cloud, &binding),
    }
}

/// The providers for a cloud (its own and, for a cloud with clusters, the bootstrap's) and the
/// desired graph they make of the platform spec.
pub async fn providers(spec: &LoadedSpec, cloud: &dyn Cloud) -> Result<(Providers, DesiredGraph), Failure> {
    let graph = desired(spec, cloud)?;
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
    Ok((with_hooks(list)?, graph))
}

/// The cluster bootstrap, or (in a build without it, where no cloud with clusters exists either)
/// an error saying so.
#[cfg(feature = "bootstrap")]
mod bootstrap {
    use std::sync::Arc;

    use matih_plans::{DesiredGraph, Provider};
    use matih_provider_kit::{Cloud, ClusterAccess, ClusterBinding};
    use matih_spec::LoadedSpec;

    use crate::exit::{Class, Failure};

    pub fn add(
        mut graph: DesiredGraph,
        spec: &LoadedSpec,
        _cloud: &dyn Cloud,
        binding: &ClusterBinding,
    ) -> Result<DesiredGraph, Failure> {
        matih_provider_kubernetes::add_bootstrap(&mut graph, &spec.spec, binding)
            .map_err(|e| Failure::new(Class::Unexpected, e))?;
        Ok(graph)
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
    use matih_provider_kit::{Cloud, ClusterAccess, ClusterBinding};
    use matih_spec::LoadedSpec;

    use crate::exit::Failure;

    fn missing() -> Failure {
        Failure::user(anyhow::anyhow!("the cluster bootstrap is not part of this build"))
            .hint("build with the `bootstrap` cargo feature (every cloud feature brings it)")
    }

    pub fn add(_: DesiredGraph, _: &LoadedSpec, _: &dyn Cloud, _: &ClusterBinding) -> Result<DesiredGraph, Failure> {
        Err(missing())
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

/// The state store at `path`: a symbolic link there is followed (and said so on stderr), and
/// `--force-lineage` is applied.
pub fn store(path: PathBuf, global: &Global) -> Result<LocalStore, Failure> {
    let store = LocalStore::open(path)?.accept_other_lineage(global.force_lineage);
    if let Some(link) = store.link()
        && !global.quiet
    {
        eprintln!(
            "note: state file `{}` is a symbolic link: reading and writing `{}`, with its backup and lock beside it",
            link.display(),
            store.path().display()
        );
    }
    Ok(store)
}

/// The recorded state, or a new empty one; what the load fixed or let pass is printed as a
/// warning.
fn load(store: &LocalStore, quiet: bool) -> Result<State, Failure> {
    let state = store.load_noting(|n| {
        if !quiet {
            eprintln!("warning: {n}");
        }
    })?;
    Ok(state.unwrap_or_default())
}

/// The state store, locked for the whole command.
pub struct Locked {
    pub store: LocalStore,
    pub lock: StateLock,
    quiet: bool,
}

impl Locked {
    /// The recorded state without taking the lock (writes are atomic renames, so a reader sees
    /// the previous or the next state whole). Empty if there is none.
    pub fn read_only(path: PathBuf, global: &Global) -> Result<State, Failure> {
        load(&store(path, global)?, global.quiet)
    }

    pub fn open(path: PathBuf, global: &Global, command: &str) -> Result<Self, Failure> {
        let store = store(path, global)?;
        let opts = LockOptions { timeout: global.lock_timeout, command: command.to_string() };
        let quiet = global.quiet;
        let lock = store.lock_with(&opts, |holder| {
            if quiet {
                return;
            }
            let who = holder
                .map(|h| format!(" held by `{}` (pid {} on {}, since {})", h.command, h.pid, h.host, h.started_at))
                .unwrap_or_default();
            eprintln!("waiting up to {} for the state lock{who}", humantime::format_duration(opts.timeout));
        })?;
        Ok(Self { store, lock, quiet })
    }

    /// The recorded state, or a new empty one (serial 0, never written).
    pub fn load(&self) -> Result<State, Failure> {
        load(&self.store, self.quiet)
    }
}

impl Persist for Locked {
    fn persist(&self, state: &mut State) -> Result<(), StateError> {
        self.store.save(state, &self.lock)
    }
}
