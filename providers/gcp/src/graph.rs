//! The platform spec's `clouds.gke` section as a desired resource graph.
//!
//! Names are deterministic (`<platform>-<environment>-…`), so every resource is found again by
//! name after a lost answer or a crash, and a re-run plans nothing.

use std::collections::BTreeMap;

use matih_plans::*;
use matih_provider_kit::dns::{self, ingress_controllers};
use matih_provider_kit::{ClusterBinding, ClusterRef, Dns01Solver, LoadBalancer};
use matih_spec::{CloudKind, GkeDataplane, GkeSpec, PlatformSpec};
use serde_json::json;

/// cert-manager's Kubernetes service account, as workload identity names it.
pub const CERT_MANAGER_KSA: &str = "cert-manager/cert-manager";
/// Google's load balancer health checks come from these ranges.
pub const HEALTH_CHECK_RANGES: [&str; 2] = ["35.191.0.0/16", "130.211.0.0/22"];
/// Ports the control plane calls on nodes: the kubelet, and the admission webhooks of the
/// add-ons (ingress-nginx 8443, cert-manager 10250, others on 443/9443).
pub const WEBHOOK_PORTS: [&str; 4] = ["443", "8443", "9443", "10250"];

fn t(group: &str, kind: &str) -> ResourceType {
    ResourceType::new(group, kind).expect("static type name")
}

fn single(kind: &str, name: &str) -> ResourceAddr {
    ResourceAddr::new(&t("gke", kind), name).expect("valid address")
}

fn keyed(kind: &str, name: &str, key: &str) -> ResourceAddr {
    ResourceAddr::keyed(&t("gke", kind), name, key).expect("valid address")
}

pub fn gke_spec(spec: &PlatformSpec) -> &GkeSpec {
    spec.clouds.gke.as_ref().expect("the caller checked that clouds.gke exists")
}

fn prefix(spec: &PlatformSpec) -> String {
    format!("{}-{}", spec.platform.name, spec.platform.environment)
}

/// `gke.address.ingress["<controller>"]`.
fn ingress_ip(ctrl: &str) -> ResourceAddr {
    keyed("address", "ingress", ctrl)
}

fn pool_addr(name: &str) -> ResourceAddr {
    keyed("node_pool", "pool", name)
}

/// The Google service account cert-manager's DNS01 solver acts as: 6 to 30 characters. A name
/// too long keeps its start and ends in a digest of the whole, so two environments never share
/// an account.
pub fn dns01_account_id(spec: &PlatformSpec) -> String {
    let id = format!("{}-dns01", prefix(spec));
    if id.len() <= 30 {
        return id;
    }
    let digest = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes())[..4]);
    let head: String = id.chars().take(30 - 1 - digest.len()).collect();
    format!("{}-{digest}", head.trim_end_matches('-'))
}

fn dns01_email(spec: &PlatformSpec) -> String {
    format!("{}@{}.iam.gserviceaccount.com", dns01_account_id(spec), gke_spec(spec).project)
}

/// `<project>.svc.id.goog`: the cluster's workload identity pool.
pub fn workload_pool(spec: &PlatformSpec) -> String {
    format!("{}.svc.id.goog", gke_spec(spec).project)
}

fn known(v: serde_json::Value) -> Value {
    Value::Known(v)
}

fn pool_settings(p: &matih_spec::NodePool, version: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("name".to_string(), Value::str(p.name.clone())),
        ("machine_type".to_string(), Value::str(p.machine_type.clone())),
        ("min".to_string(), known(json!(p.min))),
        ("max".to_string(), known(json!(p.max))),
        ("version".to_string(), Value::str(version)),
    ])
}

pub fn desired_graph(spec: &PlatformSpec) -> DesiredGraph {
    let gke = gke_spec(spec);
    let prefix = prefix(spec);
    let net = &gke.network;
    let mut g = DesiredGraph::default();

    // VPC-native: nodes in the subnet's primary range, pods and services in its named
    // secondary ranges (alias IPs).
    let network = single("network", "main");
    let network_name = format!("{prefix}-vpc");
    g.add(Desired::new(network.clone(), network_name.clone()).set("routing_mode", Value::str("REGIONAL")));
    let subnet = single("subnet", "nodes");
    let subnet_name = format!("{prefix}-nodes");
    g.add(
        Desired::new(subnet.clone(), subnet_name.clone())
            .set("network", Value::str(network_name.clone()))
            .set("ip_cidr_range", Value::str(net.subnet_cidr.to_string()))
            .set(
                "secondary_ranges",
                known(json!({"pods": net.pods_cidr.to_string(), "services": net.services_cidr.to_string()})),
            )
            // Private nodes reach Google's APIs (image pulls among them) without NAT.
            .set("private_ip_google_access", known(json!(true)))
            .after(&network),
    );
    let firewall = |name: &str, sources: Vec<String>, allowed: serde_json::Value| {
        Desired::new(single("firewall", name), format!("{prefix}-allow-{}", name.replace('_', "-")))
            .set("network", Value::str(network_name.clone()))
            .set("priority", known(json!(1000)))
            .set("source_ranges", known(json!(sources)))
            .set("allowed", known(allowed))
            .set("target_tags", known(json!([])))
            .after(&network)
    };
    // Nodes and pods talk to one another freely; NetworkPolicy narrows it inside the cluster.
    g.add(firewall(
        "internal",
        vec![net.subnet_cidr.to_string(), net.pods_cidr.to_string()],
        json!([{"IPProtocol": "tcp"}, {"IPProtocol": "udp"}, {"IPProtocol": "icmp"}]),
    ));
    g.add(firewall(
        "health_checks",
        HEALTH_CHECK_RANGES.iter().map(ToString::to_string).collect(),
        json!([{"IPProtocol": "tcp"}]),
    ));
    g.add(firewall(
        "webhooks",
        vec![net.master_cidr.to_string()],
        json!([{"IPProtocol": "tcp", "ports": WEBHOOK_PORTS}]),
    ));
    // Private nodes reach the internet through Cloud NAT.
    let router = single("router", "nat");
    g.add(
        Desired::new(router.clone(), format!("{prefix}-router"))
            .set("network", Value::str(network_name.clone()))
            .set(
                "nat",
                known(json!({
                    "name": format!("{prefix}-nat"),
                    "ip_allocation": "AUTO_ONLY",
                    "source_ranges": "ALL_SUBNETWORKS_ALL_IP_RANGES",
                })),
            )
            .after(&network),
    );

    // Static IPs for the ingress controllers' load balancers.
    let mut ingress: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for ctrl in ingress_controllers(spec) {
        let a = ingress_ip(&ctrl);
        g.add(Desired::new(a.clone(), format!("{prefix}-ingress-{ctrl}")).set("network_tier", Value::str("PREMIUM")));
        ingress.insert(ctrl, vec![Value::reference(&a, "address")]);
    }

    // The cluster, with the first node pool.
    let cluster = single("cluster", "main");
    let version = gke.kubernetes_version.clone();
    let mut c = Desired::new(cluster.clone(), prefix.clone())
        .set("kubernetes_version", Value::str(version.clone()))
        .set("network", Value::str(network_name.clone()))
        .set("subnetwork", Value::str(subnet_name.clone()))
        .set("pods_range", Value::str("pods"))
        .set("services_range", Value::str("services"))
        .set("master_cidr", Value::str(net.master_cidr.to_string()))
        .set(
            "dataplane",
            Value::str(match gke.dataplane {
                GkeDataplane::Calico => "calico",
                GkeDataplane::DataplaneV2 => "dataplane-v2",
            }),
        )
        .set("workload_pool", Value::str(workload_pool(spec)))
        .set("system_pool", Value::map(pool_settings(&gke.node_pools[0], &version)))
        .after(&subnet)
        .after(&router);
    // The load balancers hold the static IPs: the cluster goes first on destroy.
    for ctrl in ingress_controllers(spec) {
        c = c.after(&ingress_ip(&ctrl));
    }
    g.add(c);
    // One pool after another: GKE runs one operation per cluster at a time.
    let mut previous: Option<ResourceAddr> = None;
    for p in &gke.node_pools[1..] {
        let mut d = Desired::new(pool_addr(&p.name), format!("{prefix}/{}", p.name))
            .set("cluster", Value::reference(&cluster, "name"));
        for (k, v) in pool_settings(p, &version) {
            d = d.set(&k, v);
        }
        if let Some(prev) = &previous {
            d = d.after(prev);
        }
        previous = Some(pool_addr(&p.name));
        g.add(d);
    }

    // Cloud DNS: the zone, `api.`, tenant records and the delegation.
    let zone = dns::add_dns(&mut g, spec, &ingress, |mut d| {
        d.name = crate::dns::zone_resource_name(&d.name);
        d
    });

    // cert-manager's DNS01 identity: a Google service account that may change the platform's
    // zone only, which cert-manager's Kubernetes service account acts as.
    let sa = single("service_account", "dns01");
    g.add(Desired::new(sa.clone(), dns01_account_id(spec)).set(
        "display_name",
        Value::str(format!("cert-manager DNS01 for {} {}", spec.platform.name, spec.platform.environment)),
    ));
    g.add(
        Desired::new(single("iam_binding", "dns01"), format!("{prefix}-dns01-zone"))
            .set("resource_kind", Value::str("dns-zone"))
            .set("resource", Value::reference(&zone, "id"))
            .set("role", Value::str("roles/dns.admin"))
            .set("member", Value::str(format!("serviceAccount:{}", dns01_email(spec))))
            .after(&sa),
    );
    g.add(
        Desired::new(single("iam_binding", "workload_identity"), format!("{prefix}-dns01-wi"))
            .set("resource_kind", Value::str("service-account"))
            .set("resource", Value::reference(&sa, "email"))
            .set("role", Value::str("roles/iam.workloadIdentityUser"))
            .set("member", Value::str(format!("serviceAccount:{}[{CERT_MANAGER_KSA}]", workload_pool(spec))))
            // The workload identity pool exists once the cluster does.
            .after(&cluster),
    );

    g.output("cluster_name", Value::reference(&cluster, "name"), false);
    g.output("cluster_endpoint", Value::reference(&cluster, "endpoint"), false);
    g.output("cluster_ca", Value::reference(&cluster, "certificate_authority"), false);
    g.output("cluster_id", Value::reference(&cluster, "id"), false);
    g.output("workload_pool", Value::str(workload_pool(spec)), false);
    g.output("cert_manager_service_account", Value::reference(&sa, "email"), false);
    let ingress_out: BTreeMap<String, Value> = ingress.into_iter().map(|(c, ips)| (c, Value::list(ips))).collect();
    g.output("ingress_addresses", Value::map(ingress_out), false);
    g
}

/// What the bootstrap needs from the GKE resources.
pub fn bootstrap_binding(spec: &PlatformSpec) -> ClusterBinding {
    let gke = gke_spec(spec);
    let cluster = single("cluster", "main");
    let attr = |a: &str| Value::reference(&cluster, a);
    let sa = single("service_account", "dns01");
    let load_balancers = ingress_controllers(spec)
        .into_iter()
        .map(|ctrl| (ctrl.clone(), LoadBalancer::GcpStaticIp { ip: Value::reference(&ingress_ip(&ctrl), "address") }))
        .collect();
    let mut node_pools = vec![cluster.clone()];
    node_pools.extend(gke.node_pools[1..].iter().map(|p| pool_addr(&p.name)));
    ClusterBinding {
        cloud: CloudKind::Gke,
        cluster_addr: cluster.clone(),
        identity: BTreeMap::from([("id".to_string(), attr("id")), ("self_link".to_string(), attr("self_link"))]),
        connection: ClusterRef {
            name: attr("name"),
            endpoint: attr("endpoint"),
            ca_data: attr("certificate_authority"),
        },
        node_pools,
        access_grants: vec![],
        load_balancers,
        dns01: Dns01Solver::CloudDns {
            project: Value::str(gke.project.clone()),
            hosted_zone_name: Value::reference(&dns::zone_addr(), "id"),
        },
        cert_manager_annotations: BTreeMap::from([(
            "iam.gke.io/gcp-service-account".to_string(),
            Value::reference(&sa, "email"),
        )]),
    }
}
