//! Compute Engine through the official `google-cloud-compute-v1` client: networks, subnetworks,
//! firewalls, routers and addresses, their operations over time, and the rules compute enforces.

mod common;

use std::time::{Duration, Instant};

use common::*;
use google_cloud_compute_v1::model::{Address, Firewall, Network, RegionSetLabelsRequest, Router, Subnetwork};
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::paginator::ItemPaginator;
use google_cloud_lro::Poller;
use matih_gcp_emulator::{GcpEmulator, Options};
use serde_json::json;

/// A subnetwork to insert (name, range, secondary ranges) and why it is refused.
type Case = (&'static str, &'static str, &'static [(&'static str, &'static str)], &'static str);

fn emulator() -> GcpEmulator {
    GcpEmulator::start(Options::default())
}

#[test]
fn networks_are_created_read_listed_and_deleted() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        let op = gcp
            .networks
            .insert()
            .set_project(P)
            .set_body(model::<Network>(
                json!({"name": "matih-net", "autoCreateSubnetworks": false, "description": "d"}),
            ))
            .send()
            .await
            .unwrap();
        let op = json_of(&op);
        assert_eq!(op["status"], "PENDING", "{op}");
        assert_eq!(op["operationType"], "insert");
        assert!(
            op["targetLink"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/compute/v1/projects/{P}/global/networks/matih-net"))
        );
        let done = gcp
            .networks
            .get_operation()
            .set_project(P)
            .set_operation(op["name"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(json_of(&done)["status"], "DONE");

        let net = json_of(&gcp.networks.get().set_project(P).set_network("matih-net").send().await.unwrap());
        assert_eq!(net["autoCreateSubnetworks"], false);
        assert_eq!(net["routingConfig"]["routingMode"], "REGIONAL");
        assert_eq!(net["mtu"], 1460);
        assert_eq!(net["selfLink"], format!("{}/compute/v1/projects/{P}/global/networks/matih-net", em.url()));
        assert!(net["id"].as_str().is_some_and(|id| id.parse::<u64>().is_ok()), "{net}");
        gcp.subnet("nodes", "matih-net", "10.0.0.0/20", &[]).await;
        let net = json_of(&gcp.networks.get().set_project(P).set_network("matih-net").send().await.unwrap());
        assert_eq!(
            net["subnetworks"][0],
            format!("{}/compute/v1/projects/{P}/regions/{REGION}/subnetworks/nodes", em.url())
        );

        let list = gcp.networks.list().set_project(P).send().await.unwrap();
        assert_eq!(json_of(&list)["items"].as_array().unwrap().len(), 1);

        gcp.subnetworks
            .delete()
            .set_project(P)
            .set_region(REGION)
            .set_subnetwork("nodes")
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        gcp.networks
            .delete()
            .set_project(P)
            .set_network("matih-net")
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        let e = gcp.networks.get().set_project(P).set_network("matih-net").send().await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e), reason(&e).as_str()), (Some(404), Code::NotFound, "notFound"));
        assert!(em.resources("compute.networks").is_empty());
    })
}

#[test]
fn operations_go_pending_running_done_over_the_delay() {
    run(|| async {
        let em = GcpEmulator::start(Options { operation_delay: Duration::from_millis(600), ..Options::default() });
        let gcp = Gcp::new(&em).await;
        let op = gcp
            .networks
            .insert()
            .set_project(P)
            .set_body(model::<Network>(json!({"name": "n", "autoCreateSubnetworks": false})))
            .send()
            .await
            .unwrap();
        let name = op.name.clone().unwrap();
        let start = Instant::now();
        let mut seen: Vec<String> = Vec::new();
        loop {
            let op = gcp.networks.get_operation().set_project(P).set_operation(&name).send().await.unwrap();
            let s = json_of(&op)["status"].as_str().unwrap().to_string();
            if seen.last() != Some(&s) {
                seen.push(s.clone());
            }
            if s == "DONE" {
                assert_eq!(op.progress, Some(100));
                assert!(op.end_time.is_some());
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "not done: {seen:?}");
            tokio::time::sleep(Duration::from_millis(20)).await; // a client's poll interval
        }
        assert_eq!(seen, ["PENDING", "RUNNING", "DONE"]);
        assert!(start.elapsed() >= Duration::from_millis(550), "done after {:?}", start.elapsed());
    })
}

#[test]
fn the_poller_and_wait_see_the_operation_through() {
    run(|| async {
        let em = GcpEmulator::start(Options { operation_delay: Duration::from_millis(300), ..Options::default() });
        let gcp = Gcp::new(&em).await;
        let start = Instant::now();
        let op = gcp
            .networks
            .insert()
            .set_project(P)
            .set_body(model::<Network>(json!({"name": "n", "autoCreateSubnetworks": false})))
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        assert_eq!(json_of(&op)["status"], "DONE");
        assert!(start.elapsed() >= Duration::from_millis(250));
        assert!(em.calls()["GET operations"] >= 2, "{:?}", em.calls());

        // `wait` holds the answer until the operation is done.
        let op = gcp
            .subnetworks
            .insert()
            .set_project(P)
            .set_region(REGION)
            .set_body(model::<Subnetwork>(
                json!({"name": "s", "network": "global/networks/n", "ipCidrRange": "10.0.0.0/24"}),
            ))
            .send()
            .await
            .unwrap();
        let path = format!("/compute/v1/projects/{P}/regions/{REGION}/operations/{}/wait", op.name.unwrap());
        let url = em.url();
        let r = tokio::task::spawn_blocking(move || raw(&url, "POST", &path, Some(&json!({})), &[]))
            .await
            .unwrap()
            .expect(200);
        assert_eq!(r.body["status"], "DONE");
        assert_eq!(r.body["region"], format!("{}/compute/v1/projects/{P}/regions/{REGION}", em.url()));
    })
}

#[test]
fn a_failed_operation_is_done_with_its_error() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        em.fail_next_operation(
            "compute.networks",
            "QUOTA_EXCEEDED",
            "Quota 'NETWORKS' exceeded.  Limit: 5.0 globally.",
        );
        let body = model::<Network>(json!({"name": "n", "autoCreateSubnetworks": false}));
        // The poller answers the failed operation (not an error): `to_result()` turns it into one.
        let op = gcp.networks.insert().set_project(P).set_body(body.clone()).poller().until_done().await.unwrap();
        let v = json_of(&op);
        assert_eq!(
            (v["status"].clone(), v["error"]["errors"][0]["code"].clone()),
            (json!("DONE"), json!("QUOTA_EXCEEDED"))
        );
        assert_eq!((v["httpErrorStatusCode"].clone(), v["httpErrorMessage"].clone()), (json!(403), json!("FORBIDDEN")));
        assert!(v["error"]["errors"][0]["message"].as_str().unwrap().contains("Quota 'NETWORKS' exceeded"));
        assert!(op.to_result().is_err());
        assert!(em.get(&format!("projects/{P}/global/networks/n")).is_none(), "a failed insert leaves nothing");
        // The raw operation carries compute's error fields.
        let op = gcp.networks.insert().set_project(P).set_body(body).send().await.unwrap();
        let done =
            json_of(&gcp.networks.get_operation().set_project(P).set_operation(op.name.unwrap()).send().await.unwrap());
        assert!(done.get("error").is_none(), "only the next operation fails: {done}");
    })
}

#[test]
fn a_network_in_use_fails_its_delete_operation() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        gcp.network("n").await;
        gcp.firewalls
            .insert()
            .set_project(P)
            .set_body(model::<Firewall>(json!({
                "name": "allow-internal", "network": "global/networks/n",
                "allowed": [{"IPProtocol": "tcp", "ports": ["0-65535"]}], "sourceRanges": ["10.0.0.0/8"],
            })))
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        let op = gcp.networks.delete().set_project(P).set_network("n").send().await.unwrap();
        let done =
            json_of(&gcp.networks.get_operation().set_project(P).set_operation(op.name.unwrap()).send().await.unwrap());
        assert_eq!(done["status"], "DONE");
        assert_eq!(done["error"]["errors"][0]["code"], "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE");
        assert_eq!(done["httpErrorStatusCode"], 400);
        let op = gcp.networks.delete().set_project(P).set_network("n").poller().until_done().await.unwrap();
        assert!(
            op.error.as_ref().unwrap().errors[0]
                .message
                .as_ref()
                .unwrap()
                .contains(&format!("is already being used by 'projects/{P}/global/firewalls/allow-internal'"))
        );
        assert!(op.to_result().is_err());
        assert!(em.get(&format!("projects/{P}/global/networks/n")).is_some());

        gcp.firewalls
            .delete()
            .set_project(P)
            .set_firewall("allow-internal")
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        gcp.networks.delete().set_project(P).set_network("n").poller().until_done().await.unwrap().to_result().unwrap();
        assert!(em.get(&format!("projects/{P}/global/networks/n")).is_none());
    })
}

#[test]
fn network_rules() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        let insert = |v: serde_json::Value| gcp.networks.insert().set_project(P).set_body(model::<Network>(v)).send();
        let e = insert(json!({"name": "legacy"})).await.unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(400), "invalid"));
        assert!(message(&e).contains("autoCreateSubnetworks"), "{e:?}");
        let e = insert(json!({"name": "Bad_Name", "autoCreateSubnetworks": false})).await.unwrap_err();
        assert_eq!((code(&e), reason(&e).as_str()), (Code::InvalidArgument, "invalid"));
        insert(json!({"name": "n", "autoCreateSubnetworks": false})).await.unwrap();
        let e = insert(json!({"name": "n", "autoCreateSubnetworks": false})).await.unwrap_err();
        assert_eq!(
            (e.http_status_code(), code(&e), reason(&e).as_str()),
            (Some(409), Code::AlreadyExists, "alreadyExists")
        );

        // An auto-mode network comes with its subnetworks, which cannot be deleted alone.
        gcp.networks
            .insert()
            .set_project(P)
            .set_body(model::<Network>(json!({"name": "auto", "autoCreateSubnetworks": true})))
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        let s = json_of(
            &gcp.subnetworks
                .get()
                .set_project(P)
                .set_region("us-central1")
                .set_subnetwork("auto")
                .send()
                .await
                .unwrap(),
        );
        assert_eq!(s["ipCidrRange"], "10.128.0.0/20");
        let e = gcp
            .subnetworks
            .delete()
            .set_project(P)
            .set_region("us-central1")
            .set_subnetwork("auto")
            .send()
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "invalidResourceUsage");
        let e = gcp.try_subnet("custom", "auto", "10.130.0.0/20", &[]).await.unwrap_err();
        assert!(message(&e).contains("auto-mode"), "{e:?}");
        gcp.networks
            .delete()
            .set_project(P)
            .set_network("auto")
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        assert!(em.resources("compute.subnetworks").is_empty(), "auto subnetworks go with their network");
    })
}

#[test]
fn subnetwork_ranges_may_not_overlap() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        gcp.vpc("n").await;
        let s = json_of(
            &gcp.subnetworks.get().set_project(P).set_region(REGION).set_subnetwork("nodes").send().await.unwrap(),
        );
        assert_eq!(
            s["secondaryIpRanges"],
            json!([{"rangeName": "pods", "ipCidrRange": "10.4.0.0/14"}, {"rangeName": "services", "ipCidrRange": "10.8.0.0/20"}])
        );
        assert_eq!(s["gatewayAddress"], "10.0.0.1");
        assert!(s["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));

        let cases: [Case; 7] = [
            ("a", "10.0.8.0/24", &[], "conflicts with existing subnetwork 'nodes'"),
            ("b", "10.16.0.0/20", &[("x", "10.5.0.0/16")], "(secondary range 'pods')"),
            ("c", "10.16.0.0/20", &[("x", "10.16.0.0/24")], "conflicts with the primary range"),
            (
                "d",
                "10.16.0.0/20",
                &[("x", "10.20.0.0/16"), ("y", "10.20.4.0/24")],
                "conflicts with secondary range 'x'",
            ),
            ("e", "10.16.0.0/20", &[("x", "10.20.0.0/16"), ("x", "10.21.0.0/16")], "must be unique"),
            ("f", "10.16.0.0/20", &[("Bad", "10.20.0.0/16")], "Must be a match of regex"),
            ("g", "10.16.0.1/20", &[], "host bits"),
        ];
        for (name, range, secondary, why) in cases {
            let e = gcp.try_subnet(name, "n", range, secondary).await.unwrap_err();
            assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(400), "invalid"), "{name}: {e:?}");
            assert!(message(&e).contains(why), "{name}: {}", message(&e));
        }
        // Another network may reuse the range.
        gcp.network("other").await;
        gcp.subnet("again", "other", "10.0.0.0/20", &[]).await;
        let e = gcp.try_subnet("orphan", "missing", "10.9.0.0/24", &[]).await.unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(404), "notFound"));
    })
}

#[test]
fn a_resource_being_created_is_not_ready_for_others() {
    run(|| async {
        let em = GcpEmulator::start(Options { operation_delay: Duration::from_secs(30), ..Options::default() });
        let gcp = Gcp::new(&em).await;
        gcp.networks
            .insert()
            .set_project(P)
            .set_body(model::<Network>(json!({"name": "n", "autoCreateSubnetworks": false})))
            .send()
            .await
            .unwrap();
        let e = gcp
            .subnetworks
            .insert()
            .set_project(P)
            .set_region(REGION)
            .set_body(model::<Subnetwork>(
                json!({"name": "s", "network": "global/networks/n", "ipCidrRange": "10.0.0.0/24"}),
            ))
            .send()
            .await
            .unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(400), "resourceNotReady"));
        em.complete_operations();
        gcp.subnetworks
            .insert()
            .set_project(P)
            .set_region(REGION)
            .set_body(model::<Subnetwork>(
                json!({"name": "s", "network": "global/networks/n", "ipCidrRange": "10.0.0.0/24"}),
            ))
            .send()
            .await
            .unwrap();
    })
}

#[test]
fn subnetwork_patches_need_the_current_fingerprint() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        gcp.vpc("n").await;
        let get = || gcp.subnetworks.get().set_project(P).set_region(REGION).set_subnetwork("nodes").send();
        let mut s = get().await.unwrap();
        let stale = s.clone();
        s.private_ip_google_access = Some(true);
        gcp.subnetworks
            .patch()
            .set_project(P)
            .set_region(REGION)
            .set_subnetwork("nodes")
            .set_body(s)
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        let now = get().await.unwrap();
        assert_eq!(now.private_ip_google_access, Some(true));
        assert_ne!(now.fingerprint, stale.fingerprint);
        let e = gcp
            .subnetworks
            .patch()
            .set_project(P)
            .set_region(REGION)
            .set_subnetwork("nodes")
            .set_body(stale)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            (e.http_status_code(), code(&e), reason(&e).as_str()),
            (Some(412), Code::FailedPrecondition, "conditionNotMet")
        );
        // Adding a secondary range that overlaps another is refused too.
        let mut s = get().await.unwrap();
        let mut v = json_of(&s);
        v["secondaryIpRanges"].as_array_mut().unwrap().push(json!({"rangeName": "more", "ipCidrRange": "10.5.0.0/16"}));
        s = model(v);
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
        assert_eq!(reason(&e), "invalid");
    })
}

#[test]
fn firewalls_patch_update_and_rules() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        let fw = |v: serde_json::Value| gcp.firewalls.insert().set_project(P).set_body(model::<Firewall>(v)).send();
        let e = fw(json!({"name": "f", "allowed": [{"IPProtocol": "tcp"}]})).await.unwrap_err();
        assert_eq!(reason(&e), "notFound", "the default network does not exist: {e:?}");
        gcp.network("n").await;
        let e = fw(json!({"name": "f", "network": "global/networks/n"})).await.unwrap_err();
        assert_eq!(reason(&e), "invalid");
        let e = fw(
            json!({"name": "f", "network": "global/networks/n", "allowed": [{"IPProtocol": "icmp", "ports": ["80"]}]}),
        )
        .await
        .unwrap_err();
        assert!(message(&e).contains("Ports may only be given"), "{e:?}");
        let e = fw(json!({"name": "f", "network": "global/networks/n", "direction": "EGRESS", "sourceTags": ["a"],
        "allowed": [{"IPProtocol": "tcp"}]}))
        .await
        .unwrap_err();
        assert_eq!(reason(&e), "invalid");
        fw(json!({"name": "f", "network": "global/networks/n", "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}],
        "targetTags": ["gke-node"]}))
        .await
        .unwrap();
        let got = json_of(&gcp.firewalls.get().set_project(P).set_firewall("f").send().await.unwrap());
        assert_eq!((got["priority"].clone(), got["direction"].clone()), (json!(1000), json!("INGRESS")));
        assert_eq!(got["sourceRanges"], json!(["0.0.0.0/0"]));
        gcp.firewalls
            .patch()
            .set_project(P)
            .set_firewall("f")
            .set_body(model::<Firewall>(json!({"priority": 900})))
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        let got = json_of(&gcp.firewalls.get().set_project(P).set_firewall("f").send().await.unwrap());
        assert_eq!(
            (got["priority"].clone(), got["targetTags"].clone()),
            (json!(900), json!(["gke-node"])),
            "a patch merges"
        );
        gcp.firewalls
            .update()
            .set_project(P)
            .set_firewall("f")
            .set_body(model::<Firewall>(
                json!({"name": "f", "network": "global/networks/n", "denied": [{"IPProtocol": "udp"}]}),
            ))
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        let got = json_of(&gcp.firewalls.get().set_project(P).set_firewall("f").send().await.unwrap());
        assert!(got.get("targetTags").is_none() && got.get("allowed").is_none(), "an update replaces: {got}");
        assert_eq!((got["denied"][0]["IPProtocol"].clone(), got["priority"].clone()), (json!("udp"), json!(1000)));
    })
}

#[test]
fn routers_with_nat_check_their_references() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        gcp.vpc("n").await;
        let ip = gcp
            .addresses
            .insert()
            .set_project(P)
            .set_region(REGION)
            .set_body(model::<Address>(json!({"name": "nat-ip"})))
            .poller()
            .until_done()
            .await;
        ip.unwrap().to_result().unwrap();
        let router = |nat: serde_json::Value| {
            gcp.routers
                .insert()
                .set_project(P)
                .set_region(REGION)
                .set_body(model::<Router>(json!({"name": "r", "network": "global/networks/n", "nats": [nat]})))
                .send()
        };
        let e = router(json!({"name": "nat", "natIpAllocateOption": "MANUAL_ONLY", "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"}))
        .await
        .unwrap_err();
        assert!(message(&e).contains("MANUAL_ONLY allocation needs"), "{e:?}");
        let e = router(json!({"name": "nat", "natIpAllocateOption": "AUTO_ONLY", "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
        "subnetworks": [{"name": "nodes", "sourceIpRangesToNat": ["LIST_OF_SECONDARY_IP_RANGES"], "secondaryIpRangeNames": ["nope"]}]}))
    .await
    .unwrap_err();
        assert!(message(&e).contains("has no secondary range 'nope'"), "{e:?}");
        let e = router(json!({"name": "nat", "natIpAllocateOption": "MANUAL_ONLY", "natIps": ["regions/europe-west1/addresses/missing"],
        "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"}))
    .await
    .unwrap_err();
        assert_eq!(reason(&e), "notFound");
        router(json!({"name": "nat", "natIpAllocateOption": "MANUAL_ONLY", "natIps": ["nat-ip"],
        "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
        "subnetworks": [{"name": "nodes", "sourceIpRangesToNat": ["PRIMARY_IP_RANGE", "LIST_OF_SECONDARY_IP_RANGES"], "secondaryIpRangeNames": ["pods"]}]}))
    .await
    .unwrap();
        let r = json_of(&gcp.routers.get().set_project(P).set_region(REGION).set_router("r").send().await.unwrap());
        let addr = format!("{}/compute/v1/projects/{P}/regions/{REGION}/addresses/nat-ip", em.url());
        assert_eq!(r["nats"][0]["natIps"], json!([addr]));
        // The address is in use by the router now, and the subnetwork too.
        let a =
            json_of(&gcp.addresses.get().set_project(P).set_region(REGION).set_address("nat-ip").send().await.unwrap());
        assert_eq!(a["status"], "IN_USE");
        let e =
            gcp.addresses.delete().set_project(P).set_region(REGION).set_address("nat-ip").send().await.unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(400), "resourceInUseByAnotherResource"));
        let e = gcp
            .subnetworks
            .delete()
            .set_project(P)
            .set_region(REGION)
            .set_subnetwork("nodes")
            .send()
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "resourceInUseByAnotherResource");

        // A patch with a stale fingerprint is refused; one without or with the current one goes.
        let current: Router = gcp.routers.get().set_project(P).set_region(REGION).set_router("r").send().await.unwrap();
        let mut stale = json_of(&current);
        stale["fingerprint"] = json!("c3RhbGUtZnA=");
        let e = gcp
            .routers
            .patch()
            .set_project(P)
            .set_region(REGION)
            .set_router("r")
            .set_body(model::<Router>(stale))
            .send()
            .await
            .unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(412), "conditionNotMet"));
        let mut v = json_of(&current);
        v["nats"][0]["minPortsPerVm"] = json!(128);
        gcp.routers
            .patch()
            .set_project(P)
            .set_region(REGION)
            .set_router("r")
            .set_body(model::<Router>(v))
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        assert_eq!(
            em.get(&format!("projects/{P}/regions/{REGION}/routers/r")).unwrap()["nats"][0]["minPortsPerVm"],
            128
        );
        // An update replaces: without NATs the address is free again.
        let bare = model::<Router>(json!({"name": "r", "network": "global/networks/n"}));
        let op = gcp
            .routers
            .update()
            .set_project(P)
            .set_region(REGION)
            .set_router("r")
            .set_body(bare)
            .poller()
            .until_done()
            .await;
        op.unwrap().to_result().unwrap();
        let a =
            json_of(&gcp.addresses.get().set_project(P).set_region(REGION).set_address("nat-ip").send().await.unwrap());
        assert_eq!(a["status"], "RESERVED");
        assert!(a.get("users").is_none());
        gcp.routers
            .delete()
            .set_project(P)
            .set_region(REGION)
            .set_router("r")
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        assert!(em.resources("compute.routers").is_empty());
    })
}

#[test]
fn addresses_get_stable_unique_ips_and_labels() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        let mut ips = Vec::new();
        for name in ["a", "b"] {
            gcp.addresses
                .insert()
                .set_project(P)
                .set_region(REGION)
                .set_body(model::<Address>(json!({"name": name, "labels": {"matih-owner": "dev"}})))
                .poller()
                .until_done()
                .await
                .unwrap()
                .to_result()
                .unwrap();
            let a =
                json_of(&gcp.addresses.get().set_project(P).set_region(REGION).set_address(name).send().await.unwrap());
            assert_eq!(
                (a["status"].clone(), a["addressType"].clone(), a["networkTier"].clone()),
                (json!("RESERVED"), json!("EXTERNAL"), json!("PREMIUM"))
            );
            ips.push(a["address"].as_str().unwrap().to_string());
        }
        assert_ne!(ips[0], ips[1]);
        let again =
            json_of(&gcp.addresses.get().set_project(P).set_region(REGION).set_address("a").send().await.unwrap());
        assert_eq!(again["address"], ips[0]);

        // setLabels needs the current fingerprint.
        let fp = again["labelFingerprint"].as_str().unwrap().to_string();
        let set = |fp: &str, labels: serde_json::Value| {
            gcp.addresses
                .set_labels()
                .set_project(P)
                .set_region(REGION)
                .set_resource("a")
                .set_body(model::<RegionSetLabelsRequest>(json!({"labels": labels, "labelFingerprint": fp})))
                .send()
        };
        set(&fp, json!({"matih-owner": "dev", "env": "x"})).await.unwrap();
        let e = set(&fp, json!({})).await.unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(412), "conditionNotMet"));
        let a = json_of(&gcp.addresses.get().set_project(P).set_region(REGION).set_address("a").send().await.unwrap());
        assert_eq!(a["labels"], json!({"matih-owner": "dev", "env": "x"}));
        let e = set(a["labelFingerprint"].as_str().unwrap(), json!({"Bad": "x"})).await.unwrap_err();
        assert_eq!(reason(&e), "invalid");

        // Internal addresses come from their subnetwork.
        gcp.vpc("n").await;
        gcp.addresses
            .insert()
            .set_project(P)
            .set_region(REGION)
            .set_body(model::<Address>(json!({"name": "ilb", "addressType": "INTERNAL", "subnetwork": "nodes"})))
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        let a =
            json_of(&gcp.addresses.get().set_project(P).set_region(REGION).set_address("ilb").send().await.unwrap());
        assert_eq!(a["address"], "10.0.0.2");
        let e = gcp
            .addresses
            .insert()
            .set_project(P)
            .set_region(REGION)
            .set_body(model::<Address>(
                json!({"name": "ilb2", "addressType": "INTERNAL", "subnetwork": "nodes", "address": "10.0.0.2"}),
            ))
            .send()
            .await
            .unwrap_err();
        assert!(message(&e).contains("already being used"), "{e:?}");
        let e = gcp
            .subnetworks
            .delete()
            .set_project(P)
            .set_region(REGION)
            .set_subnetwork("nodes")
            .send()
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "resourceInUseByAnotherResource", "the internal address holds the subnetwork");
    })
}

#[test]
fn lists_filter_and_page() {
    run(|| async {
        let em = GcpEmulator::start(Options { page_size: 2, ..Options::default() });
        let gcp = Gcp::new(&em).await;
        for (name, env, desc) in [
            ("matih-a", "dev", "one"),
            ("matih-b", "prod", "two words"),
            ("other", "dev", "x"),
            ("matih-c", "dev", "y"),
        ] {
            gcp.addresses
                .insert()
                .set_project(P)
                .set_region(REGION)
                .set_body(model::<Address>(json!({"name": name, "labels": {"env": env}, "description": desc})))
                .send()
                .await
                .unwrap();
        }
        let names = |filter: &'static str| {
            let gcp = &gcp;
            async move {
                let mut items = gcp.addresses.list().set_project(P).set_region(REGION).set_filter(filter).by_item();
                let mut out = Vec::new();
                while let Some(a) = items.next().await {
                    out.push(a.unwrap().name.unwrap());
                }
                out
            }
        };
        assert_eq!(names("name = matih-a").await, ["matih-a"]);
        assert_eq!(names("name eq 'matih-.*'").await, ["matih-a", "matih-b", "matih-c"]);
        assert_eq!(names("labels.env = dev").await, ["matih-a", "matih-c", "other"]);
        assert_eq!(names("(labels.env = dev) (name != other)").await, ["matih-a", "matih-c"]);
        assert_eq!(names("description = \"two words\"").await, ["matih-b"]);
        assert_eq!(names("labels.env:*").await.len(), 4);
        let e = gcp
            .addresses
            .list()
            .set_project(P)
            .set_region(REGION)
            .set_filter("(name eq x) (labels.env = dev)")
            .send()
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "invalid");

        // Two per page by default; maxResults overrides; the token carries on.
        let first = gcp.addresses.list().set_project(P).set_region(REGION).send().await.unwrap();
        assert_eq!(first.items.len(), 2);
        let token = first.next_page_token.clone().expect("more pages");
        let second = gcp.addresses.list().set_project(P).set_region(REGION).set_page_token(token).send().await.unwrap();
        assert_eq!(second.items.len(), 2);
        assert!(second.next_page_token.as_deref().unwrap_or_default().is_empty());
        let one = gcp.addresses.list().set_project(P).set_region(REGION).set_max_results(3u32).send().await.unwrap();
        assert_eq!(one.items.len(), 3);
        let e = gcp.addresses.list().set_project(P).set_region(REGION).set_page_token("junk").send().await.unwrap_err();
        assert_eq!(e.http_status_code(), Some(400));
    })
}

#[test]
fn a_repeated_request_id_returns_the_first_operation() {
    run(|| async {
        let em = emulator();
        let gcp = Gcp::new(&em).await;
        let rid = "3f2b9a1e-8c4d-4e6f-9a0b-1c2d3e4f5a6b";
        let body = model::<Network>(json!({"name": "n", "autoCreateSubnetworks": false}));
        let first =
            gcp.networks.insert().set_project(P).set_request_id(rid).set_body(body.clone()).send().await.unwrap();
        let again =
            gcp.networks.insert().set_project(P).set_request_id(rid).set_body(body.clone()).send().await.unwrap();
        assert_eq!(first.name, again.name);
        assert_eq!(again.client_operation_id.as_deref(), Some(rid));
        assert_eq!(json_of(&again)["status"], "DONE", "the replay answers the operation as it is now");
        assert_eq!(em.resources("compute.networks").len(), 1);
        // Without the id, the same insert is a conflict; with a malformed one, it is refused.
        let e = gcp.networks.insert().set_project(P).set_body(body.clone()).send().await.unwrap_err();
        assert_eq!(reason(&e), "alreadyExists");
        let e =
            gcp.networks.insert().set_project(P).set_request_id("not-a-uuid").set_body(body).send().await.unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(400), "invalid"));
        // Deletes dedupe too: the second delete with the id does not 404.
        let rid2 = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";
        let d1 = gcp
            .networks
            .delete()
            .set_project(P)
            .set_network("n")
            .set_request_id(rid2)
            .poller()
            .until_done()
            .await
            .unwrap()
            .to_result()
            .unwrap();
        let d2 = gcp.networks.delete().set_project(P).set_network("n").set_request_id(rid2).send().await.unwrap();
        assert_eq!(d1.name, d2.name);
    })
}
