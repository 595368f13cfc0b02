//! Admission webhooks as the API server calls them, through the real kube-rs client: a write a
//! webhook matches fails with the server's 500 while the webhook's service has no ready backend
//! (unless `failurePolicy: Ignore`), goes through once it is up, and fails with the webhook's
//! message when the webhook refuses.

mod common;

use common::{api_error, apply, client, dynamic};
use matih_kube_emulator::{KubeEmulator, Options, WebhookBackends};
use serde_json::{Value, json};

fn webhook_configuration(failure_policy: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": format!("guard-{}", failure_policy.to_lowercase())},
        "webhooks": [{
            "name": format!("{}.guard.example.com", failure_policy.to_lowercase()),
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": failure_policy,
            "clientConfig": {"service": {"namespace": "guard", "name": format!("guard-{}", failure_policy.to_lowercase()), "path": "/validate"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}],
            "objectSelector": {"matchLabels": {"guarded": failure_policy.to_lowercase()}},
        }]
    })
}

fn cm(name: &str, guarded: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "labels": {"guarded": guarded}}, "data": {"k": "v"}})
}

#[tokio::test]
async fn a_webhook_without_backends_fails_matching_writes_until_it_serves() {
    let em = KubeEmulator::start(Options { webhooks: WebhookBackends::Down, ..Options::default() });
    let c = client(&em);
    let hooks = dynamic(
        &c,
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        None,
    );
    apply(&hooks, "test", &webhook_configuration("Fail")).await.unwrap();
    apply(&hooks, "test", &webhook_configuration("Ignore")).await.unwrap();
    let cms = dynamic(&c, "v1", "ConfigMap", "configmaps", Some("default"));

    let err = api_error(apply(&cms, "test", &cm("a", "fail")).await);
    assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"), "{err:?}");
    assert!(
        err.message.starts_with(r#"Internal error occurred: failed calling webhook "fail.guard.example.com""#),
        "{}",
        err.message
    );
    assert!(err.message.contains(r#"no endpoints available for service "guard-fail""#), "{}", err.message);
    assert!(em.get("v1", "ConfigMap", Some("default"), "a").is_none(), "nothing written");
    // `Ignore` lets the write through; an object the selector does not match never meets it.
    apply(&cms, "test", &cm("b", "ignore")).await.unwrap();
    apply(&cms, "test", &cm("c", "nobody")).await.unwrap();

    em.set_webhook_backend("guard", "guard-fail", true);
    apply(&cms, "test", &cm("a", "fail")).await.unwrap();

    em.refuse_admission("fail.guard.example.com", Some("data.k: must not be v"));
    let mut changed = cm("a", "fail");
    changed["data"]["k"] = json!("v2");
    let err = api_error(apply(&cms, "test", &changed).await);
    assert_eq!(err.code, 400, "{err:?}");
    assert_eq!(err.message, r#"admission webhook "fail.guard.example.com" denied the request: data.k: must not be v"#);
}
