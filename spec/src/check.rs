//! Semantic rules: each takes decoded, well-typed values and reports findings at paths relative
//! to the value it was given; the decoder turns those paths into file positions.
//!
//! The rules encode what the clouds and Kubernetes would reject later (often minutes into an
//! apply), and what the platform's own naming needs. They do not call any cloud: quotas, region
//! names and machine types are checked by the provider at plan time.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::diag::Problem;
use crate::model::{
    Addons, AksEntraId, AksNetwork, AksSpec, CloudKind, EksEndpoint, EksNetwork, GkeNetwork, GkeSpec, NetworkPolicies,
    NodePool, Platform, StateBackend, StateSpec, TenantSpec, subnet_bits, tenth_address,
};
use crate::naming::{DATA_PLANE, PLATFORM_NAMESPACES, SERVICE_NAMESPACES};

/// Longest tenant slug (and platform name): derived names such as `nginx-tenant-<slug>` and
/// cloud resource names built from it must stay within the clouds' limits.
pub(crate) const MAX_SLUG_LEN: usize = 32;

/// The longest tenant display name, in characters.
const MAX_DISPLAY_NAME: usize = 200;

/// Names under the platform zone that are platform records, not tenants.
/// (`ingress` is the name shared tenants' CNAMEs point at.)
pub(crate) const RESERVED_SLUGS: &[&str] = &["api", "ingress", "www", "prod", "staging", "dev", "test"];

/// Ranges AKS reserves for itself; the service CIDR must not overlap them.
const AKS_RESERVED: &[&str] = &["169.254.0.0/16", "172.30.0.0/16", "172.31.0.0/16", "192.0.2.0/24"];

/// The private ranges an EKS service CIDR must come from.
const RFC1918: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// A finding at a path below the node it was checked against.
#[derive(Debug)]
pub(crate) struct Finding {
    /// Dotted path relative to the checked node: `vpc_cidr`, `node_pools[1].name`, `` (the node).
    pub path: String,
    /// Point at the key rather than its value (for problems about a whole section).
    pub on_key: bool,
    pub problem: Problem,
    /// Secondary locations in the same file: (relative path, message).
    pub notes: Vec<(String, String)>,
}

/// Findings of the rules run against one node.
#[derive(Debug, Default)]
pub(crate) struct Findings(pub Vec<Finding>);

impl Findings {
    fn at(&mut self, path: impl Into<String>, problem: Problem) -> &mut Finding {
        self.0.push(Finding { path: path.into(), on_key: false, problem, notes: Vec::new() });
        self.0.last_mut().expect("just pushed")
    }

    fn at_key(&mut self, path: impl Into<String>, problem: Problem) -> &mut Finding {
        let f = self.at(path, problem);
        f.on_key = true;
        f
    }
}

impl Finding {
    fn note(&mut self, path: impl Into<String>, message: impl Into<String>) -> &mut Self {
        self.notes.push((path.into(), message.into()));
        self
    }
}

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("constant CIDR")
}

// ---------------------------------------------------------------------------------------------
// Names

/// Why `s` is not a DNS label (RFC 1123: lower-case letters, digits and `-`, not at either end)
/// of at most `max` characters, or `None` when it is one.
pub(crate) fn dns_label_problem(s: &str, max: usize) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    let len = s.chars().count();
    if len > max {
        return Some(format!("is {len} characters long; the limit is {max}"));
    }
    if s.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("contains upper-case letters".into());
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Some(format!("contains `{c}`; only a-z, 0-9 and `-` are allowed"));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("starts or ends with `-`".into());
    }
    None
}

/// A suggestion for a name that failed [`dns_label_problem`]: lower-cased, other characters
/// turned into `-`, trimmed to `max`.
fn label_suggestion(s: &str, max: usize) -> String {
    let mapped: String = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .collect();
    let mut out = String::new();
    for c in mapped.chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(max).collect();
    trimmed.trim_end_matches('-').to_string()
}

// ---------------------------------------------------------------------------------------------
// State

/// Why `s` breaks a bucket's naming rules (S3 and Cloud Storage share the core of them:
/// 3–63 characters, lower-case letters, digits, `.` and `-`, a letter or digit at each end;
/// Cloud Storage also allows `_`), or `None`.
fn bucket_problem(s: &str, underscore: bool) -> Option<String> {
    let len = s.chars().count();
    if !(3..=63).contains(&len) {
        return Some(format!("is {len} characters long; a bucket name has 3 to 63"));
    }
    if let Some(c) = s.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-' || (underscore && *c == '_'))
    }) {
        let allowed = if underscore { "a-z, 0-9, `.`, `-` and `_`" } else { "a-z, 0-9, `.` and `-`" };
        return Some(format!("contains `{c}`; only {allowed} are allowed"));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !alnum(s.chars().next()) || !alnum(s.chars().last()) {
        return Some("must start and end with a letter or digit".into());
    }
    if s.contains("..") {
        return Some("contains `..`".into());
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Some("is an IP address".into());
    }
    None
}

pub(crate) fn state(s: &StateSpec, out: &mut Findings) {
    match &s.backend {
        StateBackend::Local => {}
        StateBackend::S3 { bucket, region } => {
            if let Some(why) = bucket_problem(bucket, false) {
                out.at(
                    "bucket",
                    Problem::new(format!("S3 bucket name `{bucket}` {why}"), "not a bucket name")
                        .help("name the bucket holding state, e.g. `acme-matih-state`"),
                );
            }
            if let Some(r) = region
                && let Some(why) = dns_label_problem(r, 32)
            {
                out.at(
                    "region",
                    Problem::new(format!("region `{r}` {why}"), "not a region")
                        .help("the bucket's AWS region, e.g. `us-east-1`; omit it to use the AWS configuration's"),
                );
            }
        }
        StateBackend::Gcs { bucket } => {
            if let Some(why) = bucket_problem(bucket, true) {
                out.at(
                    "bucket",
                    Problem::new(format!("Cloud Storage bucket name `{bucket}` {why}"), "not a bucket name")
                        .help("name the bucket holding state, e.g. `acme-matih-state`"),
                );
            } else if bucket.starts_with("goog") {
                out.at(
                    "bucket",
                    Problem::new(format!("Cloud Storage bucket name `{bucket}` starts with `goog`"), "reserved")
                        .help("Cloud Storage reserves names starting with `goog`; choose another"),
                );
            }
        }
        StateBackend::AzBlob { account, container } => {
            let len = account.chars().count();
            if !(3..=24).contains(&len) || !account.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
                out.at(
                    "account",
                    Problem::new(
                        format!("storage account name `{account}` is not 3 to 24 lower-case letters and digits"),
                        "not a storage account name",
                    )
                    .help("the storage account's name as the portal shows it, e.g. `acmematihstate`"),
                );
            }
            let why = match dns_label_problem(container, 63) {
                Some(why) => Some(why),
                None if container.chars().count() < 3 => Some("is shorter than 3 characters".to_string()),
                None if container.contains("--") => Some("contains `--`".to_string()),
                None => None,
            };
            if let Some(why) = why {
                out.at(
                    "container",
                    Problem::new(format!("container name `{container}` {why}"), "not a container name")
                        .help("3 to 63 lower-case letters, digits and single `-`, e.g. `matih-state`"),
                );
            }
        }
    }
    if let Some(p) = &s.prefix {
        let why = if p.is_empty() || p.chars().count() > 256 {
            Some(format!("is {} characters long; a prefix has 1 to 256", p.chars().count()))
        } else if p.starts_with('/') || p.ends_with('/') {
            Some("starts or ends with `/`".to_string())
        } else if let Some(c) = p.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_./".contains(*c))) {
            Some(format!("contains `{}`; only letters, digits, `-`, `_`, `.` and `/` are allowed", c.escape_default()))
        } else if p.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            Some("has an empty, `.` or `..` segment".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            out.at(
                "prefix",
                Problem::new(format!("state prefix `{}` {why}", p.escape_default()), "not a key prefix")
                    .help("a path inside the bucket without slashes at either end, e.g. `platform/matih`"),
            );
        }
    }
}

/// Why `s` is not a lower-case DNS name of at least two labels, or `None`.
pub(crate) fn dns_name_problem(s: &str) -> Option<String> {
    if s.ends_with('.') {
        return Some("ends with `.`; write the name without the trailing dot".into());
    }
    if s.len() > 253 {
        return Some(format!("is {} characters long; a DNS name has at most 253", s.len()));
    }
    let labels: Vec<&str> = s.split('.').collect();
    if labels.len() < 2 {
        return Some("has a single label; it needs at least two, e.g. `matih.ai`".into());
    }
    for label in &labels {
        if let Some(why) = dns_label_problem(label, 63) {
            return Some(format!("has a label `{label}` that {why}"));
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Some("ends in an all-numeric label, which no top-level domain is".into());
    }
    None
}

pub(crate) fn platform(p: &Platform, out: &mut Findings) {
    if let Some(why) = dns_label_problem(&p.name, MAX_SLUG_LEN) {
        out.at(
            "name",
            Problem::new(format!("platform name `{}` {why}", p.name), "not a DNS label").help(format!(
                "the name prefixes cloud resource names, so it must be a DNS label of at most {MAX_SLUG_LEN} \
             characters, e.g. `{}`",
                label_suggestion(&p.name, MAX_SLUG_LEN)
            )),
        );
    }
    if let Some(why) = dns_name_problem(&p.domain) {
        let lower = p.domain.to_ascii_lowercase();
        let help = if lower != p.domain && dns_name_problem(&lower).is_none() {
            format!("write it in lower case: `{lower}`")
        } else {
            "give the platform's DNS domain, lower case with at least two labels, e.g. `matih.ai`".to_string()
        };
        out.at("domain", Problem::new(format!("domain `{}` {why}", p.domain), "not a valid domain").help(help));
    }
    if let Some(why) = dns_label_problem(&p.environment, 63) {
        out.at(
            "environment",
            Problem::new(format!("environment `{}` {why}", p.environment), "not a DNS label").help(format!(
                "`prod`, or a DNS label such as `staging` (it becomes the zone `<environment>.{}`)",
                p.domain
            )),
        );
    } else if p.environment == "production" {
        out.at(
            "environment",
            Problem::new(
                "environment `production` would get its own zone `production.<domain>`",
                "did you mean `prod`?",
            )
            .help("write `prod` for the production environment: it serves the platform domain itself"),
        );
    } else if matches!(p.environment.as_str(), "api" | "ingress" | "www") {
        out.at(
            "environment",
            Problem::new(
                format!("environment `{}` collides with the platform record of that name", p.environment),
                "reserved",
            )
            .help("pick another name, e.g. `staging`"),
        );
    }
    if let Some(why) = email_problem(&p.acme_email) {
        out.at(
            "acme_email",
            Problem::new(format!("acme_email `{}` {why}", p.acme_email), "not an e-mail address").help(
                "give a mailbox the team reads, e.g. `platform-team@matih.ai`: \
                     Let's Encrypt sends expiry warnings there",
            ),
        );
    }
}

fn email_problem(s: &str) -> Option<String> {
    let Some((local, domain)) = s.split_once('@') else {
        return Some("has no `@`".into());
    };
    if domain.contains('@') {
        return Some("has more than one `@`".into());
    }
    if local.is_empty() || local.len() > 64 || local.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("has an empty or malformed part before the `@`".into());
    }
    dns_name_problem(&domain.to_ascii_lowercase()).map(|why| format!("has a domain part that {why}"))
}

/// `1.NN`: the minor version only; the cloud picks the patch release.
pub(crate) fn kubernetes_version(v: &str, out: &mut Findings) {
    let ok = v.strip_prefix("1.").is_some_and(|m| m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        return;
    }
    let help = if v.matches('.').count() == 2 {
        let minor: String = v.rsplit_once('.').map(|x| x.0).unwrap_or(v).to_string();
        format!("give the minor version only, e.g. \"{minor}\"; the cloud picks the patch release")
    } else if v.strip_prefix("1.").is_some_and(|m| m.len() == 1) {
        format!("did you mean \"{v}0\"? Quote the version: an unquoted 1.30 is the number 1.3 to most YAML tools")
    } else {
        "write the Kubernetes minor version as a quoted string, e.g. \"1.33\"".to_string()
    };
    out.at(
        "kubernetes_version",
        Problem::new(format!("kubernetes_version `{v}` is not of the form `1.NN`"), "expected e.g. \"1.33\"")
            .help(help),
    );
}

/// Every configured cloud's `kubernetes_version` against the floors of the add-ons the tool
/// installs there (see [`crate::floors`]).
pub(crate) fn version_floors(spec: &crate::PlatformSpec, out: &mut Findings) {
    for cloud in spec.clouds.configured() {
        let Some(view) = spec.cluster(cloud) else { continue };
        let (Some(have), Some(floor)) =
            (crate::floors::minor(view.kubernetes_version), crate::floors::floor(spec, cloud))
        else {
            continue;
        };
        if have < floor.minor {
            out.at(
                format!("clouds.{cloud}.kubernetes_version"),
                Problem::new(
                    format!(
                        "kubernetes_version {} is older than {} {} supports (1.{} or newer): {}",
                        view.kubernetes_version, floor.addon, floor.version, floor.minor, floor.because
                    ),
                    format!("needs 1.{} or newer", floor.minor),
                )
                .help(format!(
                    "use \"1.{}\" or newer (create the cluster at that version or upgrade it first), or pin an older {} release under `addons.{}.version`",
                    floor.minor, floor.addon, floor.addon
                )),
            );
        }
    }
}

/// GKE names its cluster `<platform>-<environment>`, and allows at most 40 characters.
pub(crate) fn gke_names(spec: &crate::PlatformSpec, out: &mut Findings) {
    const GKE_CLUSTER_NAME_MAX: usize = 40;
    if spec.clouds.gke.is_none() {
        return;
    }
    let p = &spec.platform;
    let name = format!("{}-{}", p.name, p.environment);
    if name.len() > GKE_CLUSTER_NAME_MAX {
        out.at(
            "platform.environment",
            Problem::new(
                format!("the GKE cluster would be named `{name}` ({} characters); GKE allows {GKE_CLUSTER_NAME_MAX}", name.len()),
                "too long for GKE",
            )
            .help("shorten platform.name or platform.environment: the cluster and every cloud resource are named `<name>-<environment>-…`"),
        );
    }
}

/// Region or location names: lower-case letters, digits and `-`.
pub(crate) fn region(key: &str, v: &str, example: &str, out: &mut Findings) {
    let ok = !v.is_empty()
        && v.len() <= 32
        && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if !ok {
        out.at(
            key,
            Problem::new(format!("{key} `{}` is not a region name", shorten(v)), "not a region")
                .help(format!("use the cloud's own lower-case name, e.g. `{example}`")),
        );
    }
}

/// The most node pools one cluster may have (AKS allows 100 per cluster; EKS starts at 30
/// managed node groups, a quota that can be raised).
pub(crate) const MAX_NODE_POOLS: usize = 100;

/// The most nodes one pool may scale to: AKS's and GKE's 1,000 per pool (per zone on GKE), above
/// EKS's 450 per managed node group.
pub(crate) const MAX_POOL_NODES: u32 = 1000;

pub(crate) fn node_pools(cloud: CloudKind, pools: &[NodePool], out: &mut Findings) {
    if pools.is_empty() {
        out.at(
            "node_pools",
            Problem::new(format!("{cloud} has no node pools"), "empty")
                .help("add at least one pool, e.g. `- { name: system, machine_type: <type>, min: 2, max: 4 }`"),
        );
    }
    if pools.len() > MAX_NODE_POOLS {
        out.at(
            "node_pools",
            Problem::new(
                format!("{cloud} lists {} node pools; a cluster has at most {MAX_NODE_POOLS}", pools.len()),
                "too many",
            )
            .help("a handful of pools (system, workers, a few special ones) covers a platform: merge pools that differ only in size"),
        );
    }
    let mut first_named: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, pool) in pools.iter().enumerate() {
        let at = |field: &str| format!("node_pools[{i}].{field}");
        if let Some(why) = node_pool_name_problem(cloud, &pool.name) {
            let help = match cloud {
                CloudKind::Aks => {
                    "AKS node pool names are 1 to 12 lower-case letters and digits, starting with a letter, \
                     e.g. `system`"
                }
                CloudKind::Gke => "use a DNS label of at most 40 characters, e.g. `system`",
                CloudKind::Eks => "use a DNS label of at most 63 characters, e.g. `system`",
            };
            let message = format!("node pool name `{}` {why}", pool.name);
            out.at(at("name"), Problem::new(message, "invalid name").help(help));
        }
        if let Some(&first) = first_named.get(pool.name.as_str()) {
            out.at(
                at("name"),
                Problem::new(format!("node pool name `{}` is used twice", pool.name), "duplicate name")
                    .help("give every pool of a cluster its own name"),
            )
            .note(format!("node_pools[{first}].name"), "first used here");
        } else {
            first_named.insert(&pool.name, i);
        }
        if let Some(why) = machine_type_problem(cloud, &pool.machine_type) {
            let example = match cloud {
                CloudKind::Eks => "an EC2 instance type, `<family>.<size>`, e.g. `m6i.large`",
                CloudKind::Gke => "a Compute Engine machine type, e.g. `e2-standard-4`",
                CloudKind::Aks => "an Azure VM size, e.g. `Standard_D4s_v5`",
            };
            out.at(
                at("machine_type"),
                Problem::new(format!("machine_type `{}` {why}", shorten(&pool.machine_type)), "not a machine type")
                    .help(format!("give {example}")),
            );
        }
        if pool.max > MAX_POOL_NODES {
            out.at(
                at("max"),
                Problem::new(
                    format!("node pool max ({}) is above the {MAX_POOL_NODES} nodes a pool can have", pool.max),
                    "too large",
                )
                .help(format!("set max to {MAX_POOL_NODES} or less; add another pool for more nodes")),
            );
        } else if pool.max == 0 {
            out.at(
                at("max"),
                Problem::new("node pool max is 0, so the pool can never have a node", "must be at least 1")
                    .help("set max to 1 or more, or remove the pool"),
            );
        } else if pool.min > pool.max {
            out.at(
                at("min"),
                Problem::new(format!("node pool min ({}) is above max ({})", pool.min, pool.max), "min > max")
                    .help("lower min or raise max so that min <= max"),
            )
            .note(at("max"), "max is set here");
        }
        if let Some(d) = pool.desired
            && pool.min <= pool.max
            && (d < pool.min || d > pool.max)
        {
            out.at(
                at("desired"),
                Problem::new(
                    format!("node pool desired ({d}) is outside [min, max] = [{}, {}]", pool.min, pool.max),
                    "out of range",
                )
                .help(format!(
                    "set desired between {} and {}, or remove it to let the autoscaler decide",
                    pool.min, pool.max
                )),
            );
        }
    }
}

/// What is wrong with a machine type for `cloud`, by the shape each cloud's names have.
fn machine_type_problem(cloud: CloudKind, t: &str) -> Option<String> {
    if t.is_empty() || t.len() > 64 {
        return Some("is empty or longer than 64 characters".into());
    }
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let ok = match cloud {
        // <family>.<size>: m6i.large, c7gn.16xlarge, u7in-16tb.224xlarge
        CloudKind::Eks => t.split_once('.').is_some_and(|(family, size)| {
            family.starts_with(|c: char| c.is_ascii_lowercase())
                && family.chars().all(lower)
                && !size.is_empty()
                && size.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        }),
        // e2-standard-4, n2-custom-4-16384, custom-8-32768-ext
        CloudKind::Gke => t.starts_with(|c: char| c.is_ascii_lowercase()) && t.chars().all(lower) && !t.ends_with('-'),
        // Standard_D4s_v5, Standard_NC24ads_A100_v4, Basic_A2
        CloudKind::Aks => ["Standard_", "Basic_"].iter().any(|p| {
            t.strip_prefix(p)
                .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        }),
    };
    let article = if cloud == CloudKind::Gke { "a" } else { "an" };
    (!ok).then(|| format!("is not {article} {} machine type", cloud.as_str().to_uppercase()))
}

/// A value cut to a length fit for a message.
fn shorten(v: &str) -> String {
    match v.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &v[..i]),
        None => v.to_string(),
    }
}

fn node_pool_name_problem(cloud: CloudKind, name: &str) -> Option<String> {
    let max = match cloud {
        CloudKind::Eks => 63,
        CloudKind::Gke => 40,
        CloudKind::Aks => 12,
    };
    if let Some(why) = dns_label_problem(name, max) {
        return Some(why);
    }
    if cloud == CloudKind::Aks {
        if name.contains('-') {
            return Some("contains `-`, which AKS does not allow in pool names".into());
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Some("does not start with a letter".into());
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Networks

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Why `ip` cannot be the cluster DNS service IP of `service`, or `None`.
fn dns_ip_problem(ip: Ipv4Addr, service: Ipv4Net) -> Option<String> {
    if !service.contains(&ip) {
        Some(format!("is outside the service range {service}"))
    } else if ip == service.network() {
        Some(format!("is the network address of the service range {service}"))
    } else if u32::from(ip) == u32::from(service.network()) + 1 {
        Some(format!(
            "is the first address of the service range {service}, which Kubernetes gives the `kubernetes` API service"
        ))
    } else {
        None
    }
}

/// EKS: Amazon VPC CNI gives pods VPC IPs, so the VPC must be big enough for the subnets.
pub(crate) fn eks_network(n: &EksNetwork, out: &mut Findings) {
    let vpc = n.vpc_cidr;
    let vpc_prefix_ok = (16..=24).contains(&vpc.prefix_len());
    if !vpc_prefix_ok {
        out.at(
            "vpc_cidr",
            Problem::new(
                format!("vpc_cidr {vpc} is a /{}; EKS VPCs here are /16 to /24", vpc.prefix_len()),
                "prefix out of range",
            )
            .help("pods take VPC IPs with the Amazon VPC CNI, so prefer a large VPC such as a /16, e.g. 10.0.0.0/16"),
        );
    }
    let az = n.availability_zones;
    if !(2..=6).contains(&az) {
        out.at(
            "availability_zones",
            Problem::new(format!("availability_zones is {az}; EKS needs 2 to 6"), "must be 2..=6")
                .help("EKS needs subnets in at least two zones; 3 is the usual choice"),
        );
    } else if vpc_prefix_ok {
        let bits = subnet_bits(az);
        let subnet_prefix = vpc.prefix_len() + bits;
        if subnet_prefix > 24 {
            let slices = 1u32 << bits;
            let help = format!(
                "{az} zones need {} subnets (one public and one private per zone), cut as {slices} equal \
                 slices ({bits} prefix bits); for each to be at least a /24 the VPC must be a /{} or larger, \
                 e.g. a /16",
                2 * u32::from(az),
                24 - bits
            );
            let message = format!(
                "vpc_cidr {vpc} is too small for {az} availability zones: its {} subnets would be /{subnet_prefix}",
                2 * u32::from(az)
            );
            out.at("vpc_cidr", Problem::new(message, "too small").help(help))
                .note("availability_zones", "sets the number of subnets");
        }
    }

    let svc = n.service_cidr;
    if !RFC1918.iter().any(|r| net(r).contains(&svc)) {
        out.at(
            "service_cidr",
            Problem::new(format!("service_cidr {svc} is not inside a private range"), "not private").help(
                "EKS takes the service range from 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, e.g. 172.20.0.0/16",
            ),
        );
    } else if !(12..=24).contains(&svc.prefix_len()) {
        out.at(
            "service_cidr",
            Problem::new(
                format!("service_cidr {svc} is a /{}; EKS accepts /12 to /24", svc.prefix_len()),
                "prefix out of range",
            )
            .help("use e.g. a /16 such as 172.20.0.0/16"),
        );
    }
    if overlaps(vpc, svc) {
        let help = format!(
            "service IPs must not collide with node and pod IPs in the VPC; pick a range outside {vpc}, \
             e.g. 172.20.0.0/16"
        );
        out.at(
            "service_cidr",
            Problem::new(format!("service_cidr {svc} overlaps vpc_cidr {vpc}"), "overlaps the VPC").help(help),
        )
        .note("vpc_cidr", "the VPC range");
    }
    if let Some(ip) = n.cluster_dns_ip {
        dns_ip("cluster_dns_ip", ip, svc, out);
    }
}

/// The cluster DNS service IP must be a usable address of the service range.
fn dns_ip(key: &str, ip: Ipv4Addr, service: Ipv4Net, out: &mut Findings) {
    if let Some(why) = dns_ip_problem(ip, service) {
        let help = format!(
            "pick an address inside service_cidr {service} past its first host, e.g. {} \
             (or remove the key to use that default)",
            tenth_address(service)
        );
        out.at(key, Problem::new(format!("{key} {ip} {why}"), "not usable").help(help))
            .note("service_cidr", "the service range");
    }
}

/// EKS API endpoint access; checked against the cluster node (paths `endpoint.*`).
pub(crate) fn eks_endpoint(e: &EksEndpoint, out: &mut Findings) {
    if !e.public_access && !e.private_access {
        out.at(
            "endpoint.public_access",
            Problem::new("the EKS API endpoint has neither public nor private access", "no access")
                .help("set public_access or private_access (or both) to true"),
        );
    }
    if e.public_access && e.public_access_cidrs.is_empty() {
        out.at(
            "endpoint.public_access_cidrs",
            Problem::new("public_access is on but public_access_cidrs is empty", "empty").help(
                "list the source ranges allowed on the public endpoint, e.g. [0.0.0.0/0], or set public_access: false",
            ),
        );
    }
}

/// GKE: the project ID format (checked against the cluster node).
pub(crate) fn gke(g: &GkeSpec, out: &mut Findings) {
    let p = &g.project;
    let ok = (6..=30).contains(&p.len())
        && p.starts_with(|c: char| c.is_ascii_lowercase())
        && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !p.ends_with('-');
    if !ok {
        out.at(
            "project",
            Problem::new(format!("project `{p}` is not a GCP project ID"), "not a project ID").help(
                "a project ID is 6 to 30 lower-case letters, digits and `-`, starting with a letter, e.g. `matih-prod` \
                 (the ID, not the display name)",
            ),
        );
    }
}

/// GKE VPC-native: the subnet and its two alias-IP secondary ranges must be disjoint.
pub(crate) fn gke_network(n: &GkeNetwork, out: &mut Findings) {
    if n.master_cidr.prefix_len() != 28 {
        out.at(
            "master_cidr",
            Problem::new(format!("master_cidr {} is not a /28", n.master_cidr), "not a /28")
                .help("GKE puts the control plane's private endpoint in a /28 of its own, e.g. 172.16.0.0/28"),
        );
    }
    let ranges = [
        ("subnet_cidr", n.subnet_cidr),
        ("pods_cidr", n.pods_cidr),
        ("services_cidr", n.services_cidr),
        ("master_cidr", n.master_cidr),
    ];
    for (j, (bk, b)) in ranges.iter().enumerate() {
        for (ak, a) in &ranges[..j] {
            if overlaps(*a, *b) {
                let help = format!(
                    "GKE needs the node subnet, the pod and service secondary ranges and the control plane's range to be disjoint; \
                     move {bk} outside {a}"
                );
                out.at(*bk, Problem::new(format!("{bk} {b} overlaps {ak} {a}"), format!("overlaps {ak}")).help(help))
                    .note(*ak, format!("the {ak} range"));
            }
        }
    }
}

/// AKS: the subscription and resource group names (checked against the cluster node), and
/// whether the node subnet holds every node at the pools' maximum — with classic Azure CNI (no
/// pod subnet) each node also takes one address per pod it may run.
pub(crate) fn aks(a: &AksSpec, out: &mut Findings) {
    let nodes: u64 = a.node_pools.iter().map(|p| u64::from(p.max)).sum();
    let per_node = if a.network.pod_subnet_cidr.is_some() { 1 } else { u64::from(a.network.max_pods()) + 1 };
    let needed = nodes * per_node + AksNetwork::SUBNET_RESERVED;
    let subnet = a.network.node_subnet_cidr;
    let size = 1u64 << (32 - subnet.prefix_len());
    if needed > size {
        let prefix = 32 - (needed.next_power_of_two().trailing_zeros() as u8);
        let why = if a.network.pod_subnet_cidr.is_some() {
            format!("{nodes} nodes at the pools' maximum")
        } else {
            format!(
                "{nodes} nodes at the pools' maximum × ({} pods + 1), as classic Azure CNI gives every pod a node-subnet address",
                a.network.max_pods()
            )
        };
        out.at(
            "network.node_subnet_cidr",
            Problem::new(
                format!("node_subnet_cidr {subnet} has {size} addresses; the node pools need {needed} ({why}, + 5 Azure keeps)"),
                "too small",
            )
            .help(format!(
                "use a /{prefix} or larger node subnet, lower the pools' `max`, or set network.pod_subnet_cidr so pods take addresses from a pod subnet"
            )),
        );
    }
    let s = &a.subscription_id;
    if !is_guid(s) {
        out.at(
            "subscription_id",
            Problem::new(format!("subscription_id `{s}` is not a GUID"), "not a GUID")
                .help("give the subscription ID (not its name), e.g. 00000000-0000-0000-0000-000000000000"),
        );
    }
    let rg = &a.resource_group;
    let ok = (1..=90).contains(&rg.chars().count())
        && rg.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
        && !rg.ends_with('.');
    if !ok {
        out.at(
            "resource_group",
            Problem::new(format!("resource_group `{rg}` is not a valid resource group name"), "invalid").help(
                "use 1 to 90 letters, digits, `-`, `_`, `.`, `(` or `)`, not ending in `.`, e.g. `matih-prod-rg`",
            ),
        );
    }
}

/// `8-4-4-4-12` hexadecimal digits, as Azure writes subscription and object IDs.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// AKS Entra ID: object IDs are GUIDs, each named once, and someone is an admin.
pub(crate) fn aks_entra_id(e: &AksEntraId, out: &mut Findings) {
    for (key, ids) in [("admin_group_ids", &e.admin_group_ids), ("cluster_admins", &e.cluster_admins)] {
        let mut seen = std::collections::BTreeSet::new();
        for (i, id) in ids.iter().enumerate() {
            if !is_guid(id) {
                out.at(
                    format!("{key}[{i}]"),
                    Problem::new(format!("`{id}` is not an Entra ID object ID"), "not a GUID").help(
                        "give the object ID (`az ad group show -g NAME --query id`, `az ad signed-in-user show --query id`), not a name",
                    ),
                );
            } else if !seen.insert(id.to_ascii_lowercase()) {
                out.at(
                    format!("{key}[{i}]"),
                    Problem::new(format!("`{id}` is named twice in {key}"), "duplicate")
                        .help("name each object ID once"),
                );
            }
        }
    }
    if e.admin_group_ids.is_empty() && e.cluster_admins.is_empty() {
        out.at(
            "entra_id",
            Problem::new("an Entra ID cluster without admins: local accounts are off, so nobody could reach it", "no admins")
                .help("add the object ID of the principal that runs matih-infra to entra_id.cluster_admins, or a group it is in to entra_id.admin_group_ids"),
        );
    }
}

/// AKS with Azure CNI: subnets inside the VNet, the service range outside it and outside the
/// ranges AKS reserves.
pub(crate) fn aks_network(n: &AksNetwork, out: &mut Findings) {
    let vnet = n.vnet_cidr;
    let mut subnets = vec![("node_subnet_cidr", n.node_subnet_cidr)];
    if let Some(pod) = n.pod_subnet_cidr {
        subnets.push(("pod_subnet_cidr", pod));
    }
    for (key, s) in &subnets {
        if !vnet.contains(s) {
            out.at(
                *key,
                Problem::new(format!("{key} {s} is not inside vnet_cidr {vnet}"), "outside the VNet")
                    .help(format!("pick a subnet of {vnet}")),
            )
            .note("vnet_cidr", "the VNet range");
        }
    }
    if let Some(pod) = n.pod_subnet_cidr
        && overlaps(n.node_subnet_cidr, pod)
    {
        out.at(
            "pod_subnet_cidr",
            Problem::new(
                format!("pod_subnet_cidr {pod} overlaps node_subnet_cidr {}", n.node_subnet_cidr),
                "overlaps the node subnet",
            )
            .help("give pods their own subnet of the VNet, next to the node subnet"),
        )
        .note("node_subnet_cidr", "the node subnet");
    }

    let svc = n.service_cidr;
    if overlaps(vnet, svc) {
        out.at(
            "service_cidr",
            Problem::new(format!("service_cidr {svc} overlaps vnet_cidr {vnet}"), "overlaps the VNet").help(format!(
                "Azure CNI puts nodes and pods on VNet IPs; pick a service range outside {vnet}, e.g. 172.16.0.0/16"
            )),
        )
        .note("vnet_cidr", "the VNet range");
    } else if let Some((key, s)) = subnets.iter().find(|(_, s)| overlaps(*s, svc)) {
        out.at(
            "service_cidr",
            Problem::new(format!("service_cidr {svc} overlaps {key} {s}"), format!("overlaps {key}"))
                .help("pick a service range that overlaps no subnet, e.g. 172.16.0.0/16"),
        )
        .note(*key, "this subnet");
    }
    if let Some(r) = AKS_RESERVED.iter().map(|r| net(r)).find(|r| overlaps(*r, svc)) {
        out.at(
            "service_cidr",
            Problem::new(format!("service_cidr {svc} overlaps {r}, which AKS reserves"), "reserved by AKS").help(
                "AKS reserves 169.254.0.0/16, 172.30.0.0/16, 172.31.0.0/16 and 192.0.2.0/24; \
                 pick another range, e.g. 172.16.0.0/16",
            ),
        );
    }
    if let Some(ip) = n.dns_service_ip {
        dns_ip("dns_service_ip", ip, svc, out);
    }
}

// ---------------------------------------------------------------------------------------------
// Add-ons

pub(crate) fn addons(a: &Addons, out: &mut Findings) {
    for (key, addon) in [("calico", &a.calico), ("ingress_nginx", &a.ingress_nginx), ("cert_manager", &a.cert_manager)]
    {
        let v = &addon.version;
        let (default, prefix) = match key {
            "calico" => (Addons::DEFAULT_CALICO, "v"),
            "ingress_nginx" => (Addons::DEFAULT_INGRESS_NGINX, "controller-v"),
            _ => (Addons::DEFAULT_CERT_MANAGER, "v"),
        };
        // The tag goes into download URLs and cache paths: nothing but a release tag passes.
        if !is_release_tag(v, prefix) {
            out.at(
                format!("{key}.version"),
                Problem::new(format!("{key} version `{}` is not a release tag", shorten(v)), "invalid version").help(
                    format!(
                        "give a release tag of the form `{prefix}X.Y.Z`, e.g. `{default}` (the tested default), or remove the key"
                    ),
                ),
            );
        }
    }
    network_policies(&a.network_policies, out);
    let dns = &a.coredns;
    if dns.forwarders.len() > 15 {
        out.at(
            "coredns.forwarders",
            Problem::new(
                format!("coredns has {} forwarders; CoreDNS uses at most 15", dns.forwarders.len()),
                "too many",
            )
            .help("list at most 15 upstream resolvers"),
        );
    }
    for (domain, servers) in &dns.stub_domains {
        if let Some(why) = dns_name_problem(domain).filter(|_| !is_single_label(domain)) {
            out.at_key(
                format!("coredns.stub_domains.{domain}"),
                Problem::new(format!("stub domain `{domain}` {why}"), "not a domain")
                    .help("use a lower-case DNS name, e.g. `corp.example`"),
            );
        }
        if servers.is_empty() {
            out.at(
                format!("coredns.stub_domains.{domain}"),
                Problem::new(format!("stub domain `{domain}` has no servers"), "empty")
                    .help("list the resolvers for this domain, e.g. [10.0.0.2]"),
            );
        }
    }
}

/// `<prefix>X.Y.Z`, optionally with a pre-release suffix (`-rc.1`, `-beta.0`).
fn is_release_tag(v: &str, prefix: &str) -> bool {
    let Some(rest) = v.strip_prefix(prefix) else { return false };
    let (core, pre) = rest.split_once('-').unwrap_or((rest, "a"));
    let parts: Vec<&str> = core.split('.').collect();
    v.len() <= 64
        && parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.len() <= 9 && p.chars().all(|c| c.is_ascii_digit()))
        && !pre.is_empty()
        && pre.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
}

/// Kafka runs in one of the platform's service namespaces; only platform namespaces may be
/// given the internet, each once.
fn network_policies(n: &NetworkPolicies, out: &mut Findings) {
    let kafka = &n.kafka_namespace;
    if !SERVICE_NAMESPACES.contains(&kafka.as_str()) {
        out.at(
            "network_policies.kafka_namespace",
            Problem::new(
                format!("`{kafka}` is not a namespace where the platform runs its services"),
                "not a service namespace",
            )
            .help(format!(
                "Kafka's TLS port is opened toward one of {}; name the one Kafka runs in (default {DATA_PLANE})",
                SERVICE_NAMESPACES.join(", ")
            )),
        );
    }
    for (i, ns) in n.internet_egress.iter().enumerate() {
        let at = format!("network_policies.internet_egress[{i}]");
        if !PLATFORM_NAMESPACES.contains(&ns.as_str()) {
            let hint = if ns.starts_with("matih-tenant-") {
                format!(
                    "tenant namespaces cannot be given the internet here (tenants reach only the platform); \
                     list platform namespaces: {}",
                    PLATFORM_NAMESPACES.join(", ")
                )
            } else {
                format!("list platform namespaces only: {}", PLATFORM_NAMESPACES.join(", "))
            };
            out.at(at, Problem::new(format!("`{ns}` is not a platform namespace"), "unknown namespace").help(hint));
        } else if n.internet_egress[..i].contains(ns) {
            out.at(at, Problem::new(format!("`{ns}` is listed twice"), "duplicate").help("list each namespace once"));
        }
    }
}

/// A single-label stub domain (`corp`) is allowed; only its label must be valid.
fn is_single_label(domain: &str) -> bool {
    !domain.contains('.') && dns_label_problem(domain, 63).is_none()
}

// ---------------------------------------------------------------------------------------------
// Tenants

/// The rules one tenant file can check on its own; `stem` is its file name without extension.
pub(crate) fn tenant(t: &TenantSpec, stem: &str, out: &mut Findings) {
    let slug = &t.slug;
    if let Some(why) = dns_label_problem(slug, MAX_SLUG_LEN) {
        out.at("slug", Problem::new(format!("tenant slug `{slug}` {why}"), "not a valid slug").help(format!(
            "a slug is a DNS label of at most {MAX_SLUG_LEN} characters (lower-case a-z, 0-9 and `-`, not at either end), \
             e.g. `{}`; rename the file to match",
            label_suggestion(slug, MAX_SLUG_LEN)
        )));
    } else if slug != stem {
        out.at(
            "slug",
            Problem::new(
                format!("tenant slug `{slug}` does not match its file name `{stem}`"),
                "differs from the file name",
            )
            .help(format!(
                "rename the file to `{slug}.yaml`, or set `slug: {stem}`: each tenant lives in `tenants/<slug>.yaml`"
            )),
        );
    }
    if t.display_name.trim().is_empty() {
        out.at(
            "display_name",
            Problem::new("display_name is empty", "empty").help("give the name people see, e.g. `Acme Corp`"),
        );
    } else if t.display_name.chars().count() > MAX_DISPLAY_NAME || t.display_name.chars().any(char::is_control) {
        out.at(
            "display_name",
            Problem::new(
                format!(
                    "display_name `{}` is longer than {MAX_DISPLAY_NAME} characters or holds control characters",
                    shorten(&t.display_name)
                ),
                "invalid",
            )
            .help("give the name people see on one line, e.g. `Acme Corp`"),
        );
    }
}

/// Whether `slug` names a platform record under the zone (given the spec's environment).
pub(crate) fn slug_is_reserved(slug: &str, environment: Option<&str>) -> bool {
    RESERVED_SLUGS.contains(&slug) || environment == Some(slug)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NatGateways;

    fn messages(f: &Findings) -> Vec<String> {
        f.0.iter().map(|x| format!("{}: {}", x.path, x.problem.message)).collect()
    }

    fn eks(vpc: &str, az: u8, svc: &str, dns: Option<&str>) -> Findings {
        let n = EksNetwork {
            vpc_cidr: vpc.parse().unwrap(),
            availability_zones: az,
            nat_gateways: NatGateways::Single,
            service_cidr: svc.parse().unwrap(),
            cluster_dns_ip: dns.map(|d| d.parse().unwrap()),
        };
        let mut f = Findings::default();
        eks_network(&n, &mut f);
        f
    }

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label_problem("acme-2", 32), None);
        assert!(dns_label_problem("", 32).is_some());
        assert!(dns_label_problem("Acme", 32).unwrap().contains("upper-case"));
        assert!(dns_label_problem("acme_corp", 32).unwrap().contains("`_`"));
        assert!(dns_label_problem("-acme", 32).is_some());
        assert!(dns_label_problem(&"a".repeat(33), 32).unwrap().contains("limit is 32"));
        assert_eq!(label_suggestion("Acme_Corp!", 32), "acme-corp");
    }

    #[test]
    fn dns_names() {
        assert_eq!(dns_name_problem("matih.ai"), None);
        assert_eq!(dns_name_problem("staging.matih.ai"), None);
        assert!(dns_name_problem("matih").unwrap().contains("single label"));
        assert!(dns_name_problem("matih.ai.").unwrap().contains("trailing dot"));
        assert!(dns_name_problem("Matih.ai").unwrap().contains("upper-case"));
        assert!(dns_name_problem("matih_ai.com").is_some());
        assert!(dns_name_problem("10.0.0.1").unwrap().contains("all-numeric"));
    }

    #[test]
    fn emails() {
        assert_eq!(email_problem("platform-team@matih.ai"), None);
        assert!(email_problem("platform-team").is_some());
        assert!(email_problem("a@b@matih.ai").is_some());
        assert!(email_problem("@matih.ai").is_some());
        assert!(email_problem("me@localhost").is_some());
    }

    #[test]
    fn kubernetes_versions() {
        let check = |v: &str| {
            let mut f = Findings::default();
            kubernetes_version(v, &mut f);
            f.0.pop().and_then(|x| x.problem.help)
        };
        assert_eq!(check("1.33"), None);
        assert!(check("1.3").unwrap().contains("\"1.30\""));
        assert!(check("1.33.2").unwrap().contains("\"1.33\""));
        assert!(check("v1.33").is_some());
        assert!(check("2.0").is_some());
    }

    #[test]
    fn eks_accepts_the_usual_layout() {
        assert!(eks("10.0.0.0/16", 3, "172.20.0.0/16", Some("172.20.0.10")).0.is_empty());
        // Smallest VPC that still gives /24 subnets for 3 zones.
        assert!(eks("10.0.0.0/21", 3, "172.20.0.0/16", None).0.is_empty());
    }

    #[test]
    fn eks_vpc_too_small_names_the_needed_prefix() {
        let f = eks("10.0.0.0/22", 3, "172.20.0.0/16", None);
        assert_eq!(f.0.len(), 1, "{:?}", messages(&f));
        assert!(f.0[0].problem.help.as_ref().unwrap().contains("/21 or larger"));
        // 2 zones → 4 subnets → 2 bits: a /22 is fine, a /23 is not.
        assert!(eks("10.0.0.0/22", 2, "172.20.0.0/16", None).0.is_empty());
        assert_eq!(eks("10.0.0.0/23", 2, "172.20.0.0/16", None).0.len(), 1);
    }

    #[test]
    fn eks_range_rules() {
        assert_eq!(
            messages(&eks("10.0.0.0/8", 3, "172.20.0.0/16", None)),
            ["vpc_cidr: vpc_cidr 10.0.0.0/8 is a /8; EKS VPCs here are /16 to /24"]
        );
        assert_eq!(eks("10.0.0.0/16", 1, "172.20.0.0/16", None).0[0].path, "availability_zones");
        assert_eq!(eks("10.0.0.0/16", 7, "172.20.0.0/16", None).0[0].path, "availability_zones");
        assert!(messages(&eks("10.0.0.0/16", 3, "100.64.0.0/16", None))[0].contains("not inside a private range"));
        assert!(messages(&eks("10.0.0.0/16", 3, "172.20.0.0/25", None))[0].contains("/12 to /24"));
        let overlap = eks("10.0.0.0/16", 3, "10.0.128.0/20", None);
        assert_eq!(messages(&overlap), ["service_cidr: service_cidr 10.0.128.0/20 overlaps vpc_cidr 10.0.0.0/16"]);
        assert_eq!(overlap.0[0].notes[0].0, "vpc_cidr");
    }

    #[test]
    fn cluster_dns_ip_must_be_a_usable_service_address() {
        assert!(messages(&eks("10.0.0.0/16", 3, "172.20.0.0/16", Some("172.21.0.10")))[0].contains("outside"));
        assert!(messages(&eks("10.0.0.0/16", 3, "172.20.0.0/16", Some("172.20.0.0")))[0].contains("network address"));
        assert!(messages(&eks("10.0.0.0/16", 3, "172.20.0.0/16", Some("172.20.0.1")))[0].contains("first address"));
    }

    #[test]
    fn gke_ranges_are_pairwise_disjoint() {
        let n = |s: &str, p: &str, v: &str| GkeNetwork {
            subnet_cidr: s.parse().unwrap(),
            pods_cidr: p.parse().unwrap(),
            services_cidr: v.parse().unwrap(),
            master_cidr: GkeNetwork::DEFAULT_MASTER_CIDR.parse().unwrap(),
        };
        let mut f = Findings::default();
        gke_network(&n("10.10.0.0/20", "10.16.0.0/14", "10.20.0.0/20"), &mut f);
        assert!(f.0.is_empty());
        // The control plane's range is a /28 apart from the others.
        let mut m = n("10.10.0.0/20", "10.16.0.0/14", "10.20.0.0/20");
        m.master_cidr = "10.10.0.0/24".parse().unwrap();
        gke_network(&m, &mut f);
        assert_eq!(
            messages(&f),
            [
                "master_cidr: master_cidr 10.10.0.0/24 is not a /28",
                "master_cidr: master_cidr 10.10.0.0/24 overlaps subnet_cidr 10.10.0.0/20"
            ]
        );
        let mut f = Findings::default();
        gke_network(&n("10.10.0.0/20", "10.0.0.0/11", "10.20.0.0/20"), &mut f);
        assert_eq!(
            messages(&f),
            [
                "pods_cidr: pods_cidr 10.0.0.0/11 overlaps subnet_cidr 10.10.0.0/20",
                "services_cidr: services_cidr 10.20.0.0/20 overlaps pods_cidr 10.0.0.0/11"
            ]
        );
    }

    #[test]
    fn an_entra_id_cluster_needs_an_admin() {
        let mut f = Findings::default();
        aks_entra_id(&AksEntraId::default(), &mut f);
        assert_eq!(f.0.len(), 1);
        assert_eq!(f.0[0].path, "entra_id");
        let mut f = Findings::default();
        let admin = "3f2504e0-4f89-41d3-9a0c-0305e82c3301".to_string();
        aks_entra_id(&AksEntraId { admin_group_ids: vec![], cluster_admins: vec![admin] }, &mut f);
        assert!(f.0.is_empty());
    }

    #[test]
    fn aks_rules() {
        let base = AksNetwork {
            vnet_cidr: "10.30.0.0/16".parse().unwrap(),
            node_subnet_cidr: "10.30.0.0/20".parse().unwrap(),
            pod_subnet_cidr: Some("10.30.16.0/20".parse().unwrap()),
            service_cidr: "172.16.0.0/16".parse().unwrap(),
            dns_service_ip: Some("172.16.0.10".parse().unwrap()),
        };
        let run = |n: &AksNetwork| {
            let mut f = Findings::default();
            aks_network(n, &mut f);
            messages(&f)
        };
        assert!(run(&base).is_empty());
        let outside = AksNetwork { node_subnet_cidr: "10.31.0.0/20".parse().unwrap(), ..base.clone() };
        assert!(run(&outside)[0].contains("not inside vnet_cidr"));
        let pod_overlap = AksNetwork { pod_subnet_cidr: Some("10.30.8.0/21".parse().unwrap()), ..base.clone() };
        assert!(run(&pod_overlap)[0].contains("overlaps node_subnet_cidr"));
        let svc_in_vnet =
            AksNetwork { service_cidr: "10.30.128.0/20".parse().unwrap(), dns_service_ip: None, ..base.clone() };
        assert!(run(&svc_in_vnet)[0].contains("overlaps vnet_cidr"));
        let reserved =
            AksNetwork { service_cidr: "172.30.0.0/16".parse().unwrap(), dns_service_ip: None, ..base.clone() };
        assert!(run(&reserved)[0].contains("AKS reserves"));
        let first_host = AksNetwork { dns_service_ip: Some("172.16.0.1".parse().unwrap()), ..base.clone() };
        assert!(run(&first_host)[0].contains("first address"));
    }

    #[test]
    fn node_pool_rules() {
        let pool = |name: &str, min, max, desired| NodePool {
            name: name.into(),
            machine_type: "m6i.large".into(),
            min,
            max,
            desired,
        };
        let run = |cloud, pools: &[NodePool]| {
            let mut f = Findings::default();
            node_pools(cloud, pools, &mut f);
            messages(&f)
        };
        assert!(run(CloudKind::Eks, &[pool("system", 2, 4, Some(2)), pool("data-workers", 0, 10, None)]).is_empty());
        assert_eq!(run(CloudKind::Eks, &[]), ["node_pools: eks has no node pools"]);
        assert_eq!(
            run(CloudKind::Eks, &[pool("a", 1, 1, None), pool("a", 1, 1, None)]),
            ["node_pools[1].name: node pool name `a` is used twice"]
        );
        assert_eq!(
            run(CloudKind::Eks, &[pool("a", 3, 2, None)]),
            ["node_pools[0].min: node pool min (3) is above max (2)"]
        );
        assert_eq!(
            run(CloudKind::Eks, &[pool("a", 1, 2, Some(5))]),
            ["node_pools[0].desired: node pool desired (5) is outside [min, max] = [1, 2]"]
        );
        assert_eq!(
            run(CloudKind::Eks, &[pool("a", 0, 0, None)]),
            ["node_pools[0].max: node pool max is 0, so the pool can never have a node"]
        );
        // AKS is stricter than a DNS label.
        let typed = |name: &str, t: &str| NodePool { machine_type: t.into(), ..pool(name, 1, 2, None) };
        assert!(run(CloudKind::Aks, &[typed("data-workers", "Standard_D4s_v5")])[0].contains("`-`"));
        assert!(run(CloudKind::Aks, &[typed("1pool", "Standard_D4s_v5")])[0].contains("letter"));
        assert!(run(CloudKind::Gke, &[typed("data-workers", "e2-standard-4")]).is_empty());

        // Machine types have each cloud's shape; numbers and other clouds' names are refused.
        for (cloud, good, bad) in [
            (
                CloudKind::Eks,
                &["m6i.large", "c7gn.16xlarge", "u7in-16tb.224xlarge"][..],
                &["-1000000000000000000000000000000", "e2-standard-4", "m6i.", "M6i.large", "m6i.large/../x"][..],
            ),
            (
                CloudKind::Gke,
                &["e2-standard-4", "n2-custom-4-16384", "custom-8-32768-ext"],
                &["-1", "m6i.large", "E2-standard-4", "e2-"],
            ),
            (
                CloudKind::Aks,
                &["Standard_D4s_v5", "Standard_NC24ads_A100_v4", "Basic_A2"],
                &["-1", "Standard_", "D4s_v5", "Standard_D4s v5"],
            ),
        ] {
            for t in good {
                assert!(run(cloud, &[typed("system", t)]).is_empty(), "{cloud} {t}");
            }
            for t in bad {
                let m = run(cloud, &[typed("system", t)]);
                assert!(m.len() == 1 && m[0].starts_with("node_pools[0].machine_type:"), "{cloud} {t}: {m:?}");
            }
        }

        // Counts are bounded: pools per cluster, nodes per pool. 200,000 pools are checked in
        // linear time (names through a map, not against every earlier pool).
        let many: Vec<NodePool> = (0..200_000).map(|i| pool(&format!("p{i}"), 1, 2, None)).collect();
        assert_eq!(run(CloudKind::Eks, &many), ["node_pools: eks lists 200000 node pools; a cluster has at most 100"]);
        assert_eq!(
            run(CloudKind::Eks, &[pool("a", 1, 5000, None)]),
            ["node_pools[0].max: node pool max (5000) is above the 1000 nodes a pool can have"]
        );
    }

    #[test]
    fn addon_versions_are_release_tags() {
        let with = |calico: &str, nginx: &str| {
            let mut a = Addons::default();
            a.calico.version = calico.into();
            a.ingress_nginx.version = nginx.into();
            let mut f = Findings::default();
            addons(&a, &mut f);
            messages(&f)
        };
        assert!(with("v3.32.1", "controller-v1.15.1").is_empty());
        assert!(with("v3.33.0-rc.1", "controller-v1.16.0-beta.0").is_empty());
        for bad in ["-1", "3.32.1", "v3.32", "v3.32.1/../../etc", "latest", "v3.32.1 "] {
            let m = with(bad, "controller-v1.15.1");
            assert!(
                m.len() == 1 && m[0].starts_with("calico.version:") && m[0].contains("not a release tag"),
                "{bad}: {m:?}"
            );
        }
        assert_eq!(with("v3.32.1", "-1"), ["ingress_nginx.version: ingress_nginx version `-1` is not a release tag"]);
    }

    #[test]
    fn tenant_rules() {
        let t = |slug: &str, name: &str| TenantSpec {
            slug: slug.into(),
            display_name: name.into(),
            dedicated_ingress: false,
            file: "tenants/x.yaml".into(),
        };
        let run = |t: &TenantSpec, stem: &str| {
            let mut f = Findings::default();
            tenant(t, stem, &mut f);
            messages(&f)
        };
        assert!(run(&t("acme", "Acme Corp"), "acme").is_empty());
        assert!(run(&t("acme", "Acme Corp"), "acme-corp")[0].contains("does not match its file name"));
        assert!(run(&t("Acme_Corp", "Acme Corp"), "Acme_Corp")[0].contains("upper-case"));
        assert!(run(&t(&"a".repeat(33), "A"), &"a".repeat(33))[0].contains("limit is 32"));
        assert_eq!(run(&t("acme", " "), "acme"), ["display_name: display_name is empty"]);
        assert!(slug_is_reserved("api", Some("prod")));
        assert!(slug_is_reserved("qa", Some("qa")));
        assert!(!slug_is_reserved("acme", Some("prod")));
    }
}
