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
    pub attrs: Attrs,
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadResource {
    pub id: String,
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
}

/// A provider-side failure.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The cloud API answered with an error.
    #[error("{service} {operation} failed: {code}: {message}")]
    Api { service: String, operation: String, code: String, message: String },
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
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Counters of API calls made, by `service:Operation`.
pub type ApiCalls = BTreeMap<String, u64>;

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

    /// Resolve a pending intent: the resource if it exists in the cloud, found by its owner tags.
    async fn find_by_owner(&self, req: FindRequest) -> Result<Option<ReadResource>, ProviderError>;

    /// API calls made so far, for `plan -o json` statistics and `-v`.
    fn api_calls(&self) -> ApiCalls {
        ApiCalls::new()
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
