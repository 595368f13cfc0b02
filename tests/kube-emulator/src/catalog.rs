//! The kinds the emulator serves: a fixed table of built-in kinds (validated by round-tripping
//! through their `k8s-openapi` types) and the kinds custom resource definitions add (validated
//! against their structural schemas).
//!
//! It describes kinds; it stores nothing and serves nothing. One version per built-in group (the
//! GA one); no deprecated or beta versions, no aggregated API services.

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::{
    admissionregistration::v1 as admission, apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
    coordination::v1 as coordination, core::v1 as core, networking::v1 as networking, policy::v1 as policy,
    rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use serde_json::Value;

/// How an object of a kind is checked beyond its metadata.
#[derive(Clone, Debug)]
pub(crate) enum Validation {
    /// Deserialize into the `k8s-openapi` type and serialize back: an error is a wrong type or a
    /// missing required field; a field present before and gone after is unknown.
    Typed(fn(&Value) -> Result<Value, serde_json::Error>),
    /// A custom resource version's `openAPIV3Schema`.
    Schema(Arc<Value>),
    /// A custom resource version without a schema (accepted as is).
    None,
}

/// Which names a kind accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// DNS-1123 subdomain: most kinds.
    Subdomain,
    /// DNS-1123 label: Namespaces.
    Label1123,
    /// DNS-1035 label (starts with a letter): Services.
    Label1035,
    /// Anything usable as a path segment (no `/`, `%`, not `.`/`..`): RBAC kinds (`system:foo`).
    PathSegment,
}

/// One served resource (a kind at one version).
#[derive(Clone, Debug)]
pub(crate) struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `status` subresource: status is ignored in writes to the main resource.
    pub status: bool,
    pub validation: Validation,
    pub names: NameRule,
}

impl ResourceType {
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Storage key: objects of a group and plural are one collection, whatever the version.
    pub(crate) fn key(&self) -> (String, String) {
        (self.group.clone(), self.plural.clone())
    }

    pub(crate) fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }

    /// `configmaps` or `deployments.apps`, as in error messages.
    pub(crate) fn qualified_plural(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) -> Result<Value, serde_json::Error> {
    let typed: T = serde_json::from_value(v.clone())?;
    serde_json::to_value(&typed)
}

struct Def {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    names: NameRule,
    typed: fn(&Value) -> Result<Value, serde_json::Error>,
}

macro_rules! def {
    ($group:expr, $ty:ty, $kind:expr, $plural:expr, ns = $ns:expr, short = $short:expr, all = $all:expr, status = $status:expr) => {
        def!(
            $group,
            $ty,
            $kind,
            $plural,
            ns = $ns,
            short = $short,
            all = $all,
            status = $status,
            names = NameRule::Subdomain
        )
    };
    ($group:expr, $ty:ty, $kind:expr, $plural:expr, ns = $ns:expr, short = $short:expr, all = $all:expr, status = $status:expr, names = $names:expr) => {
        Def {
            group: $group,
            kind: $kind,
            plural: $plural,
            namespaced: $ns,
            short: $short,
            all: $all,
            status: $status,
            names: $names,
            typed: round_trip::<$ty>,
        }
    };
}

/// Built-in groups and their one version, in discovery order.
pub(crate) const BUILTIN_GROUPS: &[(&str, &str)] = &[
    ("", "v1"),
    ("apps", "v1"),
    ("batch", "v1"),
    ("autoscaling", "v2"),
    ("policy", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("networking.k8s.io", "v1"),
    ("storage.k8s.io", "v1"),
    ("scheduling.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
    ("admissionregistration.k8s.io", "v1"),
    ("apiextensions.k8s.io", "v1"),
];

fn defs() -> Vec<Def> {
    use NameRule::*;
    vec![
        def!(
            "",
            core::Namespace,
            "Namespace",
            "namespaces",
            ns = false,
            short = &["ns"],
            all = false,
            status = true,
            names = Label1123
        ),
        def!("", core::ConfigMap, "ConfigMap", "configmaps", ns = true, short = &["cm"], all = false, status = false),
        def!("", core::Secret, "Secret", "secrets", ns = true, short = &[], all = false, status = false),
        def!(
            "",
            core::Service,
            "Service",
            "services",
            ns = true,
            short = &["svc"],
            all = true,
            status = true,
            names = Label1035
        ),
        def!(
            "",
            core::ServiceAccount,
            "ServiceAccount",
            "serviceaccounts",
            ns = true,
            short = &["sa"],
            all = false,
            status = false
        ),
        def!("", core::Pod, "Pod", "pods", ns = true, short = &["po"], all = true, status = true),
        def!("", core::Node, "Node", "nodes", ns = false, short = &["no"], all = false, status = true),
        def!("", core::Endpoints, "Endpoints", "endpoints", ns = true, short = &["ep"], all = false, status = false),
        def!(
            "",
            core::PersistentVolumeClaim,
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            ns = true,
            short = &["pvc"],
            all = false,
            status = true
        ),
        def!(
            "",
            core::PersistentVolume,
            "PersistentVolume",
            "persistentvolumes",
            ns = false,
            short = &["pv"],
            all = false,
            status = true
        ),
        def!(
            "",
            core::ResourceQuota,
            "ResourceQuota",
            "resourcequotas",
            ns = true,
            short = &["quota"],
            all = false,
            status = true
        ),
        def!(
            "",
            core::LimitRange,
            "LimitRange",
            "limitranges",
            ns = true,
            short = &["limits"],
            all = false,
            status = false
        ),
        def!(
            "apps",
            apps::Deployment,
            "Deployment",
            "deployments",
            ns = true,
            short = &["deploy"],
            all = true,
            status = true
        ),
        def!("apps", apps::DaemonSet, "DaemonSet", "daemonsets", ns = true, short = &["ds"], all = true, status = true),
        def!(
            "apps",
            apps::StatefulSet,
            "StatefulSet",
            "statefulsets",
            ns = true,
            short = &["sts"],
            all = true,
            status = true
        ),
        def!(
            "apps",
            apps::ReplicaSet,
            "ReplicaSet",
            "replicasets",
            ns = true,
            short = &["rs"],
            all = true,
            status = true
        ),
        def!("batch", batch::Job, "Job", "jobs", ns = true, short = &[], all = true, status = true),
        def!("batch", batch::CronJob, "CronJob", "cronjobs", ns = true, short = &["cj"], all = true, status = true),
        def!(
            "autoscaling",
            autoscaling::HorizontalPodAutoscaler,
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            ns = true,
            short = &["hpa"],
            all = true,
            status = true
        ),
        def!(
            "policy",
            policy::PodDisruptionBudget,
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            ns = true,
            short = &["pdb"],
            all = false,
            status = true
        ),
        def!(
            "rbac.authorization.k8s.io",
            rbac::Role,
            "Role",
            "roles",
            ns = true,
            short = &[],
            all = false,
            status = false,
            names = PathSegment
        ),
        def!(
            "rbac.authorization.k8s.io",
            rbac::RoleBinding,
            "RoleBinding",
            "rolebindings",
            ns = true,
            short = &[],
            all = false,
            status = false,
            names = PathSegment
        ),
        def!(
            "rbac.authorization.k8s.io",
            rbac::ClusterRole,
            "ClusterRole",
            "clusterroles",
            ns = false,
            short = &[],
            all = false,
            status = false,
            names = PathSegment
        ),
        def!(
            "rbac.authorization.k8s.io",
            rbac::ClusterRoleBinding,
            "ClusterRoleBinding",
            "clusterrolebindings",
            ns = false,
            short = &[],
            all = false,
            status = false,
            names = PathSegment
        ),
        def!(
            "networking.k8s.io",
            networking::NetworkPolicy,
            "NetworkPolicy",
            "networkpolicies",
            ns = true,
            short = &["netpol"],
            all = false,
            status = false
        ),
        def!(
            "networking.k8s.io",
            networking::IngressClass,
            "IngressClass",
            "ingressclasses",
            ns = false,
            short = &[],
            all = false,
            status = false
        ),
        def!(
            "networking.k8s.io",
            networking::Ingress,
            "Ingress",
            "ingresses",
            ns = true,
            short = &["ing"],
            all = false,
            status = true
        ),
        def!(
            "storage.k8s.io",
            storage::StorageClass,
            "StorageClass",
            "storageclasses",
            ns = false,
            short = &["sc"],
            all = false,
            status = false
        ),
        def!(
            "scheduling.k8s.io",
            scheduling::PriorityClass,
            "PriorityClass",
            "priorityclasses",
            ns = false,
            short = &["pc"],
            all = false,
            status = false
        ),
        def!(
            "coordination.k8s.io",
            coordination::Lease,
            "Lease",
            "leases",
            ns = true,
            short = &[],
            all = false,
            status = false
        ),
        def!(
            "admissionregistration.k8s.io",
            admission::ValidatingWebhookConfiguration,
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            ns = false,
            short = &[],
            all = false,
            status = false
        ),
        def!(
            "admissionregistration.k8s.io",
            admission::MutatingWebhookConfiguration,
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            ns = false,
            short = &[],
            all = false,
            status = false
        ),
        def!(
            "apiextensions.k8s.io",
            apiextensions::CustomResourceDefinition,
            "CustomResourceDefinition",
            "customresourcedefinitions",
            ns = false,
            short = &["crd", "crds"],
            all = false,
            status = true
        ),
    ]
}

/// The built-in kinds.
pub(crate) fn builtins() -> &'static [ResourceType] {
    static TABLE: OnceLock<Vec<ResourceType>> = OnceLock::new();
    TABLE.get_or_init(|| {
        defs()
            .into_iter()
            .map(|d| {
                let version = BUILTIN_GROUPS.iter().find(|(g, _)| *g == d.group).map(|(_, v)| *v).unwrap_or("v1");
                ResourceType {
                    group: d.group.to_string(),
                    version: version.to_string(),
                    kind: d.kind.to_string(),
                    plural: d.plural.to_string(),
                    singular: d.kind.to_lowercase(),
                    namespaced: d.namespaced,
                    short_names: d.short.iter().map(|s| s.to_string()).collect(),
                    categories: if d.all { vec!["all".to_string()] } else { Vec::new() },
                    status: d.status,
                    validation: Validation::Typed(d.typed),
                    names: d.names,
                }
            })
            .collect()
    })
}

/// The resources a stored CRD serves (one per served version).
pub(crate) fn crd_types(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default()
    };
    let kind = s(&names["kind"]);
    let singular = names["singular"].as_str().map(String::from).unwrap_or_else(|| kind.to_lowercase());
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .map(|v| ResourceType {
            group: s(&spec["group"]),
            version: s(&v["name"]),
            kind: kind.clone(),
            plural: s(&names["plural"]),
            singular: singular.clone(),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            status: v.pointer("/subresources/status").is_some(),
            validation: match v.pointer("/schema/openAPIV3Schema") {
                Some(schema) => Validation::Schema(Arc::new(schema.clone())),
                None => Validation::None,
            },
            names: NameRule::Subdomain,
        })
        .collect()
}

/// Kubernetes version priority: GA before beta before alpha, higher numbers first, then other
/// names alphabetically. Returns a sort key (smaller first).
pub(crate) fn version_priority(v: &str) -> (u8, i64, i64, String) {
    let parse = || -> Option<(u8, i64, i64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: i64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((0, -major, 0));
        }
        for (prefix, rank) in [("beta", 1u8), ("alpha", 2u8)] {
            if let Some(n) = tail.strip_prefix(prefix) {
                let minor: i64 = if n.is_empty() { 0 } else { n.parse().ok()? };
                return Some((rank, -major, -minor));
            }
        }
        None
    };
    match parse() {
        Some((rank, major, minor)) => (rank, major, minor, String::new()),
        None => (3, 0, 0, v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "foo", "v2beta1", "v1", "v2", "v1beta2", "v1beta1"];
        v.sort_by_key(|x| version_priority(x));
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }

    #[test]
    fn round_trip_loses_unknown_fields_and_rejects_wrong_types() {
        let Validation::Typed(f) = builtins().iter().find(|r| r.kind == "ConfigMap").unwrap().validation else {
            panic!("typed")
        };
        let out =
            f(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "bogus": 1}))
                .unwrap();
        assert!(out.get("bogus").is_none());
        assert!(f(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 1}})).is_err());
    }
}
