//! Every object the bootstrap writes for the example platform on EKS, checked against its type:
//! built-in kinds must survive a round trip through their k8s-openapi type with nothing lost (a
//! misspelt or misplaced field would be dropped), custom resources must satisfy the schema of
//! their CRD as shipped upstream (cert-manager's, Calico's).

use std::collections::BTreeMap;

use k8s_openapi::api::{admissionregistration, apps, batch, core, networking, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use matih_plans::{DesiredGraph, Value};
use matih_provider_kit::{ClusterRef, Dns01Solver, LoadBalancer};
use matih_provider_kubernetes::manifests::Source;
use matih_provider_kubernetes::provider::render;
use matih_provider_kubernetes::{ClusterBinding, add_bootstrap};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};

/// Paths of `input` that the typed round trip lost or changed.
fn lost(input: &Json, output: &Json, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Json::Object(a), Json::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => lost(v, w, &format!("{path}.{k}"), out),
                    None if v.is_null() => {}
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Json::Array(a), Json::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                lost(v, w, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        // Integers written as floats and the like are the same value.
        (Json::Number(a), Json::Number(b)) if a.as_f64() == b.as_f64() => {}
        _ => out.push(format!("{path} (changed)")),
    }
}

fn roundtrip<T: DeserializeOwned + Serialize>(o: &Json) -> Vec<String> {
    match serde_json::from_value::<T>(o.clone()) {
        Ok(t) => {
            let mut out = Vec::new();
            lost(o, &serde_json::to_value(&t).unwrap(), "", &mut out);
            out
        }
        Err(e) => vec![format!("does not deserialize: {e}")],
    }
}

/// Every object of every add-on instance of `spec` on EKS, with the instance's address.
async fn rendered(spec: &matih_spec::PlatformSpec) -> Vec<(String, Json)> {
    let lb = |n: u8| LoadBalancer::AwsNlb {
        eip_allocations: (0..3).map(|i| Value::str(format!("eipalloc-{n}{i}"))).collect(),
    };
    let binding = ClusterBinding {
        cloud: matih_spec::CloudKind::Eks,
        cluster_addr: "eks.cluster.main".parse().unwrap(),
        identity: BTreeMap::from([
            ("arn".to_string(), Value::str("arn:aws:eks:us-east-1:123456789012:cluster/matih-prod")),
            ("created_at".to_string(), Value::str("2026-11-24T00:00:00Z")),
        ]),
        connection: ClusterRef {
            name: Value::str("matih-prod"),
            endpoint: Value::str("https://example.invalid"),
            ca_data: Value::str("x"),
        },
        node_pools: vec![],
        access_grants: vec![],
        load_balancers: BTreeMap::from([("platform".to_string(), lb(1)), ("acme".to_string(), lb(2))]),
        dns01: Dns01Solver::Route53 { region: Value::str("us-east-1"), hosted_zone_id: Value::str("Z0123456789ABC") },
        cert_manager_annotations: BTreeMap::from([(
            "eks.amazonaws.com/role-arn".to_string(),
            Value::str("arn:aws:iam::123456789012:role/matih/x"),
        )]),
    };
    let mut g = DesiredGraph::default();
    add_bootstrap(&mut g, spec, &binding).unwrap();
    let source = Source::Dir(matih_emulators::addons_dir().to_path_buf());
    let mut objects = Vec::new();
    for (addr, d) in &g.resources {
        let config: serde_json::Map<String, Json> =
            d.config.iter().map(|(k, v)| (k.clone(), v.as_known().expect("all values known").clone())).collect();
        for r in render(&source, addr, &config, &Default::default()).await.unwrap() {
            objects.push((addr.to_string(), r.object));
        }
    }
    objects
}

/// The CRDs the bundles ship, by (group, kind): their served schema.
fn crd_schemas(objects: &[(String, Json)]) -> BTreeMap<(String, String), Json> {
    let mut crds = BTreeMap::new();
    for (_, o) in objects.iter().filter(|(_, o)| o["kind"] == "CustomResourceDefinition") {
        let crd: CustomResourceDefinition = serde_json::from_value(o.clone()).unwrap();
        let schema = serde_json::to_value(&crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema).unwrap();
        crds.insert((crd.spec.group.clone(), crd.spec.names.kind.clone()), schema);
    }
    crds
}

/// Problems of every object against its type or CRD, and how many of each kind were checked.
fn check(objects: &[(String, Json)]) -> (Vec<String>, BTreeMap<String, usize>) {
    let crds = crd_schemas(objects);
    let mut problems = Vec::new();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for (addr, o) in objects {
        let kind = o["kind"].as_str().unwrap().to_string();
        let api_version = o["apiVersion"].as_str().unwrap();
        let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
        let errors = match kind.as_str() {
            "Namespace" => roundtrip::<core::v1::Namespace>(o),
            "ConfigMap" => roundtrip::<core::v1::ConfigMap>(o),
            "Secret" => roundtrip::<core::v1::Secret>(o),
            "Service" => roundtrip::<core::v1::Service>(o),
            "ServiceAccount" => roundtrip::<core::v1::ServiceAccount>(o),
            "Deployment" => roundtrip::<apps::v1::Deployment>(o),
            "DaemonSet" => roundtrip::<apps::v1::DaemonSet>(o),
            "Job" => roundtrip::<batch::v1::Job>(o),
            "Role" => roundtrip::<rbac::v1::Role>(o),
            "RoleBinding" => roundtrip::<rbac::v1::RoleBinding>(o),
            "ClusterRole" => roundtrip::<rbac::v1::ClusterRole>(o),
            "ClusterRoleBinding" => roundtrip::<rbac::v1::ClusterRoleBinding>(o),
            "NetworkPolicy" => roundtrip::<networking::v1::NetworkPolicy>(o),
            "IngressClass" => roundtrip::<networking::v1::IngressClass>(o),
            "ValidatingWebhookConfiguration" => {
                roundtrip::<admissionregistration::v1::ValidatingWebhookConfiguration>(o)
            }
            "MutatingWebhookConfiguration" => roundtrip::<admissionregistration::v1::MutatingWebhookConfiguration>(o),
            "CustomResourceDefinition" => roundtrip::<CustomResourceDefinition>(o),
            _ => match crds.get(&(group.to_string(), kind.clone())) {
                Some(schema) => matih_kube_emulator::validate_against_schema(schema, o),
                None => vec![format!("no type or CRD known for {api_version} {kind}")],
            },
        };
        *checked.entry(kind.clone()).or_default() += 1;
        for e in errors {
            problems.push(format!("{addr}: {kind} {}: {e}", o["metadata"]["name"]));
        }
    }
    (problems, checked)
}

fn example() -> matih_spec::PlatformSpec {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/matih.yaml");
    matih_spec::load(&examples).unwrap().spec
}

#[tokio::test]
async fn every_object_of_the_example_platform_matches_its_type_or_crd_schema() {
    let objects = rendered(&example()).await;
    let (problems, checked) = check(&objects);
    assert!(problems.is_empty(), "{problems:#?}");
    // The custom resources the tool writes itself were checked against their CRDs.
    for kind in ["ClusterIssuer", "Certificate", "Installation", "NetworkPolicy", "Deployment", "IngressClass"] {
        assert!(checked.get(kind).is_some_and(|&n| n > 0), "no {kind} checked: {checked:?}");
    }

    // And a mistake is caught: a misspelt field of the issuer fails its CRD schema.
    let crds = crd_schemas(&objects);
    let (_, issuer) = objects.iter().find(|(_, o)| o["kind"] == "ClusterIssuer").unwrap();
    let mut bad = issuer.clone();
    bad["spec"]["acme"]["emial"] = json!("x@example.com");
    let schema = &crds[&("cert-manager.io".to_string(), "ClusterIssuer".to_string())];
    assert!(!matih_kube_emulator::validate_against_schema(schema, &bad).is_empty());
    let (_, svc) = objects.iter().find(|(_, o)| o["kind"] == "Service").unwrap();
    let mut bad = svc.clone();
    bad["spec"]["loadBalancerIp"] = json!("1.2.3.4");
    assert!(!roundtrip::<core::v1::Service>(&bad).is_empty());
}

#[tokio::test]
async fn per_tenant_certificates_replace_the_wildcard() {
    let mut spec = example();
    spec.addons.certificates = matih_spec::Certificates::PerTenant;
    let objects = rendered(&spec).await;
    let (problems, _) = check(&objects);
    assert!(problems.is_empty(), "{problems:#?}");
    let certs: Vec<(String, String, Json)> = objects
        .iter()
        .filter(|(_, o)| o["kind"] == "Certificate")
        .map(|(a, o)| {
            (a.clone(), o["metadata"]["namespace"].as_str().unwrap().to_string(), o["spec"]["dnsNames"].clone())
        })
        .collect();
    assert_eq!(
        certs,
        [
            ("k8s.addon.cluster_issuer".to_string(), "matih-ingress".to_string(), json!(["matih.ai", "api.matih.ai"])),
            (
                r#"k8s.addon.tenant_certificate["acme"]"#.to_string(),
                "matih-tenant-acme".to_string(),
                json!(["acme.matih.ai"])
            ),
            (
                r#"k8s.addon.tenant_certificate["bigcorp"]"#.to_string(),
                "matih-tenant-bigcorp".to_string(),
                json!(["bigcorp.matih.ai"])
            ),
        ]
    );
}
