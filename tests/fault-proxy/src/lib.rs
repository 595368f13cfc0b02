//! A fault-injecting HTTP/1.1 reverse proxy for tests: a network that lies.
//!
//! [`FaultProxy::start`] listens on `127.0.0.1:<free port>` from its own thread and tokio runtime,
//! stops when dropped, and forwards every request to one upstream emulator (the moto server, the
//! kube emulator, ...). A classifier names the API action each request performs ([`Action`]), and
//! [`Rule`]s pick the calls that get a [`Fault`]: dropped before the cloud sees them, carried out by
//! the cloud while the client sees a 500 or a reset connection, throttled, or delayed. Tests use it
//! to check that the tool survives a request that succeeded although it looked as if it failed.
//! Random faults are deterministic for a seed and an order of requests, and every injected fault is
//! logged ([`FaultProxy::injected`]). [`aws`] classifies the AWS SDK's requests and writes error
//! answers in each AWS protocol's shape; [`azure`] does the same for Azure Resource Manager and
//! [`gcp`] for Google Cloud's REST APIs (compute, GKE, Cloud DNS, IAM).
//!
//! What it deliberately does not do:
//! - No TLS, HTTP/2, `CONNECT` or upgrades. Bodies are buffered whole in both directions, so a
//!   streaming answer (a Kubernetes WATCH) reaches the client only once it ends.
//! - One upstream. Requests pass unchanged but for hop-by-hop headers; in particular `Host` is kept,
//!   since AWS SigV4 signs it. Every request gets a fresh upstream connection.
//! - One fault per request: the first rule that selects a request decides, and faults do not
//!   combine (a `Latency` rule does not add its delay to a later rule's fault).
//! - Counters and the log live in memory and grow without bound; it is a test tool, not a load
//!   generator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

pub mod aws;
pub mod azure;
pub mod gcp;

/// What the proxy can do to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Close the client connection without forwarding the request (the cloud never sees it).
    DropBeforeForward,
    /// Forward the request, discard the upstream answer, answer 500 with the error body.
    ForwardThen500,
    /// Forward the request, discard the upstream answer, reset the client connection (no response).
    ForwardThenReset,
    /// Do not forward; answer 429 with `Retry-After: <secs>` and a throttling error body.
    Throttle { retry_after_secs: u32 },
    /// Wait this long, then forward normally.
    Latency(Duration),
}

/// A request as the classifier and error-body callbacks see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent: `/clusters/x?include=y`.
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
}

/// The API action a request performs, named by the protocol's own operation name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Action {
    /// `CreateVpc`, `DescribeCluster`, ...
    pub name: String,
    /// Whether the action changes anything in the cloud (reads are `false`).
    pub mutating: bool,
}

/// Which calls get which fault. Call numbers count from 1 per action name, since the proxy started
/// or since the last [`FaultProxy::set_rules`]; every request counts, faulted or not.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// The first `n` calls of every action (only mutating ones if `mutating_only`) get `fault`.
    FirstOfEachAction { n: u32, mutating_only: bool, fault: Fault },
    /// Calls number `calls` (1-based, counted per action name) of action `name` get `fault`.
    Action { name: String, calls: Vec<u32>, fault: Fault },
    /// Each call (mutating only if `mutating_only`) is faulted with probability `probability`, the
    /// fault drawn uniformly from `faults`; deterministic for a given seed and request order. The
    /// generator advances only for the calls this rule considers; an empty `faults` never faults.
    Random { seed: u64, probability: f64, faults: Vec<Fault>, mutating_only: bool },
}

/// Names the action of a request; `None` for requests it does not recognise.
pub type Classify = Arc<dyn Fn(&Request<'_>) -> Option<Action> + Send + Sync>;
/// Content-Type and body for a synthetic error answer with this status (500 or 429).
pub type ErrorBody = Arc<dyn Fn(&Request<'_>, u16) -> (String, Vec<u8>) + Send + Sync>;

/// How to start a [`FaultProxy`].
pub struct Options {
    /// Where requests go: `127.0.0.1:<emulator port>`.
    pub upstream: SocketAddr,
    /// Names each request's action. Requests it does not recognise (`None`) are counted under
    /// [`UNCLASSIFIED`] and faulted only by a [`Rule::Random`] with `mutating_only: false`.
    pub classify: Classify,
    /// Content-Type and body for a synthetic error answer with this status (500 or 429).
    pub error_body: ErrorBody,
    /// Checked in order; the first rule that selects a request decides its fault.
    pub rules: Vec<Rule>,
}

/// The action name under which requests the classifier does not recognise are counted and logged.
pub const UNCLASSIFIED: &str = "-";

/// One fault the proxy injected.
#[derive(Debug, Clone, PartialEq)]
pub struct Injected {
    /// The action's name, or [`UNCLASSIFIED`].
    pub action: String,
    /// Which call of that action it was (1-based; see [`Rule`]).
    pub call: u32,
    pub fault: Fault,
    pub method: String,
    /// The request target: path and query, as sent.
    pub path: String,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No free port on 127.0.0.1, or the listener could not join the runtime.
    #[error("binding 127.0.0.1:0")]
    Bind(#[source] std::io::Error),
    /// The runtime for the proxy's thread.
    #[error("building the fault proxy's tokio runtime")]
    Runtime(#[source] std::io::Error),
    /// The proxy's thread.
    #[error("spawning the fault proxy's thread")]
    Thread(#[source] std::io::Error),
}

/// A running proxy; stops on drop.
pub struct FaultProxy {
    shared: Arc<Shared>,
    port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy; panics if it cannot (see [`FaultProxy::try_start`]).
    pub fn start(opts: Options) -> FaultProxy {
        Self::try_start(opts).unwrap_or_else(|e| panic!("fault proxy: {e}: {:?}", std::error::Error::source(&e)))
    }

    /// Starts a proxy. The port is bound before this returns, so the URL works at once.
    pub fn try_start(opts: Options) -> Result<FaultProxy, StartError> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(StartError::Bind)?;
        listener.set_nonblocking(true).map_err(StartError::Bind)?;
        let port = listener.local_addr().map_err(StartError::Bind)?.port();
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(StartError::Runtime)?;
        let listener = {
            let _in_runtime = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(StartError::Bind)?
        };
        let shared = Arc::new(Shared {
            upstream: opts.upstream,
            classify: opts.classify,
            error_body: opts.error_body,
            state: Mutex::new(State { rules: arm(opts.rules), calls: BTreeMap::new(), log: Vec::new() }),
        });
        let (tx, rx) = oneshot::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || runtime.block_on(serve(listener, thread_shared, rx)))
            .map_err(StartError::Thread)?;
        Ok(FaultProxy { shared, port, shutdown: Some(tx), thread: Some(thread) })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the rules, and resets the per-action call counters (and so [`FaultProxy::calls`])
    /// and the random generators. The log of injected faults is kept.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        let mut state = self.shared.state();
        state.rules = arm(rules);
        state.calls.clear();
    }

    /// Every fault injected since start (or since [`FaultProxy::clear_log`]), in order.
    pub fn injected(&self) -> Vec<Injected> {
        self.shared.state().log.clone()
    }

    pub fn clear_log(&self) {
        self.shared.state().log.clear();
    }

    /// Requests seen per action name ([`UNCLASSIFIED`] for the others), faulted or not, since start
    /// or since the last [`FaultProxy::set_rules`]: the counters the rules number calls with.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.shared.state().calls.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            // The thread may already be gone; nothing to report then.
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the server and the test-facing handle share.
struct Shared {
    upstream: SocketAddr,
    classify: Classify,
    error_body: ErrorBody,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A classifier that panicked on another connection must not take the proxy down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct State {
    rules: Vec<Armed>,
    calls: BTreeMap<String, u64>,
    log: Vec<Injected>,
}

impl State {
    /// Counts the call and returns (and logs) its fault, if a rule selects it.
    fn decide(&mut self, action: Option<&Action>, req: &Request<'_>) -> Option<Fault> {
        let name = action.map_or(UNCLASSIFIED, |a| a.name.as_str());
        let count = self.calls.entry(name.to_owned()).or_default();
        *count += 1;
        let call = *count;
        let fault = self.rules.iter_mut().find_map(|r| r.select(action, call))?;
        self.log.push(Injected {
            action: name.to_owned(),
            call: u32::try_from(call).unwrap_or(u32::MAX),
            fault: fault.clone(),
            method: req.method.to_owned(),
            path: req.path_and_query.to_owned(),
        });
        Some(fault)
    }
}

/// A rule with its random generator (used by `Random` only).
struct Armed {
    rule: Rule,
    rng: SplitMix64,
}

fn arm(rules: Vec<Rule>) -> Vec<Armed> {
    rules
        .into_iter()
        .map(|rule| {
            let seed = if let Rule::Random { seed, .. } = rule { seed } else { 0 };
            Armed { rule, rng: SplitMix64(seed) }
        })
        .collect()
}

impl Armed {
    /// The fault this rule gives call number `call` of `action` (`None`: unclassified), if any.
    fn select(&mut self, action: Option<&Action>, call: u64) -> Option<Fault> {
        match &self.rule {
            Rule::FirstOfEachAction { n, mutating_only, fault } => {
                let action = action?;
                (call <= u64::from(*n) && (action.mutating || !mutating_only)).then(|| fault.clone())
            }
            Rule::Action { name, calls, fault } => {
                let action = action?;
                (action.name == *name && calls.iter().any(|&c| u64::from(c) == call)).then(|| fault.clone())
            }
            Rule::Random { probability, faults, mutating_only, .. } => {
                if faults.is_empty() || (*mutating_only && !action.is_some_and(|a| a.mutating)) {
                    return None;
                }
                if self.rng.unit() >= *probability {
                    return None;
                }
                // `len` fits in u64 and the remainder is below it, so both casts are lossless.
                let i = (self.rng.next_u64() % faults.len() as u64) as usize;
                Some(faults[i].clone())
            }
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, and the same sequence everywhere for a seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): the top 53 bits as a double's mantissa.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                // A failed accept (a client already gone, no descriptors left) loses that client only.
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(connection(stream, shared.clone()));
            }
        }
    }
}

/// Serves one client connection, with keep-alive.
async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    // A second handle on the socket: hyper owns the first. An injected reset sets `SO_LINGER` 0
    // through this one, then fails the request, and hyper drops the connection without answering;
    // the socket closes when both handles are gone (when this task ends), with RST. Linger is
    // zeroed for such resets only: connections that end normally close with FIN, so no answer is
    // ever cut short by a reset.
    let Ok(abort) = socket2::SockRef::from(&stream).try_clone() else { return };
    let abort = Arc::new(abort);
    let svc = hyper::service::service_fn(move |req| handle(shared.clone(), abort.clone(), req));
    // An error here is a client that went away or a fault that ended the connection on purpose.
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
}

/// Why the proxy ended a client connection without answering.
#[derive(Debug, thiserror::Error)]
enum Hangup {
    /// The client's request body could not be read.
    #[error("reading the client's request body")]
    ClientBody(#[source] hyper::Error),
    /// A fault said so.
    #[error("injected fault {0:?}")]
    Injected(Fault),
}

/// Why a request did not reach the upstream, or its answer did not come back.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("connecting to the upstream {0}")]
    Connect(SocketAddr, #[source] std::io::Error),
    #[error("building the upstream request")]
    Request(#[source] http::Error),
    #[error("exchanging with the upstream")]
    Http(#[source] hyper::Error),
}

async fn handle(
    shared: Arc<Shared>,
    abort: Arc<socket2::Socket>,
    req: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Hangup> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(Hangup::ClientBody)?.to_bytes();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let view = Request { method: parts.method.as_str(), path_and_query: target, headers: &parts.headers, body: &body };
    // The classifier is the caller's code: run it outside the lock.
    let action = (shared.classify)(&view);
    let fault = shared.state().decide(action.as_ref(), &view);
    let forward = || forward(shared.upstream, &parts, target, body.clone());
    match fault {
        None => Ok(forward().await.unwrap_or_else(bad_gateway)),
        Some(Fault::Latency(delay)) => {
            tokio::time::sleep(delay).await;
            Ok(forward().await.unwrap_or_else(bad_gateway))
        }
        Some(Fault::ForwardThen500) => {
            // Whatever the upstream did, the client sees a server failure.
            let _ = forward().await;
            Ok(synthetic(&shared, &view, StatusCode::INTERNAL_SERVER_ERROR, None))
        }
        Some(Fault::Throttle { retry_after_secs }) => {
            Ok(synthetic(&shared, &view, StatusCode::TOO_MANY_REQUESTS, Some(retry_after_secs)))
        }
        Some(f @ Fault::DropBeforeForward) => Err(reset(&abort, f)),
        Some(f @ Fault::ForwardThenReset) => {
            let _ = forward().await;
            Err(reset(&abort, f))
        }
    }
}

/// Makes the connection's close a reset (see [`connection`]) and says why.
fn reset(abort: &socket2::Socket, fault: Fault) -> Hangup {
    // Should this fail, the connection still ends without an answer, only with FIN.
    let _ = abort.set_linger(Some(Duration::ZERO));
    Hangup::Injected(fault)
}

/// An error answer from the error-body callback.
fn synthetic(
    shared: &Shared,
    req: &Request<'_>,
    status: StatusCode,
    retry_after: Option<u32>,
) -> Response<Full<Bytes>> {
    let (content_type, body) = (shared.error_body)(req, status.as_u16());
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    // A Content-Type that is no valid header value is left out rather than failing the request.
    if let Ok(v) = HeaderValue::try_from(content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// 502 with the error chain in plain text, as a gateway answers when its upstream fails.
fn bad_gateway(err: ForwardError) -> Response<Full<Bytes>> {
    let mut text = format!("fault proxy: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// Sends the request to the upstream over a fresh connection and reads the whole answer.
async fn forward(
    upstream: SocketAddr,
    parts: &http::request::Parts,
    target: &str,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, ForwardError> {
    let stream = tokio::net::TcpStream::connect(upstream).await.map_err(|e| ForwardError::Connect(upstream, e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(ForwardError::Http)?;
    // The connection's own errors come back through `send_request`; it ends when `sender` drops.
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(target)
        .body(Full::new(body))
        .map_err(ForwardError::Request)?;
    *req.headers_mut() = end_to_end(&parts.headers);
    let (head, body) = sender.send_request(req).await.map_err(ForwardError::Http)?.into_parts();
    let body = body.collect().await.map_err(ForwardError::Http)?.to_bytes();
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = head.status;
    *resp.headers_mut() = end_to_end(&head.headers);
    Ok(resp)
}

/// Headers that describe one connection (RFC 9110 §7.6.1), not the message: a proxy drops them and
/// frames the message anew (it has the whole body, so hyper writes a `Content-Length`).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The headers a proxy passes on: all but the hop-by-hop ones and those `Connection` names.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    headers
        .iter()
        .filter(|(k, _)| !HOP_BY_HOP.contains(&k.as_str()) && !named.iter().any(|n| n == k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The first outputs for seed 1234567 of the reference implementation (Vigna's splitmix64.c).
        let mut rng = SplitMix64(1234567);
        let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821]
        );
    }

    #[test]
    fn unit_is_in_the_half_open_interval() {
        let mut rng = SplitMix64(0);
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }

    #[test]
    fn end_to_end_drops_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("ec2.us-east-1.amazonaws.com"));
        h.insert("connection", HeaderValue::from_static("keep-alive, X-Hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.append("x-amz-date", HeaderValue::from_static("20250101T000000Z"));
        let out = end_to_end(&h);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["host", "x-amz-date"]);
    }
}
