//! Compute Engine v1: networks, subnetworks, firewalls, routers (with Cloud NAT) and addresses,
//! and the global and regional operations every mutation returns.
//!
//! Validation covers what a tool can get wrong when it lays out a VPC for GKE: names, references
//! (which must exist and be ready), address ranges (inside no other subnet of the network,
//! secondary ranges apart from each other and from every other range), NAT settings, label and
//! subnet fingerprints, resources still in use when deleted, and `requestId` deduplication.
//! It does not cover: quotas, IPv6, peering, VPN/interconnect, routes, instances, firewall
//! policies, Shared VPC, `expandIpCidrRange`, or the many fields it stores without reading.

use std::net::Ipv4Addr;
use std::time::Instant;

use serde_json::{Value, json};

use crate::error::{self, ApiError};
use crate::filter::Filter;
use crate::net::{Cidr, CidrError};
use crate::route::{Api, Kind, Target};
use crate::state::{
    self, OpFailure, Reply, Req, State, Work, array, fingerprint_of, last_segment, link_key, now_rfc3339, project_of,
    random_fingerprint, rfc1035,
};

/// The fingerprint compute gives an empty label set.
pub(crate) const EMPTY_LABELS_FINGERPRINT: &str = "42WmSpB8rSM=";

/// The subnetworks of an auto-mode network: (region, range). A subset of compute's regions.
const AUTO_SUBNETS: [(&str, &str); 12] = [
    ("us-central1", "10.128.0.0/20"),
    ("europe-west1", "10.132.0.0/20"),
    ("us-west1", "10.138.0.0/20"),
    ("asia-east1", "10.140.0.0/20"),
    ("us-east1", "10.142.0.0/20"),
    ("asia-northeast1", "10.146.0.0/20"),
    ("asia-southeast1", "10.148.0.0/20"),
    ("us-east4", "10.150.0.0/20"),
    ("europe-west2", "10.154.0.0/20"),
    ("europe-west3", "10.156.0.0/20"),
    ("europe-west4", "10.164.0.0/20"),
    ("europe-north1", "10.166.0.0/20"),
];

/// The range auto-mode networks keep for their subnetworks.
const AUTO_MODE_RANGE: &str = "10.128.0.0/9";

const NAME_RULE: &str = "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'";

fn collection(kind: Kind) -> &'static str {
    match kind {
        Kind::Network => "networks",
        Kind::Subnetwork => "subnetworks",
        Kind::Firewall => "firewalls",
        Kind::Router => "routers",
        _ => "addresses",
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v[k].as_str().filter(|s| !s.is_empty())
}

/// A prefix in a field, refused as compute refuses it.
fn cidr(field: &str, s: &str) -> Result<Cidr, ApiError> {
    Cidr::parse(s).map_err(|e| match e {
        CidrError::Malformed => ApiError::bad_field(field, s, "Must be a CIDR address range like 10.0.0.0/16."),
        CidrError::HostBits(should) => ApiError::bad_field(
            field,
            s,
            &format!("The address range must have its host bits zero; did you mean {should}?"),
        ),
    })
}

/// Checks GCE label rules: at most 64, keys 1-63 and values 0-63 of `[a-z0-9_-]`, keys
/// starting with a letter.
pub(crate) fn check_labels(field: &str, labels: &Value, err: impl Fn(String) -> ApiError) -> Result<(), ApiError> {
    let Some(m) = labels.as_object() else {
        return if labels.is_null() { Ok(()) } else { Err(err(format!("'{field}' must be a map of strings."))) };
    };
    if m.len() > 64 {
        return Err(err(format!("'{field}' has more than 64 labels.")));
    }
    let ok = |s: &str| s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    for (k, v) in m {
        let Some(v) = v.as_str() else { return Err(err(format!("The value of label '{k}' must be a string."))) };
        if k.is_empty() || k.len() > 63 || !k.starts_with(|c: char| c.is_ascii_lowercase()) || !ok(k) {
            return Err(err(format!(
                "Invalid label key '{k}': keys start with a lower-case letter and hold at most 63 lower-case \
                 letters, digits, '_' and '-'."
            )));
        }
        if v.len() > 63 || !ok(v) {
            return Err(err(format!(
                "Invalid value '{v}' of label '{k}': values hold at most 63 lower-case letters, digits, '_' and '-'."
            )));
        }
    }
    Ok(())
}

/// Whether `s` is a UUID as compute wants for `requestId` (and not the zero UUID).
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
        && s.chars().any(|c| c != '0' && c != '-')
}

impl State {
    pub(crate) fn compute(&mut self, req: &Req, t: &Target, now: Instant) -> Result<Reply, ApiError> {
        let no = || State::no_method(Api::Compute, req);
        match t {
            Target::List { kind, parent } => match req.method {
                "GET" => self.compute_list(*kind, parent, req),
                "POST" => self.compute_insert(*kind, parent, req, now),
                _ => Err(no()),
            },
            Target::Item { kind, key } => match req.method {
                "GET" => self.present(key).map(Reply::ok).ok_or_else(|| ApiError::compute_not_found(key)),
                "DELETE" => self.compute_delete(*kind, key, req, now),
                "PATCH" if *kind != Kind::Address => self.compute_change(*kind, key, req, now, false),
                "PUT" if matches!(kind, Kind::Firewall | Kind::Router) => {
                    self.compute_change(*kind, key, req, now, true)
                }
                _ => Err(no()),
            },
            Target::Verb { kind: Kind::Address, key, verb } if verb == "setLabels" && req.method == "POST" => {
                self.set_address_labels(key, req, now)
            }
            Target::Verb { verb, .. } => Err(ApiError::legacy(
                501,
                "notImplemented",
                format!("The emulator does not implement the compute method '{verb}'."),
            )),
            Target::Operation { key, wait } => match (req.method, wait) {
                ("GET", false) | ("POST", true) => {
                    let done = self.ops.get(key).filter(|o| o.api == Api::Compute).map(|o| o.done);
                    let Some(done) = done else { return Err(ApiError::compute_not_found(key)) };
                    let mut r = Reply::ok(self.render_compute_op(key, now, false).expect("checked above"));
                    if *wait && !done {
                        r.wait = Some(key.clone());
                    }
                    Ok(r)
                }
                _ => Err(no()),
            },
            Target::Operations { .. } | Target::ServerConfig { .. } | Target::Unknown => Err(no()),
        }
    }

    // ---- operations -------------------------------------------------------------------------

    /// A compute operation document as it is at `now`.
    pub(crate) fn render_compute_op(&self, key: &str, now: Instant, fresh: bool) -> Option<Value> {
        let op = self.ops.get(key)?;
        let status = State::op_status(op, now, fresh);
        let mut v = json!({
            "kind": "compute#operation",
            "id": op.id,
            "name": op.name,
            "operationType": op.op_type,
            "targetLink": self.compute_link(&op.target),
            "status": status,
            "user": "emulator@matih-gcp-emulator.invalid",
            "progress": if op.done { 100 } else { 0 },
            "insertTime": op.start,
            "selfLink": self.compute_link(key),
        });
        if status != "PENDING" {
            v["startTime"] = json!(op.start);
        }
        if let Some(id) = &op.target_id {
            v["targetId"] = json!(id);
        }
        if let Some(r) = &op.request_id {
            v["clientOperationId"] = json!(r);
        }
        if let Some(i) = key.find("/regions/") {
            let region = key[i + 9..].split('/').next().unwrap_or_default();
            v["region"] = json!(self.compute_link(&format!("projects/{}/regions/{region}", project_of(key))));
        }
        if op.done {
            v["endTime"] = json!(op.end.clone().unwrap_or_default());
            if let Some(f) = &op.failure {
                let http = state::op_error_http(f);
                v["error"] = json!({"errors": [{"code": f.code, "message": f.message}]});
                v["httpErrorStatusCode"] = json!(http);
                v["httpErrorMessage"] = json!(error::http_phrase(http));
            }
        }
        Some(v)
    }

    /// An earlier operation with this `requestId` (answered as it is now), or `None`.
    fn replayed(&self, project: &str, req: &Req, now: Instant) -> Result<Option<Reply>, ApiError> {
        let Some(rid) = req.param("requestId") else { return Ok(None) };
        if !is_uuid(rid) {
            return Err(ApiError::bad_field(
                "requestId",
                rid,
                "The request ID must be a valid UUID with the exception that zero UUID is not supported.",
            ));
        }
        Ok(self
            .request_ids
            .get(&(project.to_string(), rid.to_string()))
            .and_then(|k| self.render_compute_op(k, now, false))
            .map(Reply::ok))
    }

    /// Starts a compute operation on `target` (in `scope`, `projects/p/global` or
    /// `projects/p/regions/r`) and answers with it.
    #[allow(clippy::too_many_arguments)] // the operation's parts, each used once
    fn compute_op(
        &mut self,
        scope: &str,
        kind: Kind,
        target: &str,
        op_type: &str,
        work: Work,
        failure: Option<OpFailure>,
        req: &Req,
        now: Instant,
    ) -> Reply {
        let key = match failure {
            Some(f) => self.start_op_with(Api::Compute, scope, kind, target, op_type, work, Some(f), now),
            None => self.start_op(Api::Compute, scope, kind, target, op_type, work, now),
        };
        if let Some(rid) = req.param("requestId") {
            self.request_ids.insert((project_of(scope).to_string(), rid.to_string()), key.clone());
            if let Some(op) = self.ops.get_mut(&key) {
                op.request_id = Some(rid.to_string());
            }
        }
        Reply::ok(self.render_compute_op(&key, now, true).expect("just started"))
    }

    /// The scope operations on a resource live in: `projects/p/global` or `projects/p/regions/r`.
    fn scope_of(key: &str) -> String {
        let segs: Vec<&str> = key.split('/').collect();
        segs[..segs.len() - 2].join("/")
    }

    // ---- references -------------------------------------------------------------------------

    /// The key of a referenced resource that must exist and not be being created or deleted.
    fn require(&self, key: &str) -> Result<(), ApiError> {
        if !self.entries.contains_key(key) {
            return Err(ApiError::compute_not_found(key));
        }
        if self.in_flight(key).is_some_and(|o| matches!(o.work, Work::Insert | Work::Delete)) {
            return Err(ApiError::not_ready(key));
        }
        Ok(())
    }

    /// A network reference (URL, partial path or bare name) as a key.
    fn network_ref(project: &str, s: &str) -> String {
        link_key(project, s).unwrap_or_else(|| format!("projects/{project}/global/networks/{s}"))
    }

    /// A regional reference (subnetwork, address) as a key, bare names in `region`.
    fn regional_ref(project: &str, region: &str, coll: &str, s: &str) -> String {
        link_key(project, s).unwrap_or_else(|| format!("projects/{project}/regions/{region}/{coll}/{s}"))
    }

    // ---- list -------------------------------------------------------------------------------

    fn compute_list(&self, kind: Kind, parent: &str, req: &Req) -> Result<Reply, ApiError> {
        let filter = Filter::parse(req.param("filter").unwrap_or_default()).map_err(|e| ApiError::invalid(e.0))?;
        let mut items: Vec<Value> = self
            .keys_under(kind, parent)
            .iter()
            .filter_map(|k| self.present(k))
            .filter(|v| filter.matches(v))
            .collect();
        match req.param("orderBy") {
            None | Some("name") => {}
            Some("creationTimestamp desc") => {
                items.sort_by(|a, b| b["creationTimestamp"].as_str().cmp(&a["creationTimestamp"].as_str()));
            }
            Some(o) => return Err(ApiError::bad_field("orderBy", o, "The emulator orders by 'name' only.")),
        }
        let (page, next) = self.page(items, req, Api::Compute, "maxResults", 500)?;
        let coll = format!("{parent}/{}", collection(kind));
        let mut out = json!({
            "kind": format!("{}List", kind.compute_kind()),
            "id": coll,
            "selfLink": self.compute_link(&coll),
        });
        if !page.is_empty() {
            out["items"] = json!(page);
        }
        if let Some(n) = next {
            out["nextPageToken"] = json!(n);
        }
        Ok(Reply::ok(out))
    }

    // ---- insert -----------------------------------------------------------------------------

    fn compute_insert(&mut self, kind: Kind, parent: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let project = project_of(parent).to_string();
        if let Some(r) = self.replayed(&project, req, now)? {
            return Ok(r);
        }
        let body = req.json(Api::Compute)?;
        let name = str_of(&body, "name").ok_or_else(|| ApiError::required("resource.name"))?.to_string();
        if !rfc1035(&name, 63) {
            return Err(ApiError::bad_field("resource.name", &name, NAME_RULE));
        }
        let key = format!("{parent}/{}/{name}", collection(kind));
        if self.entries.contains_key(&key) {
            return Err(ApiError::compute_exists(&key));
        }
        let region = parent.strip_prefix(&format!("projects/{project}/regions/")).map(String::from);
        let mut doc = match kind {
            Kind::Network => self.network_doc(&body)?,
            Kind::Subnetwork => self.subnetwork_doc(&key, &body, None)?,
            Kind::Firewall => self.firewall_doc(&project, &body, None)?,
            Kind::Router => self.router_doc(&key, &body)?,
            _ => self.address_doc(&key, &body)?,
        };
        doc["kind"] = json!(kind.compute_kind());
        doc["id"] = json!(self.next_id());
        doc["creationTimestamp"] = json!(now_rfc3339());
        doc["name"] = json!(name);
        doc["selfLink"] = json!(self.compute_link(&key));
        if let Some(r) = &region {
            doc["region"] = json!(self.compute_link(&format!("projects/{project}/regions/{r}")));
        }
        if kind == Kind::Network {
            doc["selfLinkWithId"] = json!(
                self.compute_link(&format!("projects/{project}/global/networks/{}", doc["id"].as_str().unwrap_or("")))
            );
        }
        self.store(kind, &key, doc, now);
        if kind == Kind::Network && body["autoCreateSubnetworks"] == json!(true) {
            self.auto_subnets(&project, &key, &name, now);
        }
        Ok(self.compute_op(parent, kind, &key, "insert", Work::Insert, None, req, now))
    }

    /// An auto-mode network's subnetworks, one per region of [`AUTO_SUBNETS`], named as it is.
    fn auto_subnets(&mut self, project: &str, network: &str, name: &str, now: Instant) {
        for (region, range) in AUTO_SUBNETS {
            let key = format!("projects/{project}/regions/{region}/subnetworks/{name}");
            let c = Cidr::parse(range).expect("a valid constant");
            let doc = json!({
                "kind": "compute#subnetwork",
                "id": self.next_id(),
                "creationTimestamp": now_rfc3339(),
                "name": name,
                "network": self.compute_link(network),
                "ipCidrRange": range,
                "gatewayAddress": c.nth(1).map(|ip| ip.to_string()),
                "region": self.compute_link(&format!("projects/{project}/regions/{region}")),
                "privateIpGoogleAccess": false,
                "purpose": "PRIVATE",
                "stackType": "IPV4_ONLY",
                "fingerprint": random_fingerprint(),
                "selfLink": self.compute_link(&key),
            });
            self.store(Kind::Subnetwork, &key, doc, now);
        }
    }

    fn network_doc(&self, body: &Value) -> Result<Value, ApiError> {
        let mut doc = body.clone();
        if body.get("IPv4Range").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad_field(
                "resource.IPv4Range",
                body["IPv4Range"].as_str().unwrap_or_default(),
                "Legacy networks are not supported; create a VPC network with autoCreateSubnetworks.",
            ));
        }
        if !body["autoCreateSubnetworks"].is_boolean() {
            return Err(ApiError::bad_field(
                "resource.autoCreateSubnetworks",
                "",
                "Legacy networks are not supported; set autoCreateSubnetworks to false for a custom-mode network \
                 (or true for auto mode).",
            ));
        }
        let mtu = body["mtu"].as_i64().unwrap_or(1460);
        if !(1300..=8896).contains(&mtu) {
            return Err(ApiError::bad_field("resource.mtu", &mtu.to_string(), "Must be between 1300 and 8896."));
        }
        doc["mtu"] = json!(mtu);
        match body["routingConfig"]["routingMode"].as_str() {
            None => doc["routingConfig"]["routingMode"] = json!("REGIONAL"),
            Some("REGIONAL" | "GLOBAL") => {}
            Some(m) => {
                return Err(ApiError::bad_field(
                    "resource.routingConfig.routingMode",
                    m,
                    "Must be REGIONAL or GLOBAL.",
                ));
            }
        }
        if doc.get("networkFirewallPolicyEnforcementOrder").is_none() {
            doc["networkFirewallPolicyEnforcementOrder"] = json!("AFTER_CLASSIC_FIREWALL");
        }
        for k in ["subnetworks", "peerings", "gatewayIPv4"] {
            doc.as_object_mut().expect("an object").remove(k);
        }
        Ok(doc)
    }

    /// The ranges of every other subnetwork of `network`: (subnet key, range name or "", range).
    fn ranges_in(&self, network: &str, except: &str) -> Vec<(String, String, Cidr)> {
        let mut out = Vec::new();
        for k in self.keys_in_project(Kind::Subnetwork, project_of(network)) {
            if k == except || self.ref_of(&k, "network").as_deref() != Some(network) {
                continue;
            }
            let v = &self.entries[&k].value;
            if let Some(c) = v["ipCidrRange"].as_str().and_then(|s| Cidr::parse(s).ok()) {
                out.push((k.clone(), String::new(), c));
            }
            for r in array(&v["secondaryIpRanges"]) {
                if let Some(c) = r["ipCidrRange"].as_str().and_then(|s| Cidr::parse(s).ok()) {
                    out.push((k.clone(), r["rangeName"].as_str().unwrap_or_default().to_string(), c));
                }
            }
        }
        out
    }

    /// A subnetwork document from a request body (`old`: the stored one, for a patch).
    fn subnetwork_doc(&self, key: &str, body: &Value, old: Option<&Value>) -> Result<Value, ApiError> {
        let project = project_of(key);
        let region = key.split('/').nth(3).unwrap_or_default();
        let mut doc = body.clone();
        let net = str_of(body, "network").ok_or_else(|| ApiError::required("resource.network"))?;
        let network = State::network_ref(project, net);
        if old.is_none() {
            self.require(&network)?;
        }
        doc["network"] = json!(self.compute_link(&network));
        let range_s = str_of(body, "ipCidrRange").ok_or_else(|| ApiError::required("resource.ipCidrRange"))?;
        let primary = cidr("resource.ipCidrRange", range_s)?;
        if !(8..=29).contains(&primary.len()) {
            return Err(ApiError::bad_field(
                "resource.ipCidrRange",
                range_s,
                "The prefix length of a subnetwork range must be between /8 and /29.",
            ));
        }
        let auto = self.entries.get(&network).is_some_and(|n| n.value["autoCreateSubnetworks"] == json!(true));
        if auto && primary.overlaps(&Cidr::parse(AUTO_MODE_RANGE).expect("a valid constant")) {
            return Err(ApiError::invalid(format!(
                "Invalid IPCidrRange: {range_s} conflicts with the range {AUTO_MODE_RANGE} an auto-mode network \
                 keeps for its subnetworks."
            )));
        }
        let mut secondaries: Vec<(String, Cidr)> = Vec::new();
        for (i, r) in array(&body["secondaryIpRanges"]).iter().enumerate() {
            let field = format!("resource.secondaryIpRanges[{i}]");
            let name = str_of(r, "rangeName").ok_or_else(|| ApiError::required(&format!("{field}.rangeName")))?;
            if !rfc1035(name, 63) {
                return Err(ApiError::bad_field(&format!("{field}.rangeName"), name, NAME_RULE));
            }
            if secondaries.iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad_field(
                    &format!("{field}.rangeName"),
                    name,
                    "Secondary range names must be unique within a subnetwork.",
                ));
            }
            let s = str_of(r, "ipCidrRange").ok_or_else(|| ApiError::required(&format!("{field}.ipCidrRange")))?;
            let c = cidr(&format!("{field}.ipCidrRange"), s)?;
            if c.overlaps(&primary) {
                return Err(ApiError::invalid(format!(
                    "Invalid IPCidrRange: {s} of secondary range '{name}' conflicts with the primary range \
                     {primary} of the subnetwork."
                )));
            }
            if let Some((other, _)) = secondaries.iter().find(|(_, o)| o.overlaps(&c)) {
                return Err(ApiError::invalid(format!(
                    "Invalid IPCidrRange: {s} of secondary range '{name}' conflicts with secondary range '{other}' \
                     of the subnetwork."
                )));
            }
            secondaries.push((name.to_string(), c));
        }
        for (other, range_name, c) in self.ranges_in(&network, key) {
            let mine = std::iter::once(&primary).chain(secondaries.iter().map(|(_, c)| c));
            if let Some(m) = mine.into_iter().find(|m| m.overlaps(&c)) {
                let what =
                    if range_name.is_empty() { String::new() } else { format!(" (secondary range '{range_name}')") };
                return Err(ApiError::invalid(format!(
                    "Invalid IPCidrRange: {m} conflicts with existing subnetwork '{}'{what} in region '{}'.",
                    last_segment(&other),
                    other.split('/').nth(3).unwrap_or_default()
                )));
            }
        }
        doc["gatewayAddress"] = json!(primary.nth(1).map(|ip| ip.to_string()));
        for (k, d) in
            [("privateIpGoogleAccess", json!(false)), ("purpose", json!("PRIVATE")), ("stackType", json!("IPV4_ONLY"))]
        {
            if doc.get(k).is_none_or(Value::is_null) {
                doc[k] = d;
            }
        }
        doc["fingerprint"] = json!(random_fingerprint());
        let _ = region;
        Ok(doc)
    }

    fn firewall_doc(&self, project: &str, body: &Value, old: Option<&Value>) -> Result<Value, ApiError> {
        let mut doc = body.clone();
        let network = State::network_ref(project, str_of(body, "network").unwrap_or("global/networks/default"));
        if old.is_none() {
            self.require(&network)?;
        }
        doc["network"] = json!(self.compute_link(&network));
        let direction = str_of(body, "direction").unwrap_or("INGRESS");
        if direction != "INGRESS" && direction != "EGRESS" {
            return Err(ApiError::bad_field("resource.direction", direction, "Must be INGRESS or EGRESS."));
        }
        doc["direction"] = json!(direction);
        let priority = body["priority"].as_i64().unwrap_or(1000);
        if !(0..=65535).contains(&priority) {
            return Err(ApiError::bad_field(
                "resource.priority",
                &priority.to_string(),
                "Must be between 0 and 65535.",
            ));
        }
        doc["priority"] = json!(priority);
        let allowed = array(&body["allowed"]);
        let denied = array(&body["denied"]);
        if allowed.is_empty() == denied.is_empty() {
            return Err(ApiError::invalid(
                "Invalid value for field 'resource': exactly one of 'allowed' or 'denied' must be specified.",
            ));
        }
        let (field, rules) = if allowed.is_empty() { ("denied", &denied) } else { ("allowed", &allowed) };
        for (i, r) in rules.iter().enumerate() {
            let proto = str_of(r, "IPProtocol")
                .ok_or_else(|| ApiError::required(&format!("resource.{field}[{i}].IPProtocol")))?;
            let ports = array(&r["ports"]);
            let with_ports = ["tcp", "udp", "sctp", "6", "17", "132", "all"].contains(&proto);
            if !ports.is_empty() && !with_ports {
                return Err(ApiError::bad_field(
                    &format!("resource.{field}[{i}].ports"),
                    &ports.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
                    &format!("Ports may only be given for tcp, udp and sctp, not '{proto}'."),
                ));
            }
            for p in &ports {
                let s = p.as_str().unwrap_or_default();
                let valid = s.split_once('-').map_or_else(
                    || s.parse::<u16>().is_ok(),
                    |(a, b)| matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= b),
                );
                if !valid {
                    return Err(ApiError::bad_field(
                        &format!("resource.{field}[{i}].ports"),
                        s,
                        "Must be a port (0-65535) or a range of ports such as 1000-2000.",
                    ));
                }
            }
        }
        for f in ["sourceRanges", "destinationRanges"] {
            for (i, r) in array(&body[f]).iter().enumerate() {
                let s = r.as_str().unwrap_or_default();
                if Cidr::parse_loose(s).is_none() {
                    return Err(ApiError::bad_field(
                        &format!("resource.{f}[{i}]"),
                        s,
                        "Must be an IPv4 address or range.",
                    ));
                }
            }
        }
        let has = |f: &str| !array(&body[f]).is_empty();
        if direction == "EGRESS" && (has("sourceTags") || has("sourceServiceAccounts")) {
            return Err(ApiError::invalid(
                "Invalid value for field 'resource.sourceTags': source tags and service accounts apply to INGRESS \
                 rules only.",
            ));
        }
        if has("targetTags") && has("targetServiceAccounts") {
            return Err(ApiError::invalid("targetTags and targetServiceAccounts cannot be used together."));
        }
        if has("sourceTags") && has("sourceServiceAccounts") {
            return Err(ApiError::invalid("sourceTags and sourceServiceAccounts cannot be used together."));
        }
        if direction == "INGRESS" && !has("sourceRanges") && !has("sourceTags") && !has("sourceServiceAccounts") {
            doc["sourceRanges"] = json!(["0.0.0.0/0"]);
        }
        if direction == "EGRESS" && !has("destinationRanges") {
            doc["destinationRanges"] = json!(["0.0.0.0/0"]);
        }
        if doc.get("disabled").is_none_or(Value::is_null) {
            doc["disabled"] = json!(false);
        }
        if doc.get("logConfig").is_none_or(Value::is_null) {
            doc["logConfig"] = json!({"enable": false});
        }
        Ok(doc)
    }

    fn router_doc(&self, key: &str, body: &Value) -> Result<Value, ApiError> {
        let project = project_of(key);
        let region = key.split('/').nth(3).unwrap_or_default();
        let mut doc = body.clone();
        let net = str_of(body, "network").ok_or_else(|| ApiError::required("resource.network"))?;
        let network = State::network_ref(project, net);
        self.require(&network)?;
        doc["network"] = json!(self.compute_link(&network));
        let mut names: Vec<String> = Vec::new();
        let mut nats = Vec::new();
        for (i, nat) in array(&body["nats"]).iter().enumerate() {
            let mut nat = nat.clone();
            let f = format!("resource.nats[{i}]");
            let name = str_of(&nat, "name").ok_or_else(|| ApiError::required(&format!("{f}.name")))?.to_string();
            if !rfc1035(&name, 63) {
                return Err(ApiError::bad_field(&format!("{f}.name"), &name, NAME_RULE));
            }
            if names.contains(&name) {
                return Err(ApiError::bad_field(
                    &format!("{f}.name"),
                    &name,
                    "NAT names must be unique within a router.",
                ));
            }
            names.push(name);
            let alloc = str_of(&nat, "natIpAllocateOption")
                .ok_or_else(|| ApiError::required(&format!("{f}.natIpAllocateOption")))?;
            let ips = array(&nat["natIps"]);
            match alloc {
                "AUTO_ONLY" if !ips.is_empty() => {
                    return Err(ApiError::invalid(format!(
                        "Invalid value for field '{f}.natIps': NAT IPs may only be given with MANUAL_ONLY allocation."
                    )));
                }
                "AUTO_ONLY" => {}
                "MANUAL_ONLY" if ips.is_empty() => {
                    return Err(ApiError::invalid(format!(
                        "Invalid value for field '{f}.natIps': MANUAL_ONLY allocation needs at least one NAT IP."
                    )));
                }
                "MANUAL_ONLY" => {
                    let mut links = Vec::new();
                    for ip in &ips {
                        let k = State::regional_ref(project, region, "addresses", ip.as_str().unwrap_or_default());
                        self.require(&k)?;
                        if self.entries[&k].value["addressType"] != json!("EXTERNAL") {
                            return Err(ApiError::invalid(format!(
                                "Invalid value for field '{f}.natIps': '{k}' is not an external address."
                            )));
                        }
                        if k.split('/').nth(3) != Some(region) {
                            return Err(ApiError::invalid(format!(
                                "Invalid value for field '{f}.natIps': '{k}' is not in region '{region}'."
                            )));
                        }
                        links.push(json!(self.compute_link(&k)));
                    }
                    nat["natIps"] = json!(links);
                }
                other => {
                    return Err(ApiError::bad_field(
                        &format!("{f}.natIpAllocateOption"),
                        other,
                        "Must be AUTO_ONLY or MANUAL_ONLY.",
                    ));
                }
            }
            let source = str_of(&nat, "sourceSubnetworkIpRangesToNat")
                .ok_or_else(|| ApiError::required(&format!("{f}.sourceSubnetworkIpRangesToNat")))?;
            let subnets = array(&nat["subnetworks"]);
            match source {
                "ALL_SUBNETWORKS_ALL_IP_RANGES" | "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES" if !subnets.is_empty() => {
                    return Err(ApiError::invalid(format!(
                        "Invalid value for field '{f}.subnetworks': subnetworks may only be listed with \
                         LIST_OF_SUBNETWORKS."
                    )));
                }
                "ALL_SUBNETWORKS_ALL_IP_RANGES" | "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES" => {}
                "LIST_OF_SUBNETWORKS" if subnets.is_empty() => {
                    return Err(ApiError::invalid(format!(
                        "Invalid value for field '{f}.subnetworks': LIST_OF_SUBNETWORKS needs at least one subnetwork."
                    )));
                }
                "LIST_OF_SUBNETWORKS" => {
                    let mut out = Vec::new();
                    for (j, s) in subnets.iter().enumerate() {
                        let sf = format!("{f}.subnetworks[{j}]");
                        let mut s = s.clone();
                        let n = str_of(&s, "name").ok_or_else(|| ApiError::required(&format!("{sf}.name")))?;
                        let k = State::regional_ref(project, region, "subnetworks", n);
                        self.require(&k)?;
                        if self.ref_of(&k, "network").as_deref() != Some(network.as_str()) {
                            return Err(ApiError::invalid(format!(
                                "Invalid value for field '{sf}.name': '{k}' is not in the router's network."
                            )));
                        }
                        let kinds: Vec<String> = array(&s["sourceIpRangesToNat"])
                            .iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect();
                        if kinds.is_empty() {
                            return Err(ApiError::required(&format!("{sf}.sourceIpRangesToNat")));
                        }
                        for kind in &kinds {
                            if !["ALL_IP_RANGES", "PRIMARY_IP_RANGE", "LIST_OF_SECONDARY_IP_RANGES"]
                                .contains(&kind.as_str())
                            {
                                return Err(ApiError::bad_field(
                                    &format!("{sf}.sourceIpRangesToNat"),
                                    kind,
                                    "Must be ALL_IP_RANGES, PRIMARY_IP_RANGE or LIST_OF_SECONDARY_IP_RANGES.",
                                ));
                            }
                        }
                        let wanted: Vec<String> = array(&s["secondaryIpRangeNames"])
                            .iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect();
                        let listed = kinds.iter().any(|k| k == "LIST_OF_SECONDARY_IP_RANGES");
                        if listed && wanted.is_empty() {
                            return Err(ApiError::required(&format!("{sf}.secondaryIpRangeNames")));
                        }
                        if !listed && !wanted.is_empty() {
                            return Err(ApiError::invalid(format!(
                                "Invalid value for field '{sf}.secondaryIpRangeNames': names may only be given with \
                                 LIST_OF_SECONDARY_IP_RANGES."
                            )));
                        }
                        let have: Vec<String> = array(&self.entries[&k].value["secondaryIpRanges"])
                            .iter()
                            .filter_map(|r| r["rangeName"].as_str().map(String::from))
                            .collect();
                        if let Some(missing) = wanted.iter().find(|w| !have.contains(w)) {
                            return Err(ApiError::invalid(format!(
                                "Invalid value for field '{sf}.secondaryIpRangeNames': subnetwork '{k}' has no \
                                 secondary range '{missing}'."
                            )));
                        }
                        s["name"] = json!(self.compute_link(&k));
                        out.push(s);
                    }
                    nat["subnetworks"] = json!(out);
                }
                other => {
                    return Err(ApiError::bad_field(
                        &format!("{f}.sourceSubnetworkIpRangesToNat"),
                        other,
                        "Must be ALL_SUBNETWORKS_ALL_IP_RANGES, ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES or \
                         LIST_OF_SUBNETWORKS.",
                    ));
                }
            }
            nats.push(nat);
        }
        if body.get("nats").is_some() {
            doc["nats"] = json!(nats);
        }
        doc["fingerprint"] = json!(random_fingerprint());
        Ok(doc)
    }

    /// Internal addresses already taken in a subnetwork.
    fn taken_in(&self, subnet: &str) -> Vec<String> {
        self.keys_in_project(Kind::Address, project_of(subnet))
            .iter()
            .map(|k| &self.entries[k].value)
            .filter(|v| {
                v["subnetwork"].as_str().and_then(|s| link_key(project_of(subnet), s)).as_deref() == Some(subnet)
            })
            .filter_map(|v| v["address"].as_str().map(String::from))
            .collect()
    }

    fn address_doc(&mut self, key: &str, body: &Value) -> Result<Value, ApiError> {
        let project = project_of(key).to_string();
        let region = key.split('/').nth(3).unwrap_or_default().to_string();
        let mut doc = body.clone();
        check_labels("labels", &body["labels"], ApiError::invalid)?;
        let labels = if body["labels"].is_object() { body["labels"].clone() } else { json!({}) };
        doc["labelFingerprint"] = json!(label_fingerprint(&labels));
        let ty = str_of(body, "addressType").unwrap_or("EXTERNAL");
        doc["addressType"] = json!(ty);
        doc["ipVersion"] = json!("IPV4");
        doc.as_object_mut().expect("an object").remove("users");
        doc.as_object_mut().expect("an object").remove("status");
        match ty {
            "EXTERNAL" => {
                if body.get("subnetwork").is_some_and(|v| !v.is_null()) {
                    return Err(ApiError::invalid("An external address cannot name a subnetwork."));
                }
                let tier = str_of(body, "networkTier").unwrap_or("PREMIUM");
                if tier != "PREMIUM" && tier != "STANDARD" {
                    return Err(ApiError::bad_field("resource.networkTier", tier, "Must be PREMIUM or STANDARD."));
                }
                doc["networkTier"] = json!(tier);
                let ip = match str_of(body, "address") {
                    Some(a) => {
                        a.parse::<Ipv4Addr>()
                            .map_err(|_| ApiError::bad_field("resource.address", a, "Must be an IPv4 address."))?;
                        let taken = self.keys_in_project(Kind::Address, &project).iter().any(|k| {
                            self.entries[k].value["address"] == json!(a)
                                && self.entries[k].value["addressType"] == json!("EXTERNAL")
                        });
                        if taken {
                            return Err(ApiError::invalid(format!(
                                "IP address '{a}' is already being used by another resource."
                            )));
                        }
                        a.to_string()
                    }
                    None => {
                        let ip = crate::net::external_ip(self.ips_handed_out);
                        self.ips_handed_out += 1;
                        ip.to_string()
                    }
                };
                doc["address"] = json!(ip);
            }
            "INTERNAL" => {
                let s = str_of(body, "subnetwork").ok_or_else(|| ApiError::required("resource.subnetwork"))?;
                let subnet = State::regional_ref(&project, &region, "subnetworks", s);
                self.require(&subnet)?;
                doc["subnetwork"] = json!(self.compute_link(&subnet));
                let range = self.entries[&subnet].value["ipCidrRange"]
                    .as_str()
                    .and_then(|r| Cidr::parse(r).ok())
                    .expect("stored subnetworks have a valid range");
                let taken = self.taken_in(&subnet);
                let ip = match str_of(body, "address") {
                    Some(a) => {
                        let ip = a
                            .parse::<Ipv4Addr>()
                            .map_err(|_| ApiError::bad_field("resource.address", a, "Must be an IPv4 address."))?;
                        // The network and gateway addresses and the last two are the subnet's own.
                        let reserved = [
                            range.nth(0),
                            range.nth(1),
                            range.nth(range.size() as u32 - 2),
                            range.nth(range.size() as u32 - 1),
                        ];
                        if !range.contains_ip(ip) || reserved.contains(&Some(ip)) {
                            return Err(ApiError::invalid(format!(
                                "Requested internal IP '{a}' is outside the subnetwork's usable range {range}."
                            )));
                        }
                        if taken.iter().any(|t| t == a) {
                            return Err(ApiError::invalid(format!(
                                "IP address '{a}' is already being used by another resource."
                            )));
                        }
                        a.to_string()
                    }
                    None => (2..(range.size() as u32).saturating_sub(2))
                        .filter_map(|n| range.nth(n))
                        .map(|ip| ip.to_string())
                        .find(|ip| !taken.contains(ip))
                        .ok_or_else(|| {
                            ApiError::legacy(
                                400,
                                "ipSpaceExhausted",
                                format!("The subnetwork '{subnet}' has no free address left."),
                            )
                        })?,
                };
                doc["address"] = json!(ip);
                if doc.get("purpose").is_none_or(Value::is_null) {
                    doc["purpose"] = json!("GCE_ENDPOINT");
                }
            }
            other => return Err(ApiError::bad_field("resource.addressType", other, "Must be EXTERNAL or INTERNAL.")),
        }
        Ok(doc)
    }

    // ---- patch, update ----------------------------------------------------------------------

    /// PATCH (merge) or PUT (replace) of a network, subnetwork, firewall or router.
    fn compute_change(
        &mut self,
        kind: Kind,
        key: &str,
        req: &Req,
        now: Instant,
        replace: bool,
    ) -> Result<Reply, ApiError> {
        let project = project_of(key).to_string();
        if let Some(r) = self.replayed(&project, req, now)? {
            return Ok(r);
        }
        let body = req.json(Api::Compute)?;
        let old = self.entries.get(key).map(|e| e.value.clone()).ok_or_else(|| ApiError::compute_not_found(key))?;
        if self.in_flight(key).is_some() {
            return Err(ApiError::not_ready(key));
        }
        if let Some(n) = str_of(&body, "name")
            && n != old["name"].as_str().unwrap_or_default()
        {
            return Err(ApiError::bad_field("resource.name", n, "The name of a resource cannot be changed."));
        }
        // Fingerprints: required on a subnetwork patch, checked on a router's when sent.
        if matches!(kind, Kind::Subnetwork | Kind::Router) {
            match str_of(&body, "fingerprint") {
                None if kind == Kind::Subnetwork => return Err(ApiError::required("resource.fingerprint")),
                Some(f) if Some(f) != old["fingerprint"].as_str() => {
                    return Err(ApiError::condition_not_met(
                        "Supplied fingerprint does not match current fingerprint.",
                    ));
                }
                _ => {}
            }
        }
        let mut merged = if replace { body.clone() } else { old.clone() };
        if !replace {
            state::merge_patch(&mut merged, &body);
        }
        for k in ["kind", "id", "creationTimestamp", "selfLink", "name", "region", "selfLinkWithId"] {
            match old.get(k) {
                Some(v) => merged[k] = v.clone(),
                None => {
                    merged.as_object_mut().expect("an object").remove(k);
                }
            }
        }
        let same = |f: &str| {
            let a =
                merged[f].as_str().and_then(|s| link_key(&project, s)).or_else(|| merged[f].as_str().map(String::from));
            let b = old[f].as_str().and_then(|s| link_key(&project, s)).or_else(|| old[f].as_str().map(String::from));
            a == b || (f == "network" && merged[f].as_str().map(|s| State::network_ref(&project, s)) == b)
        };
        let mut doc = match kind {
            Kind::Network => {
                if merged["autoCreateSubnetworks"] != old["autoCreateSubnetworks"] {
                    return Err(ApiError::invalid(
                        "Invalid value for field 'resource.autoCreateSubnetworks': the mode of a network cannot be \
                         patched (use switchToCustomMode).",
                    ));
                }
                self.network_doc(&merged)?
            }
            Kind::Subnetwork => {
                if !same("network") {
                    return Err(ApiError::invalid("The network of a subnetwork cannot be changed."));
                }
                if merged["ipCidrRange"] != old["ipCidrRange"] {
                    return Err(ApiError::invalid(
                        "Invalid value for field 'resource.ipCidrRange': the primary range cannot be patched (use \
                         expandIpCidrRange).",
                    ));
                }
                self.check_secondary_ranges_kept(key, &old, &merged)?;
                self.subnetwork_doc(key, &merged, Some(&old))?
            }
            Kind::Firewall => {
                if merged.get("network").is_some_and(|v| !v.is_null()) && !same("network") {
                    return Err(ApiError::invalid("The network of a firewall cannot be changed."));
                }
                merged["network"] = old["network"].clone();
                self.firewall_doc(&project, &merged, Some(&old))?
            }
            _ => {
                if !same("network") {
                    return Err(ApiError::invalid("The network of a router cannot be changed."));
                }
                self.router_doc(key, &merged)?
            }
        };
        for k in ["kind", "id", "creationTimestamp", "selfLink", "region", "selfLinkWithId"] {
            if let Some(v) = old.get(k) {
                doc[k] = v.clone();
            }
        }
        doc["name"] = old["name"].clone();
        self.store(kind, key, doc, now);
        let scope = State::scope_of(key);
        Ok(self.compute_op(&scope, kind, key, if replace { "update" } else { "patch" }, Work::Update, None, req, now))
    }

    /// A patch may not drop a secondary range a cluster or a NAT uses.
    fn check_secondary_ranges_kept(&self, key: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
        let names = |v: &Value| -> Vec<String> {
            array(&v["secondaryIpRanges"]).iter().filter_map(|r| r["rangeName"].as_str().map(String::from)).collect()
        };
        let kept = names(new);
        for gone in names(old).into_iter().filter(|n| !kept.contains(n)) {
            if let Some(user) = self.range_user(key, &gone) {
                return Err(ApiError::in_use("subnetwork secondary range", &format!("{key} ({gone})"), &user));
            }
        }
        Ok(())
    }

    /// Who uses a secondary range of a subnetwork: a cluster, or a router's NAT.
    fn range_user(&self, subnet: &str, range: &str) -> Option<String> {
        let project = project_of(subnet);
        for c in self.keys_in_project(Kind::Cluster, project) {
            let v = &self.entries[&c].value;
            let on = v["networkConfig"]["subnetwork"].as_str() == Some(subnet);
            let p = &v["ipAllocationPolicy"];
            if on && (p["clusterSecondaryRangeName"] == json!(range) || p["servicesSecondaryRangeName"] == json!(range))
            {
                return Some(c);
            }
        }
        for r in self.keys_in_project(Kind::Router, project) {
            for nat in array(&self.entries[&r].value["nats"]) {
                for s in array(&nat["subnetworks"]) {
                    let here = s["name"].as_str().and_then(|n| link_key(project, n)).as_deref() == Some(subnet);
                    if here && array(&s["secondaryIpRangeNames"]).iter().any(|n| n == range) {
                        return Some(r.clone());
                    }
                }
            }
        }
        None
    }

    fn set_address_labels(&mut self, key: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let project = project_of(key).to_string();
        if let Some(r) = self.replayed(&project, req, now)? {
            return Ok(r);
        }
        let body = req.json(Api::Compute)?;
        let old = self.entries.get(key).map(|e| e.value.clone()).ok_or_else(|| ApiError::compute_not_found(key))?;
        let given = str_of(&body, "labelFingerprint").ok_or_else(|| ApiError::required("labelFingerprint"))?;
        if Some(given) != old["labelFingerprint"].as_str() {
            return Err(ApiError::condition_not_met(
                "Labels fingerprint either invalid or resource labels have changed",
            ));
        }
        check_labels("labels", &body["labels"], ApiError::invalid)?;
        let labels = if body["labels"].is_object() { body["labels"].clone() } else { json!({}) };
        if let Some(e) = self.entries.get_mut(key) {
            if labels.as_object().is_some_and(|m| m.is_empty()) {
                e.value.as_object_mut().expect("an object").remove("labels");
            } else {
                e.value["labels"] = labels.clone();
            }
            e.value["labelFingerprint"] = json!(label_fingerprint(&labels));
        }
        let scope = State::scope_of(key);
        Ok(self.compute_op(&scope, Kind::Address, key, "setLabels", Work::Update, None, req, now))
    }

    // ---- delete -----------------------------------------------------------------------------

    fn compute_delete(&mut self, kind: Kind, key: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let project = project_of(key).to_string();
        if let Some(r) = self.replayed(&project, req, now)? {
            return Ok(r);
        }
        if !self.entries.contains_key(key) {
            return Err(ApiError::compute_not_found(key));
        }
        if self.in_flight(key).is_some() {
            return Err(ApiError::not_ready(key));
        }
        let mut failure = None;
        match kind {
            Kind::Network => {
                // Compute accepts the delete and fails the operation.
                if let Some(user) = self.network_user(key) {
                    failure = Some(OpFailure {
                        code: "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE".into(),
                        message: format!("The network resource '{key}' is already being used by '{user}'"),
                    });
                }
            }
            Kind::Subnetwork => {
                let network = self.ref_of(key, "network").unwrap_or_default();
                let auto = self.entries.get(&network).is_some_and(|n| n.value["autoCreateSubnetworks"] == json!(true))
                    && last_segment(key) == last_segment(&network);
                if auto {
                    return Err(ApiError::legacy(
                        400,
                        "invalidResourceUsage",
                        "Invalid resource usage: 'Cannot delete auto subnetwork from an auto subnet mode network.'.",
                    ));
                }
                if let Some(user) = self.subnetwork_user(key) {
                    return Err(ApiError::in_use("subnetwork", key, &user));
                }
            }
            Kind::Address => {
                if let Some(user) = self.present(key).and_then(|v| v["users"][0].as_str().map(String::from)) {
                    let user = link_key(&project, &user).unwrap_or(user);
                    return Err(ApiError::in_use("address", key, &user));
                }
            }
            _ => {}
        }
        let scope = State::scope_of(key);
        Ok(self.compute_op(&scope, kind, key, "delete", Work::Delete, failure, req, now))
    }

    /// Removes an auto-mode network's own subnetworks (those named as it is).
    pub(crate) fn remove_auto_subnets(&mut self, network: &str) {
        let name = last_segment(network).to_string();
        let auto: Vec<String> = self
            .keys_in_project(Kind::Subnetwork, project_of(network))
            .into_iter()
            .filter(|s| last_segment(s) == name && self.ref_of(s, "network").as_deref() == Some(network))
            .collect();
        for s in auto {
            self.remove_tree(&s);
        }
    }

    /// The first resource that holds on to a network: a custom subnetwork, firewall, router or
    /// cluster.
    fn network_user(&self, key: &str) -> Option<String> {
        let project = project_of(key);
        let name = last_segment(key);
        for kind in [Kind::Subnetwork, Kind::Firewall, Kind::Router] {
            for k in self.keys_in_project(kind, project) {
                let auto = kind == Kind::Subnetwork && last_segment(&k) == name;
                if !auto && self.ref_of(&k, "network").as_deref() == Some(key) {
                    return Some(k);
                }
            }
        }
        self.keys_in_project(Kind::Cluster, project)
            .into_iter()
            .find(|c| self.entries[c].value["networkConfig"]["network"].as_str() == Some(key))
    }

    /// The first resource that holds on to a subnetwork: a cluster, a router's NAT, an internal
    /// address.
    pub(crate) fn subnetwork_user(&self, key: &str) -> Option<String> {
        let project = project_of(key);
        if let Some(c) = self
            .keys_in_project(Kind::Cluster, project)
            .into_iter()
            .find(|c| self.entries[c].value["networkConfig"]["subnetwork"].as_str() == Some(key))
        {
            return Some(c);
        }
        for r in self.keys_in_project(Kind::Router, project) {
            let uses = array(&self.entries[&r].value["nats"]).iter().any(|n| {
                array(&n["subnetworks"])
                    .iter()
                    .any(|s| s["name"].as_str().and_then(|x| link_key(project, x)).as_deref() == Some(key))
            });
            if uses {
                return Some(r);
            }
        }
        self.keys_in_project(Kind::Address, project)
            .into_iter()
            .find(|a| self.ref_of(a, "subnetwork").as_deref() == Some(key))
    }
}

/// A label set's fingerprint: compute's own for the empty set, a hash otherwise.
pub(crate) fn label_fingerprint(labels: &Value) -> String {
    if labels.as_object().is_none_or(|m| m.is_empty()) {
        EMPTY_LABELS_FINGERPRINT.to_string()
    } else {
        let sorted: std::collections::BTreeMap<_, _> = labels.as_object().expect("checked").iter().collect();
        fingerprint_of(&json!(sorted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_must_be_uuids() {
        assert!(is_uuid("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_uuid("00000000-0000-0000-0000-000000000000"));
        assert!(!is_uuid("not-a-uuid"));
        assert!(!is_uuid("0f8fad5bd9cb469fa16570867728950e"));
    }

    #[test]
    fn labels_follow_gce_rules() {
        let ok = |v: Value| check_labels("labels", &v, ApiError::invalid).is_ok();
        assert!(ok(json!({"matih-owner": "dev_1", "empty": ""})));
        assert!(ok(Value::Null));
        assert!(!ok(json!({"Upper": "x"})));
        assert!(!ok(json!({"1key": "x"})));
        assert!(!ok(json!({"k": "Bad Value"})));
        assert!(!ok(json!({"k": 1})));
        assert_eq!(label_fingerprint(&json!({})), EMPTY_LABELS_FINGERPRINT);
        assert_ne!(label_fingerprint(&json!({"a": "b"})), EMPTY_LABELS_FINGERPRINT);
    }
}
