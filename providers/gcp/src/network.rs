//! VPC-native networking for GKE: a custom-mode VPC network; the node subnet whose two named
//! secondary ranges hold the pods' and services' alias IPs; firewall rules (traffic inside the
//! VPC's ranges, Google's health-check ranges to the nodes, the control plane to the nodes on
//! the admission webhooks' ports); a Cloud Router with Cloud NAT so private nodes reach the
//! internet; and the regional static external IPs of the ingress controllers.
//!
//! Not here: shared VPC, IPv6, Private Service Connect, firewall policies (network firewall
//! rules are enough for one platform per VPC).

use async_trait::async_trait;
use matih_plans::*;
use matih_provider_kit::{Kind, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::compute::*;
use crate::kind::*;

pub fn kinds() -> Vec<Box<dyn Kind<Ctx>>> {
    vec![
        Box::new(ComputeKind(Network)),
        Box::new(ComputeKind(Subnet)),
        Box::new(ComputeKind(Firewall)),
        Box::new(ComputeKind(Router)),
        Box::new(ComputeKind(Address)),
    ]
}

/// The partial URL compute takes for a resource of the project (`projects/p/global/networks/n`).
pub fn global_url(ctx: &Ctx, collection: &str, name: &str) -> String {
    format!("projects/{}/global/{collection}/{name}", ctx.project)
}

/// `…/projects/p/global/networks/n` (a full or partial URL) → `n`.
fn name_of(url: &Json) -> Json {
    json!(url.as_str().map(last_segment).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------

/// The custom-mode VPC network (subnets are the tool's own; regional dynamic routing).
pub struct Network;

#[async_trait]
impl ComputeType for Network {
    fn schema(&self) -> TypeSchema {
        schema("gke", "network").force_new(&["routing_mode"]).computed(&["self_link"]).protected().build()
    }
    fn collection(&self) -> &dyn Collection {
        &Networks
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(json!({
            "autoCreateSubnetworks": false,
            "routingConfig": {"routingMode": cfg.str("routing_mode")?},
        }))
    }
    fn attrs(&self, _ctx: &Ctx, j: &Json) -> Result<Attrs, ProviderError> {
        Ok(attrs([("self_link", j["selfLink"].clone()), ("routing_mode", j["routingConfig"]["routingMode"].clone())]))
    }
}

// ---------------------------------------------------------------------------------------------

/// The node subnet: primary range for nodes, named secondary ranges for pods and services
/// (VPC-native clusters give pods and services alias IPs from them).
pub struct Subnet;

#[async_trait]
impl ComputeType for Subnet {
    fn schema(&self) -> TypeSchema {
        schema("gke", "subnet")
            .force_new(&["network", "ip_cidr_range"])
            .updatable(&["secondary_ranges", "private_ip_google_access"])
            .computed(&["self_link"])
            .protected()
            .build()
    }
    fn collection(&self) -> &dyn Collection {
        &Subnetworks
    }
    fn body(&self, ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        let ranges: Vec<Json> = cfg
            .need("secondary_ranges")?
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, cidr)| json!({"rangeName": name, "ipCidrRange": cidr}))
            .collect();
        Ok(json!({
            "network": global_url(ctx, "networks", cfg.str("network")?),
            "region": ctx.region,
            "ipCidrRange": cfg.str("ip_cidr_range")?,
            "secondaryIpRanges": ranges,
            "privateIpGoogleAccess": cfg.bool("private_ip_google_access")?,
        }))
    }
    fn patched(&self) -> &'static [&'static str] {
        &["secondaryIpRanges"]
    }
    /// Private Google Access has its own method (PATCH does not change it).
    async fn set_other(
        &self,
        ctx: &Ctx,
        name: &str,
        want: &Json,
        current: &Json,
    ) -> Result<Option<Json>, ProviderError> {
        let on = want["privateIpGoogleAccess"].as_bool().unwrap_or(false);
        if current["privateIpGoogleAccess"].as_bool().unwrap_or(false) == on {
            return Ok(None);
        }
        let body: google_cloud_compute_v1::model::SubnetworksSetPrivateIpGoogleAccessRequest =
            from_json("private Google access", json!({"privateIpGoogleAccess": on}))?;
        let rid = uuid::Uuid::new_v4().to_string();
        let op = ctx
            .write("compute", "subnetworks.setPrivateIpGoogleAccess", || {
                ctx.c
                    .subnetworks
                    .set_private_ip_google_access()
                    .set_project(ctx.project.clone())
                    .set_region(ctx.region.clone())
                    .set_subnetwork(name.to_string())
                    .set_body(body.clone())
                    .set_request_id(rid.clone())
                    .send()
            })
            .await?;
        Ok(Some(to_json(&op)))
    }
    fn attrs(&self, _ctx: &Ctx, j: &Json) -> Result<Attrs, ProviderError> {
        let ranges: serde_json::Map<String, Json> = j["secondaryIpRanges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| (r["rangeName"].as_str().unwrap_or_default().to_string(), r["ipCidrRange"].clone()))
            .collect();
        Ok(attrs([
            ("self_link", j["selfLink"].clone()),
            ("network", name_of(&j["network"])),
            ("ip_cidr_range", j["ipCidrRange"].clone()),
            ("secondary_ranges", Json::Object(ranges)),
            ("private_ip_google_access", json!(j["privateIpGoogleAccess"].as_bool().unwrap_or(false))),
        ]))
    }
}

// ---------------------------------------------------------------------------------------------

/// An ingress firewall rule of the network.
pub struct Firewall;

#[async_trait]
impl ComputeType for Firewall {
    fn schema(&self) -> TypeSchema {
        schema("gke", "firewall")
            .force_new(&["network"])
            .updatable(&["priority", "source_ranges", "allowed", "target_tags"])
            .computed(&["self_link"])
            .build()
    }
    fn collection(&self) -> &dyn Collection {
        &Firewalls
    }
    fn body(&self, ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(json!({
            "network": global_url(ctx, "networks", cfg.str("network")?),
            "direction": "INGRESS",
            "priority": cfg.u64("priority")?,
            "sourceRanges": cfg.strs("source_ranges")?,
            "allowed": cfg.need("allowed")?,
            "targetTags": cfg.strs("target_tags")?,
        }))
    }
    fn patched(&self) -> &'static [&'static str] {
        &["priority", "sourceRanges", "allowed", "targetTags"]
    }
    fn attrs(&self, _ctx: &Ctx, j: &Json) -> Result<Attrs, ProviderError> {
        let allowed: Vec<Json> = j["allowed"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let mut r = json!({"IPProtocol": a["IPProtocol"]});
                if let Some(p) = a.get("ports").filter(|p| !p.is_null()) {
                    r["ports"] = p.clone();
                }
                r
            })
            .collect();
        Ok(attrs([
            ("self_link", j["selfLink"].clone()),
            ("network", name_of(&j["network"])),
            ("priority", j["priority"].clone()),
            ("source_ranges", j.get("sourceRanges").cloned().unwrap_or(json!([]))),
            ("allowed", json!(allowed)),
            ("target_tags", j.get("targetTags").cloned().unwrap_or(json!([]))),
        ]))
    }
}

// ---------------------------------------------------------------------------------------------

/// The Cloud Router and its Cloud NAT: private nodes reach the internet through it.
pub struct Router;

#[async_trait]
impl ComputeType for Router {
    fn schema(&self) -> TypeSchema {
        schema("gke", "router").force_new(&["network"]).updatable(&["nat"]).computed(&["self_link"]).build()
    }
    fn collection(&self) -> &dyn Collection {
        &Routers
    }
    fn body(&self, ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(json!({
            "network": global_url(ctx, "networks", cfg.str("network")?),
            "region": ctx.region,
            "nats": [nat_body(cfg.need("nat")?)],
        }))
    }
    fn patched(&self) -> &'static [&'static str] {
        &["nats"]
    }
    fn attrs(&self, _ctx: &Ctx, j: &Json) -> Result<Attrs, ProviderError> {
        let nat = j["nats"].as_array().and_then(|n| n.first()).map_or(Json::Null, |n| {
            json!({
                "name": n["name"],
                "ip_allocation": n["natIpAllocateOption"],
                "source_ranges": n["sourceSubnetworkIpRangesToNat"],
            })
        });
        Ok(attrs([("self_link", j["selfLink"].clone()), ("network", name_of(&j["network"])), ("nat", nat)]))
    }
}

/// A NAT for every subnet range of the region, with addresses Google allocates.
fn nat_body(nat: &Json) -> Json {
    json!({
        "name": nat["name"],
        "natIpAllocateOption": nat["ip_allocation"],
        "sourceSubnetworkIpRangesToNat": nat["source_ranges"],
        "logConfig": {"enable": true, "filter": "ERRORS_ONLY"},
    })
}

// ---------------------------------------------------------------------------------------------

/// A regional static external IP for an ingress controller's load balancer.
pub struct Address;

#[async_trait]
impl ComputeType for Address {
    fn schema(&self) -> TypeSchema {
        schema("gke", "address").force_new(&["network_tier"]).computed(&["address", "self_link"]).protected().build()
    }
    fn collection(&self) -> &dyn Collection {
        &Addresses
    }
    fn labelled(&self) -> bool {
        true
    }
    fn body(&self, ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(json!({
            "addressType": "EXTERNAL",
            "networkTier": cfg.str("network_tier")?,
            "region": ctx.region,
        }))
    }
    fn attrs(&self, _ctx: &Ctx, j: &Json) -> Result<Attrs, ProviderError> {
        Ok(attrs([
            ("self_link", j["selfLink"].clone()),
            ("address", j["address"].clone()),
            ("network_tier", j["networkTier"].clone()),
        ]))
    }
}
