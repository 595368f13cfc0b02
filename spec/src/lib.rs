//! The platform spec: loading and validating what the user wants stood up.
//!
//! A platform spec is one YAML file (by convention `matih.yaml`) plus a `tenants/` directory
//! beside it holding one file per tenant (`tenants/acme.yaml`), so onboarding scripts add or
//! remove a tenant by adding or removing a file. [`load`] reads them all, decodes them into a
//! [`PlatformSpec`] and checks it; on failure it returns every problem at once
//! ([`SpecError::Invalid`]), each with its file, line and column, a label on the offending key
//! or value and a hint how to fix it.
//!
//! # The platform file
//!
//! ```yaml
//! platform:
//!   name: matih                       # DNS label, at most 32 characters
//!   domain: matih.ai                  # lower case, at least two labels
//!   environment: prod                 # `prod` serves matih.ai; any other label, e.g.
//!                                     # `staging`, gets the zone staging.matih.ai
//!   acme_email: platform-team@matih.ai
//! clouds:                             # at least one of eks, gke, aks
//!   eks:
//!     region: us-east-1
//!     kubernetes_version: "1.33"      # 1.NN
//!     network:
//!       vpc_cidr: 10.0.0.0/16         # /16../24; pods take VPC IPs (Amazon VPC CNI)
//!       availability_zones: 3         # 2..=6, default 3; a public + a private subnet each
//!       nat_gateways: single          # single (default) | per-az
//!       service_cidr: 172.20.0.0/16   # private, /12../24, outside the VPC
//!       cluster_dns_ip: 172.20.0.10   # optional, default: 10th address of service_cidr
//!     endpoint:                       # optional; these are the defaults
//!       { public_access: true, private_access: true, public_access_cidrs: [0.0.0.0/0] }
//!     node_pools:                     # at least one; the same shape on every cloud
//!       - { name: system, machine_type: m6i.large, min: 2, max: 4, desired: 2 }
//!   gke:
//!     project: matih-prod
//!     region: us-central1
//!     kubernetes_version: "1.33"
//!     network:                        # pairwise disjoint
//!       subnet_cidr: 10.10.0.0/20     # nodes
//!       pods_cidr: 10.16.0.0/14       # alias-IP secondary range
//!       services_cidr: 10.20.0.0/20   # alias-IP secondary range
//!       master_cidr: 172.16.0.0/28    # optional: the control plane's /28 (private nodes)
//!     dataplane: calico               # optional: calico (default) or dataplane-v2
//!     node_pools: [...]
//!   aks:
//!     subscription_id: 00000000-0000-0000-0000-000000000000
//!     resource_group: matih-prod-rg
//!     location: eastus
//!     kubernetes_version: "1.33"
//!     network:
//!       vnet_cidr: 10.30.0.0/16
//!       node_subnet_cidr: 10.30.0.0/20   # inside the VNet (Azure CNI: pods get VNet IPs)
//!       pod_subnet_cidr: 10.30.16.0/20   # optional, inside the VNet, apart from nodes
//!       service_cidr: 172.16.0.0/16      # outside the VNet and AKS-reserved ranges
//!       dns_service_ip: 172.16.0.10      # optional, default: 10th address
//!     node_pools: [...]               # AKS pool names: 1-12 lower-case letters/digits
//!     entra_id:                       # optional: Entra ID sign-in, Azure RBAC, no local accounts
//!       admin_group_ids: [<group object id>]
//!       cluster_admins: [<object id>]   # e.g. the principal that runs matih-infra
//! addons:                             # optional; versions default to the tested pins
//!   calico: { version: v3.32.1 }
//!   ingress_nginx: { version: controller-v1.15.1 }
//!   cert_manager: { version: v1.21.1, certificates: wildcard }  # or per-tenant
//!   coredns:
//!     forwarders: [1.1.1.1, 8.8.8.8]
//!     stub_domains: { corp.example: [10.0.0.2] }
//!   network_policies:
//!     kafka_namespace: matih-data-plane     # a platform service namespace; only it gets 9093
//!     internet_egress: [matih-control-plane, matih-data-plane]  # platform namespaces only
//! ```
//!
//! # Tenant files
//!
//! `tenants/<slug>.yaml` (or `.yml`): `slug` (equal to the file stem, a DNS label of at most 32
//! characters, not a platform record such as `api`, `www` or an environment name),
//! `display_name`, and `dedicated_ingress` (default false: share the platform's ingress).
//! Other files in `tenants/`, and files whose name starts with `.`, are ignored; a missing
//! `tenants/` directory means no tenants.
//!
//! # What this crate deliberately does not do
//!
//! It talks to no cloud: whether a region, machine type or Kubernetes version exists, or a
//! quota suffices, is for the providers at plan time. It does not check CIDRs across clouds
//! (the clusters are not peered). It does not compute resources or plans; it only hands out a
//! valid, defaulted [`PlatformSpec`] and a [`LoadedSpec::hash`] of the files it came from.
//!
//! YAML details: one document per file; anchors and aliases work, merge keys (`<<`) do not;
//! tags other than `!!str` are ignored.

mod check;
mod decode;
mod diag;
mod model;
mod yaml;

pub mod floors;

/// Names the platform gives a tenant's parts, wherever they are made (the cluster bootstrap, the
/// `tenant` commands' output).
pub mod naming {
    /// Control plane services (IAM, tenant, config, ...).
    pub const CONTROL_PLANE: &str = "matih-control-plane";
    /// Data plane services (AI, query engine, BI, Kafka, databases, ...).
    pub const DATA_PLANE: &str = "matih-data-plane";
    /// Front-end applications (workbenches).
    pub const FRONTEND: &str = "matih-frontend";
    /// The platform's ingress controller.
    pub const INGRESS: &str = "matih-ingress";
    /// The platform's own namespaces, in creation order.
    pub const PLATFORM_NAMESPACES: [&str; 4] = [CONTROL_PLANE, DATA_PLANE, FRONTEND, INGRESS];
    /// The namespaces that run the platform's services (every platform namespace but the
    /// ingress controller's).
    pub const SERVICE_NAMESPACES: [&str; 3] = [CONTROL_PLANE, DATA_PLANE, FRONTEND];

    /// Namespace of a tenant.
    pub fn tenant_namespace(slug: &str) -> String {
        format!("matih-tenant-{slug}")
    }

    /// Ingress class of a tenant's dedicated controller.
    pub fn ingress_class(slug: &str) -> String {
        format!("nginx-tenant-{slug}")
    }
}

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use diag::{Diagnostics, MAX_LISTED, SpecDiagnostic, SummaryReport};
pub use model::{
    Addon, Addons, AksEntraId, AksNetwork, AksSpec, Certificates, CloudKind, Clouds, ClusterView, CoreDns, EksEndpoint,
    EksNetwork, EksSpec, EksSubnets, GkeDataplane, GkeNetwork, GkeSpec, NatGateways, NetworkPolicies, NodePool,
    Platform, PlatformSpec, StateBackend, StateSpec, TenantSpec, UnknownCloud,
};

use crate::decode::Decoder;
use crate::diag::{Note, Problem, Sink, SourceFile, Span};
use crate::yaml::Node;

/// The name of the directory, beside the platform file, that holds one file per tenant.
pub const TENANT_DIR: &str = "tenants";

/// The largest platform file read, in bytes. Real ones are a few KiB.
pub const MAX_PLATFORM_FILE: u64 = 1 << 20;

/// The largest tenant file read, in bytes. Real ones are a few lines.
pub const MAX_TENANT_FILE: u64 = 64 << 10;

/// Why a platform spec could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SpecError {
    /// A spec file, or the tenants directory, is not what it must be: missing, a directory, a
    /// broken or looping link, a pipe or device.
    #[error("{}", problem.describe(path))]
    Path { path: PathBuf, problem: PathProblem },
    /// A spec file, or the tenants directory, could not be read.
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The files were read but the spec has problems; all of them are listed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Diagnostics),
}

/// What is wrong with a path of the platform spec.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathProblem {
    /// Nothing is there.
    NotFound,
    /// A directory where a file is wanted.
    Directory,
    /// A named pipe, device or socket: reading it could block or never end.
    NotRegular,
    /// A symbolic link to something that does not exist.
    DanglingLink { target: PathBuf },
    /// A chain of symbolic links that loops (or is longer than 40).
    LinkLoop,
    /// `tenants/` beside the platform file is not a directory.
    TenantsNotDirectory,
    /// The file may not be read by this user.
    PermissionDenied,
}

impl PathProblem {
    fn describe(&self, path: &Path) -> String {
        let p = path.display();
        match self {
            PathProblem::NotFound => format!("`{p}` does not exist"),
            PathProblem::Directory => format!("`{p}` is a directory, not a platform spec file"),
            PathProblem::NotRegular => format!("`{p}` is not a regular file (a named pipe, device or socket)"),
            PathProblem::DanglingLink { target } => {
                format!("`{p}` is a symbolic link to `{}`, which does not exist", target.display())
            }
            PathProblem::LinkLoop => {
                format!("`{p}` is a symbolic link that loops (or goes through more than 40 links)")
            }
            PathProblem::TenantsNotDirectory => {
                format!(
                    "`{p}` is not a directory: the tenants directory beside the platform spec holds one file per tenant"
                )
            }
            PathProblem::PermissionDenied => format!("cannot read `{p}`: permission denied"),
        }
    }
}

impl SpecError {
    /// How to fix it, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        let SpecError::Path { path, problem } = self else { return None };
        let p = path.display();
        Some(match problem {
            PathProblem::NotFound => format!(
                "pass the platform spec with -c/--config (looked for `{p}`); examples/matih.yaml is a starting point"
            ),
            PathProblem::Directory => {
                let inside = path.join("matih.yaml");
                if inside.is_file() {
                    format!("pass the file inside it: `-c {}`", inside.display())
                } else {
                    format!("pass the platform spec file itself with -c/--config, e.g. `-c {p}/matih.yaml`")
                }
            }
            PathProblem::NotRegular => "pass the platform spec file itself with -c/--config".to_string(),
            PathProblem::DanglingLink { .. } => {
                format!("point the link at an existing file (`ln -sf <file> {p}`), or pass the file itself")
            }
            PathProblem::LinkLoop => {
                format!("`ls -l {p}` shows where each link leads: point one of them at a real file")
            }
            PathProblem::TenantsNotDirectory => format!(
                "move `{p}` aside (e.g. `mv {p} {p}.old`) and create the directory; `matih-infra tenant add` writes one file per tenant there"
            ),
            PathProblem::PermissionDenied => format!("check the owner and mode of `{p}` and the directories above it"),
        })
    }
}

/// A valid platform spec and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    pub spec: PlatformSpec,
    /// The platform file, as given to [`load`].
    pub config_path: PathBuf,
    /// `tenants/` beside the platform file (it need not exist).
    pub tenant_dir: PathBuf,
    /// Lower-case hex SHA-256 over the platform file and every tenant file, each as its name
    /// (`matih.yaml`, `tenants/acme.yaml`) and bytes, the platform file first and tenant files
    /// sorted by name. Moving the directory does not change it; editing, adding or removing a
    /// counted file does. A saved plan is refused when this changes.
    pub hash: String,
}

impl LoadedSpec {
    /// The platform file's part of the spec, with its tenants counted.
    pub fn platform_file(&self) -> PlatformFile<'_> {
        PlatformFile { spec: &self.spec, config_path: &self.config_path, tenant_files: self.spec.tenants.len() }
    }
}

impl<'a> From<&'a LoadedSpec> for PlatformFile<'a> {
    fn from(spec: &'a LoadedSpec) -> Self {
        spec.platform_file()
    }
}

/// A valid platform file and the number of tenant files beside it: what [`load_with`] hands its
/// caller before the tenant files are parsed, so that a command can say what it is about to work
/// on (the platform, its cloud, where its state is) while they are.
#[derive(Debug, Clone, Copy)]
pub struct PlatformFile<'a> {
    /// The platform file's settings. Its `tenants` may still be empty: they are not read yet.
    pub spec: &'a PlatformSpec,
    /// The platform file, as given to [`load`].
    pub config_path: &'a Path,
    /// The tenant files in `tenants/` (each one tenant once the spec is valid).
    pub tenant_files: usize,
}

/// Loads the platform file at `config_path` and the tenant files in `tenants/` beside it, and
/// validates them together.
pub fn load(config_path: &Path) -> Result<LoadedSpec, SpecError> {
    load_with(config_path, &mut |_| {})
}

/// [`load`], calling `platform_read` as soon as the platform file is read and found valid, while
/// the tenant files are still being parsed (at 10,000 tenants, most of the load). It is not called
/// when the platform file has a problem.
pub fn load_with(config_path: &Path, platform_read: &mut dyn FnMut(PlatformFile<'_>)) -> Result<LoadedSpec, SpecError> {
    let mut sink = Sink::default();
    let config_bytes = read(config_path, MAX_PLATFORM_FILE, &mut sink)?;
    let tenant_dir = config_path.parent().unwrap_or(Path::new("")).join(TENANT_DIR);
    let tenant_names = tenant_file_names(&tenant_dir)?;

    // The tenant files are read and parsed on every core while this thread parses the platform
    // file: at 10,000 tenants reading them is 30,000 system calls and parsing them most of the
    // rest of the tool's time to its first output.
    let config_name = config_path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let (spec, config_text, read) = std::thread::scope(|scope| {
        let tenants = spawn_tenant_reads(scope, &tenant_dir, &tenant_names);
        let mut config_sink = Sink::default();
        let config_text = config_bytes.and_then(|bytes| source_file(config_path, bytes, &mut config_sink));
        let spec = config_text.as_ref().and_then(|file| {
            let root = yaml::parse(file, &mut config_sink)?;
            Decoder::new(file, &mut config_sink).platform_file(&root)
        });
        if let Some(spec) = &spec
            && config_sink.items.is_empty()
            && sink.items.is_empty()
        {
            platform_read(PlatformFile { spec, config_path, tenant_files: tenant_names.len() });
        }
        sink.absorb(config_sink);
        let read: Result<Vec<TenantsRead>, SpecError> =
            tenants.into_iter().map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect();
        (spec, config_text, read)
    });
    let read = read?;

    let mut files: Vec<(String, &[u8])> =
        vec![(config_name, config_text.as_ref().map_or(&[][..], |f| f.text().as_bytes()))];
    let mut tenants: Vec<ParsedTenant> = Vec::with_capacity(tenant_names.len());
    for chunk in &read {
        for (name, file) in tenant_names[chunk.first..].iter().zip(&chunk.files) {
            files.push((format!("{TENANT_DIR}/{name}"), file.as_ref().map_or(&[][..], |f| f.text().as_bytes())));
        }
    }
    let hash = hash_files(&files);
    drop(files);
    for chunk in read {
        sink.absorb(chunk.sink);
        tenants.extend(chunk.parsed);
    }
    let environment = spec.as_ref().map(|s| s.platform.environment.as_str());
    check_tenants_together(&tenants, environment, &mut sink);

    let mut file_order = vec![config_path.to_path_buf()];
    file_order.extend(tenants_paths(&tenant_dir, &tenants, &sink));
    match spec {
        Some(mut spec) if sink.items.is_empty() => {
            spec.tenants = tenants.into_iter().map(|t| t.spec).collect();
            spec.tenants.sort_by(|a, b| a.slug.cmp(&b.slug));
            Ok(LoadedSpec { spec, config_path: config_path.to_path_buf(), tenant_dir, hash })
        }
        _ => Err(SpecError::Invalid(Diagnostics::new(sink, &file_order))),
    }
}

/// Parses and checks one tenant file on its own: everything but the rules that need the other
/// tenants (unique slugs) or the platform file (the environment name is reserved). `file` is
/// used for messages and to check that the slug matches the file name.
pub fn parse_tenant(file: &Path, source: &str) -> Result<TenantSpec, Diagnostics> {
    let mut sink = Sink::default();
    let stem = file.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let src = SourceFile::new(file, source.to_string());
    let parsed = parse_tenant_file(&src, &stem, &mut sink);
    check_tenants_together(parsed.as_slice(), None, &mut sink);
    match parsed {
        Some(t) if sink.items.is_empty() => Ok(t.spec),
        _ => Err(Diagnostics::new(sink, &[file.to_path_buf()])),
    }
}

/// Tenant files below this many are read on the calling thread alone.
const PARALLEL_FROM: usize = 256;

/// What one thread read and parsed of a run of tenant files: each file's text (`None`: too large
/// or not UTF-8, a problem in `sink`), the tenants parsed from them, in name order.
struct TenantsRead {
    /// The index in the sorted names of the run's first file.
    first: usize,
    files: Vec<Option<Arc<SourceFile>>>,
    parsed: Vec<ParsedTenant>,
    sink: Sink,
}

/// Starts reading and parsing the tenant files `names` in `dir`, in runs of consecutive names,
/// one thread for each core (one thread in all for a few files). The runs come back in name
/// order; the first error in name order is the one reported, as if read one by one.
fn spawn_tenant_reads<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    dir: &'s Path,
    names: &'s [String],
) -> Vec<std::thread::ScopedJoinHandle<'s, Result<TenantsRead, SpecError>>> {
    let threads = if names.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
    };
    let run = names.len().div_ceil(threads).max(1);
    names
        .chunks(run)
        .enumerate()
        .map(|(i, run_names)| {
            scope.spawn(move || {
                let mut out =
                    TenantsRead { first: i * run, files: Vec::new(), parsed: Vec::new(), sink: Sink::default() };
                for name in run_names {
                    let path = dir.join(name);
                    let stem =
                        Path::new(name).file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                    let file = read(&path, MAX_TENANT_FILE, &mut out.sink)?
                        .and_then(|bytes| source_file(&path, bytes, &mut out.sink));
                    if let Some(file) = &file {
                        out.parsed.extend(parse_tenant_file(file, &stem, &mut out.sink));
                    }
                    out.files.push(file);
                }
                Ok(out)
            })
        })
        .collect()
}

/// A decoded tenant with what is needed to locate cross-file problems.
struct ParsedTenant {
    spec: TenantSpec,
    file: Arc<SourceFile>,
    root: Node,
}

impl ParsedTenant {
    fn slug_span(&self) -> Span {
        decode::locate(&self.root, "slug", false)
    }
}

fn parse_tenant_file(file: &Arc<SourceFile>, stem: &str, sink: &mut Sink) -> Option<ParsedTenant> {
    let root = yaml::parse(file, sink)?;
    let spec = Decoder::new(file, sink).tenant_file(&root, stem)?;
    Some(ParsedTenant { spec, file: Arc::clone(file), root })
}

/// Rules across tenant files: reserved slugs (which depend on the environment) and duplicates.
fn check_tenants_together(tenants: &[ParsedTenant], environment: Option<&str>, sink: &mut Sink) {
    // The first tenant of each slug: a map, so that ten thousand tenants cost ten thousand steps.
    let mut first_of: std::collections::HashMap<&str, &ParsedTenant> = std::collections::HashMap::new();
    for t in tenants {
        let slug = &t.spec.slug;
        if check::slug_is_reserved(slug, environment) {
            sink.error(
                &t.file,
                t.slug_span(),
                Problem::new(format!("tenant slug `{slug}` is reserved"), "reserved name").help(format!(
                    "`{slug}.<zone>` is a platform record (reserved: {}, and the environment's own name); \
                     pick another slug and rename the file to match",
                    check::RESERVED_SLUGS.join(", ")
                )),
            );
        }
        let Some(first) = first_of.get(slug.as_str()) else {
            first_of.insert(slug, t);
            continue;
        };
        let note = Note {
            file: Arc::clone(&first.file),
            span: first.slug_span(),
            message: format!("`{slug}` first defined here"),
        };
        sink.error(
            &t.file,
            t.slug_span(),
            Problem::new(format!("tenant `{slug}` is defined twice"), "duplicate tenant")
                .help("keep one file per tenant: delete or merge the other one")
                .note(note),
        );
    }
}

/// The tenant files that can appear in diagnostics, in name order (for sorting them).
fn tenants_paths(tenant_dir: &Path, tenants: &[ParsedTenant], sink: &Sink) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = tenants.iter().map(|t| t.file.path().to_path_buf()).collect();
    paths.extend(sink.items.iter().map(|d| d.path().to_path_buf()).filter(|p| p.starts_with(tenant_dir)));
    paths.sort();
    paths.dedup();
    paths
}

/// The bytes of a spec file, read only when it is a regular file of at most `limit` bytes.
/// A file over the limit is a located problem (`None`); a path that is not a readable file is
/// an error naming what it is instead.
fn read(path: &Path, limit: u64, sink: &mut Sink) -> Result<Option<Vec<u8>>, SpecError> {
    // Opened first and then looked at: one path lookup, not two (at 10,000 tenant files, a third
    // of the system calls). Without blocking, so that a FIFO is refused rather than waited on.
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let opened = options.open(path).and_then(|f| f.metadata().map(|m| (f, m)));
    let (file, meta) = match opened {
        Ok(opened) => opened,
        // A directory one may not read is still a directory.
        Err(_) if fs::metadata(path).is_ok_and(|m| m.is_dir()) => {
            return Err(SpecError::Path { path: path.to_path_buf(), problem: PathProblem::Directory });
        }
        Err(e) => return Err(path_error(path, e)),
    };
    if meta.is_dir() {
        return Err(SpecError::Path { path: path.to_path_buf(), problem: PathProblem::Directory });
    }
    if !meta.is_file() {
        return Err(SpecError::Path { path: path.to_path_buf(), problem: PathProblem::NotRegular });
    }
    let too_large = |sink: &mut Sink, size: u64| {
        let file = SourceFile::new(path, String::new());
        let what = if limit == MAX_PLATFORM_FILE { "a platform file" } else { "a tenant file" };
        sink.error(
            &file,
            Span::FILE_START,
            Problem::new(format!("the file is {size} bytes; {what} is read up to {limit} bytes"), "too large").help(
                "a spec file is a few KiB: check that this is the file you meant, or for generated or repeated content",
            ),
        );
    };
    if meta.len() > limit {
        too_large(sink, meta.len());
        return Ok(None);
    }
    // The file may grow between the look and the read: never read more than the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| path_error(path, e))?;
    if bytes.len() as u64 > limit {
        too_large(sink, bytes.len() as u64);
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// The error for a spec path that could not be opened: what is there instead, when that can be
/// told (a broken or looping link, nothing at all, no permission).
fn path_error(path: &Path, e: io::Error) -> SpecError {
    let problem = match e.kind() {
        io::ErrorKind::PermissionDenied => Some(PathProblem::PermissionDenied),
        _ => link_problem(path).or_else(|| (e.kind() == io::ErrorKind::NotFound).then_some(PathProblem::NotFound)),
    };
    match problem {
        Some(problem) => SpecError::Path { path: path.to_path_buf(), problem },
        None => SpecError::Io { path: path.to_path_buf(), source: e },
    }
}

/// Whether `path` is a symbolic link that leads nowhere: to a missing file, or round in a loop.
fn link_problem(path: &Path) -> Option<PathProblem> {
    let mut at = path.to_path_buf();
    for _ in 0..=40 {
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&at).ok()?;
                at = match at.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(_) => return None,
            Err(e) if e.kind() == io::ErrorKind::NotFound && at != path => {
                return Some(PathProblem::DanglingLink { target: at });
            }
            Err(_) => return None,
        }
    }
    Some(PathProblem::LinkLoop)
}

/// Names of the tenant files in `dir`, sorted: regular files (or links to them) ending in
/// `.yaml` or `.yml`, not hidden. A missing directory has none; a `tenants` that is a file, or a
/// link to nothing, is an error.
fn tenant_file_names(dir: &Path) -> Result<Vec<String>, SpecError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound && link_problem(dir).is_none() => return Ok(Vec::new()),
        Err(_) if fs::metadata(dir).is_ok_and(|m| !m.is_dir()) => {
            return Err(SpecError::Path { path: dir.to_path_buf(), problem: PathProblem::TenantsNotDirectory });
        }
        Err(e) => return Err(path_error(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| SpecError::Io { path: dir.to_path_buf(), source })?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if !is_yaml || name.starts_with('.') {
            continue;
        }
        // A tenant file that is a directory or a broken link is reported by `read`.
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// The text of a file, or a located problem when it is not UTF-8.
fn source_file(path: &Path, bytes: Vec<u8>, sink: &mut Sink) -> Option<Arc<SourceFile>> {
    match String::from_utf8(bytes) {
        Ok(text) => Some(SourceFile::new(path, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let file = SourceFile::new(path, String::from_utf8_lossy(e.as_bytes()).into_owned());
            let start = file.pos_of_byte(at);
            sink.error(
                &file,
                Span { start, end: at + 1 },
                Problem::new("the file is not valid UTF-8", "invalid byte").help("save the file as UTF-8"),
            );
            None
        }
    }
}

/// SHA-256 over `(name, bytes)` pairs, each framed by its length so that no two different
/// file sets hash alike.
fn hash_files(files: &[(String, &[u8])]) -> String {
    let mut h = Sha256::new();
    for (name, bytes) in files {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLATFORM: &str = "\
platform: { name: matih, domain: matih.ai, environment: staging, acme_email: a@matih.ai }
clouds:
  eks:
    region: us-east-1
    kubernetes_version: \"1.33\"
    network: { vpc_cidr: 10.0.0.0/16, service_cidr: 172.20.0.0/16 }
    node_pools: [{ name: system, machine_type: m6i.large, min: 2, max: 4 }]
";

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn loads_tenants_sorted_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "matih.yaml", PLATFORM);
        write(dir.path(), "tenants/zeta.yml", "slug: zeta\ndisplay_name: Zeta\n");
        write(dir.path(), "tenants/acme.yaml", "slug: acme\ndisplay_name: Acme Corp\ndedicated_ingress: true\n");
        write(dir.path(), "tenants/README.md", "not a tenant");
        write(dir.path(), "tenants/.acme.yaml.swp", "junk");
        let loaded = load(&dir.path().join("matih.yaml")).unwrap();
        let slugs: Vec<&str> = loaded.spec.tenants.iter().map(|t| t.slug.as_str()).collect();
        assert_eq!(slugs, ["acme", "zeta"]);
        assert!(loaded.spec.tenants[0].dedicated_ingress);
        assert!(!loaded.spec.tenants[1].dedicated_ingress);
        assert_eq!(loaded.spec.tenants[0].file, dir.path().join("tenants/acme.yaml"));
        assert_eq!(loaded.tenant_dir, dir.path().join("tenants"));
        assert_eq!(loaded.spec.zone_name(), "staging.matih.ai");
        assert_eq!(loaded.spec.parent_zone().as_deref(), Some("matih.ai"));
        assert_eq!(loaded.spec.cluster(CloudKind::Eks).unwrap().region, "us-east-1");
        assert!(loaded.spec.cluster(CloudKind::Gke).is_none());
    }

    #[test]
    fn the_platform_file_is_handed_over_before_the_tenants_and_only_when_valid() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "matih.yaml", PLATFORM);
        write(dir.path(), "tenants/acme.yaml", "slug: acme\ndisplay_name: Acme Corp\n");
        write(dir.path(), "tenants/beta.yaml", "slug: beta\ndisplay_name: Beta\n");
        write(dir.path(), "tenants/notes.txt", "not a tenant");
        let mut seen = Vec::new();
        let loaded = load_with(&dir.path().join("matih.yaml"), &mut |file| {
            seen.push((file.spec.platform.name.clone(), file.config_path.to_path_buf(), file.tenant_files));
        })
        .unwrap();
        assert_eq!(seen, [(loaded.spec.platform.name.clone(), dir.path().join("matih.yaml"), 2)]);
        assert_eq!(loaded.platform_file().tenant_files, 2);

        // A tenant file's problem is found after the platform file was handed over.
        write(dir.path(), "tenants/beta.yaml", "slug: beta\n");
        let mut calls = 0;
        assert!(load_with(&dir.path().join("matih.yaml"), &mut |_| calls += 1).is_err());
        assert_eq!(calls, 1);

        // A platform file with a problem is not handed over.
        write(dir.path(), "matih.yaml", &PLATFORM.replace("platform:", "platfrom:"));
        let mut calls = 0;
        assert!(load_with(&dir.path().join("matih.yaml"), &mut |_| calls += 1).is_err());
        assert_eq!(calls, 0);
    }

    /// Enough tenant files to be read on several threads.
    const MANY: usize = PARALLEL_FROM + 44;

    #[test]
    fn many_tenant_files_load_in_name_order_and_hash_as_read_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "matih.yaml", PLATFORM);
        for i in (0..MANY).rev() {
            write(dir.path(), &format!("tenants/t{i:04}.yaml"), &format!("slug: t{i:04}\ndisplay_name: T {i}\n"));
        }
        let loaded = load(&dir.path().join("matih.yaml")).unwrap();
        let slugs: Vec<String> = loaded.spec.tenants.iter().map(|t| t.slug.clone()).collect();
        let expected: Vec<String> = (0..MANY).map(|i| format!("t{i:04}")).collect();
        assert_eq!(slugs, expected);

        let mut files = vec![("matih.yaml".to_string(), PLATFORM.as_bytes().to_vec())];
        files.extend(expected.iter().map(|slug| {
            let name = format!("tenants/{slug}.yaml");
            let bytes = fs::read(dir.path().join(&name)).unwrap();
            (name, bytes)
        }));
        let framed: Vec<(String, &[u8])> = files.iter().map(|(n, b)| (n.clone(), b.as_slice())).collect();
        assert_eq!(loaded.hash, hash_files(&framed));
    }

    #[test]
    fn problems_in_many_tenant_files_come_in_file_order_up_to_the_listed_limit() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "matih.yaml", PLATFORM);
        for i in 0..MANY {
            write(dir.path(), &format!("tenants/t{i:04}.yaml"), &format!("slug: t{i:04}\ndisplay_name: T {i}\n"));
        }
        // A bad value near each end; then one in every file, past the listed limit.
        write(dir.path(), "tenants/t0003.yaml", "slug: t0003\ndisplay_name: 7\nbogus: 1\n");
        write(dir.path(), &format!("tenants/t{:04}.yaml", MANY - 2), "slug: nope\ndisplay_name: T\n");
        let Err(SpecError::Invalid(d)) = load(&dir.path().join("matih.yaml")) else { panic!("invalid") };
        let files: Vec<String> =
            d.items().iter().map(|i| i.path().file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(files.first().map(String::as_str), Some("t0003.yaml"), "{files:?}");
        assert_eq!(files.last().map(String::as_str), Some(format!("t{:04}.yaml", MANY - 2).as_str()), "{files:?}");

        for i in 0..MANY {
            write(dir.path(), &format!("tenants/t{i:04}.yaml"), &format!("slug: t{i:04}\nbogus: {i}\n"));
        }
        let Err(SpecError::Invalid(d)) = load(&dir.path().join("matih.yaml")) else { panic!("invalid") };
        assert_eq!(d.items().len(), MAX_LISTED);
        assert!(d.len() >= MANY, "every file's problem counted: {}", d.len());
        assert!(d.items()[0].path().ends_with("tenants/t0000.yaml"));
        let listed: Vec<&Path> = d.items().iter().map(|i| i.path()).collect();
        assert!(listed.windows(2).all(|w| w[0] <= w[1]), "in file order");
        assert!(
            listed.iter().all(|p| *p <= dir.path().join("tenants/t0200.yaml").as_path()),
            "the first files' problems are the ones listed"
        );
    }

    #[test]
    fn missing_tenant_dir_means_no_tenants() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "matih.yaml", PLATFORM);
        assert!(load(&dir.path().join("matih.yaml")).unwrap().spec.tenants.is_empty());
    }

    #[test]
    fn hash_changes_with_any_counted_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("matih.yaml");
        write(dir.path(), "matih.yaml", PLATFORM);
        let h0 = load(&config).unwrap().hash;
        assert_eq!(h0.len(), 64);
        assert_eq!(load(&config).unwrap().hash, h0, "stable across loads");

        write(dir.path(), "tenants/notes.txt", "ignored");
        assert_eq!(load(&config).unwrap().hash, h0, "ignored files do not count");

        write(dir.path(), "tenants/acme.yaml", "slug: acme\ndisplay_name: Acme\n");
        let h1 = load(&config).unwrap().hash;
        assert_ne!(h1, h0);

        write(dir.path(), "tenants/acme.yaml", "slug: acme\ndisplay_name: Acme Corp\n");
        assert_ne!(load(&config).unwrap().hash, h1);
    }

    #[test]
    fn hash_frames_names_and_contents() {
        // Moving bytes between a name and a content must change the hash.
        assert_ne!(hash_files(&[("ab".into(), b"c")]), hash_files(&[("a".into(), b"bc")]));
    }

    #[test]
    fn reserved_slugs_include_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "matih.yaml", &PLATFORM.replace("environment: staging", "environment: qa"));
        write(dir.path(), "tenants/qa.yaml", "slug: qa\ndisplay_name: QA Corp\n");
        write(dir.path(), "tenants/api.yaml", "slug: api\ndisplay_name: API Corp\n");
        let Err(SpecError::Invalid(d)) = load(&dir.path().join("matih.yaml")) else { panic!("expected invalid") };
        let messages: Vec<&str> = d.items().iter().map(|i| i.message()).collect();
        assert_eq!(messages, ["tenant slug `api` is reserved", "tenant slug `qa` is reserved"]);
    }

    fn path_problem(path: &Path) -> (PathBuf, PathProblem, String, String) {
        match load(path) {
            Err(e @ SpecError::Path { .. }) => {
                let (message, hint) = (e.to_string(), e.hint().unwrap());
                let SpecError::Path { path, problem } = e else { unreachable!() };
                (path, problem, message, hint)
            }
            other => panic!("{}: {other:?}", path.display()),
        }
    }

    #[test]
    fn a_config_path_that_is_not_a_file_says_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (_, problem, message, _) = path_problem(&d.join("nope.yaml"));
        assert_eq!(problem, PathProblem::NotFound);
        assert!(message.ends_with("nope.yaml` does not exist"), "{message}");

        // A directory: the hint names the spec file inside it when there is one.
        write(d, "platform/matih.yaml", PLATFORM);
        let (_, problem, message, hint) = path_problem(&d.join("platform"));
        assert_eq!(problem, PathProblem::Directory);
        assert!(message.contains("is a directory, not a platform spec file"), "{message}");
        assert!(hint.contains(&format!("-c {}", d.join("platform/matih.yaml").display())), "{hint}");

        // A link to nothing, and links in a loop.
        std::os::unix::fs::symlink("gone.yaml", d.join("dangling.yaml")).unwrap();
        let (_, problem, message, _) = path_problem(&d.join("dangling.yaml"));
        assert_eq!(problem, PathProblem::DanglingLink { target: d.join("gone.yaml") });
        assert!(message.contains("is a symbolic link to") && message.contains("which does not exist"), "{message}");
        std::os::unix::fs::symlink("loop-b.yaml", d.join("loop-a.yaml")).unwrap();
        std::os::unix::fs::symlink("loop-a.yaml", d.join("loop-b.yaml")).unwrap();
        assert_eq!(path_problem(&d.join("loop-a.yaml")).1, PathProblem::LinkLoop);

        // A named pipe would block a plain read forever.
        let fifo = d.join("fifo.yaml");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert_eq!(path_problem(&fifo).1, PathProblem::NotRegular);
    }

    #[test]
    fn tenants_must_be_a_directory_and_its_files_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "matih.yaml", PLATFORM);
        write(dir.path(), "tenants", "slug: acme\n");
        let (path, problem, message, hint) = path_problem(&dir.path().join("matih.yaml"));
        assert_eq!((path, problem), (dir.path().join("tenants"), PathProblem::TenantsNotDirectory));
        assert!(message.contains("is not a directory"), "{message}");
        assert!(hint.contains("mv "), "{hint}");

        fs::remove_file(dir.path().join("tenants")).unwrap();
        std::os::unix::fs::symlink("elsewhere", dir.path().join("tenants")).unwrap();
        assert!(matches!(path_problem(&dir.path().join("matih.yaml")).1, PathProblem::DanglingLink { .. }));

        fs::remove_file(dir.path().join("tenants")).unwrap();
        fs::create_dir(dir.path().join("tenants")).unwrap();
        std::os::unix::fs::symlink("../gone.yaml", dir.path().join("tenants/acme.yaml")).unwrap();
        let (path, problem, ..) = path_problem(&dir.path().join("matih.yaml"));
        assert_eq!(path, dir.path().join("tenants/acme.yaml"));
        assert!(matches!(problem, PathProblem::DanglingLink { .. }));
    }

    #[test]
    fn files_over_the_size_limit_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut big = PLATFORM.to_string();
        big.push_str(&"# padding\n".repeat(MAX_PLATFORM_FILE as usize / 10));
        write(dir.path(), "matih.yaml", &big);
        write(dir.path(), "tenants/acme.yaml", &format!("slug: acme\ndisplay_name: {}\n", "A".repeat(70_000)));
        let Err(SpecError::Invalid(d)) = load(&dir.path().join("matih.yaml")) else { panic!("expected invalid") };
        let shown = d.to_string();
        assert_eq!(d.len(), 2, "{shown}");
        assert!(shown.contains("matih.yaml:1:1: the file is") && shown.contains("read up to 1048576 bytes"), "{shown}");
        assert!(shown.contains("acme.yaml:1:1: the file is") && shown.contains("read up to 65536 bytes"), "{shown}");
    }

    #[test]
    fn non_utf8_files_are_located() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("matih.yaml"), b"platform:\n  name: m\xffatih\n").unwrap();
        let Err(SpecError::Invalid(d)) = load(&dir.path().join("matih.yaml")) else { panic!("expected invalid") };
        assert_eq!((d.items()[0].line(), d.items()[0].column()), (2, 10));
    }

    #[test]
    fn parse_tenant_checks_one_file() {
        let t = parse_tenant(Path::new("tenants/acme.yaml"), "slug: acme\ndisplay_name: Acme\n").unwrap();
        assert_eq!(t.slug, "acme");
        let d = parse_tenant(Path::new("tenants/www.yaml"), "slug: www\ndisplay_name: W\n").unwrap_err();
        assert_eq!(d.to_string().lines().next().unwrap(), "tenants/www.yaml:1:7: tenant slug `www` is reserved");
    }
}
