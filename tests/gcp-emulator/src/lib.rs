//! A Google Cloud emulator for integration tests, so that the GKE provider can be tested over HTTP
//! through the official google-cloud-rust clients without a project.
//!
//! [`GcpEmulator::start`] serves HTTP/1.1 on `127.0.0.1:<free port>` from its own thread and tokio
//! runtime, and stops when dropped. One port serves the four REST APIs the provider uses, told
//! apart by path, so every client's endpoint is [`GcpEmulator::url`]:
//! - Compute Engine v1 (`/compute/v1/projects/{p}/…`): `global/networks`, `global/firewalls`,
//!   `regions/{r}/subnetworks`, `regions/{r}/routers` (Cloud NAT), `regions/{r}/addresses`
//!   (`setLabels`), and `global|regions/{r}/operations/{op}` (GET, and POST `…/wait`);
//! - GKE, container v1 (`/v1/projects/{p}/locations/{l}/…`): clusters (create, get, list, update,
//!   delete, `:setResourceLabels`, `:setNetworkPolicy`, `:setAddons`, `:updateMaster`,
//!   `:setLocations`, `:setMaintenancePolicy`, `:setLogging`, `:setMonitoring`), node pools
//!   (create, get, list, update, delete, `:setSize`, `:setAutoscaling`, `:setManagement`),
//!   operations (get, list), and the location's `serverConfig` (versions, release channels);
//! - Cloud DNS v1 (`/dns/v1/projects/{p}/managedZones…`): zones, record sets, changes, and the
//!   zone's `:getIamPolicy`/`:setIamPolicy`;
//! - IAM v1 (`/v1/projects/{p}/serviceAccounts…`): service accounts and their
//!   `:getIamPolicy`/`:setIamPolicy`.
//!
//! It behaves like Google where a client can get it wrong:
//! - the wire: `$alt=json;enum-encoding=int` and the other query parameters the clients add are
//!   tolerated, integer enums in container and IAM bodies are read, int64s are strings, bytes
//!   (fingerprints, etags) are base64, empty answers are `{}` or 204, errors are
//!   `{"error":{"code","message","status"}}` plus the legacy `errors[{message,domain,reason}]`
//!   for compute and DNS (so `e.status().code` and the `ErrorInfo` reasons read as Google's do);
//! - operations: compute operations go `PENDING` → `RUNNING` → `DONE` over
//!   [`Options::operation_delay`] (pollers and `wait` work); container operations likewise, the
//!   cluster `PROVISIONING` → `RUNNING` (`RECONCILING` while updated, `STOPPING` while deleted);
//!   DNS changes `pending` → `done`; a failed operation is `DONE` with its error (compute:
//!   `error.errors[]` and `httpErrorStatusCode`; container: `error` and `statusMessage`). Note
//!   that compute's `.poller().until_done()` answers a failed operation as `Ok(op)` with
//!   `op.error` set: `op.to_result()` turns it into an error;
//! - compute `requestId`: a repeated id answers the first operation and does nothing twice;
//! - refusals (status, and compute/DNS reason): 404 `notFound`/`NOT_FOUND`, 409
//!   `alreadyExists`/`ALREADY_EXISTS`, 400 `invalid`/`required`/`INVALID_ARGUMENT` on bad input
//!   (names, overlapping ranges, missing secondary ranges, a master range that is not a free /28,
//!   Calico without its add-on or with Dataplane V2, a foreign workload pool, autoscaling bounds,
//!   node versions ahead of the control plane), 400 `resourceNotReady` while a referenced
//!   resource is being created or deleted, 400 `resourceInUseByAnotherResource` for a subnetwork
//!   or address still in use (a network still in use fails its delete *operation* with
//!   `RESOURCE_IN_USE_BY_ANOTHER_RESOURCE`, as compute does), 412 `conditionNotMet` for stale
//!   compute fingerprints and DNS deletions that do not match, 400 `FAILED_PRECONDITION` for a
//!   second GKE operation while one runs on the cluster or a stale cluster label fingerprint,
//!   409 `ABORTED` for a stale IAM policy etag, 400 `containerNotEmpty` for a zone that still has
//!   records, 401 `UNAUTHENTICATED` without the [`Options::token`];
//! - eventual consistency of IAM: a service account younger than [`Options::principal_lag`] is
//!   unknown to policies; a Workload Identity member needs a cluster with that workload pool;
//! - generated values: numeric ids, external addresses (unique, stable), internal addresses from
//!   the subnetwork, fingerprints, DNS name servers, service account emails and unique ids, the
//!   cluster's `endpoint` ([`Options::kube_endpoint`]) and CA ([`Options::cluster_ca_certificate`]).
//!
//! Tests steer it without HTTP: read and tamper with stored resources (drift), count calls, read
//! the request log, throttle (429, or compute's 403 `rateLimitExceeded`), inject errors or failed
//! operations, add latency, finish operations early. Resources are addressed by their path after
//! the API prefix (`projects/p/global/networks/n`, `projects/p/locations/l/clusters/c`,
//! `projects/p/managedZones/z`, `projects/p/serviceAccounts/<email>`) and grouped by kind names
//! ([`KINDS`]): `compute.networks`, `compute.subnetworks`, `compute.firewalls`, `compute.routers`,
//! `compute.addresses`, `container.clusters`, `container.nodePools`, `dns.managedZones`,
//! `dns.rrsets`, `dns.changes`, `iam.serviceAccounts`.
//!
//! What it cannot show:
//! - Nothing is provisioned: no VMs, nodes, instance groups, Kubernetes API (point
//!   [`Options::kube_endpoint`] at the Kubernetes emulator), load balancers or NAT gateways; an
//!   address is only ever `IN_USE` by a router's NAT or through a raw edit; no DNS answers.
//! - No OAuth: tokens are compared with [`Options::token`], never validated. IAM grants nothing:
//!   no call is refused for lack of a role; roles are checked for shape only; no project-level
//!   policies (cloudresourcemanager is not served), keys, or `testIamPermissions`.
//! - No quotas (except injected), regions, zones, machine types or image checks; any project id
//!   is accepted and projects need no enabling. Only the methods listed above are served:
//!   legacy (`zones/…`) container paths, aggregated lists, peering, routes, VPN, instances,
//!   Autopilot rules, DNSSEC, routing policies and private-zone peering/forwarding are not served
//!   (unknown paths are 404, unknown custom methods 501).
//! - IPv4 only. An auto-mode network gets subnetworks in a dozen regions only. A VPC-native
//!   cluster without named secondary ranges does not create ranges in its subnetwork.
//! - Routers carry a `fingerprint` (checked on PATCH/PUT when sent) although compute v1's Router
//!   model has none: the client keeps it as an unknown field, so a read-modify-write sends it back.
//! - Container enums in answers are names for the fields the emulator reads, and the integers the
//!   client sent for the rest; cluster etags are not checked.
//! - Operations complete on time only: no partial failures except those injected
//!   ([`GcpEmulator::fail_next_operation`]), no cancellation; DNS changes cannot be failed.

mod compute;
mod container;
mod dns;
mod error;
mod filter;
mod iam;
mod net;
mod route;
mod server;
mod state;
mod storage;

pub use storage::{StorageEmulator, StorageOptions};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::route::{Kind, kind_of_key};
use crate::state::{Injected, State};

/// The version clusters get when they ask for none (or `latest`, `-`).
pub const DEFAULT_CLUSTER_VERSION: &str = "1.33.5-gke.1308000";

/// A self-signed CA certificate (PEM), only ever parsed: clusters' default
/// `masterAuth.clusterCaCertificate` (base64 of this).
pub const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
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

/// The kind names [`GcpEmulator::resources`] and the call counts use.
pub const KINDS: [&str; 11] = [
    "compute.networks",
    "compute.subnetworks",
    "compute.firewalls",
    "compute.routers",
    "compute.addresses",
    "container.clusters",
    "container.nodePools",
    "dns.managedZones",
    "dns.rrsets",
    "dns.changes",
    "iam.serviceAccounts",
];

/// How the emulator starts.
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    /// The bearer token every request must carry; `None` accepts any, or none (anonymous
    /// credentials send no `Authorization` header).
    pub token: Option<String>,
    /// How long an operation (compute, container) or a DNS change stays unfinished: `PENDING` for
    /// the first half, then `RUNNING`. With zero, the answer that starts it still says `PENDING`
    /// and the first poll says `DONE`.
    pub operation_delay: Duration,
    /// Items per page of a list when the request names no page size (compute at most 500).
    pub page_size: usize,
    /// A service account younger than this is unknown to IAM policies ("Service account … does
    /// not exist"), as while IAM replicates a new account.
    pub principal_lag: Duration,
    /// The `endpoint` of every cluster (`host` or `host:port`, as GKE answers an IP); empty: a
    /// distinct 34.x address per cluster.
    pub kube_endpoint: String,
    /// `masterAuth.clusterCaCertificate` of every cluster: base64 of a PEM certificate.
    pub cluster_ca_certificate: String,
    /// The version a cluster gets when it names none.
    pub default_cluster_version: String,
    /// The port on 127.0.0.1 (0: a free one).
    pub port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: None,
            operation_delay: Duration::ZERO,
            page_size: 500,
            principal_lag: Duration::ZERO,
            kube_endpoint: String::new(),
            cluster_ca_certificate: base64::engine::general_purpose::STANDARD.encode(TEST_CA_PEM),
            default_cluster_version: DEFAULT_CLUSTER_VERSION.into(),
            port: 0,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("operation_delay", &self.operation_delay)
            .field("page_size", &self.page_size)
            .field("principal_lag", &self.principal_lag)
            .field("kube_endpoint", &self.kube_endpoint)
            .field("cluster_ca_certificate", &format!("<{} bytes>", self.cluster_ca_certificate.len()))
            .field("default_cluster_version", &self.default_cluster_version)
            .field("port", &self.port)
            .finish()
    }
}

/// How throttled requests are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttle {
    /// 429 `RESOURCE_EXHAUSTED` (reason `rateLimitExceeded` where the API sends reasons).
    TooManyRequests,
    /// Compute's older flavour: 403 `PERMISSION_DENIED` with reason `rateLimitExceeded`, domain
    /// `usageLimits`.
    RateLimitExceeded,
}

/// One request the emulator answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// The percent-decoded path.
    pub path: String,
    /// The query, decoded, as `k=v&k=v`.
    pub query: String,
    pub status: u16,
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The port on 127.0.0.1 is taken (or none is free).
    #[error("binding 127.0.0.1:{0}")]
    Bind(u16, #[source] std::io::Error),
    /// The runtime for the server thread.
    #[error("building the emulator's tokio runtime")]
    Runtime(#[source] std::io::Error),
    /// The server thread.
    #[error("spawning the emulator's thread")]
    Thread(#[source] std::io::Error),
}

/// A running emulator; stops on drop.
pub struct GcpEmulator {
    shared: Arc<server::Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn kind(name: &str) -> Kind {
    Kind::lookup(name).unwrap_or_else(|| panic!("unknown kind {name:?}; the kinds are {KINDS:?}"))
}

impl GcpEmulator {
    /// Starts an emulator; panics if it cannot (see [`GcpEmulator::try_start`]).
    pub fn start(opts: Options) -> GcpEmulator {
        Self::try_start(opts).unwrap_or_else(|e| panic!("gcp emulator: {e}: {:?}", std::error::Error::source(&e)))
    }

    /// Starts an emulator. The port is bound before this returns, so the URL works at once.
    pub fn try_start(opts: Options) -> Result<GcpEmulator, StartError> {
        let port = opts.port;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| StartError::Bind(port, e))?;
        listener.set_nonblocking(true).map_err(|e| StartError::Bind(port, e))?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| StartError::Bind(port, e))?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(StartError::Runtime)?;
        let state = State::new(opts, format!("http://{addr}"));
        let shared = Arc::new(server::Shared { state: Mutex::new(state), addr });
        let (tx, rx) = oneshot::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("gcp-emulator-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a bound non-blocking listener");
                    server::serve(listener, thread_shared, rx).await;
                });
            })
            .map_err(StartError::Thread)?;
        Ok(GcpEmulator { shared, shutdown: Some(tx), thread: Some(thread) })
    }

    /// `http://127.0.0.1:PORT`: the endpoint of every client.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// Every resource of a kind ([`KINDS`]) as GET answers it, in path order. Panics on an unknown
    /// kind name.
    pub fn resources(&self, kind_name: &str) -> Vec<Value> {
        let k = kind(kind_name);
        let mut st = self.shared.state();
        st.settle(Instant::now());
        let keys: Vec<String> = st.entries.iter().filter(|(_, e)| e.kind == k).map(|(p, _)| p.clone()).collect();
        keys.iter().filter_map(|p| st.present(p)).collect()
    }

    /// A resource by path (`projects/p/global/networks/n`) as GET answers it.
    pub fn get(&self, path: &str) -> Option<Value> {
        let mut st = self.shared.state();
        st.settle(Instant::now());
        st.present(path.trim_start_matches('/'))
    }

    /// Stores a document as the resource at `path`, unchecked (drift, or a state the API would
    /// refuse). A network's `subnetworks`, an address's `users`/`status` (beyond the stored
    /// `users`) and a cluster's `nodePools`/`currentNodeCount` are views of other resources:
    /// change those instead. Panics if `path` is not the path of a kind the emulator serves.
    pub fn put_raw(&self, path: &str, value: Value) {
        let path = path.trim_start_matches('/');
        let k = kind_of_key(path).unwrap_or_else(|| panic!("put_raw: {path} is not the path of a served kind"));
        let mut st = self.shared.state();
        if k == Kind::NodePool && !st.pool_sizes.contains_key(path) {
            let n = value["initialNodeCount"].as_i64().unwrap_or(0);
            st.pool_sizes.insert(path.to_string(), n);
        }
        st.store(k, path, value, Instant::now());
    }

    /// Edits the stored document at `path` (see [`GcpEmulator::put_raw`]); `f` runs outside the
    /// lock. Panics if there is no such resource.
    pub fn patch_raw(&self, path: &str, f: impl FnOnce(&mut Value)) {
        let path = path.trim_start_matches('/');
        let mut v = {
            let mut st = self.shared.state();
            st.settle(Instant::now());
            st.entries.get(path).map(|e| e.value.clone()).unwrap_or_else(|| panic!("patch_raw: no resource {path}"))
        };
        f(&mut v);
        if let Some(e) = self.shared.state().entries.get_mut(path) {
            e.value = v;
        }
    }

    /// Removes a resource and everything under it, unchecked (as someone deleting it in the
    /// console). False if it did not exist.
    pub fn delete_raw(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        let mut st = self.shared.state();
        let existed = st.entries.contains_key(path);
        st.remove_tree(path);
        existed
    }

    /// The IAM policy set on a zone or service account (by path), if one was set.
    pub fn iam_policy(&self, path: &str) -> Option<Value> {
        self.shared.state().policies.get(path.trim_start_matches('/')).cloned()
    }

    /// Nodes per zone of a node pool (its initial count, then what `setSize` set).
    pub fn node_count(&self, pool_path: &str) -> Option<i64> {
        self.shared.state().pool_sizes.get(pool_path.trim_start_matches('/')).copied()
    }

    /// The paths of the operations (compute, container) and DNS changes not finished yet.
    pub fn operations_in_flight(&self) -> Vec<String> {
        let mut st = self.shared.state();
        st.settle(Instant::now());
        st.ops
            .values()
            .filter(|o| !o.done)
            .map(|o| if o.api == route::Api::Dns { o.target.clone() } else { o.key.clone() })
            .collect()
    }

    /// Requests answered so far by `"<METHOD> <name>"`: the kind for collections and resources
    /// (`"POST compute.addresses"`, `"GET container.clusters"`), `<kind>:<method>` for custom
    /// methods (`"POST compute.addresses:setLabels"`, `"POST container.nodePools:setSize"`,
    /// `"POST iam.serviceAccounts:setIamPolicy"`), `"GET operations"` for operation polls (and
    /// `"POST operations"` for compute waits), `"<METHOD> unknown"` for unserved paths.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.shared.state().calls.clone()
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().requests.clone()
    }

    /// Forgets the request log and the call counts.
    pub fn clear_requests(&self) {
        let mut st = self.shared.state();
        st.requests.clear();
        st.calls.clear();
    }

    /// The next `n` requests, whatever they are, are refused as throttled.
    pub fn throttle_next(&self, n: u32, how: Throttle) {
        self.shared.state().throttle = (n, how);
    }

    /// Every request waits this long before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.state().latency = latency;
    }

    /// The next request with this method on this name (as counted by [`GcpEmulator::calls`]:
    /// `compute.networks`, `container.nodePools:setSize`, `operations`) fails with this HTTP
    /// status, canonical status (`UNAVAILABLE`, `INTERNAL`, ...) and message, shaped as its API
    /// shapes errors. Injections queue up.
    pub fn fail_next(&self, method: &str, name: &str, http_status: u16, status: &str, message: &str) {
        let api = Kind::lookup(name.split(':').next().unwrap_or(name)).map(Kind::api);
        self.shared.state().failures.push(Injected {
            method: method.to_string(),
            name: name.to_string(),
            error: ApiError::for_api(api, http_status, status, message),
        });
    }

    /// The next operation started on a resource of this kind (compute or container) ends `DONE`
    /// with this error: `code` is a compute error code (`QUOTA_EXCEEDED`) or a canonical status
    /// (`INTERNAL`, `RESOURCE_EXHAUSTED`). A failed create takes a compute resource away again and
    /// leaves a cluster or node pool in `ERROR`; a failed delete leaves the resource (a cluster or
    /// pool in `ERROR`); a failed update keeps the change. Panics for a kind without operations.
    pub fn fail_next_operation(&self, kind_name: &str, code: &str, message: &str) {
        let k = kind(kind_name);
        assert!(
            matches!(k.api(), route::Api::Compute | route::Api::Container),
            "fail_next_operation: {kind_name} has no operations"
        );
        self.shared.state().op_failures.push((k, code.to_string(), message.to_string()));
    }

    /// Finishes every operation and DNS change in flight now, whatever
    /// [`Options::operation_delay`] says.
    pub fn complete_operations(&self) {
        self.shared.state().complete_all(Instant::now());
    }
}

impl Drop for GcpEmulator {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_agree() {
        let names: Vec<&str> = route::KINDS.iter().map(|k| k.name()).collect();
        assert_eq!(names, KINDS);
    }
}
