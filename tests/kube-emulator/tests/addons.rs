//! The upstream add-on manifests in `shared/addons` apply cleanly, the way the bootstrap applies
//! them (kube-rs discovery, then server-side apply of each document), and a second apply changes
//! nothing.

mod common;

use common::{client, manifests};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use matih_kube_emulator::{KubeEmulator, Options};
use serde_json::Value;

/// Applies every document of `files` in order; returns each object's resourceVersion.
async fn apply_all(c: &kube::Client, files: &[&str]) -> Vec<String> {
    let mut rvs = Vec::new();
    for file in files {
        for doc in manifests(file) {
            let api_version = doc["apiVersion"].as_str().unwrap();
            let kind = doc["kind"].as_str().unwrap();
            let name = doc["metadata"]["name"].as_str().unwrap();
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let (ar, caps) = discovery::pinned_kind(c, &GroupVersionKind::gvk(group, version, kind))
                .await
                .unwrap_or_else(|e| panic!("{file}: {kind} not discovered: {e}"));
            let api: Api<DynamicObject> = match caps.scope {
                Scope::Namespaced => {
                    let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default");
                    Api::namespaced_with(c.clone(), ns, &ar)
                }
                Scope::Cluster => Api::all_with(c.clone(), &ar),
            };
            let out = api
                .patch(name, &PatchParams::apply("matih").force(), &Patch::Apply(&doc))
                .await
                .unwrap_or_else(|e| panic!("{file}: {kind} {name}: {e}"));
            rvs.push(out.metadata.resource_version.unwrap());
        }
    }
    rvs
}

#[tokio::test]
async fn upstream_manifests_apply_and_reapply_as_no_ops() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let files = [
        "cert-manager/v1.21.1/crds/acme.cert-manager.io_challenges.yaml",
        "cert-manager/v1.21.1/crds/acme.cert-manager.io_orders.yaml",
        "cert-manager/v1.21.1/crds/cert-manager.io_certificaterequests.yaml",
        "cert-manager/v1.21.1/crds/cert-manager.io_certificates.yaml",
        "cert-manager/v1.21.1/crds/cert-manager.io_clusterissuers.yaml",
        "cert-manager/v1.21.1/crds/cert-manager.io_issuers.yaml",
        "ingress-nginx/controller-v1.15.1/aws-deploy.yaml",
        "calico/v3.32.1/tigera-operator.yaml",
        "calico/v3.32.1/operator-crds.yaml",
        "calico/v3.32.1/custom-resources.yaml",
    ];
    let first = apply_all(&c, &files).await;
    let second = apply_all(&c, &files).await;
    assert_eq!(first, second, "re-applying the same manifests writes nothing");

    let controller = em.get("apps/v1", "Deployment", Some("ingress-nginx"), "ingress-nginx-controller").unwrap();
    let available = controller["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Available" && c["status"] == "True");
    assert!(available);
    let lb = em.get("v1", "Service", Some("ingress-nginx"), "ingress-nginx-controller").unwrap();
    assert_eq!(
        lb["status"]["loadBalancer"]["ingress"][0]["hostname"],
        "ingress-nginx-controller-ingress-nginx.elb.emulator.local"
    );
    let installation =
        em.get("operator.tigera.io/v1", "Installation", None, "default").expect("the calico Installation");
    assert!(installation["spec"].is_object());
    let jobs: Vec<Value> = em.list("batch/v1", "Job");
    assert_eq!(jobs.len(), 2, "ingress-nginx admission jobs");
}
