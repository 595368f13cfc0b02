//! In-cluster plans a reviewer can read: snapshots of the EKS plan, as text and as the JSON
//! document's reviewable part (drift, and each change's attributes and objects), for a fresh
//! platform, a tenant added, a network-policy setting changed, and a ConfigMap edited by hand.
//!
//! Each add-on instance lists the objects it creates, updates and deletes as `Kind
//! namespace/name`; an update shows the changed fields (path, old → new); an upstream release's
//! objects are listed under it with its pinned digest. To accept a deliberate change, run with
//! `INSTA_UPDATE=always` (or `cargo insta review`) and read the diff.

use super::*;

/// What a reviewer reads in the JSON plan: drift, and every change but no-ops without the
/// configuration apply would send (which carries whole objects).
fn reviewable(plan: &Value) -> Value {
    let changes: Vec<Value> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| {
            let mut r = json!({"address": c["address"], "action": c["action"], "reason": c["reason"]});
            for k in ["attributes", "parts"] {
                if let Some(v) = c.get(k) {
                    r[k] = v.clone();
                }
            }
            r
        })
        .collect();
    json!({"drift": plan["drift"], "changes": changes, "summary": plan["summary"]})
}

/// Values that differ from run to run: when moto made the cluster, its endpoint and CA.
fn stable<R>(f: impl FnOnce() -> R) -> R {
    insta::with_settings!({ filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[time]"),
        (r#""ca_data": "[^"]*""#, r#""ca_data": "[ca]""#),
        (r#""endpoint": "https://[^"]*""#, r#""endpoint": "[endpoint]""#),
    ]}, { f() })
}

fn plan_both(w: &Work) -> (String, Value) {
    let out = w.run(&args(&["plan", "--no-color"]));
    assert!(matches!(code(&out), 0 | 2), "{}", text(&out.stderr));
    let (c, v) = w.json(&args(&["plan", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    (text(&out.stdout), reviewable(&v))
}

/// The add-on changes of a plan: the part of the text from the first `k8s.addon` line on, and
/// the drift section, so that the snapshots stay about the cluster.
fn addon_text(text: &str) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in text.lines() {
        let head = line.trim_start();
        let resource_line = line.starts_with("  ") && !line.starts_with("      ") && !head.is_empty();
        if resource_line || line.is_empty() || !line.starts_with(' ') {
            keep = head.contains("k8s.addon") || !line.starts_with(' ');
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn a_fresh_platform_lists_every_object_of_every_add_on() {
    let moto = Moto::start();
    let (w, _kube) = work(&moto);
    let (text, json) = plan_both(&w);
    stable(|| {
        insta::assert_snapshot!("fresh_platform_text", addon_text(&text));
        insta::assert_json_snapshot!("fresh_platform_json", addon_json(&json));
    });
}

#[test]
fn a_tenant_added_shows_its_objects_and_the_policies_it_changes() {
    let moto = Moto::start();
    let (w, _kube) = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    assert_eq!(code(&w.run(&args(&["tenant", "add", "globex", "--name", "Globex", "-q"]))), 0);
    let (text, json) = plan_both(&w);
    stable(|| {
        insta::assert_snapshot!("tenant_added_text", addon_text(&text));
        insta::assert_json_snapshot!("tenant_added_json", addon_json(&json));
    });
}

#[test]
fn a_policy_setting_changed_shows_the_policies_created_and_deleted() {
    let moto = Moto::start();
    let (w, _kube) = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    w.edit(
        "matih.yaml",
        "internet_egress: [matih-control-plane, matih-data-plane]",
        "internet_egress: [matih-data-plane, matih-frontend]",
    );
    let (text, json) = plan_both(&w);
    stable(|| {
        insta::assert_snapshot!("policy_changed_text", addon_text(&text));
        insta::assert_json_snapshot!("policy_changed_json", addon_json(&json));
    });
}

#[test]
fn a_configmap_edited_by_hand_shows_the_edit_and_its_repair() {
    let moto = Moto::start();
    let (w, kube) = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    kube.update_as("kubectl-edit", "v1", "ConfigMap", Some("kube-system"), "coredns", |o| {
        let corefile =
            o["data"]["Corefile"].as_str().unwrap().replace("forward . 1.1.1.1 8.8.8.8", "forward . 9.9.9.9");
        o["data"]["Corefile"] = json!(corefile);
    });
    let (text, json) = plan_both(&w);
    stable(|| {
        insta::assert_snapshot!("configmap_edited_text", addon_text(&text));
        insta::assert_json_snapshot!("configmap_edited_json", addon_json(&json));
    });
}

/// The reviewable JSON restricted to the add-ons.
fn addon_json(v: &Value) -> Value {
    let keep = |list: &Value| -> Vec<Value> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|c| c["address"].as_str().unwrap().starts_with("k8s.addon"))
            .cloned()
            .collect()
    };
    json!({"drift": keep(&v["drift"]), "changes": keep(&v["changes"])})
}
