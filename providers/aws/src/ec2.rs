//! EC2 resources: the VPC for the Amazon VPC CNI, its subnets, internet gateway, NAT gateways and
//! their Elastic IPs, route tables, the cluster security group, and the ingress Elastic IPs.
//!
//! Reads are one paginated `Describe*` per type, filtered by the platform's owner tags. Route
//! table association lives in the subnet (attribute `route_table_id`), routes in the route table,
//! rules in the security group: none of those has tags of its own to be found by.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange, NatGatewayState, ResourceType as Ec2Type, Tag,
    TagSpecification, VpcAttributeName,
};
use matih_plans::wait::{WaitPolicy, WaitStep, wait_until};
use matih_plans::*;
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::error::{api, code, deleted, missing};
use crate::kind::*;

pub fn kinds() -> Vec<Box<dyn Kind>> {
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
fn owner_filters(o: &Owner) -> Vec<Filter> {
    vec![
        Filter::builder().name(format!("tag:{TAG_PLATFORM}")).values(&o.platform).build(),
        Filter::builder().name(format!("tag:{TAG_ENVIRONMENT}")).values(&o.environment).build(),
    ]
}

/// Filters for the resource an intent was about to create (for `find_by_owner`): the platform's
/// owner tags and the deterministic `Name`. Not `matih:address`: EC2 filter values are wildcard
/// patterns, and addresses like `eks.eip.nat["us-east-1a"]` carry pattern characters, while names
/// are plain `[a-z0-9-]`.
fn find_filters(ctx: &Ctx<'_>, req: &FindRequest) -> Vec<Filter> {
    let mut f = owner_filters(ctx.owner);
    f.push(Filter::builder().name("tag:Name").values(&req.name).build());
    f
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

/// Replaces the user tags of `id` with the configured ones (owner tags and Name stay).
async fn sync_tags(ctx: &Ctx<'_>, id: &str, prior: &Attrs, req: &ApplyRequest) -> Result<(), ProviderError> {
    let want = extra_tags(req);
    let had: BTreeMap<String, String> = prior
        .get("tags")
        .and_then(Json::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    let gone: Vec<Tag> = had.keys().filter(|k| !want.contains_key(*k)).map(|k| Tag::builder().key(k).build()).collect();
    if !gone.is_empty() {
        ctx.c
            .ec2
            .delete_tags()
            .resources(id)
            .set_tags(Some(gone))
            .send()
            .await
            .map_err(|e| api("ec2", "DeleteTags", e))?;
    }
    let set: Vec<Tag> = want
        .iter()
        .filter(|(k, v)| had.get(*k) != Some(*v))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    if !set.is_empty() {
        ctx.c
            .ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(set))
            .send()
            .await
            .map_err(|e| api("ec2", "CreateTags", e))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// VPC

struct Vpc;

impl Vpc {
    async fn describe(ctx: &Ctx<'_>, filters: Vec<Filter>) -> Result<Vec<(String, Attrs)>, ProviderError> {
        let vpcs = ctx
            .c
            .ec2
            .describe_vpcs()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ec2", "DescribeVpcs", e))?;
        let mut out = Vec::with_capacity(vpcs.len());
        for v in vpcs {
            let id = v.vpc_id().unwrap_or_default().to_string();
            // DNS settings are not part of DescribeVpcs: one look per VPC (a platform has one).
            let support = Self::attribute(ctx, &id, VpcAttributeName::EnableDnsSupport).await?;
            let hostnames = Self::attribute(ctx, &id, VpcAttributeName::EnableDnsHostnames).await?;
            out.push((
                id.clone(),
                attrs([
                    ("id", json!(id)),
                    ("cidr", json!(v.cidr_block())),
                    ("enable_dns_support", json!(support)),
                    ("enable_dns_hostnames", json!(hostnames)),
                    ("tags", user_tags(pairs(v.tags()))),
                ]),
            ));
        }
        Ok(out)
    }

    async fn attribute(ctx: &Ctx<'_>, id: &str, name: VpcAttributeName) -> Result<bool, ProviderError> {
        let r = ctx
            .c
            .ec2
            .describe_vpc_attribute()
            .vpc_id(id)
            .attribute(name.clone())
            .send()
            .await
            .map_err(|e| api("ec2", "DescribeVpcAttribute", e))?;
        let v = match name {
            VpcAttributeName::EnableDnsSupport => r.enable_dns_support().and_then(|a| a.value()),
            _ => r.enable_dns_hostnames().and_then(|a| a.value()),
        };
        Ok(v.unwrap_or(false))
    }

    async fn set_dns(ctx: &Ctx<'_>, id: &str, cfg: &Cfg<'_>) -> Result<(), ProviderError> {
        // One attribute per call, as the API requires.
        ctx.c
            .ec2
            .modify_vpc_attribute()
            .vpc_id(id)
            .enable_dns_support(boolean(cfg.bool("enable_dns_support")?))
            .send()
            .await
            .map_err(|e| api("ec2", "ModifyVpcAttribute", e))?;
        ctx.c
            .ec2
            .modify_vpc_attribute()
            .vpc_id(id)
            .enable_dns_hostnames(boolean(cfg.bool("enable_dns_hostnames")?))
            .send()
            .await
            .map_err(|e| api("ec2", "ModifyVpcAttribute", e))?;
        Ok(())
    }

    async fn one(ctx: &Ctx<'_>, id: &str) -> Result<ApplyResponse, ProviderError> {
        let f = vec![Filter::builder().name("vpc-id").values(id).build()];
        the_one(Self::describe(ctx, f).await?, "ec2", "DescribeVpcs", "VPC")
    }
}

#[async_trait]
impl Kind for Vpc {
    fn schema(&self) -> TypeSchema {
        schema(
            "eks",
            "vpc",
            &[("cidr", 'f'), ("enable_dns_support", 'u'), ("enable_dns_hostnames", 'u'), ("tags", 'u'), ("id", 'c')],
            true,
        )
    }

    async fn read(
        &self,
        ctx: &Ctx<'_>,
        items: &[ReadItem],
    ) -> Result<BTreeMap<ResourceAddr, ReadResource>, ProviderError> {
        Ok(by_id(items, Self::describe(ctx, owner_filters(ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx<'_>, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let r = ctx
            .c
            .ec2
            .create_vpc()
            .cidr_block(cfg.str("cidr")?)
            .tag_specifications(tag_spec(Ec2Type::Vpc, tags_for(req, &extra_tags(req))))
            .send()
            .await
            .map_err(|e| api("ec2", "CreateVpc", e))?;
        let id = r.vpc().and_then(|v| v.vpc_id()).ok_or_else(|| missing("ec2", "CreateVpc", "VpcId"))?.to_string();
        Self::set_dns(ctx, &id, &cfg).await?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        Self::set_dns(ctx, &prior.id, &Cfg::of(req)).await?;
        sync_tags(ctx, &prior.id, &prior.attrs, req).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, req: &DeleteRequest) -> Result<(), ProviderError> {
        deleted(ctx.c.ec2.delete_vpc().vpc_id(&req.id).send().await, &["InvalidVpcID.NotFound"], "ec2", "DeleteVpc")
    }

    async fn find(&self, ctx: &Ctx<'_>, req: &FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        Ok(first(Self::describe(ctx, find_filters(ctx, req)).await?))
    }
}

// ---------------------------------------------------------------------------------------------
// Subnet (with its route table association)

struct Subnet;

impl Subnet {
    async fn describe(ctx: &Ctx<'_>, filters: Vec<Filter>) -> Result<Vec<(String, Attrs)>, ProviderError> {
        let subnets = ctx
            .c
            .ec2
            .describe_subnets()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ec2", "DescribeSubnets", e))?;
        if subnets.is_empty() {
            return Ok(Vec::new());
        }
        // Explicit associations of all of them, in one call.
        let ids: Vec<String> = subnets.iter().filter_map(|s| s.subnet_id().map(str::to_string)).collect();
        let tables = ctx
            .c
            .ec2
            .describe_route_tables()
            .filters(Filter::builder().name("association.subnet-id").set_values(Some(ids)).build())
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ec2", "DescribeRouteTables", e))?;
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
                (
                    id.clone(),
                    attrs([
                        ("id", json!(id)),
                        ("vpc_id", json!(s.vpc_id())),
                        ("cidr", json!(s.cidr_block())),
                        ("availability_zone", json!(s.availability_zone())),
                        ("map_public_ip_on_launch", json!(s.map_public_ip_on_launch().unwrap_or(false))),
                        ("route_table_id", rt),
                        ("association_id", assoc_id),
                        ("tags", user_tags(pairs(s.tags()))),
                    ]),
                )
            })
            .collect())
    }

    async fn one(ctx: &Ctx<'_>, id: &str) -> Result<ApplyResponse, ProviderError> {
        let f = vec![Filter::builder().name("subnet-id").values(id).build()];
        the_one(Self::describe(ctx, f).await?, "ec2", "DescribeSubnets", "subnet")
    }

    async fn associate(ctx: &Ctx<'_>, id: &str, prior: Option<&Attrs>, cfg: &Cfg<'_>) -> Result<(), ProviderError> {
        let want = cfg.opt_str("route_table_id");
        let had = prior.and_then(|p| p.get("route_table_id")).and_then(Json::as_str);
        let assoc = prior.and_then(|p| p.get("association_id")).and_then(Json::as_str);
        match (want, had, assoc) {
            (Some(w), Some(h), _) if w == h => Ok(()),
            (Some(w), Some(_), Some(a)) => {
                ctx.c
                    .ec2
                    .replace_route_table_association()
                    .association_id(a)
                    .route_table_id(w)
                    .send()
                    .await
                    .map_err(|e| api("ec2", "ReplaceRouteTableAssociation", e))?;
                Ok(())
            }
            (Some(w), _, _) => {
                ctx.c
                    .ec2
                    .associate_route_table()
                    .subnet_id(id)
                    .route_table_id(w)
                    .send()
                    .await
                    .map_err(|e| api("ec2", "AssociateRouteTable", e))?;
                Ok(())
            }
            (None, _, Some(a)) => {
                ctx.c
                    .ec2
                    .disassociate_route_table()
                    .association_id(a)
                    .send()
                    .await
                    .map_err(|e| api("ec2", "DisassociateRouteTable", e))?;
                Ok(())
            }
            (None, _, None) => Ok(()),
        }
    }
}

#[async_trait]
impl Kind for Subnet {
    fn schema(&self) -> TypeSchema {
        schema(
            "eks",
            "subnet",
            &[
                ("vpc_id", 'f'),
                ("cidr", 'f'),
                ("availability_zone", 'f'),
                ("map_public_ip_on_launch", 'u'),
                ("route_table_id", 'u'),
                ("tags", 'u'),
                ("id", 'c'),
                ("association_id", 'c'),
            ],
            false,
        )
    }

    async fn read(
        &self,
        ctx: &Ctx<'_>,
        items: &[ReadItem],
    ) -> Result<BTreeMap<ResourceAddr, ReadResource>, ProviderError> {
        Ok(by_id(items, Self::describe(ctx, owner_filters(ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx<'_>, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let r = ctx
            .c
            .ec2
            .create_subnet()
            .vpc_id(cfg.str("vpc_id")?)
            .cidr_block(cfg.str("cidr")?)
            .availability_zone(cfg.str("availability_zone")?)
            .tag_specifications(tag_spec(Ec2Type::Subnet, tags_for(req, &extra_tags(req))))
            .send()
            .await
            .map_err(|e| api("ec2", "CreateSubnet", e))?;
        let id = r
            .subnet()
            .and_then(|s| s.subnet_id())
            .ok_or_else(|| missing("ec2", "CreateSubnet", "SubnetId"))?
            .to_string();
        // Set either way: the default depends on the zone's default subnet, not on us.
        ctx.c
            .ec2
            .modify_subnet_attribute()
            .subnet_id(&id)
            .map_public_ip_on_launch(boolean(cfg.bool("map_public_ip_on_launch")?))
            .send()
            .await
            .map_err(|e| api("ec2", "ModifySubnetAttribute", e))?;
        Self::associate(ctx, &id, None, &cfg).await?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let want = cfg.bool("map_public_ip_on_launch")?;
        if prior.attrs.get("map_public_ip_on_launch").and_then(Json::as_bool) != Some(want) {
            ctx.c
                .ec2
                .modify_subnet_attribute()
                .subnet_id(&prior.id)
                .map_public_ip_on_launch(boolean(want))
                .send()
                .await
                .map_err(|e| api("ec2", "ModifySubnetAttribute", e))?;
        }
        Self::associate(ctx, &prior.id, Some(&prior.attrs), &cfg).await?;
        sync_tags(ctx, &prior.id, &prior.attrs, req).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, req: &DeleteRequest) -> Result<(), ProviderError> {
        // Disassociate first: a route table that still lists the subnet cannot be deleted later.
        if let Some(a) = req.attrs.get("association_id").and_then(Json::as_str) {
            match ctx.c.ec2.disassociate_route_table().association_id(a).send().await {
                Ok(_) => {}
                Err(e) if code(&e) == Some("InvalidAssociationID.NotFound") => {}
                Err(e) => return Err(api("ec2", "DisassociateRouteTable", e)),
            }
        }
        deleted(
            ctx.c.ec2.delete_subnet().subnet_id(&req.id).send().await,
            &["InvalidSubnetID.NotFound"],
            "ec2",
            "DeleteSubnet",
        )
    }

    async fn find(&self, ctx: &Ctx<'_>, req: &FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        Ok(first(Self::describe(ctx, find_filters(ctx, req)).await?))
    }
}

// ---------------------------------------------------------------------------------------------
// Internet gateway (with its VPC attachment)

struct InternetGateway;

impl InternetGateway {
    async fn describe(ctx: &Ctx<'_>, filters: Vec<Filter>) -> Result<Vec<(String, Attrs)>, ProviderError> {
        let igws = ctx
            .c
            .ec2
            .describe_internet_gateways()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ec2", "DescribeInternetGateways", e))?;
        Ok(igws
            .into_iter()
            .map(|g| {
                let id = g.internet_gateway_id().unwrap_or_default().to_string();
                let vpc = g.attachments().first().and_then(|a| a.vpc_id()).map(|v| json!(v)).unwrap_or(Json::Null);
                (id.clone(), attrs([("id", json!(id)), ("vpc_id", vpc), ("tags", user_tags(pairs(g.tags())))]))
            })
            .collect())
    }

    async fn one(ctx: &Ctx<'_>, id: &str) -> Result<ApplyResponse, ProviderError> {
        let f = vec![Filter::builder().name("internet-gateway-id").values(id).build()];
        the_one(Self::describe(ctx, f).await?, "ec2", "DescribeInternetGateways", "gateway")
    }
}

#[async_trait]
impl Kind for InternetGateway {
    fn schema(&self) -> TypeSchema {
        schema("eks", "internet_gateway", &[("vpc_id", 'f'), ("tags", 'u'), ("id", 'c')], false)
    }

    async fn read(
        &self,
        ctx: &Ctx<'_>,
        items: &[ReadItem],
    ) -> Result<BTreeMap<ResourceAddr, ReadResource>, ProviderError> {
        Ok(by_id(items, Self::describe(ctx, owner_filters(ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx<'_>, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let r = ctx
            .c
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(Ec2Type::InternetGateway, tags_for(req, &extra_tags(req))))
            .send()
            .await
            .map_err(|e| api("ec2", "CreateInternetGateway", e))?;
        let id = r
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .ok_or_else(|| missing("ec2", "CreateInternetGateway", "InternetGatewayId"))?
            .to_string();
        ctx.c
            .ec2
            .attach_internet_gateway()
            .internet_gateway_id(&id)
            .vpc_id(cfg.str("vpc_id")?)
            .send()
            .await
            .map_err(|e| api("ec2", "AttachInternetGateway", e))?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        if prior.attrs.get("vpc_id").and_then(Json::as_str).is_none() {
            // Detached behind our back: attach again.
            ctx.c
                .ec2
                .attach_internet_gateway()
                .internet_gateway_id(&prior.id)
                .vpc_id(cfg.str("vpc_id")?)
                .send()
                .await
                .map_err(|e| api("ec2", "AttachInternetGateway", e))?;
        }
        sync_tags(ctx, &prior.id, &prior.attrs, req).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, req: &DeleteRequest) -> Result<(), ProviderError> {
        if let Some(vpc) = req.attrs.get("vpc_id").and_then(Json::as_str) {
            match ctx.c.ec2.detach_internet_gateway().internet_gateway_id(&req.id).vpc_id(vpc).send().await {
                Ok(_) => {}
                Err(e) if matches!(code(&e), Some("Gateway.NotAttached" | "InvalidInternetGatewayID.NotFound")) => {}
                Err(e) => return Err(api("ec2", "DetachInternetGateway", e)),
            }
        }
        deleted(
            ctx.c.ec2.delete_internet_gateway().internet_gateway_id(&req.id).send().await,
            &["InvalidInternetGatewayID.NotFound"],
            "ec2",
            "DeleteInternetGateway",
        )
    }

    async fn find(&self, ctx: &Ctx<'_>, req: &FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        Ok(first(Self::describe(ctx, find_filters(ctx, req)).await?))
    }
}

// ---------------------------------------------------------------------------------------------
// Elastic IP (NAT gateways' and ingress load balancers')

struct Eip;

impl Eip {
    async fn describe(ctx: &Ctx<'_>, filters: Vec<Filter>) -> Result<Vec<(String, Attrs)>, ProviderError> {
        // DescribeAddresses is not paginated: it returns every match at once.
        let r = ctx
            .c
            .ec2
            .describe_addresses()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| api("ec2", "DescribeAddresses", e))?;
        Ok(r.addresses()
            .iter()
            .map(|a| {
                let id = a.allocation_id().unwrap_or_default().to_string();
                (
                    id.clone(),
                    attrs([
                        ("id", json!(id)),
                        ("public_ip", json!(a.public_ip())),
                        ("purpose", json!(pairs(a.tags()).find(|(k, _)| *k == "matih:purpose").map(|(_, v)| v))),
                    ]),
                )
            })
            .collect())
    }
}

#[async_trait]
impl Kind for Eip {
    fn schema(&self) -> TypeSchema {
        schema("eks", "eip", &[("purpose", 'f'), ("id", 'c'), ("public_ip", 'c')], true)
    }

    async fn read(
        &self,
        ctx: &Ctx<'_>,
        items: &[ReadItem],
    ) -> Result<BTreeMap<ResourceAddr, ReadResource>, ProviderError> {
        Ok(by_id(items, Self::describe(ctx, owner_filters(ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx<'_>, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let purpose = Cfg::of(req).str("purpose")?;
        let extra = BTreeMap::from([("matih:purpose".to_string(), purpose.to_string())]);
        let r = ctx
            .c
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tag_spec(Ec2Type::ElasticIp, tags_for(req, &extra)))
            .send()
            .await
            .map_err(|e| api("ec2", "AllocateAddress", e))?;
        let id = r.allocation_id().ok_or_else(|| missing("ec2", "AllocateAddress", "AllocationId"))?.to_string();
        Ok(ApplyResponse {
            id: id.clone(),
            attrs: attrs([("id", json!(id)), ("public_ip", json!(r.public_ip())), ("purpose", json!(purpose))]),
        })
    }

    async fn update(
        &self,
        _ctx: &Ctx<'_>,
        prior: &ReadResource,
        _req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        // Nothing about an address can change in place; the schema forces replacement instead.
        unchanged(prior)
    }

    async fn delete(&self, ctx: &Ctx<'_>, req: &DeleteRequest) -> Result<(), ProviderError> {
        deleted(
            ctx.c.ec2.release_address().allocation_id(&req.id).send().await,
            &["InvalidAllocationID.NotFound"],
            "ec2",
            "ReleaseAddress",
        )
    }

    async fn find(&self, ctx: &Ctx<'_>, req: &FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        Ok(first(Self::describe(ctx, find_filters(ctx, req)).await?))
    }
}

// ---------------------------------------------------------------------------------------------
// NAT gateway

struct NatGateway;

const NAT_WAIT: Duration = Duration::from_secs(15 * 60);

impl NatGateway {
    async fn describe_raw(
        ctx: &Ctx<'_>,
        filters: Vec<Filter>,
    ) -> Result<Vec<aws_sdk_ec2::types::NatGateway>, ProviderError> {
        ctx.c
            .ec2
            .describe_nat_gateways()
            .set_filter(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ec2", "DescribeNatGateways", e))
    }

    fn to_attrs(n: &aws_sdk_ec2::types::NatGateway) -> (String, Attrs) {
        let id = n.nat_gateway_id().unwrap_or_default().to_string();
        let alloc = n.nat_gateway_addresses().first().and_then(|a| a.allocation_id());
        (id.clone(), attrs([("id", json!(id)), ("subnet_id", json!(n.subnet_id())), ("allocation_id", json!(alloc))]))
    }

    /// Live gateways only: deleted ones linger in Describe for a while.
    async fn describe(ctx: &Ctx<'_>, filters: Vec<Filter>) -> Result<Vec<(String, Attrs)>, ProviderError> {
        Ok(Self::describe_raw(ctx, filters)
            .await?
            .iter()
            .filter(|n| {
                !matches!(
                    n.state(),
                    Some(NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed)
                )
            })
            .map(Self::to_attrs)
            .collect())
    }

    async fn wait(
        ctx: &Ctx<'_>,
        id: &str,
        until: NatGatewayState,
        status: &StatusSink,
    ) -> Result<Option<(String, Attrs)>, ProviderError> {
        let what = format!("NAT gateway {id} to be {}", until.as_str());
        let r = wait_until(
            &what,
            WaitPolicy::new(NAT_WAIT),
            |s| status.say(s),
            || async {
                let f = vec![Filter::builder().name("nat-gateway-id").values(id).build()];
                let found = Self::describe_raw(ctx, f).await?;
                let Some(n) = found.first() else {
                    return Ok(if until == NatGatewayState::Deleted {
                        WaitStep::Done(None)
                    } else {
                        WaitStep::Pending("not found yet".into())
                    });
                };
                let state = n.state().cloned().unwrap_or(NatGatewayState::Pending);
                Ok::<_, ProviderError>(if state == until {
                    WaitStep::Done(Some(Self::to_attrs(n)))
                } else if state == NatGatewayState::Failed {
                    WaitStep::Failed(format!("failed: {}", n.failure_message().unwrap_or("no reason given")))
                } else {
                    WaitStep::Pending(state.as_str().to_string())
                })
            },
        )
        .await?;
        Ok(r?)
    }
}

#[async_trait]
impl Kind for NatGateway {
    fn schema(&self) -> TypeSchema {
        schema("eks", "nat_gateway", &[("subnet_id", 'f'), ("allocation_id", 'f'), ("id", 'c')], false)
    }

    async fn read(
        &self,
        ctx: &Ctx<'_>,
        items: &[ReadItem],
    ) -> Result<BTreeMap<ResourceAddr, ReadResource>, ProviderError> {
        Ok(by_id(items, Self::describe(ctx, owner_filters(ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx<'_>, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let r = ctx
            .c
            .ec2
            .create_nat_gateway()
            .subnet_id(cfg.str("subnet_id")?)
            .allocation_id(cfg.str("allocation_id")?)
            .client_token(&req.identity.client_token)
            .tag_specifications(tag_spec(Ec2Type::Natgateway, tags_for(req, &BTreeMap::new())))
            .send()
            .await
            .map_err(|e| api("ec2", "CreateNatGateway", e))?;
        let id = r
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .ok_or_else(|| missing("ec2", "CreateNatGateway", "NatGatewayId"))?
            .to_string();
        let (id, attrs) = Self::wait(ctx, &id, NatGatewayState::Available, &req.status)
            .await?
            .ok_or_else(|| missing("ec2", "DescribeNatGateways", "gateway"))?;
        Ok(ApplyResponse { id, attrs })
    }

    async fn update(
        &self,
        _ctx: &Ctx<'_>,
        prior: &ReadResource,
        _req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        unchanged(prior)
    }

    async fn delete(&self, ctx: &Ctx<'_>, req: &DeleteRequest) -> Result<(), ProviderError> {
        match ctx.c.ec2.delete_nat_gateway().nat_gateway_id(&req.id).send().await {
            Ok(_) => {}
            Err(e) if code(&e) == Some("NatGatewayNotFound") => return Ok(()),
            Err(e) => return Err(api("ec2", "DeleteNatGateway", e)),
        }
        // Its Elastic IP can be released only once the gateway is gone.
        Self::wait(ctx, &req.id, NatGatewayState::Deleted, &req.status).await?;
        Ok(())
    }

    async fn find(&self, ctx: &Ctx<'_>, req: &FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        Ok(first(Self::describe(ctx, find_filters(ctx, req)).await?))
    }
}

// ---------------------------------------------------------------------------------------------
// Route table (with its default route)

struct RouteTable;

impl RouteTable {
    async fn describe(ctx: &Ctx<'_>, filters: Vec<Filter>) -> Result<Vec<(String, Attrs)>, ProviderError> {
        let tables = ctx
            .c
            .ec2
            .describe_route_tables()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ec2", "DescribeRouteTables", e))?;
        Ok(tables
            .into_iter()
            .map(|t| {
                let id = t.route_table_id().unwrap_or_default().to_string();
                let default = t.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"));
                let target =
                    default.and_then(|r| r.nat_gateway_id().or(r.gateway_id())).map(|g| json!(g)).unwrap_or(Json::Null);
                (
                    id.clone(),
                    attrs([
                        ("id", json!(id)),
                        ("vpc_id", json!(t.vpc_id())),
                        ("default_route_target", target),
                        ("tags", user_tags(pairs(t.tags()))),
                    ]),
                )
            })
            .collect())
    }

    async fn one(ctx: &Ctx<'_>, id: &str) -> Result<ApplyResponse, ProviderError> {
        let f = vec![Filter::builder().name("route-table-id").values(id).build()];
        the_one(Self::describe(ctx, f).await?, "ec2", "DescribeRouteTables", "table")
    }

    /// Points 0.0.0.0/0 at an internet gateway (`igw-…`) or a NAT gateway (`nat-…`).
    async fn route(ctx: &Ctx<'_>, id: &str, target: &str, replace: bool) -> Result<(), ProviderError> {
        let nat = target.starts_with("nat-");
        if replace {
            let b = ctx.c.ec2.replace_route().route_table_id(id).destination_cidr_block("0.0.0.0/0");
            let b = if nat { b.nat_gateway_id(target) } else { b.gateway_id(target) };
            b.send().await.map_err(|e| api("ec2", "ReplaceRoute", e))?;
        } else {
            let b = ctx.c.ec2.create_route().route_table_id(id).destination_cidr_block("0.0.0.0/0");
            let b = if nat { b.nat_gateway_id(target) } else { b.gateway_id(target) };
            b.send().await.map_err(|e| api("ec2", "CreateRoute", e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Kind for RouteTable {
    fn schema(&self) -> TypeSchema {
        schema(
            "eks",
            "route_table",
            &[("vpc_id", 'f'), ("default_route_target", 'u'), ("tags", 'u'), ("id", 'c')],
            false,
        )
    }

    async fn read(
        &self,
        ctx: &Ctx<'_>,
        items: &[ReadItem],
    ) -> Result<BTreeMap<ResourceAddr, ReadResource>, ProviderError> {
        Ok(by_id(items, Self::describe(ctx, owner_filters(ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx<'_>, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let r = ctx
            .c
            .ec2
            .create_route_table()
            .vpc_id(cfg.str("vpc_id")?)
            .tag_specifications(tag_spec(Ec2Type::RouteTable, tags_for(req, &extra_tags(req))))
            .send()
            .await
            .map_err(|e| api("ec2", "CreateRouteTable", e))?;
        let id = r
            .route_table()
            .and_then(|t| t.route_table_id())
            .ok_or_else(|| missing("ec2", "CreateRouteTable", "RouteTableId"))?
            .to_string();
        Self::route(ctx, &id, cfg.str("default_route_target")?, false).await?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let want = cfg.str("default_route_target")?;
        match prior.attrs.get("default_route_target").and_then(Json::as_str) {
            Some(had) if had == want => {}
            Some(_) => Self::route(ctx, &prior.id, want, true).await?,
            None => Self::route(ctx, &prior.id, want, false).await?,
        }
        sync_tags(ctx, &prior.id, &prior.attrs, req).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, req: &DeleteRequest) -> Result<(), ProviderError> {
        deleted(
            ctx.c.ec2.delete_route_table().route_table_id(&req.id).send().await,
            &["InvalidRouteTableID.NotFound"],
            "ec2",
            "DeleteRouteTable",
        )
    }

    async fn find(&self, ctx: &Ctx<'_>, req: &FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        Ok(first(Self::describe(ctx, find_filters(ctx, req)).await?))
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
    async fn describe(ctx: &Ctx<'_>, filters: Vec<Filter>) -> Result<Vec<(String, Attrs)>, ProviderError> {
        let groups = ctx
            .c
            .ec2
            .describe_security_groups()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ec2", "DescribeSecurityGroups", e))?;
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
                (
                    id.clone(),
                    attrs([
                        ("id", json!(id)),
                        ("vpc_id", json!(g.vpc_id())),
                        ("group_name", json!(g.group_name())),
                        ("description", json!(g.description())),
                        ("ingress", json!(rules)),
                    ]),
                )
            })
            .collect())
    }

    async fn one(ctx: &Ctx<'_>, id: &str) -> Result<ApplyResponse, ProviderError> {
        let f = vec![Filter::builder().name("group-id").values(id).build()];
        the_one(Self::describe(ctx, f).await?, "ec2", "DescribeSecurityGroups", "group")
    }

    async fn sync_rules(ctx: &Ctx<'_>, req: &ApplyRequest, id: &str, had: &[String]) -> Result<(), ProviderError> {
        let mut want = Cfg::of(req).strs("ingress")?;
        want.sort();
        let add: Vec<IpPermission> =
            want.iter().filter(|r| !had.contains(r)).map(|r| parse_rule(&req.addr, r)).collect::<Result<_, _>>()?;
        let remove: Vec<IpPermission> =
            had.iter().filter(|r| !want.contains(r)).map(|r| parse_rule(&req.addr, r)).collect::<Result<_, _>>()?;
        if !add.is_empty() {
            ctx.c
                .ec2
                .authorize_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(add))
                .send()
                .await
                .map_err(|e| api("ec2", "AuthorizeSecurityGroupIngress", e))?;
        }
        if !remove.is_empty() {
            ctx.c
                .ec2
                .revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(remove))
                .send()
                .await
                .map_err(|e| api("ec2", "RevokeSecurityGroupIngress", e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Kind for SecurityGroup {
    fn schema(&self) -> TypeSchema {
        schema(
            "eks",
            "security_group",
            &[("vpc_id", 'f'), ("group_name", 'f'), ("description", 'f'), ("ingress", 'u'), ("id", 'c')],
            false,
        )
    }

    async fn read(
        &self,
        ctx: &Ctx<'_>,
        items: &[ReadItem],
    ) -> Result<BTreeMap<ResourceAddr, ReadResource>, ProviderError> {
        Ok(by_id(items, Self::describe(ctx, owner_filters(ctx.owner)).await?))
    }

    async fn create(&self, ctx: &Ctx<'_>, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let r = ctx
            .c
            .ec2
            .create_security_group()
            .vpc_id(cfg.str("vpc_id")?)
            .group_name(cfg.str("group_name")?)
            .description(cfg.str("description")?)
            .tag_specifications(tag_spec(Ec2Type::SecurityGroup, tags_for(req, &BTreeMap::new())))
            .send()
            .await
            .map_err(|e| api("ec2", "CreateSecurityGroup", e))?;
        let id = r.group_id().ok_or_else(|| missing("ec2", "CreateSecurityGroup", "GroupId"))?.to_string();
        Self::sync_rules(ctx, req, &id, &[]).await?;
        Self::one(ctx, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
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

    async fn delete(&self, ctx: &Ctx<'_>, req: &DeleteRequest) -> Result<(), ProviderError> {
        deleted(
            ctx.c.ec2.delete_security_group().group_id(&req.id).send().await,
            &["InvalidGroup.NotFound"],
            "ec2",
            "DeleteSecurityGroup",
        )
    }

    async fn find(&self, ctx: &Ctx<'_>, req: &FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        Ok(first(Self::describe(ctx, find_filters(ctx, req)).await?))
    }
}
