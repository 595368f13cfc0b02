//! EKS: the cluster and its managed node groups, with waits until ACTIVE that report the last
//! status seen and have deadlines.
//!
//! A platform has one cluster and a few node groups, so refresh describes each by name (there is
//! no list call that returns their details). Add-ons (Kubernetes objects) are not here.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::types::{
    Cluster, KubernetesNetworkConfigRequest, Nodegroup, NodegroupScalingConfig, VpcConfigRequest,
};
use matih_plans::wait::WaitPolicy;
use matih_plans::*;
use matih_provider_kit::wait::{Observed, Until, until};
use matih_provider_kit::{Found, Kind, Listing, not_found_none, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::error::missing;
use crate::kind::*;

pub fn kinds() -> Vec<Box<dyn Kind<Ctx>>> {
    vec![Box::new(EksCluster), Box::new(NodeGroup)]
}

const CLUSTER_WAIT: Duration = Duration::from_secs(30 * 60);
const NODEGROUP_WAIT: Duration = Duration::from_secs(30 * 60);

/// Keeps the recorded order of a list when the cloud returns the same items in another order.
fn keep_order(prior: Option<&Json>, now: Vec<String>) -> Json {
    if let Some(Json::Array(p)) = prior {
        let mut a: Vec<&str> = p.iter().filter_map(Json::as_str).collect();
        let mut b: Vec<&str> = now.iter().map(String::as_str).collect();
        a.sort();
        b.sort();
        if a == b {
            return Json::Array(p.clone());
        }
    }
    json!(now)
}

fn tag_map_of(tags: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

fn aws_tags(req: &ApplyRequest) -> std::collections::HashMap<String, String> {
    let mut t: std::collections::HashMap<String, String> = req.identity.owner_tags.clone().into_iter().collect();
    t.insert("Name".into(), req.identity.name.clone());
    t
}

// ---------------------------------------------------------------------------------------------
// Cluster

struct EksCluster;

impl EksCluster {
    fn to_attrs(c: &Cluster, prior: Option<&Attrs>) -> Attrs {
        let vpc = c.resources_vpc_config();
        let list = |v: Option<&[String]>| v.map(<[String]>::to_vec).unwrap_or_default();
        let mut cidrs = list(vpc.map(|v| v.public_access_cidrs()));
        cidrs.sort();
        attrs([
            ("id", json!(c.name())),
            ("name", json!(c.name())),
            ("arn", json!(c.arn())),
            ("version", json!(c.version())),
            ("role_arn", json!(c.role_arn())),
            ("subnet_ids", keep_order(prior.and_then(|p| p.get("subnet_ids")), list(vpc.map(|v| v.subnet_ids())))),
            ("security_group_ids", Self::security_groups(vpc, prior)),
            ("endpoint_public_access", json!(vpc.map(|v| v.endpoint_public_access()).unwrap_or(true))),
            ("endpoint_private_access", json!(vpc.map(|v| v.endpoint_private_access()).unwrap_or(false))),
            ("public_access_cidrs", json!(cidrs)),
            ("service_cidr", json!(c.kubernetes_network_config().and_then(|k| k.service_ipv4_cidr()))),
            ("endpoint", json!(c.endpoint())),
            ("certificate_authority", json!(c.certificate_authority().and_then(|ca| ca.data()))),
            ("oidc_issuer", json!(c.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer()))),
            ("created_at", json!(c.created_at().map(|t| t.to_string()))),
        ])
    }

    /// A cluster made by this tool always has its extra security group, and EKS cannot take it
    /// away; an empty list means the API did not report them (moto never does), not "none".
    fn security_groups(vpc: Option<&aws_sdk_eks::types::VpcConfigResponse>, prior: Option<&Attrs>) -> Json {
        let now: Vec<String> = vpc.map(|v| v.security_group_ids().to_vec()).unwrap_or_default();
        let recorded = prior.and_then(|p| p.get("security_group_ids"));
        match recorded {
            Some(r) if now.is_empty() => r.clone(),
            _ => keep_order(recorded, now),
        }
    }

    async fn describe(ctx: &Ctx, name: &str) -> Result<Option<Cluster>, ProviderError> {
        let r = ctx.read("eks", "DescribeCluster", || ctx.c.eks.describe_cluster().name(name).send()).await;
        Ok(not_found_none(r)?.and_then(|r| r.cluster().cloned()))
    }

    /// Waits until the cluster is ACTIVE (or gone, for a delete).
    async fn wait(ctx: &Ctx, name: &str, gone: bool, status: &StatusSink) -> Result<Option<Cluster>, ProviderError> {
        let what =
            if gone { format!("EKS cluster {name} to be deleted") } else { format!("EKS cluster {name} to be ACTIVE") };
        let target = if gone { Until::Gone } else { Until::Status(&["ACTIVE"]) };
        until(&what, WaitPolicy::new(CLUSTER_WAIT), status, target, &["FAILED"], || async {
            let c = Self::describe(ctx, name).await?;
            Ok(c.map(|c| Observed::new(c.status().map(|s| s.as_str().to_string()).unwrap_or_default(), c)))
        })
        .await
    }

    fn vpc_config(cfg: &Cfg<'_>, with_subnets: bool) -> Result<VpcConfigRequest, ProviderError> {
        let b = VpcConfigRequest::builder()
            .endpoint_public_access(cfg.bool("endpoint_public_access")?)
            .endpoint_private_access(cfg.bool("endpoint_private_access")?)
            .set_public_access_cidrs(Some(cfg.strs("public_access_cidrs")?));
        Ok(if with_subnets {
            b.set_subnet_ids(Some(cfg.strs("subnet_ids")?))
                .set_security_group_ids(Some(cfg.strs("security_group_ids")?))
                .build()
        } else {
            b.build()
        })
    }
}

#[async_trait]
impl Kind<Ctx> for EksCluster {
    fn schema(&self) -> TypeSchema {
        schema("eks", "cluster")
            .force_new(&["name", "role_arn", "subnet_ids", "security_group_ids", "service_cidr"])
            .updatable(&["version", "endpoint_public_access", "endpoint_private_access", "public_access_cidrs"])
            .computed(&["id", "arn", "endpoint", "certificate_authority", "oidc_issuer", "created_at"])
            .protected()
            .build()
    }

    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        let mut out = BTreeMap::new();
        for i in items {
            if let Some(c) = Self::describe(ctx, &i.id).await? {
                out.insert(
                    i.addr.clone(),
                    ReadResource { id: i.id.clone(), attrs: Self::to_attrs(&c, Some(&i.attrs)) },
                );
            }
        }
        Ok(Listing::ById(out))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let name = cfg.str("name")?;
        let (version, role) = (cfg.str("version")?, cfg.str("role_arn")?);
        let vpc = Self::vpc_config(&cfg, true)?;
        let net = KubernetesNetworkConfigRequest::builder().service_ipv4_cidr(cfg.str("service_cidr")?).build();
        let tags = aws_tags(req);
        ctx.create("eks", "CreateCluster", || {
            ctx.c
                .eks
                .create_cluster()
                .name(name)
                .version(version)
                .role_arn(role)
                .resources_vpc_config(vpc.clone())
                .kubernetes_network_config(net.clone())
                .set_tags(Some(tags.clone()))
                .client_request_token(&req.identity.client_token)
                .send()
        })
        .await?;
        let c = Self::wait(ctx, name, false, &req.status)
            .await?
            .ok_or_else(|| missing("eks", "DescribeCluster", "cluster"))?;
        Ok(ApplyResponse::new(name, Self::to_attrs(&c, Some(&req.config))))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let name = &prior.id;
        // An adopted cluster may still be creating.
        Self::wait(ctx, name, false, &req.status).await?;
        let version = cfg.str("version")?;
        if prior.attrs.get("version").and_then(Json::as_str) != Some(version) {
            let t = token();
            ctx.write("eks", "UpdateClusterVersion", || {
                ctx.c.eks.update_cluster_version().name(name).version(version).client_request_token(&t).send()
            })
            .await?;
            Self::wait(ctx, name, false, &req.status).await?;
        }
        let access = ["endpoint_public_access", "endpoint_private_access", "public_access_cidrs"];
        let mut want_cidrs = cfg.strs("public_access_cidrs")?;
        want_cidrs.sort();
        let changed = access.iter().any(|k| match *k {
            "public_access_cidrs" => prior.attrs.get(*k) != Some(&json!(want_cidrs)),
            _ => prior.attrs.get(*k) != cfg.get(k),
        });
        if changed {
            let (vpc, t) = (Self::vpc_config(&cfg, false)?, token());
            ctx.write("eks", "UpdateClusterConfig", || {
                ctx.c
                    .eks
                    .update_cluster_config()
                    .name(name)
                    .resources_vpc_config(vpc.clone())
                    .client_request_token(&t)
                    .send()
            })
            .await?;
            Self::wait(ctx, name, false, &req.status).await?;
        }
        let c = Self::describe(ctx, name).await?.ok_or_else(|| missing("eks", "DescribeCluster", "cluster"))?;
        Ok(ApplyResponse::new(name.clone(), Self::to_attrs(&c, Some(&prior.attrs))))
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let r = ctx.write("eks", "DeleteCluster", || ctx.c.eks.delete_cluster().name(&req.id).send()).await;
        if not_found_none(r)?.is_none() {
            return Ok(());
        }
        Self::wait(ctx, &req.id, true, &req.status).await?;
        Ok(())
    }

    /// Cluster names are unique in the region: the cluster of that name, whoever owns it.
    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Ok(Self::describe(ctx, &req.name)
            .await?
            .map(|c| Found::new(req.name.clone(), Self::to_attrs(&c, None), tag_map_of(c.tags())))
            .into_iter()
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Managed node group

struct NodeGroup;

impl NodeGroup {
    /// `cluster/name`
    fn split(id: &str) -> (&str, &str) {
        id.split_once('/').unwrap_or((id, ""))
    }

    fn to_attrs(n: &Nodegroup, prior: Option<&Attrs>) -> Attrs {
        let scaling = n.scaling_config();
        let mut a = attrs([
            (
                "id",
                json!(format!("{}/{}", n.cluster_name().unwrap_or_default(), n.nodegroup_name().unwrap_or_default())),
            ),
            ("arn", json!(n.nodegroup_arn())),
            ("cluster_name", json!(n.cluster_name())),
            ("name", json!(n.nodegroup_name())),
            ("node_role_arn", json!(n.node_role())),
            ("subnet_ids", keep_order(prior.and_then(|p| p.get("subnet_ids")), n.subnets().to_vec())),
            ("instance_types", json!(n.instance_types())),
            ("min_size", json!(scaling.and_then(|s| s.min_size()))),
            ("max_size", json!(scaling.and_then(|s| s.max_size()))),
        ]);
        // The size to start with is the autoscaler's business after creation: keep what was asked.
        a.insert("initial_size".into(), prior.and_then(|p| p.get("initial_size")).cloned().unwrap_or(Json::Null));
        a
    }

    async fn describe(ctx: &Ctx, cluster: &str, name: &str) -> Result<Option<Nodegroup>, ProviderError> {
        let r = ctx
            .read("eks", "DescribeNodegroup", || {
                ctx.c.eks.describe_nodegroup().cluster_name(cluster).nodegroup_name(name).send()
            })
            .await;
        Ok(not_found_none(r)?.and_then(|r| r.nodegroup().cloned()))
    }

    async fn wait(
        ctx: &Ctx,
        cluster: &str,
        name: &str,
        gone: bool,
        status: &StatusSink,
    ) -> Result<Option<Nodegroup>, ProviderError> {
        let what =
            if gone { format!("node group {name} to be deleted") } else { format!("node group {name} to be ACTIVE") };
        let target = if gone { Until::Gone } else { Until::Status(&["ACTIVE"]) };
        let failed = ["CREATE_FAILED", "DELETE_FAILED", "DEGRADED"];
        until(&what, WaitPolicy::new(NODEGROUP_WAIT), status, target, &failed, || async {
            let n = Self::describe(ctx, cluster, name).await?;
            Ok(n.map(|n| {
                let issues: Vec<String> = n
                    .health()
                    .map(|h| h.issues().iter().filter_map(|i| i.message().map(str::to_string)).collect())
                    .unwrap_or_default();
                let mut o = Observed::new(n.status().map(|s| s.as_str().to_string()).unwrap_or_default(), n);
                o.detail = Some(issues.join("; "));
                o
            }))
        })
        .await
    }

    fn sizes(cfg: &Cfg<'_>) -> Result<(i32, i32, i32), ProviderError> {
        let min = cfg.u64("min_size")? as i32;
        let max = cfg.u64("max_size")? as i32;
        let initial = cfg.u64("initial_size")? as i32;
        Ok((min, max, initial.clamp(min, max.max(1))))
    }
}

#[async_trait]
impl Kind<Ctx> for NodeGroup {
    fn schema(&self) -> TypeSchema {
        schema("eks", "node_group")
            .force_new(&["cluster_name", "name", "node_role_arn", "subnet_ids", "instance_types"])
            .updatable(&["min_size", "max_size", "initial_size"])
            .computed(&["id", "arn"])
            .build()
    }

    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        let mut out = BTreeMap::new();
        for i in items {
            let (cluster, name) = Self::split(&i.id);
            if let Some(n) = Self::describe(ctx, cluster, name).await? {
                out.insert(
                    i.addr.clone(),
                    ReadResource { id: i.id.clone(), attrs: Self::to_attrs(&n, Some(&i.attrs)) },
                );
            }
        }
        Ok(Listing::ById(out))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let (cluster, name) = (cfg.str("cluster_name")?, cfg.str("name")?);
        let (min, max, desired) = Self::sizes(&cfg)?;
        let (role, subnets, types) = (cfg.str("node_role_arn")?, cfg.strs("subnet_ids")?, cfg.strs("instance_types")?);
        let scaling = NodegroupScalingConfig::builder().min_size(min).max_size(max).desired_size(desired).build();
        let tags = aws_tags(req);
        ctx.create("eks", "CreateNodegroup", || {
            ctx.c
                .eks
                .create_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .node_role(role)
                .set_subnets(Some(subnets.clone()))
                .set_instance_types(Some(types.clone()))
                .scaling_config(scaling.clone())
                .set_tags(Some(tags.clone()))
                .client_request_token(&req.identity.client_token)
                .send()
        })
        .await?;
        let n = Self::wait(ctx, cluster, name, false, &req.status)
            .await?
            .ok_or_else(|| missing("eks", "DescribeNodegroup", "node group"))?;
        Ok(ApplyResponse::new(format!("{cluster}/{name}"), Self::to_attrs(&n, Some(&req.config))))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let (cluster, name) = Self::split(&prior.id);
        let (min, max, _) = Self::sizes(&cfg)?;
        // An adopted node group may still be creating.
        let current = Self::wait(ctx, cluster, name, false, &req.status)
            .await?
            .ok_or_else(|| missing("eks", "DescribeNodegroup", "node group"))?;
        if prior.attrs.get("min_size") != cfg.get("min_size") || prior.attrs.get("max_size") != cfg.get("max_size") {
            // The autoscaler owns the current size; keep it, within the new bounds.
            let desired = current.scaling_config().and_then(|s| s.desired_size()).unwrap_or(min).clamp(min, max.max(1));
            let scaling = NodegroupScalingConfig::builder().min_size(min).max_size(max).desired_size(desired).build();
            let t = token();
            ctx.write("eks", "UpdateNodegroupConfig", || {
                ctx.c
                    .eks
                    .update_nodegroup_config()
                    .cluster_name(cluster)
                    .nodegroup_name(name)
                    .scaling_config(scaling.clone())
                    .client_request_token(&t)
                    .send()
            })
            .await?;
        }
        let n = Self::wait(ctx, cluster, name, false, &req.status)
            .await?
            .ok_or_else(|| missing("eks", "DescribeNodegroup", "node group"))?;
        let mut a = Self::to_attrs(&n, Some(&prior.attrs));
        a.insert("initial_size".into(), cfg.get("initial_size").cloned().unwrap_or(Json::Null));
        Ok(ApplyResponse::new(prior.id.clone(), a))
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let (cluster, name) = Self::split(&req.id);
        let r = ctx
            .write("eks", "DeleteNodegroup", || {
                ctx.c.eks.delete_nodegroup().cluster_name(cluster).nodegroup_name(name).send()
            })
            .await;
        if not_found_none(r)?.is_none() {
            return Ok(());
        }
        Self::wait(ctx, cluster, name, true, &req.status).await?;
        Ok(())
    }

    /// Node group names are unique per cluster; the cluster's name is not part of the request,
    /// so every cluster is asked (an account has few).
    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        let clusters = ctx.read("eks", "ListClusters", || ctx.c.eks.list_clusters().send()).await?;
        let mut out = Vec::new();
        for cluster in clusters.clusters() {
            if let Some(n) = Self::describe(ctx, cluster, &req.name).await? {
                out.push(Found::new(format!("{cluster}/{}", req.name), Self::to_attrs(&n, None), tag_map_of(n.tags())));
            }
        }
        Ok(out)
    }
}
