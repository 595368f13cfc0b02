//! AKS clusters and agent pools: the create operation over time, generated fields, pools as one
//! set with the cluster's profiles, validation, cascades, and user credentials.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use matih_azure_emulator::{AzureEmulator, Options};
use serde_json::{Value, json};

const CLUSTER: &str = "Microsoft.ContainerService/managedClusters/c1";

/// A group `rg1` with VNet `v1` (10.240.0.0/16) and subnet `nodes`; returns the subnet id.
fn network(arm: &Arm) -> String {
    arm.group("rg1");
    let r = arm.vnet("rg1", "v1", "10.240.0.0/16", &[("nodes", "10.240.0.0/20")]).expect(201);
    r.body["properties"]["subnets"][0]["id"].as_str().unwrap().to_string()
}

fn is_guid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

#[test]
fn a_cluster_goes_from_creating_to_succeeded_over_the_operation_delay() {
    let delay = Duration::from_secs(2);
    let em = AzureEmulator::start(Options { lro_delay: delay, retry_after_secs: 1, ..Options::default() });
    let arm = Arm::new(&em);
    let subnet = network(&arm);
    em.complete_operations();
    let started = Instant::now();
    let r = arm.put(&res("rg1", CLUSTER), AKS, cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10")).expect(201);
    assert_eq!(r.body["properties"]["provisioningState"], "Creating");
    assert_eq!(r.header("Retry-After"), Some("1"));
    let op = r.header("Azure-AsyncOperation").expect("an operation").to_string();
    assert!(op.contains("/providers/Microsoft.ContainerService/locations/westeurope/operations/"), "{op}");
    assert_eq!(arm.get(&res("rg1", CLUSTER), AKS).expect(200).body["properties"]["provisioningState"], "Creating");

    let seen = arm.wait_async(&op, Duration::from_secs(30));
    assert_eq!(seen.first().map(String::as_str), Some("InProgress"));
    assert_eq!(seen.last().map(String::as_str), Some("Succeeded"));
    assert!(started.elapsed() >= delay, "succeeded after {:?}, before the delay", started.elapsed());
    let c = arm.get(&res("rg1", CLUSTER), AKS).expect(200).body;
    assert_eq!(c["properties"]["provisioningState"], "Succeeded");
    assert_eq!(c["properties"]["agentPoolProfiles"][0]["provisioningState"], "Succeeded");
    let status = arm.get(&op, "").expect(200).body;
    assert!(status["startTime"].is_string() && status["endTime"].is_string(), "{status}");

    // What AKS adds.
    assert_eq!(c["type"], "Microsoft.ContainerService/ManagedClusters");
    assert_eq!(c["tags"], json!({"matih": "platform"}));
    assert!(is_guid(&c["identity"]["principalId"]));
    assert_eq!(c["identity"]["tenantId"], em.tenant_id());
    let issuer = c["properties"]["oidcIssuerProfile"]["issuerURL"].as_str().unwrap();
    let prefix = format!("https://westeurope.oic.prod-aks.azure.com/{}/", em.tenant_id());
    assert!(issuer.starts_with(&prefix) && issuer.ends_with('/'), "{issuer}");
    assert!(is_guid(&json!(issuer[prefix.len()..issuer.len() - 1])));
    assert_eq!(c["properties"]["nodeResourceGroup"], "MC_rg1_c1_westeurope");
    assert!(c["properties"]["fqdn"].as_str().unwrap().ends_with(".hcp.westeurope.azmk8s.io"));
    assert_eq!(c["properties"]["currentKubernetesVersion"], "1.33");
    assert_eq!(c["properties"]["powerState"]["code"], "Running");
    let kubelet = &c["properties"]["identityProfile"]["kubeletidentity"];
    assert!(is_guid(&kubelet["clientId"]) && is_guid(&kubelet["objectId"]));
    let kubelet_identity = em.get(kubelet["resourceId"].as_str().unwrap()).expect("the kubelet identity exists");
    assert_eq!(kubelet_identity["properties"]["principalId"], kubelet["objectId"]);
    assert!(em.get(&group("MC_rg1_c1_westeurope")).is_some(), "the node resource group exists");
    // Both principals can be granted roles at once (here on the subnet, Network Contributor).
    let role = format!(
        "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/4d97b98b-1d4f-4787-a291-c67834d212e7"
    );
    for (i, who) in [&c["identity"]["principalId"], &kubelet["objectId"]].into_iter().enumerate() {
        let ra = format!(
            "{subnet}/providers/Microsoft.Authorization/roleAssignments/0c5e4a51-0000-4000-8000-00000000000{i}"
        );
        let body =
            json!({"properties": {"roleDefinitionId": role, "principalId": who, "principalType": "ServicePrincipal"}});
        arm.put(&ra, AUTHZ, body).expect(201);
    }

    // An update keeps what was generated.
    em.complete_operations();
    let r = arm.put(&res("rg1", CLUSTER), AKS, cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10")).expect(200);
    assert_eq!(r.body["properties"]["provisioningState"], "Updating");
    for p in ["/identity/principalId", "/properties/oidcIssuerProfile/issuerURL", "/properties/fqdn"] {
        assert_eq!(r.body.pointer(p), c.pointer(p), "{p}");
    }
}

#[test]
fn agent_pools_and_the_clusters_profiles_are_one_set() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    let subnet = network(&arm);
    arm.put(&res("rg1", CLUSTER), AKS, cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10")).expect(201);
    let pools = res("rg1", &format!("{CLUSTER}/agentPools"));
    let (listed, _) = arm.list_all(&pools, AKS);
    assert_eq!(listed.len(), 1, "the cluster's pool is an agent pool");
    assert_eq!(listed[0]["type"], "Microsoft.ContainerService/managedClusters/agentPools");
    assert_eq!(listed[0]["properties"]["vnetSubnetID"], subnet);

    let user = json!({"properties": {"mode": "User", "vmSize": "Standard_D8s_v5", "count": 2, "minCount": 2, "maxCount": 10,
        "enableAutoScaling": true, "type": "VirtualMachineScaleSets", "osType": "Linux", "maxPods": 110,
        "vnetSubnetID": subnet, "orchestratorVersion": "1.33"}});
    let r = arm.put(&format!("{pools}/work"), AKS, user).expect(201);
    assert_eq!(r.body["properties"]["provisioningState"], "Creating");
    assert!(r.header("Azure-AsyncOperation").is_some());
    let names = |c: &Value| -> Vec<String> {
        c["properties"]["agentPoolProfiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&arm.get(&res("rg1", CLUSTER), AKS).expect(200).body), ["system", "work"]);
    // A cluster PUT naming only the system pool leaves the other one in place.
    arm.put(&res("rg1", CLUSTER), AKS, cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10")).expect(200);
    assert_eq!(arm.list_all(&pools, AKS).0.len(), 2);

    let r = arm.delete(&format!("{pools}/work"), AKS).expect(202);
    assert!(r.header("Azure-AsyncOperation").is_some());
    assert_eq!(arm.get(r.header("Location").expect("a Location"), "").status, 200);
    assert_eq!(names(&arm.get(&res("rg1", CLUSTER), AKS).expect(200).body), ["system"]);
    assert_eq!(
        arm.put(&res("rg1", "Microsoft.ContainerService/managedClusters/nope/agentPools/p"), AKS, json!({}))
            .expect(404)
            .code(),
        "ResourceNotFound"
    );
}

#[test]
fn cluster_networks_are_validated() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    let subnet = network(&arm);
    let put = |body: Value| arm.put(&res("rg1", CLUSTER), AKS, body);
    let r = put(cluster_body(&subnet, "10.0.0.0/16", "10.1.0.10")).expect(400);
    assert_eq!(
        (r.code(), r.body["error"]["target"].as_str()),
        ("InvalidDnsServiceIP", Some("networkProfile.dnsServiceIP"))
    );
    let r = put(cluster_body(&subnet, "10.240.128.0/20", "10.240.128.10")).expect(400);
    assert_eq!(r.code(), "ServiceCidrOverlapExistingSubnetsCidr", "a service CIDR inside the nodes' VNet");
    let missing = subnet.replace("/nodes", "/gone");
    assert_eq!(put(cluster_body(&missing, "10.0.0.0/16", "10.0.0.10")).expect(400).code(), "SubnetNotFound");
    assert_eq!(put(cluster_body("/not/a/subnet", "10.0.0.0/16", "10.0.0.10")).expect(400).code(), "InvalidSubnet");
    let mut user_only = cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10");
    user_only["properties"]["agentPoolProfiles"][0]["mode"] = json!("User");
    assert_eq!(put(user_only).expect(400).code(), "MustDefineAtLeastOneSystemPool");
    let mut no_location = cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10");
    no_location.as_object_mut().unwrap().remove("location");
    assert_eq!(put(no_location).expect(400).code(), "LocationRequired");
    assert!(em.resources("Microsoft.ContainerService/managedClusters").is_empty(), "refused PUTs store nothing");
}

#[test]
fn a_subnet_used_by_a_pool_stays_until_the_cluster_is_deleted() {
    let em = AzureEmulator::start(Options { lro_delay: Duration::from_secs(3600), ..Options::default() });
    let arm = Arm::new(&em);
    let subnet = network(&arm);
    em.complete_operations();
    arm.put(&res("rg1", CLUSTER), AKS, cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10")).expect(201);
    em.complete_operations();
    assert_eq!(arm.delete(&subnet, NET).expect(400).code(), "InUseSubnetCannotBeDeleted");
    let vnet = res("rg1", "Microsoft.Network/virtualNetworks/v1");
    assert_eq!(arm.delete(&vnet, NET).expect(400).code(), "InUseSubnetCannotBeDeleted");
    assert_eq!(arm.vnet("rg1", "v1", "10.240.0.0/16", &[]).expect(400).code(), "InUseSubnetCannotBeDeleted");

    let r = arm.delete(&res("rg1", CLUSTER), AKS).expect(202);
    assert!(r.header("Azure-AsyncOperation").is_some());
    let location = r.header("Location").expect("a Location").to_string();
    assert_eq!(arm.get(&res("rg1", CLUSTER), AKS).expect(200).body["properties"]["provisioningState"], "Deleting");
    assert_eq!(arm.get(&location, "").status, 202);
    em.complete_operations();
    assert_eq!(arm.get(&location, "").status, 200);
    assert_eq!(arm.get(&res("rg1", CLUSTER), AKS).expect(404).code(), "ResourceNotFound");
    assert!(em.resources("Microsoft.ContainerService/managedClusters/agentPools").is_empty(), "its pools went with it");
    assert!(em.get(&group("MC_rg1_c1_westeurope")).is_none(), "and its node resource group");
    assert_eq!(arm.delete(&res("rg1", CLUSTER), AKS).status, 204);
    arm.delete(&subnet, NET).expect(202);
}

#[test]
fn user_credentials_point_at_the_configured_kubernetes_server() {
    let em = AzureEmulator::start(Options {
        kubeconfig_server: "http://127.0.0.1:6443".into(),
        kubeconfig_token: "kube-token".into(),
        ..Options::default()
    });
    let arm = Arm::new(&em);
    let subnet = network(&arm);
    let creds = res("rg1", &format!("{CLUSTER}/listClusterUserCredential"));
    assert_eq!(arm.post(&creds, AKS).expect(404).code(), "ResourceNotFound");
    arm.put(&res("rg1", CLUSTER), AKS, cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10")).expect(201);
    let r = arm.post(&creds, AKS).expect(200);
    assert_eq!(r.body["kubeconfigs"][0]["name"], "clusterUser");
    let b64 = base64::engine::general_purpose::STANDARD;
    let yaml = String::from_utf8(b64.decode(r.body["kubeconfigs"][0]["value"].as_str().unwrap()).unwrap()).unwrap();
    assert!(yaml.contains("server: http://127.0.0.1:6443\n") && yaml.contains("token: kube-token\n"), "{yaml}");
    let ca = yaml.lines().find_map(|l| l.trim().strip_prefix("certificate-authority-data: ")).expect("CA data");
    assert!(String::from_utf8(b64.decode(ca).unwrap()).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(em.calls()["POST Microsoft.ContainerService/managedClusters/listClusterUserCredential"], 2);
}

#[test]
fn an_autoscaled_pool_is_not_scaled_by_hand() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    let subnet = network(&arm);
    arm.put(&res("rg1", CLUSTER), AKS, cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10")).expect(201);
    em.complete_operations();
    let pool = res("rg1", &format!("{CLUSTER}/agentPools/system"));
    let mut p = arm.get(&pool, AKS).expect(200).body;
    let count = p["properties"]["count"].as_u64().unwrap();
    p["properties"]["count"] = json!(count + 3);
    p["properties"].as_object_mut().unwrap().remove("provisioningState");
    let r = arm.put(&pool, AKS, p.clone());
    assert_eq!((r.status, r.code()), (400, "InvalidParameter"), "{r:#?}");
    // Without a count the pool keeps its nodes, and the bounds change.
    p["properties"].as_object_mut().unwrap().remove("count");
    p["properties"]["maxCount"] = json!(9);
    arm.put(&pool, AKS, p).expect(200);
    em.complete_operations();
    let now = arm.get(&pool, AKS).expect(200).body;
    assert_eq!((now["properties"]["count"].as_u64(), now["properties"]["maxCount"].as_u64()), (Some(count), Some(9)));
}

#[test]
fn versions_move_one_minor_at_a_time_and_pools_never_pass_their_control_plane() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    let subnet = network(&arm);
    let cluster = res("rg1", CLUSTER);
    arm.put(&cluster, AKS, cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10")).expect(201);
    let mut body = arm.get(&cluster, AKS).expect(200).body;
    let props = body["properties"].as_object_mut().unwrap();
    props.remove("agentPoolProfiles");
    let at = |v: &str| {
        let mut b = body.clone();
        b["properties"]["kubernetesVersion"] = json!(v);
        b
    };
    let r = arm.put(&cluster, AKS, at("1.35")).expect(400);
    assert_eq!(r.code(), "OperationNotAllowed");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("Available upgrade: 1.34"), "{:#}", r.body);
    assert_eq!(arm.put(&cluster, AKS, at("1.32")).expect(400).code(), "OperationNotAllowed", "no downgrade");

    // A pool newer than its control plane is refused; after the control plane moves, it may follow.
    let pool = res("rg1", &format!("{CLUSTER}/agentPools/system"));
    let mut p = arm.get(&pool, AKS).expect(200).body;
    p["properties"].as_object_mut().unwrap().remove("count");
    p["properties"]["orchestratorVersion"] = json!("1.34");
    assert_eq!(arm.put(&pool, AKS, p.clone()).expect(400).code(), "NodePoolMcVersionIncompatible");
    arm.put(&cluster, AKS, at("1.34")).expect(200);
    arm.put(&pool, AKS, p.clone()).expect(200);
    let now = arm.get(&pool, AKS).expect(200).body;
    assert_eq!(now["properties"]["orchestratorVersion"], "1.34");
    p["properties"]["orchestratorVersion"] = json!("1.33");
    assert_eq!(arm.put(&pool, AKS, p).expect(400).code(), "OperationNotAllowed", "a pool is not moved back");
}

#[test]
fn entra_id_cannot_be_turned_off_and_its_user_credential_holds_no_token() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    let subnet = network(&arm);
    let cluster = res("rg1", CLUSTER);
    let mut body = cluster_body(&subnet, "10.0.0.0/16", "10.0.0.10");
    body["properties"]["disableLocalAccounts"] = json!(true);
    assert_eq!(
        arm.put(&cluster, AKS, body.clone()).expect(400).code(),
        "BadRequest",
        "local accounts off needs Entra ID"
    );
    body["properties"]["aadProfile"] =
        json!({"managed": true, "enableAzureRBAC": true, "adminGroupObjectIDs": ["admins"]});
    assert_eq!(arm.put(&cluster, AKS, body.clone()).expect(400).code(), "InvalidRequestContent", "group ids are GUIDs");
    body["properties"]["aadProfile"]["adminGroupObjectIDs"] = json!(["9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"]);
    let r = arm.put(&cluster, AKS, body.clone()).expect(201);
    assert_eq!(r.body["properties"]["aadProfile"]["tenantID"], matih_azure_emulator::DEFAULT_TENANT_ID);

    let creds = arm.post(&res("rg1", &format!("{CLUSTER}/listClusterUserCredential")), AKS).expect(200);
    let b64 = base64::engine::general_purpose::STANDARD;
    let yaml = String::from_utf8(b64.decode(creds.body["kubeconfigs"][0]["value"].as_str().unwrap()).unwrap()).unwrap();
    assert!(yaml.contains("command: kubelogin") && !yaml.contains("token:"), "{yaml}");

    let mut off = arm.get(&cluster, AKS).expect(200).body;
    off["properties"].as_object_mut().unwrap().remove("aadProfile");
    off["properties"].as_object_mut().unwrap().remove("disableLocalAccounts");
    off["properties"].as_object_mut().unwrap().remove("agentPoolProfiles");
    assert_eq!(arm.put(&cluster, AKS, off).expect(400).code(), "BadRequest");
}

#[test]
fn a_pod_subnet_stays_in_use_for_a_while_after_its_cluster_is_gone() {
    let linger = Duration::from_millis(1500);
    let em = AzureEmulator::start(Options { link_linger: linger, ..Options::default() });
    let arm = Arm::new(&em);
    arm.group("rg1");
    let r =
        arm.vnet("rg1", "v1", "10.240.0.0/16", &[("nodes", "10.240.0.0/20"), ("pods", "10.240.64.0/18")]).expect(201);
    let nodes = r.body["properties"]["subnets"][0]["id"].as_str().unwrap().to_string();
    let pods = r.body["properties"]["subnets"][1]["id"].as_str().unwrap().to_string();
    let mut body = cluster_body(&nodes, "10.0.0.0/16", "10.0.0.10");
    body["properties"]["agentPoolProfiles"][0]["podSubnetID"] = json!(pods);
    arm.put(&res("rg1", CLUSTER), AKS, body).expect(201);
    em.complete_operations();
    arm.delete(&res("rg1", CLUSTER), AKS).expect(202);
    em.complete_operations();
    let gone = Instant::now();
    let r = arm.delete(&pods, NET).expect(400);
    assert_eq!(r.code(), "InUseSubnetCannotBeDeleted");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("serviceAssociationLinks"), "{:#}", r.body);
    arm.delete(&nodes, NET).expect(202);
    std::thread::sleep(linger.saturating_sub(gone.elapsed()) + Duration::from_millis(100));
    arm.delete(&pods, NET).expect(202);
}
