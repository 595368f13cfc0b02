//! The platform's NetworkPolicies as typed k8s-openapi objects: default deny in every managed
//! namespace, then one small allow policy per purpose (DNS, same namespace, the port table,
//! the ingress controllers, tenants, Kafka TLS, the internet). It builds objects only; applying
//! them is the add-on machinery's job, and checking what they allow is the evaluator's.
//!
//! Namespaces are selected by `kubernetes.io/metadata.name`, which the API server sets and no
//! one can change, never by labels a namespace owner could add to itself. The price: adding a
//! tenant changes the control plane's and Kafka's policies (their source lists name tenants).

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use ipnet::Ipv4Net;

use crate::layout::{
    CONTROL_PLANE, INGRESS, INGRESS_PORTS, KAFKA_PLAINTEXT_PORT, KAFKA_TLS_PORT, KUBE_SYSTEM, Layout,
    PLATFORM_NAMESPACES, SERVICE_NAMESPACES, SERVICE_PORTS, ServicePort, TENANT_APP_PORT, TenantLayout,
    tenant_namespace,
};

/// Set by the API server on every namespace; the only namespace label policies select on.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "matih-infra";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
pub const PART_OF: &str = "matih";
/// `platform` or `tenant` on the namespaces the tool creates.
pub const ROLE_LABEL: &str = "matih.ai/role";
/// The tenant's slug on a tenant namespace.
pub const TENANT_LABEL: &str = "matih.ai/tenant";

/// ingress-nginx's validating admission webhook; the API server calls it from outside the pod
/// network. Not in the layout's tables, which list only what outside clients use.
pub const INGRESS_WEBHOOK_PORT: u16 = 8443;
/// The Kubernetes API server's port as pods see it (the `kubernetes` service's endpoints) on
/// EKS, GKE and AKS.
pub const API_SERVER_PORT: u16 = 443;
/// Every IPv4 address.
pub const ANYWHERE: &str = "0.0.0.0/0";
/// The instance metadata service of EC2, Compute Engine and Azure VMs: node credentials live
/// there, so the internet rule never includes it.
pub const INSTANCE_METADATA: &str = "169.254.169.254/32";
const DNS_PORT: u16 = 53;
const KUBE_DNS_POD: (&str, &str) = ("k8s-app", "kube-dns");

/// A port-table row's pod label (`ServicePort::pod_label`).
type PodLabel = Option<(&'static str, &'static str)>;

/// Labels the tool puts on the namespaces it creates. The API server adds
/// `kubernetes.io/metadata.name` itself; policies select on that, not on these.
pub fn namespace_labels(namespace: &str, tenant: Option<&str>) -> BTreeMap<String, String> {
    match tenant {
        Some(slug) => debug_assert_eq!(namespace, tenant_namespace(slug), "tenant namespace of {slug}"),
        None => debug_assert!(PLATFORM_NAMESPACES.contains(&namespace), "{namespace} is not a platform namespace"),
    }
    let mut labels = labels(&[(MANAGED_BY_LABEL, MANAGED_BY)]);
    labels.insert(ROLE_LABEL.into(), if tenant.is_some() { "tenant" } else { "platform" }.into());
    if let Some(slug) = tenant {
        labels.insert(TENANT_LABEL.into(), slug.into());
    }
    labels
}

/// Pods of a tenant's dedicated ingress controller (the ingress-nginx chart's labels for the
/// release `ingress-nginx-tenant-<slug>`).
pub fn tenant_ingress_pod_labels(slug: &str) -> BTreeMap<String, String> {
    let instance = format!("ingress-nginx-tenant-{slug}");
    labels(&[("app.kubernetes.io/name", "ingress-nginx"), ("app.kubernetes.io/instance", &instance)])
}

/// Policies for the four platform namespaces, namespace by namespace in `PLATFORM_NAMESPACES`
/// order, each namespace's in a fixed order.
pub fn platform_policies(layout: &Layout) -> Vec<NetworkPolicy> {
    let ctx = Ctx::new(layout);
    PLATFORM_NAMESPACES.iter().flat_map(|ns| ctx.platform_namespace(ns)).collect()
}

/// Policies for one tenant's namespace.
pub fn tenant_policies(layout: &Layout, tenant: &TenantLayout) -> Vec<NetworkPolicy> {
    Ctx::new(layout).tenant(tenant)
}

/// Everything: the platform's policies, then each tenant's in layout order.
pub fn all_policies(layout: &Layout) -> Vec<NetworkPolicy> {
    let mut all = platform_policies(layout);
    all.extend(layout.tenants.iter().flat_map(|t| tenant_policies(layout, t)));
    all
}

/// Namespace lists derived from the layout, sorted so that reordering tenants in the platform
/// spec does not change a single policy.
///
/// The service namespaces (`SERVICE_NAMESPACES`) call each other's port table; the ingress
/// namespace is deliberately not one of them: the internet-facing controller reaches only the
/// ports served through it (`via_ingress`), never PostgreSQL or Redis.
struct Ctx {
    /// Platform and tenant namespaces.
    managed: Vec<String>,
    tenants: Vec<String>,
    /// Tenants served by the platform controller in `matih-ingress`.
    shared_ingress: Vec<String>,
    /// Kafka's TLS listener, in the namespace the spec names.
    kafka: ServicePort,
    /// Platform namespaces that reach the internet.
    internet: Vec<&'static str>,
    /// Never part of the internet: the cluster's ranges and the instance metadata address.
    not_internet: Vec<String>,
}

impl Ctx {
    fn new(layout: &Layout) -> Ctx {
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        Ctx {
            managed: sorted(layout.namespaces()),
            tenants: sorted(layout.tenants.iter().map(|t| t.namespace.clone()).collect()),
            shared_ingress: sorted(
                layout.tenants.iter().filter(|t| !t.dedicated_ingress).map(|t| t.namespace.clone()).collect(),
            ),
            kafka: layout.kafka(),
            internet: layout.policy.internet_egress.clone(),
            not_internet: not_internet(&layout.policy.cluster_ranges),
        }
    }

    fn platform_namespace(&self, ns: &str) -> Vec<NetworkPolicy> {
        let mut out = vec![default_deny(ns), allow_dns(ns), allow_same_namespace(ns)];
        let is_service = SERVICE_NAMESPACES.contains(&ns);

        // Ingress.
        if is_service {
            let others: Vec<&str> = SERVICE_NAMESPACES.iter().copied().filter(|o| *o != ns).collect();
            out.extend(port_table_ingress(ns, "allow-from-platform", &rows(ns, |_| true), namespaces_peer(&others)));
            out.extend(port_table_ingress(
                ns,
                "allow-from-ingress",
                &rows(ns, |r| r.via_ingress),
                namespaces_peer(&[INGRESS]),
            ));
        }
        if !self.tenants.is_empty() {
            out.extend(port_table_ingress(
                ns,
                "allow-from-tenants",
                &tenant_api_rows(ns),
                namespaces_peer(&self.tenants),
            ));
        }
        if ns == self.kafka.namespace {
            out.push(kafka_tls_only(ns, &self.kafka, &self.managed));
        }
        if ns == INGRESS {
            out.push(allow_from_outside(ns, LabelSelector::default()));
        }

        // Egress.
        let reachable: Vec<&ServicePort> = if is_service {
            SERVICE_NAMESPACES.iter().filter(|o| **o != ns).flat_map(|o| rows(o, |_| true)).collect()
        } else if ns == INGRESS {
            SERVICE_NAMESPACES.iter().flat_map(|o| rows(o, |r| r.via_ingress)).collect()
        } else {
            Vec::new()
        };
        out.extend(allow_to_platform(ns, &reachable));
        out.push(allow_to_kafka_tls(ns, &self.kafka));
        if self.internet.contains(&ns) {
            out.push(allow_to_internet(ns, &self.not_internet));
        }
        if ns == INGRESS {
            if !self.shared_ingress.is_empty() {
                out.push(policy(
                    ns,
                    "allow-to-tenants",
                    LabelSelector::default(),
                    None,
                    Some(vec![NetworkPolicyEgressRule {
                        to: Some(vec![namespaces_peer(&self.shared_ingress)]),
                        ports: Some(vec![tcp(TENANT_APP_PORT)]),
                    }]),
                ));
            }
            out.push(allow_to_api_server(ns, LabelSelector::default()));
        }
        out
    }

    fn tenant(&self, tenant: &TenantLayout) -> Vec<NetworkPolicy> {
        let ns = tenant.namespace.as_str();
        let mut out = vec![default_deny(ns), allow_dns(ns), allow_same_namespace(ns)];
        let controller = selector(tenant_ingress_pod_labels(&tenant.slug));
        if tenant.dedicated_ingress {
            // Its own controller, in this namespace, reaches the tenant's apps through
            // `allow-same-namespace`.
            out.push(allow_from_outside(ns, controller.clone()));
        } else {
            out.push(policy(
                ns,
                "allow-from-ingress",
                LabelSelector::default(),
                Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![namespaces_peer(&[INGRESS])]),
                    ports: Some(vec![tcp(TENANT_APP_PORT)]),
                }]),
                None,
            ));
        }
        let apis: Vec<&ServicePort> = PLATFORM_NAMESPACES.iter().flat_map(|o| tenant_api_rows(o)).collect();
        out.extend(allow_to_platform(ns, &apis));
        out.push(allow_to_kafka_tls(ns, &self.kafka));
        if tenant.dedicated_ingress {
            out.push(allow_to_api_server(ns, controller));
        }
        out
    }
}

/// Port-table rows of `ns` matching `keep`, without Kafka's TLS listener: Kafka has policies of
/// its own (and a namespace of the spec's choosing), reachable from every managed namespace
/// rather than from the platform only.
fn rows(ns: &str, keep: impl Fn(&ServicePort) -> bool) -> Vec<&'static ServicePort> {
    SERVICE_PORTS.iter().filter(|r| r.namespace == ns && r.port != KAFKA_TLS_PORT && keep(r)).collect()
}

/// What tenants may call: the control plane's APIs (8080-8089).
fn tenant_api_rows(ns: &str) -> Vec<&'static ServicePort> {
    if ns == CONTROL_PLANE { rows(ns, |_| true) } else { Vec::new() }
}

/// No traffic in or out of any pod in `ns` unless another policy allows it.
fn default_deny(ns: &str) -> NetworkPolicy {
    policy(ns, "default-deny", LabelSelector::default(), Some(vec![]), Some(vec![]))
}

/// Every pod resolves names through the cluster DNS in kube-system.
fn allow_dns(ns: &str) -> NetworkPolicy {
    let to = NetworkPolicyPeer {
        namespace_selector: Some(namespace_selector(KUBE_SYSTEM)),
        pod_selector: Some(selector(labels(&[KUBE_DNS_POD]))),
        ..Default::default()
    };
    policy(
        ns,
        "allow-dns",
        LabelSelector::default(),
        None,
        Some(vec![NetworkPolicyEgressRule {
            to: Some(vec![to]),
            ports: Some(vec![port("UDP", DNS_PORT, None), port("TCP", DNS_PORT, None)]),
        }]),
    )
}

/// Pods talk freely within their namespace, on every port but Kafka's plaintext listener.
///
/// Excluding 9092 for every pod, in both directions, is what keeps "plaintext allowed nowhere"
/// true inside `matih-data-plane`, where Kafka runs: a plain "allow all from the same namespace"
/// would reopen it. Restricting Kafka's pods to 9093 alone instead would cut the brokers'
/// replication (9091), the KRaft controllers (9090) and ZooKeeper, all same-namespace traffic
/// between Strimzi's own pods. The cost: no workload may serve on TCP 9092.
fn allow_same_namespace(ns: &str) -> NetworkPolicy {
    let ports = || Some(all_but_kafka_plaintext());
    let same = || Some(vec![NetworkPolicyPeer { pod_selector: Some(LabelSelector::default()), ..Default::default() }]);
    policy(
        ns,
        "allow-same-namespace",
        LabelSelector::default(),
        Some(vec![NetworkPolicyIngressRule { from: same(), ports: ports() }]),
        Some(vec![NetworkPolicyEgressRule { to: same(), ports: ports() }]),
    )
}

/// Ingress to `ns` from `from` on the given port-table rows: one policy per pod label the rows
/// target (`name` for rows of the whole namespace, `name-<label value>` for the others).
fn port_table_ingress(ns: &str, name: &str, rows: &[&ServicePort], from: NetworkPolicyPeer) -> Vec<NetworkPolicy> {
    let mut groups: BTreeMap<PodLabel, Vec<&ServicePort>> = BTreeMap::new();
    for row in rows {
        groups.entry(row.pod_label).or_default().push(row);
    }
    groups
        .into_iter()
        .map(|(label, rows)| {
            let (name, pods) = match label {
                None => (name.to_string(), LabelSelector::default()),
                Some((k, v)) => (format!("{name}-{}", dns_label(v)), selector(labels(&[(k, v)]))),
            };
            let rule = NetworkPolicyIngressRule { from: Some(vec![from.clone()]), ports: Some(row_ports(&rows)) };
            policy(ns, &name, pods, Some(vec![rule]), None)
        })
        .collect()
}

/// Egress from `ns` to the given port-table rows, one rule per (namespace, pod label); `None`
/// when there are no rows.
fn allow_to_platform(ns: &str, rows: &[&ServicePort]) -> Option<NetworkPolicy> {
    let mut groups: BTreeMap<(&str, PodLabel), Vec<&ServicePort>> = BTreeMap::new();
    for row in rows {
        groups.entry((row.namespace, row.pod_label)).or_default().push(row);
    }
    // Destinations in `PLATFORM_NAMESPACES` order rather than alphabetical: reads like the table.
    let order = |n: &str| PLATFORM_NAMESPACES.iter().position(|p| *p == n);
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|((n, label), _)| (order(n), *n, *label));
    let rules: Vec<NetworkPolicyEgressRule> = groups
        .into_iter()
        .map(|((to_ns, label), rows)| {
            let peer = NetworkPolicyPeer {
                namespace_selector: Some(namespace_selector(to_ns)),
                pod_selector: label.map(|(k, v)| selector(labels(&[(k, v)]))),
                ..Default::default()
            };
            NetworkPolicyEgressRule { to: Some(vec![peer]), ports: Some(row_ports(&rows)) }
        })
        .collect();
    (!rules.is_empty()).then(|| policy(ns, "allow-to-platform", LabelSelector::default(), None, Some(rules)))
}

/// Kafka's pods accept its TLS listener from every managed namespace (their own included).
/// Nothing opens 9092: see `allow_same_namespace`.
fn kafka_tls_only(ns: &str, kafka: &ServicePort, managed: &[String]) -> NetworkPolicy {
    let pods = kafka.pod_label.map(|(k, v)| selector(labels(&[(k, v)]))).unwrap_or_default();
    policy(
        ns,
        "kafka-tls-only",
        pods,
        Some(vec![NetworkPolicyIngressRule {
            from: Some(vec![namespaces_peer(managed)]),
            ports: Some(vec![tcp(KAFKA_TLS_PORT)]),
        }]),
        None,
    )
}

/// The platform document's rule, in every managed namespace: Kafka over TLS. The document
/// writes it toward every namespace (`namespaceSelector: {}`), which also opens 9093 toward any
/// namespace without policies of its own (kube-system, an operator's); here it goes to Kafka's
/// pods in Kafka's namespace only.
fn allow_to_kafka_tls(ns: &str, kafka: &ServicePort) -> NetworkPolicy {
    policy(
        ns,
        "allow-to-kafka-tls",
        LabelSelector::default(),
        None,
        Some(vec![NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(namespace_selector(kafka.namespace)),
                pod_selector: kafka.pod_label.map(|(k, v)| selector(labels(&[(k, v)]))),
                ..Default::default()
            }]),
            ports: Some(vec![tcp(KAFKA_TLS_PORT)]),
        }]),
    )
}

/// What the internet rule excepts: the cluster's ranges (a CNI such as Calico matches pod and
/// node IPs against an ipBlock, so 0.0.0.0/0 alone would reopen every pod in the cluster) and
/// the instance metadata address, merged and sorted.
fn not_internet(cluster_ranges: &[Ipv4Net]) -> Vec<String> {
    let mut nets = cluster_ranges.to_vec();
    nets.push(INSTANCE_METADATA.parse().expect("a valid CIDR"));
    Ipv4Net::aggregate(&nets).iter().map(ToString::to_string).collect()
}

/// Pods of `ns` reach addresses outside the cluster (LLM APIs, object storage, identity
/// providers) on every port but Kafka's plaintext 9092, which no policy opens anywhere.
fn allow_to_internet(ns: &str, except: &[String]) -> NetworkPolicy {
    let internet = NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr: ANYWHERE.into(), except: Some(except.to_vec()) }),
        ..Default::default()
    };
    policy(
        ns,
        "allow-to-internet",
        LabelSelector::default(),
        None,
        Some(vec![NetworkPolicyEgressRule { to: Some(vec![internet]), ports: Some(all_but_kafka_plaintext()) }]),
    )
}

/// Every TCP port but 9092, and every UDP port.
fn all_but_kafka_plaintext() -> Vec<NetworkPolicyPort> {
    vec![
        port("TCP", 1, Some(KAFKA_PLAINTEXT_PORT - 1)),
        port("TCP", KAFKA_PLAINTEXT_PORT + 1, Some(u16::MAX)),
        NetworkPolicyPort { protocol: Some("UDP".into()), ..Default::default() },
    ]
}

/// An ingress controller's pods accept HTTP, HTTPS and its admission webhook from anywhere:
/// clients and the cloud's load balancer are outside the cluster, and so is the API server
/// calling the webhook (it is not a pod, so no pod selector can name it).
fn allow_from_outside(ns: &str, controller: LabelSelector) -> NetworkPolicy {
    let mut ports: Vec<NetworkPolicyPort> = INGRESS_PORTS.iter().map(|p| tcp(*p)).collect();
    ports.push(tcp(INGRESS_WEBHOOK_PORT));
    policy(
        ns,
        "allow-from-outside",
        controller,
        Some(vec![NetworkPolicyIngressRule { from: Some(vec![anywhere()]), ports: Some(ports) }]),
        None,
    )
}

/// An ingress controller watches Ingresses, Services and EndpointSlices through the API server.
/// The API server is not a pod and its address differs per cloud (and may change), so this is
/// TCP 443 to any address: acceptable because only the controller's pods get it, and 443 is
/// the only port.
fn allow_to_api_server(ns: &str, controller: LabelSelector) -> NetworkPolicy {
    policy(
        ns,
        "allow-to-api-server",
        controller,
        None,
        Some(vec![NetworkPolicyEgressRule { to: Some(vec![anywhere()]), ports: Some(vec![tcp(API_SERVER_PORT)]) }]),
    )
}

/// A policy carrying the tool's labels. `policyTypes` is always explicit: `Ingress` when
/// `ingress` is given (even empty: that isolates without allowing), `Egress` likewise.
fn policy(
    ns: &str,
    name: &str,
    pods: LabelSelector,
    ingress: Option<Vec<NetworkPolicyIngressRule>>,
    egress: Option<Vec<NetworkPolicyEgressRule>>,
) -> NetworkPolicy {
    let mut types = Vec::new();
    if ingress.is_some() {
        types.push("Ingress".to_string());
    }
    if egress.is_some() {
        types.push("Egress".to_string());
    }
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(labels(&[(MANAGED_BY_LABEL, MANAGED_BY), (PART_OF_LABEL, PART_OF)])),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods),
            policy_types: Some(types),
            ingress: ingress.filter(|r| !r.is_empty()),
            egress: egress.filter(|r| !r.is_empty()),
        }),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector { match_labels: Some(labels), ..Default::default() }
}

fn namespace_selector(ns: &str) -> LabelSelector {
    selector(labels(&[(NAMESPACE_NAME_LABEL, ns)]))
}

/// Pods of the named namespaces: `matchLabels` for one, `In` for several.
fn namespaces_peer<S: AsRef<str>>(namespaces: &[S]) -> NetworkPolicyPeer {
    let namespace_selector = match namespaces {
        [one] => namespace_selector(one.as_ref()),
        many => {
            let mut values: Vec<String> = many.iter().map(|n| n.as_ref().to_string()).collect();
            values.sort();
            LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: NAMESPACE_NAME_LABEL.into(),
                    operator: "In".into(),
                    values: Some(values),
                }]),
                ..Default::default()
            }
        }
    };
    debug_assert!(!namespaces.is_empty(), "a namespace peer needs at least one namespace");
    NetworkPolicyPeer { namespace_selector: Some(namespace_selector), ..Default::default() }
}

fn anywhere() -> NetworkPolicyPeer {
    NetworkPolicyPeer { ip_block: Some(IPBlock { cidr: ANYWHERE.into(), except: None }), ..Default::default() }
}

fn port(protocol: &str, port: u16, end_port: Option<u16>) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(port.into())),
        end_port: end_port.map(i32::from),
    }
}

fn tcp(p: u16) -> NetworkPolicyPort {
    port("TCP", p, None)
}

/// The rows' ports, in port order, ranges as `port`..`endPort`.
fn row_ports(rows: &[&ServicePort]) -> Vec<NetworkPolicyPort> {
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| (r.port, r.end_port));
    rows.dedup_by_key(|r| (r.port, r.end_port));
    rows.iter().map(|r| port("TCP", r.port, r.end_port)).collect()
}

/// A label value made fit for a DNS-1123 name: lower case, runs of other characters as `-`.
fn dns_label(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}
