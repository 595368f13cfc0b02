//! The desired resource graph: what the platform spec says should exist.
//!
//! Providers turn a platform spec into a [`DesiredGraph`]; the engine diffs it against state.
//! This module holds no cloud knowledge and never talks to a provider.

use std::collections::{BTreeMap, BTreeSet};

use matih_addrs::ResourceAddr;

use crate::value::{Ref, Value};

/// One resource the platform spec asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub addr: ResourceAddr,
    /// The deterministic name the resource is created with in the cloud.
    pub name: String,
    pub config: BTreeMap<String, Value>,
    /// Extra ordering dependencies beyond those implied by references in `config`.
    pub depends_on: Vec<ResourceAddr>,
    /// Overrides the type's default protection.
    pub protected: Option<bool>,
}

impl Desired {
    pub fn new(addr: ResourceAddr, name: impl Into<String>) -> Self {
        Self { addr, name: name.into(), config: BTreeMap::new(), depends_on: Vec::new(), protected: None }
    }

    /// Sets a configuration attribute (builder style).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.config.insert(key.to_string(), value.into());
        self
    }

    /// Overrides the type's default protection (builder style).
    pub fn protect(mut self, protected: bool) -> Self {
        self.protected = Some(protected);
        self
    }

    pub fn after(mut self, addr: &ResourceAddr) -> Self {
        self.depends_on.push(addr.clone());
        self
    }

    /// Every resource this one depends on: referenced ones and explicit ones, sorted, unique.
    pub fn dependencies(&self) -> Vec<ResourceAddr> {
        let mut refs = Vec::new();
        for v in self.config.values() {
            v.refs(&mut refs);
        }
        let set: BTreeSet<ResourceAddr> =
            refs.into_iter().map(|r: Ref| r.addr).chain(self.depends_on.iter().cloned()).collect();
        set.into_iter().collect()
    }
}

/// A named output of the platform (`cluster_endpoint`, `zone_name_servers`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    pub value: Value,
    pub sensitive: bool,
}

/// Everything the platform spec asks for on one cloud.
#[derive(Debug, Clone, Default)]
pub struct DesiredGraph {
    pub resources: BTreeMap<ResourceAddr, Desired>,
    pub outputs: BTreeMap<String, OutputSpec>,
    /// Said once in every plan (e.g. an end-of-life add-on).
    pub warnings: Vec<String>,
}

impl DesiredGraph {
    /// Adds a resource; a second resource at the same address is a bug in the spec mapping.
    pub fn add(&mut self, d: Desired) -> &ResourceAddr {
        let addr = d.addr.clone();
        let prev = self.resources.insert(addr.clone(), d);
        assert!(prev.is_none(), "two desired resources at {addr}");
        self.resources.get_key_value(&addr).unwrap().0
    }

    pub fn output(&mut self, name: &str, value: Value, sensitive: bool) {
        self.outputs.insert(name.to_string(), OutputSpec { value, sensitive });
    }
}
