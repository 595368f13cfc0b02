//! `--cloud aks` end to end: the binary against the project's Azure Resource Manager emulator
//! (`tests/azure-emulator`, started per test on 127.0.0.1) through the tool's ARM client, and the
//! cluster bootstrap against the Kubernetes API emulator seeded as AKS seeds a cluster,
//! authenticated with the token of the cluster user credential the ARM emulator hands out. What
//! both emulators hold is checked by listing them.
#![cfg(feature = "azure")]

use std::collections::BTreeMap;
use std::sync::Arc;

use matih_azure_emulator::{AzureEmulator, Options as ArmOptions};
use matih_fault_proxy::{Fault, FaultProxy, Rule};
use matih_kube_emulator::{Auth, Flavor, KubeEmulator, Options};
use serde_json::{Value, json};

mod common;
use common::*;

const AKS: &[&str] = &["--cloud", "aks"];
const ARM_TOKEN: &str = "arm-test-token";
const KUBE_TOKEN: &str = "aks-user-token";
const SUB: &str = "00000000-0000-0000-0000-000000000000";
const GROUP: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/matih-prod-rg";

fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
    a.iter().copied().chain(AKS.iter().copied()).collect()
}

fn arm() -> AzureEmulator {
    arm_with(ArmOptions::default())
}

fn arm_with(options: ArmOptions) -> AzureEmulator {
    AzureEmulator::start(ArmOptions { token: Some(ARM_TOKEN.into()), kubeconfig_token: KUBE_TOKEN.into(), ..options })
}

/// A work directory whose commands use `arm_url` for ARM and a fresh AKS-seeded Kubernetes API
/// emulator that accepts only the cluster user credential's token.
fn work(arm_url: &str) -> (Work, Arc<KubeEmulator>) {
    work_as(arm_url, KUBE_TOKEN)
}

/// As [`work`], with a Kubernetes API emulator that accepts only `kube_token`.
fn work_as(arm_url: &str, kube_token: &str) -> (Work, Arc<KubeEmulator>) {
    let kube = Arc::new(KubeEmulator::start(Options {
        auth: Auth::Bearer(kube_token.into()),
        flavor: Flavor::Aks,
        ..Options::default()
    }));
    let mut w = Work::new();
    w.env = vec![
        ("MATIH_ARM_ENDPOINT".into(), arm_url.to_string()),
        ("MATIH_AZURE_TOKEN".into(), ARM_TOKEN.into()),
        ("MATIH_KUBE_API_SERVER".into(), kube.url()),
        ("MATIH_ADDONS_DIR".into(), matih_emulators::addons_dir().display().to_string()),
    ];
    (w, kube)
}

/// The platform in the ARM emulator, counted by type.
fn inventory(arm: &AzureEmulator) -> BTreeMap<&'static str, usize> {
    [
        ("Microsoft.Network/virtualNetworks", "vnet"),
        ("Microsoft.Network/virtualNetworks/subnets", "subnet"),
        ("Microsoft.Network/networkSecurityGroups", "nsg"),
        ("Microsoft.Network/publicIPAddresses", "public_ip"),
        ("Microsoft.ContainerService/managedClusters", "cluster"),
        ("Microsoft.ContainerService/managedClusters/agentPools", "agent_pool"),
        ("Microsoft.ManagedIdentity/userAssignedIdentities", "identity"),
        ("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials", "federated_credential"),
        ("Microsoft.Authorization/roleAssignments", "role_assignment"),
        ("Microsoft.Network/dnsZones", "zone"),
        ("Microsoft.Network/dnsZones/A", "a_record"),
        ("Microsoft.Network/dnsZones/CNAME", "cname_record"),
    ]
    .into_iter()
    .map(|(t, k)| (k, in_group(arm, t).len()))
    .collect()
}

/// Resources of a type in the platform's group (AKS keeps the nodes' own in the `MC_` group).
fn in_group(arm: &AzureEmulator, rtype: &str) -> Vec<Value> {
    let prefix = format!("{}/", GROUP.to_ascii_lowercase());
    arm.resources(rtype)
        .into_iter()
        .filter(|r| r["id"].as_str().unwrap().to_ascii_lowercase().starts_with(&prefix))
        .collect()
}

/// The example platform: two subnets, two pools (system in the cluster, one user pool), public
/// IPs for the platform and acme's dedicated controller, A records for api, ingress and acme, and
/// bigcorp's CNAME.
fn expected_inventory() -> BTreeMap<&'static str, usize> {
    [
        ("vnet", 1),
        ("subnet", 2),
        ("nsg", 1),
        ("public_ip", 2),
        ("cluster", 1),
        ("agent_pool", 2),
        ("identity", 1),
        ("federated_credential", 1),
        ("role_assignment", 2),
        ("zone", 1),
        ("a_record", 3),
        ("cname_record", 1),
    ]
    .into()
}

/// A records of the platform zone: relative name → sorted addresses.
fn records(arm: &AzureEmulator) -> BTreeMap<String, Vec<String>> {
    let a = arm.resources("Microsoft.Network/dnsZones/A").into_iter().map(|r| {
        let mut v: Vec<String> = r["properties"]["ARecords"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ipv4Address"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        (r["name"].as_str().unwrap().to_string(), v)
    });
    let cname = arm.resources("Microsoft.Network/dnsZones/CNAME").into_iter().map(|r| {
        let target = r["properties"]["CNAMERecord"]["cname"].as_str().unwrap().to_string();
        (r["name"].as_str().unwrap().to_string(), vec![target])
    });
    a.chain(cname).collect()
}

/// A resource group someone made before the platform: the tool adopts it and never deletes it.
fn existing_group(arm: &AzureEmulator) {
    arm.put_raw(
        GROUP,
        json!({"id": GROUP, "name": "matih-prod-rg", "type": "Microsoft.Resources/resourceGroups", "location": "eastus",
               "tags": {"team": "platform"}, "properties": {"provisioningState": "Succeeded"}}),
    );
}

#[test]
fn apply_converges_then_destroy_leaves_only_the_adopted_group() {
    // The pod subnet stays in use for a while after the cluster is gone, as on Azure.
    let arm = arm_with(ArmOptions { link_linger: std::time::Duration::from_secs(2), ..ArmOptions::default() });
    existing_group(&arm);
    let (w, kube) = work(&arm.url());

    let (c, _) = w.json(&args(&["plan", "--out", "plan.json", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let (c, v) = w.json(&args(&["apply", "plan.json", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["outcome"], "complete", "{v:#}");
    assert_eq!(inventory(&arm), expected_inventory());

    // The group was adopted: our tags joined the team's, and it says so.
    let group = arm.get(GROUP).unwrap();
    assert_eq!(group["tags"]["team"], "platform");
    assert_eq!(group["tags"]["matih_adopted"], "true");
    assert_eq!(group["tags"]["matih_address"], "aks.resource_group.main");

    // The cluster as the platform document asks: Azure CNI, Calico, OIDC and workload identity.
    let cluster = &arm.resources("Microsoft.ContainerService/managedClusters")[0];
    let net = &cluster["properties"]["networkProfile"];
    assert_eq!(net["networkPlugin"], "azure");
    assert_eq!(net["networkPolicy"], "calico");
    assert_eq!(net["serviceCidr"], "172.16.0.0/16");
    assert_eq!(net["dnsServiceIP"], "172.16.0.10");
    assert_eq!(cluster["properties"]["oidcIssuerProfile"]["enabled"], true);
    assert_eq!(cluster["properties"]["securityProfile"]["workloadIdentity"]["enabled"], true);

    // DNS points at the reserved public IPs: api and ingress at the platform's, acme at its own;
    // bigcorp, on the shared controller, is a CNAME to ingress.
    let ip = |ctrl: &str| {
        arm.get(&format!("{GROUP}/providers/Microsoft.Network/publicIPAddresses/matih-prod-ingress-{ctrl}")).unwrap()
            ["properties"]["ipAddress"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let recs = records(&arm);
    assert_eq!(recs["api"], vec![ip("platform")]);
    assert_eq!(recs["ingress"], vec![ip("platform")]);
    assert_eq!(recs["bigcorp"], ["ingress.matih.ai"]);
    assert_eq!(recs["acme"], vec![ip("acme")]);
    assert_eq!(v["outputs"]["ingress_addresses"]["acme"], json!([ip("acme")]));

    // DNS01: the identity may change the zone only, and trusts cert-manager's service account.
    let identity = &in_group(&arm, "Microsoft.ManagedIdentity/userAssignedIdentities")[0];
    let principal = identity["properties"]["principalId"].as_str().unwrap();
    let client_id = identity["properties"]["clientId"].as_str().unwrap();
    let assignments = arm.resources("Microsoft.Authorization/roleAssignments");
    let dns01 = assignments.iter().find(|a| a["properties"]["principalId"] == principal).unwrap();
    assert!(dns01["id"].as_str().unwrap().to_ascii_lowercase().contains("/dnszones/matih.ai/providers/"), "{dns01:#}");
    assert!(
        dns01["properties"]["roleDefinitionId"].as_str().unwrap().ends_with("befefa01-2a29-4197-83a8-272ff33ce314")
    );
    let fic = &arm.resources("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials")[0];
    assert_eq!(fic["properties"]["subject"], "system:serviceaccount:cert-manager:cert-manager");
    assert_eq!(fic["properties"]["issuer"], cluster["properties"]["oidcIssuerProfile"]["issuerURL"]);
    let network =
        assignments.iter().find(|a| a["properties"]["principalId"] == cluster["identity"]["principalId"]).unwrap();
    assert!(
        network["properties"]["roleDefinitionId"].as_str().unwrap().ends_with("4d97b98b-1d4f-4787-a291-c67834d212e7")
    );

    // The bootstrap: the azureDNS solver with the identity, cert-manager labelled for workload
    // identity, acme's controller bound to its public IP, AKS's own CoreDNS untouched.
    let issuer = kube.get("cert-manager.io/v1", "ClusterIssuer", None, "letsencrypt-prod-dns01").unwrap();
    let solver = &issuer["spec"]["acme"]["solvers"][0]["dns01"]["azureDNS"];
    assert_eq!(solver["managedIdentity"]["clientID"], client_id);
    assert_eq!(solver["subscriptionID"], SUB);
    assert_eq!(solver["hostedZoneName"], "matih.ai");
    let sa = kube.get("v1", "ServiceAccount", Some("cert-manager"), "cert-manager").unwrap();
    assert_eq!(sa["metadata"]["annotations"]["azure.workload.identity/client-id"], client_id);
    let deploy = kube.get("apps/v1", "Deployment", Some("cert-manager"), "cert-manager").unwrap();
    assert_eq!(deploy["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"], "true");
    let svc = kube
        .list("v1", "Service")
        .into_iter()
        .find(|s| s["metadata"]["namespace"] == "matih-tenant-acme" && s["spec"]["type"] == "LoadBalancer")
        .expect("acme's controller Service");
    let ann = &svc["metadata"]["annotations"];
    assert_eq!(ann["service.beta.kubernetes.io/azure-load-balancer-resource-group"], "matih-prod-rg");
    assert_eq!(ann["service.beta.kubernetes.io/azure-pip-name"], "matih-prod-ingress-acme");
    assert_eq!(svc["spec"]["loadBalancerIP"], ip("acme"));
    let corefile = kube.get("v1", "ConfigMap", Some("kube-system"), "coredns").unwrap();
    assert_eq!(corefile["data"]["Corefile"], matih_kube_emulator::AKS_COREFILE);
    let custom = kube.get("v1", "ConfigMap", Some("kube-system"), "coredns-custom").unwrap();
    // AKS's default block forwards to the nodes' resolvers: the forwarders are the VNet's DNS servers.
    assert!(custom["data"].get("forwarders.override").is_none(), "{custom:#}");
    let vnet = &in_group(&arm, "Microsoft.Network/virtualNetworks")[0];
    assert_eq!(vnet["properties"]["dhcpOptions"]["dnsServers"], json!(["1.1.1.1", "8.8.8.8"]));

    // Neither token is written anywhere.
    for f in [".matih/state/prod-aks.json", "plan.json"] {
        let saved = std::fs::read_to_string(w.path(f)).unwrap();
        assert!(!saved.contains(ARM_TOKEN) && !saved.contains(KUBE_TOKEN), "{f} holds a token");
    }

    // A second plan changes nothing, reading each type with one list per collection.
    arm.clear_requests();
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
    assert!(p["orphans"].as_array().is_none_or(|o| o.is_empty()), "{:#}", p["orphans"]);
    let gets: u64 = arm.calls().iter().filter(|(k, _)| k.starts_with("GET ")).map(|(_, n)| n).sum();
    assert!(gets <= 16, "a no-op plan read with {gets} GETs: {:#?}", arm.calls());

    // Destroy takes everything down but the adopted group, whose owner tags come off.
    let out = w.run(&args(&["destroy", "--auto-approve", "--include-protected"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let left: usize = inventory(&arm).values().sum();
    assert_eq!(left, 0, "{:#?}", inventory(&arm));
    let group = arm.get(GROUP).expect("an adopted group is never deleted");
    assert_eq!(group["tags"], json!({"team": "platform"}));
}

#[test]
fn answers_lost_as_500s_on_every_write_create_nothing_twice() {
    lost_answers_on_every_write_create_nothing_twice(Fault::ForwardThen500);
}

#[test]
fn answers_lost_as_resets_on_every_write_create_nothing_twice() {
    lost_answers_on_every_write_create_nothing_twice(Fault::ForwardThenReset);
}

#[test]
fn throttling_is_waited_out() {
    let arm = arm();
    let (w, _kube) = work(&arm.url());
    arm.throttle_next(6, 1);
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let retries: u64 = v["statistics"]["retries"].as_object().unwrap().values().filter_map(Value::as_u64).sum();
    assert!(retries >= 6, "{:#}", v["statistics"]);
    assert_eq!(inventory(&arm), expected_inventory());
}

/// ARM carries out the first request of every mutating action, but the tool sees `fault`.
fn lost_answers_on_every_write_create_nothing_twice(fault: Fault) {
    // Operations take a moment and new principals replicate for a second, as on Azure.
    let arm = arm_with(ArmOptions {
        lro_delay: std::time::Duration::from_millis(300),
        principal_lag: std::time::Duration::from_secs(1),
        ..ArmOptions::default()
    });
    let upstream: std::net::SocketAddr = arm.url().trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(matih_fault_proxy::azure::options(
        upstream,
        vec![Rule::FirstOfEachAction { n: 1, mutating_only: true, fault }],
    ));
    let (w, _kube) = work(&proxy.url());
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["outcome"], "complete");
    assert!(!proxy.injected().is_empty());
    // One group (created: none existed; AKS makes the nodes' `MC_` group), and exactly the platform.
    let groups: Vec<String> = arm
        .resources("Microsoft.Resources/resourceGroups")
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .filter(|n| !n.starts_with("MC_"))
        .collect();
    assert_eq!(groups, ["matih-prod-rg"]);
    assert_eq!(inventory(&arm), expected_inventory());
    proxy.set_rules(vec![]);
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
    assert!(p["orphans"].as_array().is_none_or(|o| o.is_empty()), "{:#}", p["orphans"]);
}

#[test]
fn an_arm_error_names_the_address_operation_code_and_request_id() {
    let arm = arm();
    let (w, _kube) = work(&arm.url());
    arm.fail_next("PUT", "Microsoft.Network/virtualNetworks", 400, "InvalidAddressPrefix", "the prefix is reserved");
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_ne!(c, 0);
    let text = v.to_string();
    for want in [
        "aks.vnet.main",
        "VirtualNetworks_CreateOrUpdate",
        "InvalidAddressPrefix",
        "the prefix is reserved",
        "request id",
    ] {
        assert!(text.contains(want), "no {want:?} in {v:#}");
    }
    // What was created before the failure is recorded, and the next apply finishes the job.
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(inventory(&arm), expected_inventory());
}

#[test]
fn drift_is_reported_and_repaired() {
    let arm = arm();
    let (w, _kube) = work(&arm.url());
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    // Someone opens SSH on the node subnet's NSG and scales the user pool by hand.
    let nsg = format!("{GROUP}/providers/Microsoft.Network/networkSecurityGroups/matih-prod-nodes-nsg");
    arm.patch_raw(&nsg, |n| {
        n["properties"]["securityRules"].as_array_mut().unwrap().push(json!({"name": "ssh", "properties": {
            "priority": 200, "direction": "Inbound", "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": "*",
            "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22"}}));
    });
    let pool = format!("{GROUP}/providers/Microsoft.ContainerService/managedClusters/matih-prod/agentPools/workloads");
    arm.patch_raw(&pool, |p| p["properties"]["maxCount"] = json!(3));
    // The system pool too: it is part of the cluster, and scaled through the agent pool API.
    let system = format!("{GROUP}/providers/Microsoft.ContainerService/managedClusters/matih-prod/agentPools/system");
    arm.patch_raw(&system, |p| p["properties"]["maxCount"] = json!(9));
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let mut ch = changed(&p);
    ch.sort();
    assert_eq!(
        ch,
        vec![
            (r#"aks.agent_pool.pool["workloads"]"#.to_string(), "update".to_string()),
            ("aks.cluster.main".to_string(), "update".to_string()),
            ("aks.nsg.nodes".to_string(), "update".to_string()),
        ]
    );
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(arm.get(&pool).unwrap()["properties"]["maxCount"], 20);
    assert_eq!(arm.get(&system).unwrap()["properties"]["maxCount"], 4);
    assert_eq!(arm.get(&nsg).unwrap()["properties"]["securityRules"].as_array().unwrap().len(), 1);
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));
}

#[test]
fn a_dedicated_tenant_gets_its_public_ip_and_record_and_removal_takes_them_away() {
    let arm = arm();
    let (w, kube) = work(&arm.url());
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    std::fs::write(w.path("tenants/globex.yaml"), "slug: globex\ndisplay_name: Globex\ndedicated_ingress: true\n")
        .unwrap();
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let want: Vec<(String, String)> = [
        (r#"aks.public_ip.ingress["globex"]"#, "create"),
        (r#"dns.record.tenant["globex"]"#, "create"),
        ("k8s.addon.network_policies", "update"),
        (r#"k8s.addon.tenant["globex"]"#, "create"),
        (r#"k8s.addon.tenant_ingress["globex"]"#, "create"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(changed(&p), want);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    assert_eq!(inventory(&arm)["public_ip"], 3);
    let ip = arm
        .get(&format!("{GROUP}/providers/Microsoft.Network/publicIPAddresses/matih-prod-ingress-globex"))
        .unwrap()["properties"]["ipAddress"]
        .clone();
    assert_eq!(records(&arm)["globex"], vec![ip.as_str().unwrap().to_string()]);

    std::fs::remove_file(w.path("tenants/globex.yaml")).unwrap();
    // Its public IP is protected: removing it is said explicitly.
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 3);
    let out = w.run(&args(&["apply", "--auto-approve", "-q", "--allow-replace", r#"aks.public_ip.ingress["globex"]"#]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(inventory(&arm)["public_ip"], 2);
    assert!(!records(&arm).contains_key("globex"));
    assert!(kube.get("v1", "Namespace", None, "matih-tenant-globex").is_none());
}

/// SIGKILL right after ARM confirmed the create of `addr` (before the tool recorded it, with
/// other creates in flight): the next apply adopts what exists from the intent journal, creates
/// nothing twice, converges, and leaves a plan with nothing to do.
fn sigkill_after_creating(addr: &str) {
    let arm = arm();
    let (w, _kube) = work(&arm.url());
    let said = sigkill_then_apply(&w, AKS, addr);
    assert!(said.contains(&format!("{addr}: adopted")), "{addr}: {said}");
    assert_eq!(inventory(&arm), expected_inventory(), "{addr}: nothing created twice");
    assert_settled(&w, AKS, addr);
}

/// One SIGKILL test per resource type of the AKS platform.
macro_rules! sigkill_tests {
    ($($name:ident: $addr:expr,)*) => {$(
        #[test]
        fn $name() {
            sigkill_after_creating($addr);
        }
    )*};
}

sigkill_tests! {
    sigkill_after_creating_the_resource_group: "aks.resource_group.main",
    sigkill_after_creating_the_vnet: "aks.vnet.main",
    sigkill_after_creating_a_subnet: "aks.subnet.nodes",
    sigkill_after_creating_the_nsg: "aks.nsg.nodes",
    sigkill_after_creating_a_public_ip: r#"aks.public_ip.ingress["acme"]"#,
    sigkill_after_creating_the_cluster: "aks.cluster.main",
    sigkill_after_creating_an_agent_pool: r#"aks.agent_pool.pool["workloads"]"#,
    sigkill_after_creating_the_identity: "aks.identity.cert_manager",
    sigkill_after_creating_the_federated_credential: "aks.federated_credential.cert_manager",
    sigkill_after_creating_a_role_assignment: "aks.role_assignment.dns01",
    sigkill_after_creating_the_zone: "dns.zone.platform",
    sigkill_after_creating_a_record: r#"dns.record.tenant["acme"]"#,
}

#[test]
fn a_staging_environment_delegates_its_zone_from_the_parent() {
    let arm = arm();
    let (w, _kube) = work(&arm.url());
    std::fs::create_dir_all(w.path("staging-aks")).unwrap();
    std::fs::write(
        w.path("staging-aks/matih.yaml"),
        r#"
platform: { name: matih, domain: matih.ai, environment: staging, acme_email: platform-team@matih.ai }
clouds:
  aks:
    subscription_id: 00000000-0000-0000-0000-000000000000
    resource_group: matih-staging-rg
    location: eastus
    kubernetes_version: "1.33"
    network: { vnet_cidr: 10.31.0.0/16, node_subnet_cidr: 10.31.0.0/20, service_cidr: 172.17.0.0/16 }
    node_pools: [{ name: system, machine_type: Standard_D4s_v5, min: 1, max: 3 }]
"#,
    )
    .unwrap();
    let staging = |a: &[&'static str]| {
        let mut v = args(a);
        v.extend(["-c", "staging-aks/matih.yaml"]);
        v
    };
    // Without the parent environment's zone there is nothing to delegate from.
    let out = w.run(&staging(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d =
        v["resources"].as_array().unwrap().iter().find(|r| r["address"] == "dns.delegation.parent").unwrap().clone();
    assert!(d["error"].as_str().unwrap().contains("the parent zone matih.ai is not in subscription"), "{d:#}");

    // The prod environment (another state, another group) owns matih.ai.
    let prod = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/matih-prod-rg";
    existing_group(&arm);
    let parent = format!("{prod}/providers/Microsoft.Network/dnsZones/matih.ai");
    arm.put_raw(
        &parent,
        json!({"id": parent, "name": "matih.ai", "type": "Microsoft.Network/dnszones", "location": "global", "tags": {},
               "properties": {"zoneType": "Public", "nameServers": ["ns1-09.azure-dns.com."]}}),
    );
    let (c, v) = w.json(&staging(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let mut servers: Vec<String> =
        v["outputs"]["zone_name_servers"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    servers.sort();
    let ns = || -> Vec<String> {
        let Some(set) = arm.get(&format!("{parent}/NS/staging")) else { return vec![] };
        let mut v: Vec<String> = set["properties"]["NSRecords"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["nsdname"].as_str().unwrap().trim_end_matches('.').to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ns(), servers, "the parent zone delegates staging.matih.ai to the staging zone's name servers");
    let out = w.run(&staging(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));

    assert_eq!(code(&w.run(&staging(&["destroy", "--include-protected", "--auto-approve", "-q"]))), 0);
    assert!(ns().is_empty(), "the delegation went with the environment");
    assert!(arm.get(&parent).is_some(), "the parent zone is not ours to delete");
}

/// What a reviewer reads before the first apply: the AKS resources with their settings (a
/// snapshot; `INSTA_UPDATE=always` accepts a deliberate change).
#[test]
fn a_fresh_platform_plans_the_aks_resources() {
    let arm = arm();
    let (w, _kube) = work(&arm.url());
    let out = w.run(&args(&["plan", "--no-color"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    insta::assert_snapshot!("aks_fresh_plan", cloud_text(&text(&out.stdout)));
}

/// A fresh subscription is registered for the resource providers the platform uses, as the
/// Azure SDKs do, and the apply goes on.
#[test]
fn a_fresh_subscription_is_registered_for_the_providers_it_needs() {
    let namespaces = ["Microsoft.ContainerService", "Microsoft.ManagedIdentity", "Microsoft.Network"];
    let arm = arm_with(ArmOptions {
        unregistered: namespaces.iter().map(|n| n.to_string()).collect(),
        ..ArmOptions::default()
    });
    let (w, _kube) = work(&arm.url());
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(inventory(&arm), expected_inventory());
    // Each namespace registered (writes racing into one namespace may each register it).
    let mut registered: Vec<String> = arm
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/register"))
        .map(|r| r.path.rsplit('/').nth(1).unwrap().to_string())
        .collect();
    registered.sort();
    registered.dedup();
    assert_eq!(registered, namespaces, "{:#?}", arm.calls());
}

const ADMIN: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
const ADMIN_GROUP: &str = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
const AKS_RBAC_CLUSTER_ADMIN: &str = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b";

/// The example platform with an Entra ID cluster whose admins are `ADMIN` and `ADMIN_GROUP`.
fn entra_id(w: &Work) {
    w.edit(
        "matih.yaml",
        "    network:\n      vnet_cidr: 10.30.0.0/16",
        &format!(
            "    entra_id:\n      admin_group_ids: [{ADMIN_GROUP}]\n      cluster_admins: [{}]\n    network:\n      vnet_cidr: 10.30.0.0/16",
            ADMIN.to_ascii_uppercase()
        ),
    );
}

/// Whether the ARM emulator holds ADMIN's cluster admin role on the cluster.
fn admin_granted(arm: &AzureEmulator) -> bool {
    arm.resources("Microsoft.Authorization/roleAssignments").iter().any(|a| {
        let id = a["id"].as_str().unwrap_or_default().to_ascii_lowercase();
        id.contains("/managedclusters/matih-prod/providers/")
            && a["properties"]["principalId"].as_str().is_some_and(|p| p.eq_ignore_ascii_case(ADMIN))
            && a["properties"]["roleDefinitionId"].as_str().is_some_and(|r| r.ends_with(AKS_RBAC_CLUSTER_ADMIN))
    })
}

#[test]
fn an_entra_id_cluster_is_bootstrapped_with_an_entra_token_once_its_admin_role_is_granted() {
    let arm = Arc::new(arm());
    arm.add_principal(ADMIN);
    // The Entra ID token for the AKS server application: the emulator's static token. The
    // cluster user credential of an Entra ID cluster holds none.
    let (w, kube) = work_as(&arm.url(), ARM_TOKEN);
    let seen = arm.clone();
    kube.authorize_when(
        move || admin_granted(&seen),
        "User does not have access to the resource in Azure. Update role assignment to allow access.",
    );
    entra_id(&w);

    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let cluster = &arm.resources("Microsoft.ContainerService/managedClusters")[0];
    let aad = &cluster["properties"]["aadProfile"];
    assert_eq!(aad["managed"], true);
    assert_eq!(aad["enableAzureRBAC"], true);
    assert_eq!(aad["adminGroupObjectIDs"], json!([ADMIN_GROUP]));
    assert_eq!(cluster["properties"]["disableLocalAccounts"], true);
    assert!(admin_granted(&arm));
    assert!(kube.get("v1", "Namespace", None, "cert-manager").is_some(), "the bootstrap ran");
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));

    // Users sign in with kubelogin; no secret in the kubeconfig.
    let kc = w.run(&args(&["kubeconfig"]));
    assert_eq!(code(&kc), 0, "{}", text(&kc.stderr));
    let kc = text(&kc.stdout);
    assert!(kc.contains("kubelogin") && kc.contains("6dae42f8-4368-4678-94ff-3960e28e3630"), "{kc}");
    assert!(!kc.contains(ARM_TOKEN));

    // AKS cannot turn Entra ID off; the error says so and nothing changes.
    w.edit(
        "matih.yaml",
        &format!(
            "    entra_id:\n      admin_group_ids: [{ADMIN_GROUP}]\n      cluster_admins: [{}]\n",
            ADMIN.to_ascii_uppercase()
        ),
        "",
    );
    let out = w.run(&args(&["apply", "--auto-approve"]));
    assert_ne!(code(&out), 0);
    assert!(text(&out.stderr).contains("cannot turn off"), "{}", text(&out.stderr));
    let cluster = &arm.resources("Microsoft.ContainerService/managedClusters")[0];
    assert_eq!(cluster["properties"]["aadProfile"]["managed"], true);
}

#[test]
fn a_cluster_that_keeps_refusing_the_tool_says_how_to_be_admitted() {
    let arm = arm();
    arm.add_principal(ADMIN);
    let (mut w, kube) = work_as(&arm.url(), ARM_TOKEN);
    kube.authorize_when(|| false, "User does not have access to the resource in Azure.");
    w.env.push(("MATIH_ADDON_WAIT_TIMEOUT".into(), "3s".into()));
    entra_id(&w);
    let out = w.run(&args(&["apply", "--auto-approve"]));
    assert_ne!(code(&out), 0);
    let err = text(&out.stderr);
    assert!(err.contains("refuses this principal") && err.contains("entra_id.cluster_admins"), "{err}");
    // The cloud resources stay recorded.
    let (_, p) = w.json(&args(&["plan", "-o", "json"]));
    assert!(changed(&p).iter().all(|(a, _)| a.starts_with("k8s.")), "{:#}", p["changes"]);
}

#[test]
fn a_cluster_with_local_accounts_has_no_kubelogin_kubeconfig() {
    let arm = arm();
    let (w, _kube) = work(&arm.url());
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    let out = w.run(&args(&["kubeconfig"]));
    assert_ne!(code(&out), 0);
    assert!(text(&out.stderr).contains("az aks get-credentials"), "{}", text(&out.stderr));
}

#[test]
fn an_upgrade_moves_the_control_plane_then_the_pools_one_minor_version_at_a_time() {
    let arm = arm();
    let (w, _kube) = work(&arm.url());
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    let version = "kubernetes_version: \"1.33\"\n    network:\n      vnet_cidr: 10.30.0.0/16";
    w.edit("matih.yaml", version, &version.replace("1.33", "1.34"));
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let mut ch = changed(&p);
    ch.sort();
    assert_eq!(
        ch,
        vec![
            (r#"aks.agent_pool.pool["workloads"]"#.to_string(), "update".to_string()),
            ("aks.cluster.main".to_string(), "update".to_string()),
        ]
    );
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let cluster = &arm.resources("Microsoft.ContainerService/managedClusters")[0];
    assert_eq!(cluster["properties"]["kubernetesVersion"], "1.34");
    for pool in arm.resources("Microsoft.ContainerService/managedClusters/agentPools") {
        assert_eq!(pool["properties"]["orchestratorVersion"], "1.34", "{pool:#}");
    }
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:?}", changed(&p));

    // Two minor versions at once: the error names the steps, nothing is sent.
    w.edit("matih.yaml", "kubernetes_version: \"1.34\"", "kubernetes_version: \"1.36\"");
    let out = w.run(&args(&["apply", "--auto-approve"]));
    assert_ne!(code(&out), 0);
    let err = text(&out.stderr);
    assert!(err.contains("one minor version at a time") && err.contains("1.35, then 1.36"), "{err}");
    assert_eq!(
        arm.resources("Microsoft.ContainerService/managedClusters")[0]["properties"]["kubernetesVersion"],
        "1.34"
    );
}
