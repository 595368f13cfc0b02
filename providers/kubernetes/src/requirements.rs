//! Which Kubernetes version a set of manifests needs: the API versions and kinds they use, and the
//! fields and CEL functions in them that an older API server refuses. The platform spec's floor
//! table (`matih_spec::floors`) is checked against what this finds in the pinned releases.
//!
//! It knows the features the pinned releases use and a few common neighbours, not every feature
//! Kubernetes ever added: a manifest using nothing it knows needs "1.16" (CRDs v1, webhooks v1).

use serde_json::Value as Json;

/// One thing in a manifest that needs at least Kubernetes 1.`minor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub minor: u32,
    /// `Kind namespace/name: what`.
    pub what: String,
}

/// API versions and kinds by the minor version that serves them (v1 or the GA version).
const KINDS: &[(&str, &str, u32, &str)] = &[
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", 16, "apiextensions.k8s.io/v1"),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", 16, "admissionregistration.k8s.io/v1"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", 16, "admissionregistration.k8s.io/v1"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", 30, "ValidatingAdmissionPolicy v1"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", 30, "ValidatingAdmissionPolicy v1"),
    ("networking.k8s.io/v1", "Ingress", 19, "networking.k8s.io/v1 Ingress"),
    ("networking.k8s.io/v1", "IngressClass", 19, "networking.k8s.io/v1 IngressClass"),
    ("batch/v1", "CronJob", 21, "batch/v1 CronJob"),
    ("policy/v1", "PodDisruptionBudget", 21, "policy/v1 PodDisruptionBudget"),
    ("discovery.k8s.io/v1", "EndpointSlice", 21, "discovery.k8s.io/v1"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", 23, "autoscaling/v2"),
    ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", 29, "flowcontrol.apiserver.k8s.io/v1"),
    ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration", 29, "flowcontrol.apiserver.k8s.io/v1"),
];

/// CEL functions of the Kubernetes libraries, by the minor version that has them.
const CEL: &[(&str, u32)] = &[
    ("isCIDR", 31),
    ("cidr", 31),
    ("isIP", 31),
    ("ip", 31),
    ("isQuantity", 29),
    ("quantity", 29),
    ("isURL", 24),
    ("url", 24),
];

fn name_of(o: &Json) -> String {
    let kind = o["kind"].as_str().unwrap_or("?");
    let name = o["metadata"]["name"].as_str().unwrap_or("?");
    match o["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Whether CEL `rule` calls `function` (as a call, not as part of a longer name).
fn calls(rule: &str, function: &str) -> bool {
    rule.match_indices(function).any(|(i, _)| {
        let before = rule[..i].chars().next_back();
        let after = rule[i + function.len()..].trim_start().starts_with('(');
        after && !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// What the CRD schema under `v` needs: validation rules and their features.
fn schema_needs(v: &Json, at: &str, out: &mut Vec<Need>) {
    match v {
        Json::Object(m) => {
            if let Some(Json::Array(rules)) = m.get("x-kubernetes-validations") {
                out.push(Need { minor: 25, what: format!("{at}: x-kubernetes-validations") });
                for r in rules {
                    if r.get("reason").is_some() || r.get("fieldPath").is_some() {
                        out.push(Need { minor: 28, what: format!("{at}: a validation rule's reason or fieldPath") });
                    }
                    if r.get("optionalOldSelf").is_some() {
                        out.push(Need { minor: 30, what: format!("{at}: a validation rule's optionalOldSelf") });
                    }
                    if r.get("messageExpression").is_some() {
                        out.push(Need { minor: 27, what: format!("{at}: a validation rule's messageExpression") });
                    }
                    let rule = r["rule"].as_str().unwrap_or_default();
                    for (f, minor) in CEL {
                        if calls(rule, f) {
                            out.push(Need { minor: *minor, what: format!("{at}: the CEL function {f}") });
                        }
                    }
                }
            }
            for (k, child) in m {
                if k != "x-kubernetes-validations" {
                    schema_needs(child, at, out);
                }
            }
        }
        Json::Array(a) => a.iter().for_each(|x| schema_needs(x, at, out)),
        _ => {}
    }
}

/// Everything in `objects` that needs a Kubernetes version, one entry per feature and object.
pub fn needs(objects: &[Json]) -> Vec<Need> {
    let mut out = Vec::new();
    for o in objects {
        let at = name_of(o);
        let (api, kind) = (o["apiVersion"].as_str().unwrap_or_default(), o["kind"].as_str().unwrap_or_default());
        if let Some((_, _, minor, what)) = KINDS.iter().find(|(a, k, _, _)| *a == api && *k == kind) {
            out.push(Need { minor: *minor, what: format!("{at}: {what}") });
        }
        if kind == "Job" && o.pointer("/spec/ttlSecondsAfterFinished").is_some() {
            out.push(Need { minor: 23, what: format!("{at}: ttlSecondsAfterFinished") });
        }
        if kind == "CustomResourceDefinition" {
            for v in o.pointer("/spec/versions").and_then(Json::as_array).into_iter().flatten() {
                if v.get("selectableFields").is_some() {
                    out.push(Need { minor: 30, what: format!("{at}: selectableFields") });
                }
                schema_needs(&v["schema"], &at, &mut out);
            }
        }
    }
    out
}

/// The highest need, if any.
pub fn floor(objects: &[Json]) -> Option<Need> {
    needs(objects).into_iter().max_by_key(|n| n.minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(rule: &str, extra: Json) -> Json {
        let mut v = json!({"name": "v1", "schema": {"openAPIV3Schema": {"properties": {"cidr": {
            "type": "string", "x-kubernetes-validations": [{"rule": rule}]}}}}});
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "things.example.com"}, "spec": {"versions": [v]}})
    }

    #[test]
    fn cel_functions_are_found_as_calls_only() {
        assert!(calls("isCIDR(self)", "isCIDR"));
        assert!(calls("self.all(x, ip (x).family() == 4)", "ip"));
        assert!(!calls("skip(self)", "ip"), "a longer name is another function");
        assert!(!calls("self.ip == 'x'", "ip"), "a field is not a call");
        assert_eq!(floor(&[crd("isCIDR(self)", json!({}))]).unwrap().minor, 31);
        assert_eq!(floor(&[crd("self.size() > 0", json!({}))]).unwrap().minor, 25);
        let selectable = crd("self.size() > 0", json!({"selectableFields": [{"jsonPath": ".spec.x"}]}));
        let f = floor(&[selectable]).unwrap();
        assert_eq!((f.minor, f.what.as_str()), (30, "CustomResourceDefinition things.example.com: selectableFields"));
    }

    #[test]
    fn kinds_and_job_fields_have_their_versions() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "n"},
                         "spec": {"ttlSecondsAfterFinished": 0}});
        let class =
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"}});
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(floor(&[job, class.clone(), cm.clone()]).unwrap().what, "Job n/j: ttlSecondsAfterFinished");
        assert_eq!(floor(&[class]).unwrap().minor, 19);
        assert!(floor(&[cm]).is_none());
    }
}
