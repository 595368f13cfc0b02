//! GKE through the official `google-cloud-container-v1` client: clusters, node pools, their
//! operations, and the rules GKE enforces on a VPC-native private cluster.

// Some fields read here (`current_node_count`, `private_endpoint`, `status_message`, the
// `SET_LABELS` operation type) are deprecated in the API, and still served.
#![allow(deprecated)]

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use google_cloud_container_v1::model::{
    CreateClusterRequest, CreateNodePoolRequest, Operation, SetLabelsRequest, SetNetworkPolicyRequest,
    SetNodePoolAutoscalingRequest, UpdateClusterRequest, UpdateNodePoolRequest, cluster, node_pool, operation,
};
use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::Code;
use matih_gcp_emulator::{DEFAULT_CLUSTER_VERSION, GcpEmulator, Options};
use serde_json::{Value, json};

const LOC: &str = "projects/matih-test/locations/europe-west1";
const CLUSTER: &str = "projects/matih-test/locations/europe-west1/clusters/matih";

/// The cluster the provider asks for: VPC-native on `nodes`, private nodes, Workload Identity,
/// Calico, one autoscaled pool.
fn cluster_body() -> Value {
    json!({
        "name": "matih",
        "network": "net",
        "subnetwork": "nodes",
        "resourceLabels": {"matih-owner": "dev"},
        "ipAllocationPolicy": {"useIpAliases": true, "clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"},
        "privateClusterConfig": {"enablePrivateNodes": true, "masterIpv4CidrBlock": "172.16.0.0/28"},
        "workloadIdentityConfig": {"workloadPool": format!("{P}.svc.id.goog")},
        "releaseChannel": {"channel": "REGULAR"},
        "addonsConfig": {"networkPolicyConfig": {"disabled": false}},
        "networkPolicy": {"provider": "CALICO", "enabled": true},
        "nodePools": [{
            "name": "system", "initialNodeCount": 1,
            "autoscaling": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 3},
            "config": {"machineType": "e2-standard-4", "workloadMetadataConfig": {"mode": "GKE_METADATA"}},
        }],
    })
}

async fn create(gcp: &Gcp, cluster: Value) -> Result<Operation, Error> {
    gcp.gke
        .create_cluster()
        .with_request(model::<CreateClusterRequest>(json!({"parent": LOC, "cluster": cluster})))
        .send()
        .await
}

/// Polls a GKE operation until it is done; returns it and every status seen.
async fn wait(gcp: &Gcp, op: &Operation) -> (Operation, Vec<operation::Status>) {
    let name = format!("{LOC}/operations/{}", op.name);
    let start = Instant::now();
    let mut seen = vec![op.status.clone()];
    loop {
        let op = gcp.gke.get_operation().set_name(&name).send().await.unwrap();
        if seen.last() != Some(&op.status) {
            seen.push(op.status.clone());
        }
        if op.status == operation::Status::Done {
            return (op, seen);
        }
        assert!(start.elapsed() < Duration::from_secs(5), "not done: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await; // a client's poll interval
    }
}

async fn running(gcp: &Gcp) {
    let op = create(gcp, cluster_body()).await.unwrap();
    let (done, _) = wait(gcp, &op).await;
    assert!(done.error.is_none(), "{done:?}");
}

#[test]
fn a_cluster_is_created_read_listed_and_deleted() {
    run(|| async {
        let em = GcpEmulator::start(Options { operation_delay: Duration::from_millis(600), ..Options::default() });
        let gcp = Gcp::new(&em).await;
        gcp.vpc("net").await;
        let op = create(&gcp, cluster_body()).await.unwrap();
        assert_eq!(
            (op.status.clone(), op.operation_type.clone()),
            (operation::Status::Pending, operation::Type::CreateCluster)
        );
        assert!(op.target_link.ends_with(CLUSTER), "{op:?}");
        let c = gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap();
        assert_eq!(c.status, cluster::Status::Provisioning);
        assert!(c.endpoint.is_empty(), "no endpoint before the control plane is up");

        let (done, seen) = wait(&gcp, &op).await;
        assert_eq!(seen, [operation::Status::Pending, operation::Status::Running, operation::Status::Done]);
        assert!(done.error.is_none() && !done.end_time.is_empty());
        let c = gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap();
        assert_eq!(c.status, cluster::Status::Running);
        assert!(c.endpoint.starts_with("34."), "{}", c.endpoint);
        let ca = base64::engine::general_purpose::STANDARD
            .decode(&c.master_auth.as_ref().unwrap().cluster_ca_certificate)
            .unwrap();
        assert!(String::from_utf8(ca).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(c.current_master_version, DEFAULT_CLUSTER_VERSION);
        assert_eq!((c.location.as_str(), c.network.as_str(), c.subnetwork.as_str()), ("europe-west1", "net", "nodes"));
        assert_eq!(c.locations, ["europe-west1-a", "europe-west1-b", "europe-west1-c"]);
        assert_eq!(c.self_link, format!("{}/v1/{CLUSTER}", em.url()));
        assert_eq!(c.workload_identity_config.as_ref().unwrap().workload_pool, format!("{P}.svc.id.goog"));
        assert_eq!(
            c.network_config.as_ref().unwrap().subnetwork,
            format!("projects/{P}/regions/{REGION}/subnetworks/nodes")
        );
        let ip = c.ip_allocation_policy.as_ref().unwrap();
        assert_eq!(
            (ip.cluster_ipv4_cidr_block.as_str(), ip.services_ipv4_cidr_block.as_str()),
            ("10.4.0.0/14", "10.8.0.0/20")
        );
        assert_eq!(c.private_cluster_config.as_ref().unwrap().private_endpoint, "172.16.0.2");
        assert_eq!(c.resource_labels.get("matih-owner").map(String::as_str), Some("dev"));
        assert!(!c.label_fingerprint.is_empty() && !c.id.is_empty());
        assert_eq!(c.node_pools.len(), 1);
        let pool = &c.node_pools[0];
        assert_eq!((pool.name.as_str(), pool.status.clone()), ("system", node_pool::Status::Running));
        assert_eq!(pool.version, DEFAULT_CLUSTER_VERSION);
        assert_eq!(c.current_node_count, 3, "one node in each of three zones");
        // Enums the client sent as integers come back as names.
        let stored = em.get(CLUSTER).unwrap();
        assert_eq!(stored["releaseChannel"]["channel"], "REGULAR");
        assert_eq!(stored["networkPolicy"]["provider"], "CALICO");
        assert_eq!(stored["nodePools"][0]["config"]["workloadMetadataConfig"]["mode"], "GKE_METADATA");

        let config = gcp.gke.get_server_config().set_name(LOC).send().await.unwrap();
        assert_eq!(config.default_cluster_version, DEFAULT_CLUSTER_VERSION);
        assert!(config.valid_master_versions.contains(&"1.34.5-gke.1308000".to_string()), "{config:?}");
        let ops = gcp.gke.list_operations().set_parent(LOC).send().await.unwrap();
        assert_eq!(
            ops.operations.iter().map(|o| o.operation_type.clone()).collect::<Vec<_>>(),
            [operation::Type::CreateCluster]
        );
        let list = gcp.gke.list_clusters().set_parent(LOC).send().await.unwrap();
        assert_eq!(list.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["matih"]);
        let all = gcp.gke.list_clusters().set_parent(format!("projects/{P}/locations/-")).send().await.unwrap();
        assert_eq!(all.clusters.len(), 1);

        let op = gcp.gke.delete_cluster().set_name(CLUSTER).send().await.unwrap();
        assert_eq!(op.operation_type, operation::Type::DeleteCluster);
        assert_eq!(gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap().status, cluster::Status::Stopping);
        wait(&gcp, &op).await;
        let e = gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(404), Code::NotFound));
        assert!(em.resources("container.nodePools").is_empty(), "its pools went with it");
    })
}

#[test]
fn one_operation_at_a_time_per_cluster() {
    run(|| async {
        let em = GcpEmulator::start(Options { operation_delay: Duration::from_secs(30), ..Options::default() });
        let gcp = Gcp::new(&em).await;
        // The network and subnetwork, finished by hand rather than waited for.
        let network: google_cloud_compute_v1::model::Network =
            model(json!({"name": "net", "autoCreateSubnetworks": false}));
        gcp.networks.insert().set_project(P).set_body(network).send().await.unwrap();
        em.complete_operations();
        let subnet: google_cloud_compute_v1::model::Subnetwork = model(
            json!({"name": "nodes", "network": "global/networks/net", "ipCidrRange": "10.0.0.0/20",
        "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": "10.4.0.0/14"}, {"rangeName": "services", "ipCidrRange": "10.8.0.0/20"}]}),
        );
        gcp.subnetworks.insert().set_project(P).set_region(REGION).set_body(subnet).send().await.unwrap();
        em.complete_operations();
        create(&gcp, cluster_body()).await.unwrap();
        let pool = json!({"parent": CLUSTER, "nodePool": {"name": "apps", "initialNodeCount": 1}});
        let e = gcp
            .gke
            .create_node_pool()
            .with_request(model::<CreateNodePoolRequest>(pool.clone()))
            .send()
            .await
            .unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(400), Code::FailedPrecondition));
        assert!(message(&e).starts_with("Cluster is running incompatible operation operation-"), "{e:?}");
        let e = gcp.gke.delete_cluster().set_name(CLUSTER).send().await.unwrap_err();
        assert_eq!(code(&e), Code::FailedPrecondition);
        em.complete_operations();
        let op = gcp.gke.create_node_pool().with_request(model::<CreateNodePoolRequest>(pool)).send().await.unwrap();
        assert_eq!(op.operation_type, operation::Type::CreateNodePool);
    })
}

#[test]
fn cluster_rules() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        gcp.vpc("net").await;
        gcp.subnet("other", "net", "10.16.0.0/20", &[]).await;
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut c = cluster_body();
            edit(&mut c);
            c
        };
        let cases: Vec<(Value, &str)> = vec![
            (with(&|c| c["name"] = json!("Bad_Name")), "Must be a match of regex"),
            (with(&|c| c["network"] = json!("missing")), "Network \"missing\" does not exist."),
            (with(&|c| c["subnetwork"] = json!("missing")), "subnetworks/missing\" does not exist."),
            (
                with(&|c| c["ipAllocationPolicy"]["clusterSecondaryRangeName"] = json!("pods-missing")),
                "has no secondary range named \"pods-missing\"",
            ),
            (with(&|c| c["subnetwork"] = json!("other")), "has no secondary range named \"pods\""),
            (with(&|c| c["ipAllocationPolicy"]["useIpAliases"] = json!(false)), "use_ip_aliases"),
            (with(&|c| c["privateClusterConfig"] = json!({"enablePrivateNodes": true})), "needs a /28"),
            (with(&|c| c["privateClusterConfig"]["masterIpv4CidrBlock"] = json!("172.16.0.0/27")), "Must be a /28."),
            (
                with(&|c| c["privateClusterConfig"]["masterIpv4CidrBlock"] = json!("10.0.0.16/28")),
                "overlaps 10.0.0.0/20",
            ),
            (
                with(&|c| c["privateClusterConfig"]["masterIpv4CidrBlock"] = json!("10.4.0.0/28")),
                "overlaps 10.4.0.0/14",
            ),
            (
                with(&|c| c["addonsConfig"]["networkPolicyConfig"]["disabled"] = json!(true)),
                "network policy add-on is disabled",
            ),
            (with(&|c| c["networkConfig"] = json!({"datapathProvider": "ADVANCED_DATAPATH"})), "Dataplane V2"),
            (
                with(&|c| c["workloadIdentityConfig"]["workloadPool"] = json!("other.svc.id.goog")),
                "must be \"matih-test.svc.id.goog\"",
            ),
            (with(&|c| c["nodePools"][0]["autoscaling"]["minNodeCount"] = json!(5)), "is above the maximum 3"),
            (
                with(&|c| c["nodePools"][0]["initialNodeCount"] = json!(4)),
                "initial node count 4 is above the maximum 3",
            ),
            (with(&|c| c["nodePools"][0]["version"] = json!("1.34")), "must not be newer than the control plane"),
            (
                with(&|c| {
                    c["nodePools"][0]["config"]["serviceAccount"] = json!(format!("nodes@{P}.iam.gserviceaccount.com"))
                }),
                "does not exist",
            ),
            (with(&|c| c["workloadIdentityConfig"] = Value::Null), "GKE_METADATA needs Workload Identity"),
            (with(&|c| c["nodePools"][0]["management"] = json!({"autoUpgrade": false})), "must auto-upgrade"),
            (with(&|c| c["nodePools"] = json!([])), "initial_node_count must be greater than zero"),
        ];
        for (body, why) in cases {
            let e = create(&gcp, body).await.unwrap_err();
            assert_eq!((e.http_status_code(), code(&e)), (Some(400), Code::InvalidArgument), "{why}: {e:?}");
            assert!(message(&e).contains(why), "{why}: {}", message(&e));
        }
        assert!(em.resources("container.clusters").is_empty());
        running(&gcp).await;
        let e = create(&gcp, cluster_body()).await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(409), Code::AlreadyExists));
        // A second private cluster may not reuse the first one's control plane range.
        let mut second = cluster_body();
        second["name"] = json!("second");
        let e = create(&gcp, second).await.unwrap_err();
        assert!(message(&e).contains("control plane range of cluster"), "{e:?}");
        // The cluster holds its subnetwork and the ranges it uses.
        let e = gcp
            .subnetworks
            .delete()
            .set_project(P)
            .set_region(REGION)
            .set_subnetwork("nodes")
            .send()
            .await
            .unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(400), "resourceInUseByAnotherResource"));
        let mut s =
            gcp.subnetworks.get().set_project(P).set_region(REGION).set_subnetwork("nodes").send().await.unwrap();
        s.secondary_ip_ranges.retain(|r| r.range_name.as_deref() != Some("pods"));
        let e = gcp
            .subnetworks
            .patch()
            .set_project(P)
            .set_region(REGION)
            .set_subnetwork("nodes")
            .set_body(s)
            .send()
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "resourceInUseByAnotherResource");
    })
}

#[test]
fn node_pools_are_created_sized_updated_and_deleted() {
    run(|| async {
        let em = GcpEmulator::start(Options { operation_delay: Duration::from_millis(100), ..Options::default() });
        let gcp = Gcp::new(&em).await;
        gcp.vpc("net").await;
        running(&gcp).await;
        let pool_name = format!("{CLUSTER}/nodePools/apps");
        let op = gcp
        .gke
        .create_node_pool()
        .with_request(model::<CreateNodePoolRequest>(json!({"parent": CLUSTER, "nodePool": {
            "name": "apps", "initialNodeCount": 2, "locations": ["europe-west1-b"],
            "config": {"labels": {"tier": "apps"}, "taints": [{"key": "dedicated", "value": "apps", "effect": "NO_SCHEDULE"}]},
        }})))
        .send()
        .await
        .unwrap();
        assert_eq!(
            gcp.gke.get_node_pool().set_name(&pool_name).send().await.unwrap().status,
            node_pool::Status::Provisioning
        );
        wait(&gcp, &op).await;
        let pool = gcp.gke.get_node_pool().set_name(&pool_name).send().await.unwrap();
        assert_eq!((pool.status.clone(), pool.initial_node_count), (node_pool::Status::Running, 2));
        assert_eq!(pool.self_link, format!("{}/v1/{pool_name}", em.url()));
        assert_eq!(em.get(&pool_name).unwrap()["config"]["taints"][0]["effect"], "NO_SCHEDULE");
        let list = gcp.gke.list_node_pools().set_parent(CLUSTER).send().await.unwrap();
        assert_eq!(list.node_pools.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["system", "apps"]);
        assert_eq!(gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap().current_node_count, 3 + 2);

        let op = gcp.gke.set_node_pool_size().set_name(&pool_name).set_node_count(4).send().await.unwrap();
        assert_eq!(op.operation_type, operation::Type::SetNodePoolSize);
        wait(&gcp, &op).await;
        assert_eq!(em.node_count(&pool_name), Some(4));
        let autoscaling = |min: i32, max: i32| {
            model::<SetNodePoolAutoscalingRequest>(
                json!({"name": pool_name, "autoscaling": {"enabled": true, "minNodeCount": min, "maxNodeCount": max}}),
            )
        };
        let e = gcp.gke.set_node_pool_autoscaling().with_request(autoscaling(3, 2)).send().await.unwrap_err();
        assert_eq!(code(&e), Code::InvalidArgument);
        let op = gcp.gke.set_node_pool_autoscaling().with_request(autoscaling(1, 5)).send().await.unwrap();
        wait(&gcp, &op).await;
        assert_eq!(em.get(&pool_name).unwrap()["autoscaling"]["maxNodeCount"], 5);

        let update = |v: Value| {
            let mut req = json!({"name": pool_name});
            req.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
            model::<UpdateNodePoolRequest>(req)
        };
        let e =
            gcp.gke.update_node_pool().with_request(update(json!({"nodeVersion": "1.34"}))).send().await.unwrap_err();
        assert!(message(&e).contains("must not be newer"), "{e:?}");
        let op = gcp
        .gke
        .update_node_pool()
        .with_request(update(json!({"nodeVersion": "-", "labels": {"labels": {"tier": "web"}}, "workloadMetadataConfig": {"mode": "GKE_METADATA"}})))
        .send()
        .await
        .unwrap();
        assert_eq!(op.operation_type, operation::Type::UpgradeNodes);
        wait(&gcp, &op).await;
        let stored = em.get(&pool_name).unwrap();
        assert_eq!(stored["config"]["labels"], json!({"tier": "web"}));
        assert_eq!(stored["config"]["workloadMetadataConfig"]["mode"], "GKE_METADATA");
        assert_eq!(stored["status"], "RUNNING");

        let op = gcp.gke.delete_node_pool().set_name(&pool_name).send().await.unwrap();
        wait(&gcp, &op).await;
        let e = gcp.gke.get_node_pool().set_name(&pool_name).send().await.unwrap_err();
        assert_eq!(code(&e), Code::NotFound);
    })
}

#[test]
fn cluster_updates_labels_and_network_policy() {
    run(|| async {
        let em = GcpEmulator::start(Options { operation_delay: Duration::from_millis(100), ..Options::default() });
        let gcp = Gcp::new(&em).await;
        gcp.vpc("net").await;
        running(&gcp).await;
        let update = |u: Value| {
            gcp.gke
                .update_cluster()
                .with_request(model::<UpdateClusterRequest>(json!({"name": CLUSTER, "update": u})))
                .send()
        };
        let e = update(json!({"desiredMasterVersion": "1.35"})).await.unwrap_err();
        assert!(message(&e).contains("one minor version at a time"), "{e:?}");
        let e = update(json!({"desiredMasterVersion": "1.32"})).await.unwrap_err();
        assert!(message(&e).contains("cannot be downgraded"), "{e:?}");
        let e = update(json!({"desiredMasterVersion": "1.34", "desiredLoggingService": "none"})).await.unwrap_err();
        assert!(message(&e).contains("at most one field"), "{e:?}");
        let op = update(json!({"desiredMasterVersion": "1.34"})).await.unwrap();
        assert_eq!(op.operation_type, operation::Type::UpgradeMaster);
        assert_eq!(gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap().status, cluster::Status::Reconciling);
        wait(&gcp, &op).await;
        let c = gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap();
        assert_eq!(
            (c.status.clone(), c.current_master_version.as_str()),
            (cluster::Status::Running, "1.34.5-gke.1308000")
        );
        let op = update(json!({"desiredNodeVersion": "-"})).await.unwrap();
        wait(&gcp, &op).await;
        assert_eq!(
            gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap().node_pools[0].version,
            "1.34.5-gke.1308000"
        );
        let e = update(json!({"desiredDatapathProvider": "ADVANCED_DATAPATH"})).await.unwrap_err();
        assert_eq!(code(&e), Code::InvalidArgument);
        let e = update(json!({"desiredAddonsConfig": {"networkPolicyConfig": {"disabled": true}}})).await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(400), Code::FailedPrecondition));

        // Labels need the current fingerprint.
        let fp = c.label_fingerprint.clone();
        let set = |fp: &str| {
            gcp.gke
            .set_labels()
            .with_request(model::<SetLabelsRequest>(json!({"name": CLUSTER, "resourceLabels": {"matih-owner": "dev", "env": "x"}, "labelFingerprint": fp})))
            .send()
        };
        let op = set(&fp).await.unwrap();
        assert_eq!(op.operation_type, operation::Type::SetLabels);
        wait(&gcp, &op).await;
        let e = set(&fp).await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(400), Code::FailedPrecondition));
        let c = gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap();
        assert_eq!(c.resource_labels.len(), 2);
        assert_ne!(c.label_fingerprint, fp);

        // Network policy off, then the add-on may go.
        let op = gcp
            .gke
            .set_network_policy()
            .with_request(model::<SetNetworkPolicyRequest>(
                json!({"name": CLUSTER, "networkPolicy": {"provider": "CALICO", "enabled": false}}),
            ))
            .send()
            .await
            .unwrap();
        wait(&gcp, &op).await;
        let op = update(json!({"desiredAddonsConfig": {"networkPolicyConfig": {"disabled": true}}})).await.unwrap();
        wait(&gcp, &op).await;
        let e = gcp
            .gke
            .set_network_policy()
            .with_request(model::<SetNetworkPolicyRequest>(
                json!({"name": CLUSTER, "networkPolicy": {"provider": "CALICO", "enabled": true}}),
            ))
            .send()
            .await
            .unwrap_err();
        assert!(message(&e).contains("add-on is disabled"), "{e:?}");
    })
}

#[test]
fn a_failed_create_leaves_the_cluster_in_error() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        gcp.vpc("net").await;
        em.fail_next_operation(
            "container.clusters",
            "RESOURCE_EXHAUSTED",
            "Insufficient regional quota to satisfy request.",
        );
        let op = create(&gcp, cluster_body()).await.unwrap();
        let (done, _) = wait(&gcp, &op).await;
        let error = done.error.expect("the operation's error");
        assert_eq!(error.code, 8, "RESOURCE_EXHAUSTED");
        assert_eq!(done.status_message, "Insufficient regional quota to satisfy request.");
        let c = gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap();
        assert_eq!(c.status, cluster::Status::Error);
        // It can be deleted.
        let op = gcp.gke.delete_cluster().set_name(CLUSTER).send().await.unwrap();
        wait(&gcp, &op).await;
        assert!(em.resources("container.clusters").is_empty());
    })
}

#[test]
fn the_kube_endpoint_and_ca_are_configurable() {
    run(|| async {
        let em = GcpEmulator::start(Options {
            kube_endpoint: "127.0.0.1:6443".into(),
            cluster_ca_certificate: "Y2E=".into(),
            ..Options::default()
        });
        let gcp = Gcp::new(&em).await;
        gcp.vpc("net").await;
        running(&gcp).await;
        let c = gcp.gke.get_cluster().set_name(CLUSTER).send().await.unwrap();
        assert_eq!(c.endpoint, "127.0.0.1:6443");
        assert_eq!(c.master_auth.unwrap().cluster_ca_certificate, "Y2E=");
    })
}
