//! The platform spec's `clouds.aks` section as a desired resource graph.
//!
//! Names are deterministic (`<platform>-<environment>-…`), so ARM ids are known from the spec
//! alone: a re-run plans nothing, and an interrupted create is found again at its id.

use std::collections::BTreeMap;

use matih_plans::*;
use matih_provider_kit::dns::{self, ingress_controllers};
use matih_provider_kit::{ClusterBinding, ClusterRef, Dns01Solver, LoadBalancer};
use matih_spec::{AksSpec, CloudKind, PlatformSpec};
use serde_json::json;

use crate::identity::guid;

/// cert-manager's service account, whose DNS01 solver uses the managed identity.
pub const CERT_MANAGER_SUBJECT: &str = "system:serviceaccount:cert-manager:cert-manager";
/// The audience Entra ID expects of a federated service account token.
pub const TOKEN_AUDIENCE: &str = "api://AzureADTokenExchange";

fn t(group: &str, kind: &str) -> ResourceType {
    ResourceType::new(group, kind).expect("static type name")
}

fn single(kind: &str, name: &str) -> ResourceAddr {
    ResourceAddr::new(&t("aks", kind), name).expect("valid address")
}

fn keyed(kind: &str, name: &str, key: &str) -> ResourceAddr {
    ResourceAddr::keyed(&t("aks", kind), name, key).expect("valid address")
}

pub fn aks_spec(spec: &PlatformSpec) -> &AksSpec {
    spec.clouds.aks.as_ref().expect("the caller checked that clouds.aks exists")
}

fn prefix(spec: &PlatformSpec) -> String {
    format!("{}-{}", spec.platform.name, spec.platform.environment)
}

/// `aks.public_ip.ingress["<controller>"]`.
fn ingress_ip(ctrl: &str) -> ResourceAddr {
    keyed("public_ip", "ingress", ctrl)
}

fn pool_addr(name: &str) -> ResourceAddr {
    keyed("agent_pool", "pool", name)
}

/// The cluster's scope, relative to its resource group, as role assignment names start.
const CLUSTER_SCOPE: &str = "providers/Microsoft.ContainerService/managedClusters/";

/// `aks.role_assignment.cluster_admin["<object id>"]`.
fn cluster_admin(object_id: &str) -> ResourceAddr {
    keyed("role_assignment", "cluster_admin", object_id)
}

/// The Entra ID cluster admins, lower-cased (Entra ID object IDs are GUIDs, compared without case).
fn cluster_admins(spec: &PlatformSpec) -> Vec<String> {
    aks_spec(spec).entra_id.as_ref().map_or(Vec::new(), |e| sorted(&e.cluster_admins))
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_ascii_lowercase()).collect();
    v.sort();
    v
}

fn known(v: serde_json::Value) -> Value {
    Value::Known(v)
}

pub fn desired_graph(spec: &PlatformSpec) -> DesiredGraph {
    let aks = aks_spec(spec);
    let prefix = prefix(spec);
    let group_id = format!("/subscriptions/{}/resourceGroups/{}", aks.subscription_id, aks.resource_group);
    let mut g = DesiredGraph::default();

    let rg = single("resource_group", "main");
    g.add(Desired::new(rg.clone(), aks.resource_group.clone()).set("location", Value::str(aks.location.clone())));

    // Network for Azure CNI: nodes (and, without a pod subnet, pods) take VNet addresses.
    let nsg = single("nsg", "nodes");
    g.add(
        Desired::new(nsg.clone(), format!("{prefix}-nodes-nsg"))
            .set(
                "rules",
                known(json!([{
                    // The ingress controllers' load balancers forward web traffic to the nodes.
                    "name": "allow-ingress-web", "priority": 100, "access": "Allow", "protocol": "Tcp",
                    "source": "Internet", "ports": ["80", "443"],
                }])),
            )
            .after(&rg),
    );
    let vnet = single("vnet", "main");
    let vnet_name = format!("{prefix}-vnet");
    g.add(
        Desired::new(vnet.clone(), vnet_name.clone())
            .set("address_space", known(json!([aks.network.vnet_cidr.to_string()])))
            // CoreDNS forwards to the nodes' resolvers, which come from the VNet.
            .set(
                "dns_servers",
                known(json!(spec.addons.coredns.forwarders.iter().map(ToString::to_string).collect::<Vec<_>>())),
            )
            .after(&rg),
    );
    let nodes = single("subnet", "nodes");
    g.add(
        Desired::new(nodes.clone(), format!("{vnet_name}/nodes"))
            .set("vnet_id", Value::reference(&vnet, "id"))
            .set("address_prefix", Value::str(aks.network.node_subnet_cidr.to_string()))
            .set("nsg_id", Value::reference(&nsg, "id")),
    );
    let pods = aks.network.pod_subnet_cidr.map(|cidr| {
        let a = single("subnet", "pods");
        g.add(
            Desired::new(a.clone(), format!("{vnet_name}/pods"))
                .set("vnet_id", Value::reference(&vnet, "id"))
                .set("address_prefix", Value::str(cidr.to_string()))
                .set("nsg_id", known(serde_json::Value::Null))
                // Azure refuses two writes to subnets of one VNet at once.
                .after(&nodes),
        );
        a
    });
    let max_pods = aks.network.max_pods();
    let pool_settings = |mode: &str, p: &matih_spec::NodePool| {
        let mut m = BTreeMap::from([
            ("mode".to_string(), Value::str(mode)),
            ("vm_size".to_string(), Value::str(p.machine_type.clone())),
            ("min".to_string(), known(json!(p.min))),
            ("max".to_string(), known(json!(p.max))),
            ("max_pods".to_string(), known(json!(max_pods))),
            // Pools follow the cluster's version: an upgrade moves the control plane, then them.
            ("orchestrator_version".to_string(), Value::str(aks.kubernetes_version.clone())),
            ("node_subnet_id".to_string(), Value::reference(&nodes, "id")),
            (
                "pod_subnet_id".to_string(),
                pods.as_ref().map_or(known(serde_json::Value::Null), |a| Value::reference(a, "id")),
            ),
        ]);
        if mode == "System" {
            m.insert("name".into(), Value::str(p.name.clone()));
        }
        m
    };

    // The cluster, with the first node pool as its system pool.
    let cluster = single("cluster", "main");
    let system = &aks.node_pools[0];
    let mut cluster_desired = Desired::new(cluster.clone(), prefix.clone())
        .set("name", Value::str(prefix.clone()))
        .set("kubernetes_version", Value::str(aks.kubernetes_version.clone()))
        .set("dns_prefix", Value::str(prefix.clone()))
        .set("service_cidr", Value::str(aks.network.service_cidr.to_string()))
        .set("dns_service_ip", Value::str(aks.network.dns_ip().to_string()))
        .set("network_policy", Value::str("calico"))
        .set("system_pool", Value::map(pool_settings("System", system)))
        .set(
            "entra_id",
            known(
                aks.entra_id
                    .as_ref()
                    .map_or(serde_json::Value::Null, |e| json!({ "admin_group_ids": sorted(&e.admin_group_ids) })),
            ),
        );
    // The cluster's load balancer holds the ingress controllers' public IPs: it goes first on
    // destroy (Azure refuses to delete an address in use).
    for ctrl in ingress_controllers(spec) {
        cluster_desired = cluster_desired.after(&ingress_ip(&ctrl));
    }
    g.add(cluster_desired);
    // One pool after another: AKS refuses concurrent writes to the pools of one cluster.
    let mut previous: Option<ResourceAddr> = None;
    for p in &aks.node_pools[1..] {
        let mut d = Desired::new(pool_addr(&p.name), format!("{prefix}/{}", p.name))
            .set("cluster_id", Value::reference(&cluster, "id"));
        for (k, v) in pool_settings("User", p) {
            d = d.set(&k, v);
        }
        if let Some(prev) = &previous {
            d = d.after(prev);
        }
        previous = Some(pool_addr(&p.name));
        g.add(d);
    }
    // The cluster's load balancer takes the reserved public IPs from the resource group.
    g.add(
        Desired::new(single("role_assignment", "cluster_network"), guid(&format!("{group_id}/cluster-network")))
            .set("scope", Value::str(group_id.clone()))
            .set("role", Value::str("Network Contributor"))
            .set("principal_id", Value::reference(&cluster, "principal_id"))
            .set("principal_type", Value::str("ServicePrincipal")),
    );

    // Entra ID clusters: Azure RBAC admits the named principals (the one running this tool
    // among them, or in an admin group) as cluster admins.
    for admin in cluster_admins(spec) {
        g.add(
            Desired::new(
                cluster_admin(&admin),
                format!("{CLUSTER_SCOPE}{prefix}/{}", guid(&format!("{group_id}/cluster-admin/{admin}"))),
            )
            .set("scope", Value::reference(&cluster, "id"))
            .set("role", Value::str("Azure Kubernetes Service RBAC Cluster Admin"))
            .set("principal_id", Value::str(admin.clone())),
        );
    }

    // Static public IPs for the ingress controllers' load balancers.
    let mut ingress: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for ctrl in ingress_controllers(spec) {
        let a = ingress_ip(&ctrl);
        g.add(
            Desired::new(a.clone(), format!("{prefix}-ingress-{ctrl}")).set("sku", Value::str("Standard")).after(&rg),
        );
        ingress.insert(ctrl, vec![Value::reference(&a, "ip_address")]);
    }

    // Azure DNS: the zone, `api.`, tenant records and the delegation, as every cloud has them.
    let zone = dns::add_dns(&mut g, spec, &ingress, |d| d.set("location", Value::str("global")).after(&rg));

    // cert-manager's DNS01 identity: a managed identity trusted for its service account, allowed
    // to change the platform's zone only.
    let identity = single("identity", "cert_manager");
    let identity_name = format!("{prefix}-cert-manager");
    g.add(Desired::new(identity.clone(), identity_name.clone()).after(&rg));
    g.add(
        Desired::new(single("federated_credential", "cert_manager"), format!("{identity_name}/cert-manager"))
            .set("identity_id", Value::reference(&identity, "id"))
            .set("issuer", Value::reference(&cluster, "oidc_issuer"))
            .set("subject", Value::str(CERT_MANAGER_SUBJECT))
            .set("audiences", known(json!([TOKEN_AUDIENCE]))),
    );
    let zone_name = spec.zone_name();
    g.add(
        Desired::new(
            single("role_assignment", "dns01"),
            format!(
                "providers/Microsoft.Network/dnsZones/{zone_name}/{}",
                guid(&format!("{group_id}/dns01/{zone_name}"))
            ),
        )
        .set("scope", Value::reference(&zone, "id"))
        .set("role", Value::str("DNS Zone Contributor"))
        .set("principal_id", Value::reference(&identity, "principal_id"))
        .set("principal_type", Value::str("ServicePrincipal")),
    );

    g.output("cluster_name", Value::reference(&cluster, "name"), false);
    g.output("cluster_endpoint", Value::reference(&cluster, "endpoint"), false);
    g.output("cluster_ca", Value::reference(&cluster, "certificate_authority"), false);
    g.output("cluster_id", Value::reference(&cluster, "id"), false);
    g.output("oidc_issuer", Value::reference(&cluster, "oidc_issuer"), false);
    g.output("cert_manager_client_id", Value::reference(&identity, "client_id"), false);
    let ingress_out: BTreeMap<String, Value> = ingress.into_iter().map(|(c, ips)| (c, Value::list(ips))).collect();
    g.output("ingress_addresses", Value::map(ingress_out), false);
    g
}

/// What the bootstrap needs from the AKS resources.
pub fn bootstrap_binding(spec: &PlatformSpec) -> ClusterBinding {
    let aks = aks_spec(spec);
    let cluster = single("cluster", "main");
    let attr = |a: &str| Value::reference(&cluster, a);
    let identity = single("identity", "cert_manager");
    let load_balancers = ingress_controllers(spec)
        .into_iter()
        .map(|ctrl| {
            let ip = ingress_ip(&ctrl);
            let lb = LoadBalancer::AzurePublicIp {
                ip: Value::reference(&ip, "ip_address"),
                name: Value::reference(&ip, "name"),
                resource_group: Value::str(aks.resource_group.clone()),
            };
            (ctrl, lb)
        })
        .collect();
    let mut node_pools = vec![cluster.clone()];
    node_pools.extend(aks.node_pools[1..].iter().map(|p| pool_addr(&p.name)));
    ClusterBinding {
        cloud: CloudKind::Aks,
        cluster_addr: cluster.clone(),
        identity: BTreeMap::from([("id".to_string(), attr("id")), ("oidc_issuer".to_string(), attr("oidc_issuer"))]),
        connection: ClusterRef {
            name: attr("name"),
            endpoint: attr("endpoint"),
            ca_data: attr("certificate_authority"),
        },
        node_pools,
        access_grants: cluster_admins(spec).iter().map(|a| cluster_admin(a)).collect(),
        load_balancers,
        dns01: Dns01Solver::AzureDns {
            subscription_id: Value::str(aks.subscription_id.clone()),
            resource_group: Value::str(aks.resource_group.clone()),
            hosted_zone_name: Value::str(spec.zone_name()),
            client_id: Value::reference(&identity, "client_id"),
        },
        cert_manager_annotations: BTreeMap::from([(
            "azure.workload.identity/client-id".to_string(),
            Value::reference(&identity, "client_id"),
        )]),
    }
}
