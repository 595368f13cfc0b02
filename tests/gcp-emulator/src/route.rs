//! Google REST paths: the kinds of resource served, and the parsing of a request path into a
//! collection, a resource, a custom method (`:verb`, or compute's `/verb`) or an operation.
//!
//! One port serves four APIs, told apart by their prefix: `/compute/v1/`, `/dns/v1/`, and `/v1/`
//! for both container (`projects/*/locations/*/...`) and IAM (`projects/*/serviceAccounts/...`).
//! A resource's key in the store is its path after that prefix (`projects/p/global/networks/n`).
//! Names are case-sensitive, as Google's are. Nothing here looks at the store.

/// Which API a path belongs to; decides the error shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    Compute,
    Container,
    Dns,
    Iam,
}

impl Api {
    /// Whether its errors carry the legacy `errors[]` array.
    pub(crate) fn legacy(self) -> bool {
        matches!(self, Api::Compute | Api::Dns)
    }
}

/// A kind of resource the emulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Network,
    Subnetwork,
    Firewall,
    Router,
    Address,
    Cluster,
    NodePool,
    ManagedZone,
    RecordSet,
    Change,
    ServiceAccount,
}

pub(crate) const KINDS: [Kind; 11] = [
    Kind::Network,
    Kind::Subnetwork,
    Kind::Firewall,
    Kind::Router,
    Kind::Address,
    Kind::Cluster,
    Kind::NodePool,
    Kind::ManagedZone,
    Kind::RecordSet,
    Kind::Change,
    Kind::ServiceAccount,
];

impl Kind {
    /// The name tests and `calls()` use: `compute.networks`, `container.nodePools`, ...
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Network => "compute.networks",
            Kind::Subnetwork => "compute.subnetworks",
            Kind::Firewall => "compute.firewalls",
            Kind::Router => "compute.routers",
            Kind::Address => "compute.addresses",
            Kind::Cluster => "container.clusters",
            Kind::NodePool => "container.nodePools",
            Kind::ManagedZone => "dns.managedZones",
            Kind::RecordSet => "dns.rrsets",
            Kind::Change => "dns.changes",
            Kind::ServiceAccount => "iam.serviceAccounts",
        }
    }

    pub(crate) fn lookup(name: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.name() == name)
    }

    pub(crate) fn api(self) -> Api {
        match self {
            Kind::Network | Kind::Subnetwork | Kind::Firewall | Kind::Router | Kind::Address => Api::Compute,
            Kind::Cluster | Kind::NodePool => Api::Container,
            Kind::ManagedZone | Kind::RecordSet | Kind::Change => Api::Dns,
            Kind::ServiceAccount => Api::Iam,
        }
    }

    /// The compute collection segment (`networks`) and whether it is regional.
    fn compute(seg: &str) -> Option<(Kind, bool)> {
        Some(match seg {
            "networks" => (Kind::Network, false),
            "firewalls" => (Kind::Firewall, false),
            "subnetworks" => (Kind::Subnetwork, true),
            "routers" => (Kind::Router, true),
            "addresses" => (Kind::Address, true),
            _ => return None,
        })
    }

    /// The `kind` field compute answers carry.
    pub(crate) fn compute_kind(self) -> &'static str {
        match self {
            Kind::Network => "compute#network",
            Kind::Subnetwork => "compute#subnetwork",
            Kind::Firewall => "compute#firewall",
            Kind::Router => "compute#router",
            Kind::Address => "compute#address",
            _ => "",
        }
    }
}

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A collection: list (GET) or create (POST). `parent` is the key prefix of its items
    /// (`projects/p/global`, `projects/p/locations/l/clusters/c`, `projects/p/managedZones/z`).
    List {
        kind: Kind,
        parent: String,
    },
    /// One resource; `key` is its path (for DNS and IAM as the request spelled it: the zone may
    /// be an id, the project `-`).
    Item {
        kind: Kind,
        key: String,
    },
    /// A custom method on a resource: `:setSize`, compute's `/setLabels`.
    Verb {
        kind: Kind,
        key: String,
        verb: String,
    },
    /// A compute or container operation; `wait` for compute's `POST .../wait`.
    Operation {
        key: String,
        wait: bool,
    },
    /// Container's list of operations in a location.
    Operations {
        parent: String,
    },
    /// Container's `serverConfig` of a location (versions, release channels).
    ServerConfig {
        location: String,
    },
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub api: Option<Api>,
    pub target: Target,
}

impl Route {
    /// The name requests are counted under: `"compute.networks"`, `"container.nodePools:setSize"`,
    /// `"operations"` for operation polls (and waits), `"unknown"` for unserved paths.
    pub(crate) fn call_name(&self) -> String {
        match &self.target {
            Target::List { kind, .. } | Target::Item { kind, .. } => kind.name().to_string(),
            Target::Verb { kind, verb, .. } => format!("{}:{verb}", kind.name()),
            Target::Operation { .. } | Target::Operations { .. } => "operations".to_string(),
            Target::ServerConfig { .. } => "container.serverConfig".to_string(),
            Target::Unknown => "unknown".to_string(),
        }
    }
}

/// Splits `name:verb`.
fn verb_of(seg: &str) -> (&str, Option<&str>) {
    match seg.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (seg, None),
    }
}

fn item_or_verb(kind: Kind, prefix: &str, last: &str) -> Target {
    let (name, verb) = verb_of(last);
    let key = format!("{prefix}/{name}");
    match verb {
        Some(v) => Target::Verb { kind, key, verb: v.to_string() },
        None => Target::Item { kind, key },
    }
}

/// Parses a (percent-decoded) request path.
pub(crate) fn parse(path: &str) -> Route {
    let unknown = |api| Route { api, target: Target::Unknown };
    if let Some(rest) = path.strip_prefix("/compute/v1/") {
        return Route { api: Some(Api::Compute), target: compute(rest) };
    }
    if let Some(rest) = path.strip_prefix("/dns/v1/") {
        return Route { api: Some(Api::Dns), target: dns(rest) };
    }
    let Some(rest) = path.strip_prefix("/v1/") else { return unknown(None) };
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() >= 3 && segs[0] == "projects" && verb_of(segs[2]).0 == "serviceAccounts" {
        return Route { api: Some(Api::Iam), target: iam(&segs) };
    }
    Route { api: Some(Api::Container), target: container(&segs) }
}

fn nonempty(segs: &[&str]) -> bool {
    segs.iter().all(|s| !s.is_empty())
}

fn compute(rest: &str) -> Target {
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() < 4 || segs[0] != "projects" || !nonempty(&segs) {
        return Target::Unknown;
    }
    let (scope, tail) = match segs[2] {
        "global" => (format!("projects/{}/global", segs[1]), &segs[3..]),
        "regions" if segs.len() >= 5 => (format!("projects/{}/regions/{}", segs[1], segs[3]), &segs[4..]),
        _ => return Target::Unknown,
    };
    let regional = segs[2] == "regions";
    if tail[0] == "operations" {
        return match tail {
            [_, op] => Target::Operation { key: format!("{scope}/operations/{op}"), wait: false },
            [_, op, "wait"] => Target::Operation { key: format!("{scope}/operations/{op}"), wait: true },
            _ => Target::Unknown,
        };
    }
    let Some((kind, r)) = Kind::compute(tail[0]) else { return Target::Unknown };
    if r != regional {
        return Target::Unknown;
    }
    match tail {
        [_] => Target::List { kind, parent: scope },
        [c, name] => Target::Item { kind, key: format!("{scope}/{c}/{name}") },
        [c, name, verb] => Target::Verb { kind, key: format!("{scope}/{c}/{name}"), verb: verb.to_string() },
        _ => Target::Unknown,
    }
}

fn dns(rest: &str) -> Target {
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() < 3 || segs[0] != "projects" || segs[2] != "managedZones" || !nonempty(&segs) {
        return Target::Unknown;
    }
    let project = format!("projects/{}", segs[1]);
    match &segs[3..] {
        [] => Target::List { kind: Kind::ManagedZone, parent: project },
        [z] => item_or_verb(Kind::ManagedZone, &format!("{project}/managedZones"), z),
        [z, "rrsets"] => Target::List { kind: Kind::RecordSet, parent: format!("{project}/managedZones/{z}") },
        [z, "rrsets", name, ty] => {
            Target::Item { kind: Kind::RecordSet, key: format!("{project}/managedZones/{z}/rrsets/{name}/{ty}") }
        }
        [z, "changes"] => Target::List { kind: Kind::Change, parent: format!("{project}/managedZones/{z}") },
        [z, "changes", id] => {
            Target::Item { kind: Kind::Change, key: format!("{project}/managedZones/{z}/changes/{id}") }
        }
        _ => Target::Unknown,
    }
}

fn iam(segs: &[&str]) -> Target {
    if !nonempty(segs) {
        return Target::Unknown;
    }
    let prefix = format!("projects/{}/serviceAccounts", segs[1]);
    match &segs[2..] {
        ["serviceAccounts"] => Target::List { kind: Kind::ServiceAccount, parent: format!("projects/{}", segs[1]) },
        ["serviceAccounts", who] => item_or_verb(Kind::ServiceAccount, &prefix, who),
        _ => Target::Unknown,
    }
}

fn container(segs: &[&str]) -> Target {
    if segs.len() < 5 || segs[0] != "projects" || segs[2] != "locations" || !nonempty(segs) {
        return Target::Unknown;
    }
    let loc = format!("projects/{}/locations/{}", segs[1], segs[3]);
    match &segs[4..] {
        ["clusters"] => Target::List { kind: Kind::Cluster, parent: loc },
        ["clusters", c] => item_or_verb(Kind::Cluster, &format!("{loc}/clusters"), c),
        ["clusters", c, "nodePools"] => Target::List { kind: Kind::NodePool, parent: format!("{loc}/clusters/{c}") },
        ["clusters", c, "nodePools", np] => item_or_verb(Kind::NodePool, &format!("{loc}/clusters/{c}/nodePools"), np),
        ["operations"] => Target::Operations { parent: loc },
        ["serverConfig"] => Target::ServerConfig { location: loc },
        ["operations", op] => Target::Operation { key: format!("{loc}/operations/{op}"), wait: false },
        _ => Target::Unknown,
    }
}

/// The kind of resource a store key names, if it names one.
pub(crate) fn kind_of_key(key: &str) -> Option<Kind> {
    let segs: Vec<&str> = key.split('/').collect();
    if segs.len() < 4 || segs[0] != "projects" || !nonempty(&segs) {
        return None;
    }
    match &segs[2..] {
        ["global", c, _] => Kind::compute(c).filter(|(_, r)| !r).map(|(k, _)| k),
        ["regions", _, c, _] => Kind::compute(c).filter(|(_, r)| *r).map(|(k, _)| k),
        ["locations", _, "clusters", _] => Some(Kind::Cluster),
        ["locations", _, "clusters", _, "nodePools", _] => Some(Kind::NodePool),
        ["managedZones", _] => Some(Kind::ManagedZone),
        ["managedZones", _, "rrsets", _, _] => Some(Kind::RecordSet),
        ["managedZones", _, "changes", _] => Some(Kind::Change),
        ["serviceAccounts", _] => Some(Kind::ServiceAccount),
        _ => None,
    }
}

/// Decodes `%XX` escapes (clients escape `@`, `[`, `]` and spaces); invalid escapes stay as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str) -> Target {
        parse(p).target
    }

    #[test]
    fn compute_paths() {
        assert_eq!(
            t("/compute/v1/projects/p/global/networks"),
            Target::List { kind: Kind::Network, parent: "projects/p/global".into() }
        );
        assert_eq!(
            t("/compute/v1/projects/p/regions/r/subnetworks/s"),
            Target::Item { kind: Kind::Subnetwork, key: "projects/p/regions/r/subnetworks/s".into() }
        );
        assert_eq!(
            t("/compute/v1/projects/p/regions/r/addresses/a/setLabels"),
            Target::Verb {
                kind: Kind::Address,
                key: "projects/p/regions/r/addresses/a".into(),
                verb: "setLabels".into()
            }
        );
        assert_eq!(
            t("/compute/v1/projects/p/regions/r/operations/op-1/wait"),
            Target::Operation { key: "projects/p/regions/r/operations/op-1".into(), wait: true }
        );
        assert_eq!(t("/compute/v1/projects/p/global/subnetworks"), Target::Unknown);
        assert_eq!(t("/compute/v1/projects/p/regions/r/networks/n"), Target::Unknown);
        assert_eq!(t("/compute/v1/projects/p/global/instances/i"), Target::Unknown);
    }

    #[test]
    fn container_iam_and_dns_paths() {
        assert_eq!(
            t("/v1/projects/p/locations/l/clusters/c:setResourceLabels"),
            Target::Verb {
                kind: Kind::Cluster,
                key: "projects/p/locations/l/clusters/c".into(),
                verb: "setResourceLabels".into()
            }
        );
        assert_eq!(
            t("/v1/projects/p/locations/l/clusters/c/nodePools"),
            Target::List { kind: Kind::NodePool, parent: "projects/p/locations/l/clusters/c".into() }
        );
        assert_eq!(
            t("/v1/projects/p/locations/l/operations/o"),
            Target::Operation { key: "projects/p/locations/l/operations/o".into(), wait: false }
        );
        assert_eq!(
            parse("/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com:getIamPolicy"),
            Route {
                api: Some(Api::Iam),
                target: Target::Verb {
                    kind: Kind::ServiceAccount,
                    key: "projects/p/serviceAccounts/a@p.iam.gserviceaccount.com".into(),
                    verb: "getIamPolicy".into()
                }
            }
        );
        assert_eq!(
            t("/dns/v1/projects/p/managedZones/z/rrsets/www.example.com./A"),
            Target::Item { kind: Kind::RecordSet, key: "projects/p/managedZones/z/rrsets/www.example.com./A".into() }
        );
        assert_eq!(
            t("/dns/v1/projects/p/managedZones/z:setIamPolicy"),
            Target::Verb {
                kind: Kind::ManagedZone,
                key: "projects/p/managedZones/z".into(),
                verb: "setIamPolicy".into()
            }
        );
        assert_eq!(parse("/healthz"), Route { api: None, target: Target::Unknown });
        assert_eq!(parse("/v1/projects/p/locations/l/clusters/c").call_name(), "container.clusters");
        assert_eq!(
            parse("/v1/projects/p/locations/l/clusters/c/nodePools/n:setSize").call_name(),
            "container.nodePools:setSize"
        );
    }

    #[test]
    fn keys_name_their_kinds() {
        assert_eq!(kind_of_key("projects/p/global/networks/n"), Some(Kind::Network));
        assert_eq!(kind_of_key("projects/p/regions/r/routers/x"), Some(Kind::Router));
        assert_eq!(kind_of_key("projects/p/global/routers/x"), None);
        assert_eq!(kind_of_key("projects/p/locations/l/clusters/c/nodePools/np"), Some(Kind::NodePool));
        assert_eq!(kind_of_key("projects/p/managedZones/z/rrsets/a.b./TXT"), Some(Kind::RecordSet));
        assert_eq!(kind_of_key("projects/p/serviceAccounts/x@p.iam.gserviceaccount.com"), Some(Kind::ServiceAccount));
        for k in KINDS {
            assert_eq!(Kind::lookup(k.name()), Some(k));
        }
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(percent_decode("/a/%40/b%2"), "/a/@/b%2");
        assert_eq!(percent_decode("ns%2Fksa%5D"), "ns/ksa]");
    }
}
