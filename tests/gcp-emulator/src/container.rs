//! GKE (container v1): clusters, node pools and their operations, under
//! `projects/{p}/locations/{l}/`.
//!
//! Requests carry enums as integers (`enum-encoding=int`); the fields read here are normalised to
//! the names the API's JSON answers with (`CALICO`, `ADVANCED_DATAPATH`, `REGULAR`, ...), other
//! enums are stored as sent. Validation covers what a tool can get wrong when it asks for a
//! VPC-native private cluster: name, network and subnetwork references, secondary ranges, the
//! master's /28, network policy against its add-on and Dataplane V2, the workload pool, node pool
//! autoscaling bounds and versions, label fingerprints, and one operation at a time per cluster.
//! Not done: Autopilot rules, machine types, quotas, zones (any location is accepted; a zone is
//! `<region>-<letter>`), cluster etags, maintenance windows, node auto-provisioning, IPv6.

use std::time::Instant;

use serde_json::{Value, json};

use crate::compute::check_labels;
use crate::error::{self, ApiError};
use crate::net::{Cidr, external_ip};
use crate::route::{Api, Kind, Target};
use crate::state::{
    Reply, Req, State, Work, array, last_segment, link_key, merge_patch, now_rfc3339, object, project_of, rfc1035,
};

const NAME_RULE: &str = "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)' (only alphanumerics and \
                         '-' allowed, must start with a letter and end with an alphanumeric, and must be no longer \
                         than 40 characters).";

/// Enum fields normalised from integers: (JSON path, names by number).
const CLUSTER_ENUMS: [(&str, &[&str]); 8] = [
    ("networkPolicy.provider", &["PROVIDER_UNSPECIFIED", "CALICO"]),
    ("networkConfig.datapathProvider", &["DATAPATH_PROVIDER_UNSPECIFIED", "LEGACY_DATAPATH", "ADVANCED_DATAPATH"]),
    ("releaseChannel.channel", &["UNSPECIFIED", "RAPID", "REGULAR", "STABLE", "EXTENDED"]),
    ("ipAllocationPolicy.stackType", &["STACK_TYPE_UNSPECIFIED", "IPV4", "IPV4_IPV6"]),
    ("networkConfig.dnsConfig.clusterDns", &["PROVIDER_UNSPECIFIED", "PLATFORM_DEFAULT", "CLOUD_DNS", "KUBE_DNS"]),
    ("networkConfig.dnsConfig.clusterDnsScope", &["DNS_SCOPE_UNSPECIFIED", "CLUSTER_SCOPE", "VPC_SCOPE"]),
    ("nodeConfig.workloadMetadataConfig.mode", &["MODE_UNSPECIFIED", "GCE_METADATA", "GKE_METADATA"]),
    ("status", &["STATUS_UNSPECIFIED", "PROVISIONING", "RUNNING", "RECONCILING", "STOPPING", "ERROR", "DEGRADED"]),
];

const POOL_ENUMS: [(&str, &[&str]); 3] = [
    ("config.workloadMetadataConfig.mode", &["MODE_UNSPECIFIED", "GCE_METADATA", "GKE_METADATA"]),
    (
        "status",
        &["STATUS_UNSPECIFIED", "PROVISIONING", "RUNNING", "RUNNING_WITH_ERROR", "RECONCILING", "STOPPING", "ERROR"],
    ),
    ("upgradeSettings.strategy", &["NODE_POOL_UPDATE_STRATEGY_UNSPECIFIED", "", "BLUE_GREEN", "SURGE"]),
];

const TAINT_EFFECTS: &[&str] = &["EFFECT_UNSPECIFIED", "NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE"];

const DEFAULT_SCOPES: [&str; 6] = [
    "https://www.googleapis.com/auth/devstorage.read_only",
    "https://www.googleapis.com/auth/logging.write",
    "https://www.googleapis.com/auth/monitoring",
    "https://www.googleapis.com/auth/servicecontrol",
    "https://www.googleapis.com/auth/service.management.readonly",
    "https://www.googleapis.com/auth/trace.append",
];

/// Replaces an integer at `path` (dotted) with its name.
fn normalize(v: &mut Value, path: &str, names: &[&str]) {
    let mut cur = v;
    for part in path.split('.') {
        match cur.get_mut(part) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(n) = cur.as_i64()
        && let Some(name) = usize::try_from(n).ok().and_then(|i| names.get(i)).filter(|s| !s.is_empty())
    {
        *cur = json!(name);
    }
}

fn normalize_cluster(v: &mut Value) {
    for (p, names) in CLUSTER_ENUMS {
        normalize(v, p, names);
    }
}

fn normalize_pool(v: &mut Value) {
    for (p, names) in POOL_ENUMS {
        normalize(v, p, names);
    }
    if let Some(taints) = v["config"]["taints"].as_array_mut() {
        for t in taints {
            normalize(t, "effect", TAINT_EFFECTS);
        }
    }
}

/// `(major, minor)` of a GKE version.
fn minor(v: &str) -> Option<u32> {
    let mut it = v.split(['.', '-']);
    (it.next()? == "1").then_some(())?;
    it.next()?.parse().ok()
}

/// Whether a location is a zone (`europe-west1-b`) rather than a region.
fn is_zone(l: &str) -> bool {
    l.rsplit_once('-').is_some_and(|(_, z)| z.len() == 1 && z.chars().all(|c| c.is_ascii_lowercase()))
        && l.matches('-').count() == 2
}

fn region_of(l: &str) -> &str {
    if is_zone(l) { l.rsplit_once('-').map_or(l, |(r, _)| r) } else { l }
}

fn hex8() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v[k].as_str().filter(|s| !s.is_empty())
}

/// An int that may arrive as a JSON number or (int64) string.
fn int_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

impl State {
    pub(crate) fn container(&mut self, req: &Req, t: &Target, now: Instant) -> Result<Reply, ApiError> {
        let no = || State::no_method(Api::Container, req);
        match (t, req.method) {
            (Target::List { kind: Kind::Cluster, parent }, "GET") => {
                let clusters: Vec<Value> = self.cluster_keys(parent).iter().filter_map(|k| self.present(k)).collect();
                Ok(Reply::ok(json!({"clusters": clusters})))
            }
            (Target::List { kind: Kind::Cluster, parent }, "POST") => self.create_cluster(parent, req, now),
            (Target::Item { kind: Kind::Cluster, key }, "GET") => {
                self.present(key).map(Reply::ok).ok_or_else(|| ApiError::gke_not_found(key))
            }
            (Target::Item { kind: Kind::Cluster, key }, "PUT") => self.update_cluster(key, req, now),
            (Target::Item { kind: Kind::Cluster, key }, "DELETE") => {
                self.delete_container(Kind::Cluster, key, "DELETE_CLUSTER", now)
            }
            (Target::Verb { kind: Kind::Cluster, key, verb }, "POST") => self.cluster_verb(key, verb, req, now),
            (Target::List { kind: Kind::NodePool, parent }, "GET") => {
                self.require_cluster(parent)?;
                let pools: Vec<Value> = self.pool_keys(parent).iter().filter_map(|k| self.present(k)).collect();
                Ok(Reply::ok(json!({"nodePools": pools})))
            }
            (Target::List { kind: Kind::NodePool, parent }, "POST") => self.create_pool(parent, req, now),
            (Target::Item { kind: Kind::NodePool, key }, "GET") => {
                self.present(key).map(Reply::ok).ok_or_else(|| ApiError::gke_not_found(key))
            }
            (Target::Item { kind: Kind::NodePool, key }, "PUT") => self.update_pool(key, req, now),
            (Target::Item { kind: Kind::NodePool, key }, "DELETE") => {
                self.delete_container(Kind::NodePool, key, "DELETE_NODE_POOL", now)
            }
            (Target::Verb { kind: Kind::NodePool, key, verb }, "POST") => self.pool_verb(key, verb, req, now),
            (Target::Operation { key, .. }, "GET") => {
                self.render_container_op(key, now, false).map(Reply::ok).ok_or_else(|| ApiError::gke_not_found(key))
            }
            (Target::ServerConfig { .. }, "GET") => Ok(Reply::ok(self.server_config())),
            (Target::Operations { parent }, "GET") => {
                let prefix = if parent.ends_with("/locations/-") {
                    format!("{}/locations/", parent.trim_end_matches("/locations/-"))
                } else {
                    format!("{parent}/operations/")
                };
                let ops: Vec<Value> = self
                    .ops
                    .iter()
                    .filter(|(k, o)| o.api == Api::Container && k.starts_with(&prefix))
                    .filter_map(|(k, _)| self.render_container_op(k, now, false))
                    .collect();
                Ok(Reply::ok(json!({"operations": ops})))
            }
            _ => Err(no()),
        }
    }

    fn cluster_keys(&self, parent: &str) -> Vec<String> {
        // `locations/-`: every location of the project.
        let mut keys = if parent.ends_with("/locations/-") {
            self.keys_in_project(Kind::Cluster, project_of(parent))
        } else {
            self.keys_under(Kind::Cluster, parent)
        };
        keys.sort_by_key(|k| self.entries[k].seq);
        keys
    }

    fn pool_keys(&self, cluster: &str) -> Vec<String> {
        let mut keys = self.keys_under(Kind::NodePool, &format!("{cluster}/nodePools"));
        keys.sort_by_key(|k| self.entries[k].seq);
        keys
    }

    fn require_cluster(&self, key: &str) -> Result<&Value, ApiError> {
        self.entries
            .get(key)
            .filter(|e| e.kind == Kind::Cluster)
            .map(|e| &e.value)
            .ok_or_else(|| ApiError::gke_not_found(key))
    }

    /// 400 `FAILED_PRECONDITION` while another operation runs on the cluster.
    fn require_idle(&self, cluster: &str) -> Result<(), ApiError> {
        match self.ops.values().find(|o| !o.done && o.cluster.as_deref() == Some(cluster)) {
            Some(op) => {
                Err(ApiError::failed_precondition(format!("Cluster is running incompatible operation {}.", op.name)))
            }
            None => Ok(()),
        }
    }

    fn container_link(&self, key: &str) -> String {
        format!("{}/v1/{key}", self.base)
    }

    /// The view parts of a cluster: its pools, node count and node version.
    pub(crate) fn present_cluster(&self, key: &str, v: &mut Value) {
        let pools: Vec<Value> = self.pool_keys(key).iter().filter_map(|p| self.present(p)).collect();
        let count: i64 = self
            .pool_keys(key)
            .iter()
            .map(|p| {
                let zones = array(&self.entries[p].value["locations"]).len().max(1) as i64;
                self.pool_sizes.get(p).copied().unwrap_or(0) * zones
            })
            .sum();
        if let Some(first) = pools.first() {
            v["currentNodeVersion"] = first["version"].clone();
        }
        v["currentNodeCount"] = json!(count);
        v["nodePools"] = json!(pools);
    }

    // ---- operations -------------------------------------------------------------------------

    fn render_container_op(&self, key: &str, now: Instant, fresh: bool) -> Option<Value> {
        let op = self.ops.get(key).filter(|o| o.api == Api::Container)?;
        let location = key.split('/').nth(3).unwrap_or_default();
        let mut v = json!({
            "name": op.name,
            "zone": location,
            "location": location,
            "operationType": op.op_type,
            "status": State::op_status(op, now, fresh),
            "selfLink": self.container_link(key),
            "targetLink": self.container_link(&op.target),
            "startTime": op.start,
        });
        if op.done {
            v["endTime"] = json!(op.end.clone().unwrap_or_default());
            if let Some(f) = &op.failure {
                v["statusMessage"] = json!(f.message);
                v["error"] = json!({"code": error::code_number(&f.code), "message": f.message});
            }
        }
        Some(v)
    }

    fn container_op(&mut self, kind: Kind, target: &str, op_type: &str, work: Work, now: Instant) -> Reply {
        let scope = target.split('/').take(4).collect::<Vec<_>>().join("/");
        let key = self.start_op(Api::Container, &scope, kind, target, op_type, work, now);
        Reply::ok(self.render_container_op(&key, now, true).expect("just started"))
    }

    pub(crate) fn set_container_status(&mut self, key: &str, status: &str, message: Option<&str>, with_pools: bool) {
        let pools = if with_pools { self.pool_keys(key) } else { Vec::new() };
        for k in std::iter::once(key.to_string()).chain(pools) {
            if let Some(e) = self.entries.get_mut(&k) {
                e.value["status"] = json!(status);
                match message {
                    Some(m) => e.value["statusMessage"] = json!(m),
                    None => {
                        if let Some(o) = e.value.as_object_mut() {
                            o.remove("statusMessage");
                        }
                    }
                }
            }
        }
    }

    /// A create finished: the cluster gets its endpoint and CA, and it and its pools run.
    pub(crate) fn finish_provision(&mut self, key: &str, kind: Kind) {
        if kind == Kind::Cluster && self.entries.contains_key(key) {
            let endpoint = if self.opts.kube_endpoint.is_empty() {
                let ip = external_ip(self.ips_handed_out);
                self.ips_handed_out += 1;
                ip.to_string()
            } else {
                self.opts.kube_endpoint.clone()
            };
            let ca = self.opts.cluster_ca_certificate.clone();
            let e = self.entries.get_mut(key).expect("checked above");
            e.value["endpoint"] = json!(endpoint);
            e.value["masterAuth"]["clusterCaCertificate"] = json!(ca);
            if e.value["privateClusterConfig"]["enablePrivateNodes"] == json!(true) {
                e.value["privateClusterConfig"]["publicEndpoint"] = json!(endpoint);
            }
        }
        self.set_container_status(key, "RUNNING", None, kind == Kind::Cluster);
    }

    fn delete_container(&mut self, kind: Kind, key: &str, op_type: &str, now: Instant) -> Result<Reply, ApiError> {
        if self.entries.get(key).is_none_or(|e| e.kind != kind) {
            return Err(ApiError::gke_not_found(key));
        }
        let cluster = key.split('/').take(6).collect::<Vec<_>>().join("/");
        self.require_idle(&cluster)?;
        self.set_container_status(key, "STOPPING", None, false);
        Ok(self.container_op(kind, key, op_type, Work::Delete, now))
    }

    // ---- versions ---------------------------------------------------------------------------

    /// A requested version as GKE resolves it: `""`, `latest` and `-` are the default; a minor
    /// (`1.32`) or patch (`1.32.4`) gets a GKE build.
    fn resolve_version(&self, v: &str, field: &str) -> Result<String, ApiError> {
        let default = &self.opts.default_cluster_version;
        if v.is_empty() || v == "latest" || v == "-" {
            return Ok(default.clone());
        }
        let Some(m) = minor(v).filter(|m| (28..=40).contains(m)) else {
            return Err(ApiError::invalid_argument(format!(
                "Invalid value for field \"{field}\": \"{v}\". Version is unsupported."
            )));
        };
        let parts: Vec<&str> = v.split('-').next().unwrap_or(v).split('.').collect();
        Ok(match (parts.len(), v.contains("-gke.")) {
            (_, true) => v.to_string(),
            (2, _) => format!("1.{m}.5-gke.1308000"),
            _ => format!("{}-gke.1308000", parts[..3].join(".")),
        })
    }

    /// A node version against its control plane: not newer, at most two minors older.
    fn check_node_version(node: &str, master: &str) -> Result<(), ApiError> {
        let (Some(n), Some(m)) = (minor(node), minor(master)) else { return Ok(()) };
        if n > m {
            return Err(ApiError::invalid_argument(format!(
                "Node version \"{node}\" must not be newer than the control plane's version \"{master}\"."
            )));
        }
        if n + 2 < m {
            return Err(ApiError::invalid_argument(format!(
                "Node version \"{node}\" is more than two minor versions older than the control plane's \"{master}\"."
            )));
        }
        Ok(())
    }

    // ---- create -----------------------------------------------------------------------------

    fn create_cluster(&mut self, parent: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let body = req.json(Api::Container)?;
        let mut c = body.get("cluster").filter(|c| c.is_object()).cloned().ok_or_else(|| {
            ApiError::invalid_argument("Invalid value for field \"cluster\": the cluster is required.")
        })?;
        normalize_cluster(&mut c);
        let project = project_of(parent).to_string();
        let location = parent.rsplit('/').next().unwrap_or_default().to_string();
        let region = region_of(&location).to_string();
        let name = str_of(&c, "name").unwrap_or_default().to_string();
        if !rfc1035(&name, 40) {
            return Err(ApiError::invalid_argument(format!(
                "Invalid value for field \"cluster.name\": \"{name}\". {NAME_RULE}"
            )));
        }
        let key = format!("{parent}/clusters/{name}");
        if self.entries.contains_key(&key) {
            return Err(ApiError::rpc(409, "ALREADY_EXISTS", format!("Already exists: {key}.")));
        }
        // Network and subnetwork.
        let net_name = str_of(&c, "network").or_else(|| str_of(&c["networkConfig"], "network")).unwrap_or("default");
        let network =
            link_key(&project, net_name).unwrap_or_else(|| format!("projects/{project}/global/networks/{net_name}"));
        let Some(net) = self.entries.get(&network).filter(|e| e.kind == Kind::Network) else {
            return Err(ApiError::invalid_argument(format!("Network \"{}\" does not exist.", last_segment(&network))));
        };
        let auto = net.value["autoCreateSubnetworks"] == json!(true);
        let subnet = match str_of(&c, "subnetwork").or_else(|| str_of(&c["networkConfig"], "subnetwork")) {
            Some(s) => {
                link_key(&project, s).unwrap_or_else(|| format!("projects/{project}/regions/{region}/subnetworks/{s}"))
            }
            None if auto => format!("projects/{project}/regions/{region}/subnetworks/{}", last_segment(&network)),
            None => {
                return Err(ApiError::invalid_argument(format!(
                    "Network \"{}\" is a custom mode network; a subnetwork must be specified.",
                    last_segment(&network)
                )));
            }
        };
        let Some(sub) = self.entries.get(&subnet).filter(|e| e.kind == Kind::Subnetwork) else {
            return Err(ApiError::invalid_argument(format!("Subnetwork \"{subnet}\" does not exist.")));
        };
        if self.ref_of(&subnet, "network").as_deref() != Some(network.as_str()) {
            return Err(ApiError::invalid_argument(format!(
                "Subnetwork \"{subnet}\" is not in network \"{}\".",
                last_segment(&network)
            )));
        }
        if subnet.split('/').nth(3) != Some(region.as_str()) {
            return Err(ApiError::invalid_argument(format!(
                "Subnetwork \"{subnet}\" is not in the cluster's region \"{region}\"."
            )));
        }
        let sub_value = sub.value.clone();
        c["network"] = json!(last_segment(&network));
        c["subnetwork"] = json!(last_segment(&subnet));
        c["networkConfig"]["network"] = json!(network);
        c["networkConfig"]["subnetwork"] = json!(subnet);
        self.check_ip_allocation(&mut c, &subnet, &sub_value)?;
        self.check_private_cluster(&mut c, &key, &network, &subnet)?;
        Self::check_network_policy(&c["networkPolicy"], &c["addonsConfig"], &c["networkConfig"])?;
        Self::check_workload_pool(&project, &c["workloadIdentityConfig"])?;
        check_labels("cluster.resourceLabels", &c["resourceLabels"], ApiError::invalid_argument)?;
        // Versions.
        let master = self.resolve_version(
            str_of(&c, "initialClusterVersion").unwrap_or_default(),
            "cluster.initial_cluster_version",
        )?;
        c["initialClusterVersion"] = json!(master);
        c["currentMasterVersion"] = json!(master);
        // Locations.
        let locations: Vec<String> = match c["locations"].as_array() {
            Some(l) if !l.is_empty() => l.iter().filter_map(|z| z.as_str().map(String::from)).collect(),
            _ if is_zone(&location) => vec![location.clone()],
            _ => ["a", "b", "c"].iter().map(|z| format!("{region}-{z}")).collect(),
        };
        if let Some(bad) = locations.iter().find(|z| region_of(z) != region) {
            return Err(ApiError::invalid_argument(format!("Location \"{bad}\" is not in region \"{region}\".")));
        }
        c["locations"] = json!(locations);
        // Node pools: either a list, or the default pool from initialNodeCount/nodeConfig.
        let autopilot = c["autopilot"]["enabled"] == json!(true);
        let mut pools = array(&c["nodePools"]);
        let initial = int_of(&c["initialNodeCount"]).unwrap_or(0);
        if !pools.is_empty() && (initial > 0 || c.get("nodeConfig").is_some_and(|v| !v.is_null())) {
            return Err(ApiError::invalid_argument(
                "Cannot specify both initial_node_count/node_config and node_pools.",
            ));
        }
        if pools.is_empty() && !autopilot {
            if initial <= 0 {
                return Err(ApiError::invalid_argument("Cluster.initial_node_count must be greater than zero."));
            }
            pools.push(json!({"name": "default-pool", "initialNodeCount": initial, "config": c["nodeConfig"].clone()}));
        }
        let mut pool_docs = Vec::new();
        for (i, p) in pools.iter().enumerate() {
            let mut p = p.clone();
            normalize_pool(&mut p);
            let pname = str_of(&p, "name").unwrap_or_default().to_string();
            if pool_docs.iter().any(|(n, _, _)| *n == pname) {
                return Err(ApiError::invalid_argument(format!(
                    "Invalid value for field \"cluster.node_pools[{i}].name\": \"{pname}\". Node pool names must be unique."
                )));
            }
            let (doc, size) = self.pool_doc(&key, &c, p, &format!("cluster.node_pools[{i}]"))?;
            pool_docs.push((pname, doc, size));
        }
        // The stored cluster.
        let obj = c.as_object_mut().expect("an object");
        for k in
            ["nodePools", "initialNodeCount", "nodeConfig", "endpoint", "status", "statusMessage", "currentNodeCount"]
        {
            obj.remove(k);
        }
        let labels = object(&c["resourceLabels"]);
        c["resourceLabels"] = json!(labels);
        c["labelFingerprint"] = json!(hex8());
        c["location"] = json!(location);
        c["zone"] = json!(location);
        c["selfLink"] = json!(self.container_link(&key));
        c["id"] = json!(format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()));
        c["createTime"] = json!(now_rfc3339());
        c["status"] = json!("PROVISIONING");
        c["etag"] = json!(hex8());
        if c["addonsConfig"]["networkPolicyConfig"].is_null() {
            c["addonsConfig"]["networkPolicyConfig"] = json!({"disabled": true});
        }
        for (k, d) in [
            ("loggingService", "logging.googleapis.com/kubernetes"),
            ("monitoringService", "monitoring.googleapis.com/kubernetes"),
        ] {
            if c.get(k).is_none_or(Value::is_null) {
                c[k] = json!(d);
            }
        }
        self.store(Kind::Cluster, &key, c, now);
        for (pname, doc, size) in pool_docs {
            let pk = format!("{key}/nodePools/{pname}");
            self.pool_sizes.insert(pk.clone(), size);
            self.store(Kind::NodePool, &pk, doc, now);
        }
        Ok(self.container_op(Kind::Cluster, &key, "CREATE_CLUSTER", Work::Provision, now))
    }

    /// VPC-native settings: named secondary ranges must exist in the subnetwork.
    fn check_ip_allocation(&self, c: &mut Value, subnet: &str, sub: &Value) -> Result<(), ApiError> {
        let p = &mut c["ipAllocationPolicy"];
        let aliases = p["useIpAliases"] == json!(true);
        let ranges: Vec<(String, String)> = array(&sub["secondaryIpRanges"])
            .iter()
            .filter_map(|r| Some((r["rangeName"].as_str()?.to_string(), r["ipCidrRange"].as_str()?.to_string())))
            .collect();
        let names = [
            ("clusterSecondaryRangeName", "cluster_secondary_range_name"),
            ("servicesSecondaryRangeName", "services_secondary_range_name"),
        ];
        if !aliases {
            if let Some((_, f)) = names.iter().find(|(k, _)| str_of(p, k).is_some()) {
                return Err(ApiError::invalid_argument(format!(
                    "Invalid value for field \"cluster.ip_allocation_policy.{f}\": secondary ranges need \
                     ip_allocation_policy.use_ip_aliases."
                )));
            }
            return Ok(());
        }
        if let (Some(a), Some(b)) = (str_of(p, names[0].0), str_of(p, names[1].0))
            && a == b
        {
            return Err(ApiError::invalid_argument(format!(
                "The pods and services secondary ranges must differ; both are \"{a}\"."
            )));
        }
        for ((k, f), (block, legacy, default)) in names.iter().zip([
            ("clusterIpv4CidrBlock", "clusterIpv4Cidr", "10.4.0.0/14"),
            ("servicesIpv4CidrBlock", "servicesIpv4Cidr", "10.8.0.0/20"),
        ]) {
            let cidr = match str_of(p, k) {
                Some(name) => ranges.iter().find(|(n, _)| n == name).map(|(_, c)| c.clone()).ok_or_else(|| {
                    ApiError::invalid_argument(format!(
                        "Invalid value for field \"cluster.ip_allocation_policy.{f}\": \"{name}\". The subnetwork \
                         \"{subnet}\" has no secondary range named \"{name}\"."
                    ))
                })?,
                None => str_of(p, block).unwrap_or(default).to_string(),
            };
            p[block] = json!(cidr);
            p[legacy] = json!(cidr);
        }
        let (pods, services) = (p["clusterIpv4CidrBlock"].clone(), p["servicesIpv4CidrBlock"].clone());
        c["clusterIpv4Cidr"] = pods;
        c["servicesIpv4Cidr"] = services;
        Ok(())
    }

    /// Private nodes: VPC-native, and a /28 for the control plane that overlaps nothing.
    fn check_private_cluster(&self, c: &mut Value, key: &str, network: &str, subnet: &str) -> Result<(), ApiError> {
        if c["privateClusterConfig"]["enablePrivateNodes"] != json!(true) {
            return Ok(());
        }
        if c["ipAllocationPolicy"]["useIpAliases"] != json!(true) {
            return Err(ApiError::invalid_argument(
                "Private clusters must be VPC-native: set ip_allocation_policy.use_ip_aliases.",
            ));
        }
        let Some(block) = str_of(&c["privateClusterConfig"], "masterIpv4CidrBlock").map(String::from) else {
            return Err(ApiError::invalid_argument(
                "Invalid value for field \"cluster.private_cluster_config.master_ipv4_cidr_block\": \"\". A private \
                 cluster needs a /28 for its control plane.",
            ));
        };
        let bad = |why: String| {
            ApiError::invalid_argument(format!(
                "Invalid value for field \"cluster.private_cluster_config.master_ipv4_cidr_block\": \"{block}\". {why}"
            ))
        };
        let cidr = Cidr::parse(&block).map_err(|_| bad("Must be a CIDR range with its host bits zero.".into()))?;
        if cidr.len() != 28 {
            return Err(bad("Must be a /28.".into()));
        }
        let project = project_of(key);
        for s in self.keys_in_project(Kind::Subnetwork, project) {
            if self.ref_of(&s, "network").as_deref() != Some(network) {
                continue;
            }
            let v = &self.entries[&s].value;
            let mut ranges = vec![v["ipCidrRange"].as_str().unwrap_or_default().to_string()];
            ranges.extend(
                array(&v["secondaryIpRanges"]).iter().filter_map(|r| r["ipCidrRange"].as_str().map(String::from)),
            );
            if let Some(r) = ranges.iter().find(|r| Cidr::parse(r).is_ok_and(|r| r.overlaps(&cidr))) {
                let which = if s == subnet { "the cluster's subnetwork" } else { "subnetwork" };
                return Err(bad(format!("It overlaps {r} of {which} \"{s}\".")));
            }
        }
        for other in self.keys_in_project(Kind::Cluster, project) {
            let v = &self.entries[&other].value;
            let theirs = v["privateClusterConfig"]["masterIpv4CidrBlock"].as_str().and_then(|b| Cidr::parse(b).ok());
            if v["networkConfig"]["network"].as_str() == Some(network) && theirs.is_some_and(|t| t.overlaps(&cidr)) {
                return Err(bad(format!("It overlaps the control plane range of cluster \"{other}\".")));
            }
        }
        c["privateClusterConfig"]["privateEndpoint"] = json!(cidr.nth(2).map(|ip| ip.to_string()));
        c["privateClusterConfig"]["peeringName"] = json!(format!("gke-n{}-peer", hex8()));
        Ok(())
    }

    /// Calico needs its add-on, and does not go with Dataplane V2.
    fn check_network_policy(policy: &Value, addons: &Value, network_config: &Value) -> Result<(), ApiError> {
        if policy["enabled"] != json!(true) {
            return Ok(());
        }
        if network_config["datapathProvider"] == json!("ADVANCED_DATAPATH") {
            return Err(ApiError::invalid_argument(
                "Network policy enforcement with Calico cannot be enabled on a cluster with Dataplane V2 \
                 (ADVANCED_DATAPATH), which enforces network policy itself.",
            ));
        }
        // Proto JSON leaves `false` out: a present `networkPolicyConfig` without `disabled` is on.
        let addon = &addons["networkPolicyConfig"];
        if !addon.is_object() || addon["disabled"] == json!(true) {
            return Err(ApiError::invalid_argument(
                "Network policy cannot be enabled while the network policy add-on is disabled: set \
                 addons_config.network_policy_config.disabled to false.",
            ));
        }
        Ok(())
    }

    fn check_workload_pool(project: &str, wi: &Value) -> Result<(), ApiError> {
        match str_of(wi, "workloadPool") {
            Some(p) if p != format!("{project}.svc.id.goog") => Err(ApiError::invalid_argument(format!(
                "Invalid value for field \"cluster.workload_identity_config.workload_pool\": \"{p}\". The workload \
                 pool must be \"{project}.svc.id.goog\"."
            ))),
            _ => Ok(()),
        }
    }

    /// Autoscaling bounds, against the initial size.
    fn check_autoscaling(a: &Value, initial: Option<i64>, field: &str) -> Result<(), ApiError> {
        if a["enabled"] != json!(true) {
            return Ok(());
        }
        let bad =
            |why: &str| ApiError::invalid_argument(format!("Invalid value for field \"{field}.autoscaling\": {why}"));
        let total = a.get("totalMaxNodeCount").is_some_and(|v| !v.is_null());
        let (lo, hi) = if total {
            (int_of(&a["totalMinNodeCount"]).unwrap_or(0), int_of(&a["totalMaxNodeCount"]).unwrap_or(0))
        } else {
            (int_of(&a["minNodeCount"]).unwrap_or(0), int_of(&a["maxNodeCount"]).unwrap_or(0))
        };
        if lo < 0 {
            return Err(bad("the minimum node count must not be negative."));
        }
        if hi < 1 {
            return Err(bad("the maximum node count must be at least 1."));
        }
        if lo > hi {
            return Err(bad(&format!("the minimum node count {lo} is above the maximum {hi}.")));
        }
        if hi > 1000 {
            return Err(bad("the maximum node count must be at most 1000."));
        }
        if let Some(n) = initial
            && !total
            && n > hi
        {
            return Err(bad(&format!("the initial node count {n} is above the maximum {hi}.")));
        }
        Ok(())
    }

    /// A node pool document (validated) and its nodes per zone.
    fn pool_doc(
        &self,
        cluster_key: &str,
        cluster: &Value,
        mut p: Value,
        field: &str,
    ) -> Result<(Value, i64), ApiError> {
        let project = project_of(cluster_key).to_string();
        let name = str_of(&p, "name").unwrap_or_default().to_string();
        if !rfc1035(&name, 40) {
            return Err(ApiError::invalid_argument(format!(
                "Invalid value for field \"{field}.name\": \"{name}\". {NAME_RULE}"
            )));
        }
        let initial = int_of(&p["initialNodeCount"]).unwrap_or(0);
        if initial < 0 {
            return Err(ApiError::invalid_argument(format!(
                "Invalid value for field \"{field}.initial_node_count\": {initial}. Must not be negative."
            )));
        }
        Self::check_autoscaling(&p["autoscaling"], Some(initial), field)?;
        let master = cluster["currentMasterVersion"].as_str().unwrap_or_default().to_string();
        let version = match str_of(&p, "version") {
            Some(v) => self.resolve_version(v, &format!("{field}.version"))?,
            None => master.clone(),
        };
        Self::check_node_version(&version, &master)?;
        p["version"] = json!(version);
        let region = region_of(cluster["location"].as_str().unwrap_or_default()).to_string();
        match p["locations"].as_array() {
            Some(l) if !l.is_empty() => {
                if let Some(bad) = l.iter().filter_map(Value::as_str).find(|z| region_of(z) != region) {
                    return Err(ApiError::invalid_argument(format!(
                        "Location \"{bad}\" is not in region \"{region}\"."
                    )));
                }
            }
            _ => p["locations"] = cluster["locations"].clone(),
        }
        // Node config defaults and references.
        let mut config = object(&p["config"]);
        for (k, d) in [
            ("machineType", json!("e2-medium")),
            ("diskSizeGb", json!(100)),
            ("diskType", json!("pd-balanced")),
            ("imageType", json!("COS_CONTAINERD")),
            ("serviceAccount", json!("default")),
            ("oauthScopes", json!(DEFAULT_SCOPES)),
            ("metadata", json!({"disable-legacy-endpoints": "true"})),
        ] {
            if config.get(k).is_none_or(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty)) {
                config.insert(k.to_string(), d);
            }
        }
        let sa = config["serviceAccount"].as_str().unwrap_or_default().to_string();
        if sa.ends_with(".iam.gserviceaccount.com") && !sa.contains("@gcp-sa-") {
            let owner = sa.split('@').nth(1).and_then(|d| d.split('.').next()).unwrap_or_default();
            if !self.entries.contains_key(&format!("projects/{owner}/serviceAccounts/{sa}")) {
                return Err(ApiError::invalid_argument(format!("Service account \"{sa}\" does not exist.")));
            }
        }
        check_labels(
            &format!("{field}.config.resource_labels"),
            &Value::Object(object(&config.get("resourceLabels").cloned().unwrap_or_default())),
            ApiError::invalid_argument,
        )?;
        p["config"] = Value::Object(config);
        normalize_pool(&mut p);
        if p["config"]["workloadMetadataConfig"]["mode"] == json!("GKE_METADATA")
            && str_of(&cluster["workloadIdentityConfig"], "workloadPool").is_none()
        {
            return Err(ApiError::invalid_argument(format!(
                "Invalid value for field \"{field}.config.workload_metadata_config.mode\": GKE_METADATA needs \
                 Workload Identity on the cluster."
            )));
        }
        let channel = cluster["releaseChannel"]["channel"].as_str().unwrap_or("UNSPECIFIED");
        // Without `management` GKE repairs and upgrades; inside one, proto JSON leaves `false` out.
        let mut management = object(&p["management"]);
        let default = p["management"].is_null();
        management.entry("autoUpgrade").or_insert(json!(default));
        management.entry("autoRepair").or_insert(json!(default));
        if channel != "UNSPECIFIED" && management["autoUpgrade"] == json!(false) {
            return Err(ApiError::invalid_argument(format!(
                "Invalid value for field \"{field}.management.auto_upgrade\": node pools of a cluster on the {channel} \
                 release channel must auto-upgrade."
            )));
        }
        p["management"] = Value::Object(management);
        if p["upgradeSettings"].is_null() {
            p["upgradeSettings"] = json!({"maxSurge": 1, "maxUnavailable": 0, "strategy": "SURGE"});
        }
        if cluster["ipAllocationPolicy"]["useIpAliases"] == json!(true) {
            if p["maxPodsConstraint"].is_null() {
                p["maxPodsConstraint"] = json!({"maxPodsPerNode": "110"});
            }
            p["podIpv4CidrSize"] = json!(24);
            let pods = &cluster["ipAllocationPolicy"];
            if let Some(r) = str_of(pods, "clusterSecondaryRangeName") {
                p["networkConfig"]["podRange"] = json!(r);
            }
            p["networkConfig"]["podIpv4CidrBlock"] = pods["clusterIpv4CidrBlock"].clone();
        }
        let key = format!("{cluster_key}/nodePools/{name}");
        p["selfLink"] = json!(self.container_link(&key));
        p["status"] = json!("PROVISIONING");
        p["etag"] = json!(hex8());
        p["initialNodeCount"] = json!(initial);
        let _ = project;
        Ok((p, initial))
    }

    fn create_pool(&mut self, cluster: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let body = req.json(Api::Container)?;
        let c = self.require_cluster(cluster)?.clone();
        let p = body.get("nodePool").filter(|p| p.is_object()).cloned().ok_or_else(|| {
            ApiError::invalid_argument("Invalid value for field \"node_pool\": the node pool is required.")
        })?;
        let name = str_of(&p, "name").unwrap_or_default().to_string();
        let key = format!("{cluster}/nodePools/{name}");
        if self.entries.contains_key(&key) {
            return Err(ApiError::rpc(409, "ALREADY_EXISTS", format!("Already exists: {key}.")));
        }
        self.require_idle(cluster)?;
        let (doc, size) = self.pool_doc(cluster, &c, p, "node_pool")?;
        self.pool_sizes.insert(key.clone(), size);
        self.store(Kind::NodePool, &key, doc, now);
        Ok(self.container_op(Kind::NodePool, &key, "CREATE_NODE_POOL", Work::Provision, now))
    }

    // ---- updates ----------------------------------------------------------------------------

    /// The pool an update of node settings is for: named, or the only one.
    fn pool_for_update(&self, cluster: &str, named: Option<&str>) -> Result<String, ApiError> {
        match named {
            Some(n) => {
                let k = format!("{cluster}/nodePools/{n}");
                self.entries.contains_key(&k).then_some(k.clone()).ok_or_else(|| ApiError::gke_not_found(&k))
            }
            None => match self.pool_keys(cluster).as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(ApiError::invalid_argument(
                    "desired_node_pool_id must be specified when the cluster has more than one node pool.",
                )),
            },
        }
    }

    fn update_cluster(&mut self, key: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let body = req.json(Api::Container)?;
        let mut c = self.require_cluster(key)?.clone();
        self.require_idle(key)?;
        let update = object(&body["update"]);
        let fields: Vec<(&String, &Value)> =
            update.iter().filter(|(k, v)| !v.is_null() && *k != "desiredNodePoolId" && *k != "etag").collect();
        let (field, value) = match fields.as_slice() {
            [] => return Err(ApiError::invalid_argument("The update names no field to change.")),
            [one] => (one.0.as_str(), one.1.clone()),
            _ => {
                return Err(ApiError::invalid_argument(
                    "Exactly one update can be applied to a cluster with each request, so at most one field can be \
                     provided.",
                ));
            }
        };
        let pool_id = update.get("desiredNodePoolId").and_then(Value::as_str).filter(|s| !s.is_empty());
        let project = project_of(key).to_string();
        let master = c["currentMasterVersion"].as_str().unwrap_or_default().to_string();
        let mut op_type = "UPDATE_CLUSTER";
        let mut pool_change: Option<(String, Value)> = None;
        match field {
            "desiredMasterVersion" => {
                let v = self.resolve_version(value.as_str().unwrap_or_default(), "update.desired_master_version")?;
                let (Some(new), Some(cur)) = (minor(&v), minor(&master)) else {
                    unreachable!("resolved versions parse")
                };
                if new < cur {
                    return Err(ApiError::invalid_argument(format!(
                        "Master cannot be downgraded from \"{master}\" to \"{v}\"."
                    )));
                }
                if new > cur + 1 {
                    return Err(ApiError::invalid_argument(format!(
                        "Master cannot be upgraded from \"{master}\" to \"{v}\": one minor version at a time."
                    )));
                }
                c["currentMasterVersion"] = json!(v);
                op_type = "UPGRADE_MASTER";
            }
            "desiredNodeVersion" => {
                let pk = self.pool_for_update(key, pool_id)?;
                let v = self.resolve_version(value.as_str().unwrap_or_default(), "update.desired_node_version")?;
                let v = if value.as_str() == Some("-") { master.clone() } else { v };
                Self::check_node_version(&v, &master)?;
                let mut p = self.entries[&pk].value.clone();
                p["version"] = json!(v);
                pool_change = Some((pk, p));
                op_type = "UPGRADE_NODES";
            }
            "desiredNodePoolAutoscaling" => {
                let pk = self.pool_for_update(key, pool_id)?;
                Self::check_autoscaling(&value, None, "update.desired_node_pool_autoscaling")?;
                let mut p = self.entries[&pk].value.clone();
                p["autoscaling"] = value.clone();
                pool_change = Some((pk, p));
            }
            "desiredImageType" => {
                let pk = self.pool_for_update(key, pool_id)?;
                let mut p = self.entries[&pk].value.clone();
                p["config"]["imageType"] = value.clone();
                pool_change = Some((pk, p));
                op_type = "UPGRADE_NODES";
            }
            "desiredAddonsConfig" => {
                let mut addons = c["addonsConfig"].clone();
                merge_patch(&mut addons, &value);
                Self::check_addons_keep_policy(&c["networkPolicy"], &addons)?;
                c["addonsConfig"] = addons;
            }
            "desiredWorkloadIdentityConfig" => {
                Self::check_workload_pool(&project, &value)?;
                if str_of(&value, "workloadPool").is_some() {
                    c["workloadIdentityConfig"] = value.clone();
                } else if let Some(o) = c.as_object_mut() {
                    o.remove("workloadIdentityConfig");
                }
            }
            "desiredDatapathProvider" => {
                let mut v = json!({"p": value.clone()});
                normalize(&mut v, "p", CLUSTER_ENUMS[1].1);
                let cur = c["networkConfig"]["datapathProvider"].as_str().unwrap_or("LEGACY_DATAPATH");
                if v["p"].as_str() != Some(cur) {
                    return Err(ApiError::invalid_argument(
                        "The datapath provider of an existing cluster cannot be changed.",
                    ));
                }
            }
            "desiredReleaseChannel" => {
                let mut v = json!({"releaseChannel": value.clone()});
                normalize_cluster(&mut v);
                c["releaseChannel"] = v["releaseChannel"].clone();
            }
            "desiredPrivateClusterConfig" => {
                let old = c["privateClusterConfig"]["masterIpv4CidrBlock"].clone();
                if value.get("masterIpv4CidrBlock").is_some_and(|b| *b != old && !b.is_null()) {
                    return Err(ApiError::invalid_argument("The control plane range of a cluster cannot be changed."));
                }
                merge_patch(&mut c["privateClusterConfig"], &value);
            }
            "desiredEnablePrivateEndpoint" => c["privateClusterConfig"]["enablePrivateEndpoint"] = value.clone(),
            "desiredDefaultEnablePrivateNodes" => c["networkConfig"]["defaultEnablePrivateNodes"] = value.clone(),
            "desiredDnsConfig" => {
                let mut v = json!({"networkConfig": {"dnsConfig": value.clone()}});
                normalize_cluster(&mut v);
                c["networkConfig"]["dnsConfig"] = v["networkConfig"]["dnsConfig"].clone();
            }
            "desiredGatewayApiConfig" => c["networkConfig"]["gatewayApiConfig"] = value.clone(),
            "desiredDefaultSnatStatus" => c["networkConfig"]["defaultSnatStatus"] = value.clone(),
            "desiredIntraNodeVisibilityConfig" => {
                c["networkConfig"]["enableIntraNodeVisibility"] = value["enabled"].clone()
            }
            "desiredL4ilbSubsettingConfig" => c["networkConfig"]["enableL4ilbSubsetting"] = value["enabled"].clone(),
            "desiredEnableFqdnNetworkPolicy" => c["networkConfig"]["enableFqdnNetworkPolicy"] = value.clone(),
            "desiredEnableMultiNetworking" => c["networkConfig"]["enableMultiNetworking"] = value.clone(),
            "desiredEnableCiliumClusterwideNetworkPolicy" => {
                c["networkConfig"]["enableCiliumClusterwideNetworkPolicy"] = value.clone();
            }
            "desiredStackType" => {
                let mut v = json!({"ipAllocationPolicy": {"stackType": value.clone()}});
                normalize_cluster(&mut v);
                c["ipAllocationPolicy"]["stackType"] = v["ipAllocationPolicy"]["stackType"].clone();
            }
            "desiredLocations" => c["locations"] = value.clone(),
            "desiredLoggingService" => c["loggingService"] = value.clone(),
            "desiredMonitoringService" => c["monitoringService"] = value.clone(),
            other => {
                // `desiredFooBar` → `fooBar`.
                let rest = other.strip_prefix("desired").unwrap_or(other);
                let mut chars = rest.chars();
                let f = chars.next().map(|h| h.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default();
                c[f] = value.clone();
            }
        }
        let target = match pool_change {
            Some((pk, mut p)) => {
                p["status"] = json!("RECONCILING");
                self.store(Kind::NodePool, &pk, p, now);
                pk
            }
            None => {
                c["status"] = json!("RECONCILING");
                c["etag"] = json!(hex8());
                self.store(Kind::Cluster, key, c, now);
                key.to_string()
            }
        };
        let kind = if target == key { Kind::Cluster } else { Kind::NodePool };
        Ok(self.container_op(kind, &target, op_type, Work::Update, now))
    }

    fn check_addons_keep_policy(policy: &Value, addons: &Value) -> Result<(), ApiError> {
        let addon = &addons["networkPolicyConfig"];
        if policy["enabled"] == json!(true) && (!addon.is_object() || addon["disabled"] == json!(true)) {
            return Err(ApiError::failed_precondition(
                "The network policy add-on cannot be disabled while network policy is enabled; disable network \
                 policy first.",
            ));
        }
        Ok(())
    }

    fn cluster_verb(&mut self, key: &str, verb: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let body = req.json(Api::Container)?;
        let mut c = self.require_cluster(key)?.clone();
        let known = [
            "setResourceLabels",
            "setNetworkPolicy",
            "setAddons",
            "updateMaster",
            "setLocations",
            "setMaintenancePolicy",
            "setLogging",
            "setMonitoring",
        ];
        if !known.contains(&verb) {
            return Err(ApiError::rpc(
                501,
                "UNIMPLEMENTED",
                format!("The emulator does not implement clusters.{verb}."),
            ));
        }
        self.require_idle(key)?;
        let op_type = match verb {
            "setResourceLabels" => {
                let Some(fp) = str_of(&body, "labelFingerprint") else {
                    return Err(ApiError::invalid_argument(
                        "Invalid value for field \"label_fingerprint\": the fingerprint of the current labels is required.",
                    ));
                };
                if Some(fp) != c["labelFingerprint"].as_str() {
                    return Err(ApiError::failed_precondition(
                        "Labels could not be set due to fingerprint mismatch; get the cluster and try again.",
                    ));
                }
                check_labels("resource_labels", &body["resourceLabels"], ApiError::invalid_argument)?;
                c["resourceLabels"] = json!(object(&body["resourceLabels"]));
                c["labelFingerprint"] = json!(hex8());
                "SET_LABELS"
            }
            "setNetworkPolicy" => {
                let mut v = json!({"networkPolicy": body["networkPolicy"].clone()});
                normalize_cluster(&mut v);
                Self::check_network_policy(&v["networkPolicy"], &c["addonsConfig"], &c["networkConfig"])?;
                c["networkPolicy"] = v["networkPolicy"].clone();
                "SET_NETWORK_POLICY"
            }
            "setAddons" => {
                let addons = body["addonsConfig"].clone();
                Self::check_addons_keep_policy(&c["networkPolicy"], &addons)?;
                c["addonsConfig"] = addons;
                "UPDATE_CLUSTER"
            }
            "updateMaster" => {
                // As the equivalent `update`, so the version rules hold.
                let v = self.resolve_version(str_of(&body, "masterVersion").unwrap_or_default(), "master_version")?;
                let cur = c["currentMasterVersion"].as_str().unwrap_or_default().to_string();
                if minor(&v) < minor(&cur) || minor(&v).zip(minor(&cur)).is_some_and(|(n, o)| n > o + 1) {
                    return Err(ApiError::invalid_argument(format!(
                        "Master cannot go from \"{cur}\" to \"{v}\": one minor version up at a time."
                    )));
                }
                c["currentMasterVersion"] = json!(v);
                "UPGRADE_MASTER"
            }
            "setLocations" => {
                c["locations"] = body["locations"].clone();
                "UPDATE_CLUSTER"
            }
            "setMaintenancePolicy" => {
                c["maintenancePolicy"] = body["maintenancePolicy"].clone();
                "SET_MAINTENANCE_POLICY"
            }
            "setLogging" => {
                c["loggingService"] = body["loggingService"].clone();
                "UPDATE_CLUSTER"
            }
            _ => {
                c["monitoringService"] = body["monitoringService"].clone();
                "UPDATE_CLUSTER"
            }
        };
        c["status"] = json!("RECONCILING");
        self.store(Kind::Cluster, key, c, now);
        Ok(self.container_op(Kind::Cluster, key, op_type, Work::Update, now))
    }

    fn update_pool(&mut self, key: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let body = req.json(Api::Container)?;
        let mut p = self
            .entries
            .get(key)
            .filter(|e| e.kind == Kind::NodePool)
            .map(|e| e.value.clone())
            .ok_or_else(|| ApiError::gke_not_found(key))?;
        let cluster = key.split('/').take(6).collect::<Vec<_>>().join("/");
        let c = self.require_cluster(&cluster)?.clone();
        self.require_idle(&cluster)?;
        let master = c["currentMasterVersion"].as_str().unwrap_or_default().to_string();
        let skip = ["projectId", "zone", "clusterId", "nodePoolId", "name", "etag"];
        for (k, v) in object(&body) {
            if skip.contains(&k.as_str()) || v.is_null() {
                continue;
            }
            match k.as_str() {
                "nodeVersion" => {
                    let s = v.as_str().unwrap_or_default();
                    let ver = if s == "-" { master.clone() } else { self.resolve_version(s, "node_version")? };
                    Self::check_node_version(&ver, &master)?;
                    p["version"] = json!(ver);
                }
                "locations" => p["locations"] = v,
                "upgradeSettings" => p["upgradeSettings"] = v,
                "nodeNetworkConfig" => p["networkConfig"] = v,
                "queuedProvisioning" => p["queuedProvisioning"] = v,
                "maintenancePolicy" => p["maintenancePolicy"] = v,
                "nodeDrainConfig" => p["nodeDrainConfig"] = v,
                "tags" => p["config"]["tags"] = v["tags"].clone(),
                "taints" => p["config"]["taints"] = v["taints"].clone(),
                "labels" => p["config"]["labels"] = v["labels"].clone(),
                "resourceLabels" => {
                    check_labels("resource_labels", &v["labels"], ApiError::invalid_argument)?;
                    p["config"]["resourceLabels"] = v["labels"].clone();
                }
                "diskSizeGb" => p["config"]["diskSizeGb"] = json!(int_of(&v).unwrap_or(0)),
                other => p["config"][other] = v,
            }
        }
        normalize_pool(&mut p);
        if p["config"]["workloadMetadataConfig"]["mode"] == json!("GKE_METADATA")
            && str_of(&c["workloadIdentityConfig"], "workloadPool").is_none()
        {
            return Err(ApiError::invalid_argument(
                "Invalid value for field \"workload_metadata_config.mode\": GKE_METADATA needs Workload Identity on \
                 the cluster.",
            ));
        }
        p["status"] = json!("RECONCILING");
        p["etag"] = json!(hex8());
        self.store(Kind::NodePool, key, p, now);
        Ok(self.container_op(Kind::NodePool, key, "UPGRADE_NODES", Work::Update, now))
    }

    fn pool_verb(&mut self, key: &str, verb: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let body = req.json(Api::Container)?;
        let mut p = self
            .entries
            .get(key)
            .filter(|e| e.kind == Kind::NodePool)
            .map(|e| e.value.clone())
            .ok_or_else(|| ApiError::gke_not_found(key))?;
        if !["setSize", "setAutoscaling", "setManagement"].contains(&verb) {
            return Err(ApiError::rpc(
                501,
                "UNIMPLEMENTED",
                format!("The emulator does not implement nodePools.{verb}."),
            ));
        }
        let cluster = key.split('/').take(6).collect::<Vec<_>>().join("/");
        self.require_idle(&cluster)?;
        let op_type = match verb {
            "setSize" => {
                let n = int_of(&body["nodeCount"]).unwrap_or(0);
                if n < 0 {
                    return Err(ApiError::invalid_argument(format!(
                        "Invalid value for field \"node_count\": {n}. Must not be negative."
                    )));
                }
                self.pool_sizes.insert(key.to_string(), n);
                "SET_NODE_POOL_SIZE"
            }
            "setAutoscaling" => {
                Self::check_autoscaling(&body["autoscaling"], None, "autoscaling")?;
                p["autoscaling"] = body["autoscaling"].clone();
                "UPDATE_CLUSTER"
            }
            _ => {
                p["management"] = body["management"].clone();
                "SET_NODE_POOL_MANAGEMENT"
            }
        };
        p["status"] = json!("RECONCILING");
        self.store(Kind::NodePool, key, p, now);
        Ok(self.container_op(Kind::NodePool, key, op_type, Work::Update, now))
    }

    /// The versions on offer: the default's minor, one newer and two older; the release channels
    /// (rapid the newest, regular the default, stable and extended older).
    fn server_config(&self) -> Value {
        let default = self.opts.default_cluster_version.clone();
        let m = minor(&default).unwrap_or(33);
        let build = |n: u32| if n == m { default.clone() } else { format!("1.{n}.5-gke.1308000") };
        let versions: Vec<String> = (m.saturating_sub(2)..=m + 1).rev().map(build).collect();
        let channel =
            |name: &str, n: u32| json!({"channel": name, "defaultVersion": build(n), "validVersions": [build(n)]});
        json!({
            "defaultClusterVersion": default,
            "validMasterVersions": versions,
            "validNodeVersions": versions,
            "defaultImageType": "COS_CONTAINERD",
            "validImageTypes": ["COS_CONTAINERD", "UBUNTU_CONTAINERD"],
            "channels": [
                channel("RAPID", m + 1),
                channel("REGULAR", m),
                channel("STABLE", m.saturating_sub(1)),
                channel("EXTENDED", m.saturating_sub(2)),
            ],
        })
    }

    /// Whether a workload identity pool exists: some cluster of the project has it.
    pub(crate) fn workload_pool_exists(&self, project: &str) -> bool {
        let pool = format!("{project}.svc.id.goog");
        self.keys_in_project(Kind::Cluster, project)
            .iter()
            .any(|c| self.entries[c].value["workloadIdentityConfig"]["workloadPool"].as_str() == Some(pool.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_become_names() {
        let mut c = json!({"networkPolicy": {"provider": 1, "enabled": true}, "releaseChannel": {"channel": 2},
            "networkConfig": {"datapathProvider": 2}, "status": "RUNNING"});
        normalize_cluster(&mut c);
        assert_eq!(c["networkPolicy"]["provider"], "CALICO");
        assert_eq!(c["releaseChannel"]["channel"], "REGULAR");
        assert_eq!(c["networkConfig"]["datapathProvider"], "ADVANCED_DATAPATH");
        assert_eq!(c["status"], "RUNNING");
        let mut p = json!({"config": {"workloadMetadataConfig": {"mode": 2}, "taints": [{"key": "k", "effect": 1}]}});
        normalize_pool(&mut p);
        assert_eq!(p["config"]["workloadMetadataConfig"]["mode"], "GKE_METADATA");
        assert_eq!(p["config"]["taints"][0]["effect"], "NO_SCHEDULE");
    }

    #[test]
    fn versions_and_locations() {
        assert_eq!(minor("1.33.5-gke.1308000"), Some(33));
        assert_eq!(minor("1.32"), Some(32));
        assert_eq!(minor("2.1"), None);
        assert!(is_zone("europe-west1-b") && !is_zone("europe-west1"));
        assert_eq!(region_of("us-central1-a"), "us-central1");
        assert!(State::check_node_version("1.33.1-gke.1", "1.33.5-gke.2").is_ok());
        assert!(State::check_node_version("1.34.1-gke.1", "1.33.5-gke.2").is_err());
        assert!(State::check_node_version("1.30.1-gke.1", "1.33.5-gke.2").is_err());
    }
}
