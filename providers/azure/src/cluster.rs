//! The AKS managed cluster (Azure CNI, Calico network policy, Standard load balancer, OIDC
//! issuer and workload identity) and its user agent pools; the system pool is part of the
//! cluster (AKS needs one at creation) and is scaled through the agent pool API.
//!
//! The cluster's API endpoint and CA come from `listClusterUserCredential` (the kubeconfig it
//! returns); its token is never kept.
//!
//! Not here: AAD-integrated clusters' admin groups, private clusters, node pool upgrades
//! (`orchestratorVersion` follows the cluster), spot pools, Windows pools.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use matih_plans::*;
use matih_provider_kit::{Call, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::arm::Cond;
use crate::kind::*;

pub const AKS_API: &str = "2025-05-01";
const AKS: &str = "Microsoft.ContainerService";
const CLUSTER_WAIT: Duration = Duration::from_secs(45 * 60);

pub fn kinds() -> Vec<Box<dyn matih_provider_kit::Kind<Ctx>>> {
    vec![Box::new(ArmKind(Cluster)), Box::new(ArmKind(AgentPool))]
}

/// An agent pool's profile from the tool's pool settings
/// (`{name?, mode, vm_size, min, max, max_pods, node_subnet_id, pod_subnet_id}`).
fn pool_profile(p: &Json) -> Json {
    let mut profile = json!({
        "mode": p["mode"], "vmSize": p["vm_size"], "count": p["min"], "minCount": p["min"], "maxCount": p["max"],
        "enableAutoScaling": true, "type": "VirtualMachineScaleSets", "osType": "Linux", "maxPods": p["max_pods"],
        "vnetSubnetID": p["node_subnet_id"],
    });
    if let Some(pod) = p["pod_subnet_id"].as_str() {
        profile["podSubnetID"] = json!(pod);
    }
    profile
}

/// The tool's pool settings from a profile.
fn pool_settings(p: &Json) -> Json {
    json!({
        "mode": p["mode"], "vm_size": p["vmSize"], "min": p["minCount"], "max": p["maxCount"], "max_pods": p["maxPods"],
        "node_subnet_id": p["vnetSubnetID"], "pod_subnet_id": p.get("podSubnetID").cloned().unwrap_or(Json::Null),
    })
}

// ---------------------------------------------------------------------------------------------

pub struct Cluster;

impl Cluster {
    /// The cluster user credential's kubeconfig: `(server, certificate-authority-data, token)`.
    pub async fn user_credential(ctx: &Ctx, id: &str) -> Result<(String, String, Option<String>), ProviderError> {
        let j = ctx
            .arm
            .post(
                &format!("{id}/listClusterUserCredential"),
                AKS_API,
                op(AKS, "ManagedClusters", "ListClusterUserCredentials"),
                Call::Read,
            )
            .await?;
        let value = j.pointer("/kubeconfigs/0/value").and_then(Json::as_str).unwrap_or_default();
        let text = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|e| ProviderError::other(format!("{id}: the cluster user credential is not base64: {e}")))?;
        let cfg: Json = serde_yaml_ng::from_slice(&text)
            .map_err(|e| ProviderError::other(format!("{id}: the cluster user credential is not a kubeconfig: {e}")))?;
        let server = cfg.pointer("/clusters/0/cluster/server").and_then(Json::as_str).unwrap_or_default().to_string();
        let ca = cfg
            .pointer("/clusters/0/cluster/certificate-authority-data")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let token = cfg.pointer("/users/0/user/token").and_then(Json::as_str).map(str::to_string);
        Ok((server, ca, token))
    }
}

#[async_trait]
impl ArmType for Cluster {
    fn schema(&self) -> TypeSchema {
        schema("aks", "cluster")
            .force_new(&["name", "dns_prefix", "service_cidr", "dns_service_ip", "network_policy"])
            .updatable(&["kubernetes_version", "system_pool"])
            .computed(&[
                "id",
                "fqdn",
                "endpoint",
                "certificate_authority",
                "oidc_issuer",
                "principal_id",
                "node_resource_group",
            ])
            .protected()
            .build()
    }
    fn api(&self) -> &'static str {
        AKS_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (AKS, "ManagedClusters")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        ctx.id(&[AKS, "managedClusters"], name)
    }
    fn deadline(&self) -> Duration {
        CLUSTER_WAIT
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        let sys = cfg.need("system_pool")?;
        let mut profile = pool_profile(sys);
        profile["name"] = sys["name"].clone();
        Ok(json!({
            "identity": {"type": "SystemAssigned"},
            "sku": {"name": "Base", "tier": "Standard"},
            "properties": {
                "kubernetesVersion": cfg.str("kubernetes_version")?,
                "dnsPrefix": cfg.str("dns_prefix")?,
                "enableRBAC": true,
                "agentPoolProfiles": [profile],
                "networkProfile": {
                    "networkPlugin": "azure",
                    "networkPolicy": cfg.str("network_policy")?,
                    "serviceCidr": cfg.str("service_cidr")?,
                    "dnsServiceIP": cfg.str("dns_service_ip")?,
                    "loadBalancerSku": "standard",
                    "outboundType": "loadBalancer",
                },
                "oidcIssuerProfile": {"enabled": true},
                "securityProfile": {"workloadIdentity": {"enabled": true}},
            },
        }))
    }
    fn for_update(&self, body: &mut Json) {
        // Pools change through the agent pool API (a cluster PUT with fewer profiles is refused).
        if let Some(p) = body.get_mut("properties").and_then(Json::as_object_mut) {
            p.remove("agentPoolProfiles");
        }
    }
    fn attrs(&self, j: &Json) -> Attrs {
        let p = &j["properties"];
        let system = p["agentPoolProfiles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["mode"] == "System")
            .map(|a| {
                let mut s = pool_settings(a);
                s["name"] = a["name"].clone();
                s
            })
            .unwrap_or(Json::Null);
        attrs([
            ("id", at(j, "/id")),
            ("name", at(j, "/name")),
            ("kubernetes_version", at(j, "/properties/kubernetesVersion")),
            ("dns_prefix", at(j, "/properties/dnsPrefix")),
            ("service_cidr", at(j, "/properties/networkProfile/serviceCidr")),
            ("dns_service_ip", at(j, "/properties/networkProfile/dnsServiceIP")),
            ("network_policy", at(j, "/properties/networkProfile/networkPolicy")),
            ("system_pool", system),
            ("fqdn", at(j, "/properties/fqdn")),
            ("oidc_issuer", at(j, "/properties/oidcIssuerProfile/issuerURL")),
            ("principal_id", at(j, "/identity/principalId")),
            ("node_resource_group", at(j, "/properties/nodeResourceGroup")),
        ])
    }
    async fn extra(&self, ctx: &Ctx, j: &Json, attrs: &mut Attrs) -> Result<(), ProviderError> {
        let id = j["id"].as_str().unwrap_or_default();
        // Only a running cluster has credentials to list.
        if j.pointer("/properties/provisioningState").and_then(Json::as_str) == Some("Succeeded") {
            let (server, ca, _token) = Cluster::user_credential(ctx, id).await?;
            attrs.insert("endpoint".into(), json!(server));
            attrs.insert("certificate_authority".into(), json!(ca));
        }
        Ok(())
    }
    async fn put(
        &self,
        ctx: &Ctx,
        id: &str,
        body: &Json,
        cond: Cond<'_>,
        req: &ApplyRequest,
    ) -> Result<Json, ProviderError> {
        let (svc, group) = self.ops();
        let j = ctx
            .arm
            .put(
                id,
                AKS_API,
                body,
                cond,
                op(svc, group, "CreateOrUpdate"),
                op(svc, group, "Get"),
                &req.status,
                CLUSTER_WAIT,
            )
            .await?;
        // An update: the system pool's scale goes through its agent pool.
        if body.pointer("/properties/agentPoolProfiles").is_none() {
            let sys = Cfg::of(req).need("system_pool")?.clone();
            let now = self.attrs(&j).get("system_pool").cloned().unwrap_or(Json::Null);
            if now != sys {
                let name = sys["name"].as_str().unwrap_or_default();
                let pool = format!("{id}/agentPools/{name}");
                let mut props = pool_profile(&sys);
                props["orchestratorVersion"] = json!(Cfg::of(req).str("kubernetes_version")?);
                ctx.arm
                    .put(
                        &pool,
                        AKS_API,
                        &json!({"properties": props}),
                        Cond::None,
                        op(AKS, "AgentPools", "CreateOrUpdate"),
                        op(AKS, "AgentPools", "Get"),
                        &req.status,
                        CLUSTER_WAIT,
                    )
                    .await?;
                return ctx
                    .arm
                    .get(id, AKS_API, op(svc, group, "Get"))
                    .await?
                    .ok_or_else(|| ProviderError::other(format!("{id} was gone after its system pool was scaled")));
            }
        }
        Ok(j)
    }
}

// ---------------------------------------------------------------------------------------------

/// A user agent pool (`<cluster>/<pool>`).
pub struct AgentPool;

#[async_trait]
impl ArmType for AgentPool {
    fn schema(&self) -> TypeSchema {
        schema("aks", "agent_pool")
            .force_new(&["cluster_id", "mode", "vm_size", "max_pods", "node_subnet_id", "pod_subnet_id"])
            .updatable(&["min", "max"])
            .computed(&["id"])
            .build()
    }
    fn api(&self) -> &'static str {
        AKS_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (AKS, "AgentPools")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        ctx.id(&[AKS, "managedClusters", "agentPools"], name)
    }
    fn deadline(&self) -> Duration {
        CLUSTER_WAIT
    }
    fn tracked(&self) -> bool {
        false
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(json!({"properties": pool_profile(&Json::Object(cfg.map.clone()))}))
    }
    fn attrs(&self, j: &Json) -> Attrs {
        let id = j["id"].as_str().unwrap_or_default();
        let mut a: Attrs = pool_settings(&j["properties"])
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        a.insert("id".into(), json!(id));
        a.insert("cluster_id".into(), json!(collection_of(collection_of(id))));
        a
    }
}
