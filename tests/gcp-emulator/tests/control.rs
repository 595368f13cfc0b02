//! What tests steer and what the wire looks like: authentication, throttling, injected errors,
//! latency, call counts and the request log, raw edits (drift), error bodies, and the
//! `gcp-emulator` binary. Raw HTTP where the clients cannot express something.

mod common;

use std::io::BufRead;
use std::time::{Duration, Instant};

use common::*;
use google_cloud_compute_v1::model::{Address, Network};
use google_cloud_gax::error::rpc::Code;
use google_cloud_lro::Poller;
use matih_gcp_emulator::{GcpEmulator, Options, Throttle};
use serde_json::json;

fn network(name: &str) -> Network {
    model(json!({"name": name, "autoCreateSubnetworks": false}))
}

#[test]
fn a_missing_or_wrong_token_is_refused() {
    run(|| async {
        let em = GcpEmulator::start(Options { token: Some("t0k".into()), ..Options::default() });
        let gcp = Gcp::new(&em).await;
        // Anonymous credentials send no Authorization header.
        let e = gcp.networks.get().set_project(P).set_network("n").send().await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(401), Code::Unauthenticated));
        let e =
            gcp.gke.get_cluster().set_name(format!("projects/{P}/locations/l/clusters/c")).send().await.unwrap_err();
        assert_eq!(code(&e), Code::Unauthenticated);
        let path = format!("/compute/v1/projects/{P}/global/networks/n");
        let r = raw(&em.url(), "GET", &path, None, &[("Authorization", "Bearer wrong")]).expect(401);
        assert_eq!(r.body["error"]["status"], "UNAUTHENTICATED");
        assert!(r.header("WWW-Authenticate").is_some());
        let r = raw(&em.url(), "GET", &path, None, &[("Authorization", "Bearer t0k")]).expect(404);
        assert_eq!(r.body["error"]["errors"][0]["reason"], "notFound");
    })
}

#[test]
fn throttling_in_both_flavours() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        em.throttle_next(1, Throttle::TooManyRequests);
        let e = gcp.networks.insert().set_project(P).set_body(network("n")).send().await.unwrap_err();
        assert_eq!(
            (e.http_status_code(), code(&e), reason(&e).as_str()),
            (Some(429), Code::ResourceExhausted, "rateLimitExceeded")
        );
        em.throttle_next(2, Throttle::RateLimitExceeded);
        for _ in 0..2 {
            let e = gcp.networks.insert().set_project(P).set_body(network("n")).send().await.unwrap_err();
            assert_eq!(
                (e.http_status_code(), code(&e), reason(&e).as_str()),
                (Some(403), Code::PermissionDenied, "rateLimitExceeded")
            );
        }
        em.throttle_next(1, Throttle::TooManyRequests);
        let e = gcp
            .iam
            .get_service_account()
            .set_name(format!("projects/{P}/serviceAccounts/x@y"))
            .send()
            .await
            .unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(429), Code::ResourceExhausted));
        gcp.networks.insert().set_project(P).set_body(network("n")).send().await.unwrap();
        assert_eq!(em.resources("compute.networks").len(), 1, "throttled requests did nothing");
    })
}

#[test]
fn an_injected_error_hits_the_next_matching_request_only() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        em.fail_next("POST", "compute.networks", 503, "UNAVAILABLE", "The service is currently unavailable.");
        let e = gcp.networks.get().set_project(P).set_network("n").send().await.unwrap_err();
        assert_eq!(code(&e), Code::NotFound, "a GET does not match");
        let e = gcp.networks.insert().set_project(P).set_body(network("n")).send().await.unwrap_err();
        assert_eq!(
            (e.http_status_code(), code(&e), reason(&e).as_str()),
            (Some(503), Code::Unavailable, "backendError")
        );
        assert_eq!(message(&e), "The service is currently unavailable.");
        gcp.networks.insert().set_project(P).set_body(network("n")).send().await.unwrap();

        em.fail_next("GET", "container.clusters", 500, "INTERNAL", "boom");
        let e =
            gcp.gke.get_cluster().set_name(format!("projects/{P}/locations/l/clusters/c")).send().await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e), message(&e).as_str()), (Some(500), Code::Internal, "boom"));
        assert!(e.status().unwrap().details.is_empty(), "no legacy errors[] for container");

        // A failed poll: the poller's polling error policy keeps going on UNAVAILABLE.
        em.fail_next("GET", "operations", 503, "UNAVAILABLE", "try again");
        let op = gcp.networks.insert().set_project(P).set_body(network("m")).poller().until_done().await.unwrap();
        assert!(op.to_result().is_ok());
        assert!(em.requests().iter().any(|r| r.status == 503 && r.path.contains("/global/operations/")));
    })
}

#[test]
fn latency_delays_every_answer() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        em.set_latency(Duration::from_millis(250));
        let start = Instant::now();
        gcp.networks.get().set_project(P).set_network("n").send().await.unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(250), "answered after {:?}", start.elapsed());
    })
}

#[test]
fn calls_and_requests_are_recorded() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        gcp.network("n").await;
        gcp.addresses
            .insert()
            .set_project(P)
            .set_region(REGION)
            .set_body(model::<Address>(json!({"name": "a"})))
            .send()
            .await
            .unwrap();
        let a = gcp.addresses.get().set_project(P).set_region(REGION).set_address("a").send().await.unwrap();
        gcp.addresses
            .set_labels()
            .set_project(P)
            .set_region(REGION)
            .set_resource("a")
            .set_body(model::<google_cloud_compute_v1::model::RegionSetLabelsRequest>(
                json!({"labels": {"k": "v"}, "labelFingerprint": json_of(&a)["labelFingerprint"]}),
            ))
            .send()
            .await
            .unwrap();
        gcp.gke.list_node_pools().set_parent(format!("projects/{P}/locations/l/clusters/c")).send().await.unwrap_err();
        raw(&em.url(), "GET", "/storage/v1/b", None, &[]).expect(404);
        let calls: Vec<(String, u64)> = em.calls().into_iter().collect();
        let expected = [
            ("GET compute.addresses", 1),
            ("GET container.nodePools", 1),
            ("GET operations", 1),
            ("GET unknown", 1),
            ("POST compute.addresses", 1),
            ("POST compute.addresses:setLabels", 1),
            ("POST compute.networks", 1),
        ];
        assert_eq!(calls, expected.map(|(k, v)| (k.to_string(), v)));
        let log = em.requests();
        assert_eq!(log.len(), 7);
        assert_eq!((log[0].method.as_str(), log[0].status), ("POST", 200));
        assert_eq!(log[0].path, format!("/compute/v1/projects/{P}/global/networks"));
        assert!(log[0].query.contains("$alt=json") && log[0].query.contains("$apiVersion="), "{:?}", log[0]);
        let gke = log.iter().find(|r| r.path.contains("/nodePools")).unwrap();
        assert!(gke.query.contains("$alt=json;enum-encoding=int"), "{gke:?}");
        em.clear_requests();
        assert!(em.calls().is_empty() && em.requests().is_empty());
    })
}

#[test]
fn raw_edits_show_as_drift() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        gcp.vpc("n").await;
        let path = format!("projects/{P}/regions/{REGION}/subnetworks/nodes");
        em.patch_raw(&path, |s| s["privateIpGoogleAccess"] = json!(true));
        let s = gcp.subnetworks.get().set_project(P).set_region(REGION).set_subnetwork("nodes").send().await.unwrap();
        assert_eq!(s.private_ip_google_access, Some(true));
        let mut copy = em.get(&path).unwrap();
        copy["description"] = json!("by hand");
        em.put_raw(&path, copy);
        assert_eq!(em.get(&path).unwrap()["description"], "by hand");
        assert!(em.delete_raw(&path));
        let e =
            gcp.subnetworks.get().set_project(P).set_region(REGION).set_subnetwork("nodes").send().await.unwrap_err();
        assert_eq!(reason(&e), "notFound");
        assert!(!em.delete_raw(&path));
        // A resource stored raw is served like any other.
        em.put_raw(&format!("projects/{P}/global/firewalls/raw"), json!({"name": "raw", "priority": 1}));
        let f = gcp.firewalls.get().set_project(P).set_firewall("raw").send().await.unwrap();
        assert_eq!(f.priority, Some(1));
        assert_eq!(em.resources("compute.firewalls").len(), 1);
    })
}

#[test]
fn the_wire_as_the_clients_see_it() {
    let em = GcpEmulator::start(Options::default());
    let url = em.url();
    // Container bodies carry enums as integers; they are stored as names.
    let body = json!({"cluster": {"name": "c", "initialNodeCount": 1, "releaseChannel": {"channel": 3},
        "networkConfig": {"datapathProvider": 2}}});
    let path = format!("/compute/v1/projects/{P}/global/networks?$alt=json&$apiVersion=2026-09-01");
    raw(&url, "POST", &path, Some(&json!({"name": "default", "autoCreateSubnetworks": true})), &[]).expect(200);
    let r = raw(
        &url,
        "POST",
        &format!("/v1/projects/{P}/locations/us-central1/clusters?$alt=json;enum-encoding=int"),
        Some(&body),
        &[],
    )
    .expect(200);
    assert_eq!(r.body["operationType"], "CREATE_CLUSTER");
    let c = em.get(&format!("projects/{P}/locations/us-central1/clusters/c")).unwrap();
    assert_eq!(
        (c["releaseChannel"]["channel"].clone(), c["networkConfig"]["datapathProvider"].clone()),
        (json!("STABLE"), json!("ADVANCED_DATAPATH"))
    );
    assert_eq!(c["subnetwork"], "default", "an auto-mode network's own subnetwork");
    // Empty answers are `{}` or 204; unknown paths are Google-shaped 404s.
    raw(
        &url,
        "POST",
        &format!("/dns/v1/projects/{P}/managedZones"),
        Some(&json!({"name": "z", "dnsName": "z.example."})),
        &[],
    )
    .expect(200);
    let r = raw(&url, "DELETE", &format!("/dns/v1/projects/{P}/managedZones/z"), None, &[]).expect(204);
    assert!(r.body.is_null());
    raw(&url, "POST", &format!("/v1/projects/{P}/serviceAccounts"), Some(&json!({"accountId": "matih-sa"})), &[])
        .expect(200);
    let r = raw(
        &url,
        "DELETE",
        &format!("/v1/projects/{P}/serviceAccounts/matih-sa@{P}.iam.gserviceaccount.com"),
        None,
        &[],
    )
    .expect(200);
    assert_eq!(r.body, json!({}));
    let r = raw(&url, "GET", "/compute/v1/projects/p/zones/z/instances", None, &[]).expect(404);
    assert_eq!((r.body["error"]["code"].clone(), r.body["error"]["status"].clone()), (json!(404), json!("NOT_FOUND")));
    let r = raw(
        &url,
        "POST",
        &format!("/v1/projects/{P}/locations/us-central1/clusters/c:startIpRotation"),
        Some(&json!({})),
        &[],
    )
    .expect(501);
    assert_eq!(r.body["error"]["status"], "UNIMPLEMENTED");
    // Malformed JSON is a 400 in the API's shape.
    let r =
        raw(&url, "POST", &format!("/compute/v1/projects/{P}/global/firewalls"), Some(&json!("not an object")), &[])
            .expect(400);
    assert_eq!(r.body["error"]["errors"][0]["reason"], "invalid");
}

#[test]
fn concurrent_clients_see_one_consistent_state() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        let inserts = (0..8).map(|i| {
            gcp.addresses
                .insert()
                .set_project(P)
                .set_region(REGION)
                .set_body(model::<Address>(json!({"name": format!("ip{i}")})))
                .poller()
                .until_done()
        });
        for op in futures_join_all(inserts).await {
            op.unwrap().to_result().unwrap();
        }
        let ips: std::collections::HashSet<_> =
            em.resources("compute.addresses").iter().map(|a| a["address"].clone()).collect();
        assert_eq!(ips.len(), 8);
    })
}

/// Drives futures concurrently on the current task (no `futures` crate needed).
async fn futures_join_all<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in fs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.expect("all ready")).collect()
}

#[test]
fn the_binary_serves_until_killed() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gcp-emulator"))
        .args(["--token", "t0k", "--kube-endpoint", "127.0.0.1:6443", "--operation-delay-ms", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("GCP_ENDPOINT=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let path = format!("/compute/v1/projects/{P}/global/networks/n");
    raw(&url, "GET", &path, None, &[("Authorization", "Bearer t0k")]).expect(404);
    raw(&url, "GET", &path, None, &[]).expect(401);
    child.kill().unwrap();
    child.wait().unwrap();
}
