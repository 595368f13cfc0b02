//! The Kubernetes provider: add-on instances (`k8s.addon.*`) as engine resources.
//!
//! Apply renders an instance from its parameters, server-side applies its objects — CRDs first
//! and waited until Established, namespaces before their contents, then everything else — prunes
//! objects its previous apply made that are no longer wanted, and waits until its workloads are
//! ready. Each instance records an inventory of what it applied (state) and the identity of the
//! cluster it applied to; refresh finds instances of a replaced cluster gone, so the plan
//! bootstraps the new cluster from scratch. It never reads a kubeconfig.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt as _, TryStreamExt as _};
use matih_plans::wait::{WaitPolicy, wait_until};
use matih_plans::*;
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::addons::{self, Params, Row};
use crate::cluster::{ApiOverride, ClusterAccess, Connector, Endpoint, other};
use crate::kubeapi::{ADDON_LABEL, Applied, ObjectSeen, Session, has_readiness, readiness};
use crate::manifests::ManifestFile as Upstream;
use crate::manifests::Source;
use matih_provider_kit::{Recorder, RetryPolicy};

/// The resource type of every add-on instance.
pub fn addon_type() -> ResourceType {
    ResourceType::new("k8s", "addon").expect("static type name")
}

/// How many LISTs one refresh has in flight at once.
const LIST_CONCURRENCY: usize = 8;

/// Up to this many add-on instances are read with a label selector naming them; more, with one
/// that matches every instance's objects.
const FEW_INSTANCES: usize = 16;

/// Caps every readiness deadline (e.g. `30s`): for tests and impatient operators.
pub const WAIT_TIMEOUT_ENV: &str = "MATIH_ADDON_WAIT_TIMEOUT";

pub struct KubernetesProvider {
    connector: Connector,
    source: Source,
    calls: Recorder,
    retry: RetryPolicy,
    wait_cap: Option<Duration>,
    /// Discovery per cluster, shared by the add-ons applied to it in this run.
    discovered: std::sync::Mutex<HashMap<Endpoint, crate::kubeapi::Discovered>>,
    /// Each cluster's UID once it has admitted this principal: asked once per run, not per
    /// add-on (the add-ons applied at once wait for the first to find out).
    identities: std::sync::Mutex<HashMap<Endpoint, Arc<tokio::sync::OnceCell<String>>>>,
}

/// A setting of the provider that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// `MATIH_ADDON_WAIT_TIMEOUT` is not a duration.
    #[error("{WAIT_TIMEOUT_ENV}={value:?} is not a duration (e.g. 30s, 5m)")]
    WaitTimeout {
        value: String,
        #[source]
        source: humantime::DurationError,
    },
}

impl KubernetesProvider {
    pub fn new(
        access: Arc<dyn ClusterAccess>,
        api_override: Option<ApiOverride>,
        source: Source,
    ) -> Result<Self, SettingError> {
        let wait_cap = match std::env::var(WAIT_TIMEOUT_ENV).ok().filter(|s| !s.is_empty()) {
            Some(s) => Some(
                humantime::parse_duration(&s)
                    .map_err(|source| SettingError::WaitTimeout { value: s.clone(), source })?,
            ),
            None => None,
        };
        Ok(KubernetesProvider {
            connector: Connector::new(access, api_override),
            source,
            calls: Recorder::default(),
            retry: RetryPolicy::default(),
            wait_cap,
            discovered: Default::default(),
            identities: Default::default(),
        })
    }

    fn policy(&self, row: &Row) -> WaitPolicy {
        let d = self.wait_cap.map_or(row.wait, |c| c.min(row.wait));
        WaitPolicy { deadline: d, first_delay: Duration::from_millis(100), max_delay: Duration::from_secs(5) }
    }

    /// A session whose caller the cluster admits, and the cluster's UID. A refusal (403) is
    /// waited through while a grant may still be on its way to the cluster's authorizer
    /// ([`ClusterAccess::grant_delay`]; never longer than the add-on's deadline), then reported
    /// with the cloud's hint.
    async fn admitted(
        &self,
        ep: &Endpoint,
        policy: Option<WaitPolicy>,
        status: &StatusSink,
    ) -> Result<(Session<'_>, String), ProviderError> {
        let cell = self.identities.lock().unwrap().entry(ep.clone()).or_default().clone();
        let uid = cell.get_or_try_init(|| async { self.admit(ep, policy, status).await.map(|(_, uid)| uid) }).await?;
        Ok((self.session(ep).await?, uid.clone()))
    }

    /// [`admitted`](Self::admitted), asking the cluster.
    async fn admit(
        &self,
        ep: &Endpoint,
        policy: Option<WaitPolicy>,
        status: &StatusSink,
    ) -> Result<(Session<'_>, String), ProviderError> {
        use matih_plans::wait::WaitStep;
        let s = self.session(ep).await?;
        let access = self.connector.access();
        let deadline = policy.map_or(Duration::ZERO, |p| access.grant_delay().min(p.deadline));
        let denied = |e: &ProviderError| e.kind() == ErrorKind::Denied;
        let uid = if deadline.is_zero() {
            s.cluster_uid().await
        } else {
            let what = format!("cluster {} to admit this principal", ep.cluster);
            let policy =
                WaitPolicy { deadline, first_delay: Duration::from_secs(1), max_delay: Duration::from_secs(15) };
            let waited = wait_until(
                &what,
                policy,
                |st| status.say(st),
                || async {
                    match s.cluster_uid().await {
                        Ok(uid) => Ok(WaitStep::Done(uid)),
                        Err(e) if denied(&e) => Ok(WaitStep::Pending(
                            "refused (403): the role assignment may not have reached the cluster yet".into(),
                        )),
                        Err(e) => Err(e),
                    }
                },
            )
            .await?;
            match waited {
                Ok(uid) => Ok(uid),
                // The last refusal, with the hint below.
                Err(_) => s.cluster_uid().await,
            }
        };
        match uid {
            Ok(uid) => Ok((s, uid)),
            Err(e) if denied(&e) => match access.denied_hint() {
                Some(hint) => {
                    Err(ProviderError::other(format!("cluster {} refuses this principal: {e}; {hint}", ep.cluster)))
                }
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    async fn session(&self, ep: &Endpoint) -> Result<Session<'_>, ProviderError> {
        let groups = self.discovered.lock().unwrap().entry(ep.clone()).or_default().clone();
        Ok(Session::new(self.connector.client(ep).await?, &self.calls, self.retry, groups))
    }

    /// Waits until `a` is ready (`gone`: deleted), saying how it looks on `status`.
    async fn wait_for(
        &self,
        s: &Session<'_>,
        a: &Applied,
        gone: bool,
        policy: WaitPolicy,
        status: &StatusSink,
    ) -> Result<(), ProviderError> {
        use matih_plans::wait::WaitStep;
        let (what, verb) = if gone { ("deleted", "deleting") } else { ("ready", "waiting for") };
        let r = wait_until(
            &format!("{} to be {what}", a.display()),
            policy,
            |st| status.say(&format!("{verb} {}: {st}", a.display())),
            || async {
                Ok::<_, ProviderError>(match (s.get(a).await?, gone) {
                    (None, true) => WaitStep::Done(()),
                    (None, false) => WaitStep::Pending("not found".into()),
                    (Some(live), false) => readiness(&a.kind, &live),
                    (Some(live), true) => WaitStep::Pending(terminating(&live)),
                })
            },
        )
        .await?;
        r.map_err(ProviderError::from)
    }

    /// Server-side applies `o`, and while the API server answers with a server error — above all
    /// an admission webhook that is not serving yet (its Deployment can be Available before its
    /// endpoints and CA are) — applies it again with back-off until the add-on's deadline, saying
    /// what it waits for. A refusal (a webhook that answers no, an invalid object) is final.
    async fn apply_until_accepted(
        &self,
        s: &Session<'_>,
        o: &Json,
        entry: &str,
        adopted: bool,
        policy: WaitPolicy,
        status: &StatusSink,
    ) -> Result<(Applied, Json), ProviderError> {
        use matih_plans::wait::WaitStep;
        let what = format!("the API server to accept {}", object_key(o));
        let r = wait_until(
            &what,
            policy,
            |st| status.say(st),
            || async {
                match s.apply(o, entry, adopted).await {
                    Ok(done) => Ok(WaitStep::Done(done)),
                    Err(e) if e.kind().transient() => Ok(WaitStep::Pending(format!(
                        "waiting for the API server to accept {}: {}",
                        object_key(o),
                        e.api().map_or_else(|| e.to_string(), |a| a.message.clone())
                    ))),
                    Err(e) => Err(e),
                }
            },
        )
        .await?;
        r.map_err(ProviderError::from)
    }

    /// The cluster an instance was applied to, if it still exists as the same cluster.
    async fn same_cluster(&self, attrs: &Attrs) -> Result<Option<Endpoint>, ProviderError> {
        let conn = endpoint(attrs);
        let Some(info) = self.connector.access().describe(&conn.cluster).await? else {
            return Ok(None);
        };
        if attrs.get("cluster") != Some(&info.identity) {
            return Ok(None);
        }
        Ok(Some(Endpoint { cluster: conn.cluster, url: info.endpoint, ca_data: info.ca_data }))
    }
}

async fn upstream(
    source: &Source,
    row: &Row,
    p: &Params,
    file: Upstream,
    status: &StatusSink,
) -> Result<Vec<Json>, ProviderError> {
    let version = p.version.as_deref().ok_or_else(|| other(format!("add-on {}: no version", row.name)))?;
    // The failure reaches the user inside the apply report, so its fix travels in the message.
    let manifest_error = |e: crate::manifests::ManifestError| {
        let mut message = format!("add-on {}: its manifest could not be loaded", row.name);
        if let Some(h) = e.hint() {
            message.push_str(&format!(" (hint: {h})"));
        }
        ProviderError::Other { message, source: Some(Arc::new(e)) }
    };
    let req = addons::manifest_request(file, version).map_err(manifest_error)?;
    let m = crate::manifests::load(source, &req).await.map_err(manifest_error)?;
    if let Some(note) = m.unverified_note() {
        status.say(&note);
    }
    addons::patch_upstream(row, p, file, m.objects).map_err(|e| other(e.to_string()))
}

/// One object of an add-on instance, ready to apply.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub object: Json,
    /// Its key in the instance's `objects` attribute.
    pub entry: String,
    /// The cloud made it (it lives in `kube-system`): the tool manages fields of it, never deletes it.
    pub adopted: bool,
}

/// Every object of an add-on instance in apply order (CRDs, namespaces, then the rest as given),
/// labelled with the instance, from its configuration (`params`) and its upstream manifests.
pub async fn render(
    source: &Source,
    addr: &ResourceAddr,
    config: &Attrs,
    status: &StatusSink,
) -> Result<Vec<Rendered>, ProviderError> {
    let row = row_of(addr)?;
    let params: Params = serde_json::from_value(config.get("params").cloned().unwrap_or(Json::Null))
        .map_err(|e| ProviderError::Config { addr: addr.clone(), message: format!("params: {e}") })?;
    let cloud = addons::cloud_kind(params.cloud.as_deref().unwrap_or_default())
        .ok_or_else(|| ProviderError::Config { addr: addr.clone(), message: "params.cloud missing".into() })?;
    let key = key_of(addr);
    let label = instance_label(addr);
    let listed = config.get("objects").and_then(Json::as_object);
    let mut out = Vec::new();
    for file in addons::upstream_files(row, cloud) {
        let bundle = addons::manifest_entry(*file, params.version.as_deref().unwrap_or_default());
        for o in upstream(source, row, &params, *file, status).await? {
            // Its own entry when the plan listed the release's objects, else the release's.
            let own = object_key(&o);
            let entry = if listed.is_some_and(|l| l.contains_key(&own)) { own } else { bundle.clone() };
            out.push((o, entry));
        }
    }
    for o in addons::typed_objects(row, key.as_deref(), &params).map_err(|e| other(e.to_string()))? {
        let entry = object_key(&o);
        out.push((o, entry));
    }
    out.sort_by_key(|(o, _)| match o["kind"].as_str() {
        Some("CustomResourceDefinition") => 0,
        Some("Namespace") => 1,
        _ => 2,
    });
    Ok(out
        .into_iter()
        .map(|(mut o, entry)| {
            let adopted = o["metadata"]["namespace"] == "kube-system";
            let meta = o["metadata"].as_object_mut().expect("object metadata");
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            labels[ADDON_LABEL] = Json::String(label.clone());
            Rendered { object: o, entry, adopted }
        })
        .collect())
}

fn row_of(addr: &ResourceAddr) -> Result<&'static Row, ProviderError> {
    addons::row(&addr.name).ok_or_else(|| ProviderError::Config {
        addr: addr.clone(),
        message: "not an add-on of the add-on table".into(),
    })
}

/// `tenant.acme`, `calico`: the value of the add-on label on an instance's objects.
pub fn instance_label(addr: &ResourceAddr) -> String {
    match key_of(addr) {
        Some(k) => format!("{}.{k}", addr.name),
        None => addr.name.clone(),
    }
}

/// The tenant of a per-tenant instance.
fn key_of(addr: &ResourceAddr) -> Option<String> {
    match &addr.key {
        Some(InstanceKey::Str(s)) => Some(s.clone()),
        Some(InstanceKey::Int(i)) => Some(i.to_string()),
        None => None,
    }
}

/// `Kind/namespace/name` or `Kind/name`: an object's entry in an instance's `objects`.
pub fn object_key(o: &Json) -> String {
    key(
        o["kind"].as_str().unwrap_or("?"),
        o["metadata"]["namespace"].as_str(),
        o["metadata"]["name"].as_str().unwrap_or("?"),
    )
}

/// `Kind/namespace/name`, or `Kind/name` for a cluster-scoped object: an object's key among an
/// add-on's `objects`.
pub fn key(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

fn endpoint(attrs: &Attrs) -> Endpoint {
    let c = attrs.get("connection");
    let s = |k: &str| c.and_then(|c| c.get(k)).and_then(Json::as_str).unwrap_or_default().to_string();
    Endpoint { cluster: s("name"), url: s("endpoint"), ca_data: s("ca_data") }
}

/// The `connection` attribute recording `ep`.
fn connection(ep: &Endpoint) -> Json {
    json!({"name": ep.cluster, "endpoint": ep.url, "ca_data": ep.ca_data})
}

/// Whether `attrs` record exactly `ep` as their connection (without building it: at 10,000
/// tenants a refresh asks this of 11,000 instances).
fn connected_at(attrs: &Attrs, ep: &Endpoint) -> bool {
    let Some(c) = attrs.get("connection").and_then(Json::as_object) else { return false };
    let is = |k: &str, v: &str| c.get(k).and_then(Json::as_str) == Some(v);
    c.len() == 3 && is("name", &ep.cluster) && is("endpoint", &ep.url) && is("ca_data", &ep.ca_data)
}

fn inventory(attrs: &Attrs) -> Vec<Applied> {
    attrs.get("inventory").and_then(crate::kubeapi::inventory_from_json).unwrap_or_default()
}

fn same_object(a: &Applied, b: &Applied) -> bool {
    a.api_version == b.api_version && a.kind == b.kind && a.namespace == b.namespace && a.name == b.name
}

impl KubernetesProvider {
    /// An add-on's objects, one part each (`NetworkPolicy matih-data-plane/allow-to-kafka-tls`):
    /// the tool's own first, then each upstream release's, grouped under it with its pinned
    /// digest. State keeps only digests of the tool's own objects: an update's changed fields
    /// come from rendering both sides' `params` (or from the object as a refresh found it). An
    /// upstream object that a new release leaves as it was is no change; one the release changed,
    /// or someone changed by hand, says so.
    pub fn parts_of(addr: &ResourceAddr, before: Option<&Attrs>, after: Option<&Attrs>) -> Vec<PartChange> {
        let objects = |a: Option<&Attrs>| a.and_then(|a| a.get("objects")).cloned();
        let (b_objs, a_objs) = (objects(before), objects(after));
        let entry = |m: &Option<Json>, k: &str| m.as_ref().and_then(|m| m.get(k)).cloned();
        let (mut b_render, mut a_render) = (None, None);
        let mut out = Vec::new();
        for mut p in matih_plans::diff::map_parts(b_objs.as_ref(), a_objs.as_ref()) {
            let key = p.name.clone();
            let (b, a) = (entry(&b_objs, &key), entry(&a_objs, &key));
            let v = a.clone().or_else(|| b.clone()).unwrap_or_default();
            p.name = key.replacen('/', " ", 1);
            let drift = |x: &Option<Json>| x.as_ref().and_then(|x| x.get("drift")?.as_str()).map(String::from);
            if v.get("bundle").is_none()
                && let Some(d) = drift(&a).or_else(|| drift(&b))
            {
                // An object of the tool's own seen changed where its params could not be rendered.
                p.note = Some(d);
                p.fields.clear();
            } else if let Some(bundle) = v["bundle"].as_str() {
                let sha256 = v["sha256"].as_str().unwrap_or_default();
                if v.get("digest").is_none() {
                    // A release that is not listed: one part for all its objects.
                    p.name = bundle.to_string();
                    p.note = Some(format!("{sha256}; its objects are known once it is fetched"));
                } else {
                    p.source = Some(format!("{bundle} {sha256}"));
                }
                if p.action == Action::Update {
                    let digest = |x: &Option<Json>| x.as_ref().map(|x| x["digest"].clone());
                    match (drift(&b), drift(&a)) {
                        (_, Some(d)) | (Some(d), None) => p.note = Some(d),
                        (None, None) if digest(&b) == digest(&a) => continue,
                        (None, None) => p.note = Some(format!("changed in {bundle}")),
                    }
                    p.fields.clear();
                }
            } else if p.action == Action::Update {
                // The object as found (drift) or as the params render it.
                let content = |found: Option<Json>,
                               rendered: &mut Option<Option<serde_json::Map<String, Json>>>,
                               attrs: Option<&Attrs>| {
                    found.filter(Json::is_object).or_else(|| {
                        rendered
                            .get_or_insert_with(|| attrs.and_then(|a| rendered_objects(addr, a)))
                            .as_ref()?
                            .get(&key)
                            .cloned()
                    })
                };
                let before_obj = content(b, &mut b_render, before);
                let after_obj = content(a, &mut a_render, after);
                p.fields = Vec::new();
                if let (Some(x), Some(y)) = (before_obj, after_obj) {
                    p.fields = matih_plans::diff::diff_json(&x, &y);
                    if p.fields.is_empty() {
                        // Same content, other digest: this version renders it another way.
                        p.note = Some("written differently by this version of matih-infra".into());
                    }
                }
            }
            out.push(p);
        }
        out.sort_by(|x, y| (x.source.is_some(), &x.source).cmp(&(y.source.is_some(), &y.source)));
        out
    }
}

/// The objects the tool writes itself for the instance at `addr`, rendered from `attrs`'
/// `params`, by key; `None` when they cannot be rendered (an instance of another version).
fn rendered_objects(addr: &ResourceAddr, attrs: &Attrs) -> Option<serde_json::Map<String, Json>> {
    let row = addons::row(&addr.name)?;
    let params: Params = serde_json::from_value(attrs.get("params")?.clone()).ok()?;
    let objects = addons::typed_objects(row, key_of(addr).as_deref(), &params).ok()?;
    Some(objects.into_iter().map(|o| (object_key(&o), o)).collect())
}

/// Version 0 recorded each upstream file as one entry `<add-on>/<version>/<file>` → `sha256:…`:
/// a listed release becomes its objects, with the inventory's entries moved along.
fn upgrade_objects_from_digests(attrs: &mut Attrs) {
    let Some(old) = attrs.get("objects").and_then(Json::as_object).cloned() else { return };
    let mut objects = serde_json::Map::new();
    for (key, v) in old {
        let Some(recorded) = v.as_str() else {
            objects.insert(key, v);
            continue;
        };
        let file = key.split_once('/').and_then(|(addon, rest)| {
            let (version, name) = rest.split_once('/')?;
            let f = Upstream::ALL.into_iter().find(|f| f.addon() == addon && f.file_name() == name)?;
            Some((f, version.to_string()))
        });
        match file {
            Some((f, version)) if recorded.starts_with("sha256:") || recorded.starts_with("unpinned") => {
                let bundle = format!("{} {version} {}", f.addon(), f.file_name());
                let sha256 = addons::pinned_digest(f, &version)
                    .map(|d| format!("sha256:{d}"))
                    .unwrap_or_else(|| "not pinned".to_string());
                match crate::bundles::objects(f, &version) {
                    Some(listed) => {
                        for o in listed {
                            objects.insert(o.key(), json!({"bundle": bundle, "sha256": sha256, "digest": o.digest}));
                        }
                    }
                    None => {
                        objects.insert(key, json!({"bundle": bundle, "sha256": sha256}));
                    }
                }
            }
            _ => {
                objects.insert(key, v);
            }
        }
    }
    if let Some(inventory) = attrs.get_mut("inventory").and_then(Json::as_array_mut) {
        for a in inventory.iter_mut() {
            if let Ok(applied) = serde_json::from_value::<Applied>(a.clone())
                && applied.entry != applied.key()
                && objects.contains_key(&applied.key())
            {
                a["entry"] = Json::String(applied.key());
            }
        }
    }
    attrs.insert("objects".into(), Json::Object(objects));
}

/// Version 1 recorded the inventory as one JSON object per applied object; version 2 as runs of
/// compact lines (see [`crate::kubeapi::inventory_to_json`]), a third of the size.
fn upgrade_inventory_to_runs(attrs: &mut Attrs) {
    if let Some(old) = attrs.get("inventory")
        && let Ok(list) = serde_json::from_value::<Vec<Applied>>(old.clone())
    {
        attrs.insert("inventory".into(), crate::kubeapi::inventory_to_json(&list));
    }
}

/// Summaries of listed objects: by (API version, plural), then by (namespace, name).
type Listed = HashMap<(String, String), HashMap<(Option<String>, String), ObjectSeen>>;

/// The listed summary of the object `a`, if the lists hold it.
fn listed_of<'l>(lists: &'l Listed, a: &Applied) -> Option<Live<'l>> {
    lists
        .get(&(a.api_version.clone(), a.plural.clone()))
        .and_then(|m| m.get(&(a.namespace.clone(), a.name.clone())))
        .map(Live::Listed)
}

/// An object as a refresh found it: fetched whole, or as a metadata list showed it.
#[derive(Clone, Copy)]
enum Live<'a> {
    Whole(&'a Json),
    Listed(&'a ObjectSeen),
}

impl Live<'_> {
    fn deletion_timestamp(&self) -> Option<&str> {
        match self {
            Live::Whole(o) => o["metadata"]["deletionTimestamp"].as_str(),
            Live::Listed(l) => l.deletion_timestamp.as_deref(),
        }
    }

    fn owned(&self) -> Cow<'_, str> {
        match self {
            Live::Whole(o) => Cow::Owned(crate::kubeapi::owned_of(o)),
            Live::Listed(l) => Cow::Borrowed(&l.owned),
        }
    }
}

/// What a refresh read from one cluster for the add-on instances recorded on it.
struct Observed {
    /// The inventory of each instance applied to this cluster (by its recorded name and the UID
    /// of its `kube-system`).
    inventories: HashMap<ResourceAddr, Vec<Applied>>,
    /// Each resource's labelled objects, as their lists showed them.
    lists: Listed,
    /// The tool's own objects that the summaries show changed, whole (`None`: gone meanwhile).
    whole: HashMap<ObjectKey, Option<Json>>,
}

impl KubernetesProvider {
    /// Reads, from the cluster at `ep`, the objects of the instances in `items` applied to it.
    async fn observe(&self, ep: &Endpoint, items: &[ReadItem]) -> Result<Observed, ProviderError> {
        let (s, uid) = self.admitted(ep, None, &StatusSink::default()).await?;
        let cluster = items[0].attrs.get("cluster");
        let inventories: HashMap<ResourceAddr, Vec<Applied>> = items
            .iter()
            .filter(|i| i.attrs.get("cluster") == cluster)
            .filter(|i| i.attrs.get("cluster_uid").and_then(Json::as_str) == Some(uid.as_str()))
            .map(|i| (i.addr.clone(), inventory(&i.attrs)))
            .collect();
        // One labelled LIST per resource type across every instance, a few at a time.
        let mut kinds: BTreeMap<(String, String), Applied> = BTreeMap::new();
        for a in inventories.values().flatten() {
            kinds.entry((a.api_version.clone(), a.plural.clone())).or_insert_with(|| a.clone());
        }
        // A few instances (a per-resource refresh reads one at a time): only theirs, so that
        // reading each of a thousand tenants does not list every tenant's objects.
        let only: Option<Vec<String>> =
            (inventories.len() <= FEW_INSTANCES).then(|| inventories.keys().map(instance_label).collect());
        let (s, only) = (&s, only.as_deref());
        let lists: Listed = futures::stream::iter(
            kinds.into_iter().map(|(k, a)| async move { s.list_labelled(&a, only).await.map(|m| (k, m)) }),
        )
        .buffer_unordered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
        // The lists carry metadata only, which tells an object left as the tool applied it.
        // The tool's own objects that were changed are fetched whole, to show how.
        let mut changed: BTreeMap<ObjectKey, Applied> = BTreeMap::new();
        for a in inventories.values().flatten() {
            if a.entry == a.key()
                && let Some(meta) = listed_of(&lists, a)
                && !as_applied(a, meta)
            {
                changed.insert(object_key_of(a), a.clone());
            }
        }
        let whole: HashMap<ObjectKey, Option<Json>> =
            futures::stream::iter(changed.into_iter().map(|(k, a)| async move { s.get(&a).await.map(|o| (k, o)) }))
                .buffer_unordered(LIST_CONCURRENCY)
                .try_collect()
                .await?;
        Ok(Observed { inventories, lists, whole })
    }
}

/// An object's identity: API version, plural, namespace, name.
type ObjectKey = (String, String, Option<String>, String);

fn object_key_of(a: &Applied) -> ObjectKey {
    (a.api_version.clone(), a.plural.clone(), a.namespace.clone(), a.name.clone())
}

/// Whether `live` (its metadata is enough) shows the object as the tool applied it: not being
/// deleted, and the fields the tool owns as it owned them.
fn as_applied(a: &Applied, live: Live<'_>) -> bool {
    live.deletion_timestamp().is_none() && live.owned() == a.owned
}

/// Records in an add-on's `objects` how one object it applied is found now, so that drift and
/// the next plan show what changed: a missing object is gone from the map; an object of the
/// tool's own that someone changed (a field the tool owns, or it is being deleted) is recorded as
/// found, in the shape the tool wrote it (see [`project`]; `recorded` renders what it wrote);
/// an upstream object gets a note. Another manager's additions (a field or list item the tool
/// never owned) are not changes. The map is copied on its first change only.
fn seen_as(
    objects: &mut Cow<'_, serde_json::Map<String, Json>>,
    a: &Applied,
    live: Option<Live<'_>>,
    recorded: impl FnOnce() -> Option<serde_json::Map<String, Json>>,
) {
    let own_entry = a.entry == a.key();
    let note = |objects: &mut serde_json::Map<String, Json>, what: String| {
        let entry = objects.entry(a.entry.clone()).or_insert(Json::Null);
        if !entry.is_object() {
            *entry = json!({});
        }
        let v = entry.as_object_mut().expect("made an object above");
        let text = match v.get("drift").and_then(Json::as_str) {
            Some(prev) => format!("{prev}; {what}"),
            None => what,
        };
        v.insert("drift".into(), Json::String(text));
    };
    let Some(live) = live else {
        if own_entry {
            if objects.contains_key(&a.entry) {
                objects.to_mut().remove(&a.entry);
            }
        } else {
            note(objects.to_mut(), format!("missing: {}", a.display()));
        }
        return;
    };
    if as_applied(a, live) {
        return;
    }
    let since = live.deletion_timestamp();
    // An own object whose listing showed it changed was fetched whole (`observe`), and is shown
    // field by field; anything else is noted.
    let recorded = match live {
        Live::Whole(whole) if own_entry => recorded().and_then(|mut r| r.remove(&a.entry)).map(|r| (r, whole)),
        _ => None,
    };
    match recorded {
        Some((r, whole)) => {
            let mut found = project(&r, whole);
            if let Some(t) = since {
                found["metadata"]["deletionTimestamp"] = Json::String(t.to_string());
            }
            objects.to_mut().insert(a.entry.clone(), found);
        }
        _ => {
            let what = match since {
                Some(t) => format!("being deleted since {t}"),
                None => "changed outside matih-infra".to_string(),
            };
            note(objects.to_mut(), if own_entry { what } else { format!("{what}: {}", a.display()) });
        }
    }
}

/// `live` in the shape of `recorded`: its values at the paths `recorded` has (a key missing in
/// `live` is left out; lists item by item, as long as `recorded`'s), so that a diff shows only
/// what changed in the fields the tool writes. Values only the cloud knew at plan time
/// (placeholders) stay as recorded.
fn project(recorded: &Json, live: &Json) -> Json {
    match (recorded, live) {
        (Json::String(s), _) if s.contains("${") => recorded.clone(),
        (Json::Object(r), Json::Object(l)) => {
            Json::Object(r.iter().filter_map(|(k, rv)| l.get(k).map(|lv| (k.clone(), project(rv, lv)))).collect())
        }
        (Json::Array(r), Json::Array(l)) => Json::Array(r.iter().zip(l).map(|(rv, lv)| project(rv, lv)).collect()),
        (_, l) => l.clone(),
    }
}

/// What keeps a deleted object: for a namespace, what its conditions say remains in it (the
/// namespace controller's words: which resources, which finalizers), else its own finalizers.
fn terminating(live: &Json) -> String {
    let Some(since) = live["metadata"]["deletionTimestamp"].as_str() else {
        return "still there".into();
    };
    let finalizers: Vec<&str> = live["metadata"]["finalizers"]
        .as_array()
        .map(|f| f.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let holding: Vec<&str> = live["status"]["conditions"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["status"] == "True" && c["type"].as_str().is_some_and(|t| t.starts_with("Namespace")))
                .filter_map(|c| c["message"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut s = format!("terminating since {since}");
    if !holding.is_empty() {
        s.push_str(&format!(": {}", holding.join("; ")));
    } else if !finalizers.is_empty() {
        s.push_str(&format!(", held by its finalizers {}", finalizers.join(", ")));
    }
    if !holding.is_empty() || !finalizers.is_empty() {
        s.push_str(
            " (a finalizer is removed by the controller that set it; if that controller is gone, remove it by hand)",
        );
    }
    s
}

/// Deletion order: namespaced objects, then cluster-scoped ones, then namespaces, CRDs last.
fn delete_rank(a: &Applied) -> u8 {
    match a.kind.as_str() {
        "CustomResourceDefinition" => 3,
        "Namespace" => 2,
        _ if a.namespaced => 0,
        _ => 1,
    }
}

#[async_trait]
impl Provider for KubernetesProvider {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn schemas(&self) -> Vec<TypeSchema> {
        vec![
            matih_provider_kit::schema("k8s", "addon")
                // A different cluster (replaced: new ARN or creation time) means a full re-bootstrap.
                .force_new(&["cluster"])
                .updatable(&["connection", "params", "objects"])
                .computed(&["cluster_uid", "inventory"])
                .parts("objects")
                // 1: `objects` holds the tool's own objects as written and upstream objects one
                // by one (0: digests, and one entry per upstream file).
                // 2: `inventory` is runs of compact lines (1: one object per applied object).
                .version(2)
                .build(),
        ]
    }

    fn upgrade(&self, req: UpgradeRequest<'_>) -> Result<Attrs, ProviderError> {
        let mut attrs = req.attrs;
        if req.from < 1 {
            upgrade_objects_from_digests(&mut attrs);
        }
        if req.from < 2 {
            upgrade_inventory_to_runs(&mut attrs);
        }
        Ok(attrs)
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        let mut found = BTreeMap::new();
        let mut by_cluster: BTreeMap<String, Vec<ReadItem>> = BTreeMap::new();
        for item in req.items {
            by_cluster.entry(endpoint(&item.attrs).cluster).or_default().push(item);
        }
        for items in by_cluster.into_values() {
            // The cloud's word on the cluster (which may wait behind the refresh's other reads
            // from the cloud) and the reads from the cluster at its recorded endpoint run
            // together. What the cluster said counts only if the cloud still names that cluster
            // at that endpoint; instances of another cluster, or of none, are gone.
            let recorded = endpoint(&items[0].attrs);
            let (ep, observed) = {
                let describe = std::pin::pin!(self.same_cluster(&items[0].attrs));
                let early = std::pin::pin!(self.observe(&recorded, &items));
                let (current, early) = match futures::future::select(describe, early).await {
                    futures::future::Either::Left((current, early)) => {
                        let current = current?;
                        let early = match &current {
                            Some(ep) if *ep == recorded => Some(early.await),
                            _ => None,
                        };
                        (current, early)
                    }
                    futures::future::Either::Right((early, describe)) => (describe.await?, Some(early)),
                };
                let Some(ep) = current else { continue };
                let observed = match early {
                    Some(observed) if ep == recorded => observed?,
                    _ => self.observe(&ep, &items).await?,
                };
                (ep, observed)
            };
            let Observed { mut inventories, lists, whole } = observed;
            // What was seen is what refresh lays over the record: the connection and the objects,
            // each only if it moved. An instance found as recorded then keeps its recorded
            // attributes, shared rather than copied (at 10,000 tenants they are most of the
            // state).
            // Only the instances applied to this cluster have an inventory here.
            let none = serde_json::Map::new();
            for item in items {
                let Some(inventory) = inventories.remove(&item.addr) else { continue };
                let ReadItem { addr, id, attrs } = item;
                let mut objects = Cow::Borrowed(attrs.get("objects").and_then(Json::as_object).unwrap_or(&none));
                let mut recorded = None;
                for a in inventory {
                    let live = match whole.get(&object_key_of(&a)) {
                        Some(fetched) => fetched.as_ref().map(Live::Whole),
                        None => listed_of(&lists, &a),
                    };
                    seen_as(&mut objects, &a, live, || {
                        recorded.get_or_insert_with(|| rendered_objects(&addr, &attrs)).clone()
                    });
                }
                let mut seen = Attrs::new();
                if let Cow::Owned(objects) = objects {
                    seen.insert("objects".into(), Json::Object(objects));
                }
                if !connected_at(&attrs, &ep) {
                    seen.insert("connection".into(), connection(&ep));
                }
                found.insert(addr, ReadResource { id, attrs: seen });
            }
        }
        Ok(ReadResponse { found, ..ReadResponse::default() })
    }

    async fn apply(&self, req: ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let row = row_of(&req.addr)?;
        let policy = self.policy(row);
        let ep = endpoint(&req.config);
        let (s, uid) = self.admitted(&ep, Some(policy), &req.status).await?;
        let objects = render(&self.source, &req.addr, &req.config, &req.status).await?;
        req.status.say(&format!("applying {} objects", objects.len()));

        let mut applied: Vec<Applied> = Vec::with_capacity(objects.len());
        let mut crds_waited = false;
        for Rendered { object: o, entry, adopted } in &objects {
            // CRDs are Established before anything that could be of their kinds.
            if !crds_waited && o["kind"] != "CustomResourceDefinition" {
                for a in applied.iter().filter(|a| a.kind == "CustomResourceDefinition") {
                    self.wait_for(&s, a, false, policy, &req.status).await?;
                }
                crds_waited = true;
            }
            let (mut a, live) = self.apply_until_accepted(&s, o, entry, *adopted, policy, &req.status).await?;
            // Applied to an object on its way out (a namespace deleted by hand, Terminating): it
            // would go with everything in it. Wait until it has gone, then create it again.
            if let Some(since) = live["metadata"]["deletionTimestamp"].as_str() {
                req.status.say(&format!(
                    "{} is being deleted (since {since}); creating it again once it is gone",
                    a.display()
                ));
                self.wait_for(&s, &a, true, policy, &req.status).await?;
                (a, _) = self.apply_until_accepted(&s, o, entry, *adopted, policy, &req.status).await?;
            }
            applied.push(a);
        }
        for a in applied.iter().filter(|a| a.kind == "CustomResourceDefinition" && !crds_waited) {
            self.wait_for(&s, a, false, policy, &req.status).await?;
        }

        // Prune what the previous apply to this cluster made and this one no longer wants.
        if let Some(prior) = &req.prior
            && prior.attrs.get("cluster_uid").and_then(Json::as_str) == Some(uid.as_str())
        {
            let mut stale: Vec<Applied> = inventory(&prior.attrs)
                .into_iter()
                .filter(|old| !old.adopted && !applied.iter().any(|new| same_object(old, new)))
                .collect();
            stale.sort_by_key(delete_rank);
            for a in &stale {
                req.status.say(&format!("pruning {}", a.display()));
                s.delete(a).await?;
                self.wait_for(&s, a, true, policy, &req.status).await?;
            }
        }

        for a in applied.iter().filter(|a| has_readiness(&a.kind) && a.kind != "CustomResourceDefinition") {
            self.wait_for(&s, a, false, policy, &req.status).await?;
        }

        let mut attrs = req.config.clone();
        attrs.insert("cluster_uid".into(), Json::String(uid.clone()));
        attrs.insert("inventory".into(), crate::kubeapi::inventory_to_json(&applied));
        Ok(ApplyResponse::new(format!("{}/{}", ep.cluster, instance_label(&req.addr)), attrs))
    }

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        let row = row_of(&req.addr)?;
        let policy = self.policy(row);
        let Some(ep) = self.same_cluster(&req.attrs).await? else {
            req.status.say("its cluster is gone; nothing left to delete");
            return Ok(());
        };
        let (s, uid) = self.admitted(&ep, Some(policy), &req.status).await?;
        if req.attrs.get("cluster_uid").and_then(Json::as_str) != Some(uid.as_str()) {
            req.status.say("applied to an earlier cluster; nothing left to delete");
            return Ok(());
        }
        let mut inv: Vec<Applied> = inventory(&req.attrs).into_iter().filter(|a| !a.adopted).collect();
        inv.reverse();
        inv.sort_by_key(delete_rank);
        for a in &inv {
            s.delete(a).await?;
        }
        for a in &inv {
            self.wait_for(&s, a, true, policy, &req.status).await?;
        }
        Ok(())
    }

    async fn find_by_owner(&self, _req: FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        // Applying an add-on is idempotent (server-side apply): an interrupted apply is simply
        // applied again, so there is nothing to adopt.
        Ok(None)
    }

    fn parts(
        &self,
        addr: &ResourceAddr,
        _attr: &str,
        before: Option<&Attrs>,
        after: Option<&Attrs>,
    ) -> Vec<PartChange> {
        Self::parts_of(addr, before, after)
    }

    fn stats(&self) -> CallStats {
        self.calls.snapshot()
    }

    fn retry_budget(&self) -> Option<String> {
        Some(self.retry.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state recorded with one entry per upstream file: listed releases become their objects
    /// (with the inventory's entries).
    #[test]
    fn objects_recorded_as_digests_are_upgraded() {
        let applied = |kind: &str, ns: &str, name: &str, entry: &str| {
            json!({"api_version": "v1", "kind": kind, "plural": "x", "namespaced": true, "namespace": ns,
                   "name": name, "entry": entry, "owned": "o"})
        };
        let file = "ingress-nginx/controller-v1.15.1/aws-deploy.yaml";
        let mut attrs: Attrs = json!({
            "objects": {
                file: "sha256:fa1f90396ba5d646ce3019c95c36c6457c80aa6bd8a97c3db0d15ed8e7c20a9b",
                "ConfigMap/kube-system/coredns": "a53630a4e1f2b3c4",
            },
            "inventory": [
                applied("Deployment", "matih-ingress", "ingress-nginx-controller", file),
                applied("ConfigMap", "kube-system", "coredns", "ConfigMap/kube-system/coredns"),
            ],
        })
        .as_object()
        .unwrap()
        .clone();
        upgrade_objects_from_digests(&mut attrs);
        let objects = attrs["objects"].as_object().unwrap();
        assert!(!objects.contains_key(file));
        let deployment = &objects["Deployment/matih-ingress/ingress-nginx-controller"];
        assert_eq!(deployment["bundle"], "ingress-nginx controller-v1.15.1 aws-deploy.yaml");
        assert_eq!(
            objects.len(),
            1 + crate::bundles::objects(Upstream::IngressNginxAws, "controller-v1.15.1").unwrap().len()
        );
        assert_eq!(attrs["inventory"][0]["entry"], "Deployment/matih-ingress/ingress-nginx-controller");
        assert_eq!(objects["ConfigMap/kube-system/coredns"], "a53630a4e1f2b3c4", "the tool's own stay digests");

        // Then version 2's runs, the same objects in the same order.
        let before: Vec<Applied> = serde_json::from_value(attrs["inventory"].clone()).unwrap();
        upgrade_inventory_to_runs(&mut attrs);
        assert_eq!(attrs["inventory"][0][0], "v1 x Deployment matih-ingress");
        assert_eq!(inventory(&attrs), before);
    }
}
