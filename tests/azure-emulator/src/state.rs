//! The emulated subscription(s): every resource as a stored JSON document keyed by its lower-cased
//! id, the long-running operations in flight, and the test controls (call counts, request log,
//! throttling, injected failures). One [`State`] sits behind one mutex; every request is answered
//! by [`State::serve`] in one go, without awaiting.
//!
//! Kind-specific validation and documents live in `kinds`; this module holds what all kinds share:
//! routing to them, API versions, preconditions, paging, operations and their polling, and the
//! views computed on read (a VNet's `subnets`, a cluster's `agentPoolProfiles`, an NSG's
//! `subnets`, a zone's `numberOfRecordSets`), which are never stored.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::ArmError;
use crate::route::{self, Item, Kind, List, Route, Ty, key};
use crate::{Options, RequestRecord};

/// One stored resource.
pub(crate) struct Entry {
    pub ty: &'static Ty,
    /// The key of what holds it (see `route::Item::parent`).
    pub parent: String,
    pub value: Value,
    /// When it was first created (principal replication lag counts from here).
    pub created: Instant,
}

/// What an operation does when it finishes.
pub(crate) enum Work {
    /// The resources (keys) become `Succeeded`.
    Provision(Vec<String>),
    /// The resource (key) and everything under it go.
    Remove(String),
}

pub(crate) struct Op {
    pub due: Instant,
    pub start: String,
    pub end: Option<String>,
    pub work: Work,
    /// `(code, message)` when it is to fail.
    pub failure: Option<(String, String)>,
    pub done: bool,
    /// `/subscriptions/{sub}/providers/{ns}/locations/{loc}/operations/{id}` and the api-version.
    pub path: String,
    pub api: &'static str,
}

pub(crate) struct Injected {
    pub method: String,
    pub type_name: String,
    pub error: ArmError,
}

/// A request, as the state sees it.
pub(crate) struct Req<'a> {
    pub method: &'a str,
    /// Percent-decoded.
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    pub authorization: Option<&'a str>,
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub body: &'a [u8],
}

impl Req<'_> {
    pub(crate) fn param(&self, k: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str())
    }

    /// The body as a JSON object.
    pub(crate) fn json(&self) -> Result<Value, ArmError> {
        let v: Value = serde_json::from_slice(self.body).map_err(|e| {
            ArmError::invalid_content(format!("The request content was invalid and could not be deserialized: '{e}'."))
        })?;
        if !v.is_object() {
            return Err(ArmError::invalid_content("The request content must be a JSON object."));
        }
        Ok(v)
    }
}

/// An answer: status, JSON body (none for 202/204), extra headers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Reply { status, body: Some(body), headers: Vec::new() }
    }

    pub(crate) fn empty(status: u16) -> Self {
        Reply { status, body: None, headers: Vec::new() }
    }

    fn error(e: &ArmError) -> Self {
        Reply::json(e.status, e.body())
    }
}

pub(crate) struct State {
    pub opts: Options,
    /// `http://127.0.0.1:PORT`, for operation URLs and nextLinks.
    pub base: String,
    pub entries: BTreeMap<String, Entry>,
    pub ops: HashMap<String, Op>,
    /// Principals that exist outside the emulated resources (users, groups), by id.
    pub principals: HashMap<String, Instant>,
    /// Pod subnets whose service association link outlives a deleted pool: subnet key → (the
    /// pool's id, when the link is gone).
    pub links: HashMap<String, (String, Instant)>,
    pub ips_handed_out: u32,
    pub zones_made: u32,
    pub calls: BTreeMap<String, u64>,
    pub requests: Vec<RequestRecord>,
    /// Requests still to throttle, and the Retry-After they get.
    pub throttle: (u32, u64),
    pub failures: Vec<Injected>,
    /// `(type name, code, message)`: the next operation on that type fails.
    pub op_failures: Vec<(String, String, String)>,
    pub latency: Duration,
    /// Namespaces not registered yet (lower case).
    pub unregistered: Vec<String>,
}

pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

pub(crate) fn new_etag(weak: bool) -> String {
    let u = uuid::Uuid::new_v4();
    if weak { format!("W/\"{u}\"") } else { u.to_string() }
}

fn etag_core(s: &str) -> &str {
    s.trim().trim_start_matches("W/").trim_matches('"')
}

/// `westeurope` for `West Europe`.
pub(crate) fn norm_location(l: &str) -> String {
    l.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

impl State {
    /// A resource provider's registration, and `register` (registered at once: the next GET
    /// says `Registered`, the POST itself `Registering`).
    fn provider(&mut self, namespace: &str, register: bool) -> Reply {
        let lower = namespace.to_ascii_lowercase();
        let registered = !self.unregistered.contains(&lower);
        let state = if register && !registered {
            self.unregistered.retain(|n| *n != lower);
            "Registering"
        } else if registered {
            "Registered"
        } else {
            "NotRegistered"
        };
        Reply::json(
            200,
            json!({"id": format!("/providers/{namespace}"), "namespace": namespace, "registrationState": state}),
        )
    }

    pub(crate) fn new(opts: Options, base: String) -> Self {
        State {
            base,
            entries: BTreeMap::new(),
            ops: HashMap::new(),
            principals: HashMap::new(),
            links: HashMap::new(),
            ips_handed_out: 0,
            zones_made: 0,
            calls: BTreeMap::new(),
            requests: Vec::new(),
            throttle: (0, 0),
            failures: Vec::new(),
            op_failures: Vec::new(),
            latency: Duration::ZERO,
            unregistered: opts.unregistered.iter().map(|n| n.to_ascii_lowercase()).collect(),
            opts,
        }
    }

    /// Answers one request: counts and logs it, then authentication, throttling, injected
    /// failures, and the resource operation.
    pub(crate) fn serve(&mut self, req: &Req, now: Instant) -> Reply {
        self.settle(now);
        let route = route::parse(req.method, req.path);
        *self.calls.entry(format!("{} {}", req.method, route.type_name())).or_default() += 1;
        let reply = self.answer(req, &route, now).unwrap_or_else(|e| Reply::error(&e));
        self.requests.push(RequestRecord {
            method: req.method.to_string(),
            path: req.path.to_string(),
            query: req.query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"),
            status: reply.status,
        });
        reply
    }

    fn answer(&mut self, req: &Req, route: &Route, now: Instant) -> Result<Reply, ArmError> {
        if let Some(token) = &self.opts.token {
            let given = req.authorization.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
            if given != Some(token.as_str()) {
                let mut r = Reply::error(&ArmError::new(
                    401,
                    "InvalidAuthenticationToken",
                    if given.is_none() {
                        "The access token is missing or is not a Bearer token."
                    } else {
                        "The access token is invalid."
                    },
                ));
                r.headers.push((
                    "WWW-Authenticate",
                    "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\""
                        .into(),
                ));
                return Ok(r);
            }
        }
        if self.throttle.0 > 0 {
            self.throttle.0 -= 1;
            let mut r = Reply::error(&ArmError::new(
                429,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation type. Please retry after the time in Retry-After.",
            ));
            r.headers.push(("Retry-After", self.throttle.1.to_string()));
            return Ok(r);
        }
        let type_name = route.type_name();
        if let Some(i) = self
            .failures
            .iter()
            .position(|f| f.method.eq_ignore_ascii_case(req.method) && f.type_name.eq_ignore_ascii_case(type_name))
        {
            return Err(self.failures.remove(i).error);
        }
        let ty = match route {
            Route::Unknown => {
                return Err(ArmError::bad_request(
                    "InvalidResourceType",
                    format!("The emulator serves no resource type at '{}'.", req.path),
                ));
            }
            Route::Poll { op, location } => return self.poll(op, *location),
            Route::Provider { namespace, register } => return Ok(self.provider(namespace, *register)),
            Route::Item(i) | Route::Credentials(i) => i.ty,
            Route::List(l) => l.ty,
        };
        match req.param("api-version") {
            None => {
                return Err(ArmError::bad_request(
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                ));
            }
            Some(v) if v != ty.api => {
                return Err(ArmError::bad_request(
                    "InvalidApiVersionParameter",
                    format!(
                        "The api-version '{v}' is invalid. The supported versions for '{}' are '{}'.",
                        ty.name, ty.api
                    ),
                ));
            }
            Some(_) => {}
        }
        // A fresh subscription: writes of an unregistered provider's types are refused.
        if let Route::Item(it) = route
            && req.method != "GET"
            && it.ty.kind != Kind::Group
        {
            let ns = it.ty.name.split('/').next().unwrap_or_default();
            if self.unregistered.contains(&ns.to_ascii_lowercase()) {
                return Err(ArmError::new(
                    409,
                    "MissingSubscriptionRegistration",
                    format!(
                        "The subscription is not registered to use namespace '{ns}'. See https://aka.ms/rps-not-found for how to register subscriptions."
                    ),
                ));
            }
        }
        match route {
            Route::List(l) => {
                self.check_group(l.rg.as_deref(), &l.parent, false)?;
                self.list(l, req)
            }
            Route::Credentials(c) => {
                self.check_group(c.rg.as_deref(), &c.id, true)?;
                self.credentials(c)
            }
            Route::Item(it) => {
                if it.ty.kind != Kind::Group {
                    self.check_group(it.rg.as_deref(), &it.id, req.method != "GET")?;
                }
                match req.method {
                    "GET" => self.present(&key(&it.id)).map(|v| Reply::json(200, v)).ok_or_else(|| self.not_found(it)),
                    "HEAD" if it.ty.kind == Kind::Group => {
                        Ok(Reply::empty(if self.entries.contains_key(&key(&it.id)) { 204 } else { 404 }))
                    }
                    "PUT" => self.put(it, req, now),
                    "DELETE" => self.delete(it, req, now),
                    m => Err(ArmError::new(
                        405,
                        "HttpMethodNotSupported",
                        format!("The HTTP method '{m}' is not supported for '{}'.", it.ty.name),
                    )),
                }
            }
            Route::Poll { .. } | Route::Provider { .. } | Route::Unknown => unreachable!("answered above"),
        }
    }

    /// 404 when the group in the path does not exist; 409 when a write goes into a group being
    /// deleted. `id` is what the request is about (its subscription is the group's).
    fn check_group(&self, rg: Option<&str>, id: &str, write: bool) -> Result<(), ArmError> {
        let Some(rg) = rg else { return Ok(()) };
        let sub = id.split('/').nth(2).unwrap_or_default();
        match self.entries.get(&key(&format!("/subscriptions/{sub}/resourcegroups/{rg}"))) {
            None => Err(ArmError::group_not_found(rg)),
            Some(g) if write && state_of(&g.value) == "Deleting" => Err(ArmError::new(
                409,
                "ResourceGroupBeingDeleted",
                format!("The resource group '{rg}' is in deprovisioning state and cannot perform this operation."),
            )),
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn not_found(&self, it: &Item) -> ArmError {
        match it.ty.kind {
            Kind::Group => ArmError::group_not_found(&it.name),
            Kind::RoleAssignment => {
                ArmError::new(404, "RoleAssignmentNotFound", format!("The role assignment '{}' is not found.", it.name))
            }
            _ if it.ty.tracked() => {
                ArmError::resource_not_found(&format!("{}/{}", it.ty.name, it.name), it.rg.as_deref().unwrap_or(""))
            }
            _ => ArmError::child_not_found(&it.id),
        }
    }

    /// 404 naming the parent (VNet, zone, cluster, identity, or a role assignment's scope) when it
    /// does not exist.
    pub(crate) fn require_parent(&self, parent: &str, rg: Option<&str>) -> Result<(), ArmError> {
        if self.entries.contains_key(&key(parent)) || parent.split('/').filter(|s| !s.is_empty()).count() == 2 {
            return Ok(());
        }
        let segs: Vec<&str> = parent.split('/').collect();
        let what = match segs.iter().rposition(|s| s.eq_ignore_ascii_case("providers")) {
            Some(p) => segs[p + 1..].join("/"),
            None => parent.to_string(),
        };
        Err(ArmError::resource_not_found(&what, rg.unwrap_or("")))
    }

    /// `If-Match` / `If-None-Match` against the stored etag.
    pub(crate) fn preconditions(&self, existing: Option<&Value>, req: &Req) -> Result<(), ArmError> {
        let etag = existing.and_then(|v| v["etag"].as_str()).map(etag_core);
        if let Some(m) = req.if_none_match
            && existing.is_some()
            && (m.trim() == "*" || etag == Some(etag_core(m)))
        {
            return Err(ArmError::precondition(
                "The resource already exists and the request's If-None-Match precondition failed.",
            ));
        }
        if let Some(m) = req.if_match {
            match existing {
                None => {
                    return Err(ArmError::precondition("The resource does not exist and the request has If-Match."));
                }
                Some(_) if m.trim() != "*" && etag != Some(etag_core(m)) => {
                    return Err(ArmError::precondition(format!(
                        "The etag '{m}' does not match the resource's current etag '{}'.",
                        etag.unwrap_or_default()
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Stores a resource, keeping its creation time if it existed.
    pub(crate) fn store(&mut self, ty: &'static Ty, id: &str, parent: &str, mut value: Value, now: Instant) {
        // Azure DNS answers its ids with the type in lower case (`…/dnszones/matih.ai/A/api`),
        // whatever the request said: a client must not compare ids with their case.
        if matches!(ty.kind, Kind::Zone | Kind::RecordSet)
            && let Some(i) = value["id"].as_str()
        {
            let seg = "/providers/microsoft.network/dnszones/";
            if let Some(at) = i.to_ascii_lowercase().find(seg) {
                let fixed = format!("{}/providers/Microsoft.Network/dnszones/{}", &i[..at], &i[at + seg.len()..]);
                value["id"] = Value::String(fixed);
            }
        }
        let k = key(id);
        let created = self.entries.get(&k).map_or(now, |e| e.created);
        self.entries.insert(k, Entry { ty, parent: key(parent), value, created });
    }

    /// The keys of a type under a parent, in id order.
    pub(crate) fn children(&self, parent: &str, kind: Kind) -> Vec<String> {
        let p = key(parent);
        self.entries.iter().filter(|(_, e)| e.ty.kind == kind && e.parent == p).map(|(k, _)| k.clone()).collect()
    }

    /// The location of a resource or of the nearest parent that has one.
    pub(crate) fn location_of(&self, k: &str) -> String {
        let mut k = k.to_string();
        while let Some(e) = self.entries.get(&k) {
            if let Some(l) = e.value["location"].as_str() {
                return l.to_string();
            }
            k = e.parent.clone();
        }
        "global".into()
    }

    // ---- operations -------------------------------------------------------------------------

    /// Starts an operation on a resource of type `ty` in `sub`/`location`; returns its id.
    pub(crate) fn start_op(&mut self, ty: &'static Ty, sub: &str, location: &str, work: Work, now: Instant) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let failure = self
            .op_failures
            .iter()
            .position(|(t, _, _)| t.eq_ignore_ascii_case(ty.name))
            .map(|i| self.op_failures.remove(i))
            .map(|(_, c, m)| (c, m));
        let path = if ty.kind == Kind::Group {
            format!("/subscriptions/{sub}/operationresults/{id}")
        } else {
            format!(
                "/subscriptions/{sub}/providers/{}/locations/{}/operations/{id}",
                ty.namespace(),
                norm_location(location)
            )
        };
        let op = Op {
            due: now + self.opts.lro_delay,
            start: now_rfc3339(),
            end: None,
            work,
            failure,
            done: false,
            path,
            api: ty.api,
        };
        self.ops.insert(id.clone(), op);
        id
    }

    /// `Azure-AsyncOperation` and/or `Location` headers for an operation, plus `Retry-After`.
    pub(crate) fn op_headers(&self, id: &str, async_op: bool, location: bool) -> Vec<(&'static str, String)> {
        let op = &self.ops[id];
        let mut h = vec![("Retry-After", self.opts.retry_after_secs.to_string())];
        if async_op {
            h.push(("Azure-AsyncOperation", format!("{}{}?api-version={}", self.base, op.path, op.api)));
        }
        if location {
            let path = op.path.replacen("/operations/", "/operationresults/", 1);
            h.push(("Location", format!("{}{path}?api-version={}", self.base, op.api)));
        }
        h
    }

    /// The unfinished operation that removes `k`, if any.
    pub(crate) fn removal_in_flight(&self, k: &str) -> Option<String> {
        self.ops.iter().find(|(_, o)| !o.done && matches!(&o.work, Work::Remove(r) if r == k)).map(|(id, _)| id.clone())
    }

    /// Finishes every operation that is due.
    pub(crate) fn settle(&mut self, now: Instant) {
        let due: Vec<String> =
            self.ops.iter().filter(|(_, o)| !o.done && o.due <= now).map(|(id, _)| id.clone()).collect();
        for id in due {
            let op = self.ops.get_mut(&id).expect("listed above");
            op.done = true;
            op.end = Some(now_rfc3339());
            let failed = op.failure.is_some();
            let keys = match &op.work {
                Work::Provision(keys) => keys.clone(),
                Work::Remove(k) if !failed => {
                    let k = k.clone();
                    self.remove_tree(&k);
                    continue;
                }
                Work::Remove(k) => vec![k.clone()],
            };
            for k in keys {
                if let Some(e) = self.entries.get_mut(&k) {
                    e.value["properties"]["provisioningState"] = json!(if failed { "Failed" } else { "Succeeded" });
                }
                if !failed {
                    self.finish_create(&k);
                }
            }
        }
    }

    /// What a create sets once it is done: a public IP's address.
    fn finish_create(&mut self, k: &str) {
        let Some(e) = self.entries.get_mut(k) else { return };
        if e.ty.kind == Kind::PublicIp && e.value["properties"]["ipAddress"].is_null() {
            let ip = crate::net::public_ip(self.ips_handed_out);
            self.ips_handed_out += 1;
            e.value["properties"]["ipAddress"] = json!(ip.to_string());
        }
    }

    /// Removes a resource and everything under it (children, role assignments scoped to it); a
    /// cluster takes its node resource group with it.
    pub(crate) fn remove_tree(&mut self, k: &str) {
        let prefix = format!("{k}/");
        let doomed: Vec<String> = self.entries.keys().filter(|e| *e == k || e.starts_with(&prefix)).cloned().collect();
        let mut node_groups = Vec::new();
        for d in doomed {
            let removed = self.entries.remove(&d);
            // AKS removes a pod subnet's service association link a while after its pool.
            if let Some(e) = &removed
                && e.ty.kind == Kind::Pool
                && let Some(subnet) = e.value["properties"]["podSubnetID"].as_str()
                && !self.opts.link_linger.is_zero()
            {
                let id = e.value["id"].as_str().unwrap_or_default().to_string();
                self.links.insert(key(subnet), (id, Instant::now() + self.opts.link_linger));
            }
            if let Some(e) = removed
                && e.ty.kind == Kind::Cluster
                && let Some(g) = e.value["properties"]["nodeResourceGroup"].as_str()
            {
                let sub = d.split('/').nth(2).unwrap_or_default();
                node_groups.push(key(&format!("/subscriptions/{sub}/resourcegroups/{g}")));
            }
        }
        for g in node_groups {
            self.remove_tree(&g);
        }
    }

    fn poll(&mut self, id: &str, location: bool) -> Result<Reply, ArmError> {
        let Some(op) = self.ops.get(id) else {
            return Err(ArmError::new(404, "OperationNotFound", format!("The operation '{id}' was not found.")));
        };
        let in_progress = !op.done;
        let retry = ("Retry-After", self.opts.retry_after_secs.to_string());
        if location {
            if in_progress {
                let mut r = Reply::empty(202);
                r.headers = self.op_headers(id, false, true);
                return Ok(r);
            }
            if let Some((code, message)) = &op.failure {
                return Err(ArmError::bad_request(code, message.clone()));
            }
            return Ok(match &op.work {
                Work::Provision(keys) => match keys.first().and_then(|k| self.present(k)) {
                    Some(v) => Reply::json(200, v),
                    None => Reply::empty(200),
                },
                Work::Remove(_) => Reply::empty(200),
            });
        }
        let status = match (&op.failure, in_progress) {
            (_, true) => "InProgress",
            (Some(_), false) => "Failed",
            (None, false) => "Succeeded",
        };
        let mut doc = json!({"id": op.path, "name": id, "status": status, "startTime": op.start});
        if let Some(end) = &op.end {
            doc["endTime"] = json!(end);
        }
        if let (Some((code, message)), false) = (&op.failure, in_progress) {
            doc["error"] = json!({"code": code, "message": message});
        }
        let mut r = Reply::json(200, doc);
        if in_progress {
            r.headers.push(retry);
        }
        Ok(r)
    }

    // ---- reads ------------------------------------------------------------------------------

    /// A resource as GET answers it: the stored document plus the views computed from others.
    pub(crate) fn present(&self, k: &str) -> Option<Value> {
        let e = self.entries.get(k)?;
        let mut v = e.value.clone();
        match e.ty.kind {
            Kind::Vnet => {
                let subnets: Vec<Value> =
                    self.children(k, Kind::Subnet).iter().filter_map(|s| self.present(s)).collect();
                v["properties"]["subnets"] = json!(subnets);
            }
            Kind::Cluster => {
                let pools: Vec<Value> = self
                    .children(k, Kind::Pool)
                    .iter()
                    .filter_map(|p| self.entries.get(p))
                    .map(|p| {
                        let mut profile = json!({"name": p.value["name"]});
                        if let Some(props) = p.value["properties"].as_object() {
                            profile.as_object_mut().expect("an object").extend(props.clone());
                        }
                        profile
                    })
                    .collect();
                v["properties"]["agentPoolProfiles"] = json!(pools);
            }
            Kind::Nsg => {
                let users: Vec<Value> = self
                    .entries
                    .values()
                    .filter(|s| s.ty.kind == Kind::Subnet)
                    .filter(|s| {
                        s.value["properties"]["networkSecurityGroup"]["id"].as_str().is_some_and(|id| key(id) == k)
                    })
                    .map(|s| json!({"id": s.value["id"]}))
                    .collect();
                if !users.is_empty() {
                    v["properties"]["subnets"] = json!(users);
                }
            }
            Kind::Zone => {
                let n = self.entries.values().filter(|r| r.ty.kind == Kind::RecordSet && r.parent == k).count();
                v["properties"]["numberOfRecordSets"] = json!(n);
            }
            _ => {}
        }
        Some(v)
    }

    fn list(&self, l: &List, req: &Req) -> Result<Reply, ArmError> {
        let parent = key(&l.parent);
        let child_list =
            matches!(l.ty.kind, Kind::Subnet | Kind::Pool | Kind::Fic | Kind::RecordSet | Kind::RecordSets);
        if child_list {
            self.require_parent(&l.parent, l.rg.as_deref())?;
        }
        if l.ty.kind == Kind::RoleAssignment {
            return self.list_role_assignments(l, req);
        }
        // `recordsets` lists record sets of every type.
        let in_sub = format!("{parent}/");
        let wanted = |e: &Entry| {
            if l.subscription_wide {
                return std::ptr::eq(e.ty, l.ty) && e.parent.starts_with(&in_sub);
            }
            e.parent == parent
                && (std::ptr::eq(e.ty, l.ty) || (l.ty.kind == Kind::RecordSets && e.ty.kind == Kind::RecordSet))
        };
        let keys: Vec<&String> = self.entries.iter().filter(|(_, e)| wanted(e)).map(|(k, _)| k).collect();
        let items = keys.into_iter().filter_map(|k| self.present(k)).collect();
        Ok(Reply::json(200, self.page(items, req)?))
    }

    /// One page of a list: `$skipToken` is the offset, `$top` (or the configured size) the length.
    pub(crate) fn page(&self, items: Vec<Value>, req: &Req) -> Result<Value, ArmError> {
        let bad = |p: &str| ArmError::bad_request("InvalidQueryParameterValue", format!("Invalid value for '{p}'."));
        let skip: usize = match req.param("$skipToken") {
            Some(s) => s.parse().map_err(|_| bad("$skipToken"))?,
            None => 0,
        };
        let size: usize = match req.param("$top") {
            Some(s) => s.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad("$top"))?,
            None => self.opts.page_size.max(1),
        };
        let end = (skip + size).min(items.len());
        let value: Vec<Value> = items.get(skip.min(items.len())..end).unwrap_or_default().to_vec();
        let mut out = json!({ "value": value });
        if end < items.len() {
            // Keys stay as they were (`$skipToken`, as ARM writes them); values are escaped.
            let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            let mut q: Vec<String> = req
                .query
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("$skipToken"))
                .map(|(k, v)| format!("{k}={}", enc(v)))
                .collect();
            q.push(format!("$skipToken={end}"));
            out["nextLink"] = json!(format!("{}{}?{}", self.base, req.path, q.join("&")));
        }
        Ok(out)
    }
}

/// `properties.provisioningState`, or `Succeeded` for kinds without one.
pub(crate) fn state_of(v: &Value) -> &str {
    v["properties"]["provisioningState"].as_str().unwrap_or("Succeeded")
}
