//! Server-side apply through the real kube-rs client: creation, no-op re-apply, conflicts, force,
//! shared ownership, removal of dropped fields, updates taking ownership, dry run, and what
//! kube-rs puts on the wire.

mod common;

use common::{api_error, apply, client, dynamic, fields_of, managers};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use matih_kube_emulator::{KubeEmulator, Options};
use serde_json::{Value, json};

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "default", "labels": {"app": "web"}}, "data": data})
}

fn rv(obj: &impl serde::Serialize) -> String {
    serde_json::to_value(obj).unwrap()["metadata"]["resourceVersion"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn apply_creates_with_managed_fields_and_a_no_op_reapply_keeps_the_resource_version() {
    let em = KubeEmulator::start(Options::default());
    let api = dynamic(&client(&em), "v1", "ConfigMap", "configmaps", Some("default"));
    let created = apply(&api, "matih", &cm(json!({"a": "1"}))).await.unwrap();
    let v = serde_json::to_value(&created).unwrap();
    assert_eq!(managers(&v), [("matih".to_string(), "Apply".to_string())]);
    assert_eq!(
        fields_of(&v, "matih", "Apply").unwrap(),
        json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
    );
    let meta = &v["metadata"];
    assert!(meta["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(meta["creationTimestamp"].as_str().is_some_and(|t| t.ends_with('Z')));

    let again = apply(&api, "matih", &cm(json!({"a": "1"}))).await.unwrap();
    assert_eq!(rv(&again), rv(&created), "a no-op apply does not write");
    let changed = apply(&api, "matih", &cm(json!({"a": "2"}))).await.unwrap();
    assert!(rv(&changed).parse::<u64>().unwrap() > rv(&created).parse::<u64>().unwrap());
    assert_eq!(changed.data["data"]["a"], "2");
}

#[tokio::test]
async fn conflicts_name_the_other_manager_and_force_takes_ownership() {
    let em = KubeEmulator::start(Options::default());
    let api = dynamic(&client(&em), "v1", "ConfigMap", "configmaps", Some("default"));
    apply(&api, "alice", &cm(json!({"a": "1", "b": "2"}))).await.unwrap();

    let err = api_error(apply(&api, "bob", &cm(json!({"a": "1", "b": "3"}))).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(err.message, "Apply failed with 1 conflict: conflict with \"alice\": .data.b");
    let causes = err.details.unwrap().causes;
    assert_eq!(causes.len(), 1);
    assert_eq!((causes[0].reason.as_str(), causes[0].field.as_str()), ("FieldManagerConflict", ".data.b"));
    assert_eq!(em.get("v1", "ConfigMap", Some("default"), "app").unwrap()["data"]["b"], "2", "nothing written");

    // Same value: shared, no conflict.
    apply(&api, "bob", &cm(json!({"a": "1"}))).await.unwrap();
    // Force: bob takes b.
    let forced = api
        .patch("app", &PatchParams::apply("bob").force(), &Patch::Apply(&cm(json!({"a": "1", "b": "3"}))))
        .await
        .unwrap();
    let v = serde_json::to_value(&forced).unwrap();
    assert_eq!(v["data"]["b"], "3");
    assert_eq!(fields_of(&v, "alice", "Apply").unwrap()["f:data"], json!({"f:a": {}}));
    assert_eq!(fields_of(&v, "bob", "Apply").unwrap()["f:data"], json!({"f:a": {}, "f:b": {}}));

    // alice stops sending a and the label: bob applied both too, so both stay.
    let alice_none = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "default"}, "data": {}});
    let after = apply(&api, "alice", &alice_none).await.unwrap();
    assert_eq!(after.data["data"], json!({"a": "1", "b": "3"}));
    assert_eq!(after.metadata.labels.as_ref().unwrap()["app"], "web");
    let v = serde_json::to_value(&after).unwrap();
    assert_eq!(fields_of(&v, "alice", "Apply").unwrap(), json!({"f:data": {}}));
    // bob drops the label: nobody holds it any more, so it goes.
    let bob_data = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "default"}, "data": {"a": "1", "b": "3"}});
    let after = apply(&api, "bob", &bob_data).await.unwrap();
    assert!(after.metadata.labels.is_none_or(|l| l.is_empty()), "a label nobody owns is removed");
}

#[tokio::test]
async fn fields_dropped_from_the_applied_config_are_removed() {
    let em = KubeEmulator::start(Options::default());
    let api: Api<ConfigMap> = Api::namespaced(client(&em), "default");
    let mut first: ConfigMap = serde_json::from_value(cm(json!({"keep": "1", "drop": "2"}))).unwrap();
    api.patch("app", &PatchParams::apply("matih"), &Patch::Apply(&first)).await.unwrap();
    first.data.as_mut().unwrap().remove("drop");
    let second = api.patch("app", &PatchParams::apply("matih"), &Patch::Apply(&first)).await.unwrap();
    assert_eq!(second.data.unwrap().keys().collect::<Vec<_>>(), ["keep"]);
}

#[tokio::test]
async fn updates_take_ownership_and_later_applies_conflict_with_them() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let api = dynamic(&c, "v1", "ConfigMap", "configmaps", Some("default"));
    apply(&api, "matih", &cm(json!({"a": "1"}))).await.unwrap();

    em.update_as("kubectl-edit", "v1", "ConfigMap", Some("default"), "app", |o| o["data"]["a"] = json!("edited"));
    let live = em.get("v1", "ConfigMap", Some("default"), "app").unwrap();
    assert_eq!(fields_of(&live, "kubectl-edit", "Update").unwrap(), json!({"f:data": {"f:a": {}}}));
    assert_eq!(fields_of(&live, "matih", "Apply").unwrap(), json!({"f:metadata": {"f:labels": {"f:app": {}}}}));

    let err = api_error(apply(&api, "matih", &cm(json!({"a": "1"}))).await);
    assert_eq!(err.message, "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.a");

    // A merge patch is an Update too: it takes ownership from the applier.
    let typed: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let pp = PatchParams { field_manager: Some("patcher".into()), ..Default::default() };
    typed.patch("app", &pp, &Patch::Merge(json!({"metadata": {"labels": {"app": "api"}}}))).await.unwrap();
    let live = em.get("v1", "ConfigMap", Some("default"), "app").unwrap();
    assert_eq!(fields_of(&live, "patcher", "Update").unwrap(), json!({"f:metadata": {"f:labels": {"f:app": {}}}}));
    assert!(fields_of(&live, "matih", "Apply").is_none(), "matih owns nothing any more");
}

#[tokio::test]
async fn apply_requires_a_field_manager_and_dry_run_persists_nothing() {
    let em = KubeEmulator::start(Options::default());
    let api = dynamic(&client(&em), "v1", "ConfigMap", "configmaps", Some("default"));
    let err = api_error(api.patch("app", &PatchParams::default(), &Patch::Apply(&cm(json!({})))).await);
    assert_eq!(err.code, 400);
    assert!(err.message.contains("fieldManager"), "{}", err.message);

    let dry =
        api.patch("app", &PatchParams::apply("matih").dry_run(), &Patch::Apply(&cm(json!({"a": "1"})))).await.unwrap();
    assert_eq!(dry.data["data"]["a"], "1");
    assert!(em.get("v1", "ConfigMap", Some("default"), "app").is_none());
}

#[tokio::test]
async fn status_in_an_apply_is_ignored_and_generation_tracks_the_spec() {
    let em = KubeEmulator::start(Options::default());
    let api: Api<Deployment> = Api::namespaced(client(&em), "default");
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
        },
        "status": {"replicas": 99}
    });
    let pp = PatchParams::apply("matih");
    let created = api.patch("web", &pp, &Patch::Apply(&d)).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.status.as_ref().unwrap().replicas, Some(2), "the controller's status, not the body's");
    let v = serde_json::to_value(&created).unwrap();
    assert!(fields_of(&v, "matih", "Apply").unwrap().get("f:status").is_none());

    d["metadata"]["labels"] = json!({"team": "a"});
    let relabeled = api.patch("web", &pp, &Patch::Apply(&d)).await.unwrap();
    assert_eq!(relabeled.metadata.generation, Some(1), "metadata changes leave generation alone");
    d["spec"]["replicas"] = json!(3);
    let scaled = api.patch("web", &pp, &Patch::Apply(&d)).await.unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(scaled.status.unwrap().observed_generation, Some(2));
}

#[tokio::test]
async fn create_replace_and_the_requests_kube_rs_sends() {
    let em = KubeEmulator::start(Options::default());
    let api: Api<ConfigMap> = Api::namespaced(client(&em), "default");
    let obj: ConfigMap = serde_json::from_value(cm(json!({"a": "1"}))).unwrap();
    em.clear_requests();
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    let err = api_error(api.create(&PostParams::default(), &obj).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    let mut stale = created.clone();
    stale.data.as_mut().unwrap().insert("a".into(), "2".into());
    let replaced = api.replace("app", &PostParams::default(), &stale).await.unwrap();
    assert_eq!(replaced.data.as_ref().unwrap()["a"], "2");
    let err = api_error(api.replace("app", &PostParams::default(), &stale).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"), "the resourceVersion is stale now");

    api.patch("app", &PatchParams::apply("matih").force(), &Patch::Apply(&obj)).await.unwrap();
    let reqs = em.requests();
    let post = &reqs[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str(), post.status),
        ("POST", "/api/v1/namespaces/default/configmaps", 201)
    );
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    let apply_req = reqs.last().unwrap();
    assert_eq!(apply_req.method, "PATCH");
    assert_eq!(apply_req.path, "/api/v1/namespaces/default/configmaps/app");
    assert_eq!(apply_req.query, "&force=true&fieldManager=matih", "kube-rs starts the query with &");
    assert_eq!(apply_req.field_manager.as_deref(), Some("matih"));
    assert_eq!(apply_req.content_type.as_deref(), Some("application/apply-patch+yaml"));
    assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), [201, 409, 200, 409, 200]);
}

#[tokio::test]
async fn update_as_drives_custom_resource_status() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let crds = dynamic(&c, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", None);
    apply(&crds, "matih", &common::manifest("cert-manager/v1.21.1/crds/cert-manager.io_clusterissuers.yaml"))
        .await
        .unwrap();
    let issuers = dynamic(&c, "cert-manager.io/v1", "ClusterIssuer", "clusterissuers", None);
    let issuer = json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "ss"}, "spec": {"selfSigned": {}}});
    apply(&issuers, "matih", &issuer).await.unwrap();

    em.update_as("cert-manager", "cert-manager.io/v1", "ClusterIssuer", None, "ss", |o| {
        // The closure may read the emulator: it runs outside its lock.
        assert!(
            em.get("cert-manager.io/v1", "ClusterIssuer", None, "ss").is_some() && o["spec"]["selfSigned"].is_object()
        );
        o["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "reason": "IsReady"}]});
    });
    let live = issuers.get("ss").await.unwrap();
    assert_eq!(live.data["status"]["conditions"][0]["status"], "True");
    // Re-applying the spec leaves the status alone.
    let again = apply(&issuers, "matih", &issuer).await.unwrap();
    assert_eq!(again.data["status"]["conditions"][0]["reason"], "IsReady");
}

#[test]
fn a_plain_http_client_can_apply_real_yaml() {
    use std::io::{Read, Write};
    let em = KubeEmulator::start(Options::default());
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n  namespace: default\ndata:\n  key: |\n    line one\n";
    let addr = em.url().trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "PATCH /api/v1/namespaces/default/configmaps/from-yaml?fieldManager=curl HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/apply-patch+yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{yaml}",
        yaml.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let stored = em.get("v1", "ConfigMap", Some("default"), "from-yaml").unwrap();
    assert_eq!(stored["data"]["key"], "line one\n");
    assert_eq!(common::managers(&stored), [("curl".to_string(), "Apply".to_string())]);
}

fn deployment(env: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1", "env": env, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

/// Lists merge by their list type, as a real server does: a container env var another manager
/// added is that manager's item; the applier neither removes it nor loses its own fields to it.
#[tokio::test]
async fn map_lists_merge_per_item_with_owners_per_item() {
    let em = KubeEmulator::start(Options::default());
    let api = dynamic(&client(&em), "apps/v1", "Deployment", "deployments", Some("default"));
    apply(&api, "matih", &deployment(json!([{"name": "A", "value": "1"}]))).await.unwrap();

    // A mutating controller's Update adds an env var (a JSON merge patch replaces the list: it
    // sends both items, as `kubectl edit` would).
    let live = em.get("apps/v1", "Deployment", Some("default"), "web").unwrap();
    let mut containers = live["spec"]["template"]["spec"]["containers"].clone();
    containers[0]["env"].as_array_mut().unwrap().push(json!({"name": "INJECTED", "value": "yes"}));
    let patch = json!({"spec": {"template": {"spec": {"containers": containers}}}});
    api.patch(
        "web",
        &PatchParams { field_manager: Some("injector".into()), ..Default::default() },
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let v = em.get("apps/v1", "Deployment", Some("default"), "web").unwrap();
    let injector = fields_of(&v, "injector", "Update").unwrap();
    let env = &injector["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"web"}"#]["f:env"];
    assert_eq!(env, &json!({r#"k:{"name":"INJECTED"}"#: {".": {}, "f:name": {}, "f:value": {}}}), "{injector:#}");
    let matih = fields_of(&v, "matih", "Apply").unwrap();
    let web = &matih["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"web"}"#];
    assert_eq!(web["f:env"], json!({r#"k:{"name":"A"}"#: {".": {}, "f:name": {}, "f:value": {}}}));
    assert_eq!(web["f:ports"], json!({r#"k:{"containerPort":80,"protocol":"TCP"}"#: {".": {}, "f:containerPort": {}}}));

    // The applier applies again, changed: the injected variable stays.
    let changed = apply(&api, "matih", &deployment(json!([{"name": "A", "value": "2"}]))).await.unwrap();
    let env = &changed.data["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env, &json!([{"name": "A", "value": "2"}, {"name": "INJECTED", "value": "yes"}]));
    // An item that omits its key is refused in the server's words.
    let mut keyless = deployment(json!([{"value": "x"}]));
    keyless["metadata"]["name"] = json!("web");
    let err = api_error(apply(&api, "matih", &keyless).await);
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains(r#"associative list with keys has an element that omits key field "name""#),
        "{}",
        err.message
    );
}
