//! The resource group and the network for Azure CNI: the VNet, its node (and pod) subnets, the
//! node subnet's NSG, and the Standard static public IPs of the ingress controllers.
//!
//! Not here: peering, private endpoints, NAT gateways (AKS's Standard load balancer gives the
//! nodes their way out), IPv6.

use std::time::Duration;

use async_trait::async_trait;
use matih_plans::*;
use matih_provider_kit::schema;
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::kind::*;
use crate::models::{self, parse};

const NETWORK_API: &str = "2024-05-01";
const NETWORK: &str = "Microsoft.Network";

pub fn kinds() -> Vec<Box<dyn matih_provider_kit::Kind<Ctx>>> {
    vec![
        Box::new(ArmKind(ResourceGroup)),
        Box::new(ArmKind(Nsg)),
        Box::new(ArmKind(Vnet)),
        Box::new(ArmKind(Subnet)),
        Box::new(ArmKind(PublicIp)),
    ]
}

// ---------------------------------------------------------------------------------------------

/// The resource group: created, or adopted when it exists (then never deleted).
pub struct ResourceGroup;

#[async_trait]
impl ArmType for ResourceGroup {
    fn schema(&self) -> TypeSchema {
        schema("aks", "resource_group").force_new(&["location"]).computed(&["id", "adopted"]).protected().build()
    }
    fn api(&self) -> &'static str {
        "2024-03-01"
    }
    fn ops(&self) -> (&'static str, &'static str) {
        ("Microsoft.Resources", "ResourceGroups")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{name}", ctx.subscription)
    }
    fn body(&self, _ctx: &Ctx, _cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(json!({}))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        Ok(attrs([("id", at(j, "/id")), ("location", at(j, "/location"))]))
    }
    fn adoptable(&self) -> bool {
        true
    }
    fn deadline(&self) -> Duration {
        Duration::from_secs(30 * 60)
    }
}

// ---------------------------------------------------------------------------------------------

/// The node subnet's network security group. Its rules are [`Rule`]s: inbound, to any
/// destination.
pub struct Nsg;

/// An NSG rule as the platform spec's graph writes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub name: String,
    pub priority: u32,
    pub access: String,
    pub protocol: String,
    pub source: String,
    pub ports: Vec<String>,
}

impl Rule {
    fn model(&self) -> models::SecurityRule {
        models::SecurityRule {
            name: self.name.clone(),
            properties: models::SecurityRuleProperties {
                priority: self.priority,
                direction: "Inbound".into(),
                access: self.access.clone(),
                protocol: self.protocol.clone(),
                source_address_prefix: self.source.clone(),
                source_port_range: "*".into(),
                destination_address_prefix: "*".into(),
                destination_port_range: None,
                destination_port_ranges: self.ports.clone(),
            },
        }
    }

    fn of(r: &models::SecurityRule) -> Rule {
        let p = &r.properties;
        let mut ports = p.destination_port_ranges.clone();
        if ports.is_empty() {
            ports.extend(p.destination_port_range.clone());
        }
        Rule {
            name: r.name.clone(),
            priority: p.priority,
            access: p.access.clone(),
            protocol: p.protocol.clone(),
            source: p.source_address_prefix.clone(),
            ports,
        }
    }
}

#[async_trait]
impl ArmType for Nsg {
    fn schema(&self) -> TypeSchema {
        schema("aks", "nsg").updatable(&["rules"]).computed(&["id"]).build()
    }
    fn api(&self) -> &'static str {
        NETWORK_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (NETWORK, "NetworkSecurityGroups")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        ctx.id(&[NETWORK, "networkSecurityGroups"], name)
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        let rules: Vec<Rule> = serde_json::from_value(cfg.need("rules")?.clone())
            .map_err(|e| ProviderError::Config { addr: cfg.addr.clone(), message: format!("`rules`: {e}") })?;
        Ok(models::body(&models::NetworkSecurityGroup {
            properties: models::NetworkSecurityGroupProperties {
                security_rules: rules.iter().map(Rule::model).collect(),
            },
        }))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let nsg: models::NetworkSecurityGroup = parse(j)?;
        let mut rules: Vec<Rule> = nsg.properties.security_rules.iter().map(Rule::of).collect();
        rules.sort_by_key(|r| r.priority);
        Ok(attrs([("id", at(j, "/id")), ("rules", json!(rules))]))
    }
    fn conditional(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// The VNet, with the spec's CoreDNS forwarders as its DNS servers (empty: Azure's resolver).
/// Its subnets are resources of their own; an update keeps them (read-modify-write). Nodes take
/// changed DNS servers when they renew their lease or restart.
pub struct Vnet;

#[async_trait]
impl ArmType for Vnet {
    fn schema(&self) -> TypeSchema {
        schema("aks", "vnet").updatable(&["address_space", "dns_servers"]).computed(&["id"]).protected().build()
    }
    fn api(&self) -> &'static str {
        NETWORK_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (NETWORK, "VirtualNetworks")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        ctx.id(&[NETWORK, "virtualNetworks"], name)
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(models::body(&models::VirtualNetwork {
            properties: models::VirtualNetworkProperties {
                address_space: models::AddressSpace { address_prefixes: cfg.strs("address_space")? },
                dhcp_options: models::DhcpOptions { dns_servers: cfg.strs("dns_servers")? },
            },
        }))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let v: models::VirtualNetwork = parse(j)?;
        Ok(attrs([
            ("id", at(j, "/id")),
            ("address_space", json!(v.properties.address_space.address_prefixes)),
            ("dns_servers", json!(v.properties.dhcp_options.dns_servers)),
        ]))
    }
    fn conditional(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// A subnet (`<vnet>/<subnet>`), with the NSG when one is configured.
pub struct Subnet;

#[async_trait]
impl ArmType for Subnet {
    fn schema(&self) -> TypeSchema {
        schema("aks", "subnet")
            .force_new(&["vnet_id", "address_prefix"])
            .updatable(&["nsg_id"])
            .computed(&["id"])
            .build()
    }
    fn api(&self) -> &'static str {
        NETWORK_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (NETWORK, "Subnets")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        ctx.id(&[NETWORK, "virtualNetworks", "subnets"], name)
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(models::body(&models::Subnet {
            properties: models::SubnetProperties {
                address_prefix: cfg.str("address_prefix")?.to_string(),
                network_security_group: cfg.opt_str("nsg_id").map(|id| models::SubResource { id: id.to_string() }),
            },
        }))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let id = j["id"].as_str().unwrap_or_default();
        let sn: models::Subnet = parse(j)?;
        Ok(attrs([
            ("id", json!(id)),
            ("vnet_id", json!(collection_of(collection_of(id)))),
            ("address_prefix", json!(sn.properties.address_prefix)),
            ("nsg_id", json!(sn.properties.network_security_group.map(|n| n.id))),
        ]))
    }
    fn tracked(&self) -> bool {
        false
    }
    fn conditional(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// A static Standard-SKU public IP for an ingress controller's load balancer.
pub struct PublicIp;

#[async_trait]
impl ArmType for PublicIp {
    fn schema(&self) -> TypeSchema {
        schema("aks", "public_ip").force_new(&["sku"]).computed(&["id", "name", "ip_address"]).protected().build()
    }
    fn api(&self) -> &'static str {
        NETWORK_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (NETWORK, "PublicIPAddresses")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        ctx.id(&[NETWORK, "publicIPAddresses"], name)
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(models::body(&models::PublicIpAddress {
            sku: models::PublicIpSku { name: cfg.str("sku")?.to_string(), tier: "Regional".into() },
            properties: models::PublicIpProperties {
                allocation_method: "Static".into(),
                address_version: "IPv4".into(),
                ip_address: None,
            },
        }))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let ip: models::PublicIpAddress = parse(j)?;
        Ok(attrs([
            ("id", at(j, "/id")),
            ("name", at(j, "/name")),
            ("sku", json!(ip.sku.name)),
            ("ip_address", json!(ip.properties.ip_address)),
        ]))
    }
    fn conditional(&self) -> bool {
        true
    }
}
