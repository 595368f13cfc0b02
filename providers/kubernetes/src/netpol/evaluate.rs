//! Evaluates NetworkPolicies, as the Kubernetes NetworkPolicy API defines them, into a
//! namespace-to-namespace reachability matrix. It reads policies as data and never a cluster:
//! which pods exist, and what the CNI does beyond the API's semantics, are out of its sight.
//!
//! Semantics implemented: a pod is isolated for ingress (egress) iff some policy of its
//! namespace selects it with that policy type (`policyTypes` defaults to `Ingress`, plus `Egress`
//! when egress rules are present); what it allows is the union of those policies' rules; a
//! connection needs the source's egress AND the destination's ingress; in a peer,
//! `namespaceSelector` AND `podSelector` both have to match, a peer with only `podSelector`
//! means the policy's own namespace, several peers are alternatives; an empty or absent
//! `from`/`to` means every peer and an empty or absent `ports` every port; `endPort` ranges;
//! protocol TCP unless given; `matchLabels` and `matchExpressions` (In, NotIn, Exists,
//! DoesNotExist). Namespaces always carry `kubernetes.io/metadata.name`, as the API server
//! ensures.
//!
//! Approximations, deliberately:
//! - Pods. Each namespace is represented by a generic pod without labels, plus one pod per
//!   distinct pod selector that some policy applies to that namespace (the policy's own
//!   `podSelector`, or a peer's, in the namespaces the peer selects). Its labels are the
//!   selector's `matchLabels`, plus the first value of each `In` expression and an empty value
//!   for each `Exists` one, so that it matches its selector. An entry namespace A → namespace B
//!   lists the ports on which SOME representative pod of A may reach SOME representative pod of
//!   B: a port in the matrix is open for at least one kind of pod, not for all of them.
//! - The internet. [`INTERNET`] stands for every address outside the cluster. `ipBlock` peers
//!   match it (when the CIDR minus its `except` list is not empty) and never match a namespace's
//!   pods, although a real CNI may match pod IPs against a CIDR such as 0.0.0.0/0 (which is why
//!   the platform's own internet rule excepts the cluster's ranges). Traffic from the internet is
//!   judged by the destination's ingress alone, traffic to it by the source's egress alone;
//!   internet to internet is not cluster traffic and is never listed.
//! - Protocols. Only TCP and UDP are evaluated. SCTP ports and named (string) ports cannot be
//!   evaluated: they are reported as notes and allow nothing, so the matrix may under-state
//!   reachability but never over-states it because of them. Malformed policies (which the API
//!   server would reject) are reported as notes too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::generate::{NAMESPACE_NAME_LABEL, all_policies, namespace_labels};
use super::portset::{MAX_PORT, MIN_PORT, PortSet};
use crate::layout::{KUBE_SYSTEM, Layout, PLATFORM_NAMESPACES, Protocol};

/// The pseudo-namespace for every address outside the cluster: the internet, the cloud's load
/// balancers, the API server (parentheses: no namespace can be called that).
pub const INTERNET: &str = "(internet)";

/// Version of the JSON document [`Reachability`] serializes to. 2: the pseudo-namespace for
/// addresses outside the cluster is `(internet)` (was `(outside)`).
pub const REACHABILITY_FORMAT_VERSION: u32 = 2;

/// A namespace to evaluate, with its labels (`kubernetes.io/metadata.name` may be left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Which namespace may reach which, on which ports. Serializes to the stable JSON document
/// that `matih-infra policy report -o json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reachability {
    pub version: u32,
    /// The evaluated namespaces in the order given, then [`INTERNET`].
    pub namespaces: Vec<String>,
    /// One per (from, to) pair that allows anything, in `namespaces` order of `from`, then `to`.
    pub entries: Vec<Entry>,
    /// What could not be evaluated; in policy order.
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub from: String,
    pub to: String,
    /// Never empty; TCP before UDP, ascending, adjacent ranges merged.
    pub ports: Vec<PortRange>,
}

/// A port or an inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRange {
    pub protocol: Protocol,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_port: Option<u16>,
}

impl PortRange {
    pub fn last(&self) -> u16 {
        self.end_port.unwrap_or(self.port)
    }

    pub fn contains(&self, protocol: Protocol, port: u16) -> bool {
        self.protocol == protocol && self.port <= port && port <= self.last()
    }
}

/// Something in a policy the evaluator could not take into account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub namespace: String,
    pub policy: String,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}: {}", self.namespace, self.policy, self.message)
    }
}

impl Reachability {
    /// The ports `from` may reach in `to` (empty when nothing is allowed or a name is unknown).
    pub fn ports(&self, from: &str, to: &str) -> &[PortRange] {
        self.entries.iter().find(|e| e.from == from && e.to == to).map(|e| e.ports.as_slice()).unwrap_or(&[])
    }

    pub fn allows(&self, from: &str, to: &str, protocol: Protocol, port: u16) -> bool {
        self.ports(from, to).iter().any(|r| r.contains(protocol, port))
    }

    /// A table for a terminal: a title, one block per source with a line per destination (`-`
    /// when nothing is allowed), then the notes. No colour, no trailing spaces.
    pub fn render_text(&self) -> String {
        let width = self.namespaces.iter().map(String::len).max().unwrap_or(0).max("FROM".len());
        let mut out = String::from("Ports allowed by network policy, from each namespace to each (-: none).\n\n");
        out.push_str(&format!("{:width$}  {:width$}  ALLOWED\n", "FROM", "TO"));
        for (i, from) in self.namespaces.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let mut first = true;
            for to in &self.namespaces {
                if from == INTERNET && to == INTERNET {
                    continue;
                }
                let shown_from = if first { from.as_str() } else { "" };
                first = false;
                let allowed = describe(self.ports(from, to));
                out.push_str(format!("{shown_from:width$}  {to:width$}  {allowed}").trim_end());
                out.push('\n');
            }
        }
        if !self.notes.is_empty() {
            out.push_str("\nnotes:\n");
            for note in &self.notes {
                out.push_str(&format!("  {note}\n"));
            }
        }
        out
    }
}

/// `TCP 80, 443, 8080-8089; UDP all`, or `-`.
fn describe(ports: &[PortRange]) -> String {
    if ports.is_empty() {
        return "-".into();
    }
    let mut parts = Vec::new();
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        let ranges: Vec<String> = ports
            .iter()
            .filter(|r| r.protocol == protocol)
            .map(|r| match r.end_port {
                _ if r.port == MIN_PORT && r.last() == MAX_PORT => "all".to_string(),
                Some(end) => format!("{}-{end}", r.port),
                None => r.port.to_string(),
            })
            .collect();
        if !ranges.is_empty() {
            parts.push(format!("{} {}", protocol.as_str(), ranges.join(", ")));
        }
    }
    parts.join("; ")
}

/// The platform's policies, evaluated over its namespaces, kube-system and the internet.
pub fn report(layout: &Layout) -> Reachability {
    let mut namespaces: Vec<NamespaceInfo> = PLATFORM_NAMESPACES
        .iter()
        .map(|ns| NamespaceInfo { name: ns.to_string(), labels: namespace_labels(ns, None) })
        .collect();
    namespaces.extend(
        layout.tenants.iter().map(|t| NamespaceInfo {
            name: t.namespace.clone(),
            labels: namespace_labels(&t.namespace, Some(&t.slug)),
        }),
    );
    namespaces.push(NamespaceInfo { name: KUBE_SYSTEM.into(), labels: BTreeMap::new() });
    evaluate(&namespaces, &all_policies(layout))
}

/// Evaluates `policies` over `namespaces` and the internet. Policies of namespaces not listed
/// are reported as notes and otherwise ignored.
pub fn evaluate(namespaces: &[NamespaceInfo], policies: &[NetworkPolicy]) -> Reachability {
    let mut notes = Notes::default();
    let mut spaces: Vec<Space> = Vec::new();
    for ns in namespaces {
        if spaces.iter().any(|s| s.name == ns.name) {
            notes.push(&ns.name, "-", "namespace listed twice; the first listing is used");
            continue;
        }
        let mut labels = ns.labels.clone();
        labels.insert(NAMESPACE_NAME_LABEL.into(), ns.name.clone());
        spaces.push(Space { name: ns.name.clone(), labels, pods: BTreeSet::from([BTreeMap::new()]) });
    }
    let compiled: Vec<Compiled> = policies.iter().filter_map(|p| compile(p, &spaces, &mut notes)).collect();
    add_representative_pods(&compiled, &mut spaces);

    let mut entries = Vec::new();
    let endpoints = |i: Option<usize>| -> Vec<Endpoint<'_>> {
        match i {
            None => vec![Endpoint::Internet],
            Some(i) => spaces[i].pods.iter().map(|labels| Endpoint::Pod { ns: i, labels }).collect(),
        }
    };
    let all: Vec<Option<usize>> = (0..spaces.len()).map(Some).chain([None]).collect();
    for &from in &all {
        for &to in &all {
            if from.is_none() && to.is_none() {
                continue;
            }
            let mut allowed = PortSet::empty();
            for src in endpoints(from) {
                for dst in endpoints(to) {
                    let egress = allowed_by(&compiled, &spaces, Direction::Egress, &src, &dst);
                    let ingress = allowed_by(&compiled, &spaces, Direction::Ingress, &dst, &src);
                    allowed.union_with(&egress.intersection(&ingress));
                }
            }
            if !allowed.is_empty() {
                let name = |i: Option<usize>| i.map_or(INTERNET.to_string(), |i| spaces[i].name.clone());
                let ports = allowed
                    .iter()
                    .map(|(protocol, first, last)| PortRange {
                        protocol,
                        port: first,
                        end_port: (last != first).then_some(last),
                    })
                    .collect();
                entries.push(Entry { from: name(from), to: name(to), ports });
            }
        }
    }
    Reachability {
        version: REACHABILITY_FORMAT_VERSION,
        namespaces: spaces.iter().map(|s| s.name.clone()).chain([INTERNET.to_string()]).collect(),
        entries,
        notes: notes.0,
    }
}

#[derive(Default)]
struct Notes(Vec<Note>);

impl Notes {
    fn push(&mut self, namespace: &str, policy: &str, message: impl Into<String>) {
        let note = Note { namespace: namespace.into(), policy: policy.into(), message: message.into() };
        if !self.0.contains(&note) {
            self.0.push(note);
        }
    }
}

/// An evaluated namespace and its representative pods (label sets; the empty one is the
/// generic pod).
struct Space {
    name: String,
    labels: BTreeMap<String, String>,
    pods: BTreeSet<BTreeMap<String, String>>,
}

#[derive(Clone, Copy)]
enum Endpoint<'a> {
    Internet,
    Pod { ns: usize, labels: &'a BTreeMap<String, String> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// A policy reduced to what evaluation needs; `None` rules mean the policy is not of that type.
struct Compiled {
    ns: usize,
    pods: Selector,
    ingress: Option<Vec<Rule>>,
    egress: Option<Vec<Rule>>,
}

struct Rule {
    /// `None`: every peer (the list was empty or absent).
    peers: Option<Vec<Peer>>,
    ports: PortSet,
}

enum Peer {
    /// An `ipBlock` covering at least one address.
    Internet,
    /// An `ipBlock` whose `except` list covers it all, or a malformed peer.
    Nothing,
    /// `namespaces: None` is the policy's own namespace; `pods: None` every pod.
    Pods { namespaces: Option<Selector>, pods: Option<Selector> },
}

struct Selector {
    labels: BTreeMap<String, String>,
    expressions: Vec<Expression>,
    /// A malformed selector matches nothing.
    malformed: bool,
}

enum Expression {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Selector {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.malformed
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|e| match e {
                Expression::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
                Expression::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
                Expression::Exists(k) => labels.contains_key(k),
                Expression::DoesNotExist(k) => !labels.contains_key(k),
            })
    }

    /// Labels of a pod this selector matches (when it can match any).
    fn representative(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        for e in &self.expressions {
            match e {
                Expression::In(k, values) => {
                    if let Some(first) = values.first() {
                        labels.entry(k.clone()).or_insert_with(|| first.clone());
                    }
                }
                Expression::Exists(k) => {
                    labels.entry(k.clone()).or_default();
                }
                Expression::NotIn(..) | Expression::DoesNotExist(_) => {}
            }
        }
        labels
    }
}

/// `policy` reduced for evaluation; `None` (with a note) when its namespace is not evaluated.
fn compile(policy: &NetworkPolicy, spaces: &[Space], notes: &mut Notes) -> Option<Compiled> {
    let name = policy.metadata.name.as_deref().unwrap_or("(unnamed)");
    let Some(ns_name) = policy.metadata.namespace.as_deref() else {
        notes.push("-", name, "no metadata.namespace; policy ignored");
        return None;
    };
    let Some(ns) = spaces.iter().position(|s| s.name == ns_name) else {
        notes.push(ns_name, name, "namespace not evaluated; policy ignored");
        return None;
    };
    let mut note = |message: String| notes.push(ns_name, name, message);
    let spec = policy.spec.clone().unwrap_or_default();
    let (is_ingress, is_egress) = match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => {
            for t in types.iter().filter(|t| *t != "Ingress" && *t != "Egress") {
                note(format!("unknown policy type {t:?}; ignored"));
            }
            (types.iter().any(|t| t == "Ingress"), types.iter().any(|t| t == "Egress"))
        }
        // The API server's default.
        _ => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
    };
    let pods =
        compile_selector(spec.pod_selector.as_ref().unwrap_or(&LabelSelector::default()), "podSelector", &mut note);
    let ingress = is_ingress.then(|| {
        let rules = spec.ingress.unwrap_or_default();
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                compile_rule(&format!("ingress rule {}", i + 1), r.from.as_deref(), r.ports.as_deref(), &mut note)
            })
            .collect()
    });
    let egress = is_egress.then(|| {
        let rules = spec.egress.unwrap_or_default();
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                compile_rule(&format!("egress rule {}", i + 1), r.to.as_deref(), r.ports.as_deref(), &mut note)
            })
            .collect()
    });
    Some(Compiled { ns, pods, ingress, egress })
}

fn compile_rule(
    what: &str,
    peers: Option<&[NetworkPolicyPeer]>,
    ports: Option<&[NetworkPolicyPort]>,
    note: &mut impl FnMut(String),
) -> Rule {
    let peers = match peers {
        None | Some([]) => None,
        Some(peers) => Some(peers.iter().map(|p| compile_peer(what, p, note)).collect()),
    };
    let ports = match ports {
        None | Some([]) => PortSet::all(),
        Some(ports) => {
            let mut set = PortSet::empty();
            for p in ports {
                if let Some(one) = compile_port(what, p, note) {
                    set.union_with(&one);
                }
            }
            set
        }
    };
    Rule { peers, ports }
}

fn compile_peer(what: &str, peer: &NetworkPolicyPeer, note: &mut impl FnMut(String)) -> Peer {
    if let Some(block) = &peer.ip_block {
        if peer.namespace_selector.is_some() || peer.pod_selector.is_some() {
            note(format!("{what}: a peer with ipBlock and selectors is invalid; only the ipBlock is evaluated"));
        }
        return match covers_some_address(&block.cidr, block.except.as_deref().unwrap_or_default()) {
            Ok(true) => Peer::Internet,
            Ok(false) => Peer::Nothing,
            Err(e) => {
                note(format!("{what}: ipBlock {e}; the peer matches nothing"));
                Peer::Nothing
            }
        };
    }
    if peer.namespace_selector.is_none() && peer.pod_selector.is_none() {
        note(format!("{what}: an empty peer is invalid; it matches nothing"));
        return Peer::Nothing;
    }
    Peer::Pods {
        namespaces: peer
            .namespace_selector
            .as_ref()
            .map(|s| compile_selector(s, &format!("{what} namespaceSelector"), note)),
        pods: peer.pod_selector.as_ref().map(|s| compile_selector(s, &format!("{what} podSelector"), note)),
    }
}

fn compile_selector(selector: &LabelSelector, what: &str, note: &mut impl FnMut(String)) -> Selector {
    let mut out = Selector {
        labels: selector.match_labels.clone().unwrap_or_default(),
        expressions: Vec::new(),
        malformed: false,
    };
    for req in selector.match_expressions.as_deref().unwrap_or_default() {
        let values: BTreeSet<String> = req.values.iter().flatten().cloned().collect();
        let key = req.key.clone();
        let expression = match (req.operator.as_str(), values.is_empty()) {
            ("In", false) => Expression::In(key, values),
            ("NotIn", false) => Expression::NotIn(key, values),
            ("Exists", true) => Expression::Exists(key),
            ("DoesNotExist", true) => Expression::DoesNotExist(key),
            (op @ ("In" | "NotIn"), true) => {
                note(format!("{what}: {op} on {key:?} without values is invalid; the selector matches nothing"));
                out.malformed = true;
                continue;
            }
            (op @ ("Exists" | "DoesNotExist"), false) => {
                note(format!("{what}: {op} on {key:?} with values is invalid; the selector matches nothing"));
                out.malformed = true;
                continue;
            }
            (op, _) => {
                note(format!("{what}: unknown operator {op:?}; the selector matches nothing"));
                out.malformed = true;
                continue;
            }
        };
        out.expressions.push(expression);
    }
    out
}

/// The ports one `ports` entry allows; `None` (with a note) when it cannot be evaluated.
fn compile_port(what: &str, port: &NetworkPolicyPort, note: &mut impl FnMut(String)) -> Option<PortSet> {
    let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "SCTP" => {
            note(format!("{what}: SCTP is not evaluated; the port allows nothing here"));
            return None;
        }
        other => {
            note(format!("{what}: unknown protocol {other:?}; the port allows nothing"));
            return None;
        }
    };
    let valid = |n: i32| u16::try_from(n).ok().filter(|p| *p >= MIN_PORT);
    match (&port.port, port.end_port) {
        (None, None) => Some(PortSet::whole(protocol)),
        (None, Some(_)) => {
            note(format!("{what}: endPort without port is invalid; the port allows nothing"));
            None
        }
        (Some(IntOrString::String(name)), _) => {
            note(format!("{what}: named port {name:?} is not supported (pods are not known); the port allows nothing"));
            None
        }
        (Some(IntOrString::Int(first)), end) => {
            let first_port = valid(*first);
            let last_port = match end {
                None => first_port,
                Some(end) => valid(end),
            };
            match (first_port, last_port) {
                (Some(a), Some(b)) if a <= b => Some(PortSet::range(protocol, a, b)),
                _ => {
                    let range = end.map_or(first.to_string(), |e| format!("{first}-{e}"));
                    note(format!("{what}: port {range} is invalid; the port allows nothing"));
                    None
                }
            }
        }
    }
}

/// Whether `cidr` minus `except` holds any address.
fn covers_some_address(cidr: &str, except: &[String]) -> Result<bool, String> {
    let (net, bits) = parse_cidr(cidr)?;
    let family_bits = if net.is_ipv4() { 32 } else { 128 };
    // Excepts outside the block are irrelevant; one as large as the block empties it.
    let mut inside: Vec<(IpAddr, u8)> = Vec::new();
    for e in except {
        let (addr, prefix) = parse_cidr(e)?;
        if addr.is_ipv4() != net.is_ipv4() || !contains((net, bits), (addr, prefix)) {
            continue;
        }
        if prefix <= bits {
            return Ok(false);
        }
        inside.push((addr, prefix));
    }
    inside.sort_by_key(|(_, prefix)| *prefix);
    let mut outermost: Vec<(IpAddr, u8)> = Vec::new();
    for e in inside {
        if !outermost.iter().any(|o| contains(*o, e)) {
            outermost.push(e);
        }
    }
    // Blocks are nested or disjoint, so the outermost excepts are disjoint and their sizes add
    // up to at most the block's. Sizes are powers of two; `None` stands for 2^128 (::/0).
    let block = 1u128.checked_shl(u32::from(family_bits - bits));
    let excepted =
        outermost.iter().try_fold(0u128, |sum, (_, prefix)| sum.checked_add(1u128 << (family_bits - prefix)));
    Ok(excepted != block)
}

fn parse_cidr(cidr: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("{cidr:?} is not a CIDR");
    let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > if addr.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok((addr, prefix))
}

/// Whether block `outer` contains block `inner` (same family).
fn contains(outer: (IpAddr, u8), inner: (IpAddr, u8)) -> bool {
    let bits = |a: IpAddr| -> (u128, u8) {
        match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        }
    };
    let ((o, family), (i, inner_family)) = (bits(outer.0), bits(inner.0));
    if family != inner_family || inner.1 < outer.1 {
        return false;
    }
    // Compare the first `outer.1` bits of the address (left-aligned in a u128).
    let mask = if outer.1 == 0 { 0 } else { u128::MAX << (128 - u32::from(outer.1)) };
    o & mask == i & mask
}

/// Adds, to each namespace, a pod for every selector some policy applies to it.
fn add_representative_pods(compiled: &[Compiled], spaces: &mut [Space]) {
    let mut extra: Vec<(usize, BTreeMap<String, String>)> = Vec::new();
    for policy in compiled {
        extra.push((policy.ns, policy.pods.representative()));
        for rule in policy.ingress.iter().chain(&policy.egress).flatten() {
            for peer in rule.peers.iter().flatten() {
                let Peer::Pods { namespaces, pods: Some(pods) } = peer else { continue };
                match namespaces {
                    None => extra.push((policy.ns, pods.representative())),
                    Some(namespaces) => extra.extend(
                        (0..spaces.len())
                            .filter(|i| namespaces.matches(&spaces[*i].labels))
                            .map(|i| (i, pods.representative())),
                    ),
                }
            }
        }
    }
    for (ns, labels) in extra {
        spaces[ns].pods.insert(labels);
    }
}

/// What `pod`'s policies allow in `direction` with `peer`: everything when no policy isolates
/// it, else the union of the matching rules' ports. The internet has no policies.
fn allowed_by(
    compiled: &[Compiled],
    spaces: &[Space],
    direction: Direction,
    pod: &Endpoint,
    peer: &Endpoint,
) -> PortSet {
    let Endpoint::Pod { ns, labels } = *pod else { return PortSet::all() };
    let mut isolated = false;
    let mut allowed = PortSet::empty();
    for policy in compiled.iter().filter(|p| p.ns == ns && p.pods.matches(labels)) {
        let rules = match direction {
            Direction::Ingress => &policy.ingress,
            Direction::Egress => &policy.egress,
        };
        let Some(rules) = rules else { continue };
        isolated = true;
        for rule in rules {
            if rule.peers.as_ref().is_none_or(|peers| peers.iter().any(|p| peer_matches(p, policy.ns, spaces, peer))) {
                allowed.union_with(&rule.ports);
            }
        }
    }
    if isolated { allowed } else { PortSet::all() }
}

fn peer_matches(peer: &Peer, policy_ns: usize, spaces: &[Space], endpoint: &Endpoint) -> bool {
    match (peer, endpoint) {
        (Peer::Internet, Endpoint::Internet) => true,
        (Peer::Pods { namespaces, pods }, Endpoint::Pod { ns, labels }) => {
            let in_namespace = match namespaces {
                None => *ns == policy_ns,
                Some(selector) => selector.matches(&spaces[*ns].labels),
            };
            in_namespace && pods.as_ref().is_none_or(|s| s.matches(labels))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::networking::v1::{
        IPBlock, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicySpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta};

    use super::*;
    use Protocol::{Tcp, Udp};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn namespaces(specs: &[(&str, &[(&str, &str)])]) -> Vec<NamespaceInfo> {
        specs.iter().map(|(name, labels)| NamespaceInfo { name: name.to_string(), labels: map(labels) }).collect()
    }

    fn abc() -> Vec<NamespaceInfo> {
        namespaces(&[("a", &[]), ("b", &[]), ("c", &[])])
    }

    fn labels(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector { match_labels: Some(map(pairs)), ..Default::default() }
    }

    fn ns(name: &str) -> LabelSelector {
        labels(&[(NAMESPACE_NAME_LABEL, name)])
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
            }]),
            ..Default::default()
        }
    }

    fn peer(namespaces: Option<LabelSelector>, pods: Option<LabelSelector>) -> NetworkPolicyPeer {
        NetworkPolicyPeer { namespace_selector: namespaces, pod_selector: pods, ip_block: None }
    }

    fn ip(cidr: &str, except: &[&str]) -> NetworkPolicyPeer {
        let except = (!except.is_empty()).then(|| except.iter().map(|e| e.to_string()).collect());
        NetworkPolicyPeer { ip_block: Some(IPBlock { cidr: cidr.into(), except }), ..Default::default() }
    }

    fn tcp(port: i32, end: Option<i32>) -> NetworkPolicyPort {
        NetworkPolicyPort { protocol: Some("TCP".into()), port: Some(IntOrString::Int(port)), end_port: end }
    }

    fn in_rule(
        from: Option<Vec<NetworkPolicyPeer>>,
        ports: Option<Vec<NetworkPolicyPort>>,
    ) -> NetworkPolicyIngressRule {
        NetworkPolicyIngressRule { from, ports }
    }

    fn eg_rule(to: Option<Vec<NetworkPolicyPeer>>, ports: Option<Vec<NetworkPolicyPort>>) -> NetworkPolicyEgressRule {
        NetworkPolicyEgressRule { to, ports }
    }

    /// A policy; `types: None` leaves `policyTypes` to the API server's default.
    fn pol(
        namespace: &str,
        name: &str,
        pods: LabelSelector,
        types: Option<&[&str]>,
        ingress: Vec<NetworkPolicyIngressRule>,
        egress: Vec<NetworkPolicyEgressRule>,
    ) -> NetworkPolicy {
        NetworkPolicy {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), ..Default::default() },
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(pods),
                policy_types: types.map(|t| t.iter().map(|s| s.to_string()).collect()),
                ingress: (!ingress.is_empty()).then_some(ingress),
                egress: (!egress.is_empty()).then_some(egress),
            }),
        }
    }

    fn deny_ingress(namespace: &str) -> NetworkPolicy {
        pol(namespace, "deny", LabelSelector::default(), Some(&["Ingress"]), vec![], vec![])
    }

    /// What `policy` lets pod `src` send to pod `dst` (namespace, labels) at pod level.
    fn pod_ingress(
        namespaces: &[NamespaceInfo],
        policy: &NetworkPolicy,
        dst: (&str, &[(&str, &str)]),
        src: (&str, &[(&str, &str)]),
    ) -> PortSet {
        let spaces: Vec<Space> = namespaces
            .iter()
            .map(|n| Space {
                name: n.name.clone(),
                labels: map(&[(NAMESPACE_NAME_LABEL, &n.name)]),
                pods: BTreeSet::new(),
            })
            .collect();
        let compiled = compile(policy, &spaces, &mut Notes::default()).unwrap();
        let index = |name: &str| spaces.iter().position(|s| s.name == name).unwrap();
        let (dst_labels, src_labels) = (map(dst.1), map(src.1));
        let dst = Endpoint::Pod { ns: index(dst.0), labels: &dst_labels };
        let src = Endpoint::Pod { ns: index(src.0), labels: &src_labels };
        allowed_by(&[compiled], &spaces, Direction::Ingress, &dst, &src)
    }

    fn tcp_ports(r: &Reachability, from: &str, to: &str) -> Vec<(u16, u16)> {
        r.ports(from, to).iter().filter(|p| p.protocol == Tcp).map(|p| (p.port, p.last())).collect()
    }

    #[test]
    fn default_deny_blocks_ingress_only_into_its_namespace() {
        let r = evaluate(&abc(), &[deny_ingress("a")]);
        for from in ["a", "b", INTERNET] {
            assert!(r.ports(from, "a").is_empty(), "{from} -> a: {:?}", r.ports(from, "a"));
        }
        // a is not isolated for egress, b not at all.
        assert!(r.allows("a", "b", Tcp, 1) && r.allows("a", "b", Udp, 65535));
        assert!(r.allows("b", "b", Tcp, 9092));
        assert!(r.allows(INTERNET, "b", Tcp, 443));
        assert!(r.allows("a", INTERNET, Tcp, 443));
    }

    #[test]
    fn namespace_without_policies_allows_every_port_of_both_protocols() {
        let r = evaluate(&abc(), &[]);
        let all = vec![
            PortRange { protocol: Tcp, port: 1, end_port: Some(65535) },
            PortRange { protocol: Udp, port: 1, end_port: Some(65535) },
        ];
        assert_eq!(r.ports("a", "b"), all.as_slice());
        assert_eq!(r.ports(INTERNET, "c"), all.as_slice());
        assert_eq!(r.ports("c", "c"), all.as_slice());
        assert!(r.ports(INTERNET, INTERNET).is_empty(), "internet to internet is not cluster traffic");
        assert!(r.notes.is_empty());
    }

    #[test]
    fn allowed_ports_are_the_union_of_the_selecting_policies() {
        let from_b = || Some(vec![peer(Some(ns("b")), None)]);
        let policies = [
            pol("a", "web", LabelSelector::default(), None, vec![in_rule(from_b(), Some(vec![tcp(80, None)]))], vec![]),
            pol(
                "a",
                "tls",
                LabelSelector::default(),
                None,
                vec![in_rule(from_b(), Some(vec![tcp(443, None)]))],
                vec![],
            ),
            // Selects other pods: must not add 8080 to what the generic pod gets from b...
            pol(
                "a",
                "api",
                labels(&[("app", "api")]),
                None,
                vec![in_rule(Some(vec![peer(Some(ns("c")), None)]), Some(vec![tcp(8080, None)]))],
                vec![],
            ),
        ];
        let r = evaluate(&abc(), &policies);
        assert_eq!(tcp_ports(&r, "b", "a"), vec![(80, 80), (443, 443)]);
        // ...and the api pod is only isolated by `api`: c reaches it on 8080 alone.
        assert_eq!(tcp_ports(&r, "c", "a"), vec![(8080, 8080)]);
        assert!(r.ports("b", "a").iter().all(|p| p.protocol == Tcp), "UDP was never allowed");
    }

    #[test]
    fn namespace_and_pod_selector_in_one_peer_both_apply_but_two_peers_are_alternatives() {
        let client = || labels(&[("role", "client")]);
        let one_peer = vec![peer(Some(ns("b")), Some(client()))];
        let two_peers = vec![peer(Some(ns("b")), None), peer(None, Some(client()))];
        let with = |from: Vec<NetworkPolicyPeer>| {
            let rule = in_rule(Some(from), Some(vec![tcp(80, None)]));
            evaluate(&abc(), &[pol("a", "p", LabelSelector::default(), None, vec![rule], vec![])])
        };

        let and = with(one_peer);
        assert!(and.allows("b", "a", Tcp, 80), "b's client pods");
        assert!(!and.allows("a", "a", Tcp, 80), "a's client pods are not in b");
        assert!(!and.allows("c", "a", Tcp, 80));
        // At pod level: b's pods without the label are refused.
        let rule = in_rule(Some(vec![peer(Some(ns("b")), Some(client()))]), Some(vec![tcp(80, None)]));
        let policy = pol("a", "p", LabelSelector::default(), None, vec![rule], vec![]);
        let generic = pod_ingress(&abc(), &policy, ("a", &[]), ("b", &[]));
        assert!(generic.is_empty(), "{generic:?}");
        assert!(pod_ingress(&abc(), &policy, ("a", &[]), ("b", &[("role", "client")])).contains(Tcp, 80));

        let or = with(two_peers);
        assert!(or.allows("b", "a", Tcp, 80), "every pod of b");
        assert!(or.allows("a", "a", Tcp, 80), "a's own client pods (podSelector alone means the policy's namespace)");
        assert!(!or.allows("c", "a", Tcp, 80), "c's client pods: neither peer");
    }

    #[test]
    fn end_port_ranges_are_inclusive_and_adjacent_ranges_merge() {
        let rule = in_rule(
            None,
            Some(vec![tcp(8080, Some(8084)), tcp(8085, Some(8089)), tcp(9000, None), tcp(9001, Some(9001))]),
        );
        let r = evaluate(&abc(), &[pol("a", "p", LabelSelector::default(), None, vec![rule], vec![])]);
        assert_eq!(
            r.ports("b", "a"),
            &[
                PortRange { protocol: Tcp, port: 8080, end_port: Some(8089) },
                PortRange { protocol: Tcp, port: 9000, end_port: Some(9001) },
            ]
        );
        assert!(r.allows("b", "a", Tcp, 8089) && r.allows("b", "a", Tcp, 8080));
        assert!(!r.allows("b", "a", Tcp, 8090) && !r.allows("b", "a", Tcp, 8079));
    }

    #[test]
    fn a_connection_needs_the_source_egress_and_the_destination_ingress() {
        let eg = pol(
            "a",
            "out",
            LabelSelector::default(),
            Some(&["Egress"]),
            vec![],
            vec![eg_rule(Some(vec![peer(Some(ns("b")), None)]), Some(vec![tcp(80, Some(81))]))],
        );
        let ing = pol(
            "b",
            "in",
            LabelSelector::default(),
            Some(&["Ingress"]),
            vec![in_rule(Some(vec![peer(Some(ns("a")), None)]), Some(vec![tcp(81, Some(82))]))],
            vec![],
        );
        let r = evaluate(&abc(), &[eg, ing]);
        assert_eq!(tcp_ports(&r, "a", "b"), vec![(81, 81)]);
        assert!(r.ports("a", "c").is_empty(), "a's egress names b only");
        assert!(r.ports("c", "b").is_empty(), "b's ingress names a only");
        assert!(r.ports("a", INTERNET).is_empty(), "egress isolation covers the internet too");
    }

    #[test]
    fn policy_types_default_to_ingress_plus_egress_when_egress_rules_exist() {
        // No policyTypes, only ingress rules: ingress-isolated, egress untouched.
        let only_ingress =
            pol("a", "p", LabelSelector::default(), None, vec![in_rule(None, Some(vec![tcp(80, None)]))], vec![]);
        let r = evaluate(&abc(), &[only_ingress]);
        assert_eq!(tcp_ports(&r, "b", "a"), vec![(80, 80)]);
        assert!(r.allows("a", "b", Tcp, 5432));
        // No policyTypes, egress rules: egress-isolated as well.
        let with_egress = pol(
            "a",
            "p",
            LabelSelector::default(),
            None,
            vec![],
            vec![eg_rule(Some(vec![peer(Some(ns("b")), None)]), Some(vec![tcp(5432, None)]))],
        );
        let r = evaluate(&abc(), &[with_egress]);
        assert_eq!(tcp_ports(&r, "a", "b"), vec![(5432, 5432)]);
        assert!(r.ports("a", "c").is_empty());
        assert!(r.ports("b", "a").is_empty(), "ingress is implied and has no rules");
    }

    #[test]
    fn namespace_selector_expressions() {
        let spaces = namespaces(&[
            ("prod-1", &[("env", "prod"), ("team", "x")]),
            ("prod-2", &[("env", "prod")]),
            ("dev", &[("env", "dev"), ("team", "y")]),
            ("bare", &[]),
            ("target", &[]),
        ]);
        let cases: [(LabelSelector, &[&str]); 5] = [
            (expr("env", "In", &["prod", "staging"]), &["prod-1", "prod-2"]),
            // NotIn also matches namespaces without the key (and the target itself).
            (expr("env", "NotIn", &["prod"]), &["dev", "bare", "target"]),
            (expr("team", "Exists", &[]), &["prod-1", "dev"]),
            (expr("team", "DoesNotExist", &[]), &["prod-2", "bare", "target"]),
            (LabelSelector { match_labels: Some(map(&[("env", "prod")])), ..expr("team", "Exists", &[]) }, &["prod-1"]),
        ];
        for (selector, expected) in cases {
            let rule = in_rule(Some(vec![peer(Some(selector.clone()), None)]), None);
            let r = evaluate(&spaces, &[pol("target", "p", LabelSelector::default(), None, vec![rule], vec![])]);
            let reached: Vec<&str> =
                spaces.iter().map(|s| s.name.as_str()).filter(|n| r.allows(n, "target", Tcp, 1234)).collect();
            assert_eq!(reached, expected, "{selector:?}");
            assert!(r.notes.is_empty(), "{:?}", r.notes);
        }
    }

    #[test]
    fn representative_pods_satisfy_expression_selectors() {
        // A podSelector written only with expressions still gets a pod that it selects.
        let api = LabelSelector {
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["api".into()]),
                },
                LabelSelectorRequirement { key: "canary".into(), operator: "DoesNotExist".into(), values: None },
            ]),
            ..Default::default()
        };
        let rule = in_rule(Some(vec![peer(Some(ns("b")), None)]), Some(vec![tcp(8080, None)]));
        let r = evaluate(&abc(), &[deny_ingress("a"), pol("a", "api", api, None, vec![rule], vec![])]);
        assert_eq!(tcp_ports(&r, "b", "a"), vec![(8080, 8080)]);
    }

    #[test]
    fn named_and_sctp_ports_allow_nothing_and_are_reported() {
        let named =
            NetworkPolicyPort { protocol: None, port: Some(IntOrString::String("http".into())), end_port: None };
        let sctp = NetworkPolicyPort { protocol: Some("SCTP".into()), port: Some(IntOrString::Int(9)), end_port: None };
        let rule = in_rule(None, Some(vec![named, sctp]));
        let r = evaluate(&abc(), &[pol("a", "web", LabelSelector::default(), None, vec![rule], vec![])]);
        // Not "ports: all" because the list could not be read.
        assert!(r.ports("b", "a").is_empty(), "{:?}", r.ports("b", "a"));
        let notes: Vec<String> = r.notes.iter().map(Note::to_string).collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with("a/web: ingress rule 1: named port \"http\""), "{notes:?}");
        assert!(notes[1].starts_with("a/web: ingress rule 1: SCTP"), "{notes:?}");
        assert!(r.render_text().contains("notes:\n  a/web: ingress rule 1: named port"));
    }

    #[test]
    fn protocol_defaults_to_tcp_and_absent_port_means_the_whole_protocol() {
        let dns = NetworkPolicyPort { protocol: None, port: Some(IntOrString::Int(53)), end_port: None };
        let udp = NetworkPolicyPort { protocol: Some("UDP".into()), port: None, end_port: None };
        let rule = in_rule(None, Some(vec![dns, udp]));
        let r = evaluate(&abc(), &[pol("a", "p", LabelSelector::default(), None, vec![rule], vec![])]);
        assert_eq!(
            r.ports("b", "a"),
            &[
                PortRange { protocol: Tcp, port: 53, end_port: None },
                PortRange { protocol: Udp, port: 1, end_port: Some(65535) },
            ]
        );
    }

    #[test]
    fn ip_blocks_match_only_the_internet_and_except_can_empty_them() {
        let with = |peer: NetworkPolicyPeer| {
            let rule = in_rule(Some(vec![peer]), Some(vec![tcp(443, None)]));
            evaluate(&abc(), &[pol("a", "p", LabelSelector::default(), None, vec![rule], vec![])])
        };
        let r = with(ip("0.0.0.0/0", &[]));
        assert!(r.allows(INTERNET, "a", Tcp, 443));
        assert!(!r.allows("b", "a", Tcp, 443) && !r.allows("a", "a", Tcp, 443));

        assert!(with(ip("10.0.0.0/8", &["10.1.0.0/16"])).allows(INTERNET, "a", Tcp, 443));
        assert!(!with(ip("10.0.0.0/8", &["10.0.0.0/9", "10.128.0.0/9"])).allows(INTERNET, "a", Tcp, 443));
        assert!(!with(ip("::/0", &["::/1", "8000::/1"])).allows(INTERNET, "a", Tcp, 443));
        assert!(with(ip("::/0", &["::/1"])).allows(INTERNET, "a", Tcp, 443));

        let bad = with(ip("10.0.0.300/8", &[]));
        assert!(!bad.allows(INTERNET, "a", Tcp, 443));
        assert_eq!(bad.notes.len(), 1, "{:?}", bad.notes);
    }

    #[test]
    fn pod_selector_peers_add_representative_pods_in_the_selected_namespaces() {
        // b isolates its egress except for its `role=client` pods; the matrix must find them.
        let b_egress = pol("b", "deny-egress", LabelSelector::default(), Some(&["Egress"]), vec![], vec![]);
        let b_clients = pol(
            "b",
            "clients",
            labels(&[("role", "client")]),
            Some(&["Egress"]),
            vec![],
            vec![eg_rule(None, Some(vec![tcp(5432, None)]))],
        );
        let r = evaluate(&abc(), &[b_egress, b_clients]);
        assert_eq!(tcp_ports(&r, "b", "a"), vec![(5432, 5432)]);
        assert!(r.ports("b", "a").iter().all(|p| p.protocol == Tcp));
    }
}
