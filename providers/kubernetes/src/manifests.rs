//! Where add-on manifests come from: the upstream release files of ingress-nginx, Calico and
//! cert-manager at the version the platform spec pins, checked against the sha256 digests
//! matih-infra knows, cached on disk, and turned into the JSON objects server-side apply sends.
//!
//! Three sources ([`Source`]): the upstream release URLs (the default), a local directory and an
//! HTTP mirror, the last two for air-gapped installs. Both use one layout,
//! `<add-on>/<version>/<file>` (e.g. `calico/v3.32.1/tigera-operator.yaml`), which is also the
//! cache's layout. Downloads are cached under [`Source::from_env`]'s cache directory, written
//! atomically, and re-verified on every load; a cached file that no longer matches its digest is
//! downloaded again, once.
//!
//! A file whose (file, version) has a digest in [`PINNED`] must match it, wherever it comes from.
//! Any other version (one the user picked, or cert-manager's release asset, whose digest is not
//! known here) loads unverified: [`Manifest::verified`] is false and [`Manifest::unverified_note`]
//! says so for the tool's output. Unverified cached files are trusted as first downloaded.
//!
//! Deliberately not done here: rendering or editing manifests (they are applied as upstream
//! ships them), choosing which files an add-on needs (the add-on table does), applying them,
//! proxies and retries (see the `fetch` submodule).

mod fetch;
mod yaml;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Local directory with the `<add-on>/<version>/<file>` layout; wins over the mirror.
pub const ENV_ADDONS_DIR: &str = "MATIH_ADDONS_DIR";
/// Base URL of a mirror with the `<add-on>/<version>/<file>` layout.
pub const ENV_ADDONS_MIRROR: &str = "MATIH_ADDONS_MIRROR";
/// Directory for downloaded manifests (used as is: files go to `<dir>/<add-on>/<version>/<file>`).
pub const ENV_CACHE_DIR: &str = "MATIH_CACHE_DIR";

/// One upstream file of an add-on release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ManifestFile {
    /// ingress-nginx's static manifest for AWS (NLB service annotations).
    IngressNginxAws,
    /// ingress-nginx's static manifest for other clouds (GKE, AKS).
    IngressNginxCloud,
    /// Calico's tigera-operator: namespace, RBAC and the operator deployment (no CRDs).
    TigeraOperator,
    /// Calico's `operator.tigera.io` and `projectcalico.org` CRDs, which the operator's custom
    /// resources need.
    CalicoOperatorCrds,
    /// cert-manager's release manifest (a release asset, not a file in the repository).
    CertManager,
}

impl ManifestFile {
    /// Every file, in the order above.
    pub const ALL: [ManifestFile; 5] = [
        ManifestFile::IngressNginxAws,
        ManifestFile::IngressNginxCloud,
        ManifestFile::TigeraOperator,
        ManifestFile::CalicoOperatorCrds,
        ManifestFile::CertManager,
    ];

    /// The add-on's directory name in the layout: `ingress-nginx`, `calico`, `cert-manager`.
    pub fn addon(self) -> &'static str {
        match self {
            ManifestFile::IngressNginxAws | ManifestFile::IngressNginxCloud => "ingress-nginx",
            ManifestFile::TigeraOperator | ManifestFile::CalicoOperatorCrds => "calico",
            ManifestFile::CertManager => "cert-manager",
        }
    }

    /// The file's name in the layout, e.g. `aws-deploy.yaml`.
    pub fn file_name(self) -> &'static str {
        match self {
            ManifestFile::IngressNginxAws => "aws-deploy.yaml",
            ManifestFile::IngressNginxCloud => "cloud-deploy.yaml",
            ManifestFile::TigeraOperator => "tigera-operator.yaml",
            ManifestFile::CalicoOperatorCrds => "operator-crds.yaml",
            ManifestFile::CertManager => "cert-manager.yaml",
        }
    }

    /// Where upstream publishes the file for a release tag.
    pub fn upstream_url(self, version: &str) -> String {
        match self {
            ManifestFile::IngressNginxAws => format!(
                "https://raw.githubusercontent.com/kubernetes/ingress-nginx/{version}/deploy/static/provider/aws/deploy.yaml"
            ),
            ManifestFile::IngressNginxCloud => format!(
                "https://raw.githubusercontent.com/kubernetes/ingress-nginx/{version}/deploy/static/provider/cloud/deploy.yaml"
            ),
            ManifestFile::TigeraOperator => {
                format!(
                    "https://raw.githubusercontent.com/projectcalico/calico/{version}/manifests/tigera-operator.yaml"
                )
            }
            ManifestFile::CalicoOperatorCrds => {
                format!("https://raw.githubusercontent.com/projectcalico/calico/{version}/manifests/operator-crds.yaml")
            }
            ManifestFile::CertManager => {
                format!("https://github.com/cert-manager/cert-manager/releases/download/{version}/cert-manager.yaml")
            }
        }
    }

    /// The version installed when the platform spec names none.
    pub fn default_version(self) -> &'static str {
        use matih_spec::Addons;
        match self.addon() {
            "ingress-nginx" => Addons::DEFAULT_INGRESS_NGINX,
            "calico" => Addons::DEFAULT_CALICO,
            _ => Addons::DEFAULT_CERT_MANAGER,
        }
    }

    /// The version the platform spec pins for this file's add-on.
    pub fn version_in(self, addons: &matih_spec::Addons) -> &str {
        match self.addon() {
            "ingress-nginx" => &addons.ingress_nginx.version,
            "calico" => &addons.calico.version,
            _ => &addons.cert_manager.version,
        }
    }
}

impl fmt::Display for ManifestFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}'s {}", self.addon(), self.file_name())
    }
}

/// A release file whose sha256 matih-infra knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinned {
    pub file: ManifestFile,
    /// The release tag.
    pub version: &'static str,
    /// Lower-case hex sha256 of the file's bytes.
    pub sha256: &'static str,
    /// Size in bytes.
    pub size: u64,
}

impl Pinned {
    /// The add-on's directory name, e.g. `calico`.
    pub fn addon(&self) -> &'static str {
        self.file.addon()
    }

    /// Relative path in the layout, e.g. `calico/v3.32.1/tigera-operator.yaml`.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.file.addon(), self.version, self.file.file_name())
    }
}

/// The known digests. cert-manager's `cert-manager.yaml` is absent: it is a release asset whose
/// digest has not been recorded here, so it loads unverified.
pub const PINNED: &[Pinned] = &[
    Pinned {
        file: ManifestFile::IngressNginxAws,
        version: "controller-v1.15.1",
        sha256: "fa1f90396ba5d646ce3019c95c36c6457c80aa6bd8a97c3db0d15ed8e7c20a9b",
        size: 16620,
    },
    Pinned {
        file: ManifestFile::IngressNginxCloud,
        version: "controller-v1.15.1",
        sha256: "502fddca66b09c20dd48b6d0a792a9671cd663a3a0d2a8bda5ae990d13b6c5b2",
        size: 16384,
    },
    Pinned {
        file: ManifestFile::TigeraOperator,
        version: "v3.32.1",
        sha256: "f18e073794207d372606bc3ea6f8fd73972f86d6828f4ba666dfe0d4aa8ab07f",
        size: 19660,
    },
    Pinned {
        file: ManifestFile::CalicoOperatorCrds,
        version: "v3.32.1",
        sha256: "192f8b2d934ef24b62e86b7e1a6e1762d1c8af26a916f78057bc13fa5ed60f71",
        size: 3046956,
    },
];

/// The pinned digest of a file at a version, if matih-infra knows one.
pub fn pinned(file: ManifestFile, version: &str) -> Option<&'static Pinned> {
    PINNED.iter().find(|p| p.file == file && p.version == version)
}

/// One file at one version: what [`load`] fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRequest {
    file: ManifestFile,
    version: String,
}

impl ManifestRequest {
    /// Checks that `version` can name a release: it becomes a URL and a path segment, so it may
    /// hold only letters, digits, `.`, `_`, `+` and `-`, and may not start with `.` or `-`.
    pub fn new(file: ManifestFile, version: impl Into<String>) -> Result<Self, ManifestError> {
        let version = version.into();
        let reason = if version.is_empty() {
            Some("it is empty")
        } else if version.len() > 128 {
            Some("it is longer than 128 characters")
        } else if version.starts_with(['.', '-']) {
            Some("it starts with `.` or `-`")
        } else if !version.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)) {
            Some("it may hold only letters, digits, `.`, `_`, `+` and `-`")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ManifestError::InvalidVersion { file, version, reason }),
            None => Ok(ManifestRequest { file, version }),
        }
    }

    /// The file at the version installed when the platform spec names none.
    pub fn default_for(file: ManifestFile) -> Self {
        ManifestRequest { file, version: file.default_version().to_string() }
    }

    /// The file at the version the platform spec pins for its add-on.
    pub fn from_spec(file: ManifestFile, addons: &matih_spec::Addons) -> Result<Self, ManifestError> {
        Self::new(file, file.version_in(addons))
    }

    pub fn file(&self) -> ManifestFile {
        self.file
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Relative path in the layout: `<add-on>/<version>/<file>`.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.file.addon(), self.version, self.file.file_name())
    }

    /// The same path under `root`.
    fn path_under(&self, root: &Path) -> PathBuf {
        root.join(self.file.addon()).join(&self.version).join(self.file.file_name())
    }

    /// Upstream's URL for the file.
    pub fn upstream_url(&self) -> String {
        self.file.upstream_url(&self.version)
    }

    /// The digest it must match, if one is known.
    pub fn pinned(&self) -> Option<&'static Pinned> {
        pinned(self.file, &self.version)
    }
}

/// Where manifests are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Upstream's release URLs, cached in `cache_dir`.
    Upstream { cache_dir: PathBuf },
    /// A local directory laid out as `<add-on>/<version>/<file>`. Nothing is cached or downloaded.
    Dir(PathBuf),
    /// An HTTP(S) mirror laid out as `<base_url>/<add-on>/<version>/<file>`, cached in `cache_dir`.
    Mirror { base_url: String, cache_dir: PathBuf },
}

impl Source {
    /// From the environment: `MATIH_ADDONS_DIR` (a local directory), else `MATIH_ADDONS_MIRROR`
    /// (a mirror's base URL), else upstream. Downloads are cached in `MATIH_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/matih-infra/manifests`, else `~/.cache/matih-infra/manifests` (and, with
    /// no home directory at all, under the system's temporary directory). Empty variables count
    /// as unset.
    pub fn from_env() -> Source {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// [`Source::from_env`] with the variables looked up through `var` (for tests and callers
    /// that layer their own settings).
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Source {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        if let Some(dir) = var(ENV_ADDONS_DIR) {
            return Source::Dir(PathBuf::from(dir));
        }
        let cache_dir = if let Some(dir) = var(ENV_CACHE_DIR) {
            PathBuf::from(dir)
        } else if let Some(xdg) = var("XDG_CACHE_HOME") {
            PathBuf::from(xdg).join("matih-infra").join("manifests")
        } else if let Some(home) = var("HOME").or_else(|| var("USERPROFILE")) {
            PathBuf::from(home).join(".cache").join("matih-infra").join("manifests")
        } else {
            // No home at all (a bare container): still cache, somewhere that exists.
            std::env::temp_dir().join("matih-infra").join("manifests")
        };
        match var(ENV_ADDONS_MIRROR) {
            Some(url) => Source::Mirror { base_url: url.to_string_lossy().into_owned(), cache_dir },
            None => Source::Upstream { cache_dir },
        }
    }

    /// One line for the tool's output.
    pub fn describe(&self) -> String {
        match self {
            Source::Upstream { cache_dir } => {
                format!("add-on manifests from upstream release URLs, cached in {}", cache_dir.display())
            }
            Source::Dir(dir) => format!("add-on manifests from local directory {} ({ENV_ADDONS_DIR})", dir.display()),
            Source::Mirror { base_url, cache_dir } => format!(
                "add-on manifests from mirror {base_url} ({ENV_ADDONS_MIRROR}), cached in {}",
                cache_dir.display()
            ),
        }
    }

    /// Where `req` is downloaded from; `None` for a local directory.
    pub fn url_for(&self, req: &ManifestRequest) -> Option<String> {
        match self {
            Source::Upstream { .. } => Some(req.upstream_url()),
            Source::Dir(_) => None,
            Source::Mirror { base_url, .. } => Some(format!("{}/{}", base_url.trim_end_matches('/'), req.path())),
        }
    }

    /// The file `req` is read from (a local directory) or cached in.
    pub fn path_for(&self, req: &ManifestRequest) -> PathBuf {
        match self {
            Source::Upstream { cache_dir } | Source::Mirror { cache_dir, .. } => req.path_under(cache_dir),
            Source::Dir(dir) => req.path_under(dir),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Limits for downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// For the TCP connection to be established (per connection, redirects included).
    pub connect_timeout: Duration,
    /// For the whole download, redirects included.
    pub timeout: Duration,
    /// Redirects followed before giving up (GitHub's release assets take one).
    pub max_redirects: u32,
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
            max_redirects: 5,
            max_bytes: 64 << 20,
        }
    }
}

/// A loaded manifest file.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Relative path in the layout, e.g. `calico/v3.32.1/tigera-operator.yaml`.
    pub file: String,
    /// Where the bytes came from: the URL (also when served from the cache) or the local path.
    pub origin: String,
    /// Lower-case hex sha256 of the bytes.
    pub sha256: String,
    /// The bytes matched a pinned digest. False for versions without one.
    pub verified: bool,
    /// The cached copy, for downloaded files.
    pub cache_path: Option<PathBuf>,
    /// Read from the cache, without a download.
    pub from_cache: bool,
    /// The Kubernetes objects, in file order (`List` documents replaced by their items).
    pub objects: Vec<Value>,
}

impl Manifest {
    /// A line for the tool's output when the file could not be verified.
    pub fn unverified_note(&self) -> Option<String> {
        (!self.verified).then(|| {
            format!(
                "{} is not verified: matih-infra pins no sha256 for it (got sha256 {} from {})",
                self.file, self.sha256, self.origin
            )
        })
    }
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The version cannot name a release (it would escape the layout or the URL).
    #[error("`{version}` is not a usable release tag for {file}: {reason}")]
    InvalidVersion { file: ManifestFile, version: String, reason: &'static str },

    /// The local directory does not have the file.
    #[error(
        "{file} {version} is not in the local add-on directory: `{}` does not exist (upstream publishes it at {upstream_url})",
        path.display()
    )]
    Missing {
        file: ManifestFile,
        version: String,
        path: PathBuf,
        /// Where upstream publishes it.
        upstream_url: String,
        /// Versions of the add-on the directory does have.
        available: Vec<String>,
        /// cert-manager only: the directory has the CRDs (`crds/`) but not the release manifest.
        crds_only: bool,
    },

    /// A file could not be read.
    #[error("could not read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The cache could not be written. Nothing was cached; the download itself was fine.
    #[error("could not {op} `{}` in the manifest cache", path.display())]
    Cache {
        /// What was being done: "create directory", "write", "rename into place".
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The bytes do not match the pinned digest. After a bad cached copy this is the fresh
    /// download's verdict.
    #[error(
        "{}/{version}/{} from {origin} has sha256 {actual}, but matih-infra pins {file} {version} to sha256 {expected}",
        file.addon(),
        file.file_name()
    )]
    DigestMismatch {
        file: ManifestFile,
        version: String,
        /// The URL or local path the bytes came from.
        origin: String,
        expected: &'static str,
        actual: String,
        /// Which kind of source served them, for the hint.
        source_kind: SourceKind,
    },

    /// The server answered with an error status.
    #[error(
        "GET {url} answered {status} {reason}{}",
        requested.as_deref().map(|r| format!(" (redirected from {r})")).unwrap_or_default()
    )]
    Status {
        url: String,
        /// The URL first asked for, when a redirect led to `url`.
        requested: Option<String>,
        status: u16,
        reason: String,
    },

    /// No answer: connection refused, DNS, TLS handshake, a connection cut mid-body.
    #[error("GET {url} failed")]
    Request {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The download did not finish in time.
    #[error("GET {url} did not finish within {}s", after.as_secs_f64())]
    Timeout { url: String, after: Duration },

    /// A redirect that cannot be followed.
    #[error("GET {url} answered {status} with a redirect to `{location}` that cannot be followed: {reason}")]
    BadRedirect { url: String, status: u16, location: String, reason: String },

    /// Too many redirects.
    #[error("GET {url} redirected more than {limit} times (last to {last})")]
    TooManyRedirects { url: String, last: String, limit: u32 },

    /// The body is larger than [`FetchOptions::max_bytes`].
    #[error("GET {url}: the response is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },

    /// Not an absolute http:// or https:// URL (a mirror's base URL, usually).
    #[error("`{url}` is not a usable URL: {reason}")]
    BadUrl { url: String, reason: String },

    /// No root certificates to verify an https:// server with.
    #[error("could not load the system's TLS root certificates to fetch {url}")]
    TlsRoots {
        url: String,
        #[source]
        source: io::Error,
    },

    /// The bytes are not UTF-8 text.
    #[error("{origin} is not UTF-8 text (line {line}: invalid byte at offset {offset})")]
    NotUtf8 { origin: String, line: usize, offset: usize },

    /// YAML syntax error.
    #[error("{origin}:{line}:{column}: YAML syntax error: {message}")]
    Yaml { origin: String, line: usize, column: usize, message: String },

    /// Valid YAML, but not Kubernetes objects (a document that is not a mapping, an object
    /// without `kind`, a key that is a list, NaN, ...).
    #[error("{origin}:{line}:{column}: {problem}")]
    Invalid { origin: String, line: usize, column: usize, problem: String },
}

/// The kind of [`Source`] a file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Upstream,
    Dir,
    Mirror,
}

impl ManifestError {
    /// How to fix it, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        let air_gapped = format!(
            "without network access to upstream, set {ENV_ADDONS_MIRROR} to a mirror or {ENV_ADDONS_DIR} to a directory laid out as <add-on>/<version>/<file>"
        );
        match self {
            ManifestError::InvalidVersion { file, .. } => Some(format!(
                "set the add-on's version in the platform spec to a release tag as upstream spells it, e.g. `{}`",
                file.default_version()
            )),
            ManifestError::Missing { file, path, available, crds_only, .. } => {
                let mut hint = format!("download it to `{}`, unmodified", path.display());
                if *crds_only {
                    hint.push_str(&format!(
                        " (the `crds/` directory next to it is not a substitute: it has only cert-manager's CRDs, and {} is the release asset with the controller, webhook and cainjector)",
                        file.file_name()
                    ));
                }
                if !available.is_empty() {
                    hint.push_str(&format!(
                        "; the directory has {} {}, which the platform spec could pin instead",
                        file.addon(),
                        available.join(", ")
                    ));
                }
                hint.push_str(&format!(", or unset {ENV_ADDONS_DIR} to download from upstream"));
                Some(hint)
            }
            ManifestError::Read { path, source } => Some(match source.kind() {
                io::ErrorKind::PermissionDenied => format!("check the permissions of `{}`", path.display()),
                _ => format!("check that `{}` is a readable file", path.display()),
            }),
            ManifestError::Cache { path, .. } => Some(format!(
                "check that you can write to `{}`, or set {ENV_CACHE_DIR} to a writable directory",
                path.parent().unwrap_or(path).display()
            )),
            ManifestError::DigestMismatch { file, version, source_kind, origin, .. } => Some(match source_kind {
                SourceKind::Dir => format!(
                    "replace `{origin}` with an unmodified copy of {}; do not edit upstream manifests",
                    file.upstream_url(version)
                ),
                SourceKind::Mirror => format!(
                    "the mirror serves different bytes than upstream: replace {origin} on the mirror with an unmodified copy of {}",
                    file.upstream_url(version)
                ),
                SourceKind::Upstream => format!(
                    "the download does not match what matih-infra was tested with; if a proxy rewrites downloads, fetch {} another way into {ENV_ADDONS_DIR}; if upstream moved the tag, report it and do not install",
                    file.upstream_url(version)
                ),
            }),
            ManifestError::Status { status: 404, .. } => Some(format!(
                "check that the add-on version in the platform spec is a published release tag, and for a mirror that it holds <add-on>/<version>/<file>; {air_gapped}"
            )),
            ManifestError::Status { status, .. } if *status >= 500 || *status == 429 => {
                Some("the server is failing or rate-limiting; run the command again later".to_string())
            }
            ManifestError::Status { .. } => None,
            ManifestError::Request { .. } | ManifestError::Timeout { .. } => {
                Some(format!("check the network and DNS from this machine; {air_gapped}"))
            }
            ManifestError::BadRedirect { .. } | ManifestError::TooManyRedirects { .. } => {
                Some(format!("the server redirects somewhere matih-infra will not follow; {air_gapped}"))
            }
            ManifestError::TooLarge { url, .. } => Some(format!("{url} is not an add-on manifest; check the URL")),
            ManifestError::BadUrl { .. } => {
                Some(format!("set {ENV_ADDONS_MIRROR} to an absolute URL such as https://mirror.example.com/addons"))
            }
            ManifestError::TlsRoots { .. } => Some(
                "install the system's CA certificates (e.g. the ca-certificates package) or point SSL_CERT_FILE at a PEM bundle"
                    .to_string(),
            ),
            ManifestError::NotUtf8 { origin, .. }
            | ManifestError::Yaml { origin, .. }
            | ManifestError::Invalid { origin, .. } => Some(if origin.contains("://") {
                format!("{origin} did not serve an add-on manifest; check the URL (a mirror's layout or a login page?)")
            } else {
                format!("`{origin}` is not an unmodified upstream manifest; replace it with the upstream file")
            }),
        }
    }
}

/// Multi-document YAML to Kubernetes objects as JSON, typed the way `kubectl apply -f` types
/// them; `origin` (a URL or path) is named in errors, which carry the line and column. See the
/// `yaml` module's docs for the rules.
pub fn parse_documents(text: &str, origin: &str) -> Result<Vec<Value>, ManifestError> {
    yaml::parse(text, origin)
}

/// Loads one file from `source` with the default [`FetchOptions`].
pub async fn load(source: &Source, req: &ManifestRequest) -> Result<Manifest, ManifestError> {
    load_with(source, req, &FetchOptions::default()).await
}

/// Loads one file from `source`: reads it (from the directory, the cache or the network),
/// verifies it when its digest is pinned, parses it, and caches a download.
pub async fn load_with(source: &Source, req: &ManifestRequest, opts: &FetchOptions) -> Result<Manifest, ManifestError> {
    let path = source.path_for(req);
    let Some(url) = source.url_for(req) else {
        let req = req.clone();
        return blocking(move || {
            let bytes = read_local(&req, &path)?;
            let origin = path.display().to_string();
            let checked = check(&req, bytes, &origin, SourceKind::Dir)?;
            Ok(checked.into_manifest(&req, origin, None, false))
        })
        .await;
    };
    let kind = if matches!(source, Source::Mirror { .. }) { SourceKind::Mirror } else { SourceKind::Upstream };
    fetch::http_uri(&url)?;

    // The cache first: used when it still verifies and parses; otherwise downloaded again, once.
    let cached = {
        let (req, path, url) = (req.clone(), path.clone(), url.clone());
        blocking(move || -> Result<Option<Manifest>, ManifestError> {
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(ManifestError::Read { path, source }),
            };
            // A bad cached copy is not an error yet: the download below replaces it.
            Ok(check(&req, bytes, &path.display().to_string(), kind)
                .ok()
                .map(|checked| checked.into_manifest(&req, url, Some(path), true)))
        })
        .await?
    };
    if let Some(manifest) = cached {
        return Ok(manifest);
    }

    let bytes = fetch::download(&url, opts).await?;
    let req = req.clone();
    blocking(move || {
        let checked = check(&req, bytes, &url, kind)?;
        write_atomic(&path, &checked.bytes)?;
        Ok(checked.into_manifest(&req, url, Some(path), false))
    })
    .await
}

/// Bytes that verified (or have no pinned digest) and parsed.
struct Checked {
    bytes: Vec<u8>,
    sha256: String,
    verified: bool,
    objects: Vec<Value>,
}

impl Checked {
    fn into_manifest(
        self,
        req: &ManifestRequest,
        origin: String,
        cache: Option<PathBuf>,
        from_cache: bool,
    ) -> Manifest {
        Manifest {
            file: req.path(),
            origin,
            sha256: self.sha256,
            verified: self.verified,
            cache_path: cache,
            from_cache,
            objects: self.objects,
        }
    }
}

/// Verifies `bytes` against the pinned digest, if any, and parses them.
fn check(req: &ManifestRequest, bytes: Vec<u8>, origin: &str, kind: SourceKind) -> Result<Checked, ManifestError> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let pin = req.pinned();
    if let Some(pin) = pin
        && pin.sha256 != sha256
    {
        return Err(ManifestError::DigestMismatch {
            file: req.file,
            version: req.version.clone(),
            origin: origin.to_string(),
            expected: pin.sha256,
            actual: sha256,
            source_kind: kind,
        });
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        ManifestError::NotUtf8 { origin: origin.to_string(), line, offset }
    })?;
    let objects = parse_documents(text, origin)?;
    Ok(Checked { sha256, verified: pin.is_some(), objects, bytes })
}

/// Reads the file from a local directory; a missing file says what to put there.
fn read_local(req: &ManifestRequest, path: &Path) -> Result<Vec<u8>, ManifestError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let version_dir = path.parent().unwrap_or(path);
            let addon_dir = version_dir.parent().unwrap_or(version_dir);
            let mut available: Vec<String> = std::fs::read_dir(addon_dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|entry| entry.path().join(req.file.file_name()).is_file())
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect();
            available.sort();
            Err(ManifestError::Missing {
                file: req.file,
                version: req.version.clone(),
                path: path.to_path_buf(),
                upstream_url: req.upstream_url(),
                available,
                crds_only: req.file == ManifestFile::CertManager && version_dir.join("crds").is_dir(),
            })
        }
        Err(source) => Err(ManifestError::Read { path: path.to_path_buf(), source }),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced and renamed
/// into place, so a reader never sees half a file (concurrent writers each rename a whole one).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ManifestError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| ManifestError::Cache {
        op: "create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(ManifestError::Cache { op: "write", path: tmp, source });
    }
    if let Err(source) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ManifestError::Cache { op: "rename into place", path: path.to_path_buf(), source });
    }
    Ok(())
}

/// Runs file reads, hashing and parsing (tens of milliseconds for the largest file) off the
/// async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down, and then nobody is waiting for the answer.
        Err(e) => panic!("manifest loading was cancelled: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_that_would_escape_the_layout_are_refused() {
        for bad in ["", "../../etc", "v1/../x", ".hidden", "-v1", "v1 2", "v1?x=1"] {
            let err = ManifestRequest::new(ManifestFile::TigeraOperator, bad).unwrap_err();
            assert!(matches!(err, ManifestError::InvalidVersion { .. }), "{bad}: {err}");
        }
        for good in ["v3.32.1", "controller-v1.15.1", "v1.21.1+build_2"] {
            assert!(ManifestRequest::new(ManifestFile::TigeraOperator, good).is_ok(), "{good}");
        }
    }

    #[test]
    fn environment_picks_the_source_and_cache() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
        };
        assert_eq!(
            Source::from_vars(env(&[("HOME", "/home/u")])),
            Source::Upstream { cache_dir: "/home/u/.cache/matih-infra/manifests".into() }
        );
        assert_eq!(
            Source::from_vars(env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")])),
            Source::Upstream { cache_dir: "/xdg/matih-infra/manifests".into() }
        );
        assert_eq!(
            Source::from_vars(env(&[
                ("XDG_CACHE_HOME", "/xdg"),
                (ENV_CACHE_DIR, "/c"),
                (ENV_ADDONS_MIRROR, "http://m/")
            ])),
            Source::Mirror { base_url: "http://m/".into(), cache_dir: "/c".into() }
        );
        // The directory wins over the mirror; empty values count as unset.
        assert_eq!(
            Source::from_vars(env(&[(ENV_ADDONS_DIR, "/addons"), (ENV_ADDONS_MIRROR, "http://m")])),
            Source::Dir("/addons".into())
        );
        assert_eq!(
            Source::from_vars(env(&[(ENV_ADDONS_DIR, ""), (ENV_CACHE_DIR, ""), ("HOME", "/h")])),
            Source::Upstream { cache_dir: "/h/.cache/matih-infra/manifests".into() }
        );
    }

    #[test]
    fn mirror_urls_follow_the_layout() {
        let src = Source::Mirror { base_url: "http://mirror.local/addons/".into(), cache_dir: "/c".into() };
        let req = ManifestRequest::default_for(ManifestFile::CalicoOperatorCrds);
        assert_eq!(src.url_for(&req).unwrap(), "http://mirror.local/addons/calico/v3.32.1/operator-crds.yaml");
        assert_eq!(src.path_for(&req), PathBuf::from("/c/calico/v3.32.1/operator-crds.yaml"));
    }
}
