//! The clusters the emulator starts as: what EKS seeds (and who owns it), the bare flavour, and
//! one kube-system uid per emulator.

mod common;

use common::{api_error, apply, client, dynamic, fields_of, managers};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, ListParams, Patch, PatchParams};
use matih_kube_emulator::{EKS_COREFILE, Flavor, KubeEmulator, Options, Readiness};
use serde_json::json;

fn corefile_patch(corefile: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"}, "data": {"Corefile": corefile}})
}

#[tokio::test]
async fn eks_seeds_coredns_and_node_daemonsets_ready_even_with_manual_readiness() {
    let em = KubeEmulator::start(Options { readiness: Readiness::Manual, ..Options::default() });
    let c = client(&em);
    let cm: ConfigMap = Api::namespaced(c.clone(), "kube-system").get("coredns").await.unwrap();
    assert_eq!(cm.data.unwrap()["Corefile"], EKS_COREFILE);
    let v = em.get("v1", "ConfigMap", Some("kube-system"), "coredns").unwrap();
    assert_eq!(managers(&v), [("eks".to_string(), "Update".to_string())]);
    assert!(fields_of(&v, "eks", "Update").unwrap()["f:data"]["f:Corefile"].is_object());

    let d: Deployment = Api::namespaced(c.clone(), "kube-system").get("coredns").await.unwrap();
    assert_eq!(d.metadata.labels.unwrap()["k8s-app"], "kube-dns");
    assert_eq!(d.status.unwrap().available_replicas, Some(2));
    let svc: Service = Api::namespaced(c.clone(), "kube-system").get("kube-dns").await.unwrap();
    let ports: Vec<(i32, String)> =
        svc.spec.unwrap().ports.unwrap().into_iter().map(|p| (p.port, p.protocol.unwrap())).collect();
    assert!(ports.contains(&(53, "UDP".into())) && ports.contains(&(53, "TCP".into())));
    for name in ["aws-node", "kube-proxy"] {
        let ds: DaemonSet = Api::namespaced(c.clone(), "kube-system").get(name).await.unwrap();
        let s = ds.status.unwrap();
        assert_eq!(s.number_ready, s.desired_number_scheduled, "{name}");
    }
}

#[tokio::test]
async fn applying_the_corefile_conflicts_with_eks_until_forced() {
    let em = KubeEmulator::start(Options::default());
    let api = dynamic(&client(&em), "v1", "ConfigMap", "configmaps", Some("kube-system"));
    let ours = EKS_COREFILE.replace("cache 30", "cache 60");
    let err = api_error(apply(&api, "matih", &corefile_patch(&ours)).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(err.message, "Apply failed with 1 conflict: conflict with \"eks\" using v1: .data.Corefile");

    // The same value is no conflict (shared ownership).
    apply(&api, "matih", &corefile_patch(EKS_COREFILE)).await.unwrap();

    let forced = api
        .patch("coredns", &PatchParams::apply("matih").force(), &Patch::Apply(&corefile_patch(&ours)))
        .await
        .unwrap();
    assert_eq!(forced.data["data"]["Corefile"], ours.as_str());
    let v = serde_json::to_value(&forced).unwrap();
    assert!(fields_of(&v, "eks", "Update").unwrap()["f:data"].get("f:Corefile").is_none(), "eks lost the field");
}

#[tokio::test]
async fn a_bare_cluster_has_only_the_four_namespaces_and_each_emulator_is_a_new_cluster() {
    let em = KubeEmulator::start(Options { flavor: Flavor::Bare, ..Options::default() });
    let c = client(&em);
    let mut names: Vec<String> = Api::<Namespace>::all(c.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["default", "kube-node-lease", "kube-public", "kube-system"]);
    assert!(Api::<ConfigMap>::all(c.clone()).list(&ListParams::default()).await.unwrap().items.is_empty());
    assert!(Api::<Deployment>::all(c.clone()).list(&ListParams::default()).await.unwrap().items.is_empty());

    let kube_system: Namespace = Api::all(c.clone()).get("kube-system").await.unwrap();
    assert_eq!(kube_system.metadata.uid.unwrap(), em.kube_system_uid());
    let other = KubeEmulator::start(Options::default());
    assert_ne!(other.kube_system_uid(), em.kube_system_uid());
    assert_ne!(other.url(), em.url());
}
