//! The fault proxy's GCP classifier in front of the emulator: the actions it names are the ones
//! the emulator counts, and a request that succeeded although the client saw it fail is safe to
//! send again with the same compute `requestId`.

mod common;

use std::net::SocketAddr;

use common::*;
use google_cloud_compute_v1::model::Network;
use google_cloud_gax::error::rpc::Code;
use matih_fault_proxy::{Fault, FaultProxy, Rule, gcp};
use matih_gcp_emulator::{GcpEmulator, Options};
use serde_json::json;

fn proxy(em: &GcpEmulator, rules: Vec<Rule>) -> FaultProxy {
    let upstream: SocketAddr = em.url().trim_start_matches("http://").parse().unwrap();
    FaultProxy::start(gcp::options(upstream, rules))
}

#[test]
fn a_lost_answer_is_replayed_by_request_id() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let fp = proxy(
            &em,
            vec![Rule::Action { name: "POST compute.networks".into(), calls: vec![1], fault: Fault::ForwardThen500 }],
        );
        let gcp = Gcp::at(&fp.url()).await;
        let rid = "6a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
        let body = model::<Network>(json!({"name": "n", "autoCreateSubnetworks": false}));
        let e =
            gcp.networks.insert().set_project(P).set_request_id(rid).set_body(body.clone()).send().await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e), reason(&e).as_str()), (Some(500), Code::Internal, "backendError"));
        assert_eq!(em.resources("compute.networks").len(), 1, "the insert happened anyway");
        // Sent again with the same id: the first operation, not a conflict.
        let op = gcp.networks.insert().set_project(P).set_request_id(rid).set_body(body).send().await.unwrap();
        assert_eq!(op.client_operation_id.as_deref(), Some(rid));
        assert_eq!(em.resources("compute.networks").len(), 1);
    })
}

#[test]
fn the_proxy_names_actions_as_the_emulator_counts_them() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let fp = proxy(&em, Vec::new());
        let gcp = Gcp::at(&fp.url()).await;
        gcp.vpc("net").await;
        gcp.gke.get_cluster().set_name(format!("projects/{P}/locations/{REGION}/clusters/c")).send().await.unwrap_err();
        gcp.zones.get().set_project(P).set_managed_zone("z").send().await.unwrap_err();
        gcp.iam
            .get_service_account()
            .set_name(format!("projects/{P}/serviceAccounts/x@{P}.iam.gserviceaccount.com"))
            .send()
            .await
            .unwrap_err();
        let proxied = fp.calls();
        let counted: std::collections::BTreeMap<String, u64> = em.calls();
        assert_eq!(proxied, counted);
        assert!(
            proxied.contains_key("GET operations") && proxied.contains_key("GET iam.serviceAccounts"),
            "{proxied:?}"
        );
    })
}
