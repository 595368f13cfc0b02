//! The GKE cluster (regional, VPC-native with alias IPs from the subnet's named secondary
//! ranges, private nodes, workload identity, NetworkPolicy by Calico or by Dataplane V2) and
//! its node pools. The first pool of the spec is created with the cluster (GKE needs one) and
//! kept as the cluster's `system_pool`; the others are pools of their own.
//!
//! GKE runs one operation per cluster at a time: the graph orders pool writes one after
//! another, and a write that meets another operation is retried like a throttle.
//!
//! Not here: Autopilot, private endpoints (the control plane's public endpoint stays on, for
//! the bootstrap), maintenance windows, node auto-provisioning, GPU pools.

use std::time::Duration;

use async_trait::async_trait;
use google_cloud_container_v1::model;
use matih_plans::*;
use matih_provider_kit::{Found, Kind, Listing, not_found_none, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::kind::*;

const SVC: &str = "container";
const CLUSTER_WAIT: Duration = Duration::from_secs(45 * 60);
/// GKE's own scopes for node VMs: everything, narrowed by IAM (the node service account).
const NODE_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

pub fn kinds() -> Vec<Box<dyn Kind<Ctx>>> {
    vec![Box::new(Cluster), Box::new(NodePool)]
}

/// A node pool as the graph configures it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolSettings {
    pub name: String,
    pub machine_type: String,
    /// Nodes in the whole pool (all zones), as the autoscaler keeps them.
    pub min: u32,
    pub max: u32,
    /// `1.33`: the pool follows the control plane.
    pub version: String,
}

impl PoolSettings {
    fn from_cfg(addr: &ResourceAddr, v: &Json) -> Result<PoolSettings, ProviderError> {
        serde_json::from_value(v.clone())
            .map_err(|e| ProviderError::Config { addr: addr.clone(), message: format!("pool settings: {e}") })
    }

    /// The pool as GKE takes it at creation: autoscaled by total node count, workload identity
    /// on the nodes (the metadata server hides node credentials from pods).
    fn body(&self, labels: &std::collections::BTreeMap<String, String>) -> Json {
        json!({
            "name": self.name,
            "config": {
                "machineType": self.machine_type,
                "oauthScopes": [NODE_SCOPE],
                "workloadMetadataConfig": {"mode": "GKE_METADATA"},
                "resourceLabels": labels,
            },
            "initialNodeCount": 1,
            "autoscaling": {
                "enabled": true,
                "totalMinNodeCount": self.min,
                "totalMaxNodeCount": self.max,
                "locationPolicy": "BALANCED",
            },
            "management": {"autoRepair": true, "autoUpgrade": true},
        })
    }

    /// The pool as GKE reports it; its version as `floor` when it runs that version or a later
    /// one (the release channel moved it forward).
    fn of(p: &model::NodePool, floor: Option<&str>) -> PoolSettings {
        let a = p.autoscaling.clone().unwrap_or_default();
        PoolSettings {
            name: p.name.clone(),
            machine_type: p.config.as_ref().map(|c| c.machine_type.clone()).unwrap_or_default(),
            min: a.total_min_node_count.max(0) as u32,
            max: a.total_max_node_count.max(0) as u32,
            version: at_least(&p.version, floor),
        }
    }
}

/// `1.33.5-gke.1080000` → `1.33`: the spec names minor versions; GKE picks the patch.
fn minor(v: &str) -> String {
    matih_provider_kit::version::minor_of(v).map(|(a, b)| format!("{a}.{b}")).unwrap_or_else(|| v.to_string())
}

/// The spec's `kubernetes_version` is a floor: on a release channel GKE upgrades clusters and
/// pools by itself (it cannot be turned off), so a cluster that runs `floor` or later reports
/// `floor` (no change to plan); one behind it reports what it runs.
fn at_least(running: &str, floor: Option<&str>) -> String {
    use matih_provider_kit::version::minor_of;
    match floor {
        Some(f) if minor_of(f).is_some() && minor_of(f) <= minor_of(running) => f.to_string(),
        _ => minor(running),
    }
}

/// Whether `want` is a later minor version than `running`.
fn behind(running: &str, want: &str) -> bool {
    use matih_provider_kit::version::minor_of;
    minor_of(running) < minor_of(want)
}

/// GKE refused a write because another operation runs on the cluster.
fn busy(e: &ProviderError) -> bool {
    e.kind() == ErrorKind::Conflict && e.api().is_some_and(|a| a.service == SVC && a.code == "FAILED_PRECONDITION")
}

/// Sends a container write (`send`) and, while GKE refuses it because another operation runs on
/// `cluster` (its own maintenance, an upgrade, an earlier write), waits for the cluster's
/// running operations and sends it again, up to the cluster deadline.
async fn when_idle<T, F, Fut>(
    ctx: &Ctx,
    cluster: &str,
    operation: &str,
    call: matih_provider_kit::Call,
    status: &StatusSink,
    mut send: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, google_cloud_gax::error::Error>>,
{
    let start = std::time::Instant::now();
    loop {
        match ctx.call(SVC, operation, call, &mut send).await {
            Err(e) if busy(&e) && start.elapsed() < CLUSTER_WAIT => {
                let parent = location(ctx);
                let ops = ctx
                    .read(SVC, "operations.list", || {
                        ctx.c.container.list_operations().set_parent(parent.clone()).send()
                    })
                    .await?;
                let target = format!("/clusters/{cluster}");
                let running: Vec<model::Operation> = ops
                    .operations
                    .into_iter()
                    .filter(|o| o.status != model::operation::Status::Done)
                    .filter(|o| o.target_link.ends_with(&target) || o.target_link.contains(&format!("{target}/")))
                    .collect();
                if running.is_empty() {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                for op in running {
                    status.say(&format!("waiting for GKE operation {} on the cluster", op.name));
                    // Its outcome is GKE's business; this write goes again either way.
                    let _ = wait_op(ctx, op, "operations.get", status).await;
                }
            }
            r => return r,
        }
    }
}

fn location(ctx: &Ctx) -> String {
    format!("projects/{}/locations/{}", ctx.project, ctx.region)
}

fn cluster_name(ctx: &Ctx, name: &str) -> String {
    format!("{}/clusters/{name}", location(ctx))
}

/// Waits for a container operation (GKE answers mutations with one) to finish.
async fn wait_op(ctx: &Ctx, op: model::Operation, what: &str, status: &StatusSink) -> Result<(), ProviderError> {
    let name = format!("{}/operations/{}", location(ctx), op.name);
    let view = |op: &model::Operation| {
        let done = op.status == model::operation::Status::Done;
        let error = op.error.as_ref().filter(|e| e.code != 0).map(|e| {
            let code = google_cloud_gax::error::rpc::Code::from(e.code);
            ApiError::new(SVC, what, crate::error::kind_of_code(SVC, code), code.name(), e.message.clone()).into()
        });
        let text = op.status.name().unwrap_or("PENDING").to_string();
        let text = if op.detail.is_empty() { text } else { format!("{text}: {}", op.detail) };
        OpView { done, status: text, error }
    };
    let first = view(&op);
    if first.done {
        return first.error.map_or(Ok(()), Err);
    }
    wait_operation(what, CLUSTER_WAIT, status, || async {
        let op =
            ctx.read(SVC, "operations.get", || ctx.c.container.get_operation().set_name(name.clone()).send()).await?;
        Ok(view(&op))
    })
    .await
}

/// Waits until `look` says the cluster (or pool) is running: one adopted after a lost answer may
/// still be provisioning, and its endpoint and CA come only then.
async fn until_running<T, F, Fut>(what: &str, status: &StatusSink, mut look: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(Option<T>, String), ProviderError>>,
{
    let policy = matih_plans::wait::WaitPolicy {
        deadline: CLUSTER_WAIT,
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(10),
    };
    let r = matih_plans::wait::wait_until(
        what,
        policy,
        |s| status.say(s),
        || {
            let f = look();
            async move {
                let (v, state) = f.await?;
                Ok::<_, ProviderError>(match v {
                    Some(v) => matih_plans::wait::WaitStep::Done(v),
                    None if state == "ERROR" => matih_plans::wait::WaitStep::Failed(state),
                    None => matih_plans::wait::WaitStep::Pending(state),
                })
            }
        },
    )
    .await?;
    r.map_err(ProviderError::from)
}

// ---------------------------------------------------------------------------------------------

pub struct Cluster;

impl Cluster {
    /// The cluster once it is RUNNING.
    async fn running(ctx: &Ctx, name: &str, status: &StatusSink) -> Result<model::Cluster, ProviderError> {
        until_running(&format!("cluster {name} to be RUNNING"), status, || async {
            let c =
                Self::get(ctx, name).await?.ok_or_else(|| ProviderError::other(format!("cluster {name} is gone")))?;
            let state = c.status.name().unwrap_or("STATUS_UNSPECIFIED").to_string();
            // A DEGRADED cluster still serves (GKE says why in its conditions).
            let up = matches!(c.status, model::cluster::Status::Running | model::cluster::Status::Degraded);
            Ok((if up { Some(c) } else { None }, state))
        })
        .await
    }

    async fn get(ctx: &Ctx, name: &str) -> Result<Option<model::Cluster>, ProviderError> {
        let full = cluster_name(ctx, name);
        not_found_none(
            ctx.read(SVC, "clusters.get", || ctx.c.container.get_cluster().set_name(full.clone()).send()).await,
        )
    }

    fn attrs(c: &model::Cluster, floor: Option<&str>) -> Attrs {
        let dataplane = match c.network_config.as_ref().map(|n| n.datapath_provider.clone()) {
            Some(model::DatapathProvider::AdvancedDatapath) => "dataplane-v2",
            _ => "calico",
        };
        let calico = c
            .network_policy
            .as_ref()
            .is_some_and(|p| p.enabled && p.provider == model::network_policy::Provider::Calico);
        // The pool made with the cluster carries the cluster's own owner labels.
        let address = c.resource_labels.get(matih_provider_kit::owner::LABEL_ADDRESS);
        let system = c
            .node_pools
            .iter()
            .find(|p| {
                p.config.as_ref().and_then(|n| n.resource_labels.get(matih_provider_kit::owner::LABEL_ADDRESS))
                    == address
            })
            .or(c.node_pools.first())
            .map(|p| PoolSettings::of(p, floor));
        let ip = c.ip_allocation_policy.clone().unwrap_or_default();
        attrs([
            ("id", json!(c.id)),
            ("name", json!(c.name)),
            ("kubernetes_version", json!(at_least(&c.current_master_version, floor))),
            ("network", json!(last_segment(&c.network))),
            ("subnetwork", json!(last_segment(&c.subnetwork))),
            ("pods_range", json!(ip.cluster_secondary_range_name)),
            ("services_range", json!(ip.services_secondary_range_name)),
            (
                "master_cidr",
                json!(c.private_cluster_config.as_ref().map(|p| p.master_ipv4_cidr_block.clone()).unwrap_or_default()),
            ),
            ("dataplane", json!(dataplane)),
            ("calico", json!(calico)),
            (
                "workload_pool",
                json!(c.workload_identity_config.as_ref().map(|w| w.workload_pool.clone()).unwrap_or_default()),
            ),
            ("system_pool", json!(system)),
            ("endpoint", json!(if c.endpoint.is_empty() { String::new() } else { format!("https://{}", c.endpoint) })),
            (
                "certificate_authority",
                json!(c.master_auth.as_ref().map(|m| m.cluster_ca_certificate.clone()).unwrap_or_default()),
            ),
            ("self_link", json!(c.self_link)),
        ])
    }

    fn found(c: &model::Cluster, floor: Option<&str>) -> Found {
        let (mut tags, address) = owner_of_description(&c.description);
        tags.extend(c.resource_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut f = Found::new(c.name.clone(), Self::attrs(c, floor), tags);
        f.address = address;
        f
    }

    fn body(ctx: &Ctx, req: &ApplyRequest) -> Result<Json, ProviderError> {
        let cfg = Cfg::of(req);
        let system = PoolSettings::from_cfg(&req.addr, cfg.need("system_pool")?)?;
        let dpv2 = cfg.str("dataplane")? == "dataplane-v2";
        let mut body = json!({
            "name": req.identity.name,
            "description": owner_description(req),
            "resourceLabels": req.identity.owner_tags,
            "initialClusterVersion": cfg.str("kubernetes_version")?,
            "releaseChannel": {"channel": "REGULAR"},
            "network": format!("projects/{}/global/networks/{}", ctx.project, cfg.str("network")?),
            "subnetwork": format!("projects/{}/regions/{}/subnetworks/{}", ctx.project, ctx.region, cfg.str("subnetwork")?),
            "ipAllocationPolicy": {
                "useIpAliases": true,
                "clusterSecondaryRangeName": cfg.str("pods_range")?,
                "servicesSecondaryRangeName": cfg.str("services_range")?,
            },
            "privateClusterConfig": {"enablePrivateNodes": true, "masterIpv4CidrBlock": cfg.str("master_cidr")?},
            "workloadIdentityConfig": {"workloadPool": cfg.str("workload_pool")?},
            "nodePools": [system.body(&req.identity.owner_tags)],
        });
        if dpv2 {
            body["networkConfig"] = json!({"datapathProvider": "ADVANCED_DATAPATH"});
        } else {
            body["networkPolicy"] = json!({"provider": "CALICO", "enabled": true});
            body["addonsConfig"] = json!({"networkPolicyConfig": {"disabled": false}});
        }
        Ok(body)
    }
}

/// Sets a pool's autoscaling bounds and version where they differ from `want`.
async fn converge_pool(
    ctx: &Ctx,
    cluster: &str,
    pool: &model::NodePool,
    want: &PoolSettings,
    status: &StatusSink,
) -> Result<(), ProviderError> {
    let now = PoolSettings::of(pool, None);
    let name = format!("{}/nodePools/{}", cluster_name(ctx, cluster), want.name);
    let idle = matih_provider_kit::Call::Idempotent;
    if (now.min, now.max) != (want.min, want.max) {
        let scaling = model::NodePoolAutoscaling::new()
            .set_enabled(true)
            .set_total_min_node_count(want.min as i32)
            .set_total_max_node_count(want.max as i32)
            .set_location_policy(model::node_pool_autoscaling::LocationPolicy::Balanced);
        let op = when_idle(ctx, cluster, "nodePools.setAutoscaling", idle, status, || {
            ctx.c.container.set_node_pool_autoscaling().set_name(name.clone()).set_autoscaling(scaling.clone()).send()
        })
        .await?;
        wait_op(ctx, op, "nodePools.setAutoscaling", status).await?;
    }
    // Only forward, as for the control plane; the pool keeps its image type.
    if behind(&pool.version, &want.version) {
        let image = pool.config.as_ref().map(|c| c.image_type.clone()).filter(|t| !t.is_empty());
        let image = image.unwrap_or_else(|| "COS_CONTAINERD".into());
        let op = when_idle(ctx, cluster, "nodePools.update", idle, status, || {
            ctx.c
                .container
                .update_node_pool()
                .set_name(name.clone())
                .set_node_version(want.version.clone())
                .set_image_type(image.clone())
                .send()
        })
        .await?;
        wait_op(ctx, op, "nodePools.update", status).await?;
    }
    Ok(())
}

#[async_trait]
impl Kind<Ctx> for Cluster {
    fn schema(&self) -> TypeSchema {
        schema("gke", "cluster")
            .force_new(&[
                "network",
                "subnetwork",
                "pods_range",
                "services_range",
                "master_cidr",
                "dataplane",
                "workload_pool",
            ])
            .updatable(&["kubernetes_version", "system_pool"])
            .computed(&["id", "name", "endpoint", "certificate_authority", "calico", "self_link"])
            .protected()
            .build()
    }

    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        let parent = location(ctx);
        let r = ctx
            .read(SVC, "clusters.list", || ctx.c.container.list_clusters().set_parent(parent.clone()).send())
            .await?;
        let floor = |c: &model::Cluster| {
            items.iter().find(|i| i.id == c.name).and_then(|i| i.attrs.get("kubernetes_version")).and_then(Json::as_str)
        };
        Ok(Listing::Owned(r.clusters.iter().map(|c| Cluster::found(c, floor(c))).collect()))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cluster: model::Cluster = from_json("cluster", Self::body(ctx, req)?)?;
        let parent = location(ctx);
        let op = ctx
            .create(SVC, "clusters.create", || {
                ctx.c.container.create_cluster().set_parent(parent.clone()).set_cluster(cluster.clone()).send()
            })
            .await?;
        wait_op(ctx, op, "clusters.create", &req.status).await?;
        let c = Self::running(ctx, &req.identity.name, &req.status).await?;
        Ok(ApplyResponse::new(c.name.clone(), Self::attrs(&c, Some(Cfg::of(req).str("kubernetes_version")?))))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let c = Self::running(ctx, &prior.id, &req.status).await?;
        let want_version = cfg.str("kubernetes_version")?;
        let running = c.current_master_version.clone();
        // Only forward: a cluster the release channel moved past the spec stays where it is.
        if behind(&running, want_version) {
            matih_provider_kit::version::check_upgrade("GKE", &req.addr, &running, want_version)?;
            let update = model::ClusterUpdate::new().set_desired_master_version(want_version);
            let name = cluster_name(ctx, &prior.id);
            let idle = matih_provider_kit::Call::Idempotent;
            let op = when_idle(ctx, &prior.id, "clusters.update", idle, &req.status, || {
                ctx.c.container.update_cluster().set_name(name.clone()).set_update(update.clone()).send()
            })
            .await?;
            wait_op(ctx, op, "clusters.update", &req.status).await?;
        }
        let want = PoolSettings::from_cfg(&req.addr, cfg.need("system_pool")?)?;
        if let Some(pool) = c.node_pools.iter().find(|p| p.name == want.name) {
            converge_pool(ctx, &prior.id, pool, &want, &req.status).await?;
        }
        let c = Self::running(ctx, &prior.id, &req.status).await?;
        Ok(ApplyResponse::new(c.name.clone(), Self::attrs(&c, Some(want_version))))
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let name = cluster_name(ctx, &req.id);
        let idle = matih_provider_kit::Call::Idempotent;
        let sent = when_idle(ctx, &req.id, "clusters.delete", idle, &req.status, || {
            ctx.c.container.delete_cluster().set_name(name.clone()).send()
        })
        .await;
        let Some(op) = not_found_none(sent)? else { return Ok(()) };
        matih_provider_kit::gone_ok(wait_op(ctx, op, "clusters.delete", &req.status).await)
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Ok(Self::get(ctx, &req.name).await?.iter().map(|c| Cluster::found(c, None)).collect())
    }
}

// ---------------------------------------------------------------------------------------------

/// A node pool beyond the first (`<cluster>/<pool>`).
pub struct NodePool;

impl NodePool {
    fn split(id: &str) -> (&str, &str) {
        id.split_once('/').unwrap_or((id, ""))
    }

    async fn get(ctx: &Ctx, id: &str) -> Result<Option<model::NodePool>, ProviderError> {
        let (cluster, pool) = Self::split(id);
        let name = format!("{}/nodePools/{pool}", cluster_name(ctx, cluster));
        not_found_none(
            ctx.read(SVC, "nodePools.get", || ctx.c.container.get_node_pool().set_name(name.clone()).send()).await,
        )
    }

    /// The pool once it is RUNNING.
    async fn running(ctx: &Ctx, id: &str, status: &StatusSink) -> Result<model::NodePool, ProviderError> {
        until_running(&format!("node pool {id} to be RUNNING"), status, || async {
            let p = Self::get(ctx, id).await?.ok_or_else(|| ProviderError::other(format!("node pool {id} is gone")))?;
            let state = p.status.name().unwrap_or("STATUS_UNSPECIFIED").to_string();
            let up = matches!(p.status, model::node_pool::Status::Running | model::node_pool::Status::RunningWithError);
            Ok((if up { Some(p) } else { None }, state))
        })
        .await
    }

    fn attrs(cluster: &str, p: &model::NodePool, floor: Option<&str>) -> Attrs {
        let mut a: Attrs = match json!(PoolSettings::of(p, floor)) {
            Json::Object(m) => m.into_iter().collect(),
            _ => Attrs::new(),
        };
        a.insert("cluster".into(), json!(cluster));
        a
    }
}

#[async_trait]
impl Kind<Ctx> for NodePool {
    fn schema(&self) -> TypeSchema {
        schema("gke", "node_pool")
            .force_new(&["cluster", "name", "machine_type"])
            .updatable(&["min", "max", "version"])
            .build()
    }

    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        // One list per cluster; a pool's name is unique in its cluster, so nothing else can be
        // a duplicate of it.
        let mut clusters: Vec<&str> = items.iter().map(|i| Self::split(&i.id).0).collect();
        clusters.sort();
        clusters.dedup();
        let mut found = std::collections::BTreeMap::new();
        for cluster in clusters {
            let parent = cluster_name(ctx, cluster);
            let listed = not_found_none(
                ctx.read(SVC, "nodePools.list", || ctx.c.container.list_node_pools().set_parent(parent.clone()).send())
                    .await,
            )?;
            let pools = listed.map(|l| l.node_pools).unwrap_or_default();
            for item in items.iter().filter(|i| Self::split(&i.id).0 == cluster) {
                if let Some(p) = pools.iter().find(|p| p.name == Self::split(&item.id).1) {
                    found.insert(
                        item.addr.clone(),
                        ReadResource {
                            id: item.id.clone(),
                            attrs: Self::attrs(cluster, p, item.attrs.get("version").and_then(Json::as_str)),
                        },
                    );
                }
            }
        }
        Ok(Listing::ById(found))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let cluster = cfg.str("cluster")?.to_string();
        let settings = PoolSettings::from_cfg(&req.addr, &Json::Object(cfg.map.clone()))?;
        let mut body = settings.body(&req.identity.owner_tags);
        body["version"] = json!(settings.version);
        let pool: model::NodePool = from_json("node pool", body)?;
        let parent = cluster_name(ctx, &cluster);
        let create = matih_provider_kit::Call::Create;
        let op = when_idle(ctx, &cluster, "nodePools.create", create, &req.status, || {
            ctx.c.container.create_node_pool().set_parent(parent.clone()).set_node_pool(pool.clone()).send()
        })
        .await?;
        wait_op(ctx, op, "nodePools.create", &req.status).await?;
        let id = format!("{cluster}/{}", settings.name);
        let p = Self::running(ctx, &id, &req.status).await?;
        Ok(ApplyResponse::new(id, Self::attrs(&cluster, &p, Some(&settings.version))))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let want = PoolSettings::from_cfg(&req.addr, &Json::Object(cfg.map.clone()))?;
        let p = Self::running(ctx, &prior.id, &req.status).await?;
        let (cluster, _) = Self::split(&prior.id);
        converge_pool(ctx, cluster, &p, &want, &req.status).await?;
        let p = Self::running(ctx, &prior.id, &req.status).await?;
        Ok(ApplyResponse::new(prior.id.clone(), Self::attrs(cluster, &p, Some(&want.version))))
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let (cluster, pool) = Self::split(&req.id);
        let name = format!("{}/nodePools/{pool}", cluster_name(ctx, cluster));
        let idle = matih_provider_kit::Call::Idempotent;
        let sent = when_idle(ctx, cluster, "nodePools.delete", idle, &req.status, || {
            ctx.c.container.delete_node_pool().set_name(name.clone()).send()
        })
        .await;
        let Some(op) = not_found_none(sent)? else { return Ok(()) };
        matih_provider_kit::gone_ok(wait_op(ctx, op, "nodePools.delete", &req.status).await)
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        let Some(p) = Self::get(ctx, &req.name).await? else { return Ok(vec![]) };
        let (cluster, _) = Self::split(&req.name);
        let tags = p
            .config
            .as_ref()
            .map(|c| c.resource_labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut f = Found::new(req.name.clone(), Self::attrs(cluster, &p, None), tags);
        f.address = Some(req.addr.clone());
        Ok(vec![f])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_version_is_a_floor() {
        assert_eq!(at_least("1.34.2-gke.1100000", Some("1.33")), "1.33");
        assert_eq!(at_least("1.33.5-gke.1", Some("1.33")), "1.33");
        assert_eq!(at_least("1.32.9-gke.1", Some("1.33")), "1.32");
        assert_eq!(at_least("1.34.2-gke.1", None), "1.34");
        assert!(behind("1.33.5-gke.1", "1.34") && !behind("1.34.2-gke.1", "1.34") && !behind("1.35.0-gke.1", "1.34"));
    }
}
