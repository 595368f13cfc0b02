//! The HTTP/1.1 front: reads a request, waits out the configured latency, hands it to
//! [`State::serve`] under the lock (never held across an await), holds a compute `wait` until its
//! operation is done, and writes the answer.
//!
//! No TLS, no HTTP/2, no request size limits, no Google headers beyond what the clients read.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::oneshot;

use crate::route::percent_decode;
use crate::state::{Req, State};

/// How long a compute `wait` holds at most before answering the operation as it is (compute's
/// own limit is about two minutes).
const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// State shared by the server and the test-facing handle.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub addr: SocketAddr,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A test closure that panicked inside `patch_raw` must not take the server down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Accepts connections until `shutdown` fires.
pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
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

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let latency = shared.state().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let path = percent_decode(parts.uri.path());
    let query = parts.uri.query().unwrap_or_default();
    let req = Req {
        method: parts.method.as_str(),
        path: &path,
        query: form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
        authorization: header("authorization"),
        body: &body,
    };
    let mut reply = shared.state().serve(&req, Instant::now());
    if let Some(key) = reply.wait.take() {
        // Compute's `wait`: hold the answer until the operation is done (or the limit passes),
        // looking again every few milliseconds so `complete_operations` is seen at once.
        let limit = Instant::now() + WAIT_LIMIT;
        loop {
            let now = Instant::now();
            let (due, done) = {
                let mut st = shared.state();
                match st.waited(&key, now) {
                    Some((v, done)) => {
                        reply.body = Some(v);
                        (st.ops.get(&key).map_or(now, |o| o.due), done)
                    }
                    None => (now, true),
                }
            };
            if done || now >= limit {
                break;
            }
            let step = due.saturating_duration_since(now).min(Duration::from_millis(20)).max(Duration::from_millis(1));
            tokio::time::sleep(step).await;
        }
    }
    let mut b = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        b = b.header(*k, v);
    }
    let bytes = match &reply.body {
        Some(v) => {
            b = b.header("content-type", "application/json; charset=UTF-8");
            Bytes::from(serde_json::to_vec(v).expect("JSON values serialize"))
        }
        None => Bytes::new(),
    };
    b.body(Full::new(bytes)).expect("a valid response")
}
