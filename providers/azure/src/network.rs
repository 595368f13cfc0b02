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
    fn attrs(&self, j: &Json) -> Attrs {
        attrs([("id", at(j, "/id")), ("location", at(j, "/location"))])
    }
    fn adoptable(&self) -> bool {
        true
    }
    fn deadline(&self) -> Duration {
        Duration::from_secs(30 * 60)
    }
}

// ---------------------------------------------------------------------------------------------

/// The node subnet's network security group. Its rules are `{name, priority, access, protocol,
/// source, ports}`, inbound, to any destination.
pub struct Nsg;

fn rule_of(r: &Json) -> Json {
    let p = &r["properties"];
    let mut ports: Vec<Json> = p["destinationPortRanges"].as_array().cloned().unwrap_or_default();
    if ports.is_empty()
        && let Some(one) = p["destinationPortRange"].as_str()
    {
        ports.push(json!(one));
    }
    json!({
        "name": r["name"],
        "priority": p["priority"],
        "access": p["access"],
        "protocol": p["protocol"],
        "source": p["sourceAddressPrefix"],
        "ports": ports,
    })
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
        let rules: Vec<Json> = cfg
            .need("rules")?
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                json!({"name": r["name"], "properties": {
                    "priority": r["priority"], "direction": "Inbound", "access": r["access"],
                    "protocol": r["protocol"], "sourceAddressPrefix": r["source"], "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRanges": r["ports"],
                }})
            })
            .collect();
        Ok(json!({"properties": {"securityRules": rules}}))
    }
    fn attrs(&self, j: &Json) -> Attrs {
        let mut rules: Vec<Json> =
            j["properties"]["securityRules"].as_array().into_iter().flatten().map(rule_of).collect();
        rules.sort_by_key(|r| r["priority"].as_u64());
        attrs([("id", at(j, "/id")), ("rules", json!(rules))])
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
        Ok(json!({"properties": {
            "addressSpace": {"addressPrefixes": cfg.need("address_space")?},
            "dhcpOptions": {"dnsServers": cfg.need("dns_servers")?},
        }}))
    }
    fn attrs(&self, j: &Json) -> Attrs {
        let dns = j.pointer("/properties/dhcpOptions/dnsServers").cloned().unwrap_or_else(|| json!([]));
        attrs([
            ("id", at(j, "/id")),
            ("address_space", at(j, "/properties/addressSpace/addressPrefixes")),
            ("dns_servers", dns),
        ])
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
        let mut p = json!({"addressPrefix": cfg.str("address_prefix")?});
        if let Some(nsg) = cfg.opt_str("nsg_id") {
            p["networkSecurityGroup"] = json!({"id": nsg});
        }
        Ok(json!({"properties": p}))
    }
    fn attrs(&self, j: &Json) -> Attrs {
        let id = j["id"].as_str().unwrap_or_default();
        attrs([
            ("id", json!(id)),
            ("vnet_id", json!(collection_of(collection_of(id)))),
            ("address_prefix", at(j, "/properties/addressPrefix")),
            ("nsg_id", at(j, "/properties/networkSecurityGroup/id")),
        ])
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
        Ok(json!({
            "sku": {"name": cfg.str("sku")?, "tier": "Regional"},
            "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
        }))
    }
    fn attrs(&self, j: &Json) -> Attrs {
        attrs([
            ("id", at(j, "/id")),
            ("name", at(j, "/name")),
            ("sku", at(j, "/sku/name")),
            ("ip_address", at(j, "/properties/ipAddress")),
        ])
    }
    fn conditional(&self) -> bool {
        true
    }
}
