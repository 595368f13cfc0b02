//! A Kubernetes API server emulator for integration tests, so that code built on kube-rs can be
//! tested without a cluster.
//!
//! [`KubeEmulator::start`] serves HTTP/1.1 on `127.0.0.1:<free port>` from its own thread and
//! tokio runtime, and stops when dropped. It answers what kube-rs asks of a real API server:
//! `/version`, discovery (`/api`, `/apis`, per group/version, and aggregated discovery v2), GET,
//! LIST (label and field selectors), WATCH, POST, PUT, DELETE (one or a collection), merge patch,
//! and server-side apply with field ownership in `metadata.managedFields`, conflicts and `force`.
//! It validates like a real server: names, labels, built-in kinds by round-tripping through their
//! `k8s-openapi` types, custom resources against their CRD's structural schema
//! ([`validate_against_schema`]). CRDs extend discovery when created and take their custom
//! resources with them when deleted. Controllers are faked: Deployments, DaemonSets, StatefulSets
//! and ReplicaSets become available at once or when the test says so ([`Readiness`]), Jobs
//! complete, LoadBalancer Services get a hostname. A fresh cluster holds what EKS creates
//! ([`Flavor`]). Requests are authenticated with nothing, a bearer token, or EKS IAM tokens
//! ([`Auth`]), and logged ([`KubeEmulator::requests`]).
//!
//! What it deliberately does not do:
//! - Server-side apply merges lists by their list type, items owned one by one, from the CRD's
//!   schema or, for built-in kinds, a table of the lists of object metadata, pod templates and
//!   Services (see `lists`); other built-in lists are atomic here. Strategic merge patch is
//!   treated as a JSON merge patch (lists replaced).
//! - Admission webhooks are not called, only modelled: a write their rules match fails while the
//!   webhook's service has no ready backend ([`WebhookBackends`]) or while a test makes it refuse
//!   (see `admission`); no mutation. No garbage collection by ownerReferences. Finalizers are
//!   honoured (an object with finalizers is marked deleted and stays until they are removed), and
//!   a deleted namespace is `Terminating` until the namespace controller has emptied it
//!   ([`NamespaceTermination`]); but no controller ever removes a finalizer: a test does.
//! - No pods behind workloads, no scheduling, no quota, no immutable-field or cross-field checks,
//!   only a handful of defaults (see `Cluster::defaults`); CRD `pattern`/`format`/CEL rules and
//!   conversion webhooks are ignored (versions share one stored object, only `apiVersion` changes).
//! - No TLS, HTTP/2, protobuf, tables, OpenAPI documents, pagination (`limit` returns everything)
//!   or subresources other than `status`. A namespace gets no `default` ServiceAccount and no
//!   `kube-root-ca.crt`.
//! - An apply of unknown fields fails with 422 whatever `fieldValidation` says (except `Ignore`);
//!   other writes drop them with a `Warning` header (`Warn`, the default) or fail with 400
//!   (`Strict`), as a real server does. A number where a built-in kind wants a quantity string
//!   (`cpu: 1`) is rejected, where a real server would accept it.

mod admission;
mod auth;
mod catalog;
mod cluster;
mod error;
mod fields;
mod lists;
mod schema;
mod seed;
mod selector;
mod server;
mod ssa;
mod validate;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::{oneshot, watch};

use crate::cluster::{Cluster, Op, Write};

pub use crate::schema::validate_against_schema;
pub use crate::seed::{AKS_COREFILE, EKS_COREFILE};

/// How the emulator starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub auth: Auth,
    pub flavor: Flavor,
    pub readiness: Readiness,
    pub webhooks: WebhookBackends,
    pub namespace_termination: NamespaceTermination,
}

/// How long the namespace controller takes to start emptying a deleted namespace (default one
/// second). Until then, and while objects with finalizers remain in it, the namespace is
/// `Terminating`: it still exists, refuses new content, and its conditions say what holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceTermination(pub std::time::Duration);

impl Default for NamespaceTermination {
    fn default() -> Self {
        NamespaceTermination(std::time::Duration::from_secs(1))
    }
}

/// Whether the services behind admission webhooks have ready backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebhookBackends {
    /// Every webhook is served as soon as its configuration exists.
    #[default]
    Up,
    /// None is served until [`KubeEmulator::set_webhook_backend`] says so: a write a webhook with
    /// `failurePolicy: Fail` matches fails with 500, as on a real cluster whose webhook Deployment
    /// is Available before its endpoints and CA are.
    Down,
}

/// How requests are authenticated. A refused request gets 401 with a `Status` saying why.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// Everything is accepted.
    #[default]
    None,
    /// `Authorization: Bearer <token>` with exactly this token.
    Bearer(String),
    /// EKS `k8s-aws-v1.` tokens: base64url (no padding) of an STS presigned `GetCallerIdentity` URL.
    /// The structure, the access key and the time window are checked, and (if the secret is not
    /// empty) the SigV4 signature, assuming the signed header `x-k8s-aws-id` was `cluster`.
    EksToken { cluster: String, access_key_id: String, secret_access_key: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => write!(f, "None"),
            Auth::Bearer(_) => write!(f, "Bearer(<redacted>)"),
            Auth::EksToken { cluster, access_key_id, .. } => f
                .debug_struct("EksToken")
                .field("cluster", cluster)
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .finish(),
        }
    }
}

/// What a fresh cluster holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    /// The namespaces `default`, `kube-system`, `kube-public` and `kube-node-lease`, nothing else.
    Bare,
    /// As `Bare`, plus what EKS puts in `kube-system`: ConfigMap `coredns` ([`EKS_COREFILE`],
    /// owned by manager `eks` through an Update), Deployment `coredns` (2 replicas, ready),
    /// Service `kube-dns`, DaemonSets `aws-node` and `kube-proxy` (ready).
    #[default]
    Eks,
    /// As `Bare`, plus what AKS puts in `kube-system`: ConfigMap `coredns` (AKS's own, reconciled
    /// by its add-on manager) and the empty `coredns-custom` it leaves to the user (both owned by
    /// manager `aks`), Deployment `coredns`, Service `kube-dns`, DaemonSets `azure-cns` and
    /// `kube-proxy` (ready).
    Aks,
    /// As `Bare`, plus what GKE puts in `kube-system`: the empty ConfigMap `kube-dns` its add-on
    /// manager leaves to the user (`EnsureExists`, owned by manager `gke`), Deployment
    /// `kube-dns`, Service `kube-dns`, DaemonSet `calico-node` (GKE's managed Calico; ready).
    Gke,
}

/// When Deployments, DaemonSets, StatefulSets and ReplicaSets become available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Readiness {
    /// After every spec change.
    #[default]
    Immediate,
    /// Only after [`KubeEmulator::set_ready`].
    Manual,
}

/// One request the emulator answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string (`fieldManager=x&force=true`), empty when there is none.
    pub query: String,
    pub field_manager: Option<String>,
    pub content_type: Option<String>,
    /// The HTTP status code answered.
    pub status: u16,
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No free port on 127.0.0.1.
    #[error("binding 127.0.0.1:0")]
    Bind(#[source] std::io::Error),
    /// The runtime for the server thread.
    #[error("building the emulator's tokio runtime")]
    Runtime(#[source] std::io::Error),
    /// The server thread.
    #[error("spawning the emulator's thread")]
    Thread(#[source] std::io::Error),
}

/// A running emulator; stops on drop.
pub struct KubeEmulator {
    shared: Arc<server::Shared>,
    kube_system_uid: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl KubeEmulator {
    /// Starts an emulator; panics if it cannot (see [`KubeEmulator::try_start`]).
    pub fn start(opts: Options) -> KubeEmulator {
        Self::try_start(opts).unwrap_or_else(|e| panic!("kube emulator: {e}: {:?}", std::error::Error::source(&e)))
    }

    /// Starts an emulator. The port is bound before this returns, so the URL works at once.
    pub fn try_start(opts: Options) -> Result<KubeEmulator, StartError> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(StartError::Bind)?;
        listener.set_nonblocking(true).map_err(StartError::Bind)?;
        let addr: SocketAddr = listener.local_addr().map_err(StartError::Bind)?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(StartError::Runtime)?;
        let cluster = Cluster::new(opts.flavor, opts.readiness, opts.webhooks, opts.namespace_termination.0);
        let ns = cluster.resolve("", "v1", "namespaces").expect("built-in");
        let kube_system_uid = cluster
            .get(&ns, None, "kube-system")
            .and_then(|n| n.pointer("/metadata/uid").and_then(Value::as_str).map(String::from))
            .expect("kube-system is seeded");
        let (changed, _) = watch::channel(cluster.resource_version());
        let shared = Arc::new(server::Shared {
            cluster: Mutex::new(cluster),
            requests: Mutex::new(Vec::new()),
            auth: opts.auth,
            authorizer: Mutex::new(None),
            paging: server::Paging::default(),
            changed,
            addr,
        });
        let (tx, rx) = oneshot::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("kube-emulator-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a bound non-blocking listener");
                    server::serve(listener, thread_shared, rx).await;
                });
            })
            .map_err(StartError::Thread)?;
        Ok(KubeEmulator { shared, kube_system_uid, shutdown: Some(tx), thread: Some(thread) })
    }

    /// From now on an authenticated request gets 403 with `why` while `allowed()` is false, as
    /// from an authorizer that does not know the caller yet (Azure RBAC for Kubernetes before the
    /// caller's role assignment reaches the cluster). Authentication is still [`Options::auth`].
    pub fn authorize_when(&self, allowed: impl Fn() -> bool + Send + Sync + 'static, why: &str) {
        *self.shared.authorizer.lock().unwrap_or_else(|e| e.into_inner()) = Some((Arc::new(allowed), why.to_string()));
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The `kube-system` namespace's uid: different for every emulator (a "new cluster").
    pub fn kube_system_uid(&self) -> String {
        self.kube_system_uid.clone()
    }

    fn resource(&self, api_version: &str, kind: &str) -> Option<catalog::ResourceType> {
        self.shared.cluster().resolve_kind(api_version, kind)
    }

    fn resource_or_panic(&self, api_version: &str, kind: &str) -> catalog::ResourceType {
        self.resource(api_version, kind).unwrap_or_else(|| panic!("the emulator serves no {kind} in {api_version}"))
    }

    /// The stored object, as a GET would return it; None if the kind is not served or the
    /// object does not exist.
    pub fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let rt = self.resource(api_version, kind)?;
        self.shared.cluster().get(&rt, namespace, name)
    }

    /// From now on a page of a list holds at most `most` objects, whatever `limit` the client
    /// asks for (a server may return fewer than asked), so that small tests page too. Lists
    /// without `limit` stay whole. 0 lifts the cap.
    pub fn cap_pages(&self, most: usize) {
        self.shared.paging.cap.store(most, std::sync::atomic::Ordering::Relaxed);
    }

    /// From now on the store compacts after every `pages` pages of lists it serves (0: never),
    /// as a real server's does every few minutes: continue tokens given out before then are
    /// answered 410 Expired. Counted in pages rather than minutes, so that a test knows where a
    /// paged list breaks.
    pub fn compact_every_pages(&self, pages: usize) {
        self.shared.paging.compact_every.store(pages, std::sync::atomic::Ordering::Relaxed);
        self.shared.paging.served.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Compacts the store now: list snapshots and watch starts before this moment are gone
    /// (410), as after a real server's periodic compaction.
    pub fn compact(&self) {
        self.shared.cluster().compact();
    }

    /// Every object of a kind, in all namespaces (namespace/name order); empty if not served.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        match self.resource(api_version, kind) {
            Some(rt) => self.shared.cluster().list(&rt, None),
            None => Vec::new(),
        }
    }

    /// Makes a Deployment, DaemonSet, StatefulSet, ReplicaSet (or Job: `false` keeps it running)
    /// ready or not, as its controller would report it. The setting sticks: it also applies to an
    /// object created later under that name.
    pub fn set_ready(&self, api_version_kind: (&str, &str), namespace: &str, name: &str, ready: bool) {
        let (api_version, kind) = api_version_kind;
        let rt = self.resource_or_panic(api_version, kind);
        self.shared.mutate(|c| c.set_ready(&rt, namespace, name, ready));
    }

    /// Brings the backend of the webhook service `namespace/service` up or down.
    pub fn set_webhook_backend(&self, namespace: &str, service: &str, up: bool) {
        self.shared.mutate(|c| {
            c.admission.backends.insert((namespace.to_string(), service.to_string()), up);
        });
    }

    /// Makes the admission webhook `name` (`webhooks[].name`) refuse every request it sees with
    /// `message` (`None`: accept again).
    pub fn refuse_admission(&self, name: &str, message: Option<&str>) {
        self.shared.mutate(|c| match message {
            Some(m) => {
                c.admission.refusals.insert(name.to_string(), m.to_string());
            }
            None => {
                c.admission.refusals.remove(name);
            }
        });
    }

    /// Simulates `kubectl edit` / a controller: an Update (not Apply) by `manager`, which takes
    /// ownership of the fields `f` changes. Status changes are kept (no controller runs unless the
    /// spec changed); server-set metadata (uid, resourceVersion, managedFields, ...) is not
    /// editable. Panics if the object does not exist or the result is invalid.
    pub fn update_as(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) {
        let rt = self.resource_or_panic(api_version, kind);
        // `f` runs outside the lock, so it may call back into the emulator.
        let mut edited = self
            .shared
            .cluster()
            .get(&rt, namespace, name)
            .unwrap_or_else(|| panic!("update_as: no {kind} {name} in {namespace:?}"));
        f(&mut edited);
        let w = Write::new(Op::Mutate(Box::new(move |o| *o = edited)), manager);
        if let Err(e) = self.shared.mutate(|c| c.write(&rt, namespace, name, w)) {
            panic!("update_as {kind} {name}: {e}");
        }
    }

    /// Creates an object as an Update by `manager` (like `kubectl create`), for setting up what a
    /// test expects to find. Returns the stored object. Panics if it is refused.
    pub fn create_as(&self, manager: &str, obj: Value) -> Value {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let rt = self.resource_or_panic(&api_version, &kind);
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| rt.namespaced.then(|| "default".to_string()));
        let w = Write::new(Op::Create(obj), manager);
        match self.shared.mutate(|c| c.write(&rt, ns.as_deref(), &name, w)) {
            Ok(out) => out.obj,
            Err(e) => panic!("create_as {kind} {name}: {e}"),
        }
    }

    /// Deletes an object out of band (with the same cascades as the API). False if it did not
    /// exist; panics if the API would refuse (`default`/`kube-system`/`kube-public`).
    pub fn delete(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        let rt = self.resource_or_panic(api_version, kind);
        match self.shared.mutate(|c| c.delete(&rt, namespace, name, false, &Value::Null)) {
            Ok(_) => true,
            Err(e) if e.code == 404 => false,
            Err(e) => panic!("delete {kind} {name}: {e}"),
        }
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Drop for KubeEmulator {
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
