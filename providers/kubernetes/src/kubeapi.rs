//! The narrow seam over kube-rs: server-side apply (field manager `matih-infra`), reads, deletes,
//! discovery with a per-session cache, readiness checks, and the inventory entry recorded for
//! every applied object. Which objects to apply, in what order, is the provider's business.
//!
//! Every request is counted in the kit's [`Recorder`] and goes through the kit's retry helper:
//! reads, server-side applies and deletes are all idempotent, so a throttle (429), a server error
//! or a lost answer is followed by the same request, with back-off, within the retry budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersion};
use kube::discovery::{ApiGroup, Scope};
use matih_plans::wait::WaitStep;
use matih_plans::{ApiError, ErrorKind, ProviderError};
use matih_provider_kit::retry::retry;
use matih_provider_kit::{Call, Recorder, RetryPolicy};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::sync::OnceCell;

/// The field manager of every write the tool makes.
pub const FIELD_MANAGER: &str = "matih-infra";
/// Label on every object the tool applies, naming its add-on instance (`tenant.acme`).
pub const ADDON_LABEL: &str = "matih.ai/addon";

/// One applied object, as recorded in the add-on's inventory (state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub api_version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The key of the add-on's `objects` attribute this object belongs to.
    pub entry: String,
    /// Digest of the fields the tool owns (its managedFields entry) right after the apply: a
    /// different digest later means someone else changed or took over a field of ours.
    pub owned: String,
    /// The cloud created the object; the tool only manages some of its fields and never deletes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
}

impl Applied {
    /// Its key among an add-on's objects: `Kind/namespace/name` or `Kind/name`.
    pub fn key(&self) -> String {
        crate::provider::key(&self.kind, self.namespace.as_deref(), &self.name)
    }

    /// `Kind namespace/name` or `Kind name`.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// An add-on's inventory as state records it (schema version 2): runs of objects of one
/// resource in one namespace, in the order they were applied, each run a list whose first item
/// names the resource and namespace (`apiVersion plural Kind[ namespace]`) and whose other items
/// are its objects (`name owned-digest[ adopted][ entry=<key in objects>]`, the owned digest `-`
/// when the tool owns no field; the entry only where it is not the object's own key):
///
/// ```json
/// [["v1 namespaces Namespace", "matih-tenant-acme d6513e2bee7502d1"],
///  ["networking.k8s.io/v1 networkpolicies NetworkPolicy matih-tenant-acme",
///   "default-deny c5a7ccd36ee9b83d", "allow-dns 74d1c2acd0d28dd7"]]
/// ```
///
/// Kubernetes names and namespaces hold no spaces and no `/`; API versions, plurals and kinds no
/// spaces.
pub fn inventory_to_json(applied: &[Applied]) -> Json {
    let mut runs: Vec<Vec<Json>> = Vec::new();
    let mut last: Option<(&str, &str, &str, Option<&str>)> = None;
    for a in applied {
        let resource = (a.api_version.as_str(), a.plural.as_str(), a.kind.as_str(), a.namespace.as_deref());
        if last != Some(resource) {
            let mut head = format!("{} {} {}", a.api_version, a.plural, a.kind);
            if let Some(ns) = &a.namespace {
                head.push(' ');
                head.push_str(ns);
            }
            runs.push(vec![Json::String(head)]);
            last = Some(resource);
        }
        let mut item = a.name.clone();
        item.push(' ');
        item.push_str(if a.owned.is_empty() { "-" } else { &a.owned });
        if a.adopted {
            item.push_str(" adopted");
        }
        if a.entry != a.key() {
            item.push_str(" entry=");
            item.push_str(&a.entry);
        }
        runs.last_mut().expect("a run was started above").push(Json::String(item));
    }
    Json::Array(runs.into_iter().map(Json::Array).collect())
}

/// [`inventory_to_json`] read back; `None` if `v` is not in that shape.
pub fn inventory_from_json(v: &Json) -> Option<Vec<Applied>> {
    let mut out = Vec::new();
    for run in v.as_array()? {
        let run = run.as_array()?;
        let (head, items) = run.split_first()?;
        let mut head = head.as_str()?.split(' ');
        let (api_version, plural, kind) = (head.next()?, head.next()?, head.next()?);
        let namespace = head.next().map(str::to_string);
        if head.next().is_some() || namespace.as_deref().is_some_and(|ns| ns.is_empty() || ns.contains('/')) {
            return None;
        }
        for item in items {
            let mut words = item.as_str()?.split(' ');
            let name = words.next().filter(|n| !n.is_empty() && !n.contains('/'))?.to_string();
            let namespace = namespace.clone();
            let owned = match words.next()? {
                "-" => String::new(),
                d => d.to_string(),
            };
            let (mut adopted, mut entry) = (false, None);
            for w in words {
                match w {
                    "adopted" => adopted = true,
                    _ => entry = Some(w.strip_prefix("entry=")?.to_string()),
                }
            }
            let mut a = Applied {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                plural: plural.to_string(),
                namespaced: namespace.is_some(),
                namespace,
                name,
                entry: String::new(),
                owned,
                adopted,
            };
            a.entry = entry.unwrap_or_else(|| a.key());
            out.push(a);
        }
    }
    Some(out)
}

/// The service name calls are counted under (`kubernetes:<verb>`).
const SVC: &str = "kubernetes";

/// Objects asked for per page of a list (`limit`), as kubectl asks: a page is parsed and reduced
/// to its summaries before the next comes, so a refresh's memory does not grow with the largest
/// kind (66,000 NetworkPolicies at 10,000 tenants).
const LIST_PAGE: u32 = 500;

/// What discovery said about one cluster's API groups (`None`: not served), shared by every
/// session on it in a run. Each group version is asked once: sessions that need it at the same
/// time wait for the first answer.
pub type Discovered = Arc<Mutex<HashMap<String, Arc<OnceCell<Option<Arc<ApiGroup>>>>>>>;

/// One cluster's client with its discovery cache.
pub struct Session<'a> {
    client: kube::Client,
    calls: &'a Recorder,
    retry: RetryPolicy,
    groups: Discovered,
}

/// A kube-rs error as a typed provider error: the API server's status (its code decides the
/// kind, its reason is the code), or how the request failed on the wire.
fn api_error(operation: &str, e: kube::Error) -> ProviderError {
    match e {
        kube::Error::Api(s) => {
            let status = s.code;
            ApiError::new(SVC, operation, ErrorKind::from_status(status), &s.reason, s.message).status(status).into()
        }
        other => {
            let connect = matih_provider_kit::in_chain::<hyper_util::client::legacy::Error>(&other)
                .is_some_and(|h| h.is_connect());
            let (kind, what) = if connect {
                (ErrorKind::Unreachable, "the API server could not be reached")
            } else {
                (ErrorKind::NoResponse, "no answer came back")
            };
            ApiError::new(SVC, operation, kind, "", what).source(other).into()
        }
    }
}

fn str_of<'j>(o: &'j Json, path: &[&str]) -> Option<&'j str> {
    let mut cur = o;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// One page of a metadata-only list (`PartialObjectMetadataList`), borrowed from the answer's
/// text: what [`listed`] needs of each object and nothing else. Every other field (labels,
/// annotations, owner references, other managers' field sets) is skipped, not built: at 10,000
/// tenants a refresh lists 80,000 objects.
#[derive(Deserialize)]
struct MetadataPage<'a> {
    #[serde(borrow, default)]
    metadata: Option<PageMeta<'a>>,
    #[serde(borrow, default)]
    items: Option<Vec<ListedObject<'a>>>,
}

#[derive(Deserialize)]
struct PageMeta<'a> {
    #[serde(rename = "continue", borrow, default)]
    continue_: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ListedObject<'a> {
    #[serde(borrow)]
    metadata: ListedMeta<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedMeta<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    deletion_timestamp: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    managed_fields: Option<Vec<ManagedEntry<'a>>>,
}

#[derive(Deserialize)]
struct ManagedEntry<'a> {
    #[serde(borrow, default)]
    manager: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    operation: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "fieldsV1", borrow, default)]
    fields_v1: Option<&'a serde_json::value::RawValue>,
}

/// What a refresh keeps of a listed object: whether it is being deleted and the digest of the
/// fields the tool owns, all it needs to tell the object unchanged (at 10,000 tenants, 80,000 of
/// these are held at once: two small strings each, not a JSON object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSeen {
    /// When its deletion began, if it has.
    pub deletion_timestamp: Option<Box<str>>,
    /// [`owned_digest`]'s digest of the tool's Apply entry ("" if the tool owns no field).
    pub owned: Box<str>,
}

/// The [`ObjectSeen`] of one listed object's metadata: only the tool's entry is parsed.
fn listed(meta: &ListedMeta<'_>) -> ObjectSeen {
    let mine = meta
        .managed_fields
        .iter()
        .flatten()
        .find(|m| m.manager.as_deref() == Some(FIELD_MANAGER) && m.operation.as_deref() == Some("Apply"));
    let owned = mine
        .and_then(|m| m.fields_v1)
        .and_then(|raw| serde_json::from_str::<Json>(raw.get()).ok())
        .map_or_else(String::new, |f| fields_digest(&f));
    ObjectSeen { deletion_timestamp: meta.deletion_timestamp.as_deref().map(Into::into), owned: owned.into() }
}

/// The digest of the fields the tool owns in a whole object (as [`ObjectSeen::owned`]).
pub fn owned_of(live: &Json) -> String {
    owned_digest(live["metadata"].get("managedFields"))
}

/// Digest of the field set the tool owns through Apply, or "" if it owns none.
pub fn owned_digest(managed_fields: Option<&Json>) -> String {
    let entry = managed_fields.and_then(Json::as_array).and_then(|v| {
        v.iter().find(|m| m["manager"] == FIELD_MANAGER && m["operation"] == "Apply").map(|m| &m["fieldsV1"])
    });
    entry.map_or_else(String::new, fields_digest)
}

/// The digest of one managed-fields entry's `fieldsV1`, as [`Applied::owned`] records it.
fn fields_digest(fields_v1: &Json) -> String {
    crate::bundles::json_digest(fields_v1)
}

impl<'a> Session<'a> {
    pub fn new(client: kube::Client, calls: &'a Recorder, retry: RetryPolicy, groups: Discovered) -> Self {
        Session { client, calls, retry, groups }
    }

    /// One request (`verb` for counting, `what` for errors) with the kit's retries; every
    /// request here is idempotent.
    async fn call<T, F, Fut>(&self, verb: &str, what: &str, call: Call, mut send: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        retry(&self.retry, self.calls, SVC, verb, call, || {
            self.calls.call(SVC, verb);
            let sent = send();
            async move { sent.await.map_err(|e| api_error(what, e)) }
        })
        .await
    }

    /// The API resource (plural, scope) of `apiVersion`/`kind`, from discovery. A kind the
    /// cluster does not serve yet (a CRD just created) is looked up again once.
    pub async fn resource(&self, api_version: &str, kind: &str) -> Result<(ApiResource, bool), ProviderError> {
        let gv: GroupVersion =
            api_version.parse().map_err(|e| crate::cluster::other(format!("apiVersion {api_version:?}: {e}")))?;
        let mut used: Option<Arc<OnceCell<_>>> = None;
        for fresh in [false, true] {
            let cell = {
                let mut groups = self.groups.lock().unwrap();
                // Asked again only if nobody has asked since this session's answer.
                if fresh && used.as_ref().is_some_and(|u| groups.get(api_version).is_some_and(|c| Arc::ptr_eq(c, u))) {
                    groups.remove(api_version);
                }
                groups.entry(api_version.to_string()).or_default().clone()
            };
            used = Some(cell.clone());
            let group = cell
                .get_or_try_init(|| async {
                    let what = format!("discovery of {api_version}");
                    let found = self
                        .call("discovery", &what, Call::Read, || kube::discovery::pinned_group(&self.client, &gv))
                        .await;
                    Ok::<_, ProviderError>(matih_provider_kit::not_found_none(found)?.map(Arc::new))
                })
                .await?;
            let Some(group) = group else { continue };
            let (_, version) = api_version.split_once('/').unwrap_or(("", api_version));
            if let Some((ar, caps)) = group.versioned_resources(version).into_iter().find(|(ar, _)| ar.kind == kind) {
                return Ok((ar, caps.scope == Scope::Namespaced));
            }
        }
        Err(ApiError::new(
            SVC,
            &format!("discovery of {api_version} {kind}"),
            ErrorKind::NotFound,
            "NotFound",
            format!("the cluster does not serve kind {kind} in {api_version}"),
        )
        .into())
    }

    fn api(&self, ar: &ApiResource, namespaced: bool, namespace: Option<&str>) -> Api<DynamicObject> {
        match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar),
            _ => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Server-side apply of one object (force: the tool's desired state wins over fields someone
    /// changed by hand, which the plan showed as drift).
    pub async fn apply(&self, obj: &Json, entry: &str, adopted: bool) -> Result<(Applied, Json), ProviderError> {
        let api_version = str_of(obj, &["apiVersion"]).unwrap_or_default().to_string();
        let kind = str_of(obj, &["kind"]).unwrap_or_default().to_string();
        let name = str_of(obj, &["metadata", "name"]).unwrap_or_default().to_string();
        let namespace = str_of(obj, &["metadata", "namespace"]).map(str::to_string);
        let what = match &namespace {
            Some(ns) => format!("apply {kind} {ns}/{name}"),
            None => format!("apply {kind} {name}"),
        };
        let (ar, namespaced) = self.resource(&api_version, &kind).await?;
        if namespaced && namespace.is_none() {
            return Err(crate::cluster::other(format!("{what}: a namespaced kind without metadata.namespace")));
        }
        let dynamic: DynamicObject =
            serde_json::from_value(obj.clone()).map_err(|e| crate::cluster::other(format!("{what}: {e}")))?;
        let api = self.api(&ar, namespaced, namespace.as_deref());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        // Server-side apply is idempotent: sent again, it leaves the same object.
        let patch = Patch::Apply(&dynamic);
        // One attempt: the provider retries a refused apply until the add-on's deadline, saying
        // what it waits for (an admission webhook not serving yet is a 500 for a while).
        self.calls.call(SVC, "apply");
        let res = api.patch(&name, &params, &patch).await.map_err(|e| api_error(&what, e))?;
        let live = serde_json::to_value(&res).expect("a DynamicObject serializes");
        let applied = Applied {
            api_version,
            kind,
            plural: ar.plural.clone(),
            namespaced,
            namespace: if namespaced { namespace } else { None },
            name,
            entry: entry.to_string(),
            owned: owned_digest(live["metadata"].get("managedFields")),
            adopted,
        };
        Ok((applied, live))
    }

    fn ar_of(a: &Applied) -> ApiResource {
        let (group, version) = a.api_version.split_once('/').unwrap_or(("", &a.api_version));
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: a.api_version.clone(),
            kind: a.kind.clone(),
            plural: a.plural.clone(),
        }
    }

    /// The live object, or `None` if it is gone.
    pub async fn get(&self, a: &Applied) -> Result<Option<Json>, ProviderError> {
        let api = self.api(&Self::ar_of(a), a.namespaced, a.namespace.as_deref());
        let o = self.call("get", &format!("get {}", a.display()), Call::Read, || api.get_opt(&a.name)).await?;
        Ok(o.map(|o| serde_json::to_value(o).expect("a DynamicObject serializes")))
    }

    /// Every object of one resource carrying the add-on label, keyed by (namespace, name), as its
    /// [`listed`] summary: of the add-on instances named in `only`, or of every instance. A
    /// resource the cluster no longer serves (its CRD deleted) has none. Asks for metadata only
    /// (`PartialObjectMetadataList`): whole objects are megabytes a refresh reads and parses for
    /// nothing when the digest of the fields the tool owns tells an unchanged object, and kept
    /// whole, 80,000 objects at 10,000 tenants took a gigabyte. In pages of [`LIST_PAGE`]; when the
    /// pages' snapshot expires, one whole list instead.
    pub async fn list_labelled(
        &self,
        a: &Applied,
        only: Option<&[String]>,
    ) -> Result<HashMap<(Option<String>, String), ObjectSeen>, ProviderError> {
        let path = <DynamicObject as kube::Resource>::url_path(&Self::ar_of(a), None);
        let selector = match only {
            Some(labels) => format!("{ADDON_LABEL} in ({})", labels.join(",")),
            None => ADDON_LABEL.to_string(),
        };
        let what = format!("list {} ({})", a.plural, a.api_version);
        let mut found = HashMap::new();
        let mut token: Option<String> = None;
        let mut paged = true;
        loop {
            let mut params = ListParams::default().labels(&selector);
            if paged {
                params = params.limit(LIST_PAGE);
            }
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let list = || {
                let request = kube::core::Request::new(&path).list_metadata(&params);
                async move { self.client.request_text(request.map_err(kube::Error::BuildRequest)?).await }
            };
            let text = match self.call("list", &what, Call::Read, list).await {
                Ok(text) => text,
                // The snapshot the pages came from is gone (the server compacted past it): one
                // whole list instead, as client-go's pager does, rather than pages of two
                // snapshots joined or a restart that a busy kind expires again.
                Err(e) if token.is_some() && e.code() == Some("Expired") => {
                    found.clear();
                    token = None;
                    paged = false;
                    continue;
                }
                // Not served (its CRD deleted): nothing of it is left. Only before the first page,
                // as a 410 is this kind of error too.
                Err(e) if token.is_none() && e.kind() == ErrorKind::NotFound => return Ok(HashMap::new()),
                Err(e) => return Err(e),
            };
            let page: MetadataPage = serde_json::from_str(&text).map_err(|e| {
                crate::cluster::other(format!(
                    "{what}: the answer is not a metadata list ({e}); is this a Kubernetes API server?"
                ))
            })?;
            found.extend(page.items.into_iter().flatten().map(|o| {
                let m = &o.metadata;
                let key =
                    (m.namespace.as_deref().map(str::to_string), m.name.as_deref().unwrap_or_default().to_string());
                (key, listed(m))
            }));
            match page.metadata.and_then(|m| m.continue_).filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next.into_owned()),
                None => return Ok(found),
            }
        }
    }

    /// Deletes an object (background propagation); gone already is fine.
    pub async fn delete(&self, a: &Applied) -> Result<(), ProviderError> {
        let api = self.api(&Self::ar_of(a), a.namespaced, a.namespace.as_deref());
        let params = DeleteParams::background();
        matih_provider_kit::gone_ok(
            self.call("delete", &format!("delete {}", a.display()), Call::Idempotent, || api.delete(&a.name, &params))
                .await,
        )
    }

    /// The UID of `kube-system`: this cluster's identity as the cluster itself knows it.
    pub async fn cluster_uid(&self) -> Result<String, ProviderError> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let ns = self.call("get", "get Namespace kube-system", Call::Read, || api.get("kube-system")).await?;
        Ok(ns.metadata.uid.unwrap_or_default())
    }
}

/// Whether a live object is ready, for the kinds that have a notion of it. Other kinds are
/// ready once applied.
pub fn readiness(kind: &str, live: &Json) -> WaitStep<()> {
    let generation = live["metadata"]["generation"].as_i64().unwrap_or(0);
    let status = &live["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    let condition = |t: &str| {
        status["conditions"]
            .as_array()
            .and_then(|v| v.iter().find(|c| c["type"] == t))
            .map(|c| (c["status"].as_str().unwrap_or("").to_string(), c["reason"].as_str().unwrap_or("").to_string()))
    };
    let conditions = || {
        let list: Vec<String> = status["conditions"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|c| {
                        let mut s =
                            format!("{}={}", c["type"].as_str().unwrap_or("?"), c["status"].as_str().unwrap_or("?"));
                        if let Some(r) = c["reason"].as_str().filter(|r| !r.is_empty()) {
                            s.push_str(&format!(" ({r})"));
                        }
                        s
                    })
                    .collect()
            })
            .unwrap_or_default();
        if list.is_empty() { "no conditions reported yet".to_string() } else { list.join(", ") }
    };
    match kind {
        "CustomResourceDefinition" => match condition("Established") {
            Some((s, _)) if s == "True" => WaitStep::Done(()),
            _ => WaitStep::Pending(conditions()),
        },
        "Deployment" => {
            if observed < generation {
                return WaitStep::Pending(format!("generation {generation} not observed yet; {}", conditions()));
            }
            match condition("Available") {
                Some((s, _)) if s == "True" => {
                    let want = live["spec"]["replicas"].as_i64().unwrap_or(1);
                    let updated = status["updatedReplicas"].as_i64().unwrap_or(0);
                    if updated >= want {
                        WaitStep::Done(())
                    } else {
                        WaitStep::Pending(format!("{updated}/{want} replicas updated; {}", conditions()))
                    }
                }
                _ => WaitStep::Pending(conditions()),
            }
        }
        "DaemonSet" => {
            let want = status["desiredNumberScheduled"].as_i64().unwrap_or(0);
            let available = status["numberAvailable"].as_i64().unwrap_or(0);
            let updated = status["updatedNumberScheduled"].as_i64().unwrap_or(0);
            // As `kubectl rollout status`: the current generation observed, every scheduled pod
            // updated and available (none scheduled is done too).
            if observed >= generation && generation > 0 && available >= want && updated >= want {
                WaitStep::Done(())
            } else {
                WaitStep::Pending(format!("{available}/{want} pods available, {updated} updated"))
            }
        }
        "Job" => match (condition("Complete"), condition("Failed")) {
            (Some((s, _)), _) if s == "True" => WaitStep::Done(()),
            (_, Some((s, r))) if s == "True" => WaitStep::Failed(format!("job failed ({r})")),
            _ => WaitStep::Pending(conditions()),
        },
        _ => WaitStep::Done(()),
    }
}

/// Kinds whose readiness the provider waits for after applying.
pub fn has_readiness(kind: &str) -> bool {
    matches!(kind, "CustomResourceDefinition" | "Deployment" | "DaemonSet" | "Job")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_is_ready_only_when_the_current_generation_is_available() {
        let mut d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "updatedReplicas": 2,
                       "conditions": [{"type": "Available", "status": "True"}]}});
        assert!(matches!(readiness("Deployment", &d), WaitStep::Pending(_)));
        d["status"]["observedGeneration"] = json!(2);
        assert!(matches!(readiness("Deployment", &d), WaitStep::Done(())));
        d["status"]["conditions"][0]["status"] = json!("False");
        d["status"]["conditions"][0]["reason"] = json!("MinimumReplicasUnavailable");
        let WaitStep::Pending(s) = readiness("Deployment", &d) else { panic!() };
        assert_eq!(s, "Available=False (MinimumReplicasUnavailable)");
    }

    #[test]
    fn inventory_round_trips_in_apply_order() {
        let a = |api: &str, plural: &str, kind: &str, ns: Option<&str>, name: &str| Applied {
            api_version: api.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: ns.is_some(),
            namespace: ns.map(Into::into),
            name: name.into(),
            entry: crate::provider::key(kind, ns, name),
            owned: "0123456789abcdef".into(),
            adopted: false,
        };
        let mut list = vec![
            a("v1", "namespaces", "Namespace", None, "matih-tenant-acme"),
            a("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", Some("matih-tenant-acme"), "default-deny"),
            a("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", Some("matih-tenant-acme"), "allow-dns"),
            a("v1", "configmaps", "ConfigMap", Some("kube-system"), "coredns"),
            a("v1", "namespaces", "Namespace", None, "other"),
        ];
        list[3].adopted = true;
        list[3].owned = String::new();
        list[4].entry = "cert-manager/v1.21.1/cert-manager.yaml".into();
        let v = inventory_to_json(&list);
        assert_eq!(
            v,
            serde_json::json!([
                ["v1 namespaces Namespace", "matih-tenant-acme 0123456789abcdef"],
                [
                    "networking.k8s.io/v1 networkpolicies NetworkPolicy matih-tenant-acme",
                    "default-deny 0123456789abcdef",
                    "allow-dns 0123456789abcdef"
                ],
                ["v1 configmaps ConfigMap kube-system", "coredns - adopted"],
                ["v1 namespaces Namespace", "other 0123456789abcdef entry=cert-manager/v1.21.1/cert-manager.yaml"]
            ])
        );
        assert_eq!(inventory_from_json(&v).unwrap(), list);
        for bad in [
            json!({}),
            json!([["v1 namespaces"]]),
            json!([["v1 pods Pod", "ns/x 0123456789abcdef"]]),
            json!([["v1 namespaces Namespace", "x"]]),
            json!([["v1 namespaces Namespace", "x d what"]]),
        ] {
            assert!(inventory_from_json(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_listed_objects_owned_digest_is_the_whole_objects() {
        let object = json!({"metadata": {
        "name": "coredns", "namespace": "kube-system", "labels": {"matih.ai/addon": "coredns"},
        "deletionTimestamp": "2026-12-02T10:00:00Z",
        "managedFields": [
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}},
            {"manager": "matih-infra", "operation": "Apply",
             "fieldsV1": {"f:data": {"f:z": {}, "f:a": {}}, "f:metadata": {"f:labels": {"f:matih.ai/addon": {}}}}}
        ]}});
        // Laid out as a server may lay it out: the digest is of the field set, not of the text.
        let text = serde_json::to_string_pretty(&json!({
            "kind": "PartialObjectMetadataList", "metadata": {"continue": "next"}, "items": [object]
        }))
        .unwrap();
        let page: MetadataPage = serde_json::from_str(&text).unwrap();
        assert_eq!(page.metadata.and_then(|m| m.continue_).as_deref(), Some("next"));
        let items = page.items.unwrap();
        assert_eq!(items[0].metadata.name.as_deref(), Some("coredns"));
        let summary = listed(&items[0].metadata);
        assert_eq!(*summary.owned, owned_of(&object));
        assert_ne!(&*summary.owned, "");
        assert_eq!(summary.deletion_timestamp.as_deref(), Some("2026-12-02T10:00:00Z"));

        let page: MetadataPage =
            serde_json::from_str(r#"{"metadata": {}, "items": [{"metadata": {"name": "x", "managedFields": null}}]}"#)
                .unwrap();
        assert_eq!(&*listed(&page.items.unwrap()[0].metadata).owned, "");
    }

    #[test]
    fn owned_digest_follows_the_tools_apply_entry_only() {
        let a = json!([{"manager": "matih-infra", "operation": "Apply", "fieldsV1": {"f:data": {"f:x": {}}}},
                       {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:data": {"f:y": {}}}}]);
        let b = json!([{"manager": "matih-infra", "operation": "Apply", "fieldsV1": {"f:data": {}}},
                       {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:data": {"f:x": {}}}}]);
        assert_ne!(owned_digest(Some(&a)), owned_digest(Some(&b)));
        assert_eq!(owned_digest(Some(&json!([]))), "");
    }
}
