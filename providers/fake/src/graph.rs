//! The fake cloud's resource types and the platform spec → resources mapping.
//!
//! The graph has the same shape the real providers build (network, subnets per zone, cluster,
//! node pools, reserved ingress addresses, DNS zone and records per tenant), so engine behaviour
//! proven here is the behaviour cloud providers get.

use matih_plans::*;
use matih_spec::PlatformSpec;
use serde_json::json;

fn t(group: &str, kind: &str) -> ResourceType {
    ResourceType::new(group, kind).expect("static type name")
}

fn schema(group: &str, kind: &str, attrs: &[(&str, char)], cbd: bool, protected: bool) -> TypeSchema {
    // DNS records are applied in batches, as Route 53 and Cloud DNS allow.
    let batched = (group, kind) == ("dns", "record");
    let mut attributes: Vec<AttrSchema> = attrs
        .iter()
        .map(|&(n, k)| match k {
            'f' => AttrSchema::force_new(n),
            'c' => AttrSchema::computed(n),
            _ => AttrSchema::updatable(n),
        })
        .collect();
    attributes.push(AttrSchema::computed("id"));
    attributes.push(AttrSchema::computed("arn"));
    TypeSchema {
        rtype: t(group, kind),
        attributes,
        create_before_destroy: cbd,
        protected_by_default: protected,
        batched,
    }
}

/// The fake cloud's resource types. `f` = forces replacement, `c` = computed, `u` = updatable.
pub fn schemas() -> Vec<TypeSchema> {
    vec![
        schema("fake", "network", &[("name", 'f'), ("cidr", 'f')], false, true),
        schema("fake", "subnet", &[("network_id", 'f'), ("cidr", 'f'), ("zone", 'f'), ("role", 'u')], false, false),
        schema(
            "fake",
            "cluster",
            &[("name", 'f'), ("version", 'u'), ("subnet_ids", 'f'), ("endpoint", 'c'), ("ca", 'c')],
            false,
            true,
        ),
        schema(
            "fake",
            "node_pool",
            &[("cluster_id", 'f'), ("machine_type", 'f'), ("min", 'u'), ("max", 'u')],
            true,
            false,
        ),
        schema("fake", "address", &[("name", 'f'), ("purpose", 'u'), ("ip", 'c')], false, true),
        schema("dns", "zone", &[("name", 'f'), ("name_servers", 'c')], false, true),
        schema(
            "dns",
            "record",
            &[("zone_id", 'f'), ("name", 'f'), ("type", 'f'), ("values", 'u'), ("ttl", 'u')],
            false,
            false,
        ),
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

    let zone = ResourceAddr::must("dns.zone.platform");
    let zone_name = spec.zone_name();
    g.add(Desired::new(zone.clone(), zone_name.clone()).set("name", Value::str(zone_name.clone())));
    let address = |g: &mut DesiredGraph, key: &str| {
        let a = ResourceAddr::keyed(&t("fake", "address"), "ingress", key).unwrap();
        g.add(
            Desired::new(a.clone(), format!("{prefix}-ingress-{key}"))
                .set("name", Value::str(format!("{prefix}-ingress-{key}")))
                .set("purpose", Value::str("ingress")),
        );
        a
    };
    let record = |g: &mut DesiredGraph, name: &str, key: Option<&str>, target: &ResourceAddr| {
        let rt = t("dns", "record");
        let a = match key {
            Some(k) => ResourceAddr::keyed(&rt, name, k).unwrap(),
            None => ResourceAddr::new(&rt, name).unwrap(),
        };
        let fqdn = match key {
            Some(k) => format!("{k}.{zone_name}"),
            None => format!("{name}.{zone_name}"),
        };
        g.add(
            Desired::new(a, fqdn.clone())
                .set("zone_id", Value::reference(&zone, "id"))
                .set("name", Value::str(fqdn))
                .set("type", Value::str("A"))
                .set("values", Value::list(vec![Value::reference(target, "ip")]))
                .set("ttl", Value::Known(json!(300))),
        );
    };
    let platform_ip = address(&mut g, "platform");
    record(&mut g, "api", None, &platform_ip);
    for tenant in &spec.tenants {
        let target = if tenant.dedicated_ingress { address(&mut g, &tenant.slug) } else { platform_ip.clone() };
        record(&mut g, "tenant", Some(&tenant.slug), &target);
    }

    g.output("cluster_endpoint", Value::reference(&cluster, "endpoint"), false);
    g.output("cluster_ca", Value::reference(&cluster, "ca"), true);
    g.output("zone_name_servers", Value::reference(&zone, "name_servers"), false);
    g.output("platform_ingress_ip", Value::reference(&platform_ip, "ip"), false);
    g
}
