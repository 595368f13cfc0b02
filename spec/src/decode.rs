//! Decoding the marked YAML tree into the typed spec, reporting every problem on the way.
//!
//! This is what `serde(deny_unknown_fields)` would do, by hand, for two reasons: serde stops at
//! the first error, and it cannot point a later semantic error at the value it is about. Here
//! each section is decoded field by field; a field that fails is reported and decoding goes on,
//! so one run lists unknown keys, missing keys and wrong types across the whole file. As soon
//! as a section decodes, the rules of [`crate::check`] run against it and their findings are
//! located through the same tree.
//!
//! Scalar typing follows YAML 1.2 core: quoted scalars are strings; plain scalars are read as
//! the field needs them (`3`, `true`, `10.0.0.0/16`). A string field takes a plain scalar's text
//! as written, so `kubernetes_version: 1.30` means "1.30", not the number 1.3.
//!
//! It does not read files or know about other files: cross-file rules (duplicate tenants,
//! reserved slugs that depend on the environment) live in the crate root.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::Ipv4Net;

use crate::check::{self, Findings};
use crate::diag::{Note, Problem, Sink, SourceFile, Span};
use crate::model::{
    Addon, Addons, AksEntraId, AksNetwork, AksSpec, Certificates, CloudKind, Clouds, CoreDns, EksEndpoint, EksNetwork,
    EksSpec, GkeDataplane, GkeNetwork, GkeSpec, NatGateways, NetworkPolicies, NodePool, Platform, PlatformSpec,
    StateBackend, StateSpec, TenantSpec,
};
use crate::yaml::{Kind, Node};

const ROOT_KEYS: &[&str] = &["platform", "clouds", "addons", "state"];
const STATE_KEYS: &[&str] = &["backend", "bucket", "region", "account", "container", "prefix"];
const PLATFORM_KEYS: &[&str] = &["name", "domain", "environment", "acme_email"];
const CLOUDS_KEYS: &[&str] = &["eks", "gke", "aks"];
const EKS_KEYS: &[&str] = &["region", "kubernetes_version", "network", "endpoint", "node_pools"];
const EKS_NETWORK_KEYS: &[&str] = &["vpc_cidr", "availability_zones", "nat_gateways", "service_cidr", "cluster_dns_ip"];
const EKS_ENDPOINT_KEYS: &[&str] = &["public_access", "private_access", "public_access_cidrs"];
const GKE_KEYS: &[&str] = &["project", "region", "kubernetes_version", "network", "node_pools", "dataplane"];
const GKE_NETWORK_KEYS: &[&str] = &["subnet_cidr", "pods_cidr", "services_cidr", "master_cidr"];
const AKS_KEYS: &[&str] =
    &["subscription_id", "resource_group", "location", "kubernetes_version", "network", "node_pools", "entra_id"];
const AKS_ENTRA_KEYS: &[&str] = &["admin_group_ids", "cluster_admins"];
const AKS_NETWORK_KEYS: &[&str] =
    &["vnet_cidr", "node_subnet_cidr", "pod_subnet_cidr", "service_cidr", "dns_service_ip"];
const NODE_POOL_KEYS: &[&str] = &["name", "machine_type", "min", "max", "desired"];
const ADDONS_KEYS: &[&str] = &["calico", "ingress_nginx", "cert_manager", "coredns", "network_policies"];
const NETWORK_POLICIES_KEYS: &[&str] = &["kafka_namespace", "internet_egress"];
const ADDON_KEYS: &[&str] = &["version"];
const CERT_MANAGER_KEYS: &[&str] = &["version", "certificates"];
const COREDNS_KEYS: &[&str] = &["forwarders", "stub_domains"];
const TENANT_KEYS: &[&str] = &["slug", "display_name", "dedicated_ingress"];

/// A value at a path, with the key it was written under.
#[derive(Debug, Clone)]
pub(crate) struct Field<'n> {
    /// Full dotted path, for messages: `clouds.eks.network.vpc_cidr`, `` for the file root.
    path: String,
    key: Option<&'n Node>,
    value: &'n Node,
}

impl<'n> Field<'n> {
    pub(crate) fn root(node: &'n Node) -> Self {
        Self { path: String::new(), key: None, value: node }
    }

    /// Where to point when the value is wrong: the value, or its key when the value is empty.
    fn span(&self) -> Span {
        match self.key {
            Some(k) if self.value.span.end <= self.value.span.start.byte => k.span,
            _ => self.value.span,
        }
    }

    /// Where to point when something is missing inside this value: its key.
    fn owner(&self) -> Span {
        self.key.map_or(self.value.span, |k| k.span)
    }

    /// The last step of the path (`vpc_cidr`, `node_pools[1]`), for hints.
    fn name(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }

    fn child(&self, step: &str) -> String {
        if self.path.is_empty() { step.to_string() } else { format!("{}.{step}", self.path) }
    }

    fn shown(&self) -> String {
        if self.path.is_empty() { "the top level".to_string() } else { format!("`{}`", self.path) }
    }
}

/// The entries of a mapping whose keys have been checked.
pub(crate) struct Fields<'n> {
    field: Field<'n>,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
    /// Allowed keys that an unknown key was taken for a misspelling of: their absence is not
    /// reported again.
    suggested: Vec<&'static str>,
}

/// Decodes one file, collecting problems into a sink.
pub(crate) struct Decoder<'a> {
    file: Arc<SourceFile>,
    sink: &'a mut Sink,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(file: &Arc<SourceFile>, sink: &'a mut Sink) -> Self {
        Self { file: Arc::clone(file), sink }
    }

    fn error(&mut self, span: Span, problem: Problem) {
        self.sink.error(&self.file, span, problem);
    }

    /// Records the findings of a rule that ran against `base`.
    fn apply(&mut self, base: &Node, findings: Findings) {
        for f in findings.0 {
            let span = locate(base, &f.path, f.on_key);
            let mut problem = f.problem;
            for (path, message) in f.notes {
                problem.notes.push(Note { file: Arc::clone(&self.file), span: locate(base, &path, false), message });
            }
            self.error(span, problem);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Structure

    /// The checked entries of a mapping: reports a non-mapping value, non-scalar and duplicate
    /// keys, and keys outside `allowed` (with a suggestion).
    fn mapping<'n>(&mut self, f: &Field<'n>, allowed: &[&'static str]) -> Option<Fields<'n>> {
        let Kind::Map(raw) = &f.value.kind else {
            let help = if f.path.is_empty() {
                format!("the file is a mapping with the top-level keys {}", allowed.join(", "))
            } else if matches!(f.value.kind, Kind::Null) && f.key.is_some() {
                format!("indent the keys of `{}` under it, or remove the key if the section is not wanted", f.name())
            } else {
                format!("`{}` takes these keys: {}", f.name(), allowed.join(", "))
            };
            let what = if f.path.is_empty() { "the file".to_string() } else { f.shown() };
            self.error(
                f.span(),
                Problem::new(format!("{what} must be a mapping, found {}", f.value.describe()), "expected a mapping")
                    .help(help),
            );
            return None;
        };
        let mut entries: Vec<(&'n str, &'n Node, &'n Node)> = Vec::new();
        let mut suggested = Vec::new();
        for (key, value) in raw {
            let Some(name) = key.scalar_text() else {
                self.error(
                    key.span,
                    Problem::new(
                        format!("keys in {} must be plain names, found {}", f.shown(), key.describe()),
                        "not a name",
                    )
                    .help(format!("allowed keys here: {}", allowed.join(", "))),
                );
                continue;
            };
            if let Some((_, first, _)) = entries.iter().find(|(n, _, _)| *n == name) {
                let note = Note { file: Arc::clone(&self.file), span: first.span, message: "first set here".into() };
                self.error(
                    key.span,
                    Problem::new(format!("key `{name}` appears twice in {}", f.shown()), "duplicate key")
                        .help("keep one of them: YAML would silently use only one value")
                        .note(note),
                );
                continue;
            }
            if !allowed.contains(&name) {
                let close = closest(name, allowed);
                suggested.extend(close);
                self.error(key.span, unknown_key(name, close, f, allowed));
                continue;
            }
            entries.push((name, key, value));
        }
        Some(Fields { field: f.clone(), entries, suggested })
    }

    /// The field `key` of `m`, or `None` when it is absent. A key with no value counts as a
    /// mistake, not as absent: the user meant to say something.
    fn opt<'n>(&mut self, m: &Fields<'n>, key: &str) -> Result<Option<Field<'n>>, ()> {
        let Some((_, k, v)) = m.entries.iter().find(|(n, _, _)| *n == key) else {
            return Ok(None);
        };
        let field = Field { path: m.field.child(key), key: Some(k), value: v };
        if matches!(v.kind, Kind::Null) {
            self.error(
                k.span,
                Problem::new(format!("`{}` has no value", field.path), "no value")
                    .help(format!("give `{key}` a value, or remove the line to use the default")),
            );
            return Err(());
        }
        Ok(Some(field))
    }

    /// The field `key` of `m`; reports it when missing. `example` completes the hint.
    fn req<'n>(&mut self, m: &Fields<'n>, key: &str, example: &str) -> Option<Field<'n>> {
        match self.opt(m, key) {
            Ok(Some(f)) => Some(f),
            Ok(None) if m.suggested.contains(&key) => None,
            Ok(None) => {
                let path = m.field.child(key);
                let (where_, help) = if m.field.path.is_empty() {
                    ("the top level".to_string(), format!("add a `{key}:` section, e.g. `{key}: {example}`"))
                } else {
                    (m.field.shown(), format!("add `{key}: {example}` under `{}`", m.field.name()))
                };
                self.error(
                    m.field.owner(),
                    Problem::new(format!("missing key `{path}`"), format!("`{key}` missing in {where_}")).help(help),
                );
                None
            }
            Err(()) => None,
        }
    }

    fn req_as<'n, T>(
        &mut self,
        m: &Fields<'n>,
        key: &str,
        example: &str,
        conv: impl FnOnce(&mut Self, &Field<'n>) -> Option<T>,
    ) -> Option<T> {
        let f = self.req(m, key, example)?;
        conv(self, &f)
    }

    /// `Ok(None)` when absent, `Err` when present but wrong (already reported).
    fn opt_as<'n, T>(
        &mut self,
        m: &Fields<'n>,
        key: &str,
        conv: impl FnOnce(&mut Self, &Field<'n>) -> Option<T>,
    ) -> Result<Option<T>, ()> {
        match self.opt(m, key)? {
            None => Ok(None),
            Some(f) => conv(self, &f).map(Some).ok_or(()),
        }
    }

    fn list<'n>(&mut self, f: &Field<'n>) -> Option<Vec<Field<'n>>> {
        let Kind::Seq(items) = &f.value.kind else {
            self.type_error(
                f,
                "a list",
                format!("write the items as `{}: [a, b]` or as `- item` lines under it", f.name()),
            );
            return None;
        };
        Some(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| Field { path: format!("{}[{i}]", f.path), key: None, value: n })
                .collect(),
        )
    }

    fn type_error(&mut self, f: &Field<'_>, expected: &str, help: String) {
        let label = format!("expected {expected}");
        self.error(
            f.span(),
            Problem::new(format!("{} must be {expected}, found {}", f.shown(), f.value.describe()), label).help(help),
        );
    }

    // -----------------------------------------------------------------------------------------
    // Scalars

    fn string(&mut self, f: &Field<'_>) -> Option<String> {
        match &f.value.kind {
            Kind::Scalar { text, .. } => Some(text.clone()),
            _ => {
                let key = f.name();
                self.type_error(f, "a string", format!("write a single value on the line of `{key}:`"));
                None
            }
        }
    }

    /// A whole number that fits `T`.
    fn uint<T: TryFrom<u64>>(&mut self, f: &Field<'_>) -> Option<T> {
        let key = f.name().to_string();
        match &f.value.kind {
            Kind::Scalar { text, plain: true } => match text.parse::<u64>().ok().map(T::try_from) {
                Some(Ok(v)) => Some(v),
                // Digits that overflow u64 are as out of range as those that overflow `T`.
                Some(Err(_)) | None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                    self.type_error(f, "a smaller whole number", format!("`{text}` is out of range for `{key}`"));
                    None
                }
                _ if text.starts_with('-') && text[1..].bytes().all(|b| b.is_ascii_digit()) && text.len() > 1 => {
                    self.type_error(f, "a whole number of 0 or more", format!("`{key}` cannot be negative"));
                    None
                }
                _ => {
                    self.type_error(f, "a whole number", format!("write digits only, e.g. `{key}: 3`"));
                    None
                }
            },
            Kind::Scalar { text, plain: false } if text.parse::<u64>().is_ok() => {
                self.type_error(f, "a whole number", format!("remove the quotes: `{key}: {text}`"));
                None
            }
            _ => {
                self.type_error(f, "a whole number", format!("write digits only, e.g. `{key}: 3`"));
                None
            }
        }
    }

    fn boolean(&mut self, f: &Field<'_>) -> Option<bool> {
        if let Kind::Scalar { text, plain: true } = &f.value.kind {
            match text.as_str() {
                "true" | "True" | "TRUE" => return Some(true),
                "false" | "False" | "FALSE" => return Some(false),
                _ => {}
            }
        }
        let key = f.name().to_string();
        self.type_error(
            f,
            "true or false",
            format!("write `{key}: true` or `{key}: false` (no quotes; YAML 1.2 reads yes/no/on/off as strings)"),
        );
        None
    }

    fn ipv4_net(&mut self, f: &Field<'_>) -> Option<Ipv4Net> {
        let text = self.string(f)?;
        let text = text.trim();
        if let Ok(net) = text.parse::<Ipv4Net>() {
            if net.trunc() == net {
                return Some(net);
            }
            let fixed = net.trunc();
            let help = format!(
                "a range is written with its network address: `{fixed}` \
                 (or a longer prefix if you meant a smaller range)"
            );
            let message = format!("{} `{text}` has host bits set", f.shown());
            self.error(f.span(), Problem::new(message, format!("did you mean {fixed}?")).help(help));
            return None;
        }
        let help = if let Ok(ip) = text.parse::<Ipv4Addr>() {
            format!("add the prefix length, e.g. `{ip}/16`")
        } else if text.contains(':') {
            "only IPv4 ranges are supported here, e.g. `10.0.0.0/16`".to_string()
        } else {
            "write an IPv4 range in CIDR notation, e.g. `10.0.0.0/16`".to_string()
        };
        self.error(
            f.span(),
            Problem::new(format!("{} `{text}` is not an IPv4 CIDR range", f.shown()), "expected a CIDR").help(help),
        );
        None
    }

    fn ipv4_addr(&mut self, f: &Field<'_>) -> Option<Ipv4Addr> {
        let text = self.string(f)?;
        match text.trim().parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let help = match text.split_once('/') {
                    Some((ip, _)) if ip.parse::<Ipv4Addr>().is_ok() => {
                        format!("give a single address without a prefix: `{ip}`")
                    }
                    _ => "write a dotted IPv4 address, e.g. `172.20.0.10`".to_string(),
                };
                self.error(
                    f.span(),
                    Problem::new(format!("{} `{text}` is not an IPv4 address", f.shown()), "expected an IPv4 address")
                        .help(help),
                );
                None
            }
        }
    }

    fn ip_addr(&mut self, f: &Field<'_>) -> Option<IpAddr> {
        let text = self.string(f)?;
        match text.trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.error(
                    f.span(),
                    Problem::new(format!("{} `{text}` is not an IP address", f.shown()), "expected an IP address")
                        .help("write an IPv4 or IPv6 address without a port, e.g. `1.1.1.1`"),
                );
                None
            }
        }
    }

    fn choice<T: Copy>(&mut self, f: &Field<'_>, options: &[(&str, T)]) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        if let Kind::Scalar { text, .. } = &f.value.kind
            && let Some((_, v)) = options.iter().find(|(n, _)| n == text)
        {
            return Some(*v);
        }
        let expected = format!("one of {}", names.join(", "));
        self.type_error(f, &expected, format!("write e.g. `{}: {}`", f.name(), names[0]));
        None
    }

    fn list_of<'n, T>(&mut self, f: &Field<'n>, conv: impl Fn(&mut Self, &Field<'n>) -> Option<T>) -> Option<Vec<T>> {
        let items = self.list(f)?;
        let decoded: Vec<Option<T>> = items.iter().map(|i| conv(self, i)).collect();
        decoded.into_iter().collect()
    }

    // -----------------------------------------------------------------------------------------
    // The platform file

    /// Decodes and checks `matih.yaml`. Tenants are left empty.
    pub(crate) fn platform_file(&mut self, root: &Node) -> Option<PlatformSpec> {
        let f = Field::root(root);
        let m = self.mapping(&f, ROOT_KEYS)?;
        let platform =
            self.req(&m, "platform", "{ name: matih, domain: matih.ai, ... }").and_then(|p| self.platform(&p));
        let clouds = self.req(&m, "clouds", "{ eks: { ... } }").and_then(|c| self.clouds(&c));
        let addons = match self.opt(&m, "addons") {
            Ok(Some(a)) => self.addons(&a),
            Ok(None) => Some(Addons::default()),
            Err(()) => None,
        };
        let state = match self.opt(&m, "state") {
            Ok(Some(s)) => self.state(&s),
            Ok(None) => Some(StateSpec::default()),
            Err(()) => None,
        };
        let spec =
            PlatformSpec { platform: platform?, clouds: clouds?, addons: addons?, state: state?, tenants: Vec::new() };
        let mut out = Findings::default();
        check::version_floors(&spec, &mut out);
        check::gke_names(&spec, &mut out);
        self.apply(f.value, out);
        Some(spec)
    }

    fn state(&mut self, f: &Field<'_>) -> Option<StateSpec> {
        #[derive(Clone, Copy)]
        enum B {
            Local,
            S3,
            Gcs,
            AzBlob,
        }
        let m = self.mapping(f, STATE_KEYS)?;
        let backend = self.req_as(&m, "backend", "s3", |d, f| {
            d.choice(f, &[("local", B::Local), ("s3", B::S3), ("gcs", B::Gcs), ("azblob", B::AzBlob)])
        })?;
        let (name, wants): (&str, &[&str]) = match backend {
            B::Local => ("local", &[]),
            B::S3 => ("s3", &["bucket", "region", "prefix"]),
            B::Gcs => ("gcs", &["bucket", "prefix"]),
            B::AzBlob => ("azblob", &["account", "container", "prefix"]),
        };
        let mut stray = false;
        for (key, k, _) in &m.entries {
            if *key != "backend" && !wants.contains(key) {
                stray = true;
                let takes = if wants.is_empty() { "no other keys".to_string() } else { wants.join(", ") };
                self.error(
                    k.span,
                    Problem::new(
                        format!("`{}` is not a setting of the {name} backend", m.field.child(key)),
                        "not used",
                    )
                    .help(format!("the {name} backend takes {takes}; remove `{key}` or choose another backend")),
                );
            }
        }
        let prefix = self.opt_as(&m, "prefix", Self::string);
        let spec = match backend {
            B::Local => StateBackend::Local,
            B::S3 => {
                let bucket = self.req_as(&m, "bucket", "acme-matih-state", Self::string);
                let region = self.opt_as(&m, "region", Self::string);
                StateBackend::S3 { bucket: bucket?, region: region.ok()? }
            }
            B::Gcs => StateBackend::Gcs { bucket: self.req_as(&m, "bucket", "acme-matih-state", Self::string)? },
            B::AzBlob => {
                let account = self.req_as(&m, "account", "acmematihstate", Self::string);
                let container = self.req_as(&m, "container", "matih-state", Self::string);
                StateBackend::AzBlob { account: account?, container: container? }
            }
        };
        let s = StateSpec { backend: spec, prefix: prefix.ok()? };
        if stray {
            return None;
        }
        let mut out = Findings::default();
        check::state(&s, &mut out);
        self.apply(f.value, out);
        Some(s)
    }

    fn platform(&mut self, f: &Field<'_>) -> Option<Platform> {
        let m = self.mapping(f, PLATFORM_KEYS)?;
        let name = self.req_as(&m, "name", "matih", Self::string);
        let domain = self.req_as(&m, "domain", "matih.ai", Self::string);
        let environment = self.req_as(&m, "environment", "prod", Self::string);
        let acme_email = self.req_as(&m, "acme_email", "platform-team@matih.ai", Self::string);
        let p = Platform { name: name?, domain: domain?, environment: environment?, acme_email: acme_email? };
        let mut out = Findings::default();
        check::platform(&p, &mut out);
        self.apply(f.value, out);
        Some(p)
    }

    fn clouds(&mut self, f: &Field<'_>) -> Option<Clouds> {
        let m = self.mapping(f, CLOUDS_KEYS)?;
        let eks = self.opt(&m, "eks").map(|c| c.map(|c| self.eks(&c)));
        let gke = self.opt(&m, "gke").map(|c| c.map(|c| self.gke(&c)));
        let aks = self.opt(&m, "aks").map(|c| c.map(|c| self.aks(&c)));
        if matches!(eks, Ok(None)) && matches!(gke, Ok(None)) && matches!(aks, Ok(None)) {
            self.error(
                f.owner(),
                Problem::new("no cloud is configured", "no eks, gke or aks section")
                    .help("add at least one of `eks:`, `gke:` or `aks:` under `clouds:` (see examples/matih.yaml)"),
            );
            return None;
        }
        Some(Clouds { eks: section(eks)?, gke: section(gke)?, aks: section(aks)? })
    }

    fn node_pools(&mut self, m: &Fields<'_>, cloud: CloudKind) -> Option<Vec<NodePool>> {
        let example = "[{ name: system, machine_type: <type>, min: 2, max: 4 }]";
        let f = self.req(m, "node_pools", example)?;
        self.list_of(&f, |d, item| d.node_pool(item, cloud))
    }

    fn node_pool(&mut self, f: &Field<'_>, cloud: CloudKind) -> Option<NodePool> {
        let m = self.mapping(f, NODE_POOL_KEYS)?;
        let example_type = match cloud {
            CloudKind::Eks => "m6i.large",
            CloudKind::Gke => "e2-standard-4",
            CloudKind::Aks => "Standard_D4s_v5",
        };
        let name = self.req_as(&m, "name", "system", Self::string);
        let machine_type = self.req_as(&m, "machine_type", example_type, Self::string);
        let min = self.req_as(&m, "min", "2", Self::uint::<u32>);
        let max = self.req_as(&m, "max", "4", Self::uint::<u32>);
        let desired = self.opt_as(&m, "desired", Self::uint::<u32>);
        Some(NodePool { name: name?, machine_type: machine_type?, min: min?, max: max?, desired: desired.ok()? })
    }

    /// Region, version and node pools: decoded and checked the same way on every cloud.
    fn cluster_common(
        &mut self,
        f: &Field<'_>,
        m: &Fields<'_>,
        cloud: CloudKind,
        region_key: &str,
        region_example: &str,
    ) -> (Option<String>, Option<String>, Option<Vec<NodePool>>) {
        let region = self.req_as(m, region_key, region_example, Self::string);
        let version = self.req_as(m, "kubernetes_version", "\"1.33\"", Self::string);
        let pools = self.node_pools(m, cloud);
        let mut out = Findings::default();
        if let Some(r) = &region {
            check::region(region_key, r, region_example, &mut out);
        }
        if let Some(v) = &version {
            check::kubernetes_version(v, &mut out);
        }
        if let Some(p) = &pools {
            check::node_pools(cloud, p, &mut out);
        }
        self.apply(f.value, out);
        (region, version, pools)
    }

    fn eks(&mut self, f: &Field<'_>) -> Option<EksSpec> {
        let m = self.mapping(f, EKS_KEYS)?;
        let (region, version, pools) = self.cluster_common(f, &m, CloudKind::Eks, "region", "us-east-1");
        let network = self
            .req(&m, "network", "{ vpc_cidr: 10.0.0.0/16, service_cidr: 172.20.0.0/16 }")
            .and_then(|n| self.eks_network(&n));
        let endpoint = match self.opt(&m, "endpoint") {
            Ok(Some(e)) => self.eks_endpoint(&e),
            Ok(None) => Some(EksEndpoint::default()),
            Err(()) => None,
        };
        if let Some(e) = &endpoint {
            let mut out = Findings::default();
            check::eks_endpoint(e, &mut out);
            self.apply(f.value, out);
        }
        Some(EksSpec {
            region: region?,
            kubernetes_version: version?,
            network: network?,
            endpoint: endpoint?,
            node_pools: pools?,
        })
    }

    fn eks_network(&mut self, f: &Field<'_>) -> Option<EksNetwork> {
        let m = self.mapping(f, EKS_NETWORK_KEYS)?;
        let vpc_cidr = self.req_as(&m, "vpc_cidr", "10.0.0.0/16", Self::ipv4_net);
        let azs = self.opt_as(&m, "availability_zones", Self::uint::<u8>);
        let nat = self.opt_as(&m, "nat_gateways", |d, f| {
            d.choice(f, &[("single", NatGateways::Single), ("per-az", NatGateways::PerAz)])
        });
        let service_cidr = self.req_as(&m, "service_cidr", "172.20.0.0/16", Self::ipv4_net);
        let dns = self.opt_as(&m, "cluster_dns_ip", Self::ipv4_addr);
        let n = EksNetwork {
            vpc_cidr: vpc_cidr?,
            availability_zones: azs.ok()?.unwrap_or(3),
            nat_gateways: nat.ok()?.unwrap_or(NatGateways::Single),
            service_cidr: service_cidr?,
            cluster_dns_ip: dns.ok()?,
        };
        let mut out = Findings::default();
        check::eks_network(&n, &mut out);
        self.apply(f.value, out);
        Some(n)
    }

    fn eks_endpoint(&mut self, f: &Field<'_>) -> Option<EksEndpoint> {
        let m = self.mapping(f, EKS_ENDPOINT_KEYS)?;
        let default = EksEndpoint::default();
        let public = self.opt_as(&m, "public_access", Self::boolean);
        let private = self.opt_as(&m, "private_access", Self::boolean);
        let cidrs = self.opt_as(&m, "public_access_cidrs", |d, f| d.list_of(f, Self::ipv4_net));
        Some(EksEndpoint {
            public_access: public.ok()?.unwrap_or(default.public_access),
            private_access: private.ok()?.unwrap_or(default.private_access),
            public_access_cidrs: cidrs.ok()?.unwrap_or(default.public_access_cidrs),
        })
    }

    fn gke(&mut self, f: &Field<'_>) -> Option<GkeSpec> {
        let m = self.mapping(f, GKE_KEYS)?;
        let project = self.req_as(&m, "project", "matih-prod", Self::string);
        let (region, version, pools) = self.cluster_common(f, &m, CloudKind::Gke, "region", "us-central1");
        let network = self
            .req(&m, "network", "{ subnet_cidr: ..., pods_cidr: ..., services_cidr: ... }")
            .and_then(|n| self.gke_network(&n));
        let dataplane = self.opt_as(&m, "dataplane", |d, f| {
            d.choice(f, &[("calico", GkeDataplane::Calico), ("dataplane-v2", GkeDataplane::DataplaneV2)])
        });
        let g = GkeSpec {
            project: project?,
            region: region?,
            kubernetes_version: version?,
            network: network?,
            node_pools: pools?,
            dataplane: dataplane.ok()?.unwrap_or_default(),
        };
        let mut out = Findings::default();
        check::gke(&g, &mut out);
        self.apply(f.value, out);
        Some(g)
    }

    fn gke_network(&mut self, f: &Field<'_>) -> Option<GkeNetwork> {
        let m = self.mapping(f, GKE_NETWORK_KEYS)?;
        let subnet = self.req_as(&m, "subnet_cidr", "10.10.0.0/20", Self::ipv4_net);
        let pods = self.req_as(&m, "pods_cidr", "10.16.0.0/14", Self::ipv4_net);
        let services = self.req_as(&m, "services_cidr", "10.20.0.0/20", Self::ipv4_net);
        let master = self.opt_as(&m, "master_cidr", Self::ipv4_net);
        let n = GkeNetwork {
            subnet_cidr: subnet?,
            pods_cidr: pods?,
            services_cidr: services?,
            master_cidr: master.ok()?.unwrap_or_else(|| GkeNetwork::DEFAULT_MASTER_CIDR.parse().expect("a valid CIDR")),
        };
        let mut out = Findings::default();
        check::gke_network(&n, &mut out);
        self.apply(f.value, out);
        Some(n)
    }

    fn aks(&mut self, f: &Field<'_>) -> Option<AksSpec> {
        let m = self.mapping(f, AKS_KEYS)?;
        let subscription_id = self.req_as(&m, "subscription_id", "00000000-0000-0000-0000-000000000000", Self::string);
        let resource_group = self.req_as(&m, "resource_group", "matih-prod-rg", Self::string);
        let (location, version, pools) = self.cluster_common(f, &m, CloudKind::Aks, "location", "eastus");
        let network = self
            .req(&m, "network", "{ vnet_cidr: ..., node_subnet_cidr: ..., service_cidr: ... }")
            .and_then(|n| self.aks_network(&n));
        let entra_id = self.opt_as(&m, "entra_id", Self::aks_entra_id);
        let a = AksSpec {
            subscription_id: subscription_id?,
            resource_group: resource_group?,
            location: location?,
            kubernetes_version: version?,
            network: network?,
            node_pools: pools?,
            entra_id: entra_id.ok()?,
        };
        let mut out = Findings::default();
        check::aks(&a, &mut out);
        self.apply(f.value, out);
        Some(a)
    }

    fn aks_entra_id(&mut self, f: &Field<'_>) -> Option<AksEntraId> {
        let m = self.mapping(f, AKS_ENTRA_KEYS)?;
        let groups = self.opt_as(&m, "admin_group_ids", |d, f| d.list_of(f, Self::string));
        let admins = self.opt_as(&m, "cluster_admins", |d, f| d.list_of(f, Self::string));
        let e = AksEntraId {
            admin_group_ids: groups.ok()?.unwrap_or_default(),
            cluster_admins: admins.ok()?.unwrap_or_default(),
        };
        let mut out = Findings::default();
        check::aks_entra_id(&e, &mut out);
        self.apply(f.value, out);
        Some(e)
    }

    fn aks_network(&mut self, f: &Field<'_>) -> Option<AksNetwork> {
        let m = self.mapping(f, AKS_NETWORK_KEYS)?;
        let vnet = self.req_as(&m, "vnet_cidr", "10.30.0.0/16", Self::ipv4_net);
        let node = self.req_as(&m, "node_subnet_cidr", "10.30.0.0/20", Self::ipv4_net);
        let pod = self.opt_as(&m, "pod_subnet_cidr", Self::ipv4_net);
        let service = self.req_as(&m, "service_cidr", "172.16.0.0/16", Self::ipv4_net);
        let dns = self.opt_as(&m, "dns_service_ip", Self::ipv4_addr);
        let n = AksNetwork {
            vnet_cidr: vnet?,
            node_subnet_cidr: node?,
            pod_subnet_cidr: pod.ok()?,
            service_cidr: service?,
            dns_service_ip: dns.ok()?,
        };
        let mut out = Findings::default();
        check::aks_network(&n, &mut out);
        self.apply(f.value, out);
        Some(n)
    }

    fn addons(&mut self, f: &Field<'_>) -> Option<Addons> {
        let m = self.mapping(f, ADDONS_KEYS)?;
        let defaults = Addons::default();
        let mut certificates = Some(Certificates::default());
        let mut addon = |d: &mut Self, key: &str, default: Addon| match d.opt(&m, key) {
            Ok(None) => Some(default),
            Ok(Some(a)) => {
                let keys = if key == "cert_manager" { CERT_MANAGER_KEYS } else { ADDON_KEYS };
                let am = d.mapping(&a, keys)?;
                let version = d.opt_as(&am, "version", Self::string).ok()?;
                if key == "cert_manager" {
                    certificates = d
                        .opt_as(&am, "certificates", |d, f| {
                            d.choice(
                                f,
                                &[("wildcard", Certificates::Wildcard), ("per-tenant", Certificates::PerTenant)],
                            )
                        })
                        .ok()
                        .map(Option::unwrap_or_default);
                }
                Some(Addon { version: version.unwrap_or(default.version) })
            }
            Err(()) => None,
        };
        let calico = addon(self, "calico", defaults.calico);
        let ingress_nginx = addon(self, "ingress_nginx", defaults.ingress_nginx);
        let cert_manager = addon(self, "cert_manager", defaults.cert_manager);
        let coredns = match self.opt(&m, "coredns") {
            Ok(Some(c)) => self.coredns(&c),
            Ok(None) => Some(CoreDns::default()),
            Err(()) => None,
        };
        let network_policies = match self.opt(&m, "network_policies") {
            Ok(Some(n)) => self.network_policies(&n),
            Ok(None) => Some(NetworkPolicies::default()),
            Err(()) => None,
        };
        let a = Addons {
            calico: calico?,
            ingress_nginx: ingress_nginx?,
            cert_manager: cert_manager?,
            certificates: certificates?,
            coredns: coredns?,
            network_policies: network_policies?,
        };
        let mut out = Findings::default();
        check::addons(&a, &mut out);
        self.apply(f.value, out);
        Some(a)
    }

    fn coredns(&mut self, f: &Field<'_>) -> Option<CoreDns> {
        let m = self.mapping(f, COREDNS_KEYS)?;
        let forwarders = self.opt_as(&m, "forwarders", |d, f| d.list_of(f, Self::ip_addr));
        let stubs = match self.opt(&m, "stub_domains") {
            Ok(None) => Some(BTreeMap::new()),
            Ok(Some(s)) => self.stub_domains(&s),
            Err(()) => None,
        };
        Some(CoreDns { forwarders: forwarders.ok()?.unwrap_or_default(), stub_domains: stubs? })
    }

    fn network_policies(&mut self, f: &Field<'_>) -> Option<NetworkPolicies> {
        let m = self.mapping(f, NETWORK_POLICIES_KEYS)?;
        let defaults = NetworkPolicies::default();
        let kafka = self.opt_as(&m, "kafka_namespace", Self::string);
        let internet = self.opt_as(&m, "internet_egress", |d, f| d.list_of(f, Self::string));
        Some(NetworkPolicies {
            kafka_namespace: kafka.ok()?.unwrap_or(defaults.kafka_namespace),
            internet_egress: internet.ok()?.unwrap_or(defaults.internet_egress),
        })
    }

    /// A mapping with free-form keys (domain names), each a list of resolver IPs.
    fn stub_domains(&mut self, f: &Field<'_>) -> Option<BTreeMap<String, Vec<IpAddr>>> {
        let Kind::Map(entries) = &f.value.kind else {
            self.type_error(f, "a mapping", "write `stub_domains: { corp.example: [10.0.0.2] }`".to_string());
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in entries {
            let Some(domain) = key.scalar_text() else {
                let problem = Problem::new("stub domain names must be plain strings", "not a name")
                    .help("write each domain as a key, e.g. `corp.example: [10.0.0.2]`");
                self.error(key.span, problem);
                ok = false;
                continue;
            };
            let field = Field { path: f.child(domain), key: Some(key), value };
            match self.list_of(&field, Self::ip_addr) {
                Some(ips) => {
                    out.insert(domain.to_string(), ips);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    // -----------------------------------------------------------------------------------------
    // Tenant files

    /// Decodes and checks one tenant file; `stem` is its file name without the extension.
    pub(crate) fn tenant_file(&mut self, root: &Node, stem: &str) -> Option<TenantSpec> {
        let f = Field::root(root);
        let m = self.mapping(&f, TENANT_KEYS)?;
        let slug = self.req_as(&m, "slug", stem, Self::string);
        let display_name = self.req_as(&m, "display_name", "Acme Corp", Self::string);
        let dedicated = self.opt_as(&m, "dedicated_ingress", Self::boolean);
        let t = TenantSpec {
            slug: slug?,
            display_name: display_name?,
            dedicated_ingress: dedicated.ok()?.unwrap_or(false),
            file: self.file.path().to_path_buf(),
        };
        let mut out = Findings::default();
        check::tenant(&t, stem, &mut out);
        self.apply(root, out);
        Some(t)
    }
}

/// A cloud section: `Some(None)` when absent, `None` when it was present but failed to decode.
fn section<T>(c: Result<Option<Option<T>>, ()>) -> Option<Option<T>> {
    match c {
        Ok(None) => Some(None),
        Ok(Some(Some(v))) => Some(Some(v)),
        _ => None,
    }
}

/// The span for a finding at `path` below `base`: the value (or, for `on_key` or a value that
/// is empty, its key).
pub(crate) fn locate(base: &Node, path: &str, on_key: bool) -> Span {
    let value = base.locate(path);
    if on_key || value.span.end <= value.span.start.byte { base.locate_key(path).span } else { value.span }
}

/// The allowed key `name` is most likely a misspelling of, if any.
fn closest(name: &str, allowed: &[&'static str]) -> Option<&'static str> {
    let limit = 2.max(name.len() / 4);
    allowed.iter().copied().filter(|a| edit_distance(a, name) <= limit).min_by_key(|a| edit_distance(a, name))
}

fn unknown_key(name: &str, close: Option<&str>, f: &Field<'_>, allowed: &[&str]) -> Problem {
    let help = if name == "<<" {
        "YAML merge keys are not supported; write the keys out (anchors `&x` and aliases `*x` do work)".to_string()
    } else if let Some(c) = close {
        format!("did you mean `{c}`? Allowed keys here: {}", allowed.join(", "))
    } else {
        format!("allowed keys here: {}", allowed.join(", "))
    };
    Problem::new(format!("unknown key `{name}` in {}", f.shown()), "unknown key").help(help)
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::yaml;

    /// Decodes a platform file and returns its rendered problems (`line:col: message`).
    fn problems(text: &str) -> (Option<PlatformSpec>, Vec<String>) {
        let file = SourceFile::new(Path::new("m.yaml"), text.to_string());
        let mut sink = Sink::default();
        let root = yaml::parse(&file, &mut sink).unwrap();
        let spec = Decoder::new(&file, &mut sink).platform_file(&root);
        let mut items = sink.items;
        items.sort_by_key(|d| (d.line(), d.column()));
        (spec, items.iter().map(|d| format!("{}:{}: {}", d.line(), d.column(), d.message())).collect())
    }

    const GOOD: &str = "\
platform: { name: matih, domain: matih.ai, environment: prod, acme_email: a@matih.ai }
clouds:
  eks:
    region: us-east-1
    kubernetes_version: 1.33
    network: { vpc_cidr: 10.0.0.0/16, service_cidr: 172.20.0.0/16 }
    node_pools:
      - { name: system, machine_type: m6i.large, min: 2, max: 4 }
";

    #[test]
    fn state_is_local_unless_a_store_is_named_and_each_store_takes_its_own_settings() {
        let (spec, errs) = problems(GOOD);
        assert!(errs.is_empty());
        let spec = spec.unwrap();
        assert_eq!(spec.state, StateSpec::default());
        assert_eq!(spec.state_key("eks"), "matih/prod-eks.json");

        let (spec, errs) =
            problems(&format!("{GOOD}state: {{ backend: s3, bucket: acme-state, region: eu-west-1, prefix: a/b }}\n"));
        assert_eq!(errs, Vec::<String>::new());
        let spec = spec.unwrap();
        assert_eq!(
            spec.state.backend,
            StateBackend::S3 { bucket: "acme-state".into(), region: Some("eu-west-1".into()) }
        );
        assert_eq!(spec.state_key("gke"), "a/b/prod-gke.json");
        let (spec, errs) = problems(&format!("{GOOD}state: {{ backend: azblob, account: acme1, container: st-1 }}\n"));
        assert_eq!(errs, Vec::<String>::new());
        assert_eq!(
            spec.unwrap().state.backend,
            StateBackend::AzBlob { account: "acme1".into(), container: "st-1".into() }
        );

        let (_, errs) = problems(&format!("{GOOD}state: {{ backend: s3, container: x }}\n"));
        assert_eq!(
            errs,
            ["9:1: missing key `state.bucket`", "9:23: `state.container` is not a setting of the s3 backend",]
        );
        let (_, errs) = problems(&format!("{GOOD}state: {{ backend: gcs, bucket: Goog_X }}\n"));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("contains `G`"), "{errs:?}");
        let (_, errs) = problems(&format!("{GOOD}state: {{ backend: s3, bucket: ok-bucket, prefix: /a/../b }}\n"));
        assert!(errs.len() == 1 && errs[0].contains("starts or ends with `/`"), "{errs:?}");
        let (_, errs) = problems(&format!("{GOOD}state: {{ backend: azblob, account: Acme, container: a--b }}\n"));
        assert_eq!(errs.len(), 2, "{errs:?}");
        let (_, errs) = problems(&format!("{GOOD}state: {{ backend: ftp }}\n"));
        assert!(errs.len() == 1 && errs[0].contains("one of local, s3, gcs, azblob"), "{errs:?}");
    }

    #[test]
    fn certificates_are_wildcard_unless_per_tenant_is_asked_for() {
        let (spec, errs) = problems(GOOD);
        assert!(errs.is_empty());
        assert_eq!(spec.unwrap().addons.certificates, Certificates::Wildcard);
        let (spec, errs) = problems(&format!("{GOOD}addons:\n  cert_manager: {{ certificates: per-tenant }}\n"));
        assert_eq!(errs, Vec::<String>::new());
        let spec = spec.unwrap();
        assert_eq!(spec.addons.certificates, Certificates::PerTenant);
        assert_eq!(spec.addons.cert_manager.version, Addons::DEFAULT_CERT_MANAGER);
        let (_, errs) = problems(&format!("{GOOD}addons:\n  cert_manager: {{ certificates: each }}\n"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("each"), "{errs:?}");
        let (_, errs) = problems(&format!("{GOOD}addons:\n  calico: {{ certificates: per-tenant }}\n"));
        assert_eq!(errs.len(), 1, "only cert_manager has certificates: {errs:?}");
    }

    #[test]
    fn a_minimal_spec_decodes_with_defaults() {
        let (spec, errs) = problems(GOOD);
        assert_eq!(errs, Vec::<String>::new());
        let spec = spec.unwrap();
        let eks = spec.clouds.eks.unwrap();
        assert_eq!(eks.kubernetes_version, "1.33");
        assert_eq!(eks.network.availability_zones, 3);
        assert_eq!(eks.network.nat_gateways, NatGateways::Single);
        assert_eq!(eks.endpoint, EksEndpoint::default());
        assert_eq!(spec.addons, Addons::default());
    }

    #[test]
    fn all_structural_errors_are_reported_in_one_pass() {
        let text = GOOD
            .replace("region: us-east-1", "regoin: us-east-1")
            .replace("min: 2", "min: two")
            .replace("service_cidr: 172.20.0.0/16", "service_cidr: 172.20.0.1/16");
        let (spec, errs) = problems(&format!("{text}extra: 1\n"));
        assert!(spec.is_none());
        assert_eq!(
            errs,
            [
                "4:5: unknown key `regoin` in `clouds.eks`",
                "6:53: `clouds.eks.network.service_cidr` `172.20.0.1/16` has host bits set",
                "8:55: `clouds.eks.node_pools[0].min` must be a whole number, found `two`",
                "9:1: unknown key `extra` in the top level",
            ]
        );
    }

    #[test]
    fn semantic_errors_point_at_the_value() {
        let text = GOOD.replace("service_cidr: 172.20.0.0/16", "service_cidr: 10.0.128.0/20");
        let (_, errs) = problems(&text);
        assert_eq!(errs, ["6:53: service_cidr 10.0.128.0/20 overlaps vpc_cidr 10.0.0.0/16"]);
    }

    #[test]
    fn duplicate_keys_empty_values_and_quoted_numbers() {
        let text = GOOD.replace("    region: us-east-1\n", "    region: us-east-1\n    region: us-west-2\n");
        let (_, errs) = problems(&text);
        assert_eq!(errs, ["5:5: key `region` appears twice in `clouds.eks`"]);

        let text = GOOD.replace("max: 4", "max: \"4\"").replace("kubernetes_version: 1.33", "kubernetes_version:");
        let (_, errs) = problems(&text);
        assert_eq!(
            errs,
            [
                "5:5: `clouds.eks.kubernetes_version` has no value",
                "8:63: `clouds.eks.node_pools[0].max` must be a whole number, found the string \"4\"",
            ]
        );
    }

    #[test]
    fn an_empty_file_says_what_belongs_in_it() {
        let file = SourceFile::new(Path::new("m.yaml"), "# nothing yet\n".to_string());
        let mut sink = Sink::default();
        let root = yaml::parse(&file, &mut sink).unwrap();
        assert!(Decoder::new(&file, &mut sink).platform_file(&root).is_none());
        assert_eq!(sink.items[0].message(), "the file must be a mapping, found nothing (null)");
        assert_eq!(
            sink.items[0].help(),
            Some("the file is a mapping with the top-level keys platform, clouds, addons, state")
        );
    }

    #[test]
    fn no_cloud_is_an_error_at_clouds() {
        let (_, errs) = problems(
            "platform: { name: matih, domain: matih.ai, environment: prod, acme_email: a@matih.ai }\nclouds: {}\n",
        );
        assert_eq!(errs, ["2:1: no cloud is configured"]);
    }

    #[test]
    fn suggestions_for_unknown_keys() {
        let f = Node { kind: Kind::Null, span: Span::FILE_START };
        let field = Field { path: "clouds.eks.network".into(), key: None, value: &f };
        let close = closest("vpc_cdr", EKS_NETWORK_KEYS);
        assert_eq!(close, Some("vpc_cidr"));
        let p = unknown_key("vpc_cdr", close, &field, EKS_NETWORK_KEYS);
        assert!(p.help.unwrap().starts_with("did you mean `vpc_cidr`?"));
        assert_eq!(closest("zzz", EKS_NETWORK_KEYS), None);
        let p = unknown_key("zzz", None, &field, EKS_NETWORK_KEYS);
        assert!(p.help.unwrap().starts_with("allowed keys here"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
