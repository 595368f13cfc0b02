//! How server-side apply treats each list of a kind: `atomic` (one field, replaced whole), `set`
//! (each value its own field) or `map` (each item its own field, identified by its key fields).
//!
//! Built-in kinds: the `x-kubernetes-list-type` / `x-kubernetes-list-map-keys` of the Kubernetes
//! 1.33 OpenAPI v3 documents (`api/openapi-spec/v3`), for the lists of object metadata, pod
//! templates (every workload kind) and Services; every other built-in list is atomic here, where
//! the real server knows a few more (status conditions, RBAC has none). Custom resources: the
//! CRD's structural schema, where a list without `x-kubernetes-list-type` is atomic, as on a real
//! server.

use std::sync::Arc;

use serde_json::Value;

use crate::catalog::{ResourceType, Validation};
use crate::fields::Seg;

/// How one list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    Atomic,
    Set,
    /// Items identified by these fields, each with the default the server fills in when an item
    /// leaves it out (`protocol: TCP`).
    Map(Vec<(String, Option<Value>)>),
}

/// The list types of one kind.
#[derive(Clone, Debug)]
pub(crate) struct ListTypes {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Builtin {
        group: String,
        kind: String,
    },
    Schema(Arc<Value>),
    /// A custom resource without a schema: every list atomic (but metadata's).
    None,
}

/// Where a kind keeps its pod template's `PodSpec`.
fn pod_spec_root(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    Some(match (group, kind) {
        ("", "Pod") => &["spec"],
        ("", "PodTemplate") => &["template", "spec"],
        ("apps", "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet") | ("batch", "Job") => {
            &["spec", "template", "spec"]
        }
        ("", "ReplicationController") => &["spec", "template", "spec"],
        ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

fn map(keys: &[&str]) -> ListKind {
    ListKind::Map(
        keys.iter().map(|k| (k.to_string(), (*k == "protocol").then(|| Value::String("TCP".into())))).collect(),
    )
}

/// `metadata.*` lists, the same on every kind (ObjectMeta).
fn metadata_list(rel: &[&str]) -> ListKind {
    match rel {
        ["finalizers"] => ListKind::Set,
        ["ownerReferences"] => map(&["uid"]),
        _ => ListKind::Atomic,
    }
}

/// Lists of a `PodSpec`, `rel` from the PodSpec.
fn pod_spec_list(rel: &[&str]) -> ListKind {
    const CONTAINERS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
    match rel {
        [c] if CONTAINERS.contains(c) => map(&["name"]),
        ["volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims"] => map(&["name"]),
        ["hostAliases"] => map(&["ip"]),
        ["topologySpreadConstraints"] => map(&["topologyKey", "whenUnsatisfiable"]),
        [c, "env"] if CONTAINERS.contains(c) => map(&["name"]),
        [c, "ports"] if CONTAINERS.contains(c) => map(&["containerPort", "protocol"]),
        [c, "volumeMounts"] if CONTAINERS.contains(c) => map(&["mountPath"]),
        [c, "volumeDevices"] if CONTAINERS.contains(c) => map(&["devicePath"]),
        _ => ListKind::Atomic,
    }
}

impl ListTypes {
    pub(crate) fn of(rt: &ResourceType) -> ListTypes {
        let source = match &rt.validation {
            Validation::Typed(_) => Source::Builtin { group: rt.group.clone(), kind: rt.kind.clone() },
            Validation::Schema(s) => Source::Schema(s.clone()),
            Validation::None => Source::None,
        };
        ListTypes { source }
    }

    /// Every list atomic but metadata's: for tests of the field machinery alone.
    #[cfg(test)]
    pub(crate) fn none() -> ListTypes {
        ListTypes { source: Source::None }
    }

    /// The list at `path` (field names, and list items on the way).
    pub(crate) fn at(&self, path: &[Seg]) -> ListKind {
        let names: Vec<&str> = path
            .iter()
            .filter_map(|s| match s {
                Seg::Field(f) => Some(f.as_str()),
                Seg::Key(_) | Seg::Value(_) => None,
            })
            .collect();
        if let ["metadata", rel @ ..] = names.as_slice() {
            return metadata_list(rel);
        }
        match &self.source {
            Source::Builtin { group, kind } => {
                if let Some(root) = pod_spec_root(group, kind)
                    && let Some(rel) = names.strip_prefix(root)
                {
                    return pod_spec_list(rel);
                }
                match (group.as_str(), kind.as_str(), names.as_slice()) {
                    ("", "Service", ["spec", "ports"]) => map(&["port", "protocol"]),
                    _ => ListKind::Atomic,
                }
            }
            Source::Schema(schema) => schema_list(schema, path),
            Source::None => ListKind::Atomic,
        }
    }
}

/// Follows `path` through a structural schema and reads the list's type there.
fn schema_list(schema: &Value, path: &[Seg]) -> ListKind {
    let mut node = schema;
    for seg in path {
        let next = match seg {
            Seg::Field(f) => node["properties"].get(f).or_else(|| node.get("additionalProperties")),
            Seg::Key(_) | Seg::Value(_) => node.get("items"),
        };
        match next {
            Some(n) if n.is_object() => node = n,
            _ => return ListKind::Atomic,
        }
    }
    match node["x-kubernetes-list-type"].as_str() {
        Some("set") => ListKind::Set,
        Some("map") => ListKind::Map(
            node["x-kubernetes-list-map-keys"]
                .as_array()
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(|k| (k.to_string(), node["items"]["properties"][k].get("default").cloned()))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => ListKind::Atomic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use serde_json::json;

    fn builtin(kind: &str) -> ListTypes {
        let rt = catalog::builtins().iter().find(|t| t.kind == kind).unwrap();
        ListTypes::of(rt)
    }

    fn path(s: &str) -> Vec<Seg> {
        s.split('.')
            .map(|p| match p {
                "*" => Seg::Key("{}".into()),
                f => Seg::Field(f.into()),
            })
            .collect()
    }

    #[test]
    fn pod_templates_services_and_metadata_have_the_specs_list_types() {
        let d = builtin("Deployment");
        assert_eq!(d.at(&path("spec.template.spec.containers")), map(&["name"]));
        assert_eq!(d.at(&path("spec.template.spec.containers.*.env")), map(&["name"]));
        assert_eq!(d.at(&path("spec.template.spec.containers.*.ports")), map(&["containerPort", "protocol"]));
        assert_eq!(d.at(&path("spec.template.spec.containers.*.args")), ListKind::Atomic);
        assert_eq!(d.at(&path("spec.template.spec.tolerations")), ListKind::Atomic);
        assert_eq!(d.at(&path("metadata.finalizers")), ListKind::Set);
        assert_eq!(builtin("CronJob").at(&path("spec.jobTemplate.spec.template.spec.volumes")), map(&["name"]));
        assert_eq!(builtin("Service").at(&path("spec.ports")), map(&["port", "protocol"]));
        assert_eq!(builtin("NetworkPolicy").at(&path("spec.ingress")), ListKind::Atomic);
        let ListKind::Map(keys) = builtin("Service").at(&path("spec.ports")) else { panic!() };
        assert_eq!(keys[1].1, Some(json!("TCP")), "protocol defaults to TCP");
    }

    /// The built-in table agrees with k8s-openapi's merge strategies, which its generator takes
    /// from the same OpenAPI documents (it keeps only the first map key, the patch merge key).
    #[test]
    fn the_table_agrees_with_k8s_openapis_merge_strategies() {
        use k8s_openapi::DeepMerge;
        use k8s_openapi::api::apps::v1::Deployment;
        // Two containers lists with different items: a map list keeps both, an atomic one the second.
        let deployment = |env: Value, args: Value| -> Deployment {
            serde_json::from_value(json!({"spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "app", "env": env, "args": args}
            ]}}}}))
            .unwrap()
        };
        let mut a = deployment(json!([{"name": "A"}]), json!(["a"]));
        a.merge_from(deployment(json!([{"name": "B"}]), json!(["b"])));
        let merged = serde_json::to_value(&a).unwrap();
        let c = &merged["spec"]["template"]["spec"]["containers"][0];
        let env: Vec<&str> = c["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(env, ["A", "B"], "env merges by name");
        assert_eq!(c["args"], json!(["b"]), "args are atomic");
        let d = builtin("Deployment");
        assert!(matches!(d.at(&path("spec.template.spec.containers.*.env")), ListKind::Map(_)));
        assert_eq!(d.at(&path("spec.template.spec.containers.*.args")), ListKind::Atomic);
    }

    #[test]
    fn crd_schemas_say_it_themselves_and_default_to_atomic() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "servers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "port"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer", "default": 80},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}},
            "plain": {"type": "array", "items": {"type": "string"}}
        }}}});
        let lt = ListTypes { source: Source::Schema(Arc::new(schema)) };
        assert_eq!(
            lt.at(&path("spec.servers")),
            ListKind::Map(vec![("name".into(), None), ("port".into(), Some(json!(80)))])
        );
        assert_eq!(lt.at(&path("spec.servers.*.tags")), ListKind::Set);
        assert_eq!(lt.at(&path("spec.plain")), ListKind::Atomic);
        assert_eq!(lt.at(&path("metadata.finalizers")), ListKind::Set);
    }
}
