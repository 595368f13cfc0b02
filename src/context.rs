//! Per-command settings: the platform spec, the state store and lock, and the providers for the
//! chosen cloud.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use matih_plans::{DesiredGraph, Ownership, Persist, Provider, Providers};
use matih_spec::{CloudKind, LoadedSpec};
use matih_state::{LocalStore, LockOptions, State, StateError, StateLock};

use crate::cli::{CloudArg, Global};
use crate::exit::Failure;

/// Loads and validates the platform spec named by `-c`.
pub fn load_spec(global: &Global) -> Result<LoadedSpec, Failure> {
    load_spec_at(&global.config)
}

/// Loads and validates the platform spec at `path`.
pub fn load_spec_at(path: &Path) -> Result<LoadedSpec, Failure> {
    matih_spec::load(path).map_err(|e| {
        let hint = match &e {
            matih_spec::SpecError::Io { .. } => Some(format!(
                "pass the platform spec with -c/--config (looked for {}); examples/matih.yaml is a starting point",
                path.display()
            )),
            _ => None,
        };
        let mut f = Failure::user(e);
        f.hint = hint;
        f
    })
}

/// The cloud to work on: `--cloud`, or the only cloud the spec configures.
pub fn cloud(global: &Global, spec: &LoadedSpec) -> Result<CloudArg, Failure> {
    let configured = spec.spec.clouds.configured();
    let chosen = match global.cloud {
        Some(c) => c,
        None if configured.len() == 1 => match configured[0] {
            CloudKind::Eks => CloudArg::Eks,
            CloudKind::Gke => CloudArg::Gke,
            CloudKind::Aks => CloudArg::Aks,
        },
        None => {
            let names: Vec<String> = configured.iter().map(ToString::to_string).collect();
            return Err(Failure::usage(format!("the platform spec configures {}; choose one", names.join(", ")))
                .hint(format!("pass --cloud {}", names.join("|"))));
        }
    };
    let kind = match chosen {
        CloudArg::Eks => Some(CloudKind::Eks),
        CloudArg::Gke => Some(CloudKind::Gke),
        CloudArg::Aks => Some(CloudKind::Aks),
        CloudArg::Fake => None,
    };
    if let Some(kind) = kind
        && !configured.contains(&kind)
    {
        return Err(Failure::usage(format!(
            "--cloud {kind}: {} has no `clouds.{kind}` section",
            spec.config_path.display()
        ))
        .hint(format!("add a `clouds.{kind}` section to the platform spec or choose another cloud")));
    }
    Ok(chosen)
}

/// Where state lives: `--state`, or `.matih/state/<environment>-<cloud>.json` beside the spec.
pub fn state_path(global: &Global, spec: &LoadedSpec, cloud: CloudArg) -> PathBuf {
    global.state.clone().unwrap_or_else(|| {
        let dir = spec.config_path.parent().map(Path::to_path_buf).unwrap_or_default();
        dir.join(".matih").join("state").join(format!("{}-{}.json", spec.spec.platform.environment, cloud.as_str()))
    })
}

/// The providers for a cloud and the desired graph they make of the platform spec.
pub async fn providers(spec: &LoadedSpec, cloud: CloudArg) -> Result<(Providers, DesiredGraph), Failure> {
    match cloud {
        CloudArg::Fake => {
            let path = match std::env::var_os("MATIH_FAKE_CLOUD") {
                Some(p) => PathBuf::from(p),
                None => spec
                    .config_path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
                    .join(".matih")
                    .join("fake-cloud.json"),
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let opts = matih_provider_fake::FakeOptions::from_env().map_err(Failure::usage)?;
            let fake: Arc<dyn Provider> = Arc::new(matih_provider_fake::FakeCloud::file_backed(&path, opts));
            Ok((with_hooks(vec![fake])?, matih_provider_fake::desired_graph(&spec.spec)))
        }
        #[cfg(feature = "aws")]
        CloudArg::Eks => {
            let eks = spec.spec.clouds.eks.as_ref().expect("context::cloud checked the section");
            let o = ownership(spec);
            let owner = matih_provider_aws::Owner { platform: o.platform, environment: o.environment };
            let aws = matih_provider_aws::AwsProvider::new(&eks.region, owner).await;
            let kube = kubernetes(Arc::new(aws.cluster_access()))?;
            let mut graph = matih_provider_aws::desired_graph(&spec.spec);
            matih_provider_kubernetes::add_bootstrap(&mut graph, &spec.spec, &matih_provider_aws::bootstrap_binding(&spec.spec))
                .map_err(|e| Failure::new(crate::exit::Class::Unexpected, e))?;
            let aws: Arc<dyn Provider> = Arc::new(aws);
            Ok((with_hooks(vec![aws, kube])?, graph))
        }
        other => Err(Failure::user(anyhow::anyhow!("the {} provider is not part of this build", other.as_str())).hint(
            "`validate` works for every cloud; EKS needs the `aws` cargo feature, GKE and AKS providers are not written yet",
        )),
    }
}

/// The bootstrap's provider for a cloud's clusters. Announces the API server override and a
/// non-default manifest source on stderr whenever they are in effect.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
fn kubernetes(
    access: Arc<dyn matih_provider_kubernetes::cluster::ClusterAccess>,
) -> Result<Arc<dyn Provider>, Failure> {
    use matih_provider_kubernetes::{cluster::ApiOverride, manifests::Source};
    let api_override = ApiOverride::from_env().map_err(Failure::usage)?;
    if let Some(o) = &api_override {
        eprintln!("note: {}", o.announcement());
    }
    let source = Source::from_env();
    if !matches!(source, Source::Upstream { .. }) {
        eprintln!("note: {}", source.describe());
    }
    let p = matih_provider_kubernetes::KubernetesProvider::new(access, api_override, source).map_err(Failure::usage)?;
    Ok(Arc::new(p))
}

fn with_hooks(list: Vec<Arc<dyn Provider>>) -> Result<Providers, Failure> {
    let list = crate::fault::wrap(list).map_err(Failure::usage)?;
    Ok(Providers::new(list)?)
}

pub fn ownership(spec: &LoadedSpec) -> Ownership {
    Ownership { platform: spec.spec.platform.name.clone(), environment: spec.spec.platform.environment.clone() }
}

/// The state store, locked for the whole command.
pub struct Locked {
    pub store: LocalStore,
    pub lock: StateLock,
}

impl Locked {
    /// The recorded state without taking the lock (writes are atomic renames, so a reader sees
    /// the previous or the next state whole). Empty if there is none.
    pub fn read_only(path: PathBuf) -> Result<State, Failure> {
        Ok(LocalStore::new(path).load()?.unwrap_or_default())
    }

    pub fn open(path: PathBuf, global: &Global, command: &str) -> Result<Self, Failure> {
        let store = LocalStore::new(path);
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
        Ok(Self { store, lock })
    }

    /// The recorded state, or a new empty one (serial 0, never written).
    pub fn load(&self) -> Result<State, Failure> {
        Ok(self.store.load()?.unwrap_or_default())
    }
}

impl Persist for Locked {
    fn persist(&self, state: &mut State) -> Result<(), StateError> {
        self.store.save(state, &self.lock)
    }
}
