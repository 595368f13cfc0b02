//! The AKS managed cluster (Azure CNI, Calico network policy, Standard load balancer, OIDC
//! issuer and workload identity) and its user agent pools; the system pool is part of the
//! cluster (AKS needs one at creation) and is scaled through the agent pool API.
//!
//! The cluster's API endpoint and CA come from `listClusterUserCredential` (the kubeconfig it
//! returns); its token is never kept.
//!
//! With `entra_id` in the spec the cluster uses AKS-managed Entra ID with Azure RBAC and no local
//! accounts (which AKS cannot turn off again). A version upgrade moves the control plane (one
//! minor version at a time, never back), then the system pool, then the user pools.
//!
//! Not here: private clusters, spot pools, Windows pools, node image upgrades.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use matih_plans::*;
use matih_provider_kit::{Call, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::arm::Cond;
use crate::kind::*;
use crate::models::{self, parse};

pub const AKS_API: &str = "2025-05-01";
const AKS: &str = "Microsoft.ContainerService";
const CLUSTER_WAIT: Duration = Duration::from_secs(45 * 60);

pub fn kinds() -> Vec<Box<dyn matih_provider_kit::Kind<Ctx>>> {
    vec![Box::new(ArmKind(Cluster)), Box::new(ArmKind(AgentPool))]
}

/// A node pool as the graph configures it (the system pool in the cluster also has its `name`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub mode: String,
    pub vm_size: String,
    pub min: u32,
    pub max: u32,
    pub max_pods: u32,
    pub node_subnet_id: String,
    pub pod_subnet_id: Option<String>,
    /// The pool's Kubernetes version (`1.33` or `1.33.2`), at most the control plane's.
    #[serde(default)]
    pub orchestrator_version: String,
}

impl PoolSettings {
    fn from_cfg(addr: &ResourceAddr, v: &Json) -> Result<PoolSettings, ProviderError> {
        serde_json::from_value(v.clone())
            .map_err(|e| ProviderError::Config { addr: addr.clone(), message: format!("pool settings: {e}") })
    }

    /// The profile ARM takes: autoscaled from `min` to `max`, starting at `min`.
    fn profile(&self) -> models::AgentPoolProfile {
        models::AgentPoolProfile {
            name: self.name.clone(),
            mode: self.mode.clone(),
            vm_size: self.vm_size.clone(),
            count: self.min,
            min_count: self.min,
            max_count: self.max,
            enable_auto_scaling: true,
            kind: "VirtualMachineScaleSets".into(),
            os_type: "Linux".into(),
            max_pods: self.max_pods,
            vnet_subnet_id: self.node_subnet_id.clone(),
            pod_subnet_id: self.pod_subnet_id.clone(),
            orchestrator_version: Some(self.orchestrator_version.clone()).filter(|v| !v.is_empty()),
        }
    }

    fn of(p: &models::AgentPoolProfile) -> PoolSettings {
        PoolSettings {
            name: p.name.clone(),
            mode: p.mode.clone(),
            vm_size: p.vm_size.clone(),
            min: p.min_count,
            max: p.max_count,
            max_pods: p.max_pods,
            node_subnet_id: p.vnet_subnet_id.clone(),
            pod_subnet_id: p.pod_subnet_id.clone(),
            orchestrator_version: p.orchestrator_version.clone().unwrap_or_default(),
        }
    }
}

/// The spec's Entra ID settings as the cluster carries them (`null`: local accounts).
fn entra_id(p: &models::ManagedClusterProperties) -> Json {
    match &p.aad_profile {
        Some(a) if a.managed => {
            let mut groups: Vec<String> = a.admin_group_object_ids.iter().map(|g| g.to_ascii_lowercase()).collect();
            groups.sort();
            json!({ "admin_group_ids": groups })
        }
        _ => Json::Null,
    }
}

/// An update of an autoscaled pool leaves its node count to the autoscaler (AKS refuses a count
/// set by hand while it runs).
fn strip_count(pool: &mut Json) {
    if let Some(p) = pool.get_mut("properties").and_then(Json::as_object_mut)
        && p.get("enableAutoScaling") == Some(&Json::Bool(true))
    {
        p.remove("count");
    }
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
            .updatable(&["kubernetes_version", "system_pool", "entra_id"])
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
        let system = PoolSettings::from_cfg(cfg.addr, cfg.need("system_pool")?)?;
        let groups = |e: &Json| -> Vec<String> {
            e["admin_group_ids"].as_array().into_iter().flatten().filter_map(Json::as_str).map(str::to_string).collect()
        };
        let entra = cfg.map.get("entra_id").filter(|e| !e.is_null());
        Ok(models::body(&models::ManagedCluster {
            identity: models::ManagedClusterIdentity { kind: "SystemAssigned".into(), principal_id: None },
            sku: Some(models::ManagedClusterSku { name: "Base".into(), tier: "Standard".into() }),
            properties: models::ManagedClusterProperties {
                kubernetes_version: cfg.str("kubernetes_version")?.to_string(),
                dns_prefix: cfg.str("dns_prefix")?.to_string(),
                enable_rbac: true,
                agent_pool_profiles: vec![system.profile()],
                network_profile: models::NetworkProfile {
                    network_plugin: "azure".into(),
                    network_policy: cfg.str("network_policy")?.to_string(),
                    service_cidr: cfg.str("service_cidr")?.to_string(),
                    dns_service_ip: cfg.str("dns_service_ip")?.to_string(),
                    load_balancer_sku: "standard".into(),
                    outbound_type: "loadBalancer".into(),
                },
                oidc_issuer_profile: models::OidcIssuerProfile { enabled: true, issuer_url: None },
                security_profile: models::SecurityProfile {
                    workload_identity: models::WorkloadIdentity { enabled: true },
                },
                aad_profile: entra.map(|e| models::AadProfile {
                    managed: true,
                    enable_azure_rbac: true,
                    admin_group_object_ids: groups(e),
                    tenant_id: None,
                }),
                disable_local_accounts: entra.map(|_| true),
                fqdn: None,
                node_resource_group: None,
            },
        }))
    }
    fn for_update(&self, body: &mut Json) {
        // The pools go back as ARM reported them (a cluster PUT without them is refused); they
        // change through the agent pool API.
        if let Some(p) = body.get_mut("properties").and_then(Json::as_object_mut) {
            p.remove("agentPoolProfiles");
        }
    }
    fn clean(&self, body: &mut Json) {
        const READ_ONLY: [&str; 7] = [
            "powerState",
            "fqdn",
            "azurePortalFQDN",
            "privateFQDN",
            "maxAgentPools",
            "currentKubernetesVersion",
            "provisioningState",
        ];
        if let Some(p) = body.get_mut("properties").and_then(Json::as_object_mut) {
            for k in READ_ONLY {
                p.remove(k);
            }
            for pool in p.get_mut("agentPoolProfiles").and_then(Json::as_array_mut).into_iter().flatten() {
                if let Some(pool) = pool.as_object_mut() {
                    for k in
                        ["provisioningState", "powerState", "nodeImageVersion", "currentOrchestratorVersion", "eTag"]
                    {
                        pool.remove(k);
                    }
                    // The autoscaler owns the node count.
                    if pool.get("enableAutoScaling") == Some(&Json::Bool(true)) {
                        pool.remove("count");
                    }
                }
            }
        }
        if let Some(i) = body.get_mut("identity").and_then(Json::as_object_mut) {
            i.remove("principalId");
            i.remove("tenantId");
        }
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let c: models::ManagedCluster = parse(j)?;
        let p = &c.properties;
        let system = p.agent_pool_profiles.iter().find(|a| a.mode == "System").map(PoolSettings::of);
        Ok(attrs([
            ("id", at(j, "/id")),
            ("name", at(j, "/name")),
            ("kubernetes_version", json!(p.kubernetes_version)),
            ("dns_prefix", json!(p.dns_prefix)),
            ("service_cidr", json!(p.network_profile.service_cidr)),
            ("dns_service_ip", json!(p.network_profile.dns_service_ip)),
            ("network_policy", json!(p.network_profile.network_policy)),
            ("system_pool", json!(system)),
            ("entra_id", entra_id(p)),
            ("fqdn", json!(p.fqdn)),
            ("oidc_issuer", json!(p.oidc_issuer_profile.issuer_url)),
            ("principal_id", json!(c.identity.principal_id)),
            ("node_resource_group", json!(p.node_resource_group)),
        ]))
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
        update: bool,
    ) -> Result<Json, ProviderError> {
        if update {
            let cfg = Cfg::of(req);
            let prior = req.prior.as_ref();
            let was = |k: &str| prior.and_then(|p| p.attrs.get(k)).cloned().unwrap_or(Json::Null);
            if let Some(from) = was("kubernetes_version").as_str() {
                matih_provider_kit::version::check_upgrade("AKS", &req.addr, from, cfg.str("kubernetes_version")?)?;
            }
            if !was("entra_id").is_null() && cfg.map.get("entra_id").is_none_or(Json::is_null) {
                return Err(ProviderError::Config {
                    addr: req.addr.clone(),
                    message: "the cluster uses Entra ID, which AKS cannot turn off: keep clouds.aks.entra_id (its admins may change), or replace the cluster".into(),
                });
            }
        }
        let j = crate::kind::put(self, ctx, id, body, cond, req).await?;
        // An update sends the pools as they are; the system pool's scale goes through its agent
        // pool.
        if update {
            let sys = PoolSettings::from_cfg(&req.addr, Cfg::of(req).need("system_pool")?)?;
            let now = self.attrs(&j)?.get("system_pool").cloned().unwrap_or(Json::Null);
            if now != json!(sys) {
                let name = sys.name.clone().unwrap_or_default();
                let pool = format!("{id}/agentPools/{name}");
                let mut props = sys.profile();
                props.name = None;
                let mut props = models::body(&models::AgentPool { properties: props });
                // The autoscaler owns the node count.
                strip_count(&mut props);
                ctx.arm
                    .put(
                        &pool,
                        AKS_API,
                        &props,
                        Cond::None,
                        op(AKS, "AgentPools", "CreateOrUpdate"),
                        op(AKS, "AgentPools", "Get"),
                        &req.status,
                        CLUSTER_WAIT,
                    )
                    .await?;
                return ctx
                    .arm
                    .get(id, AKS_API, op(AKS, "ManagedClusters", "Get"))
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
            .updatable(&["min", "max", "orchestrator_version"])
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
    fn clean(&self, body: &mut Json) {
        strip_count(body);
        if let Some(p) = body.get_mut("properties").and_then(Json::as_object_mut) {
            for k in ["provisioningState", "powerState", "nodeImageVersion", "currentOrchestratorVersion"] {
                p.remove(k);
            }
        }
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        let settings = PoolSettings::from_cfg(cfg.addr, &Json::Object(cfg.map.clone()))?;
        Ok(models::body(&models::AgentPool { properties: settings.profile() }))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let id = j["id"].as_str().unwrap_or_default();
        let pool: models::AgentPool = parse(j)?;
        let mut a: Attrs = match json!(PoolSettings::of(&pool.properties)) {
            Json::Object(m) => m.into_iter().collect(),
            _ => Attrs::new(),
        };
        a.insert("id".into(), json!(id));
        a.insert("cluster_id".into(), json!(collection_of(collection_of(id))));
        Ok(a)
    }
}
