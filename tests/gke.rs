//! `--cloud gke` end to end: the binary against the project's Google Cloud emulator
//! (`tests/gcp-emulator`, started per test on 127.0.0.1) through the official google-cloud-rust
//! clients, and the cluster bootstrap against the Kubernetes API emulator seeded as GKE seeds a
//! cluster, authenticated with the access token the tool would get from Application Default
//! Credentials (`MATIH_GCP_TOKEN` with an emulator). What both emulators hold is checked by
//! listing them.
#![cfg(feature = "gcp")]

use std::collections::BTreeMap;
use std::sync::Arc;

use matih_fault_proxy::{Fault, FaultProxy, Rule};
use matih_gcp_emulator::{GcpEmulator, Options as GcpOptions, Throttle};
use matih_kube_emulator::{Auth, Flavor, KubeEmulator, Options};
use serde_json::{Value, json};

mod common;
use common::*;

const GKE: &[&str] = &["--cloud", "gke"];
const TOKEN: &str = "gke-access-token";
const PROJECT: &str = "projects/matih-prod";
const REGION: &str = "projects/matih-prod/regions/us-central1";
const CLUSTER: &str = "projects/matih-prod/locations/us-central1/clusters/matih-prod";
const SA: &str = "projects/matih-prod/serviceAccounts/matih-prod-dns01@matih-prod.iam.gserviceaccount.com";

fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
    a.iter().copied().chain(GKE.iter().copied()).collect()
}

fn gcp() -> GcpEmulator {
    gcp_with(GcpOptions::default())
}

fn gcp_with(options: GcpOptions) -> GcpEmulator {
    GcpEmulator::start(options)
}

/// A work directory whose commands use `url` for every Google API and a fresh GKE-seeded
/// Kubernetes API emulator that accepts only the access token.
fn work(url: &str) -> (Work, Arc<KubeEmulator>) {
    let kube = Arc::new(KubeEmulator::start(Options {
        auth: Auth::Bearer(TOKEN.into()),
        flavor: Flavor::Gke,
        ..Options::default()
    }));
    let mut w = Work::new();
    w.env = vec![
        ("MATIH_GCP_ENDPOINT".into(), url.to_string()),
        ("MATIH_GCP_TOKEN".into(), TOKEN.into()),
        ("MATIH_KUBE_API_SERVER".into(), kube.url()),
        ("MATIH_ADDONS_DIR".into(), matih_emulators::addons_dir().display().to_string()),
    ];
    (w, kube)
}

/// The platform in the emulator, counted by kind.
fn inventory(gcp: &GcpEmulator) -> BTreeMap<&'static str, usize> {
    [
        ("compute.networks", "network"),
        ("compute.subnetworks", "subnet"),
        ("compute.firewalls", "firewall"),
        ("compute.routers", "router"),
        ("compute.addresses", "address"),
        ("container.clusters", "cluster"),
        ("container.nodePools", "node_pool"),
        ("iam.serviceAccounts", "service_account"),
        ("dns.managedZones", "zone"),
    ]
    .into_iter()
    .map(|(k, n)| (n, gcp.resources(k).len()))
    .chain([("record", records(gcp).len())])
    .collect()
}

/// The example platform: one subnet, three firewall rules, one NAT router, addresses for the
/// platform and acme's dedicated controller, two pools (the first in the cluster), A records
/// for api, ingress and acme, and bigcorp's CNAME.
fn expected_inventory() -> BTreeMap<&'static str, usize> {
    [
        ("network", 1),
        ("subnet", 1),
        ("firewall", 3),
        ("router", 1),
        ("address", 2),
        ("cluster", 1),
        ("node_pool", 2),
        ("service_account", 1),
        ("zone", 1),
        ("record", 4),
    ]
    .into()
}

/// A record sets: name → sorted data.
/// A and CNAME record sets: name → sorted data.
fn records(gcp: &GcpEmulator) -> BTreeMap<String, Vec<String>> {
    gcp.resources("dns.rrsets")
        .iter()
        .filter(|r| r["type"] == "A" || r["type"] == "CNAME")
        .map(|r| {
            let mut v: Vec<String> =
                r["rrdatas"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            v.sort();
            (r["name"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

fn address(gcp: &GcpEmulator, ctrl: &str) -> String {
    gcp.get(&format!("{REGION}/addresses/matih-prod-ingress-{ctrl}")).unwrap()["address"].as_str().unwrap().to_string()
}

/// A zone someone made before the platform: the tool adopts it and never deletes it.
fn existing_zone(gcp: &GcpEmulator) {
    let zone = format!("{PROJECT}/managedZones/matih-ai-legacy");
    let ns = json!(["ns-cloud-a1.googledomains.com.", "ns-cloud-a2.googledomains.com."]);
    gcp.put_raw(
        &zone,
        json!({"name": "matih-ai-legacy", "id": "4242", "dnsName": "matih.ai.", "description": "made by hand",
               "visibility": "public", "labels": {"team": "platform"}, "nameServers": ns}),
    );
    // What Cloud DNS puts in every zone.
    gcp.put_raw(
        &format!("{zone}/rrsets/matih.ai./SOA"),
        json!({"name": "matih.ai.", "type": "SOA", "ttl": 21600,
               "rrdatas": ["ns-cloud-a1.googledomains.com. cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300"]}),
    );
    gcp.put_raw(
        &format!("{zone}/rrsets/matih.ai./NS"),
        json!({"name": "matih.ai.", "type": "NS", "ttl": 21600, "rrdatas": ns}),
    );
}

#[test]
fn apply_converges_then_destroy_leaves_only_the_adopted_zone() {
    let gcp = gcp();
    existing_zone(&gcp);
    let (w, kube) = work(&gcp.url());

    let (c, _) = w.json(&args(&["plan", "--out", "plan.json", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let (c, v) = w.json(&args(&["apply", "plan.json", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["outcome"], "complete", "{v:#}");
    assert_eq!(inventory(&gcp), expected_inventory());

    // The zone was adopted: our labels joined the team's.
    let zone = gcp.get(&format!("{PROJECT}/managedZones/matih-ai-legacy")).unwrap();
    assert_eq!(zone["labels"]["team"], "platform");
    assert_eq!(zone["labels"]["matih-adopted"], "true");
    assert_eq!(zone["labels"]["matih-platform"], "matih");

    // VPC-native with the subnet's named ranges, Calico, private nodes, workload identity.
    let subnet = gcp.get(&format!("{REGION}/subnetworks/matih-prod-nodes")).unwrap();
    let ranges: BTreeMap<String, String> = subnet["secondaryIpRanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rangeName"].as_str().unwrap().to_string(), r["ipCidrRange"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        ranges,
        BTreeMap::from([("pods".into(), "10.16.0.0/14".into()), ("services".into(), "10.20.0.0/20".into())])
    );
    let cluster = gcp.get(CLUSTER).unwrap();
    assert_eq!(cluster["ipAllocationPolicy"]["useIpAliases"], true);
    assert_eq!(cluster["ipAllocationPolicy"]["clusterSecondaryRangeName"], "pods");
    assert_eq!(cluster["ipAllocationPolicy"]["servicesSecondaryRangeName"], "services");
    assert_eq!(cluster["networkPolicy"]["enabled"], true);
    assert_eq!(cluster["privateClusterConfig"]["enablePrivateNodes"], true);
    assert_eq!(cluster["workloadIdentityConfig"]["workloadPool"], "matih-prod.svc.id.goog");
    let router = gcp.get(&format!("{REGION}/routers/matih-prod-router")).unwrap();
    assert_eq!(router["nats"][0]["sourceSubnetworkIpRangesToNat"], "ALL_SUBNETWORKS_ALL_IP_RANGES");

    // DNS points at the static IPs: api and ingress at the platform's, acme at its own; bigcorp,
    // on the shared controller, is a CNAME to ingress.
    let recs = records(&gcp);
    assert_eq!(recs["api.matih.ai."], vec![address(&gcp, "platform")]);
    assert_eq!(recs["ingress.matih.ai."], vec![address(&gcp, "platform")]);
    assert_eq!(recs["bigcorp.matih.ai."], ["ingress.matih.ai."]);
    assert_eq!(recs["acme.matih.ai."], vec![address(&gcp, "acme")]);
    assert_eq!(v["outputs"]["ingress_addresses"]["acme"], json!([address(&gcp, "acme")]));

    // DNS01: the service account may change the zone only, and cert-manager's Kubernetes
    // service account acts as it.
    let email = "matih-prod-dns01@matih-prod.iam.gserviceaccount.com";
    let zone_policy = gcp.iam_policy(&format!("{PROJECT}/managedZones/matih-ai-legacy")).unwrap();
    assert!(zone_policy.to_string().contains(&format!("serviceAccount:{email}")), "{zone_policy:#}");
    assert!(zone_policy.to_string().contains("roles/dns.admin"));
    let sa_policy = gcp.iam_policy(SA).unwrap();
    assert!(
        sa_policy.to_string().contains("serviceAccount:matih-prod.svc.id.goog[cert-manager/cert-manager]"),
        "{sa_policy:#}"
    );
    assert!(sa_policy.to_string().contains("roles/iam.workloadIdentityUser"));

    // In the cluster: the ingress Service on its static IP, cert-manager on workload identity,
    // the cloudDNS solver, kube-dns with the spec's upstream servers.
    let svc = kube.get("v1", "Service", Some("matih-ingress"), "ingress-nginx-controller").expect("ingress Service");
    assert_eq!(svc["spec"]["loadBalancerIP"], address(&gcp, "platform"));
    let sa = kube.get("v1", "ServiceAccount", Some("cert-manager"), "cert-manager").expect("cert-manager SA");
    assert_eq!(sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"], email);
    let issuer = kube.get("cert-manager.io/v1", "ClusterIssuer", None, "letsencrypt-prod-dns01").expect("issuer");
    let cloud_dns = &issuer["spec"]["acme"]["solvers"][0]["dns01"]["cloudDNS"];
    assert_eq!(cloud_dns["project"], "matih-prod");
    // The zone is named: the service account may not list the project's zones.
    assert_eq!(cloud_dns["hostedZoneName"], "matih-ai-legacy");
    let dns = kube.get("v1", "ConfigMap", Some("kube-system"), "kube-dns").unwrap();
    assert_eq!(dns["data"]["upstreamNameservers"], r#"["1.1.1.1","8.8.8.8"]"#);

    // Nothing left to do.
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));

    let out = w.run(&args(&["destroy", "--include-protected", "--auto-approve"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let left: BTreeMap<&str, usize> = inventory(&gcp).into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(left, BTreeMap::from([("zone", 1)]), "only the adopted zone stays");
    let zone = gcp.get(&format!("{PROJECT}/managedZones/matih-ai-legacy")).unwrap();
    assert_eq!(zone["labels"], json!({"team": "platform"}), "our labels are gone");
}

#[test]
fn answers_lost_as_500s_on_every_write_create_nothing_twice() {
    lost_answers_on_every_write_create_nothing_twice(Fault::ForwardThen500);
}

#[test]
fn answers_lost_as_resets_on_every_write_create_nothing_twice() {
    lost_answers_on_every_write_create_nothing_twice(Fault::ForwardThenReset);
}

fn lost_answers_on_every_write_create_nothing_twice(fault: Fault) {
    // Operations take a moment and new service accounts replicate for a second, as on Google.
    let gcp = gcp_with(GcpOptions {
        operation_delay: std::time::Duration::from_millis(300),
        principal_lag: std::time::Duration::from_secs(1),
        ..GcpOptions::default()
    });
    let upstream: std::net::SocketAddr = gcp.url().trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(matih_fault_proxy::gcp::options(
        upstream,
        vec![Rule::FirstOfEachAction { n: 1, mutating_only: true, fault }],
    ));
    let (w, _kube) = work(&proxy.url());
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["outcome"], "complete");
    assert!(!proxy.injected().is_empty());
    assert_eq!(inventory(&gcp), expected_inventory());
    proxy.set_rules(vec![]);
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
    assert!(p["orphans"].as_array().is_none_or(|o| o.is_empty()), "{:#}", p["orphans"]);
}

#[test]
fn throttling_is_waited_out() {
    let gcp = gcp();
    let (w, _kube) = work(&gcp.url());
    gcp.throttle_next(3, Throttle::TooManyRequests);
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    gcp.throttle_next(3, Throttle::RateLimitExceeded);
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
    let retries = |v: &Value| -> u64 {
        v["statistics"]["retries"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    };
    assert!(retries(&v) >= 3, "{:#}", v["statistics"]);
    assert!(retries(&p) >= 3, "{:#}", p["statistics"]);
    assert_eq!(inventory(&gcp), expected_inventory());
}

#[test]
fn an_api_error_names_the_address_operation_status_and_message() {
    let gcp = gcp();
    let (w, _kube) = work(&gcp.url());
    gcp.fail_next("POST", "compute.networks", 400, "INVALID_ARGUMENT", "the network name is reserved");
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_ne!(c, 0);
    let text = v.to_string();
    for want in ["gke.network.main", "networks.insert", "the network name is reserved"] {
        assert!(text.contains(want), "no {want:?} in {v:#}");
    }
    // What was created before the failure is recorded, and the next apply finishes the job.
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(inventory(&gcp), expected_inventory());
}

#[test]
fn drift_is_reported_and_repaired() {
    let gcp = gcp();
    let (w, _kube) = work(&gcp.url());
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    // Someone opens SSH to the world on the internal rule and scales a pool by hand.
    let fw = format!("{PROJECT}/global/firewalls/matih-prod-allow-internal");
    gcp.patch_raw(&fw, |f| f["sourceRanges"] = json!(["0.0.0.0/0"]));
    let pool = format!("{CLUSTER}/nodePools/workloads");
    gcp.patch_raw(&pool, |p| p["autoscaling"]["totalMaxNodeCount"] = json!(3));
    let system = format!("{CLUSTER}/nodePools/system");
    gcp.patch_raw(&system, |p| p["autoscaling"]["totalMaxNodeCount"] = json!(9));
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let mut ch = changed(&p);
    ch.sort();
    assert_eq!(
        ch,
        vec![
            ("gke.cluster.main".to_string(), "update".to_string()),
            ("gke.firewall.internal".to_string(), "update".to_string()),
            (r#"gke.node_pool.pool["workloads"]"#.to_string(), "update".to_string()),
        ]
    );
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(gcp.get(&fw).unwrap()["sourceRanges"], json!(["10.10.0.0/20", "10.16.0.0/14"]));
    assert_eq!(gcp.get(&pool).unwrap()["autoscaling"]["totalMaxNodeCount"], 10);
    assert_eq!(gcp.get(&system).unwrap()["autoscaling"]["totalMaxNodeCount"], 3);
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
}

#[test]
fn a_dedicated_tenant_gets_its_address_and_record_and_removal_takes_them_away() {
    let gcp = gcp();
    let (w, kube) = work(&gcp.url());
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    std::fs::write(w.path("tenants/globex.yaml"), "slug: globex\ndisplay_name: Globex\ndedicated_ingress: true\n")
        .unwrap();
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let want: Vec<(String, String)> = [
        (r#"dns.record.tenant["globex"]"#, "create"),
        (r#"gke.address.ingress["globex"]"#, "create"),
        ("k8s.addon.network_policies", "update"),
        (r#"k8s.addon.tenant["globex"]"#, "create"),
        (r#"k8s.addon.tenant_ingress["globex"]"#, "create"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(changed(&p), want);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    assert_eq!(inventory(&gcp)["address"], 3);
    assert_eq!(records(&gcp)["globex.matih.ai."], vec![address(&gcp, "globex")]);
    let svc = kube
        .list("v1", "Service")
        .into_iter()
        .find(|s| s["metadata"]["namespace"] == "matih-tenant-globex" && s["spec"]["type"] == "LoadBalancer")
        .expect("globex's controller Service");
    assert_eq!(svc["spec"]["loadBalancerIP"], address(&gcp, "globex"));

    // Onto the shared controller and back: the record changes type in place, the old set's
    // deletion and the new set's addition in one change, which Cloud DNS makes as a whole.
    for dedicated in [false, true] {
        let yaml = format!("slug: globex\ndisplay_name: Globex\ndedicated_ingress: {dedicated}\n");
        std::fs::write(w.path("tenants/globex.yaml"), yaml).unwrap();
        let (_, p) = w.json(&args(&["plan", "-o", "json"]));
        let record = (r#"dns.record.tenant["globex"]"#.to_string(), "update".to_string());
        assert!(changed(&p).contains(&record), "{:?}", changed(&p));
        let allow = r#"gke.address.ingress["globex"]"#;
        let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json", "--allow-replace", allow]));
        assert_eq!(c, 0, "{v:#}");
        assert_eq!(v["api_calls"]["dns:changes.create"], 1, "{:#}", v["api_calls"]);
        let want = if dedicated { vec![address(&gcp, "globex")] } else { vec!["ingress.matih.ai.".to_string()] };
        assert_eq!(records(&gcp)["globex.matih.ai."], want);
    }
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));

    std::fs::remove_file(w.path("tenants/globex.yaml")).unwrap();
    // Its address is protected: removing it is said explicitly.
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 3);
    let out = w.run(&args(&["apply", "--auto-approve", "-q", "--allow-replace", r#"gke.address.ingress["globex"]"#]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(inventory(&gcp)["address"], 2);
    assert!(!records(&gcp).contains_key("globex.matih.ai."));
    assert!(kube.get("v1", "Namespace", None, "matih-tenant-globex").is_none());
}

#[test]
fn dataplane_v2_replaces_calico_on_request() {
    let gcp = gcp();
    let (w, _kube) = work(&gcp.url());
    w.edit(
        "matih.yaml",
        "    node_pools:\n      - { name: system, machine_type: e2-standard-4",
        "    dataplane: dataplane-v2\n    node_pools:\n      - { name: system, machine_type: e2-standard-4",
    );
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let cluster = gcp.get(CLUSTER).unwrap();
    assert_eq!(cluster["networkConfig"]["datapathProvider"], "ADVANCED_DATAPATH");
    assert!(cluster["networkPolicy"]["enabled"] != true, "{:#}", cluster["networkPolicy"]);
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
}

/// SIGKILL right after the emulator confirmed the create of `addr` (before the tool recorded
/// it): the next apply adopts what exists from the intent journal, creates nothing twice,
/// converges, and leaves a plan with nothing to do.
fn sigkill_after_creating(addr: &str) {
    let gcp = gcp();
    let (w, _kube) = work(&gcp.url());
    let said = sigkill_then_apply(&w, GKE, addr);
    assert!(said.contains(&format!("{addr}: adopted")), "{addr}: {said}");
    assert_eq!(inventory(&gcp), expected_inventory(), "{addr}: nothing created twice");
    assert_settled(&w, GKE, addr);
}

macro_rules! sigkill_tests {
    ($($name:ident: $addr:expr,)*) => {$(
        #[test]
        fn $name() {
            sigkill_after_creating($addr);
        }
    )*};
}

sigkill_tests! {
    sigkill_after_creating_the_network: "gke.network.main",
    sigkill_after_creating_the_subnet: "gke.subnet.nodes",
    sigkill_after_creating_a_firewall: "gke.firewall.internal",
    sigkill_after_creating_the_router: "gke.router.nat",
    sigkill_after_creating_an_address: r#"gke.address.ingress["platform"]"#,
    sigkill_after_creating_the_cluster: "gke.cluster.main",
    sigkill_after_creating_a_node_pool: r#"gke.node_pool.pool["workloads"]"#,
    sigkill_after_creating_the_service_account: "gke.service_account.dns01",
    sigkill_after_creating_the_zone: "dns.zone.platform",
}

#[test]
fn a_fresh_platform_plans_the_gke_resources() {
    let gcp = gcp();
    let (w, _kube) = work(&gcp.url());
    let out = w.run(&args(&["plan", "--no-color"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    insta::assert_snapshot!("gke_fresh_plan", cloud_text(&text(&out.stdout)));
}

#[test]
fn an_upgrade_moves_the_control_plane_then_the_pools_one_minor_version_at_a_time() {
    let gcp = gcp();
    let (w, _kube) = work(&gcp.url());
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    let version = "kubernetes_version: \"1.33\"\n    network:\n      # Primary range of the subnet";
    w.edit("matih.yaml", version, &version.replace("1.33", "1.34"));
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let mut ch = changed(&p);
    ch.sort();
    assert_eq!(
        ch,
        vec![
            ("gke.cluster.main".to_string(), "update".to_string()),
            (r#"gke.node_pool.pool["workloads"]"#.to_string(), "update".to_string()),
        ]
    );
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let cluster = gcp.get(CLUSTER).unwrap();
    assert!(
        cluster["currentMasterVersion"].as_str().unwrap().starts_with("1.34"),
        "{:#}",
        cluster["currentMasterVersion"]
    );
    // (The call another test expects not to see when the channel already upgraded the cluster.)
    assert!(gcp.calls().contains_key("PUT container.clusters"), "{:?}", gcp.calls());
    for pool in gcp.resources("container.nodePools") {
        assert!(pool["version"].as_str().unwrap().starts_with("1.34"), "{pool:#}");
    }
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));

    // Two minor versions at once: the error names the steps, nothing is sent.
    w.edit(
        "matih.yaml",
        "kubernetes_version: \"1.34\"\n    network:\n      # Primary",
        "kubernetes_version: \"1.36\"\n    network:\n      # Primary",
    );
    let out = w.run(&args(&["apply", "--auto-approve"]));
    assert_ne!(code(&out), 0);
    let err = text(&out.stderr);
    assert!(err.contains("GKE upgrades one minor version at a time") && err.contains("1.35, then 1.36"), "{err}");
    assert!(gcp.get(CLUSTER).unwrap()["currentMasterVersion"].as_str().unwrap().starts_with("1.34"));
}

#[test]
fn a_staging_environment_delegates_its_zone_from_the_parent() {
    let gcp = gcp();
    let (w, _kube) = work(&gcp.url());
    std::fs::create_dir_all(w.path("staging-gke")).unwrap();
    std::fs::write(
        w.path("staging-gke/matih.yaml"),
        r#"
platform: { name: matih, domain: matih.ai, environment: staging, acme_email: platform-team@matih.ai }
clouds:
  gke:
    project: matih-prod
    region: us-central1
    kubernetes_version: "1.33"
    network: { subnet_cidr: 10.40.0.0/20, pods_cidr: 10.44.0.0/14, services_cidr: 10.48.0.0/20, master_cidr: 172.16.0.16/28 }
    node_pools: [{ name: system, machine_type: e2-standard-4, min: 1, max: 3 }]
"#,
    )
    .unwrap();
    let staging = |a: &[&'static str]| {
        let mut v = args(a);
        v.extend(["-c", "staging-gke/matih.yaml"]);
        v
    };
    // Without the parent environment's zone there is nothing to delegate from.
    let out = w.run(&staging(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d =
        v["resources"].as_array().unwrap().iter().find(|r| r["address"] == "dns.delegation.parent").unwrap().clone();
    assert!(d["error"].as_str().unwrap().contains("the parent zone matih.ai is not in project matih-prod"), "{d:#}");

    // The prod environment (another state) owns matih.ai.
    existing_zone(&gcp);
    let (c, v) = w.json(&staging(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let mut servers: Vec<String> = v["outputs"]["zone_name_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().trim_end_matches('.').to_string())
        .collect();
    servers.sort();
    let ns = || -> Vec<String> {
        let Some(set) = gcp.get(&format!("{PROJECT}/managedZones/matih-ai-legacy/rrsets/staging.matih.ai./NS")) else {
            return vec![];
        };
        let mut v: Vec<String> = set["rrdatas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().trim_end_matches('.').to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ns(), servers, "the parent zone delegates staging.matih.ai to the staging zone's name servers");
    let out = w.run(&staging(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));

    // A kubeconfig for humans: the endpoint and CA, and gke-gcloud-auth-plugin, no token.
    let kc = w.run(&staging(&["kubeconfig"]));
    assert_eq!(code(&kc), 0, "{}", text(&kc.stderr));
    let kc = text(&kc.stdout);
    assert!(kc.contains("gke-gcloud-auth-plugin") && !kc.contains(TOKEN), "{kc}");

    assert_eq!(code(&w.run(&staging(&["destroy", "--include-protected", "--auto-approve", "-q"]))), 0);
    assert!(ns().is_empty(), "the delegation went with the environment");
    assert!(gcp.get(&format!("{PROJECT}/managedZones/matih-ai-legacy")).is_some(), "the parent zone is not ours");
}

#[test]
fn a_cluster_the_release_channel_moved_ahead_is_left_there() {
    let gcp = gcp();
    let (w, _kube) = work(&gcp.url());
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    // GKE's release channel upgrades the control plane and the pools by itself.
    gcp.patch_raw(CLUSTER, |c| c["currentMasterVersion"] = json!("1.34.2-gke.1100000"));
    for pool in ["system", "workloads"] {
        gcp.patch_raw(&format!("{CLUSTER}/nodePools/{pool}"), |p| p["version"] = json!("1.34.2-gke.1100000"));
    }
    // The spec's version is a floor: nothing to do, and no attempt to go back.
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
    // Asking for the version it already runs changes nothing in the cloud either.
    w.edit(
        "matih.yaml",
        "kubernetes_version: \"1.33\"\n    network:\n      # Primary",
        "kubernetes_version: \"1.34\"\n    network:\n      # Primary",
    );
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert!(!gcp.calls().contains_key("PUT container.clusters"), "{:?}", gcp.calls());
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
}

#[test]
fn a_record_deletion_whose_answer_is_lost_is_not_an_error() {
    let gcp = gcp();
    let upstream: std::net::SocketAddr = gcp.url().trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(matih_fault_proxy::gcp::options(upstream, vec![]));
    let (w, _kube) = work(&proxy.url());
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    // bigcorp shares the platform's controller: leaving takes only its record (and its namespace).
    std::fs::remove_file(w.path("tenants/bigcorp.yaml")).unwrap();
    proxy.set_rules(vec![Rule::FirstOfEachAction { n: 1, mutating_only: true, fault: Fault::ForwardThenReset }]);
    let out = w.run(&args(&["apply", "--auto-approve"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!proxy.injected().is_empty());
    assert!(!records(&gcp).contains_key("bigcorp.matih.ai."));
    proxy.set_rules(vec![]);
    assert_settled(&w, GKE, "after the lost deletion");
}

#[test]
fn a_record_swap_whose_answer_is_lost_is_found_made_and_not_sent_again() {
    // bigcorp moves onto a controller of its own and back: its CNAME becomes an A record and
    // then a CNAME again, each swap one change (deletion and addition together). The emulator
    // makes the change, and the tool gets a 500, then a reset connection, instead of the answer.
    let gcp = gcp();
    let upstream: std::net::SocketAddr = gcp.url().trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(matih_fault_proxy::gcp::options(upstream, vec![]));
    let (w, _kube) = work(&proxy.url());
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    for (dedicated, fault) in [(true, Fault::ForwardThen500), (false, Fault::ForwardThenReset)] {
        let yaml = format!("slug: bigcorp\ndisplay_name: BigCorp\ndedicated_ingress: {dedicated}\n");
        std::fs::write(w.path("tenants/bigcorp.yaml"), yaml).unwrap();
        // (Setting rules starts the proxy's count of calls again.)
        let rule = Rule::Action { name: "POST dns.changes".into(), calls: vec![1], fault: fault.clone() };
        proxy.set_rules(vec![rule]);
        let allow = r#"gke.address.ingress["bigcorp"]"#;
        let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json", "--allow-replace", allow]));
        assert_eq!(c, 0, "{fault:?}: {v:#}");
        assert_eq!(proxy.injected().len(), if dedicated { 1 } else { 2 }, "{fault:?}");
        assert_eq!(proxy.calls()["POST dns.changes"], 1, "{fault:?}: the swap was made once, and found made");
        let want = if dedicated { vec![address(&gcp, "bigcorp")] } else { vec!["ingress.matih.ai.".to_string()] };
        assert_eq!(records(&gcp)["bigcorp.matih.ai."], want, "{fault:?}");
        proxy.set_rules(vec![]);
        assert_settled(&w, GKE, &format!("after the swap with {fault:?}"));
    }
}
