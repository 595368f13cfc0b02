//! The seam a cloud plugs into ([`Cloud`]) and the typed binding between a cloud and the cluster
//! bootstrap ([`ClusterBinding`]): the cloud's resources say where its cluster is, which node
//! pools add-ons wait for, how each ingress controller's load balancer gets its reserved
//! address, which DNS01 solver answers for the zone, and what cert-manager's service account
//! needs. Both sides use these types; neither depends on the other's crate.
//!
//! Binding fields are typed over their value: `LoadBalancer<Value>` holds references to
//! resources not created yet when the graph is built, and the bootstrap reads the resolved
//! `LoadBalancer<String>` at apply time. [`to_value`] turns the one into the engine's value with
//! the references intact; serde turns the resolved JSON into the other.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use matih_plans::{DesiredGraph, Ownership, Provider, ProviderError, ResourceAddr, Value};
use matih_spec::{CloudKind, PlatformSpec};
use matih_state::{ObjectError, ObjectStore, RemoteLocation};
use serde::{Deserialize, Serialize};

/// One cloud: how the platform spec becomes its resources, and how to reach it.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// `--cloud` takes this name (`eks`, `gke`, `aks`, `fake`).
    fn name(&self) -> &'static str;

    /// The platform spec section this cloud needs (`clouds.eks`, …); `None` for a cloud that
    /// needs none (the fake cloud).
    fn section(&self) -> Option<CloudKind>;

    /// The cloud's resources for the spec — network, cluster, node pools, reserved addresses,
    /// zone and records — from the spec alone: no clients, no network.
    fn desired_graph(&self, spec: &PlatformSpec) -> DesiredGraph;

    /// What the bootstrap needs from the cloud's resources; `None` if the cloud has no cluster
    /// to bootstrap (the fake cloud).
    fn bootstrap_binding(&self, spec: &PlatformSpec) -> Option<ClusterBinding>;

    /// How `kubectl` gets a token for the cluster named `cluster` (for `kubeconfig`), from the
    /// spec alone; otherwise why there is no such way (a cloud without clusters, a cluster whose
    /// only credential is a static one).
    fn exec_credential(&self, spec: &PlatformSpec, cluster: &str) -> Result<ExecCredential, String>;

    /// Builds the cloud's clients: the engine's providers for its resource types, and access to
    /// its clusters for the bootstrap. `spec_dir` is the directory of the platform spec.
    async fn connect(
        &self,
        spec: &PlatformSpec,
        spec_dir: &std::path::Path,
        ownership: &Ownership,
    ) -> Result<Connected, ProviderError>;

    /// The object store holding state at `location`, for the cloud whose crate serves that
    /// location's service (the CLI's registry says which); its clients take credentials from the
    /// cloud's standard chain, as its provider does, and settings the location leaves out (a
    /// region) from the cloud's section of `spec` when there is one.
    async fn state_objects(
        &self,
        spec: Option<&PlatformSpec>,
        location: &RemoteLocation,
    ) -> Result<Arc<dyn ObjectStore>, ObjectError> {
        let _ = spec;
        Err(ObjectError::Api {
            message: format!("the {} cloud keeps no state in {}", self.name(), location.service),
            source: None,
        })
    }
}

/// A connected cloud.
pub struct Connected {
    pub providers: Vec<Arc<dyn Provider>>,
    /// `None` for a cloud without clusters.
    pub access: Option<Arc<dyn ClusterAccess>>,
}

/// A cloud value with references, as the engine's [`Value`] (references kept).
pub fn to_value<T: Serialize>(t: &T) -> Value {
    let json = serde_json::to_value(t).expect("binding types serialize to JSON");
    serde_json::from_value(json).expect("a serialized binding is a valid value")
}

/// Where the cluster is: references to the cloud's cluster resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRef<V> {
    /// The cluster's name in the cloud (what [`ClusterAccess`] takes).
    pub name: V,
    /// The API server URL.
    pub endpoint: V,
    /// Base64 of the PEM bundle of the API server's CA.
    pub ca_data: V,
}

/// What the cloud provider hands the bootstrap.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterBinding {
    pub cloud: CloudKind,
    /// The cluster resource.
    pub cluster_addr: ResourceAddr,
    /// What makes the cluster this cluster and not a later one of the same name (EKS: ARN and
    /// creation time): the same JSON [`ClusterAccess::describe`] reports as `identity`.
    pub identity: BTreeMap<String, Value>,
    pub connection: ClusterRef<Value>,
    /// Add-ons that need nodes wait for these.
    pub node_pools: Vec<ResourceAddr>,
    /// What lets the bootstrap in (AKS with Entra ID: the cluster admin role assignments); every
    /// add-on waits for these.
    pub access_grants: Vec<ResourceAddr>,
    /// Per ingress controller (`platform` or a tenant's slug): its load balancer.
    pub load_balancers: BTreeMap<String, LoadBalancer<Value>>,
    /// The zone's DNS01 solver.
    pub dns01: Dns01Solver<Value>,
    /// Annotations on cert-manager's service account (EKS: the IRSA role).
    pub cert_manager_annotations: BTreeMap<String, Value>,
}

/// How a controller's Service of type LoadBalancer gets the addresses the cloud reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cloud", rename_all = "snake_case")]
pub enum LoadBalancer<V> {
    /// An internet-facing NLB holding one Elastic IP per zone.
    AwsNlb { eip_allocations: Vec<V> },
    /// The reserved public IP (its address and resource name) in its resource group (the seed's
    /// per-tenant values).
    AzurePublicIp { ip: V, name: V, resource_group: V },
    /// The reserved regional static IP.
    GcpStaticIp { ip: V },
}

/// The DNS01 solver of the cloud that hosts the zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum Dns01Solver<V> {
    /// Route 53 through the IRSA role on cert-manager's service account: no keys in the cluster.
    Route53 { region: V, hosted_zone_id: V },
    /// Azure DNS with a managed identity.
    AzureDns { subscription_id: V, resource_group: V, hosted_zone_name: V, client_id: V },
    /// Cloud DNS with workload identity. The zone is named, so the solver needs no project-wide
    /// right to list zones (its service account may change this zone only).
    CloudDns { project: V, hosted_zone_name: V },
}

/// A token or other credential: never printed, never written to state or plans.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A cluster as its cloud reports it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub endpoint: String,
    /// Base64 of the PEM bundle, as EKS, GKE and AKS all report it.
    pub ca_data: String,
    /// The binding's `identity`, resolved: add-ons recorded against another identity are gone
    /// with their cluster.
    pub identity: serde_json::Value,
}

/// How a human runs `kubectl` against the cluster: the cloud's own credential plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCredential {
    pub command: String,
    pub args: Vec<String>,
    pub install_hint: String,
}

/// What a cloud supplies for its clusters.
#[async_trait]
pub trait ClusterAccess: Send + Sync {
    /// The cluster named `name`, or `None` if the cloud has no such cluster.
    async fn describe(&self, name: &str) -> Result<Option<ClusterInfo>, ProviderError>;
    /// A short-lived bearer token for the cluster's API server.
    async fn token(&self, name: &str) -> Result<Secret, ProviderError>;
    /// How long the cluster may refuse (403) a caller whose access this apply just granted: an
    /// authorizer that learns of grants late (Azure RBAC for Kubernetes). Zero: a refusal is
    /// final at once.
    fn grant_delay(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// What to tell the operator when the cluster refuses the caller for good.
    fn denied_hint(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_keep_references_and_resolve_into_the_typed_form() {
        let eip = |az: &str| ResourceAddr::must(&format!(r#"eks.eip.ingress["platform/{az}"]"#));
        let lb = LoadBalancer::AwsNlb {
            eip_allocations: vec![Value::reference(&eip("a"), "id"), Value::reference(&eip("b"), "id")],
        };
        let v = to_value(&lb);
        let mut refs = Vec::new();
        v.refs(&mut refs);
        assert_eq!(refs.len(), 2);
        let resolved = v.resolve(&mut |r| Some(json!(if r.addr == eip("a") { "eipalloc-a" } else { "eipalloc-b" })));
        let typed: LoadBalancer<String> = serde_json::from_value(resolved.into_known().unwrap()).unwrap();
        assert_eq!(typed, LoadBalancer::AwsNlb { eip_allocations: vec!["eipalloc-a".into(), "eipalloc-b".into()] });

        let solver = Dns01Solver::Route53 { region: Value::str("us-east-1"), hosted_zone_id: Value::str("Z1") };
        let typed: Dns01Solver<String> = serde_json::from_value(to_value(&solver).into_known().unwrap()).unwrap();
        assert_eq!(typed, Dns01Solver::Route53 { region: "us-east-1".into(), hosted_zone_id: "Z1".into() });
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret::new("k8s-aws-v1.abc")), "Secret(<redacted>)");
    }
}
