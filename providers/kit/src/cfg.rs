//! Typed access to a resource's resolved configuration ([`Cfg`]) and attributes from pairs
//! ([`attrs`]): how every cloud's kinds read what the engine hands them. A missing or mistyped
//! value is a [`ProviderError::Config`] naming the address: a bug in the spec → resource
//! mapping, never user input.

use std::collections::BTreeMap;

use matih_plans::{ApplyRequest, ProviderError, ResourceAddr};
use matih_state::Attrs;
use serde_json::Value as Json;

fn bad(addr: &ResourceAddr, message: String) -> ProviderError {
    ProviderError::Config { addr: addr.clone(), message }
}

/// Typed access to a resolved configuration.
pub struct Cfg<'a> {
    pub addr: &'a ResourceAddr,
    pub map: &'a serde_json::Map<String, Json>,
}

impl<'a> Cfg<'a> {
    pub fn of(req: &'a ApplyRequest) -> Self {
        Cfg { addr: &req.addr, map: &req.config }
    }

    pub fn str(&self, k: &str) -> Result<&'a str, ProviderError> {
        self.map.get(k).and_then(Json::as_str).ok_or_else(|| bad(self.addr, format!("`{k}` must be a string")))
    }

    pub fn opt_str(&self, k: &str) -> Option<&'a str> {
        self.map.get(k).and_then(Json::as_str)
    }

    pub fn bool(&self, k: &str) -> Result<bool, ProviderError> {
        self.map.get(k).and_then(Json::as_bool).ok_or_else(|| bad(self.addr, format!("`{k}` must be true or false")))
    }

    pub fn u64(&self, k: &str) -> Result<u64, ProviderError> {
        self.map.get(k).and_then(Json::as_u64).ok_or_else(|| bad(self.addr, format!("`{k}` must be a whole number")))
    }

    pub fn strs(&self, k: &str) -> Result<Vec<String>, ProviderError> {
        let v =
            self.map.get(k).and_then(Json::as_array).ok_or_else(|| bad(self.addr, format!("`{k}` must be a list")))?;
        v.iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| bad(self.addr, format!("`{k}` must be a list of strings")))
            })
            .collect()
    }

    pub fn str_map(&self, k: &str) -> BTreeMap<String, String> {
        self.map
            .get(k)
            .and_then(Json::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default()
    }

    pub fn get(&self, k: &str) -> Option<&'a Json> {
        self.map.get(k)
    }

    /// A value that must be there (any JSON).
    pub fn need(&self, k: &str) -> Result<&'a Json, ProviderError> {
        self.map.get(k).ok_or_else(|| bad(self.addr, format!("`{k}` is missing")))
    }
}

/// Attributes from `(key, value)` pairs.
pub fn attrs<const N: usize>(pairs: [(&str, Json); N]) -> Attrs {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
