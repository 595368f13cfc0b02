//! EC2 resources: the VPC for the Amazon VPC CNI, its subnets, internet gateway, NAT gateways and
//! their Elastic IPs, route tables, the cluster security group, and the ingress Elastic IPs.
//!
//! Reads are one paginated `Describe*` per type, filtered by the platform's owner tags (the kit
//! checks the tags again: emulators ignore some filters). Every create puts the owner tags on in
//! the create call itself (`TagSpecifications`), so a create whose answer was lost is found
//! again; every step after it is safe to repeat on what exists. Route table association lives in
//! the subnet (attribute `route_table_id`), routes in the route table, rules in the security
//! group: none of those has tags of its own to be found by.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange, NatGatewayState, ResourceType as Ec2Type, Tag,
    TagSpecification, VpcAttributeName,
};
use matih_plans::wait::WaitPolicy;
use matih_plans::*;
use matih_provider_kit::owner::{TAG_ENVIRONMENT, TAG_PLATFORM};
use matih_provider_kit::wait::{Observed, Until, until};
use matih_provider_kit::{Found, Kind, Listing, already_ok, gone_ok, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::error::missing;
use crate::kind::*;

pub fn kinds() -> Vec<Box<dyn Kind<Ctx>>> {
    vec![
        Box::new(Vpc),
        Box::new(Subnet),
        Box::new(InternetGateway),
        Box::new(Eip),
        Box::new(NatGateway),
        Box::new(RouteTable),
        Box::new(SecurityGroup),
    ]
}

fn tag_spec(rt: Ec2Type, tags: Vec<(String, String)>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(tags.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
        .build()
}

/// Filters that select this platform's resources.
fn owner_filters(o: &Ownership) -> Vec<Filter> {
    vec![
        Filter::builder().name(format!("tag:{TAG_PLATFORM}")).values(&o.platform).build(),
        Filter::builder().name(format!("tag:{TAG_ENVIRONMENT}")).values(&o.environment).build(),
    ]
}

/// Filters for the resource an intent was about to create: its deterministic `Name`, whoever
/// owns it (the kit adopts only what carries this address's owner tags, and names the owner of
/// anything else). Not `matih:address`: EC2 filter values are wildcard patterns, and addresses
/// like `eks.eip.nat["us-east-1a"]` carry pattern characters, while names are plain `[a-z0-9-]`.
fn name_filter(req: &FindRequest) -> Vec<Filter> {
    vec![Filter::builder().name("tag:Name").values(&req.name).build()]
}

fn pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().filter_map(|t| Some((t.key()?, t.value()?)))
}

fn boolean(v: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(v).build()
}

fn extra_tags(req: &ApplyRequest) -> BTreeMap<String, String> {
    Cfg::of(req).str_map("tags")
}

fn by_id(id: &str, name: &str) -> Vec<Filter> {
    vec![Filter::builder().name(name).values(id).build()]
}

/// Replaces the user tags of `id` with the configured ones (owner tags and Name stay).
async fn sync_tags(ctx: &Ctx, id: &str, prior: &Attrs, req: &ApplyRequest) -> Result<(), ProviderError> {
    let want = extra_tags(req);
    let had: BTreeMap<String, String> = prior
        .get("tags")
        .and_then(Json::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    let gone: Vec<Tag> = had.keys().filter(|k| !want.contains_key(*k)).map(|k| Tag::builder().key(k).build()).collect();
    if !gone.is_empty() {
        ctx.write("ec2", "DeleteTags", || ctx.c.ec2.delete_tags().resources(id).set_tags(Some(gone.clone())).send())
            .await?;
    }
    let set: Vec<Tag> = want
        .iter()
        .filter(|(k, v)| had.get(*k) != Some(*v))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    if !set.is_empty() {
        ctx.write("ec2", "CreateTags", || ctx.c.ec2.create_tags().resources(id).set_tags(Some(set.clone())).send())
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// VPC

struct Vpc;

impl Vpc {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
        let vpcs = ctx
            .read("ec2", "DescribeVpcs", || {
                ctx.c
                    .ec2
                    .describe_vpcs()
                    .set_filters(Some(filters.clone()))
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
            })
            .await?;
        let mut out = Vec::with_capacity(vpcs.len());
        for v in vpcs {
            let id = v.vpc_id().unwrap_or_default().to_string();
            // DNS settings are not part of DescribeVpcs: one look per VPC (a platform has one).
            let support = Self::attribute(ctx, &id, VpcAttributeName::EnableDnsSupport).await?;
            let hostnames = Self::attribute(ctx, &id, VpcAttributeName::EnableDnsHostnames).await?;
            let attrs = attrs([
                ("id", json!(id)),
                ("cidr", json!(v.cidr_block())),
                ("enable_dns_support", json!(support)),
                ("enable_dns_hostnames", json!(hostnames)),
                ("tags", user_tags(pairs(v.tags()))),
            ]);
            out.push(Found::new(id, attrs, tag_map(pairs(v.tags()))));
        }
        Ok(out)
    }

    async fn attribute(ctx: &Ctx, id: &str, name: VpcAttributeName) -> Result<bool, ProviderError> {
        let r = ctx
            .read("ec2", "DescribeVpcAttribute", || {
                ctx.c.ec2.describe_vpc_attribute().vpc_id(id).attribute(name.clone()).send()
            })
            .await?;
        let v = match name {
            VpcAttributeName::EnableDnsSupport => r.enable_dns_support().and_then(|a| a.value()),
            _ => r.enable_dns_hostnames().and_then(|a| a.value()),
        };
        Ok(v.unwrap_or(false))
    }

    /// Sets both DNS attributes (one per call, as the API requires). Both are sent every time:
    /// an update's prior is what state recorded, not what the VPC has now.
    async fn set_dns(ctx: &Ctx, id: &str, cfg: &Cfg<'_>) -> Result<(), ProviderError> {
        let support = cfg.bool("enable_dns_support")?;
        ctx.write("ec2", "ModifyVpcAttribute", || {
            ctx.c.ec2.modify_vpc_attribute().vpc_id(id).enable_dns_support(boolean(support)).send()
        })
        .await?;
        let hostnames = cfg.bool("enable_dns_hostnames")?;
        ctx.write("ec2", "ModifyVpcAttribute", || {
            ctx.c.ec2.modify_vpc_attribute().vpc_id(id).enable_dns_hostnames(boolean(hostnames)).send()
        })
        .await?;
        Ok(())
    }

    async fn one(ctx: &Ctx, id: &str) -> Result<ApplyResponse, ProviderError> {
        the_one(Self::describe(ctx, by_id(id, "vpc-id")).await?, "ec2", "DescribeVpcs", "VPC")
    }
}

#[async_trait]
impl Kind<Ctx> for Vpc {
    fn schema(&self) -> TypeSchema {
        schema("eks", "vpc")
            .force_new(&["cidr"])
            .updatable(&["enable_dns_support", "enable_dns_hostnames", "tags"])
            .computed(&["id"])
            .protected()
            .build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        Ok(Listing::Owned(Self::describe(ctx, owner_filters(&ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let (cidr, tags) = (cfg.str("cidr")?, tag_spec(Ec2Type::Vpc, tags_for(req, &extra_tags(req))));
        let r = ctx
            .create("ec2", "CreateVpc", || {
                ctx.c.ec2.create_vpc().cidr_block(cidr).tag_specifications(tags.clone()).send()
            })
            .await?;
        let id = r.vpc().and_then(|v| v.vpc_id()).ok_or_else(|| missing("ec2", "CreateVpc", "VpcId"))?.to_string();
        Self::set_dns(ctx, &id, &cfg).await?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        Self::set_dns(ctx, &prior.id, &Cfg::of(req)).await?;
        sync_tags(ctx, &prior.id, &prior.attrs, req).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        gone_ok(ctx.write("ec2", "DeleteVpc", || ctx.c.ec2.delete_vpc().vpc_id(&req.id).send()).await)
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Self::describe(ctx, name_filter(req)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Subnet (with its route table association)

struct Subnet;

impl Subnet {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
        let subnets = ctx
            .read("ec2", "DescribeSubnets", || {
                ctx.c
                    .ec2
                    .describe_subnets()
                    .set_filters(Some(filters.clone()))
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
            })
            .await?;
        if subnets.is_empty() {
            return Ok(Vec::new());
        }
        // The associations of all of them: every route table of their VPCs, in one call.
        let vpcs: BTreeSet<String> = subnets.iter().filter_map(|s| s.vpc_id().map(str::to_string)).collect();
        let vpc_filter = vec![Filter::builder().name("vpc-id").set_values(Some(vpcs.into_iter().collect())).build()];
        let tables = ctx
            .read("ec2", "DescribeRouteTables", || {
                ctx.c
                    .ec2
                    .describe_route_tables()
                    .set_filters(Some(vpc_filter.clone()))
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
            })
            .await?;
        let mut assoc: BTreeMap<String, (String, String)> = BTreeMap::new();
        for t in &tables {
            for a in t.associations() {
                if let (Some(s), Some(a_id)) = (a.subnet_id(), a.route_table_association_id()) {
                    assoc.insert(s.to_string(), (t.route_table_id().unwrap_or_default().to_string(), a_id.to_string()));
                }
            }
        }
        Ok(subnets
            .into_iter()
            .map(|s| {
                let id = s.subnet_id().unwrap_or_default().to_string();
                let (rt, assoc_id) =
                    assoc.get(&id).cloned().map(|(r, a)| (json!(r), json!(a))).unwrap_or((Json::Null, Json::Null));
                let attrs = attrs([
                    ("id", json!(id)),
                    ("vpc_id", json!(s.vpc_id())),
                    ("cidr", json!(s.cidr_block())),
                    ("availability_zone", json!(s.availability_zone())),
                    ("map_public_ip_on_launch", json!(s.map_public_ip_on_launch().unwrap_or(false))),
                    ("route_table_id", rt),
                    ("association_id", assoc_id),
                    ("tags", user_tags(pairs(s.tags()))),
                ]);
                Found::new(id, attrs, tag_map(pairs(s.tags())))
            })
            .collect())
    }

    async fn one(ctx: &Ctx, id: &str) -> Result<ApplyResponse, ProviderError> {
        the_one(Self::describe(ctx, by_id(id, "subnet-id")).await?, "ec2", "DescribeSubnets", "subnet")
    }

    async fn public_ip(ctx: &Ctx, id: &str, want: bool) -> Result<(), ProviderError> {
        ctx.write("ec2", "ModifySubnetAttribute", || {
            ctx.c.ec2.modify_subnet_attribute().subnet_id(id).map_public_ip_on_launch(boolean(want)).send()
        })
        .await?;
        Ok(())
    }

    async fn associate(ctx: &Ctx, id: &str, prior: Option<&Attrs>, cfg: &Cfg<'_>) -> Result<(), ProviderError> {
        let want = cfg.opt_str("route_table_id");
        let had = prior.and_then(|p| p.get("route_table_id")).and_then(Json::as_str);
        let assoc = prior.and_then(|p| p.get("association_id")).and_then(Json::as_str);
        match (want, had, assoc) {
            (Some(w), Some(h), _) if w == h => Ok(()),
            (Some(w), Some(_), Some(a)) => {
                ctx.write("ec2", "ReplaceRouteTableAssociation", || {
                    ctx.c.ec2.replace_route_table_association().association_id(a).route_table_id(w).send()
                })
                .await?;
                Ok(())
            }
            // Sent again after a lost answer, the association is there already.
            (Some(w), _, _) => already_ok(
                ctx.write("ec2", "AssociateRouteTable", || {
                    ctx.c.ec2.associate_route_table().subnet_id(id).route_table_id(w).send()
                })
                .await,
                &["Resource.AlreadyAssociated"],
            ),
            (None, _, Some(a)) => gone_ok(
                ctx.write("ec2", "DisassociateRouteTable", || {
                    ctx.c.ec2.disassociate_route_table().association_id(a).send()
                })
                .await,
            ),
            (None, _, None) => Ok(()),
        }
    }
}

#[async_trait]
impl Kind<Ctx> for Subnet {
    fn schema(&self) -> TypeSchema {
        schema("eks", "subnet")
            .force_new(&["vpc_id", "cidr", "availability_zone"])
            .updatable(&["map_public_ip_on_launch", "route_table_id", "tags"])
            .computed(&["id", "association_id"])
            .build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        Ok(Listing::Owned(Self::describe(ctx, owner_filters(&ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let (vpc, cidr, az) = (cfg.str("vpc_id")?, cfg.str("cidr")?, cfg.str("availability_zone")?);
        let tags = tag_spec(Ec2Type::Subnet, tags_for(req, &extra_tags(req)));
        let r = ctx
            .create("ec2", "CreateSubnet", || {
                ctx.c
                    .ec2
                    .create_subnet()
                    .vpc_id(vpc)
                    .cidr_block(cidr)
                    .availability_zone(az)
                    .tag_specifications(tags.clone())
                    .send()
            })
            .await?;
        let id = r
            .subnet()
            .and_then(|s| s.subnet_id())
            .ok_or_else(|| missing("ec2", "CreateSubnet", "SubnetId"))?
            .to_string();
        // Set either way: the default depends on the zone's default subnet, not on us.
        Self::public_ip(ctx, &id, cfg.bool("map_public_ip_on_launch")?).await?;
        Self::associate(ctx, &id, None, &cfg).await?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let want = cfg.bool("map_public_ip_on_launch")?;
        if prior.attrs.get("map_public_ip_on_launch").and_then(Json::as_bool) != Some(want) {
            Self::public_ip(ctx, &prior.id, want).await?;
        }
        Self::associate(ctx, &prior.id, Some(&prior.attrs), &cfg).await?;
        sync_tags(ctx, &prior.id, &prior.attrs, req).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        // Disassociate first: a route table that still lists the subnet cannot be deleted later.
        if let Some(a) = req.attrs.get("association_id").and_then(Json::as_str) {
            gone_ok(
                ctx.write("ec2", "DisassociateRouteTable", || {
                    ctx.c.ec2.disassociate_route_table().association_id(a).send()
                })
                .await,
            )?;
        }
        gone_ok(ctx.write("ec2", "DeleteSubnet", || ctx.c.ec2.delete_subnet().subnet_id(&req.id).send()).await)
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Self::describe(ctx, name_filter(req)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Internet gateway (with its VPC attachment)

struct InternetGateway;

impl InternetGateway {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
        let igws = ctx
            .read("ec2", "DescribeInternetGateways", || {
                ctx.c
                    .ec2
                    .describe_internet_gateways()
                    .set_filters(Some(filters.clone()))
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
            })
            .await?;
        Ok(igws
            .into_iter()
            .map(|g| {
                let id = g.internet_gateway_id().unwrap_or_default().to_string();
                let vpc = g.attachments().first().and_then(|a| a.vpc_id()).map(|v| json!(v)).unwrap_or(Json::Null);
                let attrs = attrs([("id", json!(id)), ("vpc_id", vpc), ("tags", user_tags(pairs(g.tags())))]);
                Found::new(id, attrs, tag_map(pairs(g.tags())))
            })
            .collect())
    }

    async fn one(ctx: &Ctx, id: &str) -> Result<ApplyResponse, ProviderError> {
        the_one(
            Self::describe(ctx, by_id(id, "internet-gateway-id")).await?,
            "ec2",
            "DescribeInternetGateways",
            "gateway",
        )
    }

    async fn attach(ctx: &Ctx, id: &str, vpc: &str) -> Result<(), ProviderError> {
        already_ok(
            ctx.write("ec2", "AttachInternetGateway", || {
                ctx.c.ec2.attach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send()
            })
            .await,
            &["Resource.AlreadyAssociated"],
        )
    }
}

#[async_trait]
impl Kind<Ctx> for InternetGateway {
    fn schema(&self) -> TypeSchema {
        schema("eks", "internet_gateway").force_new(&["vpc_id"]).updatable(&["tags"]).computed(&["id"]).build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        Ok(Listing::Owned(Self::describe(ctx, owner_filters(&ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let tags = tag_spec(Ec2Type::InternetGateway, tags_for(req, &extra_tags(req)));
        let r = ctx
            .create("ec2", "CreateInternetGateway", || {
                ctx.c.ec2.create_internet_gateway().tag_specifications(tags.clone()).send()
            })
            .await?;
        let id = r
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .ok_or_else(|| missing("ec2", "CreateInternetGateway", "InternetGatewayId"))?
            .to_string();
        Self::attach(ctx, &id, cfg.str("vpc_id")?).await?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        if prior.attrs.get("vpc_id").and_then(Json::as_str).is_none() {
            // Detached behind our back, or adopted before its attachment: attach.
            Self::attach(ctx, &prior.id, Cfg::of(req).str("vpc_id")?).await?;
        }
        sync_tags(ctx, &prior.id, &prior.attrs, req).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        if let Some(vpc) = req.attrs.get("vpc_id").and_then(Json::as_str) {
            let r = ctx
                .write("ec2", "DetachInternetGateway", || {
                    ctx.c.ec2.detach_internet_gateway().internet_gateway_id(&req.id).vpc_id(vpc).send()
                })
                .await;
            gone_ok(already_ok(r, &["Gateway.NotAttached"]))?;
        }
        gone_ok(
            ctx.write("ec2", "DeleteInternetGateway", || {
                ctx.c.ec2.delete_internet_gateway().internet_gateway_id(&req.id).send()
            })
            .await,
        )
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Self::describe(ctx, name_filter(req)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Elastic IP (NAT gateways' and ingress load balancers')

struct Eip;

/// The tag that says what an address is for (`nat`, `ingress:<controller>`).
const TAG_PURPOSE: &str = "matih:purpose";

impl Eip {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
        // DescribeAddresses is not paginated: it returns every match at once.
        let r = ctx
            .read("ec2", "DescribeAddresses", || {
                ctx.c.ec2.describe_addresses().set_filters(Some(filters.clone())).send()
            })
            .await?;
        Ok(r.addresses()
            .iter()
            .map(|a| {
                let id = a.allocation_id().unwrap_or_default().to_string();
                let attrs = attrs([
                    ("id", json!(id)),
                    ("public_ip", json!(a.public_ip())),
                    ("purpose", json!(pairs(a.tags()).find(|(k, _)| *k == TAG_PURPOSE).map(|(_, v)| v))),
                ]);
                Found::new(id, attrs, tag_map(pairs(a.tags())))
            })
            .collect())
    }
}

#[async_trait]
impl Kind<Ctx> for Eip {
    fn schema(&self) -> TypeSchema {
        schema("eks", "eip").force_new(&["purpose"]).computed(&["id", "public_ip"]).protected().build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        Ok(Listing::Owned(Self::describe(ctx, owner_filters(&ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let purpose = Cfg::of(req).str("purpose")?;
        let extra = BTreeMap::from([(TAG_PURPOSE.to_string(), purpose.to_string())]);
        let tags = tag_spec(Ec2Type::ElasticIp, tags_for(req, &extra));
        let r = ctx
            .create("ec2", "AllocateAddress", || {
                ctx.c.ec2.allocate_address().domain(DomainType::Vpc).tag_specifications(tags.clone()).send()
            })
            .await?;
        let id = r.allocation_id().ok_or_else(|| missing("ec2", "AllocateAddress", "AllocationId"))?.to_string();
        Ok(ApplyResponse::new(
            id.clone(),
            attrs([("id", json!(id)), ("public_ip", json!(r.public_ip())), ("purpose", json!(purpose))]),
        ))
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        prior: &ReadResource,
        _req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        // Nothing about an address can change in place; the schema forces replacement instead.
        unchanged(prior)
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        gone_ok(ctx.write("ec2", "ReleaseAddress", || ctx.c.ec2.release_address().allocation_id(&req.id).send()).await)
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Self::describe(ctx, name_filter(req)).await
    }
}

// ---------------------------------------------------------------------------------------------
// NAT gateway

struct NatGateway;

const NAT_WAIT: Duration = Duration::from_secs(15 * 60);

impl NatGateway {
    async fn describe_raw(
        ctx: &Ctx,
        filters: Vec<Filter>,
    ) -> Result<Vec<aws_sdk_ec2::types::NatGateway>, ProviderError> {
        ctx.read("ec2", "DescribeNatGateways", || {
            ctx.c
                .ec2
                .describe_nat_gateways()
                .set_filter(Some(filters.clone()))
                .into_paginator()
                .items()
                .send()
                .try_collect()
        })
        .await
    }

    fn to_found(n: &aws_sdk_ec2::types::NatGateway) -> Found {
        let id = n.nat_gateway_id().unwrap_or_default().to_string();
        let alloc = n.nat_gateway_addresses().first().and_then(|a| a.allocation_id());
        let attrs = attrs([("id", json!(id)), ("subnet_id", json!(n.subnet_id())), ("allocation_id", json!(alloc))]);
        Found::new(id, attrs, tag_map(pairs(n.tags())))
    }

    /// Live gateways only: deleted ones linger in Describe for a while.
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
        Ok(Self::describe_raw(ctx, filters)
            .await?
            .iter()
            .filter(|n| {
                !matches!(
                    n.state(),
                    Some(NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed)
                )
            })
            .map(Self::to_found)
            .collect())
    }

    async fn wait(ctx: &Ctx, id: &str, gone: bool, status: &StatusSink) -> Result<Option<Found>, ProviderError> {
        let what = format!("NAT gateway {id} to be {}", if gone { "deleted" } else { "available" });
        let target = if gone { Until::Gone } else { Until::Status(&["available"]) };
        until(&what, WaitPolicy::new(NAT_WAIT), status, target, &["failed"], || async {
            let found = Self::describe_raw(ctx, by_id(id, "nat-gateway-id")).await?;
            Ok(found.first().and_then(|n| {
                let state = n.state().cloned().unwrap_or(NatGatewayState::Pending);
                // A deleted gateway lingers in the listing: for a delete it is gone.
                if gone && state == NatGatewayState::Deleted {
                    return None;
                }
                let mut o = Observed::new(state.as_str(), Self::to_found(n));
                o.detail = n.failure_message().map(str::to_string);
                Some(o)
            }))
        })
        .await
    }
}

#[async_trait]
impl Kind<Ctx> for NatGateway {
    fn schema(&self) -> TypeSchema {
        schema("eks", "nat_gateway").force_new(&["subnet_id", "allocation_id"]).computed(&["id"]).build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        Ok(Listing::Owned(Self::describe(ctx, owner_filters(&ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let (subnet, alloc) = (cfg.str("subnet_id")?, cfg.str("allocation_id")?);
        let tags = tag_spec(Ec2Type::Natgateway, tags_for(req, &BTreeMap::new()));
        let r = ctx
            .create("ec2", "CreateNatGateway", || {
                ctx.c
                    .ec2
                    .create_nat_gateway()
                    .subnet_id(subnet)
                    .allocation_id(alloc)
                    .client_token(&req.identity.client_token)
                    .tag_specifications(tags.clone())
                    .send()
            })
            .await?;
        let id = r
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .ok_or_else(|| missing("ec2", "CreateNatGateway", "NatGatewayId"))?
            .to_string();
        let f = Self::wait(ctx, &id, false, &req.status)
            .await?
            .ok_or_else(|| missing("ec2", "DescribeNatGateways", "gateway"))?;
        Ok(ApplyResponse::new(f.id, f.attrs))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        // Nothing changes in place; an adopted gateway may still be on its way up.
        let f = Self::wait(ctx, &prior.id, false, &req.status)
            .await?
            .ok_or_else(|| missing("ec2", "DescribeNatGateways", "gateway"))?;
        Ok(ApplyResponse::new(f.id, f.attrs))
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let r = ctx
            .write("ec2", "DeleteNatGateway", || ctx.c.ec2.delete_nat_gateway().nat_gateway_id(&req.id).send())
            .await;
        if matih_provider_kit::not_found_none(r)?.is_none() {
            return Ok(());
        }
        // Its Elastic IP can be released only once the gateway is gone.
        Self::wait(ctx, &req.id, true, &req.status).await?;
        Ok(())
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        // moto ignores tag filters on DescribeNatGateways and lists every gateway: the kit keeps
        // only the one whose owner tags name this address.
        Self::describe(ctx, name_filter(req)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Route table (with its default route)

struct RouteTable;

impl RouteTable {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
        let tables = ctx
            .read("ec2", "DescribeRouteTables", || {
                ctx.c
                    .ec2
                    .describe_route_tables()
                    .set_filters(Some(filters.clone()))
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
            })
            .await?;
        Ok(tables
            .into_iter()
            .map(|t| {
                let id = t.route_table_id().unwrap_or_default().to_string();
                let default = t.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"));
                let target =
                    default.and_then(|r| r.nat_gateway_id().or(r.gateway_id())).map(|g| json!(g)).unwrap_or(Json::Null);
                let attrs = attrs([
                    ("id", json!(id)),
                    ("vpc_id", json!(t.vpc_id())),
                    ("default_route_target", target),
                    ("tags", user_tags(pairs(t.tags()))),
                ]);
                Found::new(id, attrs, tag_map(pairs(t.tags())))
            })
            .collect())
    }

    async fn one(ctx: &Ctx, id: &str) -> Result<ApplyResponse, ProviderError> {
        the_one(Self::describe(ctx, by_id(id, "route-table-id")).await?, "ec2", "DescribeRouteTables", "table")
    }

    /// Points 0.0.0.0/0 at an internet gateway (`igw-…`) or a NAT gateway (`nat-…`).
    async fn replace_route(ctx: &Ctx, id: &str, target: &str) -> Result<(), ProviderError> {
        let nat = target.starts_with("nat-");
        ctx.write("ec2", "ReplaceRoute", || {
            let b = ctx.c.ec2.replace_route().route_table_id(id).destination_cidr_block("0.0.0.0/0");
            let b = if nat { b.nat_gateway_id(target) } else { b.gateway_id(target) };
            b.send()
        })
        .await?;
        Ok(())
    }

    /// Adds the default route; if one is there already (sent again after a lost answer, or left
    /// by someone), it is pointed at `target`.
    async fn add_route(ctx: &Ctx, id: &str, target: &str) -> Result<(), ProviderError> {
        let nat = target.starts_with("nat-");
        let r = ctx
            .write("ec2", "CreateRoute", || {
                let b = ctx.c.ec2.create_route().route_table_id(id).destination_cidr_block("0.0.0.0/0");
                let b = if nat { b.nat_gateway_id(target) } else { b.gateway_id(target) };
                b.send()
            })
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("RouteAlreadyExists") => Self::replace_route(ctx, id, target).await,
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Kind<Ctx> for RouteTable {
    fn schema(&self) -> TypeSchema {
        schema("eks", "route_table")
            .force_new(&["vpc_id"])
            .updatable(&["default_route_target", "tags"])
            .computed(&["id"])
            .build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        Ok(Listing::Owned(Self::describe(ctx, owner_filters(&ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let vpc = cfg.str("vpc_id")?;
        let tags = tag_spec(Ec2Type::RouteTable, tags_for(req, &extra_tags(req)));
        let r = ctx
            .create("ec2", "CreateRouteTable", || {
                ctx.c
                    .ec2
                    .create_route_table()
                    .vpc_id(vpc)
                    .client_token(&req.identity.client_token)
                    .tag_specifications(tags.clone())
                    .send()
            })
            .await?;
        let id = r
            .route_table()
            .and_then(|t| t.route_table_id())
            .ok_or_else(|| missing("ec2", "CreateRouteTable", "RouteTableId"))?
            .to_string();
        Self::add_route(ctx, &id, cfg.str("default_route_target")?).await?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let want = Cfg::of(req).str("default_route_target")?;
        match prior.attrs.get("default_route_target").and_then(Json::as_str) {
            Some(had) if had == want => {}
            Some(_) => Self::replace_route(ctx, &prior.id, want).await?,
            None => Self::add_route(ctx, &prior.id, want).await?,
        }
        sync_tags(ctx, &prior.id, &prior.attrs, req).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        gone_ok(
            ctx.write("ec2", "DeleteRouteTable", || ctx.c.ec2.delete_route_table().route_table_id(&req.id).send())
                .await,
        )
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Self::describe(ctx, name_filter(req)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Security group (with its ingress rules)

struct SecurityGroup;

/// A rule as recorded: `tcp:443:443:10.0.0.0/16`.
fn rule_key(protocol: &str, from: i32, to: i32, cidr: &str) -> String {
    format!("{protocol}:{from}:{to}:{cidr}")
}

fn parse_rule(addr: &ResourceAddr, s: &str) -> Result<IpPermission, ProviderError> {
    let parts: Vec<&str> = s.splitn(4, ':').collect();
    let bad = || ProviderError::Config {
        addr: addr.clone(),
        message: format!("ingress rule `{s}` is not protocol:from:to:cidr"),
    };
    if parts.len() != 4 {
        return Err(bad());
    }
    let from: i32 = parts[1].parse().map_err(|_| bad())?;
    let to: i32 = parts[2].parse().map_err(|_| bad())?;
    Ok(IpPermission::builder()
        .ip_protocol(parts[0])
        .from_port(from)
        .to_port(to)
        .ip_ranges(IpRange::builder().cidr_ip(parts[3]).build())
        .build())
}

impl SecurityGroup {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
        let groups = ctx
            .read("ec2", "DescribeSecurityGroups", || {
                ctx.c
                    .ec2
                    .describe_security_groups()
                    .set_filters(Some(filters.clone()))
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
            })
            .await?;
        Ok(groups
            .into_iter()
            .map(|g| {
                let id = g.group_id().unwrap_or_default().to_string();
                let mut rules: Vec<String> = g
                    .ip_permissions()
                    .iter()
                    .flat_map(|p| {
                        let (proto, from, to) = (
                            p.ip_protocol().unwrap_or("-1").to_string(),
                            p.from_port().unwrap_or(0),
                            p.to_port().unwrap_or(0),
                        );
                        p.ip_ranges().iter().filter_map(move |r| Some(rule_key(&proto, from, to, r.cidr_ip()?)))
                    })
                    .collect();
                rules.sort();
                let attrs = attrs([
                    ("id", json!(id)),
                    ("vpc_id", json!(g.vpc_id())),
                    ("group_name", json!(g.group_name())),
                    ("description", json!(g.description())),
                    ("ingress", json!(rules)),
                ]);
                Found::new(id, attrs, tag_map(pairs(g.tags())))
            })
            .collect())
    }

    async fn one(ctx: &Ctx, id: &str) -> Result<ApplyResponse, ProviderError> {
        the_one(Self::describe(ctx, by_id(id, "group-id")).await?, "ec2", "DescribeSecurityGroups", "group")
    }

    /// One call per rule: a duplicate in a request of several would fail the whole request
    /// (and on some implementations keep part of it), and "already there" is what is wanted.
    async fn sync_rules(ctx: &Ctx, req: &ApplyRequest, id: &str, had: &[String]) -> Result<(), ProviderError> {
        let mut want = Cfg::of(req).strs("ingress")?;
        want.sort();
        for rule in want.iter().filter(|r| !had.contains(r)) {
            let p = parse_rule(&req.addr, rule)?;
            already_ok(
                ctx.write("ec2", "AuthorizeSecurityGroupIngress", || {
                    ctx.c.ec2.authorize_security_group_ingress().group_id(id).ip_permissions(p.clone()).send()
                })
                .await,
                &["InvalidPermission.Duplicate"],
            )?;
        }
        for rule in had.iter().filter(|r| !want.contains(r)) {
            let p = parse_rule(&req.addr, rule)?;
            already_ok(
                ctx.write("ec2", "RevokeSecurityGroupIngress", || {
                    ctx.c.ec2.revoke_security_group_ingress().group_id(id).ip_permissions(p.clone()).send()
                })
                .await,
                &["InvalidPermission.NotFound"],
            )?;
        }
        Ok(())
    }
}

#[async_trait]
impl Kind<Ctx> for SecurityGroup {
    fn schema(&self) -> TypeSchema {
        schema("eks", "security_group")
            .force_new(&["vpc_id", "group_name", "description"])
            .updatable(&["ingress"])
            .computed(&["id"])
            .build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        Ok(Listing::Owned(Self::describe(ctx, owner_filters(&ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let (vpc, name, description) = (cfg.str("vpc_id")?, cfg.str("group_name")?, cfg.str("description")?);
        let tags = tag_spec(Ec2Type::SecurityGroup, tags_for(req, &BTreeMap::new()));
        let r = ctx
            .create("ec2", "CreateSecurityGroup", || {
                ctx.c
                    .ec2
                    .create_security_group()
                    .vpc_id(vpc)
                    .group_name(name)
                    .description(description)
                    .tag_specifications(tags.clone())
                    .send()
            })
            .await?;
        let id = r.group_id().ok_or_else(|| missing("ec2", "CreateSecurityGroup", "GroupId"))?.to_string();
        Self::sync_rules(ctx, req, &id, &[]).await?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let had: Vec<String> = prior
            .attrs
            .get("ingress")
            .and_then(Json::as_array)
            .map(|v| v.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Self::sync_rules(ctx, req, &prior.id, &had).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        gone_ok(
            ctx.write("ec2", "DeleteSecurityGroup", || ctx.c.ec2.delete_security_group().group_id(&req.id).send())
                .await,
        )
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Self::describe(ctx, name_filter(req)).await
    }
}
