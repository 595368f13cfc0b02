//! The fake cloud's resource types and the platform spec → resources mapping.
//!
//! The graph has the same shape the real providers build (network, subnets per zone, cluster,
//! node pools, reserved ingress addresses, DNS zone and records per tenant), so engine behaviour
//! proven here is the behaviour cloud providers get.

use std::collections::BTreeMap;

use matih_plans::*;
use matih_provider_kit::dns::{add_dns, ingress_controllers};
use matih_provider_kit::schema;
use matih_spec::PlatformSpec;
use serde_json::json;

fn t(group: &str, kind: &str) -> ResourceType {
    ResourceType::new(group, kind).expect("static type name")
}

/// The fake cloud's resource types; every one has the computed `id` and `arn`.
pub fn schemas() -> Vec<TypeSchema> {
    let ids = &["id", "arn"];
    vec![
        schema("fake", "network").force_new(&["name", "cidr"]).computed(ids).protected().build(),
        schema("fake", "subnet").force_new(&["network_id", "cidr", "zone"]).updatable(&["role"]).computed(ids).build(),
        schema("fake", "cluster")
            .force_new(&["name", "subnet_ids"])
            .updatable(&["version"])
            .computed(&["endpoint", "ca", "id", "arn"])
            .protected()
            .build(),
        schema("fake", "node_pool")
            .force_new(&["cluster_id", "machine_type"])
            .updatable(&["min", "max"])
            .computed(ids)
            .create_before_destroy()
            .build(),
        schema("fake", "address")
            .force_new(&["name"])
            .updatable(&["purpose"])
            .computed(&["ip", "id", "arn"])
            .protected()
            .build(),
        schema("dns", "zone")
            .force_new(&["name"])
            .updatable(&["comment"])
            .computed(&["name_servers", "id", "arn"])
            .protected()
            .build(),
        // DNS records are applied in batches, as Route 53 and Cloud DNS allow.
        schema("dns", "record")
            .force_new(&["zone_id", "name", "type"])
            .updatable(&["values", "ttl"])
            .computed(ids)
            .batched()
            .build(),
        schema("dns", "delegation")
            .force_new(&["parent_zone_name", "name"])
            .updatable(&["ttl", "name_servers"])
            .computed(ids)
            .build(),
    ]
}

const ZONES: [&str; 2] = ["zone-a", "zone-b"];

/// The fake cloud's resources for a platform spec, using the first configured cloud section for
/// network and cluster settings.
pub fn desired_graph(spec: &PlatformSpec) -> DesiredGraph {
    let mut g = DesiredGraph::default();
    let p = &spec.platform;
    let prefix = format!("{}-{}", p.name, p.environment);
    let cloud = spec.clouds.configured()[0];
    let cluster_view = spec.cluster(cloud).expect("configured cloud has a cluster");
    let cidr = match (&spec.clouds.eks, &spec.clouds.gke, &spec.clouds.aks) {
        (Some(e), _, _) => e.network.vpc_cidr,
        (_, Some(g), _) => g.network.subnet_cidr,
        (_, _, Some(a)) => a.network.vnet_cidr,
        _ => unreachable!("validated: at least one cloud"),
    };
    let subnets: Vec<_> =
        cidr.subnets(cidr.prefix_len() + 2).map(|s| s.take(ZONES.len()).collect()).unwrap_or_default();

    let net = ResourceAddr::must("fake.network.main");
    g.add(
        Desired::new(net.clone(), format!("{prefix}-net"))
            .set("name", Value::str(format!("{prefix}-net")))
            .set("cidr", Value::str(cidr.to_string())),
    );
    let mut subnet_ids = Vec::new();
    for (zone, sn) in ZONES.iter().zip(&subnets) {
        let a = ResourceAddr::keyed(&t("fake", "subnet"), "private", *zone).unwrap();
        g.add(
            Desired::new(a.clone(), format!("{prefix}-private-{zone}"))
                .set("network_id", Value::reference(&net, "id"))
                .set("cidr", Value::str(sn.to_string()))
                .set("zone", Value::str(*zone))
                .set("role", Value::str("private")),
        );
        subnet_ids.push(Value::reference(&a, "id"));
    }
    let cluster = ResourceAddr::must("fake.cluster.main");
    g.add(
        Desired::new(cluster.clone(), prefix.clone())
            .set("name", Value::str(prefix.clone()))
            .set("version", Value::str(cluster_view.kubernetes_version))
            .set("subnet_ids", Value::list(subnet_ids)),
    );
    for pool in cluster_view.node_pools {
        let a = ResourceAddr::keyed(&t("fake", "node_pool"), "pool", pool.name.as_str()).unwrap();
        g.add(
            Desired::new(a, format!("{prefix}-{}", pool.name))
                .set("cluster_id", Value::reference(&cluster, "id"))
                .set("machine_type", Value::str(pool.machine_type.clone()))
                .set("min", Value::Known(json!(pool.min)))
                .set("max", Value::Known(json!(pool.max))),
        );
    }

    let address = |g: &mut DesiredGraph, key: &str| {
        let a = ResourceAddr::keyed(&t("fake", "address"), "ingress", key).unwrap();
        g.add(
            Desired::new(a.clone(), format!("{prefix}-ingress-{key}"))
                .set("name", Value::str(format!("{prefix}-ingress-{key}")))
                .set("purpose", Value::str("ingress")),
        );
        a
    };
    let mut ips = BTreeMap::new();
    let mut platform_ip = None;
    for ctrl in ingress_controllers(spec) {
        let a = address(&mut g, &ctrl);
        ips.insert(ctrl.clone(), vec![Value::reference(&a, "ip")]);
        platform_ip.get_or_insert(a);
    }
    let platform_ip = platform_ip.expect("the platform controller comes first");
    add_dns(&mut g, spec, &ips, |d| d);

    g.output("cluster_endpoint", Value::reference(&cluster, "endpoint"), false);
    g.output("cluster_ca", Value::reference(&cluster, "ca"), true);
    g.output("platform_ingress_ip", Value::reference(&platform_ip, "ip"), false);
    g
}
