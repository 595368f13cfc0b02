//! Admission webhooks as the API server calls them: a write (create or update) of a resource that
//! a Validating- or MutatingWebhookConfiguration's rules match goes to the webhook's service
//! first. The emulator runs no webhook servers: a service's backend is "up" or "down" (all up, or
//! all down until a test brings them up: [`crate::WebhookBackends`]), and a test can make a
//! webhook refuse. A webhook whose backend is down fails the write with the API server's 500
//! (`failurePolicy: Fail`, the default) or is skipped (`Ignore`); one that refuses fails it with
//! 400 and the webhook's message.
//!
//! Matched: `rules` (apiGroups, apiVersions, resources with `*`, `*/*` and `<plural>/*`,
//! operations), `namespaceSelector` and `objectSelector` (matchLabels and the four
//! matchExpressions operators). Not modelled: mutation (a mutating webhook only validates here),
//! `matchConditions`, `matchPolicy: Exact` (every rule matches equivalently), timeouts, deletes
//! and subresources (writes to `status` are not sent to webhooks, as most rules do not list them),
//! and webhooks given by URL (always up).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::catalog::ResourceType;
use crate::error::ApiError;

/// What the test has said about webhook backends and webhooks.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Backends (`namespace/service`) explicitly up or down.
    pub backends: BTreeMap<(String, String), bool>,
    /// Whether a backend nobody said anything about is up.
    pub default_up: bool,
    /// Webhooks (by `webhooks[].name`) that refuse every request, with their message.
    pub refusals: BTreeMap<String, String>,
}

/// One write the webhooks see.
pub(crate) struct Request<'a> {
    pub rt: &'a ResourceType,
    /// `CREATE` or `UPDATE`.
    pub operation: &'a str,
    pub object: &'a Value,
    /// The labels of the object's namespace (empty for cluster-scoped objects).
    pub namespace_labels: &'a BTreeMap<String, String>,
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// Whether `labels` satisfy a `LabelSelector` (an absent or empty selector matches everything).
pub(crate) fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str()));
    let by_expressions = selector["matchExpressions"].as_array().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values = strs(&e["values"]);
            let have = labels.get(key).map(String::as_str);
            match e["operator"].as_str().unwrap_or_default() {
                "In" => have.is_some_and(|h| values.contains(&h)),
                "NotIn" => have.is_none_or(|h| !values.contains(&h)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            }
        })
    });
    by_labels && by_expressions
}

fn rule_matches(rule: &Value, req: &Request<'_>) -> bool {
    let any = |list: &[&str], want: &str| list.iter().any(|x| *x == "*" || *x == want);
    let resources = strs(&rule["resources"]);
    let resource_ok = resources
        .iter()
        .any(|r| *r == "*" || *r == "*/*" || *r == req.rt.plural || *r == format!("{}/*", req.rt.plural));
    let scope_ok = match rule["scope"].as_str() {
        Some("Cluster") => !req.rt.namespaced,
        Some("Namespaced") => req.rt.namespaced,
        _ => true,
    };
    any(&strs(&rule["apiGroups"]), &req.rt.group)
        && any(&strs(&rule["apiVersions"]), &req.rt.version)
        && any(&strs(&rule["operations"]), req.operation)
        && resource_ok
        && scope_ok
}

impl Admission {
    fn up(&self, namespace: &str, service: &str) -> bool {
        self.backends.get(&(namespace.to_string(), service.to_string())).copied().unwrap_or(self.default_up)
    }

    /// Runs `req` past every webhook of `configurations` (Validating- and
    /// MutatingWebhookConfiguration objects); the first that fails it decides.
    pub(crate) fn check(&self, configurations: &[Value], req: &Request<'_>) -> Result<(), ApiError> {
        // Webhook configurations are never sent to webhooks (the API server's own rule).
        if req.rt.group == "admissionregistration.k8s.io" {
            return Ok(());
        }
        let object_labels = labels_of(req.object);
        for config in configurations {
            for hook in config["webhooks"].as_array().into_iter().flatten() {
                let name = hook["name"].as_str().unwrap_or_default();
                let matched = hook["rules"].as_array().into_iter().flatten().any(|r| rule_matches(r, req))
                    && (!req.rt.namespaced || selects(&hook["namespaceSelector"], req.namespace_labels))
                    && selects(&hook["objectSelector"], &object_labels);
                if !matched {
                    continue;
                }
                if let Some(message) = self.refusals.get(name) {
                    return Err(ApiError::denied(format!("admission webhook {name:?} denied the request: {message}")));
                }
                let Some(svc) = hook.pointer("/clientConfig/service") else { continue };
                let (ns, service) =
                    (svc["namespace"].as_str().unwrap_or_default(), svc["name"].as_str().unwrap_or_default());
                if self.up(ns, service) || hook["failurePolicy"].as_str() == Some("Ignore") {
                    continue;
                }
                let port = svc["port"].as_i64().unwrap_or(443);
                let path = svc["path"].as_str().unwrap_or_default();
                let timeout = hook["timeoutSeconds"].as_i64().unwrap_or(10);
                return Err(ApiError::internal(
                    format!(
                        "Internal error occurred: failed calling webhook {name:?}: failed to call webhook: Post \
                         \"https://{service}.{ns}.svc:{port}{path}?timeout={timeout}s\": no endpoints available for \
                         service {service:?}"
                    ),
                    json!({"causes": [{"message": format!("failed calling webhook {name:?}: no endpoints available for service {service:?}")}]}),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: BTreeMap<String, String> = [("team".to_string(), "a".to_string())].into();
        assert!(selects(&Value::Null, &labels));
        assert!(selects(&json!({"matchLabels": {"team": "a"}}), &labels));
        assert!(!selects(&json!({"matchLabels": {"team": "b"}}), &labels));
        assert!(selects(&json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}), &labels));
        assert!(!selects(
            &json!({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}),
            &labels
        ));
        assert!(selects(
            &json!({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]}),
            &labels
        ));
    }
}
