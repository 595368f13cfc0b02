//! Helpers shared by the integration tests: the official clients pointed at an emulator (anonymous
//! credentials, no retries, fast polling), typed models written as JSON, error accessors, a raw
//! HTTP/1.1 client for what the clients cannot express, and a little network setup.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::{Code, StatusDetails};
use google_cloud_lro::Poller;
use matih_gcp_emulator::GcpEmulator;
use serde_json::{Value, json};

pub use google_cloud_compute_v1::client::{Addresses, Firewalls, Networks, Routers, Subnetworks};
pub use google_cloud_container_v1::client::ClusterManager;
pub use google_cloud_dns_v1::client::{Changes, ManagedZones, ResourceRecordSets};
pub use google_cloud_iam_admin_v1::client::Iam;

pub const P: &str = "matih-test";
pub const REGION: &str = "europe-west1";

/// Every client the GKE provider uses, against one emulator.
pub struct Gcp {
    pub networks: Networks,
    pub subnetworks: Subnetworks,
    pub firewalls: Firewalls,
    pub routers: Routers,
    pub addresses: Addresses,
    pub gke: ClusterManager,
    pub zones: ManagedZones,
    pub rrsets: ResourceRecordSets,
    pub changes: Changes,
    pub iam: Iam,
}

macro_rules! client {
    ($ty:ty, $url:expr) => {
        <$ty>::builder()
            .with_endpoint($url.clone())
            .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .with_attempt_timeout(Duration::from_secs(10))
            .with_polling_backoff_policy(
                google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder::new()
                    .with_initial_delay(Duration::from_millis(10))
                    .with_maximum_delay(Duration::from_millis(40))
                    .build()
                    .expect("a valid backoff"),
            )
            .build()
            .await
            .expect("a client")
    };
}

impl Gcp {
    pub async fn new(em: &GcpEmulator) -> Gcp {
        Self::at(&em.url()).await
    }

    pub async fn at(url: &str) -> Gcp {
        // Without the clients' default features no rustls provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = url.to_string();
        Gcp {
            networks: client!(Networks, url),
            subnetworks: client!(Subnetworks, url),
            firewalls: client!(Firewalls, url),
            routers: client!(Routers, url),
            addresses: client!(Addresses, url),
            gke: client!(ClusterManager, url),
            zones: client!(ManagedZones, url),
            rrsets: client!(ResourceRecordSets, url),
            changes: client!(Changes, url),
            iam: client!(Iam, url),
        }
    }

    /// A custom-mode network, waited for.
    pub async fn network(&self, name: &str) {
        self.networks
            .insert()
            .set_project(P)
            .set_body(model::<google_cloud_compute_v1::model::Network>(
                json!({"name": name, "autoCreateSubnetworks": false}),
            ))
            .poller()
            .until_done()
            .await
            .expect("the network")
            .to_result()
            .expect("the network");
    }

    /// A subnetwork of `network` in [`REGION`] with secondary ranges `(name, range)`, waited for.
    pub async fn subnet(&self, name: &str, network: &str, range: &str, secondary: &[(&str, &str)]) {
        self.try_subnet(name, network, range, secondary)
            .await
            .expect("the subnetwork")
            .to_result()
            .expect("the subnetwork");
    }

    pub async fn try_subnet(
        &self,
        name: &str,
        network: &str,
        range: &str,
        secondary: &[(&str, &str)],
    ) -> Result<google_cloud_compute_v1::model::Operation, Error> {
        // A failed operation comes back as `Ok(op)` with `op.error`: a test reads it there.
        let ranges: Vec<Value> = secondary.iter().map(|(n, r)| json!({"rangeName": n, "ipCidrRange": r})).collect();
        self.subnetworks
            .insert()
            .set_project(P)
            .set_region(REGION)
            .set_body(model::<google_cloud_compute_v1::model::Subnetwork>(json!({
                "name": name,
                "network": format!("projects/{P}/global/networks/{network}"),
                "ipCidrRange": range,
                "secondaryIpRanges": ranges,
            })))
            .poller()
            .until_done()
            .await
    }

    /// The VPC a GKE cluster wants: network `net`, subnetwork `nodes` 10.0.0.0/20 with `pods`
    /// 10.4.0.0/14 and `services` 10.8.0.0/20.
    pub async fn vpc(&self, net: &str) {
        self.network(net).await;
        self.subnet("nodes", net, "10.0.0.0/20", &[("pods", "10.4.0.0/14"), ("services", "10.8.0.0/20")]).await;
    }
}

/// Runs an async test body on a thread with a large stack and its own runtime: the clients'
/// futures are big in debug builds, and a long test overflows the default test thread's stack.
pub fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let thread = std::thread::Builder::new().stack_size(64 << 20).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(Box::pin(f()));
    });
    if let Err(panic) = thread.expect("a test thread").join() {
        std::panic::resume_unwind(panic);
    }
}

/// A client model (or request) written as JSON.
pub fn model<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("JSON the model reads")
}

/// A client model as JSON.
pub fn json_of<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).expect("a model serializes")
}

/// The status code the client read from an error.
pub fn code(e: &Error) -> Code {
    e.status().map(|s| s.code).unwrap_or_else(|| panic!("no status in {e:?}"))
}

/// The first `ErrorInfo` reason (compute's and DNS's legacy `errors[].reason`).
pub fn reason(e: &Error) -> String {
    e.status()
        .and_then(|s| {
            s.details.iter().find_map(|d| match d {
                StatusDetails::ErrorInfo(i) => Some(i.reason.clone()),
                _ => None,
            })
        })
        .unwrap_or_default()
}

pub fn message(e: &Error) -> String {
    e.status().map(|s| s.message.clone()).unwrap_or_default()
}

/// An answer to a raw request.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Null when there is no body.
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Panics unless the status is `status`.
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "unexpected answer: {self:#?}");
        self
    }
}

/// One raw HTTP/1.1 request (`Connection: close`) to `base` (`http://127.0.0.1:PORT`).
pub fn raw(base: &str, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("the emulator accepts connections");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let payload = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&payload).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("an answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let body = &raw[split + 4..];
    let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(body).expect("a JSON body") };
    Resp { status, headers, body }
}
