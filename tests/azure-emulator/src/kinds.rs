//! Per-kind writes: what each resource type validates on PUT and DELETE, the server-set fields its
//! answers carry, and whether the write is a long-running operation.
//!
//! Validation covers what the tool can get wrong (address ranges, references, immutable fields,
//! role assignment rules), not the providers' full rulebooks: no name rules, quotas, VM sizes,
//! Kubernetes versions or region checks.

use std::collections::HashSet;
use std::time::Instant;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ArmError;
use crate::net::{Cidr, CidrError};
use crate::route::{self, Item, Kind, List, Route, Ty, key};
use crate::state::{Reply, Req, State, Work, new_etag, norm_location, now_rfc3339, state_of};

/// A self-signed CA certificate, only ever parsed: the kubeconfig's `certificate-authority-data`.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBcDCCARegAwIBAgIUCnuPxhIAzMTVtrWfKYmK71GQmYowCgYIKoZIzj0EAwIw
DTELMAkGA1UEAwwCY2EwIBcNMjYxMjAxMTYyNDA1WhgPMjEyNjExMDcxNjI0MDVa
MA0xCzAJBgNVBAMMAmNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAGYUoYyt
dRBkUQFCNQicDFxF+pQF+wnJR3mnDN0yQXv0eWrbwveAAc5Wpc3LiVAQcYP/IuZ/
faSDKHSwW3rrXaNTMFEwHQYDVR0OBBYEFJuTBbgR3UDJ4WII1+6QgTpHkp24MB8G
A1UdIwQYMBaAFJuTBbgR3UDJ4WII1+6QgTpHkp24MA8GA1UdEwEB/wQFMAMBAf8w
CgYIKoZIzj0EAwIDRwAwRAIgMvB8UXNb9nbJYJKfDHJ5xJ3E32c+H5faOW2kLL6i
Bp8CIFOxVEHUmNOc/AP/W2OQVniOOPaADvrroeXz3wHV9Vck
-----END CERTIFICATE-----
";

const PRINCIPAL_TYPE_HINT: &str = "If you are creating this principal and then immediately assigning a role, this \
     error might be related to a replication delay. In this case, set the role assignment principalType property to \
     a value, such as ServicePrincipal, User, or Group. See https://aka.ms/docs-principaltype";

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn invalid(message: impl Into<String>) -> ArmError {
    ArmError::invalid_content(message)
}

/// An optional JSON object field (absent or null → empty).
fn object(v: &Value, what: &str) -> Result<Map<String, Value>, ArmError> {
    match v {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m.clone()),
        _ => Err(invalid(format!("'{what}' must be an object."))),
    }
}

/// An optional JSON array field (absent or null → empty).
fn array(v: &Value, what: &str) -> Result<Vec<Value>, ArmError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => Ok(a.clone()),
        _ => Err(invalid(format!("'{what}' must be an array."))),
    }
}

fn cidr(s: &str, what: &str) -> Result<Cidr, ArmError> {
    Cidr::parse(s).map_err(|e| match e {
        CidrError::Malformed => ArmError::bad_request(
            "NetcfgInvalidIPAddressPrefix",
            format!("Value '{s}' of {what} is not a valid IPv4 address prefix."),
        ),
        CidrError::HostBits(should) => ArmError::bad_request(
            "InvalidCIDRNotation",
            format!(
                "The address prefix {s} in {what} has an invalid CIDR notation. For the given prefix length, \
                 the address prefix should be {should}."
            ),
        ),
    })
}

fn in_use_subnet(name: &str, user: &str) -> ArmError {
    ArmError::bad_request(
        "InUseSubnetCannotBeDeleted",
        format!(
            "Subnet {name} is in use by {user} and cannot be deleted. In order to delete the subnet, delete all \
             the resources within the subnet. See aka.ms/deletesubnet."
        ),
    )
}

/// Sets `key` in `m` if it is absent.
fn default(m: &mut Map<String, Value>, key: &str, v: Value) {
    m.entry(key.to_string()).or_insert(v);
}

impl State {
    pub(crate) fn put(&mut self, it: &Item, req: &Req, now: Instant) -> Result<Reply, ArmError> {
        let body = req.json()?;
        let k = key(&it.id);
        let existing = self.entries.get(&k).map(|e| e.value.clone());
        if it.ty.kind == Kind::RoleAssignment {
            return self.put_role_assignment(it, &body, existing, now);
        }
        if existing.as_ref().is_some_and(|v| state_of(v) == "Deleting") {
            let code =
                if it.ty.kind == Kind::Group { "ResourceGroupBeingDeleted" } else { "AnotherOperationInProgress" };
            return Err(ArmError::new(
                409,
                code,
                format!("{} is being deleted; no other operation is allowed on it.", it.id),
            ));
        }
        self.preconditions(existing.as_ref(), req)?;
        if !it.ty.tracked() {
            self.require_parent(&it.parent, it.rg.as_deref())?;
        }
        // Ids and names keep the casing of the first PUT.
        let old = existing.clone().unwrap_or(Value::Null);
        let mut doc = json!({
            "id": old["id"].as_str().unwrap_or(&it.id),
            "name": old["name"].as_str().unwrap_or(&it.name),
            "type": it.ty.answer,
        });
        if it.ty.tracked() {
            let loc = body["location"].as_str().filter(|l| !l.is_empty()).ok_or_else(|| {
                ArmError::bad_request("LocationRequired", "The location property is required for this definition.")
            })?;
            doc["location"] = json!(loc);
            match body.get("tags") {
                None | Some(Value::Null) => {}
                // Azure DNS keeps only tag names of letters, digits and `_`, and drops the others
                // without a word (the zone comes back without them).
                Some(Value::Object(t)) if it.ty.kind == Kind::Zone => doc["tags"] = Value::Object(dns_names_only(t)),
                Some(t @ Value::Object(_)) => doc["tags"] = t.clone(),
                Some(_) => return Err(invalid("'tags' must be an object of strings.")),
            }
        }
        let props = object(&body["properties"], "properties")?;
        let created = existing.is_none();
        match it.ty.kind {
            Kind::Group => {
                doc["properties"] = json!({"provisioningState": "Succeeded"});
                if let Some(m) = body.get("managedBy") {
                    doc["managedBy"] = m.clone();
                }
                self.store(it.ty, &it.id, &it.parent, doc.clone(), now);
                Ok(Reply::json(if created { 201 } else { 200 }, doc))
            }
            Kind::Vnet => self.put_vnet(it, doc, props, now),
            Kind::Subnet => self.put_subnet(it, props, &old, now),
            Kind::Nsg => {
                let mut p = props;
                let mut rules = Vec::new();
                for r in array(&p.get("securityRules").cloned().unwrap_or_default(), "securityRules")? {
                    let name = r["name"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| invalid("A security rule has no name."))?;
                    let mut rp = object(&r["properties"], "securityRules[].properties")?;
                    rp.insert("provisioningState".into(), json!("Succeeded"));
                    rules.push(json!({
                        "id": format!("{}/securityRules/{name}", doc["id"].as_str().unwrap_or_default()),
                        "name": name,
                        "etag": new_etag(true),
                        "type": "Microsoft.Network/networkSecurityGroups/securityRules",
                        "properties": rp,
                    }));
                }
                p.insert("securityRules".into(), json!(rules));
                p.remove("subnets");
                self.network_doc(&mut doc, p, &old);
                self.store(it.ty, &it.id, &it.parent, doc, now);
                Ok(self.provisioned(it, vec![key(&it.id)], created, now))
            }
            Kind::PublicIp => {
                let mut p = props;
                doc["sku"] =
                    body.get("sku").cloned().unwrap_or_else(|| json!({"name": "Standard", "tier": "Regional"}));
                default(&mut p, "publicIPAllocationMethod", json!("Static"));
                default(&mut p, "publicIPAddressVersion", json!("IPv4"));
                default(&mut p, "idleTimeoutInMinutes", json!(4));
                default(&mut p, "ipTags", json!([]));
                // The address is the provider's, handed out when the create completes, then kept.
                match old["properties"]["ipAddress"].as_str() {
                    Some(ip) => p.insert("ipAddress".into(), json!(ip)),
                    None => p.remove("ipAddress"),
                };
                self.network_doc(&mut doc, p, &old);
                self.store(it.ty, &it.id, &it.parent, doc, now);
                Ok(self.provisioned(it, vec![key(&it.id)], created, now))
            }
            Kind::Zone => {
                let mut p = props;
                default(&mut p, "zoneType", json!("Public"));
                p.remove("numberOfRecordSets");
                let name_servers = match old["properties"]["nameServers"].clone() {
                    Value::Null => {
                        self.zones_made += 1;
                        let n = (self.zones_made - 1) % 99 + 1;
                        json!([
                            format!("ns1-{n:02}.azure-dns.com."),
                            format!("ns2-{n:02}.azure-dns.net."),
                            format!("ns3-{n:02}.azure-dns.org."),
                            format!("ns4-{n:02}.azure-dns.info."),
                        ])
                    }
                    v => v,
                };
                p.insert("nameServers".into(), name_servers.clone());
                p.insert("maxNumberOfRecordSets".into(), json!(10000));
                p.insert("maxNumberOfRecordsPerRecordSet".into(), json!(20));
                doc["etag"] = json!(new_etag(false));
                doc["properties"] = Value::Object(p);
                let zone_id = doc["id"].as_str().unwrap_or_default().to_string();
                self.store(it.ty, &it.id, &it.parent, doc, now);
                if created {
                    let ns: Vec<Value> =
                        name_servers.as_array().into_iter().flatten().map(|n| json!({"nsdname": n})).collect();
                    let soa = json!({
                        "host": name_servers[0], "email": "azuredns-hostmaster.microsoft.com", "serialNumber": 1,
                        "refreshTime": 3600, "retryTime": 300, "expireTime": 2419200, "minimumTTL": 300,
                    });
                    for (t, ttl, field, records) in
                        [("NS", 172800, "NSRecords", json!(ns)), ("SOA", 3600, "SOARecord", soa)]
                    {
                        let ty = Ty::lookup(&format!("Microsoft.Network/dnsZones/{t}")).expect("a served record type");
                        let rec = self.record_doc(
                            ty,
                            &format!("{zone_id}/{t}/@"),
                            "@",
                            &zone_id,
                            json!({"TTL": ttl, field: records}),
                        );
                        self.store(ty, &format!("{zone_id}/{t}/@"), &zone_id, rec, now);
                    }
                }
                Ok(Reply::json(if created { 201 } else { 200 }, self.present(&key(&it.id)).expect("just stored")))
            }
            Kind::RecordSet => {
                self.check_record_set(it, &props)?;
                let zone = self.entries[&key(&it.parent)].value["id"].as_str().unwrap_or_default().to_string();
                let d = self.record_doc(
                    it.ty,
                    doc["id"].as_str().unwrap_or_default(),
                    &it.name,
                    &zone,
                    Value::Object(props),
                );
                self.store(it.ty, &it.id, &it.parent, d.clone(), now);
                Ok(Reply::json(if created { 201 } else { 200 }, d))
            }
            Kind::Cluster => self.put_cluster(it, doc, props, &body, &old, now),
            Kind::Pool => {
                let cluster = self.entries[&key(&it.parent)].value.clone();
                let service = self.service_cidr(&cluster["properties"]["networkProfile"])?;
                self.check_pool_subnets(&props, service.as_ref(), "")?;
                let mut p = props;
                default(&mut p, "mode", json!("User"));
                manual_count(&p, &old)?;
                let version = cluster["properties"]["kubernetesVersion"].as_str().unwrap_or_default().to_string();
                check_pool_version(&Value::Object(p.clone()), &version, &old, "")?;
                let d = pool_doc(&doc, p, &old, &version, created);
                self.store(it.ty, &it.id, &it.parent, d, now);
                Ok(self.provisioned(it, vec![key(&it.id)], created, now))
            }
            Kind::Identity => {
                let mut p = props;
                for (f, fresh) in
                    [("tenantId", self.opts.tenant_id.clone()), ("principalId", uuid()), ("clientId", uuid())]
                {
                    p.insert(f.into(), old["properties"].get(f).cloned().unwrap_or(json!(fresh)));
                }
                doc["properties"] = Value::Object(p);
                self.store(it.ty, &it.id, &it.parent, doc.clone(), now);
                Ok(Reply::json(if created { 201 } else { 200 }, doc))
            }
            Kind::Fic => {
                let issuer = props.get("issuer").and_then(Value::as_str).unwrap_or_default();
                if !issuer.starts_with("https://") {
                    return Err(invalid("properties.issuer must be an https URL."));
                }
                if props.get("subject").and_then(Value::as_str).is_none_or(str::is_empty) {
                    return Err(invalid("properties.subject is required."));
                }
                let audiences = array(props.get("audiences").unwrap_or(&Value::Null), "properties.audiences")?;
                if audiences.is_empty() || !audiences.iter().all(Value::is_string) {
                    return Err(invalid("properties.audiences must hold one audience."));
                }
                doc["properties"] = Value::Object(props);
                self.store(it.ty, &it.id, &it.parent, doc.clone(), now);
                Ok(Reply::json(if created { 201 } else { 200 }, doc))
            }
            Kind::RoleAssignment | Kind::RecordSets => unreachable!("handled above / never an item"),
        }
    }

    /// The answer to a write that became an operation: the resource (in its transient state) and
    /// an `Azure-AsyncOperation` to poll.
    fn provisioned(&mut self, it: &Item, keys: Vec<String>, created: bool, now: Instant) -> Reply {
        let loc = self.location_of(&keys[0]);
        let first = keys[0].clone();
        let op = self.start_op(it.ty, &it.sub, &loc, Work::Provision(keys), now);
        let mut r = Reply::json(if created { 201 } else { 200 }, self.present(&first).expect("just stored"));
        r.headers = self.op_headers(&op, true, false);
        r
    }

    /// The fields every network resource answers with.
    fn network_doc(&self, doc: &mut Value, mut p: Map<String, Value>, old: &Value) {
        p.insert("provisioningState".into(), json!("Updating"));
        let guid = old["properties"]["resourceGuid"].as_str().map_or_else(uuid, String::from);
        p.insert("resourceGuid".into(), json!(guid));
        doc["etag"] = json!(new_etag(true));
        doc["properties"] = Value::Object(p);
    }

    fn put_vnet(
        &mut self,
        it: &Item,
        mut doc: Value,
        props: Map<String, Value>,
        now: Instant,
    ) -> Result<Reply, ArmError> {
        let k = key(&it.id);
        let space = address_space(&props)?;
        let inline = array(props.get("subnets").unwrap_or(&Value::Null), "properties.subnets")?;
        let mut placed: Vec<(String, Cidr)> = Vec::new();
        for s in &inline {
            let name =
                s["name"].as_str().filter(|n| !n.is_empty()).ok_or_else(|| invalid("Every subnet needs a name."))?;
            let c = self.check_subnet(&it.name, &space, &placed, name, &s["properties"])?;
            placed.push((name.to_string(), c));
        }
        // A VNet PUT states its subnets: those it leaves out are deleted, as on Azure.
        let kept: HashSet<String> = placed.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        let dropped: Vec<String> = self
            .children(&k, Kind::Subnet)
            .into_iter()
            .filter(|s| !kept.contains(s.rsplit('/').next().unwrap_or_default()))
            .collect();
        for s in &dropped {
            if let Some(user) = self.subnet_user(s) {
                return Err(in_use_subnet(self.entries[s].value["name"].as_str().unwrap_or_default(), &user));
            }
        }
        let mut p = props;
        p.remove("subnets");
        let old = self.entries.get(&k).map(|e| e.value.clone()).unwrap_or(Value::Null);
        self.network_doc(&mut doc, p, &old);
        let vnet_id = doc["id"].as_str().unwrap_or_default().to_string();
        let created = old.is_null();
        self.store(it.ty, &it.id, &it.parent, doc, now);
        for s in dropped {
            self.remove_tree(&s);
        }
        let ty = Ty::lookup("Microsoft.Network/virtualNetworks/subnets").expect("served");
        let mut keys = vec![k.clone()];
        for s in &inline {
            let name = s["name"].as_str().unwrap_or_default();
            let id = format!("{vnet_id}/subnets/{name}");
            let old = self.entries.get(&key(&id)).map(|e| e.value.clone()).unwrap_or(Value::Null);
            let d = subnet_doc(&id, name, object(&s["properties"], "subnets[].properties")?, &old);
            self.store(ty, &id, &vnet_id, d, now);
            keys.push(key(&id));
        }
        Ok(self.provisioned(it, keys, created, now))
    }

    fn put_subnet(
        &mut self,
        it: &Item,
        props: Map<String, Value>,
        old: &Value,
        now: Instant,
    ) -> Result<Reply, ArmError> {
        let k = key(&it.id);
        let vnet_key = key(&it.parent);
        let vnet = self.entries[&vnet_key].value.clone();
        let space = address_space(vnet["properties"].as_object().unwrap_or(&Map::new()))?;
        let siblings: Vec<(String, Cidr)> = self
            .children(&vnet_key, Kind::Subnet)
            .iter()
            .filter(|s| **s != k)
            .filter_map(|s| {
                let v = &self.entries[s].value;
                let prefix = v["properties"]["addressPrefix"].as_str()?;
                Some((v["name"].as_str().unwrap_or_default().to_string(), Cidr::parse(prefix).ok()?))
            })
            .collect();
        let vnet_name = vnet["name"].as_str().unwrap_or_default().to_string();
        self.check_subnet(&vnet_name, &space, &siblings, &it.name, &Value::Object(props.clone()))?;
        let id = old["id"].as_str().unwrap_or(&it.id).to_string();
        let d = subnet_doc(&id, old["name"].as_str().unwrap_or(&it.name), props, old);
        self.store(
            Ty::lookup("Microsoft.Network/virtualNetworks/subnets").expect("served"),
            &it.id,
            &it.parent,
            d,
            now,
        );
        if let Some(v) = self.entries.get_mut(&vnet_key) {
            v.value["etag"] = json!(new_etag(true));
        }
        Ok(self.provisioned(it, vec![k], old.is_null(), now))
    }

    /// A subnet's prefix: valid, inside the VNet, clear of its siblings, with an NSG that exists.
    fn check_subnet(
        &self,
        vnet: &str,
        space: &[Cidr],
        siblings: &[(String, Cidr)],
        name: &str,
        props: &Value,
    ) -> Result<Cidr, ArmError> {
        let prefix = props["addressPrefix"]
            .as_str()
            .or_else(|| props["addressPrefixes"][0].as_str())
            .ok_or_else(|| invalid(format!("Subnet '{name}' has no addressPrefix.")))?;
        let c = cidr(prefix, &format!("subnet '{name}'"))?;
        if !space.iter().any(|v| v.contains(&c)) {
            return Err(ArmError::bad_request(
                "NetcfgSubnetRangeOutsideVnet",
                format!(
                    "Subnet '{name}' is not valid because its IP address range is outside the IP address range of \
                     virtual network '{vnet}'."
                ),
            ));
        }
        if siblings.iter().any(|(n, s)| !n.eq_ignore_ascii_case(name) && s.overlaps(&c)) {
            return Err(ArmError::bad_request(
                "NetcfgSubnetRangesOverlap",
                format!(
                    "Subnet '{name}' is not valid because its IP address range overlaps with that of an existing \
                     subnet in virtual network '{vnet}'."
                ),
            ));
        }
        if let Some(nsg) = props["networkSecurityGroup"]["id"].as_str()
            && !self.entries.get(&key(nsg)).is_some_and(|e| e.ty.kind == Kind::Nsg)
        {
            return Err(ArmError::bad_request(
                "InvalidResourceReference",
                format!(
                    "Resource {nsg} referenced by resource subnet '{name}' was not found. Please make sure that the \
                     referenced resource exists, and that both resources are in the same region."
                ),
            ));
        }
        Ok(c)
    }

    /// The agent pool using a subnet (for nodes or pods), if any.
    pub(crate) fn subnet_user(&self, subnet_key: &str) -> Option<String> {
        let pool = self.entries.values().filter(|e| e.ty.kind == Kind::Pool).find_map(|e| {
            let p = &e.value["properties"];
            let uses = |f: &str| p[f].as_str().is_some_and(|s| key(s) == subnet_key);
            (uses("vnetSubnetID") || uses("podSubnetID"))
                .then(|| e.value["id"].as_str().unwrap_or_default().to_string())
        });
        pool.or_else(|| {
            let (pool, until) = self.links.get(subnet_key)?;
            (Instant::now() < *until)
                .then(|| format!("{pool}/serviceAssociationLinks/AzureKubernetesService (being removed)"))
        })
    }

    /// A CNAME record set holds one name, not at the zone apex, and no record set shares its name
    /// with a CNAME (RFC 1034 §3.6.2): Azure DNS answers 409 `Conflict` when either comes second.
    fn check_record_set(&self, it: &Item, props: &Map<String, Value>) -> Result<(), ArmError> {
        let rtype = it.ty.name.rsplit('/').next().unwrap_or_default();
        if rtype == "CNAME" {
            let cname = props.get("CNAMERecord").and_then(|c| c["cname"].as_str()).unwrap_or_default();
            if cname.is_empty() {
                return Err(invalid("A CNAME record set needs properties.CNAMERecord.cname."));
            }
            if it.name == "@" {
                return Err(ArmError::bad_request(
                    "BadRequest",
                    "A CNAME record set cannot be created at the zone apex.",
                ));
            }
        }
        let parent = key(&it.parent);
        let clash = self.entries.values().find(|e| {
            let other = e.ty.name.rsplit('/').next().unwrap_or_default();
            e.ty.kind == Kind::RecordSet
                && e.parent == parent
                && other != rtype
                && (other == "CNAME" || rtype == "CNAME")
                && e.value["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&it.name))
        });
        match clash {
            Some(e) if rtype == "CNAME" => Err(ArmError::new(
                409,
                "Conflict",
                format!(
                    "The CNAME record could not be created because another record with the same name ({}) already exists in this zone.",
                    e.ty.name.rsplit('/').next().unwrap_or_default()
                ),
            )),
            Some(_) => Err(ArmError::new(
                409,
                "CannotCreateRecordDueToCNameNamingRestriction",
                format!(
                    "The {rtype} record could not be created because a CNAME record with the same name already exists in this zone."
                ),
            )),
            None => Ok(()),
        }
    }

    fn record_doc(&self, ty: &'static Ty, id: &str, name: &str, zone_id: &str, props: Value) -> Value {
        let zone = zone_id.rsplit('/').next().unwrap_or_default();
        let mut p = props.as_object().cloned().unwrap_or_default();
        let fqdn = if name == "@" { format!("{zone}.") } else { format!("{name}.{zone}.") };
        p.insert("fqdn".into(), json!(fqdn));
        p.insert("provisioningState".into(), json!("Succeeded"));
        // Record set metadata: the same rule as zone tags.
        let metadata = p.get("metadata").and_then(Value::as_object).map(dns_names_only).unwrap_or_default();
        p.insert("metadata".into(), Value::Object(metadata));
        json!({"id": id, "name": name, "type": ty.answer, "etag": new_etag(false), "properties": p})
    }

    fn service_cidr(&self, net: &Value) -> Result<Option<(String, Cidr)>, ArmError> {
        let Some(s) = net["serviceCidr"].as_str() else { return Ok(None) };
        let c = Cidr::parse(s).map_err(|_| {
            ArmError::bad_request("InvalidParameter", format!("The service CIDR '{s}' is not a valid CIDR."))
                .with_target("networkProfile.serviceCIDR")
        })?;
        if let Some(d) = net["dnsServiceIP"].as_str()
            && !d.parse().is_ok_and(|ip| c.contains_ip(ip))
        {
            return Err(ArmError::bad_request(
                "InvalidDnsServiceIP",
                format!("The DNS service IP {d} is not within the service CIDR {s}."),
            )
            .with_target("networkProfile.dnsServiceIP"));
        }
        Ok(Some((s.to_string(), c)))
    }

    /// A pool's `vnetSubnetID`/`podSubnetID` exist, and the service CIDR stays out of their VNet.
    fn check_pool_subnets(
        &self,
        p: &Map<String, Value>,
        service: Option<&(String, Cidr)>,
        at: &str,
    ) -> Result<(), ArmError> {
        for field in ["vnetSubnetID", "podSubnetID"] {
            let Some(id) = p.get(field).and_then(Value::as_str) else { continue };
            let Route::Item(s) = route::parse("GET", id) else {
                return Err(ArmError::bad_request("InvalidSubnet", format!("{at}{field} '{id}' is not a subnet ID.")));
            };
            if s.ty.kind != Kind::Subnet {
                return Err(ArmError::bad_request("InvalidSubnet", format!("{at}{field} '{id}' is not a subnet ID.")));
            }
            if !self.entries.contains_key(&key(id)) {
                let vnet = s.parent.rsplit('/').next().unwrap_or_default();
                return Err(ArmError::bad_request(
                    "SubnetNotFound",
                    format!(
                        "Could not find subnet {} in vnet {vnet} from resource group {} of subscription {}.",
                        s.name,
                        s.rg.as_deref().unwrap_or_default(),
                        s.sub
                    ),
                ));
            }
            if let (Some((text, svc)), "vnetSubnetID") = (service, field)
                && let Some(vnet) = self.entries.get(&key(&s.parent))
            {
                let space = address_space(vnet.value["properties"].as_object().unwrap_or(&Map::new()))?;
                if let Some(hit) = space.iter().find(|v| v.overlaps(svc)) {
                    let subnet = self.children(&s.parent, Kind::Subnet).into_iter().find_map(|k| {
                        let pre = self.entries[&k].value["properties"]["addressPrefix"].as_str()?.to_string();
                        Cidr::parse(&pre).ok().filter(|c| c.overlaps(svc)).map(|_| pre)
                    });
                    let what = subnet.unwrap_or_else(|| hit.to_string());
                    return Err(ArmError::bad_request(
                        "ServiceCidrOverlapExistingSubnetsCidr",
                        format!("The specified service CIDR {text} is conflicted with an existing subnet CIDR {what}"),
                    )
                    .with_target("networkProfile.serviceCIDR"));
                }
            }
        }
        Ok(())
    }

    fn put_cluster(
        &mut self,
        it: &Item,
        mut doc: Value,
        props: Map<String, Value>,
        body: &Value,
        old: &Value,
        now: Instant,
    ) -> Result<Reply, ArmError> {
        let k = key(&it.id);
        let created = old.is_null();
        let was = &old["properties"];
        let new = Value::Object(props.clone());
        let service = self.service_cidr(&new["networkProfile"])?;
        let mut profiles = array(props.get("agentPoolProfiles").unwrap_or(&Value::Null), "agentPoolProfiles")?;
        let mut names = HashSet::new();
        for (i, p) in profiles.iter_mut().enumerate() {
            let Some(m) = p.as_object_mut() else { return Err(invalid("agentPoolProfiles items must be objects.")) };
            let name = m.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).map(str::to_ascii_lowercase);
            let name = name.ok_or_else(|| invalid(format!("agentPoolProfiles[{i}].name is required.")))?;
            if !names.insert(name) {
                return Err(invalid("Agent pool names must be unique."));
            }
            default(m, "mode", json!(if i == 0 { "System" } else { "User" }));
            self.check_pool_subnets(m, service.as_ref(), &format!("agentPoolProfiles[{i}]."))?;
        }
        let kept_system = self.children(&k, Kind::Pool).iter().any(|c| {
            let v = &self.entries[c].value;
            !names.contains(&v["name"].as_str().unwrap_or_default().to_ascii_lowercase())
                && v["properties"]["mode"] == "System"
        });
        if !kept_system && !profiles.iter().any(|p| p["mode"] == "System") {
            return Err(ArmError::bad_request(
                "MustDefineAtLeastOneSystemPool",
                "Must define at least one system pool.",
            ));
        }

        check_upgrade(was, &new)?;
        for (i, pool) in profiles.iter().enumerate() {
            let version = new["kubernetesVersion"].as_str().unwrap_or("1.33");
            check_pool_version(pool, version, &Value::Null, &format!("agentPoolProfiles[{i}]."))?;
        }
        let mut new_props = props;
        check_aad(&mut new_props, was, &self.opts.tenant_id)?;

        let loc = norm_location(doc["location"].as_str().unwrap_or_default());
        let name = doc["name"].as_str().unwrap_or_default().to_string();
        let mut p = new_props;
        p.remove("agentPoolProfiles");
        p.insert("provisioningState".into(), json!(if created { "Creating" } else { "Updating" }));
        default(&mut p, "kubernetesVersion", json!("1.33"));
        p.insert("currentKubernetesVersion".into(), p["kubernetesVersion"].clone());
        default(&mut p, "dnsPrefix", json!(format!("{name}-dns")));
        let dns_prefix = p["dnsPrefix"].as_str().unwrap_or_default().to_string();
        let hash = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let keep = |f: &str, fresh: String| was.get(f).cloned().unwrap_or(json!(fresh));
        p.insert("fqdn".into(), keep("fqdn", format!("{dns_prefix}-{hash}.hcp.{loc}.azmk8s.io")));
        p.insert(
            "azurePortalFQDN".into(),
            keep("azurePortalFQDN", format!("{dns_prefix}-{hash}.portal.hcp.{loc}.azmk8s.io")),
        );
        let node_group = keep("nodeResourceGroup", format!("MC_{}_{name}_{loc}", it.rg.as_deref().unwrap_or_default()));
        p.insert("nodeResourceGroup".into(), node_group.clone());
        if p.get("oidcIssuerProfile").is_some_and(|o| o["enabled"] == true) {
            let issuer = was["oidcIssuerProfile"]["issuerURL"].as_str().map_or_else(
                || format!("https://{loc}.oic.prod-aks.azure.com/{}/{}/", self.opts.tenant_id, uuid()),
                String::from,
            );
            p.get_mut("oidcIssuerProfile").expect("checked")["issuerURL"] = json!(issuer);
        }
        p.insert("powerState".into(), json!({"code": "Running"}));
        p.insert("maxAgentPools".into(), json!(100));
        let node_group = node_group.as_str().unwrap_or_default().to_string();
        let kubelet_id = format!(
            "/subscriptions/{}/resourcegroups/{node_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool",
            it.sub
        );
        let kubelet = match was["identityProfile"]["kubeletidentity"].clone() {
            Value::Null => json!({"resourceId": kubelet_id, "clientId": uuid(), "objectId": uuid()}),
            v => v,
        };
        p.insert("identityProfile".into(), json!({"kubeletidentity": kubelet}));
        doc["properties"] = Value::Object(p);
        let mut identity = body.get("identity").cloned().unwrap_or(Value::Null);
        if identity["type"] == "SystemAssigned" {
            identity["principalId"] = old["identity"]["principalId"].clone();
            if identity["principalId"].is_null() {
                identity["principalId"] = json!(uuid());
            }
            identity["tenantId"] = json!(self.opts.tenant_id);
        }
        if !identity.is_null() {
            doc["identity"] = identity;
        }
        doc["sku"] = body.get("sku").cloned().unwrap_or_else(|| json!({"name": "Base", "tier": "Free"}));
        let version = doc["properties"]["kubernetesVersion"].as_str().unwrap_or_default().to_string();
        let cluster_id = doc["id"].as_str().unwrap_or_default().to_string();
        let location = doc["location"].clone();
        self.store(it.ty, &it.id, &it.parent, doc, now);

        if created {
            // The node resource group AKS makes, holding the kubelet identity.
            let group_id = format!("/subscriptions/{}/resourcegroups/{node_group}", it.sub);
            let group = json!({
                "id": group_id, "name": node_group, "type": Ty::group().answer, "location": location,
                "managedBy": cluster_id, "properties": {"provisioningState": "Succeeded"},
            });
            self.store(Ty::group(), &group_id, &format!("/subscriptions/{}", it.sub), group, now);
            let ident = json!({
                "id": kubelet["resourceId"], "name": format!("{name}-agentpool"),
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities", "location": location,
                "properties": {"tenantId": self.opts.tenant_id, "principalId": kubelet["objectId"], "clientId": kubelet["clientId"]},
            });
            let ty = Ty::lookup("Microsoft.ManagedIdentity/userAssignedIdentities").expect("served");
            self.store(ty, &kubelet_id, &group_id, ident, now);
        }
        let pool_ty = Ty::lookup("Microsoft.ContainerService/managedClusters/agentPools").expect("served");
        let mut keys = vec![k.clone()];
        for mut profile in profiles {
            let m = profile.as_object_mut().expect("checked above");
            let pname = m.remove("name").and_then(|n| n.as_str().map(String::from)).unwrap_or_default();
            let id = format!("{cluster_id}/agentPools/{pname}");
            let old_pool = self.entries.get(&key(&id)).map(|e| e.value.clone()).unwrap_or(Value::Null);
            let base = json!({"id": id, "name": pname});
            manual_count(m, &old_pool)?;
            let d = pool_doc(&base, m.clone(), &old_pool, &version, old_pool.is_null());
            self.store(pool_ty, &id, &cluster_id, d, now);
            keys.push(key(&id));
        }
        Ok(self.provisioned(it, keys, created, now))
    }

    /// When a principal (managed identity, cluster identity, or one added by the test) came to be.
    fn principal_since(&self, id: &str) -> Option<Instant> {
        let id = id.to_ascii_lowercase();
        if let Some(t) = self.principals.get(&id) {
            return Some(*t);
        }
        let is = |v: &Value| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(&id));
        self.entries
            .values()
            .find(|e| match e.ty.kind {
                Kind::Identity => is(&e.value["properties"]["principalId"]),
                Kind::Cluster => is(&e.value["identity"]["principalId"]),
                _ => false,
            })
            .map(|e| e.created)
    }

    fn put_role_assignment(
        &mut self,
        it: &Item,
        body: &Value,
        existing: Option<Value>,
        now: Instant,
    ) -> Result<Reply, ArmError> {
        self.require_parent(&it.parent, it.rg.as_deref())?;
        if uuid::Uuid::parse_str(&it.name).is_err() {
            return Err(ArmError::bad_request(
                "InvalidRoleAssignmentId",
                format!("The role assignment ID '{}' is not valid. The role assignment ID must be a GUID.", it.name),
            ));
        }
        let p = &body["properties"];
        let role = p["roleDefinitionId"].as_str().ok_or_else(|| invalid("properties.roleDefinitionId is required."))?;
        let wanted = role_guid(role).ok_or_else(|| {
            ArmError::bad_request("InvalidRoleDefinitionId", format!("The role definition ID '{role}' is not valid."))
        })?;
        let principal = p["principalId"].as_str().ok_or_else(|| invalid("properties.principalId is required."))?;
        let same = |v: &Value| {
            v["properties"]["roleDefinitionId"].as_str().and_then(role_guid) == Some(wanted.clone())
                && v["properties"]["principalId"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(principal))
        };
        if let Some(old) = existing {
            if same(&old) {
                return Ok(Reply::json(201, old));
            }
            return Err(ArmError::bad_request(
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            ));
        }
        if self.principal_since(principal).is_none_or(|t| now.duration_since(t) < self.opts.principal_lag) {
            return Err(ArmError::bad_request(
                "PrincipalNotFound",
                format!(
                    "Principal {principal} does not exist in the directory {}. Check that you have the correct \
                     principal ID. {PRINCIPAL_TYPE_HINT}",
                    self.opts.tenant_id
                ),
            ));
        }
        let scope = key(&it.parent);
        if let Some(dup) = self.entries.values().find(|e| {
            e.ty.kind == Kind::RoleAssignment
                && e.value["properties"]["scope"].as_str().is_some_and(|s| key(s) == scope)
                && same(&e.value)
        }) {
            return Err(ArmError::new(
                409,
                "RoleAssignmentExists",
                format!(
                    "The role assignment already exists. The ID of the existing role assignment is {}.",
                    dup.value["id"].as_str().unwrap_or_default()
                ),
            ));
        }
        let mut props = p.as_object().cloned().unwrap_or_default();
        default(&mut props, "principalType", json!("ServicePrincipal"));
        let t = now_rfc3339();
        props.insert("scope".into(), json!(it.parent));
        props.insert("createdOn".into(), json!(t));
        props.insert("updatedOn".into(), json!(t));
        let doc = json!({"id": it.id, "name": it.name, "type": it.ty.answer, "properties": props});
        self.store(it.ty, &it.id, &it.parent, doc.clone(), now);
        Ok(Reply::json(201, doc))
    }

    pub(crate) fn list_role_assignments(&self, l: &List, req: &Req) -> Result<Reply, ArmError> {
        self.require_parent(&l.parent, l.rg.as_deref())?;
        let scope = key(&l.parent);
        // `a` is at or above `b`.
        let above = |a: &str, b: &str| a == b || b.starts_with(&format!("{a}/"));
        let (at_scope, principal) = match req.param("$filter").map(str::trim) {
            None | Some("") => (false, None),
            Some("atScope()") => (true, None),
            Some(f) => match f.strip_prefix("principalId eq '").and_then(|r| r.strip_suffix('\'')) {
                Some(p) => (false, Some(p.to_ascii_lowercase())),
                None => {
                    return Err(ArmError::bad_request(
                        "InvalidFilter",
                        format!("The filter '{f}' is not supported; use atScope() or principalId eq '{{id}}'."),
                    ));
                }
            },
        };
        let items = self
            .entries
            .values()
            .filter(|e| e.ty.kind == Kind::RoleAssignment)
            .filter(|e| {
                let s = key(e.value["properties"]["scope"].as_str().unwrap_or_default());
                let placed = if at_scope { above(&s, &scope) } else { above(&s, &scope) || above(&scope, &s) };
                let who = e.value["properties"]["principalId"].as_str().unwrap_or_default().to_ascii_lowercase();
                placed && principal.as_ref().is_none_or(|p| *p == who)
            })
            .map(|e| e.value.clone())
            .collect();
        Ok(Reply::json(200, self.page(items, req)?))
    }

    pub(crate) fn delete(&mut self, it: &Item, req: &Req, now: Instant) -> Result<Reply, ArmError> {
        let k = key(&it.id);
        let existing = self.entries.get(&k).map(|e| e.value.clone());
        if it.ty.kind == Kind::Group && existing.is_none() {
            return Err(ArmError::group_not_found(&it.name));
        }
        self.preconditions(existing.as_ref(), req)?;
        let Some(old) = existing else { return Ok(Reply::empty(204)) };
        if let Some(op) = self.removal_in_flight(&k) {
            return Ok(self.removal_reply(it.ty, &op));
        }
        let name = old["name"].as_str().unwrap_or_default();
        match it.ty.kind {
            Kind::Subnet => {
                if let Some(user) = self.subnet_user(&k) {
                    return Err(in_use_subnet(name, &user));
                }
            }
            Kind::Vnet => {
                for s in self.children(&k, Kind::Subnet) {
                    if let Some(user) = self.subnet_user(&s) {
                        return Err(in_use_subnet(self.entries[&s].value["name"].as_str().unwrap_or_default(), &user));
                    }
                }
            }
            Kind::Nsg => {
                let users: Vec<String> = self
                    .present(&k)
                    .and_then(|v| v["properties"]["subnets"].as_array().cloned())
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["id"].as_str().map(String::from))
                    .collect();
                if !users.is_empty() {
                    return Err(ArmError::bad_request(
                        "InUseNetworkSecurityGroupCannotBeDeleted",
                        format!(
                            "Network security group {} cannot be deleted because it is in use by the following \
                             resources: {}. In order to delete the Network security group, remove the association \
                             with the resource(s).",
                            old["id"].as_str().unwrap_or_default(),
                            users.join(", ")
                        ),
                    ));
                }
            }
            _ => {}
        }
        match it.ty.kind {
            Kind::Group | Kind::Vnet | Kind::Subnet | Kind::Nsg | Kind::PublicIp | Kind::Cluster | Kind::Pool => {
                if let Some(e) = self.entries.get_mut(&k) {
                    e.value["properties"]["provisioningState"] = json!("Deleting");
                }
                let loc = self.location_of(&k);
                let op = self.start_op(it.ty, &it.sub, &loc, Work::Remove(k), now);
                Ok(self.removal_reply(it.ty, &op))
            }
            Kind::Zone if !self.opts.lro_delay.is_zero() => {
                let op = self.start_op(it.ty, &it.sub, "global", Work::Remove(k), now);
                Ok(self.removal_reply(it.ty, &op))
            }
            Kind::RoleAssignment => {
                self.remove_tree(&k);
                Ok(Reply::json(200, old))
            }
            _ => {
                self.remove_tree(&k);
                Ok(Reply::empty(200))
            }
        }
    }

    /// 202 for a delete in flight: groups and zones answer with `Location`, network and AKS
    /// resources with `Location` and `Azure-AsyncOperation`.
    fn removal_reply(&self, ty: &Ty, op: &str) -> Reply {
        let both = !matches!(ty.kind, Kind::Group | Kind::Zone);
        let mut r = Reply::empty(202);
        r.headers = self.op_headers(op, both, true);
        r
    }

    pub(crate) fn credentials(&self, c: &Item) -> Result<Reply, ArmError> {
        let cluster = self.entries.get(&key(&c.id)).ok_or_else(|| self.not_found(c))?;
        let name = cluster.value["name"].as_str().unwrap_or_default();
        let server = match self.opts.kubeconfig_server.as_str() {
            "" => format!("https://{}:443", cluster.value["properties"]["fqdn"].as_str().unwrap_or_default()),
            s => s.to_string(),
        };
        let user = format!("clusterUser_{}_{name}", c.rg.as_deref().unwrap_or_default());
        let b64 = base64::engine::general_purpose::STANDARD;
        // An Entra ID cluster's user credential holds no secret: kubelogin gets the user's token.
        let auth = if cluster.value["properties"]["aadProfile"]["managed"] == true {
            format!(
                "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --login, devicecode, --server-id, {AKS_SERVER_APP}]\n"
            )
        } else {
            format!("    token: {}\n", self.opts.kubeconfig_token)
        };
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {name}\n\
             contexts:\n- context:\n    cluster: {name}\n    user: {user}\n  name: {name}\ncurrent-context: {name}\npreferences: {{}}\n\
             users:\n- name: {user}\n  user:\n{auth}",
            ca = b64.encode(CA_PEM),
        );
        Ok(Reply::json(200, json!({"kubeconfigs": [{"name": "clusterUser", "value": b64.encode(kubeconfig)}]})))
    }
}

/// The VNet's address prefixes, parsed.
fn address_space(props: &Map<String, Value>) -> Result<Vec<Cidr>, ArmError> {
    let list = props.get("addressSpace").and_then(|a| a["addressPrefixes"].as_array()).filter(|a| !a.is_empty());
    let list = list.ok_or_else(|| invalid("properties.addressSpace.addressPrefixes must list at least one prefix."))?;
    list.iter().map(|p| cidr(p.as_str().unwrap_or_default(), "the virtual network's address space")).collect()
}

fn subnet_doc(id: &str, name: &str, mut p: Map<String, Value>, old: &Value) -> Value {
    p.insert("provisioningState".into(), json!("Updating"));
    default(&mut p, "privateEndpointNetworkPolicies", json!("Disabled"));
    default(&mut p, "privateLinkServiceNetworkPolicies", json!("Enabled"));
    json!({
        "id": old["id"].as_str().unwrap_or(id),
        "name": old["name"].as_str().unwrap_or(name),
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "etag": new_etag(true),
        "properties": p,
    })
}

fn pool_doc(base: &Value, mut p: Map<String, Value>, old: &Value, cluster_version: &str, creating: bool) -> Value {
    p.remove("name");
    // Without a count, an existing pool keeps its nodes and a new one starts at its minimum.
    if !p.contains_key("count") {
        let count = old["properties"]["count"].as_u64().or(p.get("minCount").and_then(Value::as_u64)).unwrap_or(1);
        p.insert("count".into(), json!(count));
    }
    p.insert("provisioningState".into(), json!(if creating { "Creating" } else { "Updating" }));
    default(&mut p, "orchestratorVersion", json!(cluster_version));
    p.insert("currentOrchestratorVersion".into(), p["orchestratorVersion"].clone());
    p.insert("powerState".into(), json!({"code": "Running"}));
    json!({
        "id": old["id"].as_str().or(base["id"].as_str()),
        "name": old["name"].as_str().or(base["name"].as_str()),
        "type": "Microsoft.ContainerService/managedClusters/agentPools",
        "properties": p,
    })
}

/// AKS refuses to scale an autoscaled pool by hand: an update of one whose `count` differs from
/// the pool's current node count is a 400 (leaving `count` out keeps the current one).
fn manual_count(p: &Map<String, Value>, old: &Value) -> Result<(), ArmError> {
    let autoscaled = p.get("enableAutoScaling") == Some(&Value::Bool(true));
    match (p.get("count").and_then(Value::as_u64), old["properties"]["count"].as_u64()) {
        (Some(want), Some(have)) if autoscaled && want != have => Err(ArmError::bad_request(
            "InvalidParameter",
            format!(
                "The node count of an agent pool with the cluster autoscaler enabled cannot be changed by hand (it has {have} nodes; the request says {want}). Leave count out, or disable autoscaling."
            ),
        )
        .with_target("agentPoolProfile.count")),
        _ => Ok(()),
    }
}

/// The AKS AAD server application: Entra ID tokens for AKS clusters are for it.
const AKS_SERVER_APP: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// `(major, minor, patch)` of a Kubernetes version; a `major.minor` alias is its latest patch.
fn k8s_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    let patch = match it.next() {
        Some(p) => p.parse().ok()?,
        None => u32::MAX,
    };
    Some((major, minor, patch))
}

/// AKS upgrades a control plane one minor version at a time and never downgrades it.
fn check_upgrade(was: &Value, new: &Value) -> Result<(), ArmError> {
    let (Some(from), Some(to)) = (was["kubernetesVersion"].as_str(), new["kubernetesVersion"].as_str()) else {
        return Ok(());
    };
    let (Some(f), Some(t)) = (k8s_version(from), k8s_version(to)) else {
        return Err(invalid(format!("Kubernetes version {to} is not supported.")).with_target("kubernetesVersion"));
    };
    if (t.0, t.1) < (f.0, f.1) {
        return Err(ArmError::bad_request(
            "OperationNotAllowed",
            format!(
                "Kubernetes version {to} is older than the cluster's {from}; downgrading a cluster is not allowed."
            ),
        )
        .with_target("kubernetesVersion"));
    }
    if t.0 == f.0 && t.1 > f.1 + 1 {
        return Err(ArmError::bad_request(
            "OperationNotAllowed",
            format!(
                "Upgrading Kubernetes version {from} to {to} is not allowed: minor versions cannot be skipped. Available upgrade: {}.{}.",
                f.0,
                f.1 + 1
            ),
        )
        .with_target("kubernetesVersion"));
    }
    Ok(())
}

/// A pool's `orchestratorVersion`: not newer than the control plane, at most three minor versions
/// behind it, and never moved back.
fn check_pool_version(pool: &Value, control_plane: &str, old: &Value, at: &str) -> Result<(), ArmError> {
    let Some(v) = pool["orchestratorVersion"].as_str().or(pool["properties"]["orchestratorVersion"].as_str()) else {
        return Ok(());
    };
    let target = format!("{at}orchestratorVersion");
    let (Some(p), Some(c)) = (k8s_version(v), k8s_version(control_plane)) else {
        return Err(invalid(format!("Kubernetes version {v} is not supported.")).with_target(&target));
    };
    if (p.0, p.1) > (c.0, c.1) {
        return Err(ArmError::bad_request(
            "NodePoolMcVersionIncompatible",
            format!("Node pool version {v} and control plane version {control_plane} are incompatible: a node pool cannot be newer than its control plane; upgrade the control plane first."),
        )
        .with_target(&target));
    }
    if p.0 == c.0 && p.1 + 3 < c.1 {
        return Err(ArmError::bad_request(
            "NodePoolMcVersionIncompatible",
            format!("Node pool version {v} is more than three minor versions older than control plane version {control_plane}."),
        )
        .with_target(&target));
    }
    if let Some(was) = old["properties"]["orchestratorVersion"].as_str().and_then(k8s_version)
        && (p.0, p.1) < (was.0, was.1)
    {
        return Err(ArmError::bad_request(
            "OperationNotAllowed",
            format!("Downgrading a node pool from {} to {v} is not allowed.", old["properties"]["orchestratorVersion"]),
        )
        .with_target(&target));
    }
    Ok(())
}

/// AKS-managed Entra ID: object IDs that are GUIDs, no way back to a cluster without it, local
/// accounts off only with it; the tenant defaults to the subscription's.
fn check_aad(p: &mut Map<String, Value>, was: &Value, tenant: &str) -> Result<(), ArmError> {
    let managed = p.get("aadProfile").is_some_and(|a| a["managed"] == true);
    if let Some(a) = p.get_mut("aadProfile").and_then(Value::as_object_mut) {
        if !managed {
            return Err(ArmError::bad_request(
                "BadRequest",
                "Legacy Azure AD integration (aadProfile without managed) is no longer supported; set aadProfile.managed.",
            )
            .with_target("aadProfile.managed"));
        }
        for g in a.get("adminGroupObjectIDs").and_then(Value::as_array).into_iter().flatten() {
            if g.as_str().and_then(|g| uuid::Uuid::parse_str(g).ok()).is_none() {
                return Err(invalid(format!("adminGroupObjectIDs: {g} is not a GUID."))
                    .with_target("aadProfile.adminGroupObjectIDs"));
            }
        }
        default(a, "tenantID", json!(tenant));
        default(a, "enableAzureRBAC", json!(false));
    }
    if was["aadProfile"]["managed"] == true && !managed {
        return Err(ArmError::bad_request(
            "BadRequest",
            "Managed Azure AD integration cannot be disabled once enabled.",
        )
        .with_target("aadProfile"));
    }
    if p.get("disableLocalAccounts") == Some(&json!(true)) && !managed {
        return Err(ArmError::bad_request(
            "BadRequest",
            "Local accounts can only be disabled on clusters with managed Azure AD integration enabled.",
        )
        .with_target("disableLocalAccounts"));
    }
    Ok(())
}

/// The GUID of a role definition id (subscription-scoped or not), lower-cased.
fn role_guid(id: &str) -> Option<String> {
    let lower = id.to_ascii_lowercase();
    let (_, guid) = lower.rsplit_once("/providers/microsoft.authorization/roledefinitions/")?;
    uuid::Uuid::parse_str(guid).ok().map(|u| u.to_string())
}

/// The entries of an Azure DNS tag or metadata map whose names Azure DNS keeps: letters, digits
/// and `_` only.
fn dns_names_only(m: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
