//! The emulated projects: every resource as a stored JSON document keyed by its path, the
//! operations in flight, IAM policies, and the test controls (call counts, request log,
//! throttling, injected failures). One [`State`] sits behind one mutex; every request is answered
//! by [`State::serve`] in one go, without awaiting (compute's `wait` asks the server to come back
//! later instead of blocking).
//!
//! API-specific validation and documents live in `compute`, `container`, `dns` and `iam`; this
//! module holds what they share: routing to them, authentication, throttling, injected failures,
//! paging, operations and their timeline, and the views computed on read (a network's
//! `subnetworks`, an address's `users` and `status`, a cluster's `nodePools` and
//! `currentNodeCount`), which are never stored.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::{self, ApiError};
use crate::route::{self, Api, Kind, Target};
use crate::{Options, RequestRecord, Throttle};

/// One stored resource.
pub(crate) struct Entry {
    pub kind: Kind,
    pub value: Value,
    /// When it was first stored (IAM's principal lag counts from here).
    pub created: Instant,
    /// Creation order, for the views and lists that keep it.
    pub seq: u64,
}

/// What an operation does when it finishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// A compute insert (already stored): a failed one takes the resource away again.
    Insert,
    /// A delete: the target and everything under it go, unless the operation fails.
    Delete,
    /// A change already made (patch, update, labels, size, ...).
    Update,
    /// A cluster or node pool create: it (and a new cluster's pools) becomes `RUNNING`, or
    /// `ERROR` if the operation fails.
    Provision,
    /// A Cloud DNS change: its status becomes `done`.
    DnsChange,
}

/// How an operation ends when it is made to fail.
#[derive(Clone, Debug)]
pub(crate) struct OpFailure {
    /// A compute error code (`QUOTA_EXCEEDED`, `RESOURCE_IN_USE_BY_ANOTHER_RESOURCE`) or a
    /// canonical status name (`INTERNAL`).
    pub code: String,
    pub message: String,
}

pub(crate) struct Op {
    pub api: Api,
    /// `projects/p/global/operations/<name>`, `projects/p/regions/r/operations/<name>`,
    /// `projects/p/locations/l/operations/<name>`, or a DNS change's key.
    pub key: String,
    pub name: String,
    pub kind: Kind,
    /// The key of the resource it works on.
    pub target: String,
    /// The cluster a container operation runs on: one at a time per cluster.
    pub cluster: Option<String>,
    /// `insert`, `delete`, ... (compute); `CREATE_CLUSTER`, ... (container).
    pub op_type: String,
    pub work: Work,
    pub created: Instant,
    pub due: Instant,
    pub delay: Duration,
    pub start: String,
    pub end: Option<String>,
    pub done: bool,
    pub failure: Option<OpFailure>,
    /// Compute's `requestId`, echoed as `clientOperationId`.
    pub request_id: Option<String>,
    /// Compute's numeric operation id.
    pub id: String,
    pub target_id: Option<String>,
}

pub(crate) struct Injected {
    pub method: String,
    /// As counted by `calls()`: `compute.networks`, `container.nodePools:setSize`, `operations`.
    pub name: String,
    pub error: ApiError,
}

/// A request, as the state sees it.
pub(crate) struct Req<'a> {
    pub method: &'a str,
    /// Percent-decoded.
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

impl Req<'_> {
    pub(crate) fn param(&self, k: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// The body as a JSON object; an empty body is `{}`.
    pub(crate) fn json(&self, api: Api) -> Result<Value, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        let v: Value = serde_json::from_slice(self.body).map_err(|e| {
            ApiError::for_api(Some(api), 400, "INVALID_ARGUMENT", format!("Invalid JSON payload received. {e}"))
        })?;
        if !v.is_object() {
            return Err(ApiError::for_api(
                Some(api),
                400,
                "INVALID_ARGUMENT",
                "Invalid JSON payload received. The request body must be a JSON object.",
            ));
        }
        Ok(v)
    }
}

/// An answer: status, JSON body (none for 204), extra headers, and for a compute `wait` on an
/// unfinished operation the instant to answer again and the operation's key.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    pub wait: Option<String>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Reply { status, body: Some(body), headers: Vec::new(), wait: None }
    }

    pub(crate) fn ok(body: Value) -> Self {
        Self::json(200, body)
    }

    pub(crate) fn empty(status: u16) -> Self {
        Reply { status, body: None, headers: Vec::new(), wait: None }
    }

    pub(crate) fn error(e: &ApiError) -> Self {
        Reply::json(e.http, e.body())
    }
}

pub(crate) struct State {
    pub opts: Options,
    /// `http://127.0.0.1:PORT`, for selfLinks.
    pub base: String,
    pub entries: BTreeMap<String, Entry>,
    pub ops: BTreeMap<String, Op>,
    /// `(project, requestId)` → the compute operation it started.
    pub request_ids: HashMap<(String, String), String>,
    /// IAM policies by the key of the zone or service account they sit on.
    pub policies: BTreeMap<String, Value>,
    /// Nodes per zone of each node pool (by key).
    pub pool_sizes: HashMap<String, i64>,
    pub seq: u64,
    pub ids: u64,
    pub ips_handed_out: u32,
    pub zones_made: u32,
    pub calls: BTreeMap<String, u64>,
    pub requests: Vec<RequestRecord>,
    /// Requests still to throttle, and how.
    pub throttle: (u32, Throttle),
    pub failures: Vec<Injected>,
    /// `(kind, code, message)`: the next operation on that kind fails.
    pub op_failures: Vec<(Kind, String, String)>,
    pub latency: Duration,
}

pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// 8 random bytes, base64: compute fingerprints, IAM etags. Discovery clients (compute, DNS)
/// read bytes in the URL-safe alphabet, proto clients (IAM) in the standard one; these strings
/// avoid the characters the two differ in (`+/` vs `-_`), so both read them.
pub(crate) fn random_fingerprint() -> String {
    loop {
        let s = base64::engine::general_purpose::STANDARD.encode(&uuid_bytes()[..8]);
        if !s.contains(['+', '/']) {
            return s;
        }
    }
}

pub(crate) fn uuid_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// A stable fingerprint of a JSON value (compute `labelFingerprint`): FNV-1a over its text,
/// rehashed until its base64 reads the same in both alphabets (see [`random_fingerprint`]).
pub(crate) fn fingerprint_of(v: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    loop {
        let s = base64::engine::general_purpose::STANDARD.encode(h.to_be_bytes());
        if !s.contains(['+', '/']) {
            return s;
        }
        h = h.wrapping_mul(0x0100_0000_01b3) ^ 0x5bd1_e995;
    }
}

/// The key a compute reference (a full URL, `projects/...`, `global/...`, `regions/...`) points
/// at, resolved against `project`; `None` for a bare name.
pub(crate) fn link_key(project: &str, s: &str) -> Option<String> {
    if let Some(i) = s.find("projects/") {
        return Some(s[i..].trim_end_matches('/').to_string());
    }
    if s.starts_with("global/") || s.starts_with("regions/") {
        return Some(format!("projects/{project}/{s}"));
    }
    None
}

/// The last segment of a path or URL.
pub(crate) fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// `projects/{p}/...` → `p`.
pub(crate) fn project_of(key: &str) -> &str {
    key.split('/').nth(1).unwrap_or_default()
}

/// Whether `s` is a lower-case RFC 1035 label of at most `max` characters.
pub(crate) fn rfc1035(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// RFC 7396 JSON merge patch: objects merge, `null` removes, anything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// An optional JSON object field (absent or null → empty).
pub(crate) fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// An optional JSON array field (absent or null → empty).
pub(crate) fn array(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

impl State {
    pub(crate) fn new(opts: Options, base: String) -> Self {
        State {
            base,
            entries: BTreeMap::new(),
            ops: BTreeMap::new(),
            request_ids: HashMap::new(),
            policies: BTreeMap::new(),
            pool_sizes: HashMap::new(),
            seq: 0,
            ids: 0,
            ips_handed_out: 0,
            zones_made: 0,
            calls: BTreeMap::new(),
            requests: Vec::new(),
            throttle: (0, Throttle::TooManyRequests),
            failures: Vec::new(),
            op_failures: Vec::new(),
            latency: Duration::ZERO,
            opts,
        }
    }

    /// A fresh numeric id (19 digits, as compute's and Cloud DNS's look), never the same twice.
    pub(crate) fn next_id(&mut self) -> String {
        self.ids += 1;
        (4_000_000_000_000_000_000u64 + self.ids * 7_919_113 + u64::from(uuid_bytes()[0])).to_string()
    }

    /// Answers one request: counts and logs it, then authentication, throttling, injected
    /// failures, and the API call.
    pub(crate) fn serve(&mut self, req: &Req, now: Instant) -> Reply {
        self.settle(now);
        let route = route::parse(req.path);
        let name = route.call_name();
        *self.calls.entry(format!("{} {name}", req.method)).or_default() += 1;
        let reply = self.answer(req, route.api, &route.target, &name, now).unwrap_or_else(|e| Reply::error(&e));
        self.requests.push(RequestRecord {
            method: req.method.to_string(),
            path: req.path.to_string(),
            query: req.query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"),
            status: reply.status,
        });
        reply
    }

    fn answer(
        &mut self,
        req: &Req,
        api: Option<Api>,
        target: &Target,
        name: &str,
        now: Instant,
    ) -> Result<Reply, ApiError> {
        if let Some(token) = &self.opts.token {
            let given = req.authorization.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
            if given != Some(token.as_str()) {
                let mut e = ApiError::for_api(
                    api,
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or \
                     other valid authentication credential. See \
                     https://developers.google.com/identity/sign-in/web/devconsole-project.",
                );
                if e.reason.is_some() {
                    e.reason = Some(("authError".into(), "global".into()));
                }
                let mut r = Reply::error(&e);
                r.headers.push(("WWW-Authenticate", "Bearer realm=\"https://accounts.google.com/\"".into()));
                return Ok(r);
            }
        }
        if self.throttle.0 > 0 {
            self.throttle.0 -= 1;
            return Err(match self.throttle.1 {
                Throttle::TooManyRequests => ApiError::for_api(
                    api,
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'.",
                )
                .with_domain("usageLimits"),
                Throttle::RateLimitExceeded => {
                    ApiError::legacy(403, "rateLimitExceeded", "Rate Limit Exceeded").with_domain("usageLimits")
                }
            });
        }
        if let Some(i) = self.failures.iter().position(|f| f.method == req.method && f.name == name) {
            return Err(self.failures.remove(i).error);
        }
        match (api, target) {
            (_, Target::Unknown) | (None, _) => Err(ApiError::for_api(
                api,
                404,
                "NOT_FOUND",
                format!("The emulator serves nothing at {} {}.", req.method, req.path),
            )),
            (Some(Api::Compute), t) => self.compute(req, t, now),
            (Some(Api::Container), t) => self.container(req, t, now),
            (Some(Api::Dns), t) => self.dns(req, t, now),
            (Some(Api::Iam), t) => self.iam(req, t, now),
        }
    }

    /// 405-ish answer for a method a path does not take (Google answers 404 for those).
    pub(crate) fn no_method(api: Api, req: &Req) -> ApiError {
        ApiError::for_api(
            Some(api),
            404,
            "NOT_FOUND",
            format!("The emulator serves no {} on {}.", req.method, req.path),
        )
    }

    // ---- the store --------------------------------------------------------------------------

    /// Stores a resource, keeping its creation time and order if it existed.
    pub(crate) fn store(&mut self, kind: Kind, key: &str, value: Value, now: Instant) {
        let (created, seq) = match self.entries.get(key) {
            Some(e) => (e.created, e.seq),
            None => {
                self.seq += 1;
                (now, self.seq)
            }
        };
        self.entries.insert(key.to_string(), Entry { kind, value, created, seq });
    }

    /// Removes a resource and everything under it (a cluster's pools, a zone's record sets and
    /// changes), with their IAM policies.
    pub(crate) fn remove_tree(&mut self, key: &str) {
        let prefix = format!("{key}/");
        self.entries.retain(|k, _| k != key && !k.starts_with(&prefix));
        self.policies.retain(|k, _| k != key && !k.starts_with(&prefix));
        self.pool_sizes.retain(|k, _| k != key && !k.starts_with(&prefix));
    }

    /// Keys of a kind directly under `parent` (`projects/p/global`), in key order.
    pub(crate) fn keys_under(&self, kind: Kind, parent: &str) -> Vec<String> {
        let prefix = format!("{parent}/");
        self.entries.iter().filter(|(k, e)| e.kind == kind && k.starts_with(&prefix)).map(|(k, _)| k.clone()).collect()
    }

    /// Every key of a kind in a project.
    pub(crate) fn keys_in_project(&self, kind: Kind, project: &str) -> Vec<String> {
        self.keys_under(kind, &format!("projects/{project}"))
    }

    /// `<base>/compute/v1/<key>`.
    pub(crate) fn compute_link(&self, key: &str) -> String {
        format!("{}/compute/v1/{key}", self.base)
    }

    /// A resource as GET answers it: the stored document plus the views computed from others.
    pub(crate) fn present(&self, key: &str) -> Option<Value> {
        let e = self.entries.get(key)?;
        let mut v = e.value.clone();
        match e.kind {
            Kind::Network => {
                let project = project_of(key);
                let subnets: Vec<Value> = self
                    .keys_in_project(Kind::Subnetwork, project)
                    .into_iter()
                    .filter(|s| self.ref_of(s, "network").as_deref() == Some(key))
                    .map(|s| json!(self.compute_link(&s)))
                    .collect();
                if !subnets.is_empty() {
                    v["subnetworks"] = json!(subnets);
                }
            }
            Kind::Address => {
                let mut users: Vec<Value> = array(&v["users"]);
                for r in self.keys_in_project(Kind::Router, project_of(key)) {
                    let uses = array(&self.entries[&r].value["nats"]).iter().any(|n| {
                        array(&n["natIps"])
                            .iter()
                            .any(|ip| ip.as_str().and_then(|s| link_key(project_of(key), s)).as_deref() == Some(key))
                    });
                    if uses {
                        users.push(json!(self.compute_link(&r)));
                    }
                }
                if users.is_empty() {
                    v.as_object_mut().expect("an object").remove("users");
                    v["status"] = json!("RESERVED");
                } else {
                    v["users"] = json!(users);
                    v["status"] = json!("IN_USE");
                }
            }
            Kind::Cluster => self.present_cluster(key, &mut v),
            _ => {}
        }
        Some(v)
    }

    /// The key a stored compute document's reference field points at.
    pub(crate) fn ref_of(&self, key: &str, field: &str) -> Option<String> {
        let v = &self.entries.get(key)?.value;
        link_key(project_of(key), v[field].as_str()?)
    }

    // ---- paging -----------------------------------------------------------------------------

    /// One page of `items`: the size from `size_param` (or [`Options::page_size`]), at most
    /// `cap` (more is refused for compute, clamped elsewhere); the page token is opaque.
    pub(crate) fn page(
        &self,
        items: Vec<Value>,
        req: &Req,
        api: Api,
        size_param: &str,
        cap: usize,
    ) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let bad = |field: &str, v: &str| {
            ApiError::for_api(Some(api), 400, "INVALID_ARGUMENT", format!("Invalid value for field '{field}': '{v}'."))
        };
        let mut size = match req.param(size_param) {
            Some(s) => s.parse::<usize>().map_err(|_| bad(size_param, s))?,
            None => 0,
        };
        let asked = size > 0;
        if size == 0 {
            size = self.opts.page_size.max(1);
        }
        if size > cap {
            if api == Api::Compute && asked {
                return Err(ApiError::invalid(format!(
                    "Invalid value for field '{size_param}': '{size}'. Must be less than or equal to {cap}"
                )));
            }
            size = cap;
        }
        let skip = match req.param("pageToken") {
            Some(t) => decode_token(t).ok_or_else(|| bad("pageToken", t))?,
            None => 0,
        };
        let end = (skip + size).min(items.len());
        let page = items.get(skip.min(items.len())..end).unwrap_or_default().to_vec();
        let next = (end < items.len()).then(|| encode_token(end));
        Ok((page, next))
    }

    // ---- operations -------------------------------------------------------------------------

    /// The unfinished operation working on `target`, if any.
    pub(crate) fn in_flight(&self, target: &str) -> Option<&Op> {
        self.ops.values().find(|o| !o.done && o.target == target && o.work != Work::DnsChange)
    }

    /// Starts an operation; returns its key. The next failure injected for `kind` is its fate.
    #[allow(clippy::too_many_arguments)] // one call per API; a struct would only move the list
    pub(crate) fn start_op(
        &mut self,
        api: Api,
        scope: &str,
        kind: Kind,
        target: &str,
        op_type: &str,
        work: Work,
        now: Instant,
    ) -> String {
        let failure = self
            .op_failures
            .iter()
            .position(|(k, _, _)| *k == kind)
            .map(|i| self.op_failures.remove(i))
            .map(|(_, code, message)| OpFailure { code, message });
        self.start_op_with(api, scope, kind, target, op_type, work, failure, now)
    }

    /// [`State::start_op`] with a failure decided by the caller (or none).
    #[allow(clippy::too_many_arguments)] // as above
    pub(crate) fn start_op_with(
        &mut self,
        api: Api,
        scope: &str,
        kind: Kind,
        target: &str,
        op_type: &str,
        work: Work,
        failure: Option<OpFailure>,
        now: Instant,
    ) -> String {
        let u = uuid::Uuid::new_v4().simple().to_string();
        let millis = jiff::Timestamp::now().as_millisecond();
        let name = match api {
            Api::Compute => format!("operation-{millis}-{}-{}-{}", &u[..13], &u[13..21], &u[21..29]),
            _ => format!("operation-{millis}-{}", &u[..8]),
        };
        let key = format!("{scope}/operations/{name}");
        let id = self.next_id();
        let target_id = self.entries.get(target).and_then(|e| e.value["id"].as_str().map(String::from));
        let cluster = (api == Api::Container).then(|| {
            let segs: Vec<&str> = target.split('/').collect();
            segs[..segs.len().min(6)].join("/")
        });
        let op = Op {
            api,
            key: key.clone(),
            name,
            kind,
            target: target.to_string(),
            cluster,
            op_type: op_type.to_string(),
            work,
            created: now,
            due: now + self.opts.operation_delay,
            delay: self.opts.operation_delay,
            start: now_rfc3339(),
            end: None,
            done: false,
            failure,
            request_id: None,
            id,
            target_id,
        };
        self.ops.insert(key.clone(), op);
        key
    }

    /// `PENDING`, `RUNNING` or `DONE`: pending for the first half of the delay, then running.
    /// `fresh`: the answer to the request that started it, which is always `PENDING`.
    pub(crate) fn op_status(op: &Op, now: Instant, fresh: bool) -> &'static str {
        if op.done {
            "DONE"
        } else if fresh || now.duration_since(op.created) < op.delay / 2 {
            "PENDING"
        } else {
            "RUNNING"
        }
    }

    /// Finishes every operation that is due.
    pub(crate) fn settle(&mut self, now: Instant) {
        let due: Vec<String> =
            self.ops.iter().filter(|(_, o)| !o.done && o.due <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            let op = self.ops.get_mut(&key).expect("listed above");
            op.done = true;
            op.end = Some(now_rfc3339());
            let (work, target, failed, kind) = (op.work, op.target.clone(), op.failure.clone(), op.kind);
            let message = failed.as_ref().map(|f| f.message.clone());
            match (work, failed.is_some()) {
                (Work::Insert, true) | (Work::Delete, false) => {
                    if kind == Kind::Network {
                        self.remove_auto_subnets(&target);
                    }
                    self.remove_tree(&target);
                }
                (Work::Insert, false) => {}
                (Work::Delete, true) | (Work::Provision, true) => {
                    if matches!(kind, Kind::Cluster | Kind::NodePool) {
                        self.set_container_status(&target, "ERROR", message.as_deref(), true);
                    }
                }
                (Work::Provision, false) => self.finish_provision(&target, kind),
                (Work::Update, _) => {
                    if matches!(kind, Kind::Cluster | Kind::NodePool) {
                        self.set_container_status(&target, "RUNNING", None, false);
                    }
                }
                (Work::DnsChange, _) => {
                    if let Some(e) = self.entries.get_mut(&target) {
                        e.value["status"] = json!("done");
                    }
                }
            }
        }
    }

    /// Finishes every operation in flight now.
    pub(crate) fn complete_all(&mut self, now: Instant) {
        for op in self.ops.values_mut() {
            op.due = op.due.min(now);
        }
        self.settle(now);
    }

    /// The operation a compute `wait` asked about, as it is now (after settling).
    pub(crate) fn waited(&mut self, key: &str, now: Instant) -> Option<(Value, bool)> {
        self.settle(now);
        let done = self.ops.get(key)?.done;
        Some((self.render_compute_op(key, now, false)?, done))
    }
}

fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("emulator-page:{offset}"))
}

fn decode_token(t: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok()?;
    String::from_utf8(raw).ok()?.strip_prefix("emulator-page:")?.parse().ok()
}

/// The `errors[]` code of a failure as compute's operation error carries it.
pub(crate) fn op_error_http(f: &OpFailure) -> u16 {
    error::http_for_code(&f.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}, "e": [2], "f": "x"}));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "e": [2], "f": "x"}));
    }

    #[test]
    fn names_links_and_tokens() {
        assert!(rfc1035("matih-dev-1", 63) && !rfc1035("Matih", 63) && !rfc1035("a-", 63) && !rfc1035("1a", 63));
        assert!(!rfc1035(&"a".repeat(64), 63));
        assert_eq!(
            link_key("p", "https://www.googleapis.com/compute/v1/projects/q/global/networks/n").as_deref(),
            Some("projects/q/global/networks/n")
        );
        assert_eq!(link_key("p", "global/networks/n").as_deref(), Some("projects/p/global/networks/n"));
        assert_eq!(link_key("p", "n"), None);
        assert_eq!(decode_token(&encode_token(42)), Some(42));
        assert_eq!(decode_token("garbage"), None);
        assert_eq!(fingerprint_of(&json!({"a": "b"})), fingerprint_of(&json!({"a": "b"})));
        assert_ne!(fingerprint_of(&json!({"a": "b"})), fingerprint_of(&json!({"a": "c"})));
    }
}
