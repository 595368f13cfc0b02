//! `--cloud eks` end to end: the binary against the moto server (started per test on 127.0.0.1)
//! through the real AWS SDK, and the cluster bootstrap against the project's Kubernetes API
//! emulator (`MATIH_KUBE_API_SERVER`), authenticated with the tool's EKS token, which the
//! emulator verifies (SigV4 signature, cluster name). What moto and the emulator hold is checked
//! by listing them.
//!
//! moto's gaps, covered honestly rather than faked: EKS clusters, node groups and NAT gateways
//! are ACTIVE/available at once (waits return on the first look), there is no EKS add-on API, and
//! UpdateClusterVersion is not implemented, so version upgrades are not exercised here.
#![cfg(feature = "aws")]

use std::collections::BTreeMap;
use std::process::Stdio;

use aws_sdk_ec2::types::Filter;
use std::sync::Arc;

use matih_emulators::{Moto, MotoPerService};
use matih_kube_emulator::{Auth, KubeEmulator, NamespaceTermination, Options, Readiness, WebhookBackends};
use serde_json::{Value, json};

mod common;
use common::*;

#[path = "eks/faults.rs"]
mod faults;
#[path = "eks/plans.rs"]
mod plans;

const EKS: &[&str] = &["--cloud", "eks"];

fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
    a.iter().copied().chain(EKS.iter().copied()).collect()
}

fn work(moto: &Moto) -> (Work, Arc<KubeEmulator>) {
    work_with(moto, "matih-prod", Readiness::Immediate)
}

/// A work directory whose commands use this moto, a fresh Kubernetes API emulator standing in for
/// `cluster`'s API server (accepting only that cluster's EKS token), and the test add-on manifests.
fn work_with(moto: &Moto, cluster: &str, readiness: Readiness) -> (Work, Arc<KubeEmulator>) {
    work_with_options(moto, cluster, Options { readiness, ..Options::default() })
}

fn work_with_options(moto: &Moto, cluster: &str, options: Options) -> (Work, Arc<KubeEmulator>) {
    work_at(moto.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect(), cluster, options)
}

/// [`work_with_options`] with the AWS environment given.
fn work_at(aws_env: Vec<(String, String)>, cluster: &str, options: Options) -> (Work, Arc<KubeEmulator>) {
    let kube = Arc::new(KubeEmulator::start(Options {
        auth: Auth::EksToken {
            cluster: cluster.into(),
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        },
        ..options
    }));
    let mut w = Work::new();
    point_at(&mut w, aws_env, &kube);
    (w, kube)
}

fn point_at(w: &mut Work, aws_env: Vec<(String, String)>, kube: &KubeEmulator) {
    w.env = aws_env;
    w.env.push(("MATIH_KUBE_API_SERVER".into(), kube.url()));
    w.env.push(("MATIH_ADDONS_DIR".into(), matih_emulators::addons_dir().display().to_string()));
}

/// Names of the emulator's objects of one kind, `namespace/name` or `name`.
fn names(kube: &KubeEmulator, api_version: &str, kind: &str) -> Vec<String> {
    let mut v: Vec<String> = kube
        .list(api_version, kind)
        .iter()
        .map(|o| match o["metadata"]["namespace"].as_str() {
            Some(ns) => format!("{ns}/{}", o["metadata"]["name"].as_str().unwrap()),
            None => o["metadata"]["name"].as_str().unwrap().to_string(),
        })
        .collect();
    v.sort();
    v
}

/// SDK clients pointed at the test's moto, to look at (and tamper with) what it holds.
struct Aws {
    rt: tokio::runtime::Runtime,
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
    eks: aws_sdk_eks::Client,
    r53: aws_sdk_route53::Client,
}

macro_rules! client {
    ($krate:ident, $moto:expr) => {{
        use $krate::config::{BehaviorVersion, Credentials, Region};
        $krate::Client::from_conf(
            $krate::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url($moto.endpoint())
                .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
                .build(),
        )
    }};
}

impl Aws {
    fn new(moto: &Moto) -> Self {
        Aws {
            rt: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            ec2: client!(aws_sdk_ec2, moto),
            iam: client!(aws_sdk_iam, moto),
            eks: client!(aws_sdk_eks, moto),
            r53: client!(aws_sdk_route53, moto),
        }
    }

    fn tag(k: &str, v: &str) -> Filter {
        Filter::builder().name(format!("tag:{k}")).values(v).build()
    }

    /// Everything of the platform in moto, counted by kind.
    fn inventory(&self) -> BTreeMap<&'static str, usize> {
        self.rt.block_on(async {
            let f = || vec![Self::tag("matih:platform", "matih")];
            let mut m = BTreeMap::new();
            m.insert("vpc", self.ec2.describe_vpcs().set_filters(Some(f())).send().await.unwrap().vpcs().len());
            m.insert(
                "subnet",
                self.ec2.describe_subnets().set_filters(Some(f())).send().await.unwrap().subnets().len(),
            );
            m.insert(
                "internet_gateway",
                self.ec2
                    .describe_internet_gateways()
                    .set_filters(Some(f()))
                    .send()
                    .await
                    .unwrap()
                    .internet_gateways()
                    .len(),
            );
            m.insert(
                "eip",
                self.ec2.describe_addresses().set_filters(Some(f())).send().await.unwrap().addresses().len(),
            );
            let nats = self.ec2.describe_nat_gateways().set_filter(Some(f())).send().await.unwrap();
            m.insert(
                "nat_gateway",
                nats.nat_gateways().iter().filter(|n| n.state().is_some_and(|s| s.as_str() != "deleted")).count(),
            );
            m.insert(
                "route_table",
                self.ec2.describe_route_tables().set_filters(Some(f())).send().await.unwrap().route_tables().len(),
            );
            m.insert(
                "security_group",
                self.ec2
                    .describe_security_groups()
                    .set_filters(Some(f()))
                    .send()
                    .await
                    .unwrap()
                    .security_groups()
                    .len(),
            );
            m.insert("iam_role", self.iam.list_roles().path_prefix("/matih/").send().await.unwrap().roles().len());
            m.insert(
                "oidc_provider",
                self.iam.list_open_id_connect_providers().send().await.unwrap().open_id_connect_provider_list().len(),
            );
            m.insert("cluster", self.eks.list_clusters().send().await.unwrap().clusters().len());
            let zones = self.r53.list_hosted_zones().send().await.unwrap();
            m.insert("zone", zones.hosted_zones().iter().filter(|z| z.name() == "matih.ai.").count());
            m
        })
    }

    /// The platform zone's id and every record set it holds, page by page (none if it is gone).
    fn zone_sets(&self) -> Option<(String, Vec<aws_sdk_route53::types::ResourceRecordSet>)> {
        self.rt.block_on(async {
            let zones = self.r53.list_hosted_zones_by_name().dns_name("matih.ai").send().await.unwrap();
            let zone = zones.hosted_zones().iter().find(|z| z.name() == "matih.ai.")?.id().to_string();
            let mut sets = Vec::new();
            let mut next: Option<(String, aws_sdk_route53::types::RrType)> = None;
            loop {
                let mut q = self.r53.list_resource_record_sets().hosted_zone_id(&zone);
                if let Some((name, rtype)) = next.take() {
                    q = q.start_record_name(name).start_record_type(rtype);
                }
                let page = q.send().await.unwrap();
                sets.extend(page.resource_record_sets().iter().cloned());
                if !page.is_truncated() {
                    return Some((zone, sets));
                }
                next = Some((page.next_record_name().unwrap().into(), page.next_record_type().unwrap().clone()));
            }
        })
    }

    /// A and CNAME records of the platform zone: name → sorted values (a CNAME's target without
    /// its trailing dot).
    fn records(&self) -> BTreeMap<String, Vec<String>> {
        let Some((_, sets)) = self.zone_sets() else { return BTreeMap::new() };
        sets.iter()
            .filter(|r| matches!(r.r#type().as_str(), "A" | "CNAME"))
            .map(|r| {
                let mut v: Vec<String> =
                    r.resource_records().iter().map(|x| x.value().trim_end_matches('.').to_string()).collect();
                v.sort();
                (r.name().trim_end_matches('.').to_string(), v)
            })
            .collect()
    }

    /// Sends one change batch to the platform zone.
    fn change_records(&self, changes: Vec<aws_sdk_route53::types::Change>) {
        use aws_sdk_route53::types::ChangeBatch;
        let (zone, _) = self.zone_sets().unwrap();
        self.rt.block_on(async {
            self.r53
                .change_resource_record_sets()
                .hosted_zone_id(zone)
                .change_batch(ChangeBatch::builder().set_changes(Some(changes)).build().unwrap())
                .send()
                .await
                .unwrap();
        });
    }
}

/// What the example platform is in moto, counted by kind (see `Aws::inventory`).
fn expected_inventory() -> BTreeMap<&'static str, usize> {
    [
        ("vpc", 1),
        ("subnet", 6),
        ("internet_gateway", 1),
        ("eip", 9),
        ("nat_gateway", 3),
        ("route_table", 4),
        ("security_group", 1),
        ("iam_role", 3),
        ("oidc_provider", 1),
        ("cluster", 1),
        ("zone", 1),
    ]
    .into()
}

fn delete_change(set: aws_sdk_route53::types::ResourceRecordSet) -> aws_sdk_route53::types::Change {
    use aws_sdk_route53::types::{Change, ChangeAction};
    Change::builder().action(ChangeAction::Delete).resource_record_set(set).build().unwrap()
}

fn calls(plan: &Value, key: &str) -> u64 {
    plan["statistics"]["api_calls"].get(key).and_then(Value::as_u64).unwrap_or(0)
}

#[test]
fn apply_converges_then_destroy_leaves_nothing_tagged() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let (w, kube) = work(&moto);

    // One saved plan covers the cloud and, pending the cluster, the bootstrap.
    let (c, _) = w.json(&args(&["plan", "--out", "plan.json", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let (c, v) = w.json(&args(&["apply", "plan.json", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["outcome"], "complete");
    assert_eq!(v["summary"]["create"], 47, "{:#}", v["summary"]);
    let expected = expected_inventory();
    assert_eq!(aws.inventory(), expected);

    // DNS points at the reserved addresses: api and ingress at the platform's, acme at its own;
    // bigcorp, on the shared controller, is a CNAME to ingress.
    let out = &v["outputs"];
    let ips = |ctrl: &str| {
        let mut v: Vec<String> = out["ingress_addresses"][ctrl]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let records = aws.records();
    assert_eq!(records["api.matih.ai"], ips("platform"));
    assert_eq!(records["ingress.matih.ai"], ips("platform"));
    assert_eq!(records["bigcorp.matih.ai"], ["ingress.matih.ai"]);
    assert_eq!(records["acme.matih.ai"], ips("acme"));
    assert_eq!(out["zone_name_servers"].as_array().unwrap().len(), 4);
    assert!(out["cluster_endpoint"].as_str().unwrap().starts_with("https://"));
    assert!(out["cert_manager_role_arn"].as_str().unwrap().contains(":role/matih/matih-prod-cert-manager"));
    assert_bootstrapped(&w, &kube, out);

    // A kubeconfig for humans: the cluster's endpoint and CA, and `aws eks get-token`, no secret.
    let kc = w.run(&args(&["kubeconfig"]));
    assert_eq!(code(&kc), 0, "{}", text(&kc.stderr));
    let kc = text(&kc.stdout);
    assert!(kc.contains(&format!("server: {}", out["cluster_endpoint"])), "{kc}");
    assert!(kc.contains("command: \"aws\"") && kc.contains("\"get-token\"") && kc.contains("\"matih-prod\""), "{kc}");
    assert!(!kc.contains("k8s-aws-v1"), "no token in a kubeconfig");

    // A second plan: no changes, and refresh read each type with one call, never per resource.
    kube.clear_requests();
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:#?}", changed(&p));
    assert!(kube.requests().iter().all(|r| r.method == "GET"), "a plan writes nothing to the cluster");
    let lists = calls(&p, "kubernetes:list");
    assert!((10..=25).contains(&lists), "one labelled LIST per kind the add-ons use: {:#}", p["statistics"]);
    assert_eq!(calls(&p, "kubernetes:get"), 1, "kube-system's UID, once: {:#}", p["statistics"]);
    assert_eq!(calls(&p, "EC2:DescribeSubnets") + calls(&p, "ec2:DescribeSubnets"), 1, "{:#}", p["statistics"]);
    assert_eq!(calls(&p, "EC2:DescribeAddresses") + calls(&p, "ec2:DescribeAddresses"), 1, "{:#}", p["statistics"]);
    assert_eq!(
        calls(&p, "Route 53:ListResourceRecordSets") + calls(&p, "route53:ListResourceRecordSets"),
        1,
        "{:#}",
        p["statistics"]
    );

    // Protected resources stop a plain destroy.
    let out = w.run(&args(&["destroy", "--auto-approve"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert_eq!(aws.inventory(), expected, "a blocked destroy deletes nothing");

    let (c, v) = w.json(&args(&["destroy", "--include-protected", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert!(aws.inventory().values().all(|&n| n == 0), "{:?}", aws.inventory());
    // In the cluster: everything the tool applied is gone; what EKS made stays.
    let left = names(&kube, "v1", "Namespace");
    assert_eq!(left, ["default", "kube-node-lease", "kube-public", "kube-system"], "{left:?}");
    assert!(kube.list("apiextensions.k8s.io/v1", "CustomResourceDefinition").is_empty());
    assert!(kube.get("apps/v1", "DaemonSet", Some("kube-system"), "aws-node").is_some());
    assert!(
        kube.get("v1", "ConfigMap", Some("kube-system"), "coredns").is_some(),
        "EKS's ConfigMap is not ours to delete"
    );
    assert!(aws.records().is_empty());
    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    assert_eq!(st["resources"], json!([]));
}

/// Everything the bootstrap of the example platform puts in the cluster, checked against the
/// cloud side's outputs.
fn assert_bootstrapped(w: &Work, kube: &KubeEmulator, outputs: &Value) {
    let ns = names(kube, "v1", "Namespace");
    for want in [
        "matih-control-plane",
        "matih-data-plane",
        "matih-frontend",
        "matih-ingress",
        "matih-tenant-acme",
        "matih-tenant-bigcorp",
        "cert-manager",
        "tigera-operator",
    ] {
        assert!(ns.contains(&want.to_string()), "namespace {want} missing: {ns:?}");
    }
    assert!(!ns.contains(&"ingress-nginx".to_string()), "the platform controller lives in matih-ingress: {ns:?}");

    // Every write was a server-side apply by the tool's field manager.
    let writes: Vec<_> = kube.requests().into_iter().filter(|r| r.method != "GET").collect();
    assert!(!writes.is_empty());
    for r in &writes {
        assert_eq!(r.method, "PATCH", "{r:?}");
        assert_eq!(r.field_manager.as_deref(), Some("matih-infra"), "{r:?}");
        assert!(r.content_type.as_deref().unwrap_or("").starts_with("application/apply-patch"), "{r:?}");
    }

    // Calico in policy-only mode on the Amazon VPC CNI, which is left alone.
    let inst = kube.get("operator.tigera.io/v1", "Installation", None, "default").expect("Calico Installation");
    assert_eq!(inst["spec"]["cni"]["type"], "AmazonVPC");
    let aws_node = kube.get("apps/v1", "DaemonSet", Some("kube-system"), "aws-node").expect("aws-node");
    assert!(!aws_node["metadata"]["managedFields"].to_string().contains("matih-infra"), "aws-node is never touched");

    // CoreDNS forwards to the spec's resolvers.
    let cm = kube.get("v1", "ConfigMap", Some("kube-system"), "coredns").unwrap();
    assert!(cm["data"]["Corefile"].as_str().unwrap().contains("forward . 1.1.1.1 8.8.8.8"), "{cm:#}");

    // The platform controller's NLB holds the platform's Elastic IPs; acme's its own.
    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    let eips = |ctrl: &str| {
        let mut v: Vec<String> = st["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["address"].as_str().unwrap().starts_with(&format!("eks.eip.ingress[\"{ctrl}/")))
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v.join(",")
    };
    let annotation = |o: &Value| {
        let mut v: Vec<String> =
            o["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-eip-allocations"]
                .as_str()
                .unwrap_or_else(|| panic!("no EIP allocations: {o:#}"))
                .split(',')
                .map(str::to_string)
                .collect();
        v.sort();
        v.join(",")
    };
    let svc = kube.get("v1", "Service", Some("matih-ingress"), "ingress-nginx-controller").unwrap();
    assert_eq!(annotation(&svc), eips("platform"));
    assert_eq!(svc["spec"]["type"], "LoadBalancer");
    let class = kube.get("networking.k8s.io/v1", "IngressClass", None, "nginx-tenant-acme").unwrap();
    assert_eq!(class["spec"]["controller"], "k8s.io/ingress-nginx-tenant-acme");
    let tsvc = kube.get("v1", "Service", Some("matih-tenant-acme"), "ingress-nginx-tenant-acme-controller").unwrap();
    assert_eq!(annotation(&tsvc), eips("acme"));
    assert!(kube.get("networking.k8s.io/v1", "IngressClass", None, "nginx-tenant-bigcorp").is_none());
    assert!(kube.get("networking.k8s.io/v1", "IngressClass", None, "nginx").is_some());

    // cert-manager assumes the Route 53 role through IRSA; the issuer solves DNS01 in our zone.
    let sa = kube.get("v1", "ServiceAccount", Some("cert-manager"), "cert-manager").unwrap();
    assert_eq!(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"], outputs["cert_manager_role_arn"]);
    let issuer = kube.get("cert-manager.io/v1", "ClusterIssuer", None, "letsencrypt-prod-dns01").unwrap();
    assert_eq!(issuer["spec"]["acme"]["email"], "platform-team@matih.ai");
    assert_eq!(issuer["spec"]["acme"]["solvers"][0]["dns01"]["route53"]["hostedZoneID"], outputs["zone_id"]);
    let crd = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "clusterissuers.cert-manager.io");
    let schema = &crd.unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let errors = matih_kube_emulator::validate_against_schema(schema, &issuer);
    assert!(errors.is_empty(), "the ClusterIssuer against cert-manager's CRD schema: {errors:?}");
    let cert = kube.get("cert-manager.io/v1", "Certificate", Some("matih-ingress"), "matih-wildcard").unwrap();
    assert_eq!(cert["spec"]["dnsNames"], json!(["matih.ai", "*.matih.ai"]));

    // Kafka: only its TLS port is opened.
    let kafka = kube.get("networking.k8s.io/v1", "NetworkPolicy", Some("matih-data-plane"), "kafka-tls-only").unwrap();
    assert!(kafka.to_string().contains("9093") && !kafka.to_string().contains("9092"), "{kafka:#}");
    // 9093 goes to Kafka's namespace alone; the data plane reaches the internet, but not the
    // cluster's own ranges (the spec's VPC and service range) or the instance metadata address.
    let to_kafka =
        kube.get("networking.k8s.io/v1", "NetworkPolicy", Some("matih-tenant-acme"), "allow-to-kafka-tls").unwrap();
    let peer = &to_kafka["spec"]["egress"][0]["to"][0];
    assert_eq!(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "matih-data-plane");
    let internet =
        kube.get("networking.k8s.io/v1", "NetworkPolicy", Some("matih-data-plane"), "allow-to-internet").unwrap();
    assert_eq!(
        internet["spec"]["egress"][0]["to"][0]["ipBlock"],
        json!({"cidr": "0.0.0.0/0", "except": ["10.0.0.0/16", "169.254.169.254/32", "172.20.0.0/16"]})
    );
    assert!(kube.get("networking.k8s.io/v1", "NetworkPolicy", Some("matih-frontend"), "allow-to-internet").is_none());
}

/// Another manager's item in a list the tool writes (an injector's env var in the ingress
/// controller's container) is not drift, and survives the tool's next apply of that object.

#[test]
fn each_service_is_reached_at_its_own_endpoint() {
    // The SDK's per-service endpoints (`AWS_ENDPOINT_URL_EC2`, ..., as for VPC interface
    // endpoints) send each service to its own server, here one moto each for EC2 and Route 53 and
    // one for the rest: every resource is made where its service is, none on another server, and
    // the next plan finds them all there.
    let split = MotoPerService::start(&[&["EC2"], &["ROUTE_53"]]);
    let (w, _kube) = work_at(split.env(), "matih-prod", Options::default());
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["outcome"], "complete");

    let ec2 = ["vpc", "subnet", "internet_gateway", "eip", "nat_gateway", "route_table", "security_group"];
    let on = |server: usize, kind: &str| match server {
        0 => ec2.contains(&kind),
        1 => kind == "zone",
        _ => !ec2.contains(&kind) && kind != "zone",
    };
    for (server, moto) in split.servers().enumerate() {
        let expected: BTreeMap<&str, usize> =
            expected_inventory().into_iter().map(|(k, n)| (k, if on(server, k) { n } else { 0 })).collect();
        assert_eq!(Aws::new(moto).inventory(), expected, "server {server} ({})", moto.endpoint());
    }

    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:#}", p["changes"]);
    for service in ["EC2:", "Route 53:", "EKS:", "IAM:"] {
        let stats = p["statistics"]["api_calls"].as_object().unwrap();
        assert!(stats.keys().any(|k| k.starts_with(service)), "no {service} read in {stats:?}");
    }
}
#[test]
fn another_managers_list_item_is_neither_drift_nor_removed() {
    let moto = Moto::start();
    let (w, kube) = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    let (ns, name) = (Some("matih-ingress"), "ingress-nginx-controller");
    let env = |kube: &KubeEmulator| -> Vec<String> {
        let d = kube.get("apps/v1", "Deployment", ns, name).unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    let ours = env(&kube);
    kube.update_as("vault-injector", "apps/v1", "Deployment", ns, name, |d| {
        let env = d["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut().unwrap();
        env.push(json!({"name": "VAULT_ADDR", "value": "https://vault:8200"}));
    });
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "another manager's item is not drift:\n{}", text(&out.stdout));

    // A field the tool owns changed by hand is drift; repairing it keeps the injector's item.
    kube.update_as("kubectl-edit", "apps/v1", "Deployment", ns, name, |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example.com/ingress-nginx:patched");
    });
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 2, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout)
            .contains("~ Deployment matih-ingress/ingress-nginx-controller  # changed outside matih-infra"),
        "{}",
        text(&out.stdout)
    );
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let d = kube.get("apps/v1", "Deployment", ns, name).unwrap();
    assert_ne!(d["spec"]["template"]["spec"]["containers"][0]["image"], "example.com/ingress-nginx:patched");
    let mut want = ours.clone();
    want.push("VAULT_ADDR".into());
    assert_eq!(env(&kube), want, "the tool's variables and the injector's");
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

#[test]
fn drift_is_reported_and_repaired() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    // A namespace deleted by hand stays Terminating long enough for the plan to see it so.
    let slow = NamespaceTermination(std::time::Duration::from_secs(5));
    let (w, kube) =
        work_with_options(&moto, "matih-prod", Options { namespace_termination: slow, ..Options::default() });
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    // Behind the tool's back: VPC DNS hostnames off, and the api record gone.
    aws.rt.block_on(async {
        let vpc = aws.ec2.describe_vpcs().filters(Aws::tag("matih:address", "eks.vpc.main")).send().await.unwrap();
        let id = vpc.vpcs()[0].vpc_id().unwrap().to_string();
        aws.ec2
            .modify_vpc_attribute()
            .vpc_id(id)
            .enable_dns_hostnames(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(false).build())
            .send()
            .await
            .unwrap();
    });
    let before = aws.records();
    // Route 53 deletes a record set only when given exactly as it is.
    let (_, sets) = aws.zone_sets().unwrap();
    let set = sets.iter().find(|r| r.name() == "api.matih.ai.").unwrap().clone();
    aws.change_records(vec![delete_change(set)]);
    // In the cluster: someone edits the Corefile by hand, and a tenant's namespace is deleted.
    kube.update_as("kubectl-edit", "v1", "ConfigMap", Some("kube-system"), "coredns", |o| {
        o["data"]["Corefile"] = json!(".:53 {\n    forward . 9.9.9.9\n}\n");
    });
    assert!(kube.delete("v1", "Namespace", None, "matih-tenant-bigcorp"));
    // The refresh reads its lists in pages, two objects each, and the store compacts every seven
    // pages: the lists that outlive a compaction are read again whole, and nothing is missed.
    kube.cap_pages(2);
    kube.compact_every_pages(7);
    kube.clear_requests();
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let lists: Vec<_> =
        kube.requests().into_iter().filter(|r| r.method == "GET" && r.query.contains("labelSelector")).collect();
    let paged = lists.iter().filter(|r| r.query.contains("continue=") && r.status == 200).count();
    let expired = lists.iter().filter(|r| r.status == 410).count();
    let whole = lists.iter().filter(|r| !r.query.contains("limit=") && r.status == 200).count();
    assert!(paged > 0 && expired > 0 && whole == expired, "pages {paged}, expired {expired}, whole lists {whole}");
    let drift: Vec<(&str, bool)> = p["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["address"].as_str().unwrap(), d["deleted"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        drift,
        [
            ("dns.record.api", true),
            ("eks.vpc.main", false),
            ("k8s.addon.coredns", false),
            ("k8s.addon.tenant[\"bigcorp\"]", false)
        ]
    );
    // In the cluster, object by object: the Corefile as it was edited, the namespace being deleted.
    let parts = |addr: &str| -> Vec<(String, String, Vec<String>)> {
        let d = p["drift"].as_array().unwrap().iter().find(|d| d["address"] == addr).unwrap();
        d["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let fields = x["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap().to_string());
                (x["action"].as_str().unwrap().into(), x["name"].as_str().unwrap().into(), fields.collect())
            })
            .collect()
    };
    let update = |name: &str, field: &str| vec![("update".to_string(), name.to_string(), vec![field.to_string()])];
    assert_eq!(parts("k8s.addon.coredns"), update("ConfigMap kube-system/coredns", "data.Corefile"));
    assert_eq!(
        parts("k8s.addon.tenant[\"bigcorp\"]"),
        update("Namespace matih-tenant-bigcorp", "metadata.deletionTimestamp")
    );
    let want: Vec<(String, String)> = [
        ("dns.record.api", "create"),
        ("eks.vpc.main", "update"),
        ("k8s.addon.coredns", "update"),
        ("k8s.addon.tenant[\"bigcorp\"]", "update"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(changed(&p), want);
    let out = w.run(&args(&["apply", "--auto-approve", "-q"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(aws.records(), before);
    let cm = kube.get("v1", "ConfigMap", Some("kube-system"), "coredns").unwrap();
    assert!(cm["data"]["Corefile"].as_str().unwrap().contains("forward . 1.1.1.1 8.8.8.8"), "the hand edit is undone");
    // The apply waited for the Terminating namespace to go, then created it again.
    let ns = kube.get("v1", "Namespace", None, "matih-tenant-bigcorp").unwrap();
    assert!(ns["metadata"].get("deletionTimestamp").is_none(), "{ns:#}");
    assert!(kube.get("networking.k8s.io/v1", "NetworkPolicy", Some("matih-tenant-bigcorp"), "default-deny").is_some());
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

/// A zone of more record sets than a page is refreshed by walks that run at once, each from a
/// known record set (the provider's `WALK_SPAN`th, in Route 53's order, by name with its labels
/// reversed): drift anywhere in it is seen, the record set a walk starts from included.
#[test]
fn a_zone_larger_than_a_page_is_listed_by_walks_at_once_and_drift_anywhere_in_it_is_seen() {
    const WALK_SPAN: usize = 290;
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let (w, _kube) = work(&moto);
    for i in 0..330 {
        std::fs::write(w.path(&format!("tenants/t{i:03}.yaml")), format!("slug: t{i:03}\ndisplay_name: T{i}\n"))
            .unwrap();
    }
    let out = w.run(&args(&["apply", "--auto-approve", "-q"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let (_, sets) = aws.zone_sets().unwrap();
    // The tool's record sets (A and CNAME, one per name here) in listing order: all are
    // `<label>.matih.ai`, so by label.
    let mut ours: Vec<_> = sets.iter().filter(|s| matches!(s.r#type().as_str(), "A" | "CNAME")).cloned().collect();
    assert_eq!(ours.len(), 334, "api, ingress, and a record per tenant");
    assert!(sets.len() > 300, "more than a page");
    ours.sort_by(|a, b| a.name().cmp(b.name()));
    let name = |i: usize| ours[i].name().trim_end_matches('.').to_string();

    // A no-op plan: one page from the zone's start up to the second walk's start, one from there.
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{p:#}");
    assert_eq!(calls(&p, "Route 53:ListResourceRecordSets"), 2, "{:#}", p["statistics"]);

    // Behind the tool's back: the second walk's start, a record before it and one after it
    // deleted, one more changed.
    let gone = [10, WALK_SPAN, 300];
    let mut changes: Vec<_> = gone.iter().map(|&i| delete_change(ours[i].clone())).collect();
    let mut edited = ours[100].clone();
    edited.ttl = Some(60);
    changes.push(
        aws_sdk_route53::types::Change::builder()
            .action(aws_sdk_route53::types::ChangeAction::Upsert)
            .resource_record_set(edited)
            .build()
            .unwrap(),
    );
    aws.change_records(changes);
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2, "{p:#}");
    let address = |i: usize| match name(i).as_str() {
        "api.matih.ai" => "dns.record.api".to_string(),
        "ingress.matih.ai" => "dns.record.ingress".to_string(),
        n => format!("dns.record.tenant[\"{}\"]", n.trim_end_matches(".matih.ai")),
    };
    let mut want: Vec<(String, String)> = gone.iter().map(|&i| (address(i), "create".to_string())).collect();
    want.push((address(100), "update".to_string()));
    want.sort();
    let mut got = changed(&p);
    got.sort();
    assert_eq!(got, want);
    // The first walk, not finding the second's start, went on to the zone's end (two pages).
    assert_eq!(calls(&p, "Route 53:ListResourceRecordSets"), 3, "{:#}", p["statistics"]);

    let out = w.run(&args(&["apply", "--auto-approve", "-q"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let records = aws.records();
    for i in gone.into_iter().chain([100]) {
        assert!(records.contains_key(&name(i)), "{} is back", name(i));
    }
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

#[test]
fn a_tenant_added_plans_only_its_addresses_and_record_moves_between_controllers_and_removal_tears_them_down() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let (w, kube) = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    std::fs::write(w.path("tenants/globex.yaml"), "slug: globex\ndisplay_name: Globex\ndedicated_ingress: true\n")
        .unwrap();
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let want: Vec<(String, String)> = [
        (r#"dns.record.tenant["globex"]"#, "create"),
        (r#"eks.eip.ingress["globex/us-east-1a"]"#, "create"),
        (r#"eks.eip.ingress["globex/us-east-1b"]"#, "create"),
        (r#"eks.eip.ingress["globex/us-east-1c"]"#, "create"),
        ("k8s.addon.network_policies", "update"),
        (r#"k8s.addon.tenant["globex"]"#, "create"),
        (r#"k8s.addon.tenant_ingress["globex"]"#, "create"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(changed(&p), want);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    assert_eq!(aws.inventory()["eip"], 12);
    assert_eq!(aws.records()["globex.matih.ai"].len(), 3);

    // Onto the shared controller: its A record becomes a CNAME to ingress, the A set's DELETE and
    // the CNAME's CREATE in one request (Route 53 keeps no CNAME beside another set, and makes a
    // request as a whole: the name never goes unanswered); its addresses go once allowed.
    let eips: Vec<&'static str> = ["a", "b", "c"]
        .iter()
        .map(|az| &*Box::leak(format!(r#"eks.eip.ingress["globex/us-east-1{az}"]"#).into_boxed_str()))
        .collect();
    let allowing = |a: &mut Vec<&'static str>| {
        for e in &eips {
            a.extend(["--allow-replace", e]);
        }
    };
    std::fs::write(w.path("tenants/globex.yaml"), "slug: globex\ndisplay_name: Globex\n").unwrap();
    let (_, p) = w.json(&args(&["plan", "-o", "json"]));
    assert!(changed(&p).contains(&(r#"dns.record.tenant["globex"]"#.to_string(), "update".to_string())), "{p:#}");
    let mut a = args(&["apply", "--auto-approve", "-o", "json"]);
    allowing(&mut a);
    let (c, v) = w.json(&a);
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["api_calls"]["Route 53:ChangeResourceRecordSets"], 1, "{:#}", v["api_calls"]);
    assert_eq!(aws.records()["globex.matih.ai"], ["ingress.matih.ai"]);
    assert_eq!(aws.inventory()["eip"], 9);
    // And back: the CNAME swapped for an A record of its own addresses again, in one request.
    std::fs::write(w.path("tenants/globex.yaml"), "slug: globex\ndisplay_name: Globex\ndedicated_ingress: true\n")
        .unwrap();
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["api_calls"]["Route 53:ChangeResourceRecordSets"], 1, "{:#}", v["api_calls"]);
    assert_eq!(aws.records()["globex.matih.ai"].len(), 3);
    let (c, _) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "nothing left to do after the swaps");
    assert_eq!(aws.inventory()["eip"], 12);

    std::fs::remove_file(w.path("tenants/globex.yaml")).unwrap();
    // Its addresses are protected: removing them is said explicitly.
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 3);
    let mut a = args(&["apply", "--auto-approve", "-q"]);
    allowing(&mut a);
    let out = w.run(&a);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(aws.inventory()["eip"], 9);
    assert!(!aws.records().contains_key("globex.matih.ai"));
    assert!(kube.get("v1", "Namespace", None, "matih-tenant-globex").is_none());
    assert!(kube.get("networking.k8s.io/v1", "IngressClass", None, "nginx-tenant-globex").is_none());
}

/// SIGKILL right after the cloud confirmed the create of `addr` (before the tool recorded it,
/// with other creates in flight): the next apply adopts what exists from the intent journal,
/// creates nothing twice, converges, and leaves a plan with nothing to do.
fn sigkill_after_creating(addr: &str) {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let (w, _kube) = work(&moto);
    let said = sigkill_then_apply(&w, EKS, addr);
    let k8s = addr.starts_with("k8s.") || addr.starts_with("dns.record.");
    // Server-side apply and UPSERTs are idempotent: those are simply applied again.
    assert!(k8s || said.contains(&format!("{addr}: adopted")), "{addr}: {said}");
    assert_eq!(aws.inventory(), expected_inventory(), "{addr}: nothing created twice");
    assert_settled(&w, EKS, addr);
}

/// One SIGKILL test per resource type of the EKS platform.
macro_rules! sigkill_tests {
    ($($name:ident: $addr:expr,)*) => {$(
        #[test]
        fn $name() {
            sigkill_after_creating($addr);
        }
    )*};
}

sigkill_tests! {
    sigkill_after_creating_the_vpc: "eks.vpc.main",
    sigkill_after_creating_a_subnet: r#"eks.subnet.public["us-east-1a"]"#,
    sigkill_after_creating_the_internet_gateway: "eks.internet_gateway.main",
    sigkill_after_creating_a_nat_eip: r#"eks.eip.nat["us-east-1b"]"#,
    sigkill_after_creating_a_nat_gateway: r#"eks.nat_gateway.main["us-east-1b"]"#,
    sigkill_after_creating_a_route_table: r#"eks.route_table.private["us-east-1c"]"#,
    sigkill_after_creating_the_security_group: "eks.security_group.cluster",
    sigkill_after_creating_an_iam_role: "eks.iam_role.node",
    sigkill_after_creating_the_oidc_provider: "eks.oidc_provider.main",
    sigkill_after_creating_the_cluster: "eks.cluster.main",
    sigkill_after_creating_a_node_group: r#"eks.node_group.pool["workloads"]"#,
    sigkill_after_creating_an_ingress_eip: r#"eks.eip.ingress["acme/us-east-1a"]"#,
    sigkill_after_creating_the_zone: "dns.zone.platform",
    sigkill_after_creating_a_record: r#"dns.record.tenant["acme"]"#,
    sigkill_after_applying_an_add_on: "k8s.addon.namespaces",
}

#[test]
fn an_api_error_names_the_resource_and_code_and_state_keeps_earlier_work() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let (w, _kube) = work(&moto);
    // Someone already has a role with the name the cluster role needs.
    aws.rt.block_on(async {
        aws.iam.create_role().role_name("matih-prod-cluster").assume_role_policy_document("{}").send().await.unwrap();
    });
    let out = w.run(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = |a: &str| v["resources"].as_array().unwrap().iter().find(|r| r["address"] == a).cloned().unwrap();
    let failed = by("eks.iam_role.cluster");
    assert_eq!(failed["result"], "failed");
    let msg = failed["error"].as_str().unwrap();
    assert!(
        msg.contains("eks.iam_role.cluster") && msg.contains("EntityAlreadyExists") && msg.contains("CreateRole"),
        "{msg}"
    );
    // Someone else's role is named, not adopted.
    assert!(msg.contains("the name matih-prod-cluster is taken by matih-prod-cluster (no owner tags"), "{msg}");
    assert_eq!(by("eks.cluster.main")["result"], "skipped");
    assert!(text(&out.stderr).contains("everything that finished is recorded in state"));
    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    let recorded: Vec<&str> =
        st["resources"].as_array().unwrap().iter().map(|r| r["address"].as_str().unwrap()).collect();
    assert!(recorded.contains(&"eks.vpc.main") && recorded.contains(&"eks.iam_role.node"), "{recorded:?}");

    // Once the name is free, the next apply finishes the job without redoing anything.
    aws.rt.block_on(async { aws.iam.delete_role().role_name("matih-prod-cluster").send().await.unwrap() });
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert!(v["summary"]["create"].as_u64().unwrap() < 47);
    assert_eq!(aws.inventory()["vpc"], 1);
}

#[test]
fn orphans_are_reported_imported_and_pruned() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let (w, _kube) = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);

    // A duplicate VPC carrying the platform's owner tags for eks.vpc.main (what a lost create
    // answer used to leave), and an Elastic IP that state forgot.
    let dup = aws.rt.block_on(async {
        use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
        let tags = [
            ("matih:platform", "matih"),
            ("matih:environment", "prod"),
            ("matih:address", "eks.vpc.main"),
            ("Name", "matih-prod-vpc"),
        ];
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Vpc)
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
            .build();
        let r = aws.ec2.create_vpc().cidr_block("10.99.0.0/16").tag_specifications(spec).send().await.unwrap();
        r.vpc().unwrap().vpc_id().unwrap().to_string()
    });
    let eip = r#"eks.eip.ingress["acme/us-east-1a"]"#;
    let (_, shown) = w.json(&args(&["state", "show", eip, "-o", "json"]));
    let eip_id = shown["resource"]["id"].as_str().unwrap().to_string();
    assert_eq!(code(&w.run(&args(&["state", "rm", eip]))), 0);

    // The plan reports both, says what to do about each, and its exit code is about changes only.
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2, "the forgotten EIP's address is planned as a create");
    let orphans: Vec<(String, String, String)> = p["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().into(),
                o["address"].as_str().unwrap().into(),
                o["remedy"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut want = vec![
        (dup.clone(), "eks.vpc.main".to_string(), "prune".to_string()),
        (eip_id.clone(), eip.to_string(), "import".to_string()),
    ];
    want.sort();
    let mut got = orphans.clone();
    got.sort();
    assert_eq!(got, want);
    let out = w.run(&args(&["plan"]));
    let said = text(&out.stdout);
    assert!(said.contains("Orphans: 2 resource(s)"), "{said}");
    assert!(said.contains(&format!("matih-infra state import '{eip}' {eip_id}")), "{said}");
    assert!(
        said.contains(&format!("eks.vpc {dup} (tagged eks.vpc.main): delete it: matih-infra destroy --prune-orphans")),
        "{said}"
    );

    // Import the forgotten one: nothing is created for its address.
    let bad = w.run(&args(&["state", "import", "eks.vpc.main", &dup]));
    assert_eq!(code(&bad), 1, "an address state holds is refused: {}", text(&bad.stderr));
    let out = w.run(&args(&["state", "import", eip, &eip_id]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
    assert_eq!(p["orphans"].as_array().unwrap().len(), 1);

    // Prune the duplicate: only it goes.
    let (c, v) = w.json(&args(&["destroy", "--prune-orphans", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["resources"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["resources"][0]["address"], format!("eks.vpc.orphan[\"{dup}\"]"));
    assert_eq!(aws.inventory()["vpc"], 1);
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
    assert_eq!(p["orphans"], json!([]));
}

#[test]
fn a_staging_environment_delegates_its_zone_from_the_parent() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let (w, _kube) = work_with(&moto, "matih-staging", Readiness::Immediate);
    let staging = |a: &[&'static str]| {
        let mut v = args(a);
        v.extend(["-c", "staging/matih.yaml"]);
        v
    };
    // Without the parent environment's zone there is nothing to delegate from.
    let out = w.run(&staging(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d =
        v["resources"].as_array().unwrap().iter().find(|r| r["address"] == "dns.delegation.parent").unwrap().clone();
    assert!(d["error"].as_str().unwrap().contains("create the parent environment's zone first"), "{d:#}");

    // The prod environment (another state) owns matih.ai.
    let parent = aws.rt.block_on(async {
        let z =
            aws.r53.create_hosted_zone().name("matih.ai").caller_reference("prod-environment").send().await.unwrap();
        z.hosted_zone().unwrap().id().to_string()
    });
    let (c, v) = w.json(&staging(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let mut servers: Vec<String> =
        v["outputs"]["zone_name_servers"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    servers.sort();
    let ns = |parent: &str| {
        aws.rt.block_on(async {
            let sets = aws.r53.list_resource_record_sets().hosted_zone_id(parent).send().await.unwrap();
            let mut v: Vec<String> = sets
                .resource_record_sets()
                .iter()
                .filter(|r| r.name() == "staging.matih.ai." && r.r#type().as_str() == "NS")
                .flat_map(|r| r.resource_records().iter().map(|x| x.value().trim_end_matches('.').to_string()))
                .collect();
            v.sort();
            v
        })
    };
    assert_eq!(ns(&parent), servers, "the parent zone delegates staging.matih.ai to the staging zone's name servers");
    let out = w.run(&staging(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));

    assert_eq!(code(&w.run(&staging(&["destroy", "--include-protected", "--auto-approve", "-q"]))), 0);
    assert!(ns(&parent).is_empty(), "the delegation went with the environment");
    let zones = aws.rt.block_on(async { aws.r53.list_hosted_zones().send().await.unwrap() });
    let names: Vec<&str> = zones.hosted_zones().iter().map(|z| z.name()).collect();
    assert_eq!(names, ["matih.ai."], "the parent zone is not ours to delete");
}

#[test]
fn tenant_onboarding_is_one_command_and_two_at_once_wait_for_each_other() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let (w, kube) = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);

    // Two onboarding scripts at once: the second waits for the first's lock, then applies.
    let spawn = |extra: &[&'static str]| {
        let mut a = args(&["tenant", "add", "--apply", "--lock-timeout", "300s", "-o", "json"]);
        a.extend(extra);
        w.cmd(&a).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let first = spawn(&["globex", "--dedicated-ingress", "--name", "Globex Corp"]);
    let second = spawn(&["initech"]);
    let (first, second) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    for o in [&first, &second] {
        assert_eq!(code(o), 0, "{}\n{}", text(&o.stdout), text(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["outcome"], "complete", "{v:#}");
    }
    let waited = text(&first.stderr) + &text(&second.stderr);
    assert!(waited.contains("waiting up to 5m for the state lock"), "{waited}");
    let g: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(g["tenant"]["ingress_class"], "nginx-tenant-globex");
    assert_eq!(g["tenant"]["hostname"], "globex.matih.ai");
    let touched: Vec<&str> =
        g["resources"].as_array().unwrap().iter().map(|r| r["address"].as_str().unwrap()).collect();
    assert!(touched.iter().all(|a| a.contains("globex") || *a == "k8s.addon.network_policies"), "{touched:?}");
    assert!(kube.get("v1", "Namespace", None, "matih-tenant-globex").is_some());
    assert!(kube.get("v1", "Namespace", None, "matih-tenant-initech").is_some());
    assert!(kube.get("networking.k8s.io/v1", "IngressClass", None, "nginx-tenant-globex").is_some());
    assert_eq!(aws.inventory()["eip"], 12, "only the dedicated tenant reserves addresses");
    let records = aws.records();
    assert_eq!(records["globex.matih.ai"].len(), 3);
    assert_eq!(records["initech.matih.ai"], ["ingress.matih.ai"], "a shared tenant answers on the platform's");

    // Idempotent: the same add again changes nothing; different settings are refused.
    let (c, v) = w.json(&args(&["tenant", "add", "globex", "--dedicated-ingress", "--apply", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!((v["summary"]["create"].as_u64(), v["summary"]["update"].as_u64()), (Some(0), Some(0)), "{v:#}");
    let out = w.run(&args(&["tenant", "add", "globex", "--apply"]));
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("tenant globex already exists"), "{}", text(&out.stderr));
    let (_, l) = w.json(&args(&["tenant", "list", "-o", "json"]));
    let slugs: Vec<&str> = l["tenants"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["acme", "bigcorp", "globex", "initech"]);

    // Removing the two shared tenants also prunes the platform ingress's policy towards them.
    assert!(kube.get("networking.k8s.io/v1", "NetworkPolicy", Some("matih-ingress"), "allow-to-tenants").is_some());
    for slug in ["initech", "bigcorp"] {
        let out = w.run(&args(&["tenant", "remove", slug, "--apply", "-q"]));
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert!(kube.get("v1", "Namespace", None, &format!("matih-tenant-{slug}")).is_none());
        assert!(!aws.records().contains_key(&format!("{slug}.matih.ai")));
    }
    assert!(
        kube.get("networking.k8s.io/v1", "NetworkPolicy", Some("matih-ingress"), "allow-to-tenants").is_none(),
        "pruned: no tenant is served by the platform ingress any more"
    );
    // A dedicated tenant's protected addresses go with it: the command names the tenant.
    let out = w.run(&args(&["tenant", "remove", "globex", "--apply", "-q"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(aws.inventory()["eip"], 9);
    assert!(kube.get("networking.k8s.io/v1", "IngressClass", None, "nginx-tenant-globex").is_none());
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

/// A namespace deletion goes through `Terminating`; one held by a finalizer (a volume claim whose
/// protection controller has not let go) fails the removal at its deadline, naming what holds
/// it, and keeps the tenant in state until a later apply finishes the job.
#[test]
fn a_namespace_held_by_a_finalizer_fails_the_removal_naming_what_holds_it() {
    let moto = Moto::start();
    let (w, kube) = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    let ns = "matih-tenant-bigcorp";
    kube.create_as(
        "kube-controller-manager",
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": ns, "finalizers": ["kubernetes.io/pvc-protection"]},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }),
    );

    let out = w.run_env(
        &args(&["tenant", "remove", "bigcorp", "--apply", "-o", "json"]),
        &[("MATIH_ADDON_WAIT_TIMEOUT", "4s")],
    );
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tenant = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == r#"k8s.addon.tenant["bigcorp"]"#)
        .unwrap_or_else(|| panic!("{v:#}"));
    let msg = tenant["error"].as_str().unwrap();
    assert!(msg.contains(&format!("Namespace {ns} to be deleted")), "{msg}");
    assert!(msg.contains("Some resources are remaining: persistentvolumeclaims. has 1 resource instances"), "{msg}");
    assert!(msg.contains("finalizers remaining: kubernetes.io/pvc-protection in 1 resource instances"), "{msg}");
    assert_eq!(kube.get("v1", "Namespace", None, ns).unwrap()["status"]["phase"], "Terminating");
    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    let recorded: Vec<&str> =
        st["resources"].as_array().unwrap().iter().filter_map(|r| r["address"].as_str()).collect();
    assert!(recorded.contains(&r#"k8s.addon.tenant["bigcorp"]"#), "the tenant stays recorded: {recorded:?}");

    // The claim's controller lets go: the next apply finishes the removal.
    kube.update_as("kube-controller-manager", "v1", "PersistentVolumeClaim", Some(ns), "data", |o| {
        o["metadata"]["finalizers"] = json!([]);
    });
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert!(kube.get("v1", "Namespace", None, ns).is_none());
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

#[test]
fn a_replaced_or_vanished_cluster_is_bootstrapped_again_from_scratch() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let (mut w, old) = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    // A spec change that replaces the cluster plans every add-on instance replaced with it.
    w.edit("matih.yaml", "service_cidr: 172.20.0.0/16", "service_cidr: 172.21.0.0/16");
    w.edit("matih.yaml", "cluster_dns_ip: 172.20.0.10", "cluster_dns_ip: 172.21.0.10");
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--allow-replace", "eks.cluster.main"]));
    assert_eq!(c, 0, "{p:#}");
    let replaced: Vec<String> = changed(&p).into_iter().filter(|(_, a)| a == "replace").map(|(addr, _)| addr).collect();
    assert!(replaced.contains(&"eks.cluster.main".to_string()), "{replaced:?}");
    assert_eq!(replaced.iter().filter(|a| a.starts_with("k8s.addon.")).count(), 10, "{replaced:?}");
    w.edit("matih.yaml", "service_cidr: 172.21.0.0/16", "service_cidr: 172.20.0.0/16");
    w.edit("matih.yaml", "cluster_dns_ip: 172.21.0.10", "cluster_dns_ip: 172.20.0.10");
    // The cluster disappears behind the tool's back; the next one is a new, empty cluster.
    aws.rt.block_on(async {
        let groups = aws.eks.list_nodegroups().cluster_name("matih-prod").send().await.unwrap();
        for g in groups.nodegroups() {
            aws.eks.delete_nodegroup().cluster_name("matih-prod").nodegroup_name(g).send().await.unwrap();
        }
        aws.eks.delete_cluster().name("matih-prod").send().await.unwrap();
    });
    let new = KubeEmulator::start(Options {
        auth: Auth::EksToken {
            cluster: "matih-prod".into(),
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        },
        ..Options::default()
    });
    assert_ne!(new.kube_system_uid(), old.kube_system_uid());
    point_at(&mut w, moto.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect(), &new);
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let creates: Vec<String> = changed(&p).into_iter().filter(|(_, a)| a == "create").map(|(addr, _)| addr).collect();
    assert!(creates.contains(&"eks.cluster.main".to_string()), "{creates:?}");
    let addons = creates.iter().filter(|a| a.starts_with("k8s.addon.")).count();
    assert_eq!(addons, 10, "every add-on instance is planned again: {creates:?}");
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert!(new.get("v1", "Namespace", None, "matih-ingress").is_some());
    assert!(new.get("cert-manager.io/v1", "ClusterIssuer", None, "letsencrypt-prod-dns01").is_some());
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

/// Whether the emulator has refused a write of `plural` with a 500 (a webhook not serving).
fn refused_with_500(kube: &KubeEmulator, plural: &str) -> bool {
    kube.requests().iter().any(|r| r.method == "PATCH" && r.path.contains(plural) && r.status == 500)
}

#[test]
fn the_issuer_waits_for_cert_managers_webhook_to_serve() {
    let moto = Moto::start();
    let (w, kube) =
        work_with_options(&moto, "matih-prod", Options { webhooks: WebhookBackends::Down, ..Options::default() });
    let mut child =
        w.cmd(&args(&["apply", "--auto-approve"])).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // cert-manager's Deployments are Available, its webhook is not serving: the ClusterIssuer is
    // refused with the API server's 500 until the webhook's backend is up.
    let start = std::time::Instant::now();
    while !refused_with_500(&kube, "clusterissuers") {
        assert!(child.try_wait().unwrap().is_none(), "apply ended before the issuer was refused");
        assert!(start.elapsed() < std::time::Duration::from_secs(120), "the issuer was never sent");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    kube.set_webhook_backend("cert-manager", "cert-manager-webhook", true);
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
    assert!(child.wait().unwrap().success(), "{said}");
    assert!(
        said.contains("waiting for the API server to accept ClusterIssuer/letsencrypt-prod-dns01")
            && said.contains(r#"failed calling webhook "webhook.cert-manager.io""#),
        "the wait says what it waits for: {said}"
    );
    assert!(kube.get("cert-manager.io/v1", "ClusterIssuer", None, "letsencrypt-prod-dns01").is_some());
    assert_eq!(code(&w.run(&args(&["plan", "--detailed-exitcode"]))), 0);
}

#[test]
fn a_webhook_that_never_serves_fails_the_issuer_at_its_deadline_naming_it() {
    let moto = Moto::start();
    let (w, kube) =
        work_with_options(&moto, "matih-prod", Options { webhooks: WebhookBackends::Down, ..Options::default() });
    let out = w.run_env(&args(&["apply", "--auto-approve", "-o", "json"]), &[("MATIH_ADDON_WAIT_TIMEOUT", "4s")]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let issuer =
        v["resources"].as_array().unwrap().iter().find(|r| r["address"] == "k8s.addon.cluster_issuer").unwrap();
    let msg = issuer["error"].as_str().unwrap();
    assert!(
        msg.contains("timed out") && msg.contains("the API server to accept ClusterIssuer/letsencrypt-prod-dns01"),
        "{msg}"
    );
    assert!(msg.contains(r#"failed calling webhook "webhook.cert-manager.io""#), "names the webhook: {msg}");
    assert!(refused_with_500(&kube, "clusterissuers"));
    assert!(kube.get("cert-manager.io/v1", "ClusterIssuer", None, "letsencrypt-prod-dns01").is_none());

    // A webhook that answers and refuses is final at once, with its message.
    kube.set_webhook_backend("cert-manager", "cert-manager-webhook", true);
    kube.refuse_admission("webhook.cert-manager.io", Some("spec.acme.email: Invalid value: not allowed here"));
    let out = w.run_env(&args(&["apply", "--auto-approve", "-o", "json"]), &[("MATIH_ADDON_WAIT_TIMEOUT", "60s")]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let issuer =
        v["resources"].as_array().unwrap().iter().find(|r| r["address"] == "k8s.addon.cluster_issuer").unwrap();
    let msg = issuer["error"].as_str().unwrap();
    assert!(!msg.contains("timed out"), "a refusal is not waited on: {msg}");
    assert!(
        msg.contains(r#"admission webhook "webhook.cert-manager.io" denied the request: spec.acme.email"#),
        "{msg}"
    );
}

#[test]
fn a_workload_that_never_becomes_ready_fails_with_its_last_conditions() {
    let moto = Moto::start();
    let (w, kube) = work_with(&moto, "matih-prod", Readiness::Manual);
    let out = w.run_env(&args(&["apply", "--auto-approve", "-o", "json"]), &[("MATIH_ADDON_WAIT_TIMEOUT", "2s")]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = |a: &str| v["resources"].as_array().unwrap().iter().find(|r| r["address"] == a).cloned().unwrap();
    let failed = by("k8s.addon.cert_manager");
    assert_eq!(failed["result"], "failed");
    let msg = failed["error"].as_str().unwrap();
    assert!(msg.contains("timed out") && msg.contains("Deployment cert-manager/"), "{msg}");
    assert!(msg.contains("Available=False (MinimumReplicasUnavailable)"), "{msg}");
    assert_eq!(by("k8s.addon.cluster_issuer")["result"], "skipped", "the issuer waits for cert-manager's webhook");
    assert!(kube.get("cert-manager.io/v1", "ClusterIssuer", None, "letsencrypt-prod-dns01").is_none());
    assert_eq!(by("k8s.addon.namespaces")["result"], "done");

    // Once the workloads come up, the next apply finishes the bootstrap.
    for d in kube.list("apps/v1", "Deployment") {
        let (ns, name) = (d["metadata"]["namespace"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap());
        kube.set_ready(("apps/v1", "Deployment"), ns, name, true);
    }
    for d in kube.list("apps/v1", "DaemonSet") {
        let (ns, name) = (d["metadata"]["namespace"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap());
        kube.set_ready(("apps/v1", "DaemonSet"), ns, name, true);
    }
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert!(kube.get("cert-manager.io/v1", "ClusterIssuer", None, "letsencrypt-prod-dns01").is_some());
}
