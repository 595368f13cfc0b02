//! Serde models of just the ARM resources the tool writes and reads, with the field names of the
//! public Azure REST API specifications at the API versions the kinds use (`Microsoft.Network`
//! 2024-05-01 and DNS 2018-05-01, `Microsoft.ContainerService` 2025-05-01,
//! `Microsoft.ManagedIdentity` 2023-01-31, `Microsoft.Authorization` 2022-04-01).
//!
//! A model holds the fields the tool sets and the read-only ones it reports, nothing else: an
//! update merges a model's JSON into the resource as ARM returned it, so what the model does not
//! name (a VNet's subnets, a cluster's add-on profiles) is kept as it is. Optional fields are
//! left out of requests when unset.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `{ "id": ... }`: a reference to another resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubResource {
    pub id: String,
}

// ---- Microsoft.Network 2024-05-01 ---------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetwork {
    pub properties: VirtualNetworkProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkProperties {
    pub address_space: AddressSpace,
    #[serde(default)]
    pub dhcp_options: DhcpOptions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpace {
    #[serde(default)]
    pub address_prefixes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DhcpOptions {
    #[serde(default)]
    pub dns_servers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub properties: SubnetProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetProperties {
    pub address_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_security_group: Option<SubResource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSecurityGroup {
    pub properties: NetworkSecurityGroupProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSecurityGroupProperties {
    #[serde(default)]
    pub security_rules: Vec<SecurityRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecurityRule {
    pub name: String,
    pub properties: SecurityRuleProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityRuleProperties {
    pub priority: u32,
    /// `Inbound` | `Outbound`.
    pub direction: String,
    /// `Allow` | `Deny`.
    pub access: String,
    /// `Tcp`, `Udp`, `*`, ...
    pub protocol: String,
    pub source_address_prefix: String,
    pub source_port_range: String,
    pub destination_address_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_port_range: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_port_ranges: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublicIpAddress {
    pub sku: PublicIpSku,
    pub properties: PublicIpProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublicIpSku {
    /// `Standard`.
    pub name: String,
    /// `Regional`.
    #[serde(default)]
    pub tier: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublicIpProperties {
    /// `Static`.
    #[serde(rename = "publicIPAllocationMethod")]
    pub allocation_method: String,
    /// `IPv4`.
    #[serde(rename = "publicIPAddressVersion")]
    pub address_version: String,
    /// Read-only: the address once allocated.
    #[serde(rename = "ipAddress", default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

// ---- Microsoft.Network DNS 2018-05-01 -----------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Zone {
    pub properties: ZoneProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneProperties {
    /// `Public`.
    pub zone_type: String,
    /// Read-only: the zone's Azure DNS name servers (fully qualified, with the trailing dot).
    #[serde(default, skip_serializing)]
    pub name_servers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordSet {
    pub properties: RecordSetProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordSetProperties {
    #[serde(rename = "TTL")]
    pub ttl: u64,
    #[serde(rename = "ARecords", default, skip_serializing_if = "Option::is_none")]
    pub a_records: Option<Vec<ARecord>>,
    #[serde(rename = "NSRecords", default, skip_serializing_if = "Option::is_none")]
    pub ns_records: Option<Vec<NsRecord>>,
    #[serde(rename = "CNAMERecord", default, skip_serializing_if = "Option::is_none")]
    pub cname_record: Option<CnameRecord>,
    /// The owner tags (record sets have no tags).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Read-only: `api.matih.ai.`.
    #[serde(default, skip_serializing)]
    pub fqdn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ARecord {
    pub ipv4_address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CnameRecord {
    pub cname: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NsRecord {
    pub nsdname: String,
}

// ---- Microsoft.ContainerService 2025-05-01 ------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManagedCluster {
    pub identity: ManagedClusterIdentity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<ManagedClusterSku>,
    pub properties: ManagedClusterProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterIdentity {
    /// `SystemAssigned`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing)]
    pub principal_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManagedClusterSku {
    /// `Base`.
    pub name: String,
    /// `Free` | `Standard` | `Premium`.
    pub tier: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterProperties {
    pub kubernetes_version: String,
    pub dns_prefix: String,
    #[serde(rename = "enableRBAC", default)]
    pub enable_rbac: bool,
    /// Set at creation; an update leaves the pools to the agent pool API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_pool_profiles: Vec<AgentPoolProfile>,
    pub network_profile: NetworkProfile,
    #[serde(default)]
    pub oidc_issuer_profile: OidcIssuerProfile,
    #[serde(default)]
    pub security_profile: SecurityProfile,
    /// AKS-managed Entra ID with Azure RBAC; `None`: Kubernetes RBAC with local accounts.
    #[serde(rename = "aadProfile", default, skip_serializing_if = "Option::is_none")]
    pub aad_profile: Option<AadProfile>,
    /// Local accounts (the static cluster admin and user credentials) off; Entra ID clusters only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_local_accounts: Option<bool>,
    /// Read-only.
    #[serde(default, skip_serializing)]
    pub fqdn: Option<String>,
    #[serde(default, skip_serializing)]
    pub node_resource_group: Option<String>,
}

/// `ManagedClusterAADProfile`: the managed form (no server/client apps of one's own).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AadProfile {
    #[serde(default)]
    pub managed: bool,
    #[serde(rename = "enableAzureRBAC", default)]
    pub enable_azure_rbac: bool,
    #[serde(rename = "adminGroupObjectIDs", default)]
    pub admin_group_object_ids: Vec<String>,
    /// The tenant of the subscription when left out.
    #[serde(rename = "tenantID", default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    /// `azure`.
    pub network_plugin: String,
    /// `calico`.
    #[serde(default)]
    pub network_policy: String,
    #[serde(default)]
    pub service_cidr: String,
    #[serde(rename = "dnsServiceIP", default)]
    pub dns_service_ip: String,
    /// `standard`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub load_balancer_sku: String,
    /// `loadBalancer`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outbound_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OidcIssuerProfile {
    pub enabled: bool,
    /// Read-only.
    #[serde(rename = "issuerURL", default, skip_serializing)]
    pub issuer_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityProfile {
    #[serde(default)]
    pub workload_identity: WorkloadIdentity,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadIdentity {
    pub enabled: bool,
}

/// An agent pool: a profile in the cluster (with its `name`), or the properties of an
/// `agentPools` resource (without).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `System` | `User`.
    pub mode: String,
    pub vm_size: String,
    /// Left to the autoscaler on updates (not sent).
    #[serde(default)]
    pub count: u32,
    pub min_count: u32,
    pub max_count: u32,
    pub enable_auto_scaling: bool,
    /// `VirtualMachineScaleSets`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `Linux`.
    pub os_type: String,
    pub max_pods: u32,
    #[serde(rename = "vnetSubnetID")]
    pub vnet_subnet_id: String,
    #[serde(rename = "podSubnetID", default, skip_serializing_if = "Option::is_none")]
    pub pod_subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentPool {
    pub properties: AgentPoolProfile,
}

// ---- Microsoft.ManagedIdentity 2023-01-31 -------------------------------------------------------

/// Read-only properties of a user-assigned identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentityProperties {
    pub client_id: String,
    pub principal_id: String,
    pub tenant_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FederatedIdentityCredential {
    pub properties: FederatedIdentityCredentialProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FederatedIdentityCredentialProperties {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

// ---- Microsoft.Authorization 2022-04-01 ---------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub properties: RoleAssignmentProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    pub role_definition_id: String,
    pub principal_id: String,
    /// `ServicePrincipal`, `User`, `Group`; left out when the tool does not know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
}

/// The model `T` of an ARM answer, or an error naming the resource and what did not fit.
pub fn parse<T: serde::de::DeserializeOwned>(j: &serde_json::Value) -> Result<T, matih_plans::ProviderError> {
    serde_json::from_value(j.clone()).map_err(|e| {
        matih_plans::ProviderError::other(format!(
            "{}: ARM answered with a shape the tool does not know: {e}",
            j.get("id").and_then(serde_json::Value::as_str).unwrap_or("a resource")
        ))
    })
}

/// A model as the JSON body of a request.
pub fn body<T: Serialize>(t: &T) -> serde_json::Value {
    serde_json::to_value(t).expect("models serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn models_write_the_specifications_field_names() {
        let pool = AgentPoolProfile {
            name: Some("system".into()),
            mode: "System".into(),
            vm_size: "Standard_D4s_v5".into(),
            count: 2,
            min_count: 2,
            max_count: 4,
            enable_auto_scaling: true,
            kind: "VirtualMachineScaleSets".into(),
            os_type: "Linux".into(),
            max_pods: 30,
            vnet_subnet_id: "/s/nodes".into(),
            pod_subnet_id: None,
            orchestrator_version: None,
        };
        let j = body(&pool);
        for k in ["vmSize", "minCount", "maxCount", "enableAutoScaling", "type", "osType", "maxPods", "vnetSubnetID"] {
            assert!(j.get(k).is_some(), "{k} missing from {j}");
        }
        assert!(j.get("podSubnetID").is_none());
        let ip = body(&PublicIpProperties {
            allocation_method: "Static".into(),
            address_version: "IPv4".into(),
            ip_address: None,
        });
        assert_eq!(ip, json!({"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}));
        let rs = body(&RecordSetProperties { ttl: 300, a_records: Some(vec![]), ..Default::default() });
        assert_eq!(rs, json!({"TTL": 300, "ARecords": []}));
        let net = body(&NetworkProfile { dns_service_ip: "10.0.0.10".into(), ..Default::default() });
        assert_eq!(net["dnsServiceIP"], "10.0.0.10");
    }

    #[test]
    fn read_only_fields_are_read_and_never_written() {
        let c: ManagedCluster = parse(&json!({
            "identity": {"type": "SystemAssigned", "principalId": "p"},
            "properties": {"kubernetesVersion": "1.33", "dnsPrefix": "x", "enableRBAC": true,
                "networkProfile": {"networkPlugin": "azure"}, "fqdn": "x.hcp",
                "oidcIssuerProfile": {"enabled": true, "issuerURL": "https://issuer/"}}
        }))
        .unwrap();
        assert_eq!(c.identity.principal_id.as_deref(), Some("p"));
        assert_eq!(c.properties.oidc_issuer_profile.issuer_url.as_deref(), Some("https://issuer/"));
        let j = body(&c);
        assert!(j["identity"].get("principalId").is_none() && j["properties"].get("fqdn").is_none(), "{j}");
        assert!(parse::<ManagedCluster>(&json!({"id": "/c", "properties": 3})).unwrap_err().to_string().contains("/c"));
    }
}
