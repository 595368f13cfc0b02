//! ARM paths: the resource types served (with their API version and the `type` their answers carry)
//! and the parsing of a path into a resource, a collection, an action or an operation to poll.
//!
//! Paths are matched case-insensitively, as ARM ids are. Only the types of the contract are known;
//! any other path is `Route::Unknown`. Nothing here looks at the store.

/// What kind of resource a type is; decides validation and presentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Group,
    Vnet,
    Subnet,
    Nsg,
    PublicIp,
    Zone,
    RecordSet,
    /// `dnsZones/{zone}/recordsets`: the list of every record set of a zone; never an item.
    RecordSets,
    Cluster,
    Pool,
    Identity,
    Fic,
    RoleAssignment,
}

/// A resource type the emulator serves.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Ty {
    pub kind: Kind,
    /// The canonical name, used by `calls()` and `resources()`: `Microsoft.Network/virtualNetworks`.
    pub name: &'static str,
    /// The `type` field of answers, spelled as the provider spells it.
    pub answer: &'static str,
    pub api: &'static str,
}

const NET: &str = "2024-05-01";
const DNS: &str = "2018-05-01";
const AKS: &str = "2025-05-01";
const MSI: &str = "2023-01-31";

macro_rules! record_types {
    ($($t:literal),*) => {
        [$(Ty {
            kind: Kind::RecordSet,
            name: concat!("Microsoft.Network/dnsZones/", $t),
            answer: concat!("Microsoft.Network/dnszones/", $t),
            api: DNS,
        }),*]
    };
}

const RECORD_TYPES: [Ty; 6] = record_types!("A", "AAAA", "CNAME", "NS", "TXT", "SOA");

/// A type whose answers spell it as its canonical name.
const fn ty(kind: Kind, name: &'static str, api: &'static str) -> Ty {
    Ty { kind, name, answer: name, api }
}

const TYPES: [Ty; 13] = [
    ty(Kind::Group, "Microsoft.Resources/resourceGroups", "2024-03-01"),
    ty(Kind::Vnet, "Microsoft.Network/virtualNetworks", NET),
    ty(Kind::Subnet, "Microsoft.Network/virtualNetworks/subnets", NET),
    ty(Kind::Nsg, "Microsoft.Network/networkSecurityGroups", NET),
    ty(Kind::PublicIp, "Microsoft.Network/publicIPAddresses", NET),
    Ty { kind: Kind::Zone, name: "Microsoft.Network/dnsZones", answer: "Microsoft.Network/dnszones", api: DNS },
    ty(Kind::RecordSets, "Microsoft.Network/dnsZones/recordsets", DNS),
    Ty {
        kind: Kind::Cluster,
        name: "Microsoft.ContainerService/managedClusters",
        answer: "Microsoft.ContainerService/ManagedClusters",
        api: AKS,
    },
    ty(Kind::Pool, "Microsoft.ContainerService/managedClusters/agentPools", AKS),
    ty(Kind::Identity, "Microsoft.ManagedIdentity/userAssignedIdentities", MSI),
    ty(Kind::Fic, "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials", MSI),
    ty(Kind::RoleAssignment, "Microsoft.Authorization/roleAssignments", "2022-04-01"),
    // Not a resource (no answer type): the action's name, for `calls()`.
    Ty {
        kind: Kind::Cluster,
        name: "Microsoft.ContainerService/managedClusters/listClusterUserCredential",
        answer: "",
        api: AKS,
    },
];

impl Ty {
    /// The type with this canonical name, case-insensitively.
    pub(crate) fn lookup(name: &str) -> Option<&'static Ty> {
        TYPES.iter().chain(RECORD_TYPES.iter()).find(|t| t.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn group() -> &'static Ty {
        &TYPES[0]
    }

    pub(crate) fn credentials() -> &'static Ty {
        &TYPES[12]
    }

    /// Tracked resources have a location and tags.
    pub(crate) fn tracked(&self) -> bool {
        matches!(
            self.kind,
            Kind::Group | Kind::Vnet | Kind::Nsg | Kind::PublicIp | Kind::Zone | Kind::Cluster | Kind::Identity
        )
    }

    /// `Microsoft.Network`: the namespace of operation URLs.
    pub(crate) fn namespace(&self) -> &'static str {
        self.name.split('/').next().unwrap_or_default()
    }
}

/// One resource named by a path.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub ty: &'static Ty,
    /// The id, as the request spelled it.
    pub id: String,
    pub name: String,
    /// The id of what holds it: the subscription (groups), the group (top-level resources), the
    /// parent resource (subnets, record sets, pools, credentials) or the scope (role assignments).
    pub parent: String,
    /// The resource group in the path, if any.
    pub rg: Option<String>,
    pub sub: String,
}

/// A collection named by a path.
#[derive(Clone, Debug)]
pub(crate) struct List {
    pub ty: &'static Ty,
    /// As `Item::parent`; the subscription for a subscription-wide list.
    pub parent: String,
    pub rg: Option<String>,
    /// `/subscriptions/{s}/providers/<ns>/<type>`: every resource of a top-level type in the
    /// subscription, whatever its group (`Zones_List`, `VirtualNetworks_ListAll`, ...).
    pub subscription_wide: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum Route {
    Item(Item),
    List(List),
    /// POST `.../managedClusters/{c}/listClusterUserCredential`; the item is the cluster.
    Credentials(Item),
    /// `/subscriptions/{s}/providers/{namespace}` (GET: its registration) and `…/register` (POST).
    Provider {
        namespace: String,
        register: bool,
    },
    /// An operation's status (`Azure-AsyncOperation`) or result (`Location`) URL.
    Poll {
        op: String,
        location: bool,
    },
    Unknown,
}

impl Route {
    /// The type name requests are counted under.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Route::Item(i) => i.ty.name,
            Route::List(l) => l.ty.name,
            Route::Credentials(_) => Ty::credentials().name,
            Route::Poll { .. } => "operations",
            Route::Provider { .. } => "providers",
            Route::Unknown => "unknown",
        }
    }
}

/// Lower-case: the key of an id in the store.
pub(crate) fn key(id: &str) -> String {
    id.to_ascii_lowercase()
}

/// Parses a (percent-decoded) path.
pub(crate) fn parse(method: &str, path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is = |s: &str, w: &str| s.eq_ignore_ascii_case(w);
    if segs.len() < 2 || !is(segs[0], "subscriptions") {
        return Route::Unknown;
    }
    let sub = segs[1].to_string();
    let sub_id = format!("/subscriptions/{sub}");
    match &segs[2..] {
        [g] if is(g, "resourcegroups") => {
            return Route::List(List { ty: Ty::group(), parent: sub_id, rg: None, subscription_wide: false });
        }
        [g, rg] if is(g, "resourcegroups") => {
            return Route::Item(Item {
                ty: Ty::group(),
                id: format!("/{}", segs.join("/")),
                name: rg.to_string(),
                parent: sub_id,
                rg: Some(rg.to_string()),
                sub,
            });
        }
        [w, op] if is(w, "operationresults") => return Route::Poll { op: op.to_string(), location: true },
        [p, ns] if is(p, "providers") => return Route::Provider { namespace: ns.to_string(), register: false },
        [p, ns, r] if is(p, "providers") && is(r, "register") && method == "POST" => {
            return Route::Provider { namespace: ns.to_string(), register: true };
        }
        [p, _ns, l, _loc, w, op] if is(p, "providers") && is(l, "locations") => {
            if is(w, "operations") || is(w, "operationresults") {
                return Route::Poll { op: op.to_string(), location: is(w, "operationresults") };
            }
            return Route::Unknown;
        }
        _ => {}
    }
    let Some(p) = segs.iter().rposition(|s| is(s, "providers")) else { return Route::Unknown };
    if p < 2 || p + 2 >= segs.len() {
        return Route::Unknown;
    }
    let scope = format!("/{}", segs[..p].join("/"));
    let rg = (segs.len() > 3 && is(segs[2], "resourcegroups")).then(|| segs[3].to_string());
    let ns = segs[p + 1];
    let mut tail = &segs[p + 2..];
    let action = method == "POST" && tail.len() == 3 && is(tail[2], "listClusterUserCredential");
    if action {
        tail = &tail[..2];
    }
    let types: Vec<&str> = tail.iter().step_by(2).copied().collect();
    let Some(ty) = Ty::lookup(&format!("{ns}/{}", types.join("/"))) else { return Route::Unknown };
    if p == 2 && tail.len() == 1 && ty.kind != Kind::RoleAssignment && ty.tracked() {
        return Route::List(List { ty, parent: sub_id, rg: None, subscription_wide: true });
    }
    // Only role assignments sit on any scope; the rest live in a group.
    if ty.kind != Kind::RoleAssignment && !(p == 4 && rg.is_some()) {
        return Route::Unknown;
    }
    let parent_of = |n: usize| {
        if n == 0 { scope.clone() } else { format!("{scope}/providers/{ns}/{}", tail[..n].join("/")) }
    };
    if ty.answer.is_empty() {
        return Route::Unknown;
    }
    if tail.len() % 2 == 1 {
        return Route::List(List { ty, parent: parent_of(tail.len() - 1), rg, subscription_wide: false });
    }
    if ty.kind == Kind::RecordSets {
        return Route::Unknown;
    }
    let item = Item {
        ty,
        id: format!("/{}", segs[..p + 2 + tail.len()].join("/")),
        name: tail[tail.len() - 1].to_string(),
        parent: parent_of(tail.len() - 2),
        rg,
        sub,
    };
    if action {
        if ty.kind != Kind::Cluster {
            return Route::Unknown;
        }
        return Route::Credentials(item);
    }
    Route::Item(item)
}

/// Decodes `%XX` escapes (clients escape `@` and spaces in ids); invalid escapes stay as they are.
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

    fn item(r: Route) -> Item {
        match r {
            Route::Item(i) => i,
            other => panic!("not an item: {other:?}"),
        }
    }

    #[test]
    fn paths_become_items_lists_actions_and_polls() {
        let g = "/subscriptions/s1/resourceGroups/rg1";
        let sn = item(parse("PUT", &format!("{g}/providers/Microsoft.Network/virtualNetworks/v1/subnets/a")));
        assert_eq!(sn.ty.kind, Kind::Subnet);
        assert_eq!(sn.parent, format!("{g}/providers/Microsoft.Network/virtualNetworks/v1"));
        assert_eq!(sn.rg.as_deref(), Some("rg1"));
        let rs = item(parse("PUT", &format!("{g}/providers/microsoft.network/dnszones/z.io/a/@")));
        assert_eq!((rs.ty.name, rs.name.as_str()), ("Microsoft.Network/dnsZones/A", "@"));
        let ra = item(parse(
            "PUT",
            &format!(
                "{g}/providers/Microsoft.Network/dnsZones/z.io/providers/Microsoft.Authorization/roleAssignments/x"
            ),
        ));
        assert_eq!(ra.ty.kind, Kind::RoleAssignment);
        assert_eq!(ra.parent, format!("{g}/providers/Microsoft.Network/dnsZones/z.io"));
        assert!(matches!(parse("GET", &format!("{g}/providers/Microsoft.Network/dnsZones/z/recordsets")),
            Route::List(l) if l.ty.kind == Kind::RecordSets));
        assert!(matches!(
            parse("POST", &format!("{g}/providers/Microsoft.ContainerService/managedClusters/c/listClusterUserCredential")),
            Route::Credentials(c) if c.name == "c"
        ));
        assert!(matches!(
            parse("GET", "/subscriptions/s1/providers/Microsoft.Network/locations/westeurope/operations/abc"),
            Route::Poll { location: false, .. }
        ));
        assert!(matches!(parse("GET", "/subscriptions/s1/operationresults/abc"), Route::Poll { location: true, .. }));
        assert!(matches!(parse("GET", &format!("{g}/providers/Microsoft.Compute/virtualMachines/vm")), Route::Unknown));
        assert!(matches!(
            parse("PUT", "/subscriptions/s1/providers/Microsoft.Network/virtualNetworks/v"),
            Route::Unknown
        ));
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(percent_decode("/a/%40/b%2"), "/a/@/b%2");
    }
}
