//! Discovery through the real kube-rs client: built-in kinds, growth when a CRD is applied,
//! shrinking when it is deleted, aggregated discovery, and `Api<DynamicObject>` from discovery.

mod common;

use common::{api_error, client, manifest};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Discovery, Scope, verbs};
use matih_kube_emulator::{KubeEmulator, Options};

const CLUSTER_ISSUER_CRD: &str = "cert-manager/v1.21.1/crds/cert-manager.io_clusterissuers.yaml";

#[tokio::test]
async fn builtin_kinds_are_discovered_with_their_scope() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let d = Discovery::new(c.clone()).run().await.unwrap();
    let expect = [
        ("", "v1", "Namespace", "namespaces", Scope::Cluster),
        ("", "v1", "ConfigMap", "configmaps", Scope::Namespaced),
        ("", "v1", "Secret", "secrets", Scope::Namespaced),
        ("", "v1", "Service", "services", Scope::Namespaced),
        ("", "v1", "ServiceAccount", "serviceaccounts", Scope::Namespaced),
        ("apps", "v1", "Deployment", "deployments", Scope::Namespaced),
        ("apps", "v1", "DaemonSet", "daemonsets", Scope::Namespaced),
        ("batch", "v1", "Job", "jobs", Scope::Namespaced),
        ("rbac.authorization.k8s.io", "v1", "Role", "roles", Scope::Namespaced),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", Scope::Namespaced),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", Scope::Cluster),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", Scope::Cluster),
        ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", Scope::Namespaced),
        ("networking.k8s.io", "v1", "IngressClass", "ingressclasses", Scope::Cluster),
        ("networking.k8s.io", "v1", "Ingress", "ingresses", Scope::Namespaced),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", Scope::Cluster),
        (
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            Scope::Cluster,
        ),
        (
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            Scope::Cluster,
        ),
        ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", Scope::Namespaced),
    ];
    for (g, v, k, plural, scope) in expect {
        let (ar, caps) = d.resolve_gvk(&GroupVersionKind::gvk(g, v, k)).unwrap_or_else(|| panic!("{k} not discovered"));
        assert_eq!(caps.scope, scope, "{k}");
        assert!(caps.supports_operation(verbs::PATCH) && caps.supports_operation(verbs::LIST), "{k}");
        assert_eq!(ar.plural, plural, "{k}");
    }
    let (_, deploy) = d.resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment")).unwrap();
    assert!(deploy.subresources.iter().any(|(ar, _)| ar.plural == "status"), "deployments/status is listed");
    assert!(!d.has_group("cert-manager.io"));

    let info = c.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));
}

#[tokio::test]
async fn a_crd_grows_discovery_and_its_deletion_shrinks_it() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let gvk = GroupVersionKind::gvk("cert-manager.io", "v1", "ClusterIssuer");
    assert!(discovery::pinned_kind(&c, &gvk).await.is_err(), "not served before the CRD exists");

    let crd: CustomResourceDefinition = serde_json::from_value(manifest(CLUSTER_ISSUER_CRD)).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let name = "clusterissuers.cert-manager.io";
    let applied = crds.patch(name, &PatchParams::apply("matih"), &Patch::Apply(&crd)).await.unwrap();
    let conditions = applied.status.unwrap().conditions.unwrap();
    for ty in ["NamesAccepted", "Established"] {
        assert!(conditions.iter().any(|c| c.type_ == ty && c.status == "True"), "{ty} in {conditions:?}");
    }

    let (ar, caps) = discovery::pinned_kind(&c, &gvk).await.unwrap();
    assert_eq!((ar.plural.as_str(), caps.scope.clone()), ("clusterissuers", Scope::Cluster));
    let d = Discovery::new(c.clone()).run().await.unwrap();
    let group = d.get("cert-manager.io").expect("the CRD's group is discovered");
    assert_eq!(group.preferred_version_or_latest(), "v1");

    // An Api built from discovery works: create one ClusterIssuer and list it.
    let api: Api<DynamicObject> = Api::all_with(c.clone(), &ar);
    let issuer = serde_json::json!({
        "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
        "metadata": {"name": "selfsigned"}, "spec": {"selfSigned": {}}
    });
    common::apply(&api, "matih", &issuer).await.unwrap();
    assert_eq!(api.list(&Default::default()).await.unwrap().items.len(), 1);

    crds.delete(name, &DeleteParams::default()).await.unwrap();
    assert!(discovery::pinned_kind(&c, &gvk).await.is_err(), "gone from discovery");
    let d = Discovery::new(c.clone()).run().await.unwrap();
    assert!(!d.has_group("cert-manager.io"));
    assert_eq!(api_error(api.get("selfsigned").await).code, 404, "the CRD took its resources with it");
    assert!(em.list("cert-manager.io/v1", "ClusterIssuer").is_empty());
}

#[tokio::test]
async fn aggregated_discovery_agrees_with_per_group_discovery() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let crd: CustomResourceDefinition = serde_json::from_value(manifest(CLUSTER_ISSUER_CRD)).unwrap();
    Api::<CustomResourceDefinition>::all(c.clone())
        .patch("clusterissuers.cert-manager.io", &PatchParams::apply("matih"), &Patch::Apply(&crd))
        .await
        .unwrap();
    let plain = Discovery::new(c.clone()).run().await.unwrap();
    let aggregated = Discovery::new(c.clone()).run_aggregated().await.unwrap();
    let summary = |d: &Discovery| {
        let mut v: Vec<String> = d
            .groups()
            .flat_map(|g| g.recommended_resources())
            .map(|(ar, caps)| format!("{}/{} {:?}", ar.api_version, ar.kind, caps.scope))
            .collect();
        v.sort();
        v
    };
    assert_eq!(summary(&plain), summary(&aggregated));
    assert!(summary(&plain).contains(&"cert-manager.io/v1/ClusterIssuer Cluster".to_string()));
}

#[tokio::test]
async fn unknown_resources_are_404() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let api = common::dynamic(&c, "example.com/v1", "Widget", "widgets", Some("default"));
    let err = api_error(api.get("w").await);
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    let err = api_error(api.list(&Default::default()).await);
    assert_eq!(err.code, 404);
}
