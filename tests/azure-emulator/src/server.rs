//! The HTTP/1.1 front: reads a request, waits out the configured latency, hands it to
//! [`State::serve`] under the lock (never held across an await), and writes the answer with the
//! headers every ARM answer has (`x-ms-request-id`, `x-ms-correlation-request-id`).
//!
//! No TLS, no HTTP/2, no request size limits.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::oneshot;

use crate::route::percent_decode;
use crate::state::{Req, State};

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
        if_match: header("if-match"),
        if_none_match: header("if-none-match"),
        body: &body,
    };
    let reply = shared.state().serve(&req, Instant::now());
    let correlation =
        header("x-ms-correlation-request-id").map_or_else(|| uuid::Uuid::new_v4().to_string(), String::from);
    let mut b = Response::builder()
        .status(reply.status)
        .header("x-ms-request-id", uuid::Uuid::new_v4().to_string())
        .header("x-ms-correlation-request-id", correlation);
    for (k, v) in &reply.headers {
        b = b.header(*k, v);
    }
    let bytes = match &reply.body {
        Some(v) => {
            b = b.header("content-type", "application/json; charset=utf-8");
            Bytes::from(serde_json::to_vec(v).expect("JSON values serialize"))
        }
        None => Bytes::new(),
    };
    b.body(Full::new(bytes)).expect("a valid response")
}
