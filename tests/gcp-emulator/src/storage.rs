//! Cloud Storage, JSON API v1, as far as a state store uses it: buckets (insert, get, with
//! `versioning.enabled`) and objects (media upload, get as metadata or `alt=media`, delete), every
//! object call honouring the generation preconditions `ifGenerationMatch` (`0`: only if there is no
//! live object) and `ifGenerationNotMatch` with 412 `conditionNotMet`, as the storage v1 discovery
//! document describes them. It is stricter than the emulators on PyPI: gcp-storage-emulator ignores
//! preconditions, and fake-gcs-server 1.54 enforces them on multipart uploads only, never on
//! deletes.
//!
//! [`StorageEmulator::start`] serves HTTP/1.1 on `127.0.0.1:<free port>` from its own thread and
//! stops when dropped; point a client at [`StorageEmulator::url`] (the `STORAGE_EMULATOR_HOST`
//! convention of Google's client libraries). Generations are increasing integers (as strings on
//! the wire, like every int64); a versioned bucket keeps replaced and deleted generations, readable
//! with `generation=`. With [`StorageOptions::token`] every request needs that bearer token.
//!
//! Not served: resumable and multipart uploads, listing, ACLs, object metadata updates, retention
//! and soft delete, composite objects, XML API.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::StartError;
use crate::route::percent_decode;

/// How to start a [`StorageEmulator`].
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// The bearer token every request must carry; `None` accepts any (or none).
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
struct Generation {
    generation: u64,
    metageneration: u64,
    bytes: Bytes,
    content_type: String,
    updated: String,
}

#[derive(Debug, Default)]
struct Bucket {
    versioning: bool,
    /// Object name → its live generation.
    live: BTreeMap<String, Generation>,
    /// Object name → replaced or deleted generations (versioned buckets only).
    noncurrent: BTreeMap<String, Vec<Generation>>,
}

#[derive(Debug, Default)]
struct Store {
    buckets: BTreeMap<String, Bucket>,
    next_generation: u64,
    calls: BTreeMap<String, u64>,
}

struct Shared {
    store: Mutex<Store>,
    opts: StorageOptions,
}

/// A running Cloud Storage emulator.
pub struct StorageEmulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StorageEmulator {
    /// Starts on a free loopback port; panics if it cannot.
    pub fn start(opts: StorageOptions) -> StorageEmulator {
        Self::try_start(opts).expect("start the Cloud Storage emulator")
    }

    pub fn try_start(opts: StorageOptions) -> Result<StorageEmulator, StartError> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| StartError::Bind(0, e))?;
        listener.set_nonblocking(true).map_err(|e| StartError::Bind(0, e))?;
        let addr = listener.local_addr().map_err(|e| StartError::Bind(0, e))?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(StartError::Runtime)?;
        let shared = Arc::new(Shared { store: Mutex::new(Store::default()), opts });
        let (tx, mut rx) = oneshot::channel::<()>();
        let server = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("gcs-emulator-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a bound non-blocking listener");
                    loop {
                        tokio::select! {
                            _ = &mut rx => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let shared = server.clone();
                                tokio::spawn(async move {
                                    let svc = hyper::service::service_fn(move |req| {
                                        let shared = shared.clone();
                                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                        .await;
                                });
                            }
                        }
                    }
                });
            })
            .map_err(StartError::Thread)?;
        Ok(StorageEmulator { shared, addr, shutdown: Some(tx), thread: Some(thread) })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Creates a bucket directly (tests' set-up).
    pub fn create_bucket(&self, name: &str, versioning: bool) {
        self.shared.store.lock().unwrap().buckets.insert(name.to_string(), Bucket { versioning, ..Bucket::default() });
    }

    /// The live object's bytes.
    pub fn object(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        let st = self.shared.store.lock().unwrap();
        st.buckets.get(bucket)?.live.get(name).map(|g| g.bytes.to_vec())
    }

    /// Replaces the live object whatever its generation (a writer that ignores preconditions).
    pub fn overwrite(&self, bucket: &str, name: &str, bytes: &[u8]) {
        let mut st = self.shared.store.lock().unwrap();
        let g = st.generation();
        let b = st.buckets.get_mut(bucket).expect("bucket exists");
        b.write(name, Bytes::copy_from_slice(bytes), "application/json".into(), g);
    }

    /// How many generations of `name` a versioned bucket keeps besides the live one.
    pub fn noncurrent(&self, bucket: &str, name: &str) -> usize {
        let st = self.shared.store.lock().unwrap();
        st.buckets.get(bucket).and_then(|b| b.noncurrent.get(name)).map_or(0, Vec::len)
    }

    /// Calls served, by `METHOD operation` (`POST objects.insert`).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.shared.store.lock().unwrap().calls.clone()
    }
}

impl Drop for StorageEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Store {
    fn generation(&mut self) -> u64 {
        // Real generations are microsecond timestamps; increasing is what matters.
        self.next_generation += 1;
        1_700_000_000_000_000 + self.next_generation
    }
}

impl Bucket {
    fn write(&mut self, name: &str, bytes: Bytes, content_type: String, generation: u64) -> Generation {
        let g = Generation { generation, metageneration: 1, bytes, content_type, updated: now() };
        if let Some(old) = self.live.insert(name.to_string(), g.clone())
            && self.versioning
        {
            self.noncurrent.entry(name.to_string()).or_default().push(old);
        }
        g
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// A Google JSON API error with its legacy `errors[]`.
fn error(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"error": {"code": code, "message": message, "errors": [{"domain": "global", "reason": reason, "message": message}]}});
    Response::builder()
        .status(code)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn json_answer(v: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("a valid response")
}

fn metadata(bucket: &str, name: &str, g: &Generation) -> Value {
    json!({
        "kind": "storage#object",
        "id": format!("{bucket}/{name}/{}", g.generation),
        "name": name,
        "bucket": bucket,
        "generation": g.generation.to_string(),
        "metageneration": g.metageneration.to_string(),
        "contentType": g.content_type,
        "size": g.bytes.len().to_string(),
        "updated": g.updated,
        "etag": format!("CL{}EAE=", g.generation),
    })
}

/// The preconditions of an object call against its live generation (`None`: no live object).
/// An answer that ends a request early (boxed: a response is large).
type Refusal = Box<Response<Full<Bytes>>>;

fn preconditions(q: &BTreeMap<String, String>, live: Option<u64>) -> Result<(), Refusal> {
    let number = |k: &str| -> Result<Option<u64>, Refusal> {
        match q.get(k) {
            None => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|_| Box::new(error(400, "invalid", &format!("Invalid argument {k}={v}"))))
            }
        }
    };
    let failed =
        || Box::new(error(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold."));
    if let Some(want) = number("ifGenerationMatch")? {
        let holds = match live {
            Some(g) => g == want,
            None => want == 0,
        };
        if !holds {
            return Err(failed());
        }
    }
    if let Some(not) = number("ifGenerationNotMatch")? {
        let holds = match live {
            Some(g) => g != not,
            None => not != 0,
        };
        if !holds {
            return Err(failed());
        }
    }
    Ok(())
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    if let Some(token) = &shared.opts.token {
        let given =
            parts.headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|h| h.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return error(401, "required", "Anonymous caller does not have storage.objects.get access.");
        }
    }
    let raw_path = parts.uri.path().to_string();
    let q: BTreeMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let method = parts.method.as_str().to_string();
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let mut st = shared.store.lock().unwrap_or_else(|e| e.into_inner());
    // Segments are split before decoding: an object name's `/` arrives as `%2F`.
    let segs: Vec<String> = raw_path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let op = match (method.as_str(), segs.as_slice()) {
        ("POST", ["storage", "v1", "b"]) => "buckets.insert",
        ("GET", ["storage", "v1", "b", _]) => "buckets.get",
        ("POST", ["upload", "storage", "v1", "b", _, "o"]) => "objects.insert",
        ("GET", ["storage", "v1", "b", _, "o", _]) => "objects.get",
        ("DELETE", ["storage", "v1", "b", _, "o", _]) => "objects.delete",
        _ => {
            *st.calls.entry(format!("{method} unknown")).or_default() += 1;
            return error(404, "notFound", &format!("Not Found: {method} {raw_path}"));
        }
    };
    *st.calls.entry(format!("{method} {op}")).or_default() += 1;
    match op {
        "buckets.insert" => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let Some(name) = v["name"].as_str() else {
                return error(400, "required", "Required parameter: name");
            };
            if st.buckets.contains_key(name) {
                return error(
                    409,
                    "conflict",
                    "Your previous request to create the named bucket succeeded and you already own it.",
                );
            }
            let versioning = v["versioning"]["enabled"].as_bool().unwrap_or(false);
            st.buckets.insert(name.to_string(), Bucket { versioning, ..Bucket::default() });
            json_answer(&json!({"kind": "storage#bucket", "name": name, "versioning": {"enabled": versioning}}))
        }
        "buckets.get" => match st.buckets.get(segs[3]) {
            Some(b) => json_answer(
                &json!({"kind": "storage#bucket", "name": segs[3], "id": segs[3], "versioning": {"enabled": b.versioning}}),
            ),
            None => error(404, "notFound", "The specified bucket does not exist."),
        },
        "objects.insert" => {
            if q.get("uploadType").map(String::as_str) != Some("media") {
                return error(400, "invalid", "Only uploadType=media is served by this emulator");
            }
            let Some(name) = q.get("name").cloned() else {
                return error(400, "required", "Required parameter: name");
            };
            let g = st.generation();
            let Some(b) = st.buckets.get_mut(segs[4]) else {
                return error(404, "notFound", "The specified bucket does not exist.");
            };
            if let Err(e) = preconditions(&q, b.live.get(&name).map(|g| g.generation)) {
                return *e;
            }
            let written = b.write(&name, body, content_type, g);
            json_answer(&metadata(segs[4], &name, &written))
        }
        "objects.get" => {
            let Some(b) = st.buckets.get(segs[3]) else {
                return error(404, "notFound", "The specified bucket does not exist.");
            };
            let name = segs[5];
            let live = b.live.get(name);
            if let Err(e) = preconditions(&q, live.map(|g| g.generation)) {
                return *e;
            }
            let found = match q.get("generation").and_then(|g| g.parse::<u64>().ok()) {
                Some(want) => live
                    .filter(|g| g.generation == want)
                    .or_else(|| b.noncurrent.get(name).and_then(|v| v.iter().find(|g| g.generation == want))),
                None => live,
            };
            let Some(g) = found else {
                return error(404, "notFound", &format!("No such object: {}/{name}", segs[3]));
            };
            if q.get("alt").map(String::as_str) == Some("media") {
                Response::builder()
                    .status(200)
                    .header("content-type", g.content_type.as_str())
                    .header("x-goog-generation", g.generation.to_string())
                    .header("x-goog-metageneration", g.metageneration.to_string())
                    .header("x-goog-stored-content-length", g.bytes.len().to_string())
                    .body(Full::new(g.bytes.clone()))
                    .expect("a valid response")
            } else {
                json_answer(&metadata(segs[3], name, g))
            }
        }
        "objects.delete" => {
            let Some(b) = st.buckets.get_mut(segs[3]) else {
                return error(404, "notFound", "The specified bucket does not exist.");
            };
            let name = segs[5];
            let Some(live) = b.live.get(name).map(|g| g.generation) else {
                return error(404, "notFound", &format!("No such object: {}/{name}", segs[3]));
            };
            if let Err(e) = preconditions(&q, Some(live)) {
                return *e;
            }
            let old = b.live.remove(name).expect("looked up above");
            if b.versioning {
                b.noncurrent.entry(name.to_string()).or_default().push(old);
            }
            Response::builder().status(204).body(Full::new(Bytes::new())).expect("a valid response")
        }
        _ => unreachable!("every operation is matched above"),
    }
}
