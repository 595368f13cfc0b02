//! The HTTP/1.1 front: authentication, routing of Kubernetes API paths, discovery documents,
//! request parameters (`fieldManager`, `force`, `dryRun`, `fieldValidation`, selectors), watches,
//! and the request log.
//!
//! All state changes go through [`Cluster`] under one lock; nothing here awaits while holding it.
//! Objects and lists are served whole or, when the `Accept` header asks for it
//! (`application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`, or `PartialObjectMetadata`
//! for one object), as their metadata only; an `Accept` header with nothing the server can answer
//! with gets 406 NotAcceptable, as from a real API server.
//! Not served: HTTP/2, protobuf, tables (`as=Table`), metadata-only watches, OpenAPI documents, pod
//! logs/exec/port-forward, JSON patch, `/api/v1/watch/...` legacy watch paths.
//! Lists page (`limit`, `continue`) from the store's namespace/name order. A continue token expires
//! (410 Expired) when the store compacts, as on a real server, and also as soon as anything of its
//! kind changes, where a real server would serve the first page's snapshot until its next
//! compaction (every five minutes by default).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use crate::catalog::{self, ResourceType};
use crate::cluster::{Cluster, FieldValidation, ObjKey, Op, Write};
use crate::error::ApiError;
use crate::selector::{FieldSelector, LabelSelector};
use crate::{Auth, RequestRecord, auth};

/// Whether the caller may do anything yet, and the message of a refusal.
pub(crate) type Authorizer = (std::sync::Arc<dyn Fn() -> bool + Send + Sync>, String);

/// How lists page, as the test set it (all 0 at first).
#[derive(Default)]
pub(crate) struct Paging {
    /// The most objects a page holds when the client asks for pages (0: as asked).
    pub cap: AtomicUsize,
    /// The store compacts after every this many pages served (0: never).
    pub compact_every: AtomicUsize,
    /// Pages served so far.
    pub served: AtomicUsize,
}

/// State shared by the server and the test-facing handle.
pub(crate) struct Shared {
    pub cluster: Mutex<Cluster>,
    pub requests: Mutex<Vec<RequestRecord>>,
    pub auth: Auth,
    /// When set, an authenticated request is refused with 403 while it says no: an authorizer
    /// that does not know the caller yet (see [`crate::KubeEmulator::authorize_when`]).
    pub authorizer: Mutex<Option<Authorizer>>,
    /// How lists page (set by the test).
    pub paging: Paging,
    /// The latest resourceVersion, for watches to wake up on.
    pub changed: watch::Sender<u64>,
    pub addr: SocketAddr,
}

impl Shared {
    pub(crate) fn cluster(&self) -> MutexGuard<'_, Cluster> {
        // A test closure that panicked inside `update_as` must not take the server down with it.
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a change and wakes watchers.
    pub(crate) fn mutate<T>(&self, f: impl FnOnce(&mut Cluster) -> T) -> T {
        let mut c = self.cluster();
        let out = f(&mut c);
        let rv = c.resource_version();
        drop(c);
        self.changed.send_replace(rv);
        out
    }
}

/// A response body: whole, or a watch stream.
pub(crate) enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }
}

/// Accepts connections until `shutdown` fires.
pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    // The namespace controller's clock.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                let mut c = shared.cluster();
                if c.terminating() {
                    let before = c.resource_version();
                    c.progress(std::time::Instant::now());
                    let rv = c.resource_version();
                    drop(c);
                    if rv != before {
                        shared.changed.send_replace(rv);
                    }
                }
            }
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(shared, req).await) }
                    });
                    // A client going away mid-request is not the emulator's problem.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
}

/// What the router decided.
enum Reply {
    Json {
        code: u16,
        body: Value,
        content_type: &'static str,
        warnings: Vec<String>,
    },
    /// JSON already written.
    Written {
        code: u16,
        body: Vec<u8>,
        content_type: &'static str,
    },
    Watch(Box<WatchSpec>),
    Error(ApiError),
}

impl Reply {
    fn ok(body: Value) -> Self {
        Reply::Json { code: 200, body, content_type: "application/json", warnings: Vec::new() }
    }
}

const METADATA_MIME: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const METADATA_LIST_MIME: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/// How an object or list is served: whole, or its metadata only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Whole,
    Metadata,
}

impl Shape {
    /// The first media range of `accept` the server can answer with, as the API server picks
    /// it: plain JSON (or a wildcard) is the whole object, `as=PartialObjectMetadata` (for a list
    /// `as=PartialObjectMetadataList`) with `g=meta.k8s.io;v=v1` its metadata; any other `as=`
    /// (a table, another version) is passed over. None answerable: 406.
    fn asked(accept: &str, list: bool) -> Result<Shape, ApiError> {
        if accept.trim().is_empty() {
            return Ok(Shape::Whole);
        }
        let metadata = if list { "PartialObjectMetadataList" } else { "PartialObjectMetadata" };
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            if !matches!(parts.next(), Some("application/json" | "application/*" | "*/*")) {
                continue;
            }
            let params: HashMap<&str, &str> =
                parts.filter_map(|p| p.split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect();
            match params.get("as") {
                None => return Ok(Shape::Whole),
                Some(a)
                    if *a == metadata && params.get("g") == Some(&"meta.k8s.io") && params.get("v") == Some(&"v1") =>
                {
                    return Ok(Shape::Metadata);
                }
                Some(_) => {}
            }
        }
        Err(ApiError::not_acceptable())
    }
}

/// An object as `PartialObjectMetadata`: its metadata, managed fields included.
fn metadata_only(mut obj: Value) -> Value {
    let metadata = obj.get_mut("metadata").map(Value::take).unwrap_or_else(|| json!({}));
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": metadata})
}

/// A stored object's metadata as JSON text, written from where it is stored rather than copied
/// first (at 1,000 tenants, copying managed fields was most of the emulator's work in a refresh).
fn metadata_text(obj: &Value, _: &ResourceType) -> Vec<u8> {
    match obj.get("metadata") {
        Some(m) => serde_json::to_vec(m).expect("JSON values serialize"),
        None => b"{}".to_vec(),
    }
}

/// A `PartialObjectMetadataList` of `items` (each its object's metadata as JSON text).
fn metadata_list(list_meta: &Value, items: &[Vec<u8>]) -> Reply {
    const ITEM: &[u8] = br#"{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":"#;
    let mut body = Vec::with_capacity(256 + items.iter().map(|m| ITEM.len() + m.len() + 2).sum::<usize>());
    body.extend_from_slice(br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":"#);
    serde_json::to_writer(&mut body, list_meta).expect("JSON values serialize");
    body.extend_from_slice(br#","items":["#);
    for (i, m) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(ITEM);
        body.extend_from_slice(m);
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    Reply::Written { code: 200, body, content_type: METADATA_LIST_MIME }
}

/// One page of a list, as its shape asks: whole objects, or their metadata as JSON text.
enum Items {
    Whole(Vec<Value>),
    Metadata(Vec<Vec<u8>>),
}

struct WatchSpec {
    rt: ResourceType,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    initial: Vec<Value>,
    cursor: u64,
    timeout: Duration,
    /// The watch starts too far back: one ERROR event, then the stream ends.
    gone: Option<ApiError>,
}

/// The parts of a request the router looks at.
struct Ctx {
    method: String,
    params: HashMap<String, String>,
    content_type: String,
    accept: String,
    user_agent: Option<String>,
    body: Bytes,
}

impl Ctx {
    fn param(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the request has no body"));
        }
        match serde_json::from_slice(&self.body) {
            Ok(v) => Ok(v),
            Err(e) if self.content_type.contains("yaml") => serde_yaml_ng::from_slice(&self.body)
                .map_err(|y| ApiError::bad_request(format!("the body is neither JSON ({e}) nor YAML ({y})"))),
            Err(e) => Err(ApiError::bad_request(format!("the body is not valid JSON: {e}"))),
        }
    }

    /// `fieldManager`, or what the real server derives from the user agent (`kubectl/v1.33` →
    /// `kubectl`).
    fn manager(&self) -> String {
        match self.param("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self
                .user_agent
                .as_deref()
                .and_then(|ua| ua.split('/').next())
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        }
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.param("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => {
                Err(ApiError::bad_request(format!("dryRun: Unsupported value: {other:?}: supported values: \"All\"")))
            }
        }
    }

    fn field_validation(&self) -> Result<FieldValidation, ApiError> {
        match self.param("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// The most objects a page of a list may hold: the `limit` asked for, lowered to the server's cap
/// when one is set; 0 for the whole list (no `limit`, or 0).
fn page_limit(ctx: &Ctx, cap: usize) -> Result<usize, ApiError> {
    let asked = match ctx.param("limit").filter(|l| !l.is_empty()) {
        None => 0,
        Some(l) => {
            l.parse::<i64>().map_err(|_| ApiError::bad_request(format!("limit: Invalid value: {l:?}")))?.max(0) as usize
        }
    };
    Ok(if asked > 0 && cap > 0 { asked.min(cap) } else { asked })
}

/// Where the next page of a list starts: the snapshot's resourceVersion and the key of the last
/// object already served. Sent as base64url (no padding) of JSON, opaque to clients as a real
/// server's token is; it names the resource, so a token is refused on another resource's list.
struct ContinueToken {
    rv: u64,
    after: ObjKey,
}

impl ContinueToken {
    fn encode(&self, rt: &ResourceType) -> String {
        use base64::Engine as _;
        let (group, plural) = rt.key();
        let json = json!({"rv": self.rv, "resource": [group, plural], "after": [self.after.0, self.after.1]});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    }

    fn decode(token: &str, rt: &ResourceType) -> Result<ContinueToken, ApiError> {
        use base64::Engine as _;
        let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid("not base64url"))?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("not a token this server made"))?;
        let (group, plural) = rt.key();
        if v["resource"] != json!([group, plural]) {
            return Err(invalid("it was made for another resource's list"));
        }
        let (Some(rv), Some(ns), Some(name)) = (v["rv"].as_u64(), v["after"][0].as_str(), v["after"][1].as_str())
        else {
            return Err(invalid("not a token this server made"));
        };
        Ok(ContinueToken { rv, after: (ns.to_string(), name.to_string()) })
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let ctx = Ctx {
        method: parts.method.as_str().to_string(),
        params: form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
        content_type: header("content-type").unwrap_or_default(),
        accept: header("accept").unwrap_or_default(),
        user_agent: header("user-agent"),
        body,
    };
    let reply = match auth::check(&shared.auth, header("authorization").as_deref(), jiff::Timestamp::now()) {
        Err(why) => Reply::Error(ApiError::unauthorized(&why)),
        Ok(()) => match shared.authorizer.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some((allowed, why)) if !allowed() => Reply::Error(ApiError::forbidden_request(&why)),
            _ => route(&shared, &path, &ctx),
        },
    };
    let code = match &reply {
        Reply::Json { code, .. } | Reply::Written { code, .. } => *code,
        Reply::Watch(_) => 200,
        Reply::Error(e) => e.code,
    };
    shared.requests.lock().unwrap_or_else(|e| e.into_inner()).push(RequestRecord {
        method: ctx.method.clone(),
        path,
        query,
        field_manager: ctx.param("fieldManager").map(String::from),
        content_type: (!ctx.content_type.is_empty()).then(|| ctx.content_type.clone()),
        status: code,
    });
    match reply {
        Reply::Json { code, body, content_type, warnings } => json_response(code, &body, content_type, &warnings),
        Reply::Written { code, body, content_type } => written_response(code, body, content_type, &[]),
        Reply::Error(e) => json_response(e.code, &e.to_status(), "application/json", &[]),
        Reply::Watch(spec) => {
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(run_watch(shared.clone(), *spec, tx));
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::Stream(rx))
                .expect("a valid response")
        }
    }
}

fn json_response(code: u16, body: &Value, content_type: &str, warnings: &[String]) -> Response<Body> {
    written_response(code, serde_json::to_vec(body).expect("JSON values serialize"), content_type, warnings)
}

fn written_response(code: u16, body: Vec<u8>, content_type: &str, warnings: &[String]) -> Response<Body> {
    let mut b = Response::builder().status(code).header("content-type", content_type);
    for w in warnings {
        b = b.header("warning", format!("299 - {w:?}"));
    }
    b.body(Body::Full(Some(Bytes::from(body)))).expect("a valid response")
}

async fn run_watch(shared: Arc<Shared>, spec: WatchSpec, tx: mpsc::Sender<Bytes>) {
    let line = |kind: &str, obj: &Value| {
        let mut v = serde_json::to_vec(&json!({"type": kind, "object": obj})).expect("JSON values serialize");
        v.push(b'\n');
        Bytes::from(v)
    };
    if let Some(e) = &spec.gone {
        let _ = tx.send(line("ERROR", &e.to_status())).await;
        return;
    }
    let mut changed = shared.changed.subscribe();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    for obj in &spec.initial {
        if tx.send(line("ADDED", obj)).await.is_err() {
            return;
        }
    }
    let mut cursor = spec.cursor;
    loop {
        let batch: Vec<Bytes> = {
            let c = shared.cluster();
            let events = c.events_after(cursor);
            let out = events
                .iter()
                .filter(|e| e.res == spec.rt.key())
                .filter(|e| {
                    spec.ns
                        .as_deref()
                        .is_none_or(|ns| e.obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns))
                })
                .filter(|e| spec.labels.matches(&e.obj) && spec.fields.matches(&e.obj))
                .map(|e| line(e.kind, &crate::cluster::present(&e.obj, &spec.rt)))
                .collect();
            cursor = c.resource_version();
            out
        };
        for b in batch {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        }
    }
}

fn route(shared: &Shared, path: &str, ctx: &Ctx) -> Reply {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let discovery = |r: Result<Value, ApiError>, aggregated: bool| -> Reply {
        if ctx.method != "GET" {
            return Reply::Error(ApiError::method_not_allowed(&ctx.method));
        }
        match r {
            Ok(body) if aggregated => Reply::Json {
                code: 200,
                body,
                content_type: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                warnings: Vec::new(),
            },
            Ok(body) => Reply::ok(body),
            Err(e) => Reply::Error(e),
        }
    };
    let aggregated = ctx.accept.contains("as=APIGroupDiscoveryList");
    match segs.as_slice() {
        ["version"] => discovery(Ok(version()), false),
        ["healthz" | "livez" | "readyz"] => discovery(Ok(json!("ok")), false),
        ["api"] if aggregated => discovery(Ok(aggregated_list(&shared.cluster(), true)), true),
        ["api"] => discovery(
            Ok(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}]})),
            false,
        ),
        ["apis"] if aggregated => discovery(Ok(aggregated_list(&shared.cluster(), false)), true),
        ["apis"] => discovery(Ok(group_list(&shared.cluster())), false),
        ["api", "v1"] => discovery(resource_list(&shared.cluster(), "", "v1"), false),
        ["apis", group] => discovery(api_group(&shared.cluster(), group), false),
        ["apis", group, version] => discovery(resource_list(&shared.cluster(), group, version), false),
        ["api", "v1", rest @ ..] => resource(shared, "", "v1", rest, ctx).unwrap_or_else(Reply::Error),
        ["apis", group, version, rest @ ..] => resource(shared, group, version, rest, ctx).unwrap_or_else(Reply::Error),
        _ => Reply::Error(ApiError::no_such_path()),
    }
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "33",
        "emulationMajor": "1", "emulationMinor": "33",
        "minCompatibilityMajor": "1", "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.5-eks-emulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// Group name → versions served, preferred first.
fn groups(c: &Cluster) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = catalog::BUILTIN_GROUPS
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| (g.to_string(), vec![v.to_string()]))
        .collect();
    let mut custom: Vec<(String, Vec<String>)> = Vec::new();
    for t in c.types().skip(catalog::builtins().len()) {
        match custom.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) => {
                if !vs.contains(&t.version) {
                    vs.push(t.version.clone());
                }
            }
            None => custom.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    for (_, vs) in &mut custom {
        vs.sort_by_key(|v| catalog::version_priority(v));
    }
    custom.sort();
    // A CRD in a built-in group (rare) adds its versions there.
    for (g, vs) in custom {
        match out.iter_mut().find(|(og, _)| *og == g) {
            Some((_, ovs)) => ovs.extend(vs.into_iter().filter(|v| !ovs.contains(v)).collect::<Vec<_>>()),
            None => out.push((g, vs)),
        }
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({"name": name, "versions": versions.iter().map(gv).collect::<Vec<_>>(), "preferredVersion": gv(&versions[0])})
}

fn group_list(c: &Cluster) -> Value {
    let groups: Vec<Value> = groups(c).iter().map(|(g, vs)| group_json(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn api_group(c: &Cluster, group: &str) -> Result<Value, ApiError> {
    let (name, versions) = groups(c).into_iter().find(|(g, _)| g == group).ok_or_else(ApiError::no_such_path)?;
    let mut g = group_json(&name, &versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Ok(g)
}

fn resource_list(c: &Cluster, group: &str, version: &str) -> Result<Value, ApiError> {
    let mut resources = Vec::new();
    for t in c.types().filter(|t| t.group == group && t.version == version) {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.status {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return Err(ApiError::no_such_path());
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Ok(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

fn aggregated_list(c: &Cluster, core: bool) -> Value {
    let groups = if core { vec![(String::new(), vec!["v1".to_string()])] } else { groups(c) };
    let items: Vec<Value> = groups
        .iter()
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = c
                        .types()
                        .filter(|t| t.group == *g && t.version == *v)
                        .map(|t| {
                            let kind = json!({"group": t.group, "version": t.version, "kind": t.kind});
                            let mut r = json!({
                                "resource": t.plural,
                                "responseKind": kind,
                                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": t.singular,
                                "verbs": VERBS,
                                "shortNames": t.short_names,
                                "categories": t.categories,
                            });
                            if t.status {
                                r["subresources"] =
                                    json!([{"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}]);
                            }
                            r
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Requests under `/api/v1/...` and `/apis/{group}/{version}/...`.
fn resource(shared: &Shared, group: &str, version: &str, rest: &[&str], ctx: &Ctx) -> Result<Reply, ApiError> {
    let namespaced_here = |plural: &str| shared.cluster().resolve(group, version, plural).is_some_and(|t| t.namespaced);
    let (ns, plural, name, sub) = match rest {
        [plural] => (None, *plural, None, None),
        [plural, name] => (None, *plural, Some(*name), None),
        ["namespaces", ns, plural] if namespaced_here(plural) => (Some(*ns), *plural, None, None),
        [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        _ => return Err(ApiError::no_such_path()),
    };
    let rt = shared.cluster().resolve(group, version, plural).ok_or_else(ApiError::no_such_path)?;
    if ns.is_some() && !rt.namespaced {
        return Err(ApiError::no_such_path());
    }
    if rt.namespaced && ns.is_none() && name.is_some() {
        return Err(ApiError::no_such_path());
    }
    if let Some(s) = sub
        && !(s == "status" && rt.status)
    {
        return Err(ApiError::no_such_path());
    }
    let subresource = sub.map(String::from);
    let write = |op: Op<'static>, ctx: &Ctx| -> Result<Write<'static>, ApiError> {
        Ok(Write {
            op,
            manager: ctx.manager(),
            subresource: subresource.clone(),
            dry_run: ctx.dry_run()?,
            field_validation: ctx.field_validation()?,
        })
    };
    if ctx.param("force").is_some()
        && !(ctx.method == "PATCH" && ctx.content_type.starts_with("application/apply-patch"))
    {
        return Err(ApiError::bad_request("force: Forbidden: may not be specified for non-apply patch"));
    }
    match (ctx.method.as_str(), name) {
        ("GET", None) => {
            let labels =
                LabelSelector::parse(ctx.param("labelSelector").unwrap_or_default()).map_err(ApiError::bad_request)?;
            let fields =
                FieldSelector::parse(ctx.param("fieldSelector").unwrap_or_default()).map_err(ApiError::bad_request)?;
            let watch = matches!(ctx.param("watch"), Some("true" | "1"));
            let shape = Shape::asked(&ctx.accept, true)?;
            if watch && shape == Shape::Metadata {
                return Err(ApiError::not_acceptable());
            }
            let mut c = shared.cluster();
            // A watch starts from everything there is; pages are for lists.
            let limit = if watch { 0 } else { page_limit(ctx, shared.paging.cap.load(Relaxed))? };
            let resumed = match ctx.param("continue").filter(|t| !t.is_empty()) {
                Some(_) if watch => {
                    return Err(ApiError::bad_request("continue: Forbidden: continue is not supported for watch"));
                }
                Some(token) => {
                    let resumed = ContinueToken::decode(token, &rt)?;
                    // A real server serves the rest of the first page's snapshot until its store
                    // compacts (about five minutes); this one keeps no old versions, so any change
                    // to the kind since then expires the token. Clients must start over either way.
                    if c.snapshot_gone(&rt, resumed.rv) {
                        return Err(ApiError::expired_continue());
                    }
                    Some(resumed)
                }
                None => None,
            };
            let keep = |o: &Value| labels.matches(o) && fields.matches(o);
            let after = resumed.as_ref().map(|r| &r.after);
            let (items, last) = match shape {
                Shape::Whole => {
                    let (items, last) = c.page(&rt, ns, after, limit, keep, crate::cluster::present);
                    (Items::Whole(items), last)
                }
                Shape::Metadata => {
                    let (items, last) = c.page(&rt, ns, after, limit, keep, metadata_text);
                    (Items::Metadata(items), last)
                }
            };
            let list_rv = resumed.map_or(c.resource_version(), |r| r.rv);
            let mut list_meta = json!({"resourceVersion": list_rv.to_string()});
            if let Some(after) = last {
                list_meta["continue"] = json!(ContinueToken { rv: list_rv, after }.encode(&rt));
            }
            if limit > 0 {
                let served = shared.paging.served.fetch_add(1, Relaxed) + 1;
                let every = shared.paging.compact_every.load(Relaxed);
                if every > 0 && served.is_multiple_of(every) {
                    c.compact();
                }
            }
            let items = match items {
                Items::Metadata(items) => return Ok(metadata_list(&list_meta, &items)),
                Items::Whole(items) => items,
            };
            if watch {
                let rv = ctx.param("resourceVersion").filter(|v| !v.is_empty() && *v != "0");
                let (initial, cursor) = match rv {
                    None => (items, c.resource_version()),
                    Some(v) => (
                        Vec::new(),
                        v.parse().map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
                    ),
                };
                // As the watch cache does, a start before the last compaction is answered inside
                // the stream (200, then an ERROR event with a 410 Status), not with an HTTP error;
                // the client must list again and watch from the list's resourceVersion.
                let gone = rv.and_then(|_| c.watch_gone(cursor));
                let secs = ctx.param("timeoutSeconds").and_then(|s| s.parse().ok()).unwrap_or(1800u64);
                return Ok(Reply::Watch(Box::new(WatchSpec {
                    rt: rt.clone(),
                    ns: ns.map(String::from),
                    labels,
                    fields,
                    initial,
                    cursor,
                    timeout: Duration::from_secs(secs),
                    gone,
                })));
            }
            Ok(Reply::ok(json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": list_meta,
                "items": items,
            })))
        }
        ("GET", Some(name)) => {
            let shape = Shape::asked(&ctx.accept, false)?;
            let obj = shared.cluster().get(&rt, ns, name).ok_or_else(|| ApiError::not_found(&rt, name))?;
            Ok(match shape {
                Shape::Whole => Reply::ok(obj),
                Shape::Metadata => Reply::Json {
                    code: 200,
                    body: metadata_only(obj),
                    content_type: METADATA_MIME,
                    warnings: Vec::new(),
                },
            })
        }
        ("POST", None) => {
            let body = ctx.json_body()?;
            let name = match body.pointer("/metadata/name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                Some(n) => n.to_string(),
                None => match body.pointer("/metadata/generateName").and_then(Value::as_str) {
                    Some(prefix) => format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..5]),
                    None => {
                        let cause = crate::error::Cause {
                            reason: "FieldValueRequired",
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        };
                        return Err(ApiError::invalid(&rt, "", &[cause]));
                    }
                },
            };
            let w = write(Op::Create(body), ctx)?;
            let out = shared.mutate(|c| c.write(&rt, ns, &name, w))?;
            Ok(Reply::Json { code: 201, body: out.obj, content_type: "application/json", warnings: out.warnings })
        }
        ("PUT", Some(name)) => {
            let w = write(Op::Replace(ctx.json_body()?), ctx)?;
            let out = shared.mutate(|c| c.write(&rt, ns, name, w))?;
            Ok(Reply::Json { code: 200, body: out.obj, content_type: "application/json", warnings: out.warnings })
        }
        ("PATCH", Some(name)) => {
            let ct = ctx.content_type.split(';').next().unwrap_or_default().trim();
            let op = match ct {
                "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                    if ctx.param("fieldManager").is_none_or(str::is_empty) {
                        return Err(ApiError::bad_request(
                            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                        ));
                    }
                    let force = match ctx.param("force") {
                        None | Some("false") => false,
                        Some("true") => true,
                        Some(other) => return Err(ApiError::bad_request(format!("force: invalid value {other:?}"))),
                    };
                    Op::Apply { config: ctx.json_body()?, force }
                }
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    let patch = ctx.json_body()?;
                    if !patch.is_object() {
                        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                    }
                    Op::Merge(patch)
                }
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let w = write(op, ctx)?;
            let out = shared.mutate(|c| c.write(&rt, ns, name, w))?;
            let code = if out.created { 201 } else { 200 };
            Ok(Reply::Json { code, body: out.obj, content_type: "application/json", warnings: out.warnings })
        }
        ("DELETE", Some(name)) => {
            if sub.is_some() {
                return Err(ApiError::method_not_allowed("DELETE"));
            }
            let opts: Value = if ctx.body.is_empty() { json!({}) } else { ctx.json_body()? };
            let dry_run = ctx.dry_run()? || opts["dryRun"].as_array().is_some_and(|a| a.iter().any(|v| v == "All"));
            let pre = opts.get("preconditions").cloned().unwrap_or(json!({}));
            let out = shared.mutate(|c| c.delete(&rt, ns, name, dry_run, &pre))?;
            Ok(Reply::ok(out))
        }
        ("DELETE", None) => {
            let labels =
                LabelSelector::parse(ctx.param("labelSelector").unwrap_or_default()).map_err(ApiError::bad_request)?;
            let fields =
                FieldSelector::parse(ctx.param("fieldSelector").unwrap_or_default()).map_err(ApiError::bad_request)?;
            let opts: Value = if ctx.body.is_empty() { json!({}) } else { ctx.json_body()? };
            let dry_run = ctx.dry_run()? || opts["dryRun"].as_array().is_some_and(|a| a.iter().any(|v| v == "All"));
            let items = shared.mutate(|c| -> Result<Vec<Value>, ApiError> {
                let doomed: Vec<Value> =
                    c.list(&rt, ns).into_iter().filter(|o| labels.matches(o) && fields.matches(o)).collect();
                let mut out = Vec::new();
                for o in doomed {
                    let n = o["metadata"]["name"].as_str().unwrap_or_default().to_string();
                    let ons = o.pointer("/metadata/namespace").and_then(Value::as_str).map(String::from);
                    out.push(c.delete(&rt, ons.as_deref(), &n, dry_run, &json!({}))?);
                }
                Ok(out)
            })?;
            let rv = shared.cluster().resource_version().to_string();
            Ok(Reply::ok(json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": rv},
                "items": items,
            })))
        }
        (m, _) => Err(ApiError::method_not_allowed(m)),
    }
}
