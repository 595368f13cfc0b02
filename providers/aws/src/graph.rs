//! The platform spec's `clouds.eks` section as a desired resource graph.
//!
//! Names are deterministic (`<platform>-<environment>-…`) and every address is stable, so a
//! re-run plans nothing and an interrupted create is found again by its owner tags.

use std::collections::BTreeMap;

use matih_plans::*;
use matih_provider_kit::dns::{self, ingress_controllers};
use matih_provider_kit::{ClusterBinding, ClusterRef, Dns01Solver, LoadBalancer};
use matih_spec::{CloudKind, EksSpec, NatGateways, PlatformSpec};
use serde_json::json;

/// The IAM path every role of the tool lives under.
pub const IAM_PATH: &str = "/matih/";

/// Managed policies EKS needs on the cluster and node roles.
const CLUSTER_POLICIES: &[&str] = &["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"];
/// Sorted, as refresh reports them.
const NODE_POLICIES: &[&str] = &[
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
];

/// cert-manager's service account, whose DNS01 solver assumes the Route 53 role through IRSA.
pub const CERT_MANAGER_SUBJECT: &str = "system:serviceaccount:cert-manager:cert-manager";

fn t(group: &str, kind: &str) -> ResourceType {
    ResourceType::new(group, kind).expect("static type name")
}

fn keyed(group: &str, kind: &str, name: &str, key: &str) -> ResourceAddr {
    ResourceAddr::keyed(&t(group, kind), name, key).expect("valid address")
}

fn single(group: &str, kind: &str, name: &str) -> ResourceAddr {
    ResourceAddr::new(&t(group, kind), name).expect("valid address")
}

fn strs(v: &[&str]) -> Value {
    Value::Known(json!(v))
}

/// Availability zones: the first `n` of the region (`us-east-1a`, `us-east-1b`, …).
pub fn zones(eks: &EksSpec) -> Vec<String> {
    (0..eks.network.availability_zones).map(|i| format!("{}{}", eks.region, (b'a' + i) as char)).collect()
}

/// `eks.eip.ingress["<controller>/<zone>"]`: an ingress controller's address in one zone.
fn ingress_eip(ctrl: &str, az: &str) -> ResourceAddr {
    keyed("eks", "eip", "ingress", &format!("{ctrl}/{az}"))
}

pub fn desired_graph(spec: &PlatformSpec) -> DesiredGraph {
    let eks = spec.clouds.eks.as_ref().expect("the caller checked that clouds.eks exists");
    let p = &spec.platform;
    let prefix = format!("{}-{}", p.name, p.environment);
    let cluster_name = prefix.clone();
    let azs = zones(eks);
    let nets = eks.network.subnets();
    let mut g = DesiredGraph::default();

    // Network for the Amazon VPC CNI: pods take VPC addresses from the private subnets.
    let vpc = single("eks", "vpc", "main");
    g.add(
        Desired::new(vpc.clone(), format!("{prefix}-vpc"))
            .set("cidr", Value::str(eks.network.vpc_cidr.to_string()))
            .set("enable_dns_support", Value::Known(json!(true)))
            .set("enable_dns_hostnames", Value::Known(json!(true)))
            .set("tags", Value::Known(json!({}))),
    );
    let igw = single("eks", "internet_gateway", "main");
    g.add(
        Desired::new(igw.clone(), format!("{prefix}-igw"))
            .set("vpc_id", Value::reference(&vpc, "id"))
            .set("tags", Value::Known(json!({}))),
    );
    let public_rt = single("eks", "route_table", "public");
    g.add(
        Desired::new(public_rt.clone(), format!("{prefix}-public"))
            .set("vpc_id", Value::reference(&vpc, "id"))
            .set("default_route_target", Value::reference(&igw, "id"))
            .set("tags", Value::Known(json!({}))),
    );
    let cluster_tag = format!("kubernetes.io/cluster/{cluster_name}");
    let mut public = Vec::new();
    let mut private = Vec::new();
    for (i, az) in azs.iter().enumerate() {
        let a = keyed("eks", "subnet", "public", az);
        g.add(
            Desired::new(a.clone(), format!("{prefix}-public-{az}"))
                .set("vpc_id", Value::reference(&vpc, "id"))
                .set("cidr", Value::str(nets.public[i].to_string()))
                .set("availability_zone", Value::str(az.clone()))
                .set("map_public_ip_on_launch", Value::Known(json!(true)))
                .set("route_table_id", Value::reference(&public_rt, "id"))
                .set("tags", Value::Known(json!({ "kubernetes.io/role/elb": "1", cluster_tag.clone(): "shared" }))),
        );
        public.push(a);
    }
    // NAT: one in the first zone, or one per zone.
    let nat_zones: Vec<&String> = match eks.network.nat_gateways {
        NatGateways::Single => azs.iter().take(1).collect(),
        NatGateways::PerAz => azs.iter().collect(),
    };
    let mut nats = Vec::new();
    for az in &nat_zones {
        let i = azs.iter().position(|z| z == *az).unwrap();
        let eip = keyed("eks", "eip", "nat", az);
        g.add(Desired::new(eip.clone(), format!("{prefix}-nat-{az}")).set("purpose", Value::str("nat")).protect(false));
        let nat = keyed("eks", "nat_gateway", "main", az);
        g.add(
            Desired::new(nat.clone(), format!("{prefix}-nat-{az}"))
                .set("subnet_id", Value::reference(&public[i], "id"))
                .set("allocation_id", Value::reference(&eip, "id"))
                .after(&public_rt),
        );
        nats.push(nat);
    }
    for (i, az) in azs.iter().enumerate() {
        let nat = &nats[if nats.len() == 1 { 0 } else { i }];
        let rt = keyed("eks", "route_table", "private", az);
        g.add(
            Desired::new(rt.clone(), format!("{prefix}-private-{az}"))
                .set("vpc_id", Value::reference(&vpc, "id"))
                .set("default_route_target", Value::reference(nat, "id"))
                .set("tags", Value::Known(json!({}))),
        );
        let a = keyed("eks", "subnet", "private", az);
        g.add(
            Desired::new(a.clone(), format!("{prefix}-private-{az}"))
                .set("vpc_id", Value::reference(&vpc, "id"))
                .set("cidr", Value::str(nets.private[i].to_string()))
                .set("availability_zone", Value::str(az.clone()))
                .set("map_public_ip_on_launch", Value::Known(json!(false)))
                .set("route_table_id", Value::reference(&rt, "id"))
                .set(
                    "tags",
                    Value::Known(json!({ "kubernetes.io/role/internal-elb": "1", cluster_tag.clone(): "shared" })),
                ),
        );
        private.push(a);
    }
    let sg = single("eks", "security_group", "cluster");
    g.add(
        Desired::new(sg.clone(), format!("{prefix}-cluster"))
            .set("vpc_id", Value::reference(&vpc, "id"))
            .set("group_name", Value::str(format!("{prefix}-cluster-extra")))
            .set("description", Value::str("matih-infra: extra rules for the EKS control plane"))
            // Nodes and pods (VPC addresses) reach the API server privately.
            .set("ingress", Value::Known(json!([format!("tcp:443:443:{}", eks.network.vpc_cidr)]))),
    );

    // IAM.
    let role = |g: &mut DesiredGraph, name: &str, trust: Value, policies: &[&str], zones: Value| {
        let a = single("eks", "iam_role", name);
        let role_name = format!("{prefix}-{}", name.replace('_', "-"));
        g.add(
            Desired::new(a.clone(), role_name.clone())
                .set("name", Value::str(role_name))
                .set("path", Value::str(IAM_PATH))
                .set("trust", trust)
                .set("managed_policies", strs(policies))
                .set("route53_zone_ids", zones),
        );
        a
    };
    let cluster_role =
        role(&mut g, "cluster", Value::Known(json!({"service": "eks.amazonaws.com"})), CLUSTER_POLICIES, strs(&[]));
    let node_role =
        role(&mut g, "node", Value::Known(json!({"service": "ec2.amazonaws.com"})), NODE_POLICIES, strs(&[]));

    // The cluster and its node groups.
    let cluster = single("eks", "cluster", "main");
    let refs = |v: &[ResourceAddr]| Value::list(v.iter().map(|a| Value::reference(a, "id")).collect());
    let e = &eks.endpoint;
    g.add(
        Desired::new(cluster.clone(), cluster_name.clone())
            .set("name", Value::str(cluster_name.clone()))
            .set("version", Value::str(eks.kubernetes_version.clone()))
            .set("role_arn", Value::reference(&cluster_role, "arn"))
            .set("subnet_ids", refs(&private))
            .set("security_group_ids", Value::list(vec![Value::reference(&sg, "id")]))
            .set("endpoint_public_access", Value::Known(json!(e.public_access)))
            .set("endpoint_private_access", Value::Known(json!(e.private_access)))
            .set(
                "public_access_cidrs",
                Value::Known(json!(e.public_access_cidrs.iter().map(ToString::to_string).collect::<Vec<_>>())),
            )
            .set("service_cidr", Value::str(eks.network.service_cidr.to_string())),
    );
    let oidc = single("eks", "oidc_provider", "main");
    g.add(
        Desired::new(oidc.clone(), format!("{prefix}-oidc"))
            .set("url", Value::reference(&cluster, "oidc_issuer"))
            .set("client_ids", strs(&["sts.amazonaws.com"])),
    );
    for pool in &eks.node_pools {
        let a = keyed("eks", "node_group", "pool", &pool.name);
        let mut d = Desired::new(a, pool.name.clone())
            .set("cluster_name", Value::reference(&cluster, "name"))
            .set("name", Value::str(pool.name.clone()))
            .set("node_role_arn", Value::reference(&node_role, "arn"))
            .set("subnet_ids", refs(&private))
            .set("instance_types", Value::Known(json!([pool.machine_type])))
            .set("min_size", Value::Known(json!(pool.min)))
            .set("max_size", Value::Known(json!(pool.max)))
            .set("initial_size", Value::Known(json!(pool.desired.unwrap_or(pool.min.max(1)))));
        // Nodes need a way out (NAT) before they can join.
        for n in &nats {
            d = d.after(n);
        }
        g.add(d);
    }

    // Addresses for the ingress controllers' network load balancers: one per zone each.
    let mut ingress: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for ctrl in ingress_controllers(spec) {
        let ips = azs
            .iter()
            .map(|az| {
                let a = ingress_eip(&ctrl, az);
                g.add(
                    Desired::new(a.clone(), format!("{prefix}-ingress-{ctrl}-{az}"))
                        .set("purpose", Value::str(format!("ingress:{ctrl}"))),
                );
                Value::reference(&a, "public_ip")
            })
            .collect();
        ingress.insert(ctrl, ips);
    }

    // Route 53: the zone, `api.`, tenant records and the delegation, as every cloud has them.
    let zone = dns::add_dns(&mut g, spec, &ingress, |d| d);

    // cert-manager's DNS01 solver: a role for its service account, limited to this zone.
    role(
        &mut g,
        "cert_manager",
        Value::map(
            [(
                "web_identity".to_string(),
                Value::map(
                    [
                        ("provider_arn".to_string(), Value::reference(&oidc, "arn")),
                        ("issuer_host".to_string(), Value::reference(&oidc, "issuer_host")),
                        ("subject".to_string(), Value::str(CERT_MANAGER_SUBJECT)),
                    ]
                    .into(),
                ),
            )]
            .into(),
        ),
        &[],
        Value::list(vec![Value::reference(&zone, "id")]),
    );

    g.output("cluster_name", Value::reference(&cluster, "name"), false);
    g.output("cluster_endpoint", Value::reference(&cluster, "endpoint"), false);
    g.output("cluster_ca", Value::reference(&cluster, "certificate_authority"), false);
    g.output("cluster_arn", Value::reference(&cluster, "arn"), false);
    g.output("oidc_issuer", Value::reference(&cluster, "oidc_issuer"), false);
    g.output("cert_manager_role_arn", Value::reference(&single("eks", "iam_role", "cert_manager"), "arn"), false);
    let ingress_out: BTreeMap<String, Value> = ingress.into_iter().map(|(c, ips)| (c, Value::list(ips))).collect();
    g.output("ingress_addresses", Value::map(ingress_out), false);
    g
}

/// What the bootstrap needs from the EKS resources: the cluster's identity and connection, the
/// node groups, each ingress controller's Elastic IP allocations (for the NLB annotation),
/// Route 53 for cert-manager's DNS01 solver and the IRSA role on its service account.
pub fn bootstrap_binding(spec: &PlatformSpec) -> ClusterBinding {
    let eks = spec.clouds.eks.as_ref().expect("the caller checked that clouds.eks exists");
    let cluster = single("eks", "cluster", "main");
    let attr = |a: &str| Value::reference(&cluster, a);
    let azs = zones(eks);
    let load_balancers = ingress_controllers(spec)
        .into_iter()
        .map(|ctrl| {
            let eip_allocations = azs.iter().map(|az| Value::reference(&ingress_eip(&ctrl, az), "id")).collect();
            (ctrl, LoadBalancer::AwsNlb { eip_allocations })
        })
        .collect();
    ClusterBinding {
        cloud: CloudKind::Eks,
        cluster_addr: cluster.clone(),
        identity: BTreeMap::from([("arn".to_string(), attr("arn")), ("created_at".to_string(), attr("created_at"))]),
        connection: ClusterRef {
            name: attr("name"),
            endpoint: attr("endpoint"),
            ca_data: attr("certificate_authority"),
        },
        node_pools: eks.node_pools.iter().map(|p| keyed("eks", "node_group", "pool", &p.name)).collect(),
        // The cluster's creator is its admin (access entries' bootstrap permissions).
        access_grants: vec![],
        load_balancers,
        dns01: Dns01Solver::Route53 {
            region: Value::str(eks.region.clone()),
            hosted_zone_id: Value::reference(&dns::zone_addr(), "id"),
        },
        cert_manager_annotations: BTreeMap::from([(
            "eks.amazonaws.com/role-arn".to_string(),
            Value::reference(&single("eks", "iam_role", "cert_manager"), "arn"),
        )]),
    }
}
