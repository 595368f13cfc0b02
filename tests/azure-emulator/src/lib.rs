//! An Azure Resource Manager (ARM) emulator for integration tests, so that the Azure provider can
//! be tested over HTTP without a subscription.
//!
//! [`AzureEmulator::start`] serves HTTP/1.1 on `127.0.0.1:<free port>` from its own thread and
//! tokio runtime, and stops when dropped. It speaks the ARM paths and JSON (field names from the
//! public azure-rest-api-specs) of exactly the types and API versions of the contract in
//! `notes/arm-contract.md`: resource groups, VNets and subnets, NSGs, public IPs, DNS zones and
//! record sets, AKS clusters and agent pools (and `listClusterUserCredential`), user-assigned
//! identities and their federated credentials, role assignments. It behaves like ARM where a client
//! can get it wrong:
//! - long-running operations: `provisioningState` goes `Creating`/`Updating` → `Succeeded` (or
//!   `Deleting` → gone) over [`Options::lro_delay`], polled through `Azure-AsyncOperation` status
//!   documents or `Location` URLs (202 while running, 200 when done), with `Retry-After`;
//! - ARM error bodies with `x-ms-request-id` on every answer; 404 `ResourceGroupNotFound` vs
//!   `ResourceNotFound`/`NotFound`; 409 on conflicts; 400 on invalid input (overlapping subnets,
//!   subnets outside their VNet, a DNS service IP outside the service CIDR, a service CIDR
//!   overlapping the nodes' VNet, missing locations, subnets or NSGs deleted while in use);
//!   412 on failed `If-Match`/`If-None-Match`; paging with `nextLink`; 401 on a wrong token;
//! - cascades: deleting a group deletes its contents; deleting a cluster deletes its pools and its
//!   node resource group; a VNet PUT's `subnets` replace the VNet's subnets;
//! - generated values: public IP addresses (unique, stable), identity GUIDs, a cluster's principal,
//!   kubelet identity, FQDNs and OIDC issuer URL, DNS name servers;
//! - role assignments as ARM rules them: idempotent PUT, no update, one per (scope, role,
//!   principal), unknown or too-young principals refused.
//!
//! Tests steer it without HTTP: read and tamper with stored resources (drift), count calls, throttle,
//! inject errors or failed operations, add latency, finish operations early.
//!
//! What it cannot show:
//! - Nothing is provisioned: no VMs, nodes, Kubernetes API (point [`Options::kubeconfig_server`] at
//!   the Kubernetes emulator), load balancers; a public IP is never bound to anything, and its
//!   `ipConfiguration` stays empty. No DNS answers from the zones.
//! - No AAD: tokens are compared with [`Options::token`], never validated; role assignments grant
//!   nothing and role definitions are not looked up (only their id's shape is checked); principals
//!   are the emulated identities and clusters plus [`AzureEmulator::add_principal`].
//! - No quotas, regions, VM sizes, Kubernetes versions, SKU rules or name rules; no NSG rule checks
//!   or default rules; IPv4 only. Immutable fields are not enforced: a PUT may change a resource's
//!   location (a zone's need not be `global`), a cluster's DNS prefix or service CIDR, an in-use
//!   subnet's prefix. Record set
//!   contents are checked only for CNAMEs (one name, not at the apex, no other record set of the
//!   name). A pool's cluster does
//!   not show `Updating` while the pool changes; the last System pool can be deleted.
//! - Subscription-wide lists only for top-level tracked types (`/subscriptions/{s}/providers/<ns>/<type>`);
//!   no PATCH, no tag-only updates, no resource moves, no locks, no deployments, no subscription or
//!   provider registration APIs; any subscription id is accepted.
//! - Operations complete on time only: no partial failures except those injected
//!   ([`AzureEmulator::fail_next_operation`]), no cancellation.

mod error;
mod kinds;
mod net;
mod route;
mod server;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use crate::error::ArmError;
use crate::route::{Route, Ty, key};
use crate::state::{Injected, State};

/// The tenant id answers carry unless [`Options::tenant_id`] says otherwise.
pub const DEFAULT_TENANT_ID: &str = "5e1e1f3a-6b3e-4c5d-9a7b-2f0c8d4e6a10";

/// How the emulator starts.
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    /// The bearer token every request must carry; `None` accepts any (or none).
    pub token: Option<String>,
    /// How long a create, update or delete stays in progress. With zero, the PUT answer still says
    /// `Creating`/`Updating` and points at an operation, which is `Succeeded` at the first poll.
    pub lro_delay: Duration,
    /// `Retry-After` (seconds) on long-running answers and in-progress polls.
    pub retry_after_secs: u64,
    /// Items per page of a list (`$top` overrides it per request).
    pub page_size: usize,
    /// A role assignment to a principal younger than this fails with `PrincipalNotFound`, as while
    /// AAD replicates a new identity.
    pub principal_lag: Duration,
    /// The `server` of kubeconfigs from `listClusterUserCredential` (empty: the cluster's FQDN).
    pub kubeconfig_server: String,
    /// The user token in those kubeconfigs.
    pub kubeconfig_token: String,
    pub tenant_id: String,
    /// The port on 127.0.0.1 (0: a free one).
    pub port: u16,
    /// Resource provider namespaces the subscription is not registered for (a fresh
    /// subscription): a write of their types fails with 409 `MissingSubscriptionRegistration`
    /// until `POST /subscriptions/{s}/providers/{namespace}/register`.
    pub unregistered: Vec<String>,
    /// How long a pod subnet stays in use (its service association link) after the pool that
    /// used it is deleted: `InUseSubnetCannotBeDeleted` until then, as AKS cleans up after the
    /// cluster's delete operation has finished.
    pub link_linger: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: None,
            lro_delay: Duration::ZERO,
            retry_after_secs: 0,
            page_size: 100,
            principal_lag: Duration::ZERO,
            kubeconfig_server: String::new(),
            kubeconfig_token: "emulated-cluster-user-token".into(),
            tenant_id: DEFAULT_TENANT_ID.into(),
            port: 0,
            unregistered: Vec::new(),
            link_linger: Duration::ZERO,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("Options")
            .field("token", &redacted(&self.token))
            .field("lro_delay", &self.lro_delay)
            .field("retry_after_secs", &self.retry_after_secs)
            .field("page_size", &self.page_size)
            .field("principal_lag", &self.principal_lag)
            .field("kubeconfig_server", &self.kubeconfig_server)
            .field("kubeconfig_token", &"<redacted>")
            .field("tenant_id", &self.tenant_id)
            .field("port", &self.port)
            .field("unregistered", &self.unregistered)
            .field("link_linger", &self.link_linger)
            .finish()
    }
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
pub struct AzureEmulator {
    shared: Arc<server::Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AzureEmulator {
    /// Starts an emulator; panics if it cannot (see [`AzureEmulator::try_start`]).
    pub fn start(opts: Options) -> AzureEmulator {
        Self::try_start(opts).unwrap_or_else(|e| panic!("azure emulator: {e}: {:?}", std::error::Error::source(&e)))
    }

    /// Starts an emulator. The port is bound before this returns, so the URL works at once.
    pub fn try_start(opts: Options) -> Result<AzureEmulator, StartError> {
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
            .name(format!("azure-emulator-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a bound non-blocking listener");
                    server::serve(listener, thread_shared, rx).await;
                });
            })
            .map_err(StartError::Thread)?;
        Ok(AzureEmulator { shared, shutdown: Some(tx), thread: Some(thread) })
    }

    /// `http://127.0.0.1:PORT`: the ARM endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn tenant_id(&self) -> String {
        self.shared.state().opts.tenant_id.clone()
    }

    /// Every resource of a type (`Microsoft.Network/virtualNetworks`, `Microsoft.Network/dnsZones/A`,
    /// ...; case-insensitive) as GET answers it, in id order.
    pub fn resources(&self, type_name: &str) -> Vec<Value> {
        let mut st = self.shared.state();
        st.settle(Instant::now());
        let keys: Vec<String> = st
            .entries
            .iter()
            .filter(|(_, e)| e.ty.name.eq_ignore_ascii_case(type_name))
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| st.present(k)).collect()
    }

    /// A resource by id (any casing) as GET answers it.
    pub fn get(&self, id: &str) -> Option<Value> {
        let mut st = self.shared.state();
        st.settle(Instant::now());
        st.present(&key(id))
    }

    /// Stores a document as the resource `id`, unchecked (drift, or a state the API would refuse).
    /// A VNet's `subnets`, a cluster's `agentPoolProfiles`, an NSG's `subnets` and a zone's
    /// `numberOfRecordSets` are views of other resources: change those resources instead.
    /// Panics if `id` is not the id of a type the emulator serves.
    pub fn put_raw(&self, id: &str, value: Value) {
        let Route::Item(it) = route::parse("PUT", id) else { panic!("put_raw: {id} is not a served resource id") };
        self.shared.state().store(it.ty, &it.id, &it.parent, value, Instant::now());
    }

    /// Edits the stored document of `id` (see [`AzureEmulator::put_raw`]); `f` runs outside the
    /// lock. Panics if there is no such resource.
    pub fn patch_raw(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let mut v = {
            let mut st = self.shared.state();
            st.settle(Instant::now());
            st.entries.get(&key(id)).map(|e| e.value.clone()).unwrap_or_else(|| panic!("patch_raw: no resource {id}"))
        };
        f(&mut v);
        if let Some(e) = self.shared.state().entries.get_mut(&key(id)) {
            e.value = v;
        }
    }

    /// Removes a resource and everything under it, unchecked (as someone deleting it in the
    /// portal). False if it did not exist.
    pub fn delete_raw(&self, id: &str) -> bool {
        let mut st = self.shared.state();
        let existed = st.entries.contains_key(&key(id));
        st.remove_tree(&key(id));
        existed
    }

    /// Makes a principal (a user or group, say) exist for role assignments, created now.
    pub fn add_principal(&self, principal_id: &str) {
        self.shared.state().principals.insert(principal_id.to_ascii_lowercase(), Instant::now());
    }

    /// Requests answered so far by `"<METHOD> <type>"`: `"PUT Microsoft.Network/virtualNetworks"`
    /// (items and lists alike), `"POST Microsoft.ContainerService/managedClusters/listClusterUserCredential"`,
    /// `"GET operations"` for polls of either style, `"<METHOD> unknown"` for unserved paths.
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

    /// The next `n` requests, whatever they are, get 429 `TooManyRequests` with `Retry-After`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        self.shared.state().throttle = (n, retry_after_secs);
    }

    /// Every request waits this long before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.state().latency = latency;
    }

    /// The next request with this method on this type (as counted by [`AzureEmulator::calls`])
    /// fails with this status and ARM error. Injections queue up.
    pub fn fail_next(&self, method: &str, type_name: &str, status: u16, code: &str, message: &str) {
        self.shared.state().failures.push(Injected {
            method: method.to_string(),
            type_name: type_name.to_string(),
            error: ArmError::new(status, code, message),
        });
    }

    /// The next long-running operation (create, update or delete) started on this type ends
    /// `Failed` with this error: its status document says so, its `Location` poll answers 400 with
    /// it, and the resource is left `Failed` (a failed delete leaves it in place).
    pub fn fail_next_operation(&self, type_name: &str, code: &str, message: &str) {
        let name = Ty::lookup(type_name).map_or(type_name, |t| t.name).to_string();
        self.shared.state().op_failures.push((name, code.to_string(), message.to_string()));
    }

    /// Finishes every operation in flight now, whatever [`Options::lro_delay`] says.
    pub fn complete_operations(&self) {
        let mut st = self.shared.state();
        let now = Instant::now();
        for op in st.ops.values_mut() {
            op.due = op.due.min(now);
        }
        st.settle(now);
    }
}

impl Drop for AzureEmulator {
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
