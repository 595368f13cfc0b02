//! Cloud DNS v1: managed zones (by name or numeric id), their record sets, changes, and the
//! zone's IAM policy.
//!
//! A zone is created synchronously with its SOA and NS record sets (and change `0` that added
//! them). A change is atomic: every deletion must match an existing record set exactly (name,
//! type, TTL and data, in any order), every addition must be new, or nothing happens; each change
//! also bumps the SOA serial, as Cloud DNS does. Changes are `pending` for
//! [`crate::Options::operation_delay`], then `done`; record sets change at once. Not done: DNSSEC,
//! routing policies, forwarding/peering zones, response policies, reverse zones, record data
//! checks beyond A/AAAA addresses and single-valued CNAMEs, `clientOperationId`, and answering
//! DNS queries.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use serde_json::{Value, json};

use crate::compute::check_labels;
use crate::error::ApiError;
use crate::route::{Api, Kind, Target};
use crate::state::{Reply, Req, State, Work, array, now_rfc3339, project_of, rfc1035};

const TYPES: [&str; 19] = [
    "A", "AAAA", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "IPSECKEY", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF", "SRV",
    "SSHFP", "SVCB", "TLSA", "TXT",
];

type RecordSets = BTreeMap<(String, String), Value>;

fn not_found(param: &str, name: &str) -> ApiError {
    ApiError::legacy(404, "notFound", format!("The '{param}' resource named '{name}' does not exist."))
}

/// `rrdatas` as a sorted list, for comparisons that ignore order.
fn data_set(v: &Value) -> Vec<String> {
    let mut d: Vec<String> = array(&v["rrdatas"]).iter().filter_map(|s| s.as_str().map(String::from)).collect();
    d.sort();
    d
}

fn record(name: &str, ty: &str, ttl: i64, rrdatas: Vec<String>) -> Value {
    json!({"kind": "dns#resourceRecordSet", "name": name, "type": ty, "ttl": ttl, "rrdatas": rrdatas})
}

/// Whether `name` (with its trailing dot) is a valid DNS name.
fn dns_name_ok(name: &str) -> bool {
    let Some(body) = name.strip_suffix('.') else { return false };
    !body.is_empty()
        && body.len() <= 253
        && body.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*')
        })
}

impl State {
    pub(crate) fn dns(&mut self, req: &Req, t: &Target, now: Instant) -> Result<Reply, ApiError> {
        let no = || State::no_method(Api::Dns, req);
        match (t, req.method) {
            (Target::List { kind: Kind::ManagedZone, parent }, "GET") => self.list_zones(parent, req),
            (Target::List { kind: Kind::ManagedZone, parent }, "POST") => self.create_zone(parent, req, now),
            (Target::Item { kind: Kind::ManagedZone, key }, m) => {
                let zone = self.zone_key(key)?;
                match m {
                    "GET" => Ok(Reply::ok(self.present(&zone).expect("resolved"))),
                    "DELETE" => self.delete_zone(&zone),
                    "PATCH" | "PUT" => self.update_zone(&zone, req, m == "PUT"),
                    _ => Err(no()),
                }
            }
            (Target::Verb { kind: Kind::ManagedZone, key, verb }, "POST") => {
                let zone = self.zone_key(key)?;
                let body = req.json(Api::Dns)?;
                match verb.as_str() {
                    "getIamPolicy" => {
                        Ok(Reply::ok(self.get_policy(&zone, int(&body["options"]["requestedPolicyVersion"]))))
                    }
                    "setIamPolicy" => self.set_policy(&zone, &body, Api::Dns, now).map(Reply::ok),
                    v => Err(ApiError::legacy(
                        501,
                        "notImplemented",
                        format!("The emulator does not implement managedZones.{v}."),
                    )),
                }
            }
            (Target::List { kind: Kind::RecordSet, parent }, "GET") => {
                let zone = self.zone_key(parent)?;
                self.list_rrsets(&zone, req)
            }
            (Target::List { kind: Kind::RecordSet, parent }, "POST") => {
                let zone = self.zone_key(parent)?;
                let body = req.json(Api::Dns)?;
                let name = body["name"].as_str().unwrap_or_default().to_string();
                let ty = body["type"].as_str().unwrap_or_default().to_string();
                self.commit(&zone, vec![body], Vec::new(), "entity.rrset", now)?;
                Ok(Reply::ok(self.entries[&rrset_key(&zone, &name, &ty)].value.clone()))
            }
            (Target::Item { kind: Kind::RecordSet, key }, m) => {
                let (zone, name, ty) = self.split_rrset(key)?;
                let k = rrset_key(&zone, &name, &ty);
                let existing = self.entries.get(&k).map(|e| e.value.clone());
                let missing = || not_found("parameters.name", &format!("{name} ({ty})"));
                match m {
                    "GET" => existing.map(Reply::ok).ok_or_else(missing),
                    "DELETE" => {
                        let old = existing.ok_or_else(missing)?;
                        self.commit(&zone, Vec::new(), vec![old], "entity.rrset", now)?;
                        Ok(Reply::ok(json!({})))
                    }
                    "PATCH" => {
                        let old = existing.ok_or_else(missing)?;
                        let mut new = req.json(Api::Dns)?;
                        for (f, v) in [("name", &name), ("type", &ty)] {
                            match new[f].as_str() {
                                None | Some("") => new[f] = json!(v),
                                Some(given) if given != v => {
                                    return Err(ApiError::invalid(format!(
                                        "Invalid value for 'entity.rrset.{f}': '{given}' differs from the path."
                                    )));
                                }
                                Some(_) => {}
                            }
                        }
                        if new.get("ttl").is_none_or(Value::is_null) {
                            new["ttl"] = old["ttl"].clone();
                        }
                        self.commit(&zone, vec![new], vec![old], "entity.rrset", now)?;
                        Ok(Reply::ok(self.entries[&k].value.clone()))
                    }
                    _ => Err(no()),
                }
            }
            (Target::List { kind: Kind::Change, parent }, "GET") => {
                let zone = self.zone_key(parent)?;
                let mut changes: Vec<Value> = self
                    .keys_under(Kind::Change, &format!("{zone}/changes"))
                    .iter()
                    .map(|k| self.entries[k].value.clone())
                    .collect();
                changes.sort_by_key(|c| int(&c["id"]).unwrap_or(0));
                if req.param("sortOrder") == Some("descending") {
                    changes.reverse();
                }
                let (page, next) = self.page(changes, req, Api::Dns, "maxResults", 1000)?;
                let mut out = json!({"kind": "dns#changesListResponse", "changes": page});
                if let Some(n) = next {
                    out["nextPageToken"] = json!(n);
                }
                Ok(Reply::ok(out))
            }
            (Target::List { kind: Kind::Change, parent }, "POST") => {
                let zone = self.zone_key(parent)?;
                let body = req.json(Api::Dns)?;
                let (additions, deletions) = (array(&body["additions"]), array(&body["deletions"]));
                if additions.is_empty() && deletions.is_empty() {
                    return Err(ApiError::required("entity.change.additions"));
                }
                let change = self.commit(&zone, additions, deletions, "entity.change", now)?;
                Ok(Reply::ok(self.entries[&change].value.clone()))
            }
            (Target::Item { kind: Kind::Change, key }, "GET") => {
                let segs: Vec<&str> = key.split('/').collect();
                let zone = self.zone_key(&segs[..4].join("/"))?;
                let id = segs[5];
                self.entries
                    .get(&format!("{zone}/changes/{id}"))
                    .map(|e| Reply::ok(e.value.clone()))
                    .ok_or_else(|| not_found("parameters.changeId", id))
            }
            _ => Err(no()),
        }
    }

    /// The key of the zone a path names, by name or numeric id (`projects/p/managedZones/<z>`,
    /// possibly followed by more segments).
    fn zone_key(&self, path: &str) -> Result<String, ApiError> {
        let segs: Vec<&str> = path.split('/').collect();
        let (project, z) = (segs[1], segs[3]);
        let by_name = format!("projects/{project}/managedZones/{z}");
        if self.entries.get(&by_name).is_some_and(|e| e.kind == Kind::ManagedZone) {
            return Ok(by_name);
        }
        self.keys_in_project(Kind::ManagedZone, project)
            .into_iter()
            .find(|k| self.entries[k].kind == Kind::ManagedZone && self.entries[k].value["id"].as_str() == Some(z))
            .ok_or_else(|| not_found("parameters.managedZone", z))
    }

    fn split_rrset(&self, key: &str) -> Result<(String, String, String), ApiError> {
        let segs: Vec<&str> = key.split('/').collect();
        let zone = self.zone_key(&segs[..4].join("/"))?;
        Ok((zone, segs[5].to_string(), segs[6].to_string()))
    }

    fn list_zones(&self, parent: &str, req: &Req) -> Result<Reply, ApiError> {
        let want = req.param("dnsName").map(|d| if d.ends_with('.') { d.to_string() } else { format!("{d}.") });
        let zones: Vec<Value> = self
            .keys_under(Kind::ManagedZone, &format!("{parent}/managedZones"))
            .iter()
            .filter(|k| self.entries[*k].kind == Kind::ManagedZone)
            .map(|k| self.entries[k].value.clone())
            .filter(|z| want.as_deref().is_none_or(|d| z["dnsName"].as_str() == Some(d)))
            .collect();
        let (page, next) = self.page(zones, req, Api::Dns, "maxResults", 1000)?;
        let mut out = json!({"kind": "dns#managedZonesListResponse", "managedZones": page});
        if let Some(n) = next {
            out["nextPageToken"] = json!(n);
        }
        Ok(Reply::ok(out))
    }

    fn create_zone(&mut self, parent: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let body = req.json(Api::Dns)?;
        let project = project_of(parent).to_string();
        let name = body["name"].as_str().unwrap_or_default().to_string();
        if name.is_empty() {
            return Err(ApiError::required("entity.managedZone.name"));
        }
        if !rfc1035(&name, 63) {
            return Err(ApiError::invalid(format!("Invalid value for 'entity.managedZone.name': '{name}'")));
        }
        let dns_name = body["dnsName"].as_str().unwrap_or_default().to_string();
        if dns_name.is_empty() {
            return Err(ApiError::required("entity.managedZone.dnsName"));
        }
        if !dns_name_ok(&dns_name) {
            return Err(ApiError::invalid(format!("Invalid value for 'entity.managedZone.dnsName': '{dns_name}'")));
        }
        if body["description"].as_str().is_some_and(|d| d.len() > 1024) {
            return Err(ApiError::invalid(
                "Invalid value for 'entity.managedZone.description': longer than 1024 characters",
            ));
        }
        check_labels("entity.managedZone.labels", &body["labels"], ApiError::invalid)?;
        let key = format!("{parent}/managedZones/{name}");
        if self.entries.contains_key(&key) {
            return Err(ApiError::legacy(
                409,
                "alreadyExists",
                format!("The resource 'entity.managedZone' named '{name}' already exists"),
            ));
        }
        let visibility = body["visibility"].as_str().unwrap_or("public").to_string();
        let mut zone = body.clone();
        let name_servers: Vec<String> = match visibility.as_str() {
            "public" => {
                let letter = ["a", "b", "c", "d", "e"][(self.zones_made % 5) as usize];
                self.zones_made += 1;
                (1..=4).map(|n| format!("ns-cloud-{letter}{n}.googledomains.com.")).collect()
            }
            "private" => {
                for (i, n) in array(&body["privateVisibilityConfig"]["networks"]).iter().enumerate() {
                    let url = n["networkUrl"].as_str().unwrap_or_default();
                    let k = crate::state::link_key(&project, url).unwrap_or_default();
                    if self.entries.get(&k).is_none_or(|e| e.kind != Kind::Network) {
                        return Err(ApiError::invalid(format!(
                            "Invalid value for 'entity.managedZone.privateVisibilityConfig.networks[{i}].networkUrl': '{url}'"
                        )));
                    }
                }
                vec!["ns-gcp-private.googledomains.com.".to_string()]
            }
            other => {
                return Err(ApiError::invalid(format!("Invalid value for 'entity.managedZone.visibility': '{other}'")));
            }
        };
        zone["kind"] = json!("dns#managedZone");
        zone["id"] = json!(self.next_id());
        zone["creationTime"] = json!(now_rfc3339());
        zone["visibility"] = json!(visibility);
        zone["nameServers"] = json!(name_servers);
        if zone["description"].is_null() {
            zone["description"] = json!("");
        }
        if visibility == "public" && zone["dnssecConfig"].is_null() {
            zone["dnssecConfig"] = json!({"kind": "dns#managedZoneDnsSecConfig", "state": "off"});
        }
        self.store(Kind::ManagedZone, &key, zone.clone(), now);
        let soa = record(
            &dns_name,
            "SOA",
            21600,
            vec![format!("{} cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300", name_servers[0])],
        );
        let ns = record(&dns_name, "NS", 21600, name_servers);
        self.store(Kind::RecordSet, &rrset_key(&key, &dns_name, "SOA"), soa.clone(), now);
        self.store(Kind::RecordSet, &rrset_key(&key, &dns_name, "NS"), ns.clone(), now);
        let change = json!({"kind": "dns#change", "id": "0", "startTime": now_rfc3339(), "status": "done",
            "additions": [soa, ns]});
        self.store(Kind::Change, &format!("{key}/changes/0"), change, now);
        Ok(Reply::ok(zone))
    }

    fn delete_zone(&mut self, zone: &str) -> Result<Reply, ApiError> {
        let apex = self.entries[zone].value["dnsName"].as_str().unwrap_or_default().to_string();
        let extra = self.keys_under(Kind::RecordSet, &format!("{zone}/rrsets")).into_iter().any(|k| {
            let v = &self.entries[&k].value;
            !(v["name"] == json!(apex) && (v["type"] == json!("SOA") || v["type"] == json!("NS")))
        });
        if extra {
            return Err(ApiError::legacy(
                400,
                "containerNotEmpty",
                format!(
                    "The resource named '{}' cannot be deleted because it is not empty",
                    zone.rsplit('/').next().unwrap_or_default()
                ),
            ));
        }
        self.remove_tree(zone);
        Ok(Reply::empty(204))
    }

    fn update_zone(&mut self, zone: &str, req: &Req, replace: bool) -> Result<Reply, ApiError> {
        let body = req.json(Api::Dns)?;
        let old = self.entries[zone].value.clone();
        for f in ["name", "dnsName", "visibility"] {
            if let Some(v) = body.get(f).filter(|v| !v.is_null())
                && *v != old[f]
            {
                return Err(ApiError::invalid(format!(
                    "Invalid value for 'entity.managedZone.{f}': it cannot be changed."
                )));
            }
        }
        check_labels("entity.managedZone.labels", &body["labels"], ApiError::invalid)?;
        let mut new = old.clone();
        let mutable = ["description", "labels", "privateVisibilityConfig", "dnssecConfig", "cloudLoggingConfig"];
        for f in mutable {
            match body.get(f) {
                Some(v) if !v.is_null() => new[f] = v.clone(),
                _ if replace && f != "description" => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove(f);
                    }
                }
                _ => {}
            }
        }
        if let Some(e) = self.entries.get_mut(zone) {
            e.value = new.clone();
        }
        let id = self.next_id();
        Ok(Reply::ok(json!({
            "kind": "dns#operation",
            "id": id,
            "startTime": now_rfc3339(),
            "status": "done",
            "type": "UPDATE",
            "user": "emulator@matih-gcp-emulator.invalid",
            "zoneContext": {"oldValue": old, "newValue": new},
        })))
    }

    fn list_rrsets(&self, zone: &str, req: &Req) -> Result<Reply, ApiError> {
        let name = req.param("name");
        let ty = req.param("type");
        if ty.is_some() && name.is_none() {
            return Err(ApiError::invalid("Invalid value for 'parameters.type': the type filter needs a name filter."));
        }
        let sets: Vec<Value> = self
            .keys_under(Kind::RecordSet, &format!("{zone}/rrsets"))
            .iter()
            .map(|k| self.entries[k].value.clone())
            .filter(|v| name.is_none_or(|n| v["name"].as_str() == Some(n)))
            .filter(|v| ty.is_none_or(|t| v["type"].as_str() == Some(t)))
            .collect();
        let (page, next) = self.page(sets, req, Api::Dns, "maxResults", 1000)?;
        let mut out = json!({"kind": "dns#resourceRecordSetsListResponse", "rrsets": page});
        if let Some(n) = next {
            out["nextPageToken"] = json!(n);
        }
        Ok(Reply::ok(out))
    }

    /// A record set to add, checked and completed (`kind`, default TTL).
    fn checked_addition(apex: &str, v: &Value, field: &str) -> Result<Value, ApiError> {
        let bad = |what: &str, val: &str| ApiError::invalid(format!("Invalid value for '{field}.{what}': '{val}'"));
        let name = v["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::required(&format!("{field}.name")));
        }
        if !dns_name_ok(name) {
            return Err(bad("name", name));
        }
        if name != apex && !name.ends_with(&format!(".{apex}")) {
            return Err(ApiError::invalid(format!(
                "The resource record set '{field}' is invalid because the DNS name '{name}' is not within the zone \
                 '{apex}'."
            )));
        }
        let ty = v["type"].as_str().unwrap_or_default();
        if ty.is_empty() {
            return Err(ApiError::required(&format!("{field}.type")));
        }
        if !TYPES.contains(&ty) {
            return Err(bad("type", ty));
        }
        let ttl = match &v["ttl"] {
            Value::Null => 300,
            t => t
                .as_i64()
                .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
                .filter(|t| *t >= 0)
                .ok_or_else(|| bad("ttl", &t.to_string()))?,
        };
        let data: Vec<String> = array(&v["rrdatas"]).iter().filter_map(|s| s.as_str().map(String::from)).collect();
        if data.is_empty() {
            return Err(ApiError::required(&format!("{field}.rrdata")));
        }
        for (i, d) in data.iter().enumerate() {
            let ok = match ty {
                "A" => d.parse::<Ipv4Addr>().is_ok(),
                "AAAA" => d.parse::<Ipv6Addr>().is_ok(),
                "CNAME" | "NS" | "PTR" => dns_name_ok(d),
                _ => !d.is_empty(),
            };
            if !ok {
                return Err(bad(&format!("rrdata[{i}]"), d));
            }
        }
        if ty == "CNAME" && data.len() != 1 {
            return Err(ApiError::invalid(format!("Invalid value for '{field}.rrdata': a CNAME holds one name.")));
        }
        if ty == "CNAME" && name == apex {
            return Err(ApiError::invalid(format!("Invalid value for '{field}.type': no CNAME at the zone apex.")));
        }
        if ty == "SOA" && name != apex {
            return Err(ApiError::invalid(format!("Invalid value for '{field}.name': an SOA belongs at the apex.")));
        }
        let mut out = v.clone();
        out["kind"] = json!("dns#resourceRecordSet");
        out["ttl"] = json!(ttl);
        out["rrdatas"] = json!(data);
        Ok(out)
    }

    /// Applies deletions then additions to a zone, all or nothing, and records the change (with
    /// the SOA serial bump); returns the change's key.
    fn commit(
        &mut self,
        zone: &str,
        additions: Vec<Value>,
        deletions: Vec<Value>,
        field: &str,
        now: Instant,
    ) -> Result<String, ApiError> {
        let apex = self.entries[zone].value["dnsName"].as_str().unwrap_or_default().to_string();
        let mut sets: RecordSets = self
            .keys_under(Kind::RecordSet, &format!("{zone}/rrsets"))
            .iter()
            .map(|k| {
                let v = &self.entries[k].value;
                (
                    (
                        v["name"].as_str().unwrap_or_default().to_string(),
                        v["type"].as_str().unwrap_or_default().to_string(),
                    ),
                    v.clone(),
                )
            })
            .collect();
        let is_change = field == "entity.change";
        let mut deleted = Vec::new();
        for (i, d) in deletions.iter().enumerate() {
            let f = if is_change { format!("{field}.deletions[{i}]") } else { field.to_string() };
            let k = (
                d["name"].as_str().unwrap_or_default().to_string(),
                d["type"].as_str().unwrap_or_default().to_string(),
            );
            let Some(cur) = sets.get(&k) else {
                return Err(not_found(&f, &format!("{} ({})", k.0, k.1)));
            };
            let ttl_same = d["ttl"].is_null() && !is_change || d["ttl"].as_i64() == cur["ttl"].as_i64();
            if !ttl_same || data_set(d) != data_set(cur) {
                return Err(ApiError::condition_not_met(format!("Precondition not met for '{f}'")));
            }
            deleted.push(sets.remove(&k).expect("checked above"));
        }
        let mut added = Vec::new();
        for (i, a) in additions.iter().enumerate() {
            let f = if is_change { format!("{field}.additions[{i}]") } else { field.to_string() };
            let a = Self::checked_addition(&apex, a, &f)?;
            let k = (
                a["name"].as_str().unwrap_or_default().to_string(),
                a["type"].as_str().unwrap_or_default().to_string(),
            );
            if sets.contains_key(&k) {
                return Err(ApiError::legacy(
                    409,
                    "alreadyExists",
                    format!("The resource '{f}' named '{} ({})' already exists", k.0, k.1),
                ));
            }
            sets.insert(k, a.clone());
            added.push(a);
        }
        for ty in ["SOA", "NS"] {
            if !sets.contains_key(&(apex.clone(), ty.to_string())) {
                return Err(ApiError::invalid(format!(
                    "The change would leave the zone without its {ty} record set at '{apex}'."
                )));
            }
        }
        let mut names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (n, t) in sets.keys() {
            names.entry(n).or_default().push(t);
        }
        if let Some((n, _)) = names.iter().find(|(_, ts)| ts.len() > 1 && ts.contains(&"CNAME")) {
            return Err(ApiError::legacy(
                400,
                "cnameResourceRecordSetConflict",
                format!("The resource record set '{n}' has a CNAME beside records of other types."),
            ));
        }
        // Cloud DNS bumps the SOA serial with every change that does not set the SOA itself.
        let soa_key = (apex.clone(), "SOA".to_string());
        if !added.iter().any(|a| a["type"] == json!("SOA")) {
            let old = sets[&soa_key].clone();
            let mut new = old.clone();
            if let Some(d) = old["rrdatas"][0].as_str() {
                let mut parts: Vec<String> = d.split_whitespace().map(String::from).collect();
                if let Some(serial) = parts.get(2).and_then(|s| s.parse::<u64>().ok()) {
                    parts[2] = (serial + 1).to_string();
                }
                new["rrdatas"] = json!([parts.join(" ")]);
            }
            sets.insert(soa_key, new.clone());
            deleted.push(old);
            added.push(new);
        }
        // Commit.
        for k in self.keys_under(Kind::RecordSet, &format!("{zone}/rrsets")) {
            self.entries.remove(&k);
        }
        for ((n, t), v) in sets {
            self.store(Kind::RecordSet, &rrset_key(zone, &n, &t), v, now);
        }
        let next = self
            .keys_under(Kind::Change, &format!("{zone}/changes"))
            .iter()
            .filter_map(|k| k.rsplit('/').next().and_then(|id| id.parse::<u64>().ok()))
            .max()
            .map_or(0, |m| m + 1);
        let key = format!("{zone}/changes/{next}");
        let change = json!({
            "kind": "dns#change",
            "id": next.to_string(),
            "startTime": now_rfc3339(),
            "status": "pending",
            "additions": added,
            "deletions": deleted,
        });
        self.store(Kind::Change, &key, change, now);
        self.start_op_with(Api::Dns, zone, Kind::Change, &key, "change", Work::DnsChange, None, now);
        Ok(key)
    }
}

/// `<zone>/rrsets/<name>/<type>`.
fn rrset_key(zone: &str, name: &str, ty: &str) -> String {
    format!("{zone}/rrsets/{name}/{ty}")
}

/// An int that may arrive as a JSON number or string.
pub(crate) fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_additions() {
        assert!(dns_name_ok("matih.example.com.") && !dns_name_ok("matih.example.com") && !dns_name_ok("."));
        let apex = "example.com.";
        let ok = |v: Value| State::checked_addition(apex, &v, "x").is_ok();
        assert!(ok(json!({"name": "www.example.com.", "type": "A", "ttl": 60, "rrdatas": ["1.2.3.4"]})));
        assert!(!ok(json!({"name": "www.other.com.", "type": "A", "ttl": 60, "rrdatas": ["1.2.3.4"]})));
        assert!(!ok(json!({"name": "www.example.com.", "type": "A", "ttl": 60, "rrdatas": ["1.2.3"]})));
        assert!(!ok(json!({"name": "www.example.com.", "type": "BOGUS", "ttl": 60, "rrdatas": ["x"]})));
        assert!(!ok(json!({"name": "example.com.", "type": "CNAME", "ttl": 60, "rrdatas": ["a.b."]})));
        assert!(!ok(json!({"name": "www.example.com.", "type": "TXT", "ttl": 60, "rrdatas": []})));
        let filled =
            State::checked_addition(apex, &json!({"name": "a.example.com.", "type": "TXT", "rrdatas": ["\"x\""]}), "x")
                .unwrap();
        assert_eq!(filled["ttl"], 300);
    }
}
