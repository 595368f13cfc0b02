//! A plan is a value: the changes, why (for display only), and the state serial, lineage and
//! platform spec hash it was made against. `plan -o json` prints this document; the human text is
//! rendered from it; `plan --out` saves it and `apply FILE` applies exactly it.

use std::collections::BTreeMap;

use matih_addrs::{ResourceAddr, ResourceType};
use serde::{Deserialize, Serialize};

use crate::diff::AttrChange;
use crate::provider::{ApiCalls, Orphan};
use crate::value::Value;

/// Version of the plan document. Bump on any incompatible change; readers refuse other versions.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// What a change does. Apply branches on this and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Delete then create (the cloud does not allow two at once).
    Replace,
    /// Create the new one, move references to it, then delete the old one.
    CreateBeforeDestroy,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::CreateBeforeDestroy => "+/-",
            Action::Delete => "-",
        }
    }

    pub fn is_replace(self) -> bool {
        matches!(self, Action::Replace | Action::CreateBeforeDestroy)
    }

    /// The verb used in progress and summaries.
    pub fn verb(self) -> &'static str {
        match self {
            Action::NoOp => "unchanged",
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace | Action::CreateBeforeDestroy => "replace",
            Action::Delete => "delete",
        }
    }
}

/// Why a change is proposed. Display only: apply never looks at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Reason {
    /// In the platform spec, not in state.
    New,
    /// Recorded in state but deleted outside matih-infra.
    DeletedOutside,
    /// The platform spec changed.
    SpecChanged,
    /// The resource was changed outside matih-infra; apply puts it back.
    DriftRepair,
    /// Attributes that cannot be updated in place changed.
    ForcedReplace {
        attributes: Vec<String>,
    },
    /// In state, no longer in the platform spec.
    RemovedFromSpec,
    /// The old instance of a create-before-destroy replacement.
    Deposed,
    /// `destroy` was asked for.
    Destroy,
    Unchanged,
}

/// One resource's proposed change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: ResourceAddr,
    #[serde(rename = "type")]
    pub rtype: ResourceType,
    pub action: Action,
    pub reason: Reason,
    pub protected: bool,
    /// True for the old instance of a create-before-destroy replacement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deposed: bool,
    /// The attributes that change (empty for deletes and no-ops), but for the parts attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttrChange>,
    /// The parts that change, for a type with parts ([`crate::TypeSchema::parts`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartChange>,
    /// What apply sends to the provider: configuration with references still unresolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, Value>>,
    /// The deterministic cloud name (creates and replaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Resources this one depends on after apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ResourceAddr>,
}

/// A resource that changed outside matih-infra since the last apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub address: ResourceAddr,
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttrChange>,
    /// How its parts changed (a Kubernetes add-on's objects), when its type has parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartChange>,
}

/// One part of a resource that changes: an object of a Kubernetes add-on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartChange {
    /// `create`, `update` or `delete`.
    pub action: Action,
    /// `NetworkPolicy matih-data-plane/allow-to-kafka-tls`.
    pub name: String,
    /// Where the part comes from when the tool does not write it itself: an upstream release
    /// with its pinned digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// An update's changed fields, as paths within the part (`spec.egress[0].ports[0].port`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<AttrChange>,
    /// What else to know (`changed outside matih-infra`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A change the replacement guard stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blocked {
    pub address: ResourceAddr,
    pub action: Action,
    /// The attributes forcing a replacement (empty for a delete).
    pub forced_by: Vec<String>,
}

/// An output's value after apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputChange {
    pub name: String,
    pub action: Action,
    pub sensitive: bool,
    /// The planned value with references resolved as far as known (hidden when sensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// What apply evaluates (absent for removed outputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Apply,
    Destroy,
}

/// The state a plan was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRef {
    pub serial: u64,
    pub lineage: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
    pub drifted: usize,
}

impl Summary {
    /// Counts changes by action.
    pub fn count(changes: &[Change], drifted: usize) -> Summary {
        let mut s = Summary { drifted, ..Summary::default() };
        for c in changes {
            match c.action {
                Action::NoOp => s.unchanged += 1,
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Replace | Action::CreateBeforeDestroy => s.replace += 1,
                Action::Delete => s.delete += 1,
            }
        }
        s
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    pub resources_in_state: usize,
    pub refresh_ms: u64,
    pub plan_ms: u64,
    /// API calls made while refreshing, by `service:Operation`.
    pub api_calls: ApiCalls,
    /// Of those, the ones that repeated an earlier attempt (throttled, server error, no answer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retries: ApiCalls,
    /// How the providers retry, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_budget: Vec<String>,
    /// How long refresh waited on each resource type's read (its slowest, with
    /// `--refresh per-resource`), by type: which reads a refresh waits for. Types are read at
    /// the same time, so these overlap.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refresh_ms_by_type: BTreeMap<String, u64>,
}

/// The plan document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub tool_version: String,
    pub operation: Operation,
    pub cloud: String,
    pub environment: String,
    pub state: StateRef,
    pub spec_hash: String,
    #[serde(default)]
    pub warnings: Vec<String>,
    pub drift: Vec<Drift>,
    /// Resources carrying the platform's owner tags that state does not know. The plan does not
    /// act on them; `state import` adopts one, `destroy --prune-orphans` deletes them.
    #[serde(default)]
    pub orphans: Vec<Orphan>,
    /// Every resource, no-ops included, sorted by address (deposed instances after their current one).
    pub changes: Vec<Change>,
    pub outputs: Vec<OutputChange>,
    /// Changes the replacement guard stopped; apply refuses a plan with any.
    pub blocked: Vec<Blocked>,
    pub summary: Summary,
    pub statistics: Statistics,
}

impl Plan {
    /// Narrows the plan to the targeted resources and the changes they depend on (transitively):
    /// every other change becomes a no-op and is returned, so the caller can say what it left for
    /// a later apply. The summary is recounted.
    pub fn target(&mut self, wanted: impl Fn(&ResourceAddr) -> bool) -> Vec<ResourceAddr> {
        let by_addr: BTreeMap<&ResourceAddr, &Change> = self.changes.iter().map(|c| (&c.address, c)).collect();
        let mut keep: std::collections::BTreeSet<ResourceAddr> = std::collections::BTreeSet::new();
        let mut todo: Vec<&ResourceAddr> = self
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp && wanted(&c.address))
            .map(|c| &c.address)
            .collect();
        while let Some(a) = todo.pop() {
            if !keep.insert(a.clone()) {
                continue;
            }
            if let Some(c) = by_addr.get(a) {
                todo.extend(c.depends_on.iter().filter(|d| by_addr.get(d).is_some_and(|dc| dc.action != Action::NoOp)));
            }
        }
        let mut left = Vec::new();
        for c in self.changes.iter_mut().filter(|c| c.action != Action::NoOp && !keep.contains(&c.address)) {
            left.push(c.address.clone());
            c.action = Action::NoOp;
            c.attributes.clear();
            c.parts.clear();
        }
        self.summary = Summary::count(&self.changes, self.summary.drifted);
        left
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp) || self.outputs.iter().any(|o| o.action != Action::NoOp)
    }
}
