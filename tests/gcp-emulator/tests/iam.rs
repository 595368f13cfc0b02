//! IAM through the official `google-cloud-iam-admin-v1` client: service accounts, and their IAM
//! policies with etags, member checks, Workload Identity members and replication lag.

mod common;

use std::time::{Duration, Instant};

use common::*;
use google_cloud_container_v1::model::CreateClusterRequest;
use google_cloud_gax::error::rpc::Code;
use google_cloud_iam_admin_v1::model::{PatchServiceAccountRequest, ServiceAccount};
use google_cloud_iam_v1::model::{GetPolicyOptions, Policy};
use matih_gcp_emulator::{GcpEmulator, Options};
use serde_json::{Value, json};

const SA: &str = "matih-dns01@matih-test.iam.gserviceaccount.com";

fn sa_name(email: &str) -> String {
    format!("projects/{P}/serviceAccounts/{email}")
}

async fn account(gcp: &Gcp, id: &str) -> Result<ServiceAccount, google_cloud_gax::error::Error> {
    gcp.iam
        .create_service_account()
        .set_name(format!("projects/{P}"))
        .set_account_id(id)
        .set_service_account(model::<ServiceAccount>(json!({"displayName": "DNS01", "description": "matih-owner=dev"})))
        .send()
        .await
}

async fn set_policy(
    gcp: &Gcp,
    on: &str,
    bindings: Value,
    etag: &str,
) -> Result<Policy, google_cloud_gax::error::Error> {
    let mut p = json!({"version": 1, "bindings": bindings});
    if !etag.is_empty() {
        p["etag"] = json!(etag);
    }
    gcp.iam.set_iam_policy().set_resource(sa_name(on)).set_policy(model::<Policy>(p)).send().await
}

#[test]
fn service_accounts_are_created_read_listed_patched_and_deleted() {
    run(|| async {
        let em = GcpEmulator::start(Options { page_size: 1, ..Options::default() });
        let gcp = Gcp::new(&em).await;
        let sa = account(&gcp, "matih-dns01").await.unwrap();
        assert_eq!((sa.email.as_str(), sa.name.as_str(), sa.project_id.as_str()), (SA, sa_name(SA).as_str(), P));
        assert!(sa.unique_id.len() == 21 && sa.unique_id.chars().all(|c| c.is_ascii_digit()), "{}", sa.unique_id);
        assert_eq!((sa.display_name.as_str(), sa.description.as_str()), ("DNS01", "matih-owner=dev"));
        let e = account(&gcp, "matih-dns01").await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(409), Code::AlreadyExists));
        for bad in ["short", "1matih-sa", "matih-sa-", "Matih-sa", "matih_sa_x"] {
            let e = account(&gcp, bad).await.unwrap_err();
            assert_eq!((e.http_status_code(), code(&e)), (Some(400), Code::InvalidArgument), "{bad}");
        }
        // By email, by unique id, under `projects/-`.
        let got = gcp
            .iam
            .get_service_account()
            .set_name(format!("projects/-/serviceAccounts/{}", sa.unique_id))
            .send()
            .await
            .unwrap();
        assert_eq!(got.email, SA);
        account(&gcp, "matih-nodes").await.unwrap();
        let page = gcp.iam.list_service_accounts().set_name(format!("projects/{P}")).send().await.unwrap();
        assert_eq!(page.accounts.len(), 1);
        let rest = gcp
            .iam
            .list_service_accounts()
            .set_name(format!("projects/{P}"))
            .set_page_token(page.next_page_token)
            .send()
            .await
            .unwrap();
        assert_eq!(rest.accounts.len(), 1);
        assert!(rest.next_page_token.is_empty());

        let patched = gcp
            .iam
            .patch_service_account()
            .with_request(model::<PatchServiceAccountRequest>(json!({
                "serviceAccount": {"name": sa_name(SA), "description": "matih-owner=prod"}, "updateMask": "description"
            })))
            .send()
            .await
            .unwrap();
        assert_eq!((patched.description.as_str(), patched.display_name.as_str()), ("matih-owner=prod", "DNS01"));

        gcp.iam.delete_service_account().set_name(sa_name(SA)).send().await.unwrap();
        let e = gcp.iam.get_service_account().set_name(sa_name(SA)).send().await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(404), Code::NotFound));
        let e = gcp.iam.delete_service_account().set_name(sa_name(SA)).send().await.unwrap_err();
        assert_eq!(code(&e), Code::NotFound);
    })
}

#[test]
fn policies_check_etags_and_members() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        account(&gcp, "matih-dns01").await.unwrap();
        let get = || {
            gcp.iam
                .get_iam_policy()
                .set_resource(sa_name(SA))
                .set_options(model::<GetPolicyOptions>(json!({"requestedPolicyVersion": 3})))
                .send()
        };
        let empty = get().await.unwrap();
        assert!(empty.bindings.is_empty());
        let etag = json_of(&empty)["etag"].as_str().unwrap().to_string();
        assert_eq!(etag, "ACAB");
        // The query carries the requested version.
        assert!(
            em.requests().last().unwrap().query.contains("options.requestedPolicyVersion=3"),
            "{:?}",
            em.requests().last()
        );

        let ksa = format!("serviceAccount:{P}.svc.id.goog[cert-manager/cert-manager]");
        let wi = json!([{"role": "roles/iam.workloadIdentityUser", "members": [ksa]}]);
        let e = set_policy(&gcp, SA, wi.clone(), &etag).await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(400), Code::InvalidArgument));
        assert!(message(&e).starts_with(&format!("Identity Pool does not exist ({P}.svc.id.goog)")), "{e:?}");

        // A cluster with Workload Identity makes the pool exist.
        gcp.vpc("net").await;
        gcp.gke
            .create_cluster()
            .with_request(model::<CreateClusterRequest>(
                json!({"parent": format!("projects/{P}/locations/{REGION}"), "cluster": {
                    "name": "c", "network": "net", "subnetwork": "nodes", "initialNodeCount": 1,
                    "workloadIdentityConfig": {"workloadPool": format!("{P}.svc.id.goog")},
                }}),
            ))
            .send()
            .await
            .unwrap();
        let set = set_policy(&gcp, SA, wi.clone(), &etag).await.unwrap();
        let new_etag = json_of(&set)["etag"].as_str().unwrap().to_string();
        assert_ne!(new_etag, etag);
        assert_eq!(json_of(&set)["bindings"], wi);

        // Read-modify-write with a stale etag is refused; without an etag it overwrites.
        let e = set_policy(&gcp, SA, json!([]), &etag).await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(409), Code::Aborted));
        assert_eq!(json_of(&get().await.unwrap())["bindings"], wi);
        let e = set_policy(
            &gcp,
            SA,
            json!([{"role": "roles/x", "members": ["serviceAccount:ghost@matih-test.iam.gserviceaccount.com"]}]),
            "",
        )
        .await
        .unwrap_err();
        assert!(
            message(&e).contains("Service account ghost@matih-test.iam.gserviceaccount.com does not exist."),
            "{e:?}"
        );
        let e =
            set_policy(&gcp, SA, json!([{"role": "admin", "members": ["user:a@example.com"]}]), "").await.unwrap_err();
        assert_eq!(code(&e), Code::InvalidArgument);
        let e = set_policy(&gcp, SA, json!([{"role": "roles/x", "members": ["nobody"]}]), "").await.unwrap_err();
        assert_eq!(code(&e), Code::InvalidArgument);
        // Google's own service agents are not checked.
        set_policy(&gcp, SA, json!([{"role": "roles/x", "members": ["serviceAccount:service-1@gcp-sa-gkenode.iam.gserviceaccount.com"]}]), "")
            .await
            .unwrap();
    })
}

#[test]
fn a_deleted_account_shows_as_deleted_in_policies() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        account(&gcp, "matih-dns01").await.unwrap();
        let other = account(&gcp, "matih-other").await.unwrap();
        let member = format!("serviceAccount:{}", other.email);
        set_policy(&gcp, SA, json!([{"role": "roles/iam.serviceAccountUser", "members": [member]}]), "").await.unwrap();
        gcp.iam.delete_service_account().set_name(sa_name(&other.email)).send().await.unwrap();
        let p = json_of(&em.iam_policy(&sa_name(SA)).unwrap());
        assert_eq!(
            p["bindings"][0]["members"],
            json!([format!("deleted:serviceAccount:{}?uid={}", other.email, other.unique_id)])
        );
    })
}

#[test]
fn a_new_account_is_unknown_to_policies_for_a_while() {
    run(|| async {
        let lag = Duration::from_millis(800);
        let em = GcpEmulator::start(Options { principal_lag: lag, ..Options::default() });
        let gcp = Gcp::new(&em).await;
        account(&gcp, "matih-dns01").await.unwrap();
        let created = Instant::now();
        let fresh = account(&gcp, "matih-fresh").await.unwrap();
        let bindings =
            json!([{"role": "roles/iam.serviceAccountUser", "members": [format!("serviceAccount:{}", fresh.email)]}]);
        let mut refused = 0;
        loop {
            match set_policy(&gcp, SA, bindings.clone(), "").await {
                Ok(_) => break,
                Err(e) => {
                    assert!(message(&e).contains("does not exist"), "{e:?}");
                    refused += 1;
                }
            }
            assert!(created.elapsed() < Duration::from_secs(5), "never accepted");
            tokio::time::sleep(Duration::from_millis(25)).await; // a client's retry interval
        }
        assert!(refused >= 1, "the first attempt comes before the lag is over");
        assert!(created.elapsed() >= lag);
    })
}
