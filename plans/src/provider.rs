//! The provider trait: the one seam between the engine and a cloud (or a Kubernetes cluster).
//!
//! Each phase takes a request struct and returns a response struct, so phases can grow fields
//! without breaking every provider. The engine hands a provider all instances of a resource type
//! at once when refreshing (batched read): a provider answers with one paginated list call per
//! type instead of one call per resource. Providers never see the state file or the plan.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use matih_addrs::{ResourceAddr, ResourceType};
use matih_state::Attrs;

use crate::value::Value;

/// What the engine needs to know about one resource type.
#[derive(Debug, Clone)]
pub struct TypeSchema {
    pub rtype: ResourceType,
    pub attributes: Vec<AttrSchema>,
    /// The cloud allows a second instance to exist while the first is still there, so a replace
    /// creates the new one before destroying the old one.
    pub create_before_destroy: bool,
    /// Networks, clusters, zones and reserved addresses are protected unless the platform spec
    /// says otherwise: the plan refuses to replace or delete them without `--allow-replace`.
    pub protected_by_default: bool,
    /// Changes to resources of this type go to the provider together ([`Provider::apply_batch`],
    /// [`Provider::delete_batch`]) once everything they wait on has finished: DNS records of one
    /// apply go out in as few calls as the cloud allows.
    pub batched: bool,
    /// The version of the attributes this provider records for the type. A state that recorded
    /// an older version is passed through [`Provider::upgrade`] before anything else reads it.
    pub version: u32,
    /// The attribute holding the resource's parts (a map: a Kubernetes add-on's objects). Plans
    /// and drift show its changes part by part ([`Provider::parts`]) instead of as attribute paths.
    pub parts: Option<String>,
}

/// One attribute of a resource type.
#[derive(Debug, Clone)]
pub struct AttrSchema {
    pub name: String,
    /// Set by the cloud, not by configuration (ids, ARNs, endpoints).
    pub computed: bool,
    /// Changing it means the resource must be replaced.
    pub force_new: bool,
}

impl AttrSchema {
    /// A configurable attribute that can be updated in place.
    pub fn updatable(name: &str) -> Self {
        Self { name: name.into(), computed: false, force_new: false }
    }
    /// A configurable attribute whose change forces replacement.
    pub fn force_new(name: &str) -> Self {
        Self { name: name.into(), computed: false, force_new: true }
    }
    /// An attribute the cloud sets.
    pub fn computed(name: &str) -> Self {
        Self { name: name.into(), computed: true, force_new: false }
    }
}

impl TypeSchema {
    pub fn attr(&self, name: &str) -> Option<&AttrSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// Ask the provider to check a resource's configuration before anything else happens.
#[derive(Debug, Clone)]
pub struct ValidateRequest<'a> {
    pub addr: &'a ResourceAddr,
    pub config: &'a BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct ValidateResponse {
    /// Human-readable problems, each naming the attribute.
    pub errors: Vec<String>,
}

/// The recorded identity of one instance to refresh.
#[derive(Debug, Clone)]
pub struct ReadItem {
    pub addr: ResourceAddr,
    pub id: String,
    /// As recorded, shared with the state.
    pub attrs: std::sync::Arc<Attrs>,
}

/// Refresh every instance of one type in one call.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub rtype: ResourceType,
    pub items: Vec<ReadItem>,
}

/// What the cloud says now. An address missing from `found` no longer exists.
#[derive(Debug, Clone, Default)]
pub struct ReadResponse {
    pub found: BTreeMap<ResourceAddr, ReadResource>,
    /// Resources of this type that carry the platform's owner tags but are not among the
    /// requested items: duplicates from a lost response, leftovers of an interrupted destroy.
    pub orphans: Vec<Orphan>,
    /// Said to the user once (e.g. "a recorded attribute could not be read back").
    pub warnings: Vec<String>,
}

/// A resource in the cloud that carries this platform's owner tags and that state does not know.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Orphan {
    #[serde(rename = "type")]
    pub rtype: ResourceType,
    pub id: String,
    /// The address its owner tags name, if they name one this tool can parse.
    pub address: Option<ResourceAddr>,
    /// What a delete needs to know about it (as a read reports it).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attrs: Attrs,
    /// What to do about it (the plan decides; providers leave the default).
    #[serde(default)]
    pub remedy: Remedy,
}

/// What to do about an orphan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Remedy {
    /// State has no resource at its address, which the platform wants: `state import ADDR ID`
    /// adopts it (and the plan then creates nothing there).
    Import,
    /// A duplicate of a resource state has, or one no address of the platform wants:
    /// `destroy --prune-orphans` deletes it.
    #[default]
    Prune,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadResource {
    pub id: String,
    /// What was seen. Refresh lays it over the recorded attributes, so an attribute left out is
    /// taken as recorded (the Kubernetes read leaves out an unchanged objects map).
    pub attrs: Attrs,
}

/// Plan one resource: prior attributes (None if new) and the configuration, with references
/// resolved as far as they are known.
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    pub addr: &'a ResourceAddr,
    pub schema: &'a TypeSchema,
    pub prior: Option<&'a Attrs>,
    pub config: &'a BTreeMap<String, Value>,
}

#[derive(Debug, Clone)]
pub struct PlanResponse {
    /// The attributes after apply, unknown where only the cloud can say.
    pub planned: BTreeMap<String, Value>,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<String>,
}

/// What the engine recorded before a create: the deterministic name and the ownership tags the
/// resource must carry, so it can be found again if the process dies mid-create.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub client_token: String,
    pub owner_tags: BTreeMap<String, String>,
}

/// Where a provider says how a long operation is going ("CREATING", "pending"): shown next to
/// the resource's progress line. Saying nothing is fine.
#[derive(Clone, Default)]
pub struct StatusSink {
    target: Option<(ResourceAddr, tokio::sync::mpsc::UnboundedSender<(ResourceAddr, String)>)>,
}

impl StatusSink {
    pub fn new(addr: ResourceAddr, tx: tokio::sync::mpsc::UnboundedSender<(ResourceAddr, String)>) -> Self {
        Self { target: Some((addr, tx)) }
    }

    pub fn say(&self, status: &str) {
        if let Some((addr, tx)) = &self.target {
            // The receiver is gone only after apply returned; nobody is listening then.
            let _ = tx.send((addr.clone(), status.to_string()));
        }
    }
}

impl fmt::Debug for StatusSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatusSink")
    }
}

/// Create (prior is None) or update a resource. Every reference in `config` is resolved.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    pub addr: ResourceAddr,
    pub rtype: ResourceType,
    pub prior: Option<ReadResource>,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub identity: Identity,
    pub status: StatusSink,
}

#[derive(Debug, Clone)]
pub struct ApplyResponse {
    pub id: String,
    pub attrs: Attrs,
    /// Said to the user once the resource is done.
    pub warnings: Vec<String>,
}

impl ApplyResponse {
    pub fn new(id: impl Into<String>, attrs: Attrs) -> Self {
        ApplyResponse { id: id.into(), attrs, warnings: Vec::new() }
    }
}

/// Bring attributes recorded under an older schema version of their type up to the current one.
#[derive(Debug, Clone)]
pub struct UpgradeRequest<'a> {
    pub addr: &'a ResourceAddr,
    pub rtype: &'a ResourceType,
    /// The version the attributes were recorded with (0 for states written before versions).
    pub from: u32,
    pub id: &'a str,
    pub attrs: Attrs,
}

#[derive(Debug, Clone)]
pub struct DeleteRequest {
    pub addr: ResourceAddr,
    pub rtype: ResourceType,
    pub id: String,
    pub attrs: Attrs,
    pub status: StatusSink,
}

/// Look for a resource created from an intent whose result was never recorded.
#[derive(Debug, Clone)]
pub struct FindRequest {
    pub addr: ResourceAddr,
    pub rtype: ResourceType,
    pub name: String,
    pub client_token: String,
    pub owner_tags: BTreeMap<String, String>,
    /// A create sent before this moment may still be on its way (its process died with the
    /// request in flight): "not there" is concluded only once it has passed.
    pub settled_at: Option<std::time::SystemTime>,
}

/// What kind of failure a provider error is. Retries, reconciliation of creates and exit
/// classes are decided by this, never by an error's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The thing is not there (404, `…NotFound`).
    NotFound,
    /// It exists already, or the request conflicts with its current state (409, `…AlreadyExists`).
    Conflict,
    /// The service refused to do it now (429, `Throttling`, `RequestLimitExceeded`); nothing was done.
    Throttled,
    /// Not allowed (401, 403).
    Denied,
    /// The request itself is wrong (400, 422, a validation error).
    Invalid,
    /// The request never reached the service (connection refused, name resolution): nothing was done.
    Unreachable,
    /// The request may have reached the service, but no answer came back (timeout, connection
    /// reset): whether it took effect is unknown.
    NoResponse,
    /// The service answered with a server error (5xx): whether it took effect is unknown.
    Unavailable,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The request may have taken effect although it failed: a create must look before it
    /// tries again.
    pub fn outcome_unknown(self) -> bool {
        matches!(self, ErrorKind::NoResponse | ErrorKind::Unavailable)
    }

    /// Trying again later may succeed.
    pub fn transient(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Unreachable | ErrorKind::NoResponse | ErrorKind::Unavailable)
    }

    /// The kind an HTTP status stands for (a status of 2xx or 3xx is [`ErrorKind::Other`]).
    pub fn from_status(status: u16) -> Self {
        match status {
            404 | 410 => ErrorKind::NotFound,
            409 | 412 => ErrorKind::Conflict,
            429 => ErrorKind::Throttled,
            401 | 403 => ErrorKind::Denied,
            400 | 405 | 413 | 415 | 422 => ErrorKind::Invalid,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Denied => "denied",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::NoResponse => "no response",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Other => "other",
        }
    }
}

/// An error cause shared between copies of one error (a batch's failure is every member's).
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A call to a cloud or cluster API that failed: which call, what kind of failure, and what the
/// service said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {operation} failed: {}{message}{}", code_prefix(.code), details(*.status, .request_id.as_deref()))]
pub struct ApiError {
    pub service: String,
    pub operation: String,
    pub kind: ErrorKind,
    /// The HTTP status, when an answer came back.
    pub status: Option<u16>,
    /// The service's own error code (`InvalidVpcID.NotFound`, `AlreadyExists`); empty if none.
    pub code: String,
    pub message: String,
    /// The service's id for the request (`x-amz-request-id`, `x-ms-request-id`), for support cases.
    pub request_id: Option<String>,
    /// How long the service asked the caller to wait (`Retry-After`).
    pub retry_after: Option<std::time::Duration>,
    #[source]
    pub source: Option<Cause>,
}

fn code_prefix(code: &str) -> String {
    if code.is_empty() { String::new() } else { format!("{code}: ") }
}

fn details(status: Option<u16>, request_id: Option<&str>) -> String {
    match (status, request_id) {
        (Some(s), Some(id)) => format!(" (HTTP {s}, request id {id})"),
        (Some(s), None) => format!(" (HTTP {s})"),
        (None, Some(id)) => format!(" (request id {id})"),
        (None, None) => String::new(),
    }
}

impl ApiError {
    /// An error with a kind and the service's code and message; status, request id and
    /// `Retry-After` are added with the builder methods.
    pub fn new(service: &str, operation: &str, kind: ErrorKind, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            service: service.into(),
            operation: operation.into(),
            kind,
            status: None,
            code: code.into(),
            message: message.into(),
            request_id: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn status_opt(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }

    pub fn request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id.filter(|s| !s.is_empty());
        self
    }

    pub fn retry_after(mut self, after: Option<std::time::Duration>) -> Self {
        self.retry_after = after;
        self
    }

    pub fn source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }
}

/// A provider-side failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// A cloud or cluster API call failed.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// A wait ran out of time.
    #[error(transparent)]
    Wait(#[from] crate::wait::WaitError),
    /// The configuration handed to the provider is unusable (a bug in a spec → resource mapping).
    #[error("invalid configuration for {addr}: {message}")]
    Config { addr: ResourceAddr, message: String },
    /// Anything else, with its cause.
    #[error("{message}")]
    Other {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

impl From<ApiError> for ProviderError {
    fn from(e: ApiError) -> Self {
        ProviderError::Api(Box::new(e))
    }
}

impl ProviderError {
    /// A failure without a typed cause.
    pub fn other(message: impl Into<String>) -> Self {
        ProviderError::Other { message: message.into(), source: None }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProviderError::Api(e) => e.kind,
            ProviderError::Config { .. } => ErrorKind::Invalid,
            ProviderError::Wait(_) | ProviderError::Other { .. } => ErrorKind::Other,
        }
    }

    /// The API error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ProviderError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The service's error code, if an API answered with one.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|e| e.code.as_str()).filter(|c| !c.is_empty())
    }
}

/// Counters by `service:Operation` (API calls, retries, reconciled creates).
pub type ApiCalls = BTreeMap<String, u64>;

/// What a provider's calls have cost so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallStats {
    /// Requests sent, retries included (each is a real call), by `service:Operation`.
    pub calls: ApiCalls,
    /// Of those, the ones that repeated an earlier attempt after a throttle, a server error or a
    /// lost answer, by `service:Operation`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retries: ApiCalls,
    /// Creates whose outcome was unknown (or that met "already exists") and that found their
    /// resource in the cloud and adopted it instead of creating it again, by resource type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reconciled: ApiCalls,
}

impl CallStats {
    /// Adds another provider's counters.
    pub fn add(&mut self, other: &CallStats) {
        for (mine, theirs) in [
            (&mut self.calls, &other.calls),
            (&mut self.retries, &other.retries),
            (&mut self.reconciled, &other.reconciled),
        ] {
            for (k, v) in theirs {
                *mine.entry(k.clone()).or_default() += v;
            }
        }
    }

    /// What happened between `before` and this snapshot.
    pub fn since(&self, before: &CallStats) -> CallStats {
        fn diff(now: &ApiCalls, before: &ApiCalls) -> ApiCalls {
            now.iter()
                .filter_map(|(k, v)| {
                    let d = v - before.get(k).copied().unwrap_or(0);
                    (d > 0).then(|| (k.clone(), d))
                })
                .collect()
        }
        CallStats {
            calls: diff(&self.calls, &before.calls),
            retries: diff(&self.retries, &before.retries),
            reconciled: diff(&self.reconciled, &before.reconciled),
        }
    }

    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    pub fn total_retries(&self) -> u64 {
        self.retries.values().sum()
    }
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name used in messages, e.g. `aws`, `fake`.
    fn name(&self) -> &str;

    /// The resource types this provider owns.
    fn schemas(&self) -> Vec<TypeSchema>;

    async fn validate(&self, _req: ValidateRequest<'_>) -> ValidateResponse {
        ValidateResponse::default()
    }

    /// Batched refresh of all instances of one type.
    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError>;

    /// Planned attributes and replacement triggers. The default follows the schema: computed
    /// attributes keep their prior value unless the resource is replaced, and a changed
    /// `force_new` attribute forces replacement.
    fn plan(&self, req: PlanRequest<'_>) -> PlanResponse {
        default_plan(req)
    }

    async fn apply(&self, req: ApplyRequest) -> Result<ApplyResponse, ProviderError>;

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError>;

    /// Creates or updates several resources of a `batched` type at once; one result per request,
    /// in order. The default applies them one by one.
    async fn apply_batch(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.apply(r).await);
        }
        out
    }

    /// Deletes several resources of a `batched` type at once; one result per request, in order.
    async fn delete_batch(&self, reqs: Vec<DeleteRequest>) -> Vec<Result<(), ProviderError>> {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.delete(r).await);
        }
        out
    }

    /// Resolve a pending intent: the resource if it exists in the cloud, found by its owner tags
    /// naming this very address.
    async fn find_by_owner(&self, req: FindRequest) -> Result<Option<ReadResource>, ProviderError>;

    /// How the parts attribute `attr` ([`TypeSchema::parts`]) of the resource at `addr` changes
    /// from the attributes `before` (recorded) to `after` (planned, unknown values said as
    /// such; or seen by a refresh), part by part. The whole attributes are given: a provider
    /// may keep only digests of its parts and show their fields from what it renders of the
    /// rest. The default compares the map's entries ([`crate::diff::map_parts`]).
    fn parts(
        &self,
        _addr: &ResourceAddr,
        attr: &str,
        before: Option<&Attrs>,
        after: Option<&Attrs>,
    ) -> Vec<crate::PartChange> {
        crate::diff::map_parts(before.and_then(|b| b.get(attr)), after.and_then(|a| a.get(attr)))
    }

    /// The owner tags (labels) a resource at `addr` carries in this provider's cloud: the
    /// [`Ownership`](crate::Ownership) encoded under the cloud's rules for tag names and values.
    /// The encoding must never change for an address: it is how a crashed create is found again.
    fn owner_tags(&self, ownership: &crate::Ownership, addr: &ResourceAddr) -> BTreeMap<String, String> {
        ownership.tags(addr)
    }

    /// Attributes recorded under an older [`TypeSchema::version`], brought up to the current one.
    /// The default keeps them as they are (a type whose recorded shape never changed).
    fn upgrade(&self, req: UpgradeRequest<'_>) -> Result<Attrs, ProviderError> {
        Ok(req.attrs)
    }

    /// The provider's calls so far, for `plan`/`apply -o json` statistics and `-v`.
    fn stats(&self) -> CallStats {
        CallStats::default()
    }

    /// How the provider retries: said in `-v` and in statistics (e.g. "up to 120 s per call,
    /// back-off 0.2 s to 10 s with jitter").
    fn retry_budget(&self) -> Option<String> {
        None
    }
}

/// The schema-driven plan used by [`Provider::plan`] unless a provider overrides it.
pub fn default_plan(req: PlanRequest<'_>) -> PlanResponse {
    let mut planned = req.config.clone();
    let mut requires_replace = Vec::new();
    if let Some(prior) = req.prior {
        for a in req.schema.attributes.iter().filter(|a| a.force_new) {
            let new = planned.get(&a.name);
            let old = prior.get(&a.name);
            let same = match (new, old) {
                (Some(Value::Known(n)), Some(o)) => n == o,
                (None, None) => true,
                (None, Some(serde_json::Value::Null)) | (Some(Value::Known(serde_json::Value::Null)), None) => true,
                _ => false,
            };
            if !same {
                requires_replace.push(a.name.clone());
            }
        }
    }
    let replacing = req.prior.is_none() || !requires_replace.is_empty();
    for a in req.schema.attributes.iter().filter(|a| a.computed) {
        match req.prior.and_then(|p| p.get(&a.name)) {
            _ if replacing => {
                planned.insert(a.name.clone(), Value::Unknown);
            }
            Some(old) => {
                planned.insert(a.name.clone(), Value::Known(old.clone()));
            }
            // The cloud never reported it for this instance; that alone is no reason to update.
            None => {}
        }
    }
    PlanResponse { planned, requires_replace }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (token {})", self.name, self.client_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> TypeSchema {
        TypeSchema {
            rtype: ResourceType::new("t", "x").unwrap(),
            attributes: vec![
                AttrSchema::force_new("cidr"),
                AttrSchema::updatable("tag"),
                AttrSchema::computed("id"),
                AttrSchema::computed("ns"),
            ],
            create_before_destroy: false,
            protected_by_default: false,
            batched: false,
            version: 0,
            parts: None,
        }
    }

    #[test]
    fn default_plan_keeps_computed_values_and_flags_force_new() {
        let s = schema();
        let addr = ResourceAddr::must("t.x.a");
        let prior: Attrs = json!({"cidr": "10.0.0.0/16", "tag": "a", "id": "x-1"}).as_object().unwrap().clone();
        let mut config = BTreeMap::new();
        config.insert("cidr".to_string(), Value::str("10.0.0.0/16"));
        config.insert("tag".to_string(), Value::str("b"));
        let r = default_plan(PlanRequest { addr: &addr, schema: &s, prior: Some(&prior), config: &config });
        assert!(r.requires_replace.is_empty());
        assert_eq!(r.planned["id"], Value::str("x-1"));
        assert!(!r.planned.contains_key("ns"), "a computed value the cloud never reported is not planned as unknown");

        config.insert("cidr".to_string(), Value::str("10.1.0.0/16"));
        let r = default_plan(PlanRequest { addr: &addr, schema: &s, prior: Some(&prior), config: &config });
        assert_eq!(r.requires_replace, vec!["cidr".to_string()]);
        assert_eq!(r.planned["id"], Value::Unknown);
        assert_eq!(r.planned["ns"], Value::Unknown);

        let r = default_plan(PlanRequest { addr: &addr, schema: &s, prior: None, config: &config });
        assert!(r.requires_replace.is_empty());
        assert_eq!(r.planned["id"], Value::Unknown);
    }
}
