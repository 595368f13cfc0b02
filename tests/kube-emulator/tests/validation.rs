//! Validation through the real kube-rs client: missing namespaces, names, labels, identity
//! mismatches, unknown fields and wrong types in built-in kinds, custom resources against the
//! real cert-manager ClusterIssuer schema, and `validate_against_schema` on its own.

mod common;

use common::{api_error, apply, client, dynamic, manifest};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use matih_kube_emulator::{KubeEmulator, Options, validate_against_schema};
use serde_json::{Value, json};

const CLUSTER_ISSUER_CRD: &str = "cert-manager/v1.21.1/crds/cert-manager.io_clusterissuers.yaml";

fn cm(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"a": "1"}})
}

#[tokio::test]
async fn a_missing_namespace_is_404() {
    let em = KubeEmulator::start(Options::default());
    let api = dynamic(&client(&em), "v1", "ConfigMap", "configmaps", Some("nope"));
    let err = api_error(apply(&api, "matih", &cm("nope", "x")).await);
    assert_eq!(
        (err.code, err.reason.as_str(), err.message.as_str()),
        (404, "NotFound", "namespaces \"nope\" not found")
    );
}

#[tokio::test]
async fn names_and_labels_are_validated_with_field_causes() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let api = dynamic(&c, "v1", "ConfigMap", "configmaps", Some("default"));
    let err = api_error(apply(&api, "matih", &cm("default", "Bad_Name")).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(err.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", err.message);
    assert_eq!(err.details.unwrap().causes[0].field, "metadata.name");

    // Namespaces are DNS labels: no dots.
    let ns = dynamic(&c, "v1", "Namespace", "namespaces", None);
    let err = api_error(
        apply(&ns, "matih", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}})).await,
    );
    assert_eq!(err.code, 422);

    let mut labelled = cm("default", "ok");
    labelled["metadata"]["labels"] = json!({"app": "has space"});
    let err = api_error(apply(&api, "matih", &labelled).await);
    assert_eq!(err.code, 422);
    assert_eq!(err.details.unwrap().causes[0].field, "metadata.labels");

    // RBAC names may hold colons.
    let roles = dynamic(&c, "rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", None);
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "matih:reader"}, "rules": []});
    apply(&roles, "matih", &role).await.unwrap();
}

#[tokio::test]
async fn the_body_must_match_the_url() {
    let em = KubeEmulator::start(Options::default());
    let api = dynamic(&client(&em), "v1", "ConfigMap", "configmaps", Some("default"));
    let body = cm("default", "other");
    let err = api_error(api.patch("app", &PatchParams::apply("matih"), &Patch::Apply(&body)).await);
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
    assert!(err.message.contains("does not match the name on the URL"), "{}", err.message);

    let err = api_error(apply(&api, "matih", &cm("kube-system", "app")).await);
    assert_eq!(err.code, 400, "namespace mismatch");

    let mut wrong_kind = cm("default", "app");
    wrong_kind["kind"] = json!("Secret");
    assert_eq!(api_error(apply(&api, "matih", &wrong_kind).await).code, 400);
}

#[tokio::test]
async fn unknown_fields_and_wrong_types_in_builtin_kinds() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let api = dynamic(&c, "apps/v1", "Deployment", "deployments", Some("default"));
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx", "imagePullPolicyy": "Always"}]}}
        }
    });
    let err = api_error(apply(&api, "matih", &d).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message.contains(".spec.template.spec.containers[0].imagePullPolicyy: field not declared in schema"),
        "{}",
        err.message
    );

    d["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("imagePullPolicyy");
    d["spec"]["replicas"] = json!("two");
    let err = api_error(apply(&api, "matih", &d).await);
    assert_eq!(err.code, 422, "{}", err.message);

    d["spec"]["replicas"] = json!(1);
    apply(&api, "matih", &d).await.unwrap();

    // Other writes drop unknown fields (fieldValidation=Warn, the default) or refuse them (Strict).
    let raw = dynamic(&c, "v1", "ConfigMap", "configmaps", Some("default"));
    let mut extra = cm("default", "extra");
    extra["bogus"] = json!(1);
    let extra: kube::api::DynamicObject = serde_json::from_value(extra).unwrap();
    let created = raw.create(&PostParams::default(), &extra).await.unwrap();
    assert!(created.data.get("bogus").is_none(), "dropped: {:?}", created.data);
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let mut strict = PatchParams::default().validation_strict();
    strict.field_manager = Some("matih".into());
    let err = api_error(cms.patch("extra", &strict, &Patch::Merge(json!({"bogus": 1}))).await);
    assert_eq!((err.code, err.message.as_str()), (400, "strict decoding error: unknown field \"bogus\""));
}

#[tokio::test]
async fn custom_resources_are_validated_against_the_crd_schema() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let crds = dynamic(&c, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", None);
    apply(&crds, "matih", &manifest(CLUSTER_ISSUER_CRD)).await.unwrap();
    let issuers = dynamic(&c, "cert-manager.io/v1", "ClusterIssuer", "clusterissuers", None);
    let issuer = |spec: Value| json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "letsencrypt"}, "spec": spec});

    let typo = issuer(
        json!({"acme": {"server": "https://acme-v02.api.letsencrypt.org/directory", "email": "ops@example.com",
        "privateKeySecretRef": {"name": "le"}, "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}], "emial": "x"}}),
    );
    let err = api_error(apply(&issuers, "matih", &typo).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(err.message.contains(".spec.acme.emial: field not declared in schema"), "{}", err.message);

    let missing = issuer(json!({"acme": {"email": "ops@example.com", "privateKeySecretRef": {"name": "le"}}}));
    let err = api_error(apply(&issuers, "matih", &missing).await);
    assert_eq!(err.code, 422);
    assert_eq!(err.details.unwrap().causes[0].field, "spec.acme.server");

    let mut valid = typo.clone();
    valid["spec"]["acme"].as_object_mut().unwrap().remove("emial");
    let stored = apply(&issuers, "matih", &valid).await.unwrap();
    assert_eq!(stored.data["spec"]["acme"]["email"], "ops@example.com");
}

#[test]
fn validate_against_schema_on_an_upstream_crd() {
    let crd = manifest(CLUSTER_ISSUER_CRD);
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let ok = json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "ca"},
        "spec": {"ca": {"secretName": "root"}}});
    assert_eq!(validate_against_schema(schema, &ok), Vec::<String>::new());
    let bad = json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "ca"},
        "spec": {"ca": {"secretName": 7, "crlDistributionPoints": "not-a-list"}, "vault": {}}});
    let errs = validate_against_schema(schema, &bad);
    assert!(errs.iter().any(|e| e.starts_with("spec.ca.secretName: Invalid value: \"integer\"")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("spec.ca.crlDistributionPoints: Invalid value: \"string\"")), "{errs:?}");
    assert!(errs.contains(&"spec.vault.server: Required value".to_string()), "{errs:?}");
}
