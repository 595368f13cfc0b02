//! Faked controllers, seen through the real kube-rs client: Deployment readiness (immediate, and
//! manual driven by `set_ready`), DaemonSets, Jobs, LoadBalancer Services, Namespaces.

mod common;

use common::client;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, Patch, PatchParams};
use matih_kube_emulator::{KubeEmulator, Options, Readiness};
use serde_json::{Value, json};

fn deployment(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
        }
    })
}

fn condition(d: &Deployment, ty: &str) -> (String, String) {
    let c = d.status.as_ref().unwrap().conditions.as_ref().unwrap().iter().find(|c| c.type_ == ty).unwrap();
    (c.status.clone(), c.reason.clone().unwrap_or_default())
}

#[tokio::test]
async fn deployments_are_available_at_once_with_immediate_readiness() {
    let em = KubeEmulator::start(Options::default());
    let api: Api<Deployment> = Api::namespaced(client(&em), "default");
    let d = api.patch("web", &PatchParams::apply("matih"), &Patch::Apply(deployment(3))).await.unwrap();
    let s = d.status.clone().unwrap();
    assert_eq!(
        (s.replicas, s.ready_replicas, s.available_replicas, s.updated_replicas),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!(s.observed_generation, d.metadata.generation);
    assert_eq!(condition(&d, "Available"), ("True".into(), "MinimumReplicasAvailable".into()));
    assert_eq!(condition(&d, "Progressing"), ("True".into(), "NewReplicaSetAvailable".into()));
}

#[tokio::test]
async fn manual_readiness_waits_for_set_ready() {
    let em = KubeEmulator::start(Options { readiness: Readiness::Manual, ..Options::default() });
    let api: Api<Deployment> = Api::namespaced(client(&em), "default");
    let d = api.patch("web", &PatchParams::apply("matih"), &Patch::Apply(deployment(2))).await.unwrap();
    assert_eq!(condition(&d, "Available"), ("False".into(), "MinimumReplicasUnavailable".into()));
    assert_eq!(d.status.unwrap().available_replicas, Some(0));

    em.set_ready(("apps/v1", "Deployment"), "default", "web", true);
    let d = api.get("web").await.unwrap();
    assert_eq!(condition(&d, "Available"), ("True".into(), "MinimumReplicasAvailable".into()));
    assert_eq!(d.status.as_ref().unwrap().available_replicas, Some(2));

    em.set_ready(("apps/v1", "Deployment"), "default", "web", false);
    let d = api.get("web").await.unwrap();
    assert_eq!(condition(&d, "Available").0, "False");

    // Readiness set before the object exists applies when it is created.
    em.set_ready(("apps/v1", "DaemonSet"), "default", "agent", true);
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "busybox"}]}}}
    });
    let dss: Api<DaemonSet> = Api::namespaced(client(&em), "default");
    let s = dss.patch("agent", &PatchParams::apply("matih"), &Patch::Apply(ds)).await.unwrap().status.unwrap();
    assert!(s.desired_number_scheduled > 0);
    assert_eq!((s.number_ready, s.number_available), (s.desired_number_scheduled, Some(s.desired_number_scheduled)));
}

#[tokio::test]
async fn jobs_complete_and_load_balancers_get_a_hostname() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "default"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "busybox"}]}}}
    });
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let j = jobs.patch("migrate", &PatchParams::apply("matih"), &Patch::Apply(job)).await.unwrap();
    let s = j.status.unwrap();
    assert_eq!(s.succeeded, Some(1));
    assert!(s.conditions.unwrap().iter().any(|c| c.type_ == "Complete" && c.status == "True"));

    let svc = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "ingress"}, "ports": [{"port": 80, "protocol": "TCP"}]}
    });
    let svcs: Api<Service> = Api::namespaced(c.clone(), "default");
    let s = svcs.patch("ingress", &PatchParams::apply("matih"), &Patch::Apply(svc)).await.unwrap();
    let ingress = s.status.unwrap().load_balancer.unwrap().ingress.unwrap();
    assert_eq!(ingress[0].hostname.as_deref(), Some("ingress-default.elb.emulator.local"));
    assert!(s.spec.unwrap().cluster_ip.is_some_and(|ip| ip.starts_with("10.100.")));
}

#[tokio::test]
async fn namespaces_are_active_and_labelled_with_their_name() {
    let em = KubeEmulator::start(Options::default());
    let api: Api<Namespace> = Api::all(client(&em));
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "platform"}});
    let n = api.patch("platform", &PatchParams::apply("matih"), &Patch::Apply(ns)).await.unwrap();
    assert_eq!(n.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(n.metadata.labels.unwrap()["kubernetes.io/metadata.name"], "platform");
}

#[tokio::test]
async fn status_is_written_through_the_status_subresource_only() {
    let em = KubeEmulator::start(Options { readiness: Readiness::Manual, ..Options::default() });
    let api: Api<Deployment> = Api::namespaced(client(&em), "default");
    api.patch("web", &PatchParams::apply("matih"), &Patch::Apply(deployment(1))).await.unwrap();
    let pp = PatchParams { field_manager: Some("tester".into()), ..Default::default() };

    // A merge patch of the main resource cannot touch status.
    let d = api.patch("web", &pp, &Patch::Merge(json!({"status": {"availableReplicas": 7}}))).await.unwrap();
    assert_eq!(d.status.unwrap().available_replicas, Some(0));
    // The status subresource can, and no controller overwrites it while the spec stays put.
    let d = api.patch_status("web", &pp, &Patch::Merge(json!({"status": {"availableReplicas": 7}}))).await.unwrap();
    assert_eq!(d.status.as_ref().unwrap().available_replicas, Some(7));
    let v = serde_json::to_value(&d).unwrap();
    let entry =
        v["metadata"]["managedFields"].as_array().unwrap().iter().find(|e| e["manager"] == "tester").unwrap().clone();
    assert_eq!(entry["subresource"], "status");
    assert_eq!(entry["fieldsV1"], json!({"f:status": {"f:availableReplicas": {}}}));
}

#[tokio::test]
async fn a_job_is_complete_only_with_success_criteria_met_as_kubernetes_1_31_requires() {
    let em = KubeEmulator::start(Options { readiness: Readiness::Manual, ..Options::default() });
    let jobs: Api<Job> = Api::namespaced(client(&em), "default");
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "default"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "busybox"}]}}}
    });
    jobs.patch("migrate", &PatchParams::apply("matih"), &Patch::Apply(job)).await.unwrap();
    let pp = PatchParams { field_manager: Some("job-controller".into()), ..Default::default() };
    let complete = |with_criteria: bool| {
        let mut conditions = vec![json!({"type": "Complete", "status": "True"})];
        if with_criteria {
            conditions.push(json!({"type": "SuccessCriteriaMet", "status": "True"}));
        }
        Patch::Merge(json!({"status": {"conditions": conditions, "succeeded": 1}}))
    };
    match jobs.patch_status("migrate", &pp, &complete(false)).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            assert!(
                s.message.contains("cannot set Complete=True condition without the SuccessCriteriaMet=true condition"),
                "{}",
                s.message
            );
        }
        other => panic!("a Complete Job without SuccessCriteriaMet was accepted: {other:?}"),
    }
    let j = jobs.patch_status("migrate", &pp, &complete(true)).await.unwrap();
    let types: Vec<String> =
        j.status.unwrap().conditions.unwrap().into_iter().filter(|c| c.status == "True").map(|c| c.type_).collect();
    assert!(types.contains(&"Complete".to_string()) && types.contains(&"SuccessCriteriaMet".to_string()), "{types:?}");

    // The same for a failure: Failed needs FailureTarget.
    let failed = Patch::Merge(json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}));
    let err = jobs.patch_status("migrate", &pp, &failed).await.unwrap_err();
    assert!(
        err.to_string().contains("cannot set Failed=True condition without the FailureTarget=true condition"),
        "{err}"
    );
}
