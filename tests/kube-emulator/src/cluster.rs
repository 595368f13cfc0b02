//! The emulated cluster's state and every write to it: create, replace, merge patch, server-side
//! apply, out-of-band edits, deletes with their cascades; the defaults the server fills in; the
//! controllers that write workload status; the seed a fresh EKS cluster holds.
//!
//! It speaks JSON values and [`ApiError`]s, not HTTP. Deletion goes as on a real server: an
//! object with finalizers is marked (`deletionTimestamp`) and stays until they are removed; a
//! namespace turns `Terminating`, the namespace controller empties it after a delay
//! ([`Cluster::progress`]) and it goes once nothing (and no finalizer) is left, its conditions
//! saying what holds it meanwhile. Not emulated: garbage collection through ownerReferences, pods
//! behind workloads, quota, immutable-field checks, defaults beyond a handful (listed in
//! [`Cluster::defaults`]).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::admission::{Admission, Request as AdmissionRequest};
use crate::catalog::{self, ResourceType};
use crate::error::{ApiError, Cause};
use crate::lists::ListTypes;
use crate::schema;
use crate::ssa::{self, ApplyRequest};
use crate::validate;
use crate::{Flavor, Readiness, WebhookBackends};

/// Nodes a DaemonSet is scheduled on.
pub(crate) const NODES: i64 = 2;

/// `(group, plural)`: one collection whatever the version.
pub(crate) type ResKey = (String, String);
/// `(namespace or "", name)`.
pub(crate) type ObjKey = (String, String);

/// A stored change, for watches.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub kind: &'static str,
    pub res: ResKey,
    pub obj: Value,
}

/// What the server does with fields the kind does not declare (`fieldValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

/// A write's operation.
pub(crate) enum Op<'a> {
    /// POST.
    Create(Value),
    /// PUT.
    Replace(Value),
    /// `application/merge-patch+json` (and strategic merge patch, treated the same).
    Merge(Value),
    /// `application/apply-patch+yaml`.
    Apply { config: Value, force: bool },
    /// An out-of-band edit ([`crate::KubeEmulator::update_as`]).
    Mutate(Box<dyn FnOnce(&mut Value) + 'a>),
    /// Re-run the controllers (readiness changed).
    Reconcile,
}

/// A write request.
pub(crate) struct Write<'a> {
    pub op: Op<'a>,
    pub manager: String,
    pub subresource: Option<String>,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

impl<'a> Write<'a> {
    pub(crate) fn new(op: Op<'a>, manager: &str) -> Self {
        Write {
            op,
            manager: manager.to_string(),
            subresource: None,
            dry_run: false,
            field_validation: FieldValidation::Warn,
        }
    }
}

/// A write's outcome.
#[derive(Debug)]
pub(crate) struct Written {
    pub obj: Value,
    pub created: bool,
    /// `Warning` headers (dropped unknown fields).
    pub warnings: Vec<String>,
}

/// The cluster.
pub(crate) struct Cluster {
    readiness: Readiness,
    rv: u64,
    objects: BTreeMap<ResKey, BTreeMap<ObjKey, Value>>,
    crd_types: Vec<ResourceType>,
    /// Readiness set by the test, by (group, kind, namespace, name).
    ready: HashMap<(String, String, String, String), bool>,
    events: Vec<Event>,
    next_ip: u32,
    /// Webhook backends and refusals, as the test set them.
    pub(crate) admission: Admission,
    /// How long after its deletion the namespace controller empties a namespace.
    termination: Duration,
    /// Namespaces being terminated, and when the namespace controller empties each.
    terminating: BTreeMap<String, Instant>,
    /// The revision of the last compaction: list snapshots before it cannot be continued.
    compacted: u64,
}

/// Now, to the second, RFC 3339 (`2025-01-02T03:04:05Z`).
pub(crate) fn now() -> String {
    let t = jiff::Timestamp::now();
    jiff::Timestamp::from_second(t.as_second()).expect("a current time is in range").to_string()
}

fn obj_key(ns: Option<&str>, name: &str) -> ObjKey {
    (ns.unwrap_or_default().to_string(), name.to_string())
}

/// Metadata fields the server sets; nobody owns them.
pub(crate) const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

fn strip_server_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in SERVER_METADATA {
            meta.remove(*k);
        }
    }
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, c| !c.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// RFC 7386.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("made a map above");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The body belongs at this URL: apiVersion, kind, name and namespace agree (400 otherwise).
fn check_identity(
    body: &Value,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    require_type: bool,
) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body of the request must be an object"));
    }
    let api_version = rt.api_version();
    match str_at(body, "/apiVersion") {
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        None if require_type => {
            return Err(ApiError::bad_request(format!("apiVersion must be set ({api_version}) in an apply patch")));
        }
        _ => {}
    }
    match str_at(body, "/kind") {
        Some(k) if k != rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
        None if require_type => {
            return Err(ApiError::bad_request(format!("kind must be set ({}) in an apply patch", rt.kind)));
        }
        _ => {}
    }
    if let Some(n) = str_at(body, "/metadata/name")
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    if rt.namespaced
        && let Some(n) = str_at(body, "/metadata/namespace")
        && Some(n) != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn check_resource_version(body: &Value, live: &Value, rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    match str_at(body, "/metadata/resourceVersion") {
        Some(rv) if Some(rv) != str_at(live, "/metadata/resourceVersion") => Err(ApiError::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )),
        _ => Ok(()),
    }
}

/// The part of an object whose change bumps `metadata.generation`.
fn spec_part(obj: &Value, rt: &ResourceType) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        if rt.status {
            m.remove("status");
        }
    }
    o
}

/// `obj` as served at `rt`'s version.
pub(crate) fn present(obj: &Value, rt: &ResourceType) -> Value {
    let mut o = obj.clone();
    o["apiVersion"] = json!(rt.api_version());
    o
}

fn set_meta(obj: &mut Value, key: &str, v: Option<Value>) {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let meta = obj["metadata"].as_object_mut().expect("made a map above");
    match v {
        Some(v) => {
            meta.insert(key.to_string(), v);
        }
        None => {
            meta.remove(key);
        }
    }
}

/// A condition as a controller writes it: unchanged if nothing about it changed, keeping its
/// `lastTransitionTime` while the status stays the same. `times` are the kind's timestamp fields
/// (`lastUpdateTime` for Deployments, `lastProbeTime` for Jobs, ...).
fn condition(old: &Value, times: &[&str], ty: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    let prev = old.as_array().and_then(|a| a.iter().find(|c| c["type"] == ty));
    if let Some(p) = prev
        && p["status"] == status
        && p["reason"] == reason
        && p["message"] == message
    {
        return p.clone();
    }
    let mut c = json!({"type": ty, "status": status, "reason": reason, "message": message});
    for t in times {
        c[*t] = json!(now);
    }
    if let Some(p) = prev
        && p["status"] == status
        && let Some(t) = p.get("lastTransitionTime")
    {
        c["lastTransitionTime"] = t.clone();
    }
    c
}

const DEPLOYMENT_TIMES: &[&str] = &["lastUpdateTime", "lastTransitionTime"];
const JOB_TIMES: &[&str] = &["lastProbeTime", "lastTransitionTime"];
const CRD_TIMES: &[&str] = &["lastTransitionTime"];

fn namespaces_key() -> ResKey {
    (String::new(), "namespaces".to_string())
}

/// `metadata.finalizers`.
fn finalizers(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether the object has been deleted and waits for its finalizers (or, a namespace, for the
/// namespace controller).
fn being_deleted(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())
}

fn short_hash(v: &Value) -> String {
    hex::encode(Sha256::digest(v.to_string().as_bytes()))[..10].to_string()
}

impl Cluster {
    pub(crate) fn new(flavor: Flavor, readiness: Readiness, webhooks: WebhookBackends, termination: Duration) -> Self {
        let mut c = Cluster {
            readiness,
            rv: 0,
            objects: BTreeMap::new(),
            crd_types: Vec::new(),
            ready: HashMap::new(),
            events: Vec::new(),
            next_ip: 11,
            admission: Admission { default_up: webhooks == WebhookBackends::Up, ..Admission::default() },
            termination,
            terminating: BTreeMap::new(),
            compacted: 0,
        };
        c.seed(flavor);
        c
    }

    /// Every served resource: built-ins, then those of custom resource definitions.
    pub(crate) fn types(&self) -> impl Iterator<Item = &ResourceType> {
        catalog::builtins().iter().chain(self.crd_types.iter())
    }

    pub(crate) fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types().find(|t| t.group == group && t.version == version && t.plural == plural).cloned()
    }

    pub(crate) fn resolve_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.types().find(|t| t.api_version() == api_version && t.kind == kind).cloned()
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    pub(crate) fn events_after(&self, rv: u64) -> &[Event] {
        let start = self.events.partition_point(|e| e.rv <= rv);
        &self.events[start..]
    }

    pub(crate) fn namespace_exists(&self, ns: &str) -> bool {
        self.namespace(ns).is_some()
    }

    fn namespace(&self, ns: &str) -> Option<&Value> {
        self.objects.get(&namespaces_key()).and_then(|m| m.get(&obj_key(None, ns)))
    }

    pub(crate) fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Option<Value> {
        let ns = if rt.namespaced { ns } else { None };
        self.objects.get(&rt.key()).and_then(|m| m.get(&obj_key(ns, name))).map(|o| present(o, rt))
    }

    /// Objects of `rt` (in `ns`, or everywhere), in namespace/name order.
    pub(crate) fn list(&self, rt: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        self.page(rt, ns, None, 0, |_| true, present).0
    }

    /// One page of the objects of `rt` (in `ns`, or everywhere) that `keep` accepts, in
    /// namespace/name order: those after the key `after`, at most `limit` of them (0: all). With
    /// the key of the page's last object when another accepted object follows it. Only what
    /// `show` makes of the page's objects is copied.
    pub(crate) fn page<T>(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        after: Option<&ObjKey>,
        limit: usize,
        keep: impl Fn(&Value) -> bool,
        show: impl Fn(&Value, &ResourceType) -> T,
    ) -> (Vec<T>, Option<ObjKey>) {
        use std::ops::Bound;
        let ns = if rt.namespaced { ns } else { None };
        let Some(m) = self.objects.get(&rt.key()) else { return (Vec::new(), None) };
        let from = match after {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Unbounded,
        };
        let mut accepted =
            m.range((from, Bound::Unbounded)).filter(|((n, _), o)| ns.is_none_or(|want| n == want) && keep(o));
        let mut items = Vec::new();
        let mut last = None;
        for (k, o) in accepted.by_ref() {
            items.push(show(o, rt));
            last = Some(k);
            if items.len() == limit {
                break;
            }
        }
        let more = limit > 0 && items.len() == limit && accepted.next().is_some();
        (items, last.filter(|_| more).cloned())
    }

    /// Whether a list's snapshot at resourceVersion `rv` can no longer be served: the store
    /// compacted past it, or (keeping no old versions) an object of `rt` was written or deleted
    /// after it.
    pub(crate) fn snapshot_gone(&self, rt: &ResourceType, rv: u64) -> bool {
        let res = rt.key();
        rv < self.compacted || self.events_after(rv).iter().any(|e| e.res == res)
    }

    /// Compacts the store as etcd does: the revision moves on (a real cluster writes leases and
    /// events all the time) and every snapshot before it is gone.
    pub(crate) fn compact(&mut self) {
        self.rv += 1;
        self.compacted = self.rv;
    }

    /// Why a watch from resourceVersion `rv` cannot start: the store compacted past it, so the
    /// changes since then are no longer known (the API server's watch cache says the same).
    pub(crate) fn watch_gone(&self, rv: u64) -> Option<ApiError> {
        (rv < self.compacted).then(|| ApiError::too_old_resource_version(rv, self.compacted))
    }

    fn store(&mut self, res: ResKey, key: ObjKey, mut obj: Value, kind: &'static str) -> Value {
        self.rv += 1;
        set_meta(&mut obj, "resourceVersion", Some(json!(self.rv.to_string())));
        self.events.push(Event { rv: self.rv, kind, res: res.clone(), obj: obj.clone() });
        self.objects.entry(res).or_default().insert(key, obj.clone());
        obj
    }

    fn remove(&mut self, res: &ResKey, key: &ObjKey) -> Option<Value> {
        let mut obj = self.objects.get_mut(res)?.remove(key)?;
        self.rv += 1;
        set_meta(&mut obj, "resourceVersion", Some(json!(self.rv.to_string())));
        self.events.push(Event { rv: self.rv, kind: "DELETED", res: res.clone(), obj: obj.clone() });
        Some(obj)
    }

    fn rebuild_crd_types(&mut self) {
        let key = ("apiextensions.k8s.io".to_string(), "customresourcedefinitions".to_string());
        self.crd_types =
            self.objects.get(&key).map(|m| m.values().flat_map(catalog::crd_types).collect()).unwrap_or_default();
    }

    fn is_ready(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<bool> {
        self.ready.get(&(rt.group.clone(), rt.kind.clone(), ns.to_string(), name.to_string())).copied()
    }

    /// Records readiness for a workload (even one not created yet) and re-runs its controller.
    pub(crate) fn set_ready(&mut self, rt: &ResourceType, ns: &str, name: &str, ready: bool) {
        self.ready.insert((rt.group.clone(), rt.kind.clone(), ns.to_string(), name.to_string()), ready);
        if self.get(rt, Some(ns), name).is_some() {
            let ns = rt.namespaced.then_some(ns);
            self.write(rt, ns, name, Write::new(Op::Reconcile, "kube-controller-manager"))
                .expect("re-running a controller on a stored object cannot fail");
        }
    }

    /// One write, with everything a real server does around it: identity checks, ownership,
    /// validation, server-set metadata, defaults, controllers, no-op detection, storage.
    pub(crate) fn write(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        w: Write<'_>,
    ) -> Result<Written, ApiError> {
        let ns = if rt.namespaced {
            Some(
                ns.ok_or_else(|| ApiError::bad_request(format!("{} is namespaced: a namespace is required", rt.kind)))?,
            )
        } else {
            None
        };
        if let Some(n) = ns
            && !self.namespace_exists(n)
        {
            return Err(ApiError::namespace_not_found(n));
        }
        let key = obj_key(ns, name);
        let live: Option<Value> = self.objects.get(&rt.key()).and_then(|m| m.get(&key)).cloned();
        let lists = ListTypes::of(rt);
        if let Some(n) = ns
            && live.is_none()
            && self.namespace(n).is_some_and(being_deleted)
        {
            let why = format!("unable to create new content in namespace {n} because it is being terminated");
            let mut e = ApiError::forbidden(rt, name, &why);
            e.add_cause("NamespaceTerminating", &format!("namespace {n} is being terminated"), "metadata.namespace");
            return Err(e);
        }
        let now = now();
        let api_version = rt.api_version();
        let status_sub = w.subresource.as_deref() == Some("status");
        let is_apply = matches!(w.op, Op::Apply { .. });
        let reconcile = matches!(w.op, Op::Reconcile);
        let not_found = || ApiError::not_found(rt, name);
        let with_status_of = |live: &Value, from: &Value| {
            let mut n = live.clone();
            match from.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    n.as_object_mut().map(|m| m.remove("status"));
                }
            }
            n
        };
        let keep_status = |obj: &mut Value, live: &Value| {
            if let Some(m) = obj.as_object_mut() {
                match live.get("status") {
                    Some(s) => {
                        m.insert("status".into(), s.clone());
                    }
                    None => {
                        m.remove("status");
                    }
                }
            }
        };

        // What the request sent: unknown fields in it are reported; others are just dropped.
        let mut sent: Option<Value> = None;
        let mut new = match w.op {
            Op::Create(mut body) => {
                sent = Some(body.clone());
                if live.is_some() {
                    return Err(ApiError::already_exists(rt, name));
                }
                check_identity(&body, rt, ns, name, false)?;
                strip_server_metadata(&mut body);
                if rt.status {
                    body.as_object_mut().map(|m| m.remove("status"));
                }
                body
            }
            Op::Replace(mut body) => {
                sent = Some(body.clone());
                let live = live.as_ref().ok_or_else(not_found)?;
                check_identity(&body, rt, ns, name, false)?;
                check_resource_version(&body, live, rt, name)?;
                strip_server_metadata(&mut body);
                if status_sub {
                    with_status_of(live, &body)
                } else {
                    if rt.status {
                        keep_status(&mut body, live);
                    }
                    body
                }
            }
            Op::Merge(patch) => {
                sent = Some(patch.clone());
                let live = live.as_ref().ok_or_else(not_found)?;
                check_identity(&patch, rt, ns, name, false)?;
                check_resource_version(&patch, live, rt, name)?;
                let mut merged = live.clone();
                merge_patch(&mut merged, &patch);
                strip_server_metadata(&mut merged);
                if status_sub {
                    with_status_of(live, &merged)
                } else {
                    if rt.status {
                        keep_status(&mut merged, live);
                    }
                    merged
                }
            }
            Op::Apply { mut config, force } => {
                check_identity(&config, rt, ns, name, true)?;
                if let Some(l) = &live {
                    check_resource_version(&config, l, rt, name)?;
                } else if status_sub {
                    return Err(not_found());
                }
                strip_nulls(&mut config);
                strip_server_metadata(&mut config);
                if status_sub {
                    config = json!({"status": config.get("status").cloned().unwrap_or(json!({}))});
                } else if rt.status {
                    config.as_object_mut().map(|m| m.remove("status"));
                }
                sent = Some(config.clone());
                let base =
                    live.clone().unwrap_or_else(|| json!({"apiVersion": api_version, "kind": rt.kind, "metadata": {}}));
                let req = ApplyRequest {
                    manager: &w.manager,
                    api_version: &api_version,
                    subresource: w.subresource.as_deref(),
                    force,
                    skip_status: rt.status && !status_sub,
                    now: &now,
                    lists: &lists,
                };
                ssa::apply(&base, &config, &req).map_err(|e| match e {
                    ssa::ApplyError::Conflicts(c) => ApiError::apply_conflicts(rt, name, &c),
                    ssa::ApplyError::Lists(problems) => ApiError::typed_patch(rt, name, &problems),
                })?
            }
            Op::Mutate(f) => {
                let mut n = live.clone().ok_or_else(not_found)?;
                f(&mut n);
                n
            }
            Op::Reconcile => live.clone().ok_or_else(not_found)?,
        };

        // Identity and server-set metadata come from the URL and the stored object, never the body.
        if !new.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        new["apiVersion"] = json!(api_version);
        new["kind"] = json!(rt.kind);
        set_meta(&mut new, "name", Some(json!(name)));
        set_meta(&mut new, "namespace", ns.map(|n| json!(n)));
        for k in [
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            set_meta(&mut new, k, live.as_ref().and_then(|l| l["metadata"].get(k).cloned()));
        }
        if let Some(l) = live.as_ref().filter(|l| being_deleted(l)) {
            let added: Vec<&str> = finalizers(&new).into_iter().filter(|f| !finalizers(l).contains(f)).collect();
            if !added.is_empty() {
                let cause = Cause {
                    reason: "FieldValueForbidden",
                    message: format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                    field: "metadata.finalizers".into(),
                };
                return Err(ApiError::invalid(rt, name, &[cause]));
            }
        }
        if !is_apply {
            set_meta(
                &mut new,
                "managedFields",
                live.as_ref().and_then(|l| l["metadata"].get("managedFields").cloned()),
            );
        }

        // Validation.
        let mut causes = validate::metadata_causes(&new, rt);
        causes.extend(validate::kind_causes(&new, rt));
        let report = validate::body(&new, rt);
        causes.extend(report.causes);
        if !causes.is_empty() {
            return Err(ApiError::invalid(rt, name, &causes));
        }
        let mut warnings = Vec::new();
        let reported: Vec<&Vec<schema::Seg>> =
            report.unknown.iter().filter(|p| sent.as_ref().is_some_and(|s| schema::get(s, p).is_some())).collect();
        if !reported.is_empty() {
            let paths: Vec<String> = reported.iter().map(|p| schema::path_string(p)).collect();
            match (is_apply, w.field_validation) {
                (_, FieldValidation::Ignore) => {}
                (true, _) => {
                    let causes: Vec<Cause> = paths
                        .iter()
                        .map(|p| Cause {
                            reason: "FieldValueInvalid",
                            message: "field not declared in schema".into(),
                            field: p.clone(),
                        })
                        .collect();
                    let mut e = ApiError::invalid(rt, name, &causes);
                    let dotted: Vec<String> =
                        paths.iter().map(|p| format!(".{p}: field not declared in schema")).collect();
                    e.message = format!(
                        "failed to create typed patch object ({}, Kind={}): {}",
                        if rt.group.is_empty() { format!("/{}", rt.version) } else { api_version.clone() },
                        rt.kind,
                        dotted.join(", ")
                    );
                    return Err(e);
                }
                (false, FieldValidation::Strict) => {
                    let list: Vec<String> = paths.iter().map(|p| format!("unknown field {p:?}")).collect();
                    return Err(ApiError::bad_request(format!("strict decoding error: {}", list.join(", "))));
                }
                (false, FieldValidation::Warn) => warnings.extend(paths.iter().map(|p| format!("unknown field {p:?}"))),
            }
        }
        for p in &report.unknown {
            validate::remove_path(&mut new, p);
        }

        // Admission webhooks see what the client asked for (writes to a subresource are not
        // sent to them, nor are the emulator's own controllers).
        if !reconcile && w.subresource.is_none() {
            self.admit(rt, if live.is_some() { "UPDATE" } else { "CREATE" }, ns, &new)?;
        }

        // Defaults first, so that a body which leaves them out is not a change.
        self.defaults(&mut new, rt, live.as_ref());

        // Server-set metadata.
        let generation = match &live {
            None => 1,
            Some(l) => {
                let g = l.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
                if spec_part(l, rt) != spec_part(&new, rt) { g + 1 } else { g }
            }
        };
        let generation_changed = live.is_none()
            || live.as_ref().and_then(|l| l.pointer("/metadata/generation")).and_then(Value::as_i64)
                != Some(generation);
        set_meta(&mut new, "generation", Some(json!(generation)));
        if live.is_none() {
            set_meta(&mut new, "uid", Some(json!(uuid::Uuid::new_v4().to_string())));
            set_meta(&mut new, "creationTimestamp", Some(json!(now)));
        }

        if !is_apply && !reconcile {
            let entries = live.as_ref().map(ssa::read_entries).unwrap_or_default();
            let u = ssa::Updater {
                manager: &w.manager,
                api_version: &api_version,
                subresource: w.subresource.as_deref(),
                now: &now,
                lists: &lists,
            };
            ssa::record_update(live.as_ref(), entries, &mut new, &u);
        }

        // Controllers react to spec changes (and to readiness changes).
        let is_crd = rt.is("apiextensions.k8s.io", "CustomResourceDefinition");
        if generation_changed || reconcile || is_crd {
            let before = new.clone();
            self.reconcile_status(&mut new, rt, ns.unwrap_or_default(), name, &now);
            if new.get("status") != before.get("status") {
                let manager = if is_crd { "kube-apiserver" } else { "kube-controller-manager" };
                let entries = ssa::read_entries(&before);
                let u = ssa::Updater {
                    manager,
                    api_version: &api_version,
                    subresource: Some("status"),
                    now: &now,
                    lists: &lists,
                };
                ssa::record_update(Some(&before), entries, &mut new, &u);
            }
        }
        ssa::prune(&mut new);

        if let Some(l) = &live
            && *l == new
        {
            return Ok(Written { obj: present(l, rt), created: false, warnings });
        }
        // The last finalizer of an object being deleted is gone: so is the object. (A namespace
        // goes when the namespace controller has emptied it, see `progress`.)
        if being_deleted(&new) && finalizers(&new).is_empty() && !rt.is("", "Namespace") {
            if w.dry_run {
                return Ok(Written { obj: present(&new, rt), created: false, warnings });
            }
            let mut gone = self.remove(&rt.key(), &key).expect("being deleted, so stored");
            gone["metadata"]["finalizers"] = json!([]);
            return Ok(Written { obj: present(&gone, rt), created: false, warnings });
        }
        if w.dry_run {
            return Ok(Written { obj: present(&new, rt), created: live.is_none(), warnings });
        }
        let kind = if live.is_some() { "MODIFIED" } else { "ADDED" };
        let stored = self.store(rt.key(), key, new, kind);
        if is_crd {
            self.rebuild_crd_types();
        }
        Ok(Written { obj: present(&stored, rt), created: live.is_none(), warnings })
    }

    /// Runs a write past the admission webhooks the stored configurations define.
    fn admit(&self, rt: &ResourceType, operation: &str, ns: Option<&str>, obj: &Value) -> Result<(), ApiError> {
        let mut configurations = Vec::new();
        for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
            if let Some(t) = self.resolve_kind("admissionregistration.k8s.io/v1", kind) {
                configurations.extend(self.list(&t, None));
            }
        }
        if configurations.is_empty() {
            return Ok(());
        }
        let namespace_labels: BTreeMap<String, String> = match ns {
            Some(n) => self
                .resolve("", "v1", "namespaces")
                .and_then(|t| self.get(&t, None, n))
                .and_then(|o| o.pointer("/metadata/labels").and_then(Value::as_object).cloned())
                .map(|m| m.into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_string()))).collect())
                .unwrap_or_default(),
            None => BTreeMap::new(),
        };
        self.admission.check(
            &configurations,
            &AdmissionRequest { rt, operation, object: obj, namespace_labels: &namespace_labels },
        )
    }

    /// Deletes one object (and a namespace's contents, a CRD's custom resources).
    pub(crate) fn delete(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        dry_run: bool,
        preconditions: &Value,
    ) -> Result<Value, ApiError> {
        let ns = if rt.namespaced { ns } else { None };
        let key = obj_key(ns, name);
        let live = self
            .objects
            .get(&rt.key())
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let is_ns = rt.is("", "Namespace");
        if is_ns && ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::forbidden(rt, name, "this namespace may not be deleted"));
        }
        for (field, pointer) in [("UID", "uid"), ("ResourceVersion", "resourceVersion")] {
            if let Some(want) = preconditions.get(pointer).and_then(Value::as_str) {
                let got = live["metadata"][pointer].as_str().unwrap_or_default();
                if want != got {
                    let why =
                        format!("Precondition failed: {field} in precondition: {want}, {field} in object meta: {got}");
                    return Err(ApiError::conflict(rt, name, &why));
                }
            }
        }
        // A namespace, or an object with finalizers, is marked and stays: the namespace until
        // the namespace controller has emptied it, the object until its finalizers are removed.
        if is_ns || !finalizers(&live).is_empty() {
            let mut out = live.clone();
            if !being_deleted(&out) {
                set_meta(&mut out, "deletionTimestamp", Some(json!(now())));
                set_meta(&mut out, "deletionGracePeriodSeconds", Some(json!(0)));
            }
            if is_ns {
                out["status"]["phase"] = json!("Terminating");
            }
            if dry_run {
                return Ok(present(&out, rt));
            }
            if out != live {
                out = self.store(rt.key(), key, out, "MODIFIED");
            }
            if is_ns {
                let due = Instant::now() + self.termination;
                self.terminating.entry(name.to_string()).or_insert(due);
            }
            return Ok(present(&out, rt));
        }
        let mut out = live.clone();
        if dry_run {
            return Ok(present(&out, rt));
        }
        let removed = self.remove(&rt.key(), &key).expect("found above");
        set_meta(&mut out, "resourceVersion", removed["metadata"].get("resourceVersion").cloned());
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            let res = (
                live["spec"]["group"].as_str().unwrap_or_default().to_string(),
                live.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default().to_string(),
            );
            let keys: Vec<ObjKey> = self.objects.get(&res).map(|m| m.keys().cloned().collect()).unwrap_or_default();
            for k in keys {
                self.remove(&res, &k);
            }
            self.objects.remove(&res);
            self.rebuild_crd_types();
        }
        Ok(present(&out, rt))
    }

    /// Whether a namespace is waiting for the namespace controller.
    pub(crate) fn terminating(&self) -> bool {
        !self.terminating.is_empty()
    }

    /// The namespace controller, for every deleted namespace whose delay has passed: deletes its
    /// contents (objects with finalizers are marked and stay), then removes its own `kubernetes`
    /// finalizer and the namespace once nothing is left and no finalizer of its own remains.
    /// Meanwhile its conditions say what holds it, in the real controller's words.
    pub(crate) fn progress(&mut self, at: Instant) {
        let due: Vec<String> = self.terminating.iter().filter(|(_, t)| **t <= at).map(|(n, _)| n.clone()).collect();
        for ns in due {
            self.empty_namespace(&ns);
        }
    }

    fn empty_namespace(&mut self, ns: &str) {
        let contents: Vec<(ResKey, ObjKey)> = self
            .objects
            .iter()
            .flat_map(|(res, m)| m.keys().filter(|(n, _)| n == ns).map(move |k| (res.clone(), k.clone())))
            .collect();
        // What is left: instances per resource (`configmaps.`, `widgets.example.com`), and per
        // finalizer.
        let mut remaining: BTreeMap<String, usize> = BTreeMap::new();
        let mut held: BTreeMap<String, usize> = BTreeMap::new();
        for (res, k) in contents {
            let obj = self.objects[&res][&k].clone();
            let fins = finalizers(&obj);
            if fins.is_empty() {
                self.remove(&res, &k);
                continue;
            }
            *remaining.entry(format!("{}.{}", res.1, res.0)).or_default() += 1;
            for f in fins {
                *held.entry(f.to_string()).or_default() += 1;
            }
            if !being_deleted(&obj) {
                let mut marked = obj;
                set_meta(&mut marked, "deletionTimestamp", Some(json!(now())));
                set_meta(&mut marked, "deletionGracePeriodSeconds", Some(json!(0)));
                self.store(res, k, marked, "MODIFIED");
            }
        }
        let key = obj_key(None, ns);
        let Some(live) = self.namespace(ns).cloned() else {
            self.terminating.remove(ns);
            return;
        };
        let mut next = live.clone();
        if remaining.is_empty() {
            next["spec"]["finalizers"] = json!([]);
            if finalizers(&next).is_empty() {
                self.remove(&namespaces_key(), &key);
                self.terminating.remove(ns);
                return;
            }
        }
        let list = |m: &BTreeMap<String, usize>, what: &str| {
            m.iter().map(|(k, n)| format!("{k} {what} {n} resource instances")).collect::<Vec<_>>().join(", ")
        };
        let stamp = now();
        let old = live["status"]["conditions"].clone();
        let c = |ty: &str, status: &str, reason: &str, message: &str| {
            condition(&old, CRD_TIMES, ty, status, reason, message, &stamp)
        };
        let content = if remaining.is_empty() {
            c("NamespaceContentRemaining", "False", "ContentRemoved", "All content successfully removed")
        } else {
            let message = format!("Some resources are remaining: {}", list(&remaining, "has"));
            c("NamespaceContentRemaining", "True", "SomeResourcesRemain", &message)
        };
        let fins = if held.is_empty() {
            c(
                "NamespaceFinalizersRemaining",
                "False",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
            )
        } else {
            let message = format!("Some content in the namespace has finalizers remaining: {}", list(&held, "in"));
            c("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain", &message)
        };
        next["status"]["conditions"] = json!([
            c(
                "NamespaceDeletionDiscoveryFailure",
                "False",
                "ResourcesDiscovered",
                "All resources successfully discovered"
            ),
            c(
                "NamespaceDeletionGroupVersionParsingFailure",
                "False",
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed"
            ),
            c(
                "NamespaceDeletionContentFailure",
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization"
            ),
            content,
            fins,
        ]);
        if next != live {
            self.store(namespaces_key(), key, next, "MODIFIED");
        }
    }

    /// The defaults the emulator fills in (a handful of the real server's):
    /// - Namespace: label `kubernetes.io/metadata.name`, `spec.finalizers: [kubernetes]`, `status.phase: Active`;
    /// - Service: `type: ClusterIP`, a `clusterIP`/`clusterIPs` from 10.100.0.0/16 (kept across
    ///   updates), `sessionAffinity`, `ipFamilies`, `ipFamilyPolicy`, `internalTrafficPolicy`;
    /// - Secret: `stringData` folded into `data`, `type: Opaque`;
    /// - Deployment: `replicas: 1`, `revisionHistoryLimit: 10`, `progressDeadlineSeconds: 600`;
    ///   DaemonSet: `revisionHistoryLimit: 10`;
    /// - CRD: `names.singular`, `names.listKind`, `conversion.strategy: None`.
    fn defaults(&mut self, obj: &mut Value, rt: &ResourceType, live: Option<&Value>) {
        let fill = |obj: &mut Value, pointer: &str, v: Value| {
            if obj.pointer(pointer).is_none() {
                let keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
                crate::fields::set(obj, &crate::fields::field_path(&keys), v);
            }
        };
        match (rt.group.as_str(), rt.kind.as_str()) {
            ("", "Namespace") => {
                let name = obj["metadata"]["name"].clone();
                if !obj["metadata"]["labels"].is_object() {
                    obj["metadata"]["labels"] = json!({});
                }
                obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
                fill(obj, "/spec/finalizers", json!(["kubernetes"]));
                fill(obj, "/status/phase", json!("Active"));
            }
            ("", "Service") => {
                fill(obj, "/spec/type", json!("ClusterIP"));
                if obj["spec"]["type"] != "ExternalName" {
                    if obj.pointer("/spec/clusterIP").is_none() {
                        let ip = match live.and_then(|l| l.pointer("/spec/clusterIP")) {
                            Some(ip) => ip.clone(),
                            None => {
                                let n = self.next_ip;
                                self.next_ip += 1;
                                json!(format!("10.100.{}.{}", n / 250, n % 250 + 1))
                            }
                        };
                        obj["spec"]["clusterIP"] = ip;
                    }
                    let ip = obj["spec"]["clusterIP"].clone();
                    fill(obj, "/spec/clusterIPs", json!([ip]));
                    fill(obj, "/spec/ipFamilies", json!(["IPv4"]));
                    fill(obj, "/spec/ipFamilyPolicy", json!("SingleStack"));
                    fill(obj, "/spec/internalTrafficPolicy", json!("Cluster"));
                }
                fill(obj, "/spec/sessionAffinity", json!("None"));
            }
            ("", "Secret") => {
                if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
                    for (k, v) in sd {
                        let enc = base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default());
                        fill(obj, "/data", json!({}));
                        obj["data"][k] = json!(enc);
                    }
                }
                fill(obj, "/type", json!("Opaque"));
            }
            ("apps", "Deployment") => {
                fill(obj, "/spec/replicas", json!(1));
                fill(obj, "/spec/revisionHistoryLimit", json!(10));
                fill(obj, "/spec/progressDeadlineSeconds", json!(600));
            }
            ("apps", "DaemonSet") => fill(obj, "/spec/revisionHistoryLimit", json!(10)),
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                let kind = obj.pointer("/spec/names/kind").and_then(Value::as_str).unwrap_or_default().to_string();
                fill(obj, "/spec/names/singular", json!(kind.to_lowercase()));
                fill(obj, "/spec/names/listKind", json!(format!("{kind}List")));
                fill(obj, "/spec/conversion/strategy", json!("None"));
            }
            _ => {}
        }
    }

    /// What the controllers write into `status`.
    fn reconcile_status(&self, obj: &mut Value, rt: &ResourceType, ns: &str, name: &str, now: &str) {
        let default_ready = self.readiness == Readiness::Immediate;
        let ready = self.is_ready(rt, ns, name);
        let generation = obj["metadata"]["generation"].clone();
        let old = obj.get("status").cloned().unwrap_or(json!({}));
        let replicas = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let rs_name = format!("{name}-{}", short_hash(&obj["spec"]["template"]));
        let status = match (rt.group.as_str(), rt.kind.as_str()) {
            ("apps", "Deployment") => {
                let ok = ready.unwrap_or(default_ready) || replicas == 0;
                let r = if ok { replicas } else { 0 };
                let mut s = json!({
                    "observedGeneration": generation,
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "readyReplicas": r,
                    "availableReplicas": r,
                });
                if !ok {
                    s["unavailableReplicas"] = json!(replicas);
                }
                let oc = &old["conditions"];
                s["conditions"] = if ok {
                    json!([
                        condition(
                            oc,
                            DEPLOYMENT_TIMES,
                            "Available",
                            "True",
                            "MinimumReplicasAvailable",
                            "Deployment has minimum availability.",
                            now
                        ),
                        condition(
                            oc,
                            DEPLOYMENT_TIMES,
                            "Progressing",
                            "True",
                            "NewReplicaSetAvailable",
                            &format!("ReplicaSet {rs_name:?} has successfully progressed."),
                            now
                        ),
                    ])
                } else {
                    json!([
                        condition(
                            oc,
                            DEPLOYMENT_TIMES,
                            "Available",
                            "False",
                            "MinimumReplicasUnavailable",
                            "Deployment does not have minimum availability.",
                            now
                        ),
                        condition(
                            oc,
                            DEPLOYMENT_TIMES,
                            "Progressing",
                            "True",
                            "ReplicaSetUpdated",
                            &format!("ReplicaSet {rs_name:?} is progressing."),
                            now
                        ),
                    ])
                };
                s
            }
            ("apps", "DaemonSet") => {
                let ok = ready.unwrap_or(default_ready);
                let r = if ok { NODES } else { 0 };
                let mut s = json!({
                    "observedGeneration": generation,
                    "desiredNumberScheduled": NODES,
                    "currentNumberScheduled": NODES,
                    "updatedNumberScheduled": NODES,
                    "numberMisscheduled": 0,
                    "numberReady": r,
                    "numberAvailable": r,
                });
                if !ok {
                    s["numberUnavailable"] = json!(NODES);
                }
                s
            }
            ("apps", "StatefulSet") | ("apps", "ReplicaSet") => {
                let ok = ready.unwrap_or(default_ready) || replicas == 0;
                let r = if ok { replicas } else { 0 };
                let mut s = json!({"observedGeneration": generation, "replicas": replicas, "readyReplicas": r, "availableReplicas": r});
                if rt.kind == "StatefulSet" {
                    s["currentReplicas"] = json!(replicas);
                    s["updatedReplicas"] = json!(replicas);
                    s["currentRevision"] = json!(rs_name);
                    s["updateRevision"] = json!(rs_name);
                } else {
                    s["fullyLabeledReplicas"] = json!(replicas);
                }
                s
            }
            ("batch", "Job") => {
                // Jobs complete at once unless the test said otherwise.
                let start = old.get("startTime").cloned().unwrap_or(json!(now));
                if ready.unwrap_or(true) {
                    let completions = obj.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
                    let oc = &old["conditions"];
                    let msg = "Reached expected number of succeeded pods";
                    let done = old.get("completionTime").cloned().unwrap_or(json!(now));
                    json!({
                        "startTime": start,
                        "completionTime": done,
                        "succeeded": completions,
                        "ready": 0,
                        "terminating": 0,
                        "uncountedTerminatedPods": {},
                        "conditions": [
                            condition(oc, JOB_TIMES, "SuccessCriteriaMet", "True", "CompletionsReached", msg, now),
                            condition(oc, JOB_TIMES, "Complete", "True", "CompletionsReached", msg, now),
                        ],
                    })
                } else {
                    json!({"startTime": start, "active": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}})
                }
            }
            ("", "Service") => {
                if obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") {
                    json!({"loadBalancer": {"ingress": [{"hostname": format!("{name}-{ns}.elb.emulator.local")}]}})
                } else {
                    json!({"loadBalancer": {}})
                }
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                let names = obj["spec"]["names"].clone();
                let storage: Vec<Value> = obj["spec"]["versions"]
                    .as_array()
                    .map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect())
                    .unwrap_or_default();
                let mut stored: Vec<Value> = old["storedVersions"].as_array().cloned().unwrap_or_default();
                for v in storage {
                    if !stored.contains(&v) {
                        stored.push(v);
                    }
                }
                let oc = &old["conditions"];
                let conds = [
                    condition(oc, CRD_TIMES, "NamesAccepted", "True", "NoConflicts", "no conflicts found", now),
                    condition(
                        oc,
                        CRD_TIMES,
                        "Established",
                        "True",
                        "InitialNamesAccepted",
                        "the initial names have been accepted",
                        now,
                    ),
                ];
                json!({"conditions": conds, "acceptedNames": names, "storedVersions": stored})
            }
            _ => return,
        };
        obj["status"] = status;
    }

    /// What a fresh cluster holds (see [`Flavor`]).
    fn seed(&mut self, flavor: Flavor) {
        let ns_rt = self.resolve("", "v1", "namespaces").expect("built-in");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            self.write(&ns_rt, None, ns, Write::new(Op::Create(body), "kube-apiserver")).expect("seed namespace");
        }
        let (objects, manager) = match flavor {
            Flavor::Bare => return,
            Flavor::Eks => (crate::seed::eks_objects(), "eks"),
            Flavor::Aks => (crate::seed::aks_objects(), "aks"),
            Flavor::Gke => (crate::seed::gke_objects(), "gke"),
        };
        for obj in objects {
            let api_version = obj["apiVersion"].as_str().expect("seed apiVersion").to_string();
            let kind = obj["kind"].as_str().expect("seed kind").to_string();
            let rt = self.resolve_kind(&api_version, &kind).expect("seed kinds are built in");
            let name = obj["metadata"]["name"].as_str().expect("seed name").to_string();
            if matches!(kind.as_str(), "Deployment" | "DaemonSet") {
                self.ready.insert((rt.group.clone(), kind.clone(), "kube-system".into(), name.clone()), true);
            }
            self.write(&rt, Some("kube-system"), &name, Write::new(Op::Create(obj), manager))
                .unwrap_or_else(|e| panic!("seed {kind} {name}: {e}"));
        }
    }
}
