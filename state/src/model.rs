//! The in-memory state model: what the tool believes exists, and what it was about to create.
//!
//! This module is plain data. How it is laid out on disk lives in `format`, how it is locked and
//! written lives in `store`.

use std::collections::BTreeMap;
use std::sync::Arc;

use matih_addrs::{ResourceAddr, ResourceType};
use serde::{Deserialize, Serialize};

/// Attribute values as recorded after apply. State holds only known values: nothing in state is
/// "(known after apply)".
pub type Attrs = serde_json::Map<String, serde_json::Value>;

/// Everything recorded for one environment on one cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Incremented by the store on every write.
    pub serial: u64,
    /// Fixed when the state is first created; a plan made against another lineage is refused.
    pub lineage: String,
    pub resources: BTreeMap<ResourceAddr, ResourceState>,
    /// The intent journal: creates that were started but whose result is not recorded yet.
    pub intents: BTreeMap<ResourceAddr, Intent>,
    /// Old instances replaced create-before-destroy whose delete has not finished yet. The next
    /// plan deletes them.
    pub deposed: Vec<Deposed>,
    pub outputs: BTreeMap<String, Output>,
    /// The attribute schema version each resource type was recorded with, for types whose
    /// provider has moved past version 0. A missing type is version 0.
    pub schema_versions: BTreeMap<ResourceType, u32>,
}

impl State {
    /// A brand-new, empty state with a fresh lineage.
    pub fn new() -> Self {
        State {
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            resources: BTreeMap::new(),
            intents: BTreeMap::new(),
            deposed: Vec::new(),
            outputs: BTreeMap::new(),
            schema_versions: BTreeMap::new(),
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// One managed resource as last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    pub rtype: ResourceType,
    /// The cloud's own identifier (`vpc-0abc…`, a zone id, an object UID).
    pub id: String,
    /// Shared, not copied, between the state as recorded and as refreshed when nothing moved
    /// (at 10,000 tenants a copy of every resource's attributes is over 100 MB); write through
    /// [`Arc::make_mut`].
    #[serde(with = "shared")]
    pub attrs: Arc<Attrs>,
    /// Addresses this resource depended on when it was created or last updated; used to order
    /// deletes after the resource has left the platform spec.
    pub dependencies: Vec<ResourceAddr>,
    /// The ownership tags the resource carries in the cloud (`matih:platform`, `matih:address`, …).
    pub owner_tags: BTreeMap<String, String>,
    /// Protected resources (clusters, networks, zones, reserved addresses) are never replaced or
    /// deleted without an explicit `--allow-replace`.
    pub protected: bool,
}

/// What was recorded just before asking a provider to create something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub rtype: ResourceType,
    /// The deterministic name the resource is created with.
    pub name: String,
    /// Idempotency token handed to the provider (where the cloud honours one).
    pub client_token: String,
    pub owner_tags: BTreeMap<String, String>,
    pub dependencies: Vec<ResourceAddr>,
    pub protected: bool,
    /// RFC 3339 time the intent was recorded.
    pub recorded_at: String,
}

/// A named output (`cluster_endpoint`, `zone_name_servers`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub value: serde_json::Value,
    /// Sensitive outputs are stored but printed as `(sensitive)` unless asked for by name.
    #[serde(default)]
    pub sensitive: bool,
}

/// An old instance kept after its replacement was created, until it is deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deposed {
    pub addr: ResourceAddr,
    pub resource: ResourceState,
}

/// `Arc<Attrs>` as the attributes themselves.
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Attrs;

    pub fn serialize<S: Serializer>(attrs: &Arc<Attrs>, s: S) -> Result<S::Ok, S::Error> {
        attrs.as_ref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Attrs>, D::Error> {
        Attrs::deserialize(d).map(Arc::new)
    }
}
