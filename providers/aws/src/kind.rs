//! One implementation per AWS resource type, and the helpers they share.
//!
//! A kind turns the cloud's view of a resource into attributes (`attrs`), and the same function
//! serves create, read and find, so what apply records and what refresh sees have one shape:
//! a difference between them is real drift, never an artefact of two code paths.

use std::collections::BTreeMap;

use async_trait::async_trait;
use matih_plans::*;
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::clients::Clients;

/// Who we are in the cloud: every resource we create carries these tags, and batched reads filter
/// on them.
#[derive(Debug, Clone)]
pub struct Owner {
    pub platform: String,
    pub environment: String,
}

pub const TAG_PLATFORM: &str = "matih:platform";
pub const TAG_ENVIRONMENT: &str = "matih:environment";
pub const TAG_ADDRESS: &str = "matih:address";

/// Everything a kind needs to talk to AWS.
pub struct Ctx<'a> {
    pub c: &'a Clients,
    pub owner: &'a Owner,
}

#[async_trait]
pub trait Kind: Send + Sync {
    fn schema(&self) -> TypeSchema;

    /// Every requested instance that still exists, in as few calls as the API allows.
    async fn read(
        &self,
        ctx: &Ctx<'_>,
        items: &[ReadItem],
    ) -> Result<BTreeMap<ResourceAddr, ReadResource>, ProviderError>;

    async fn create(&self, ctx: &Ctx<'_>, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError>;

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError>;

    async fn delete(&self, ctx: &Ctx<'_>, req: &DeleteRequest) -> Result<(), ProviderError>;

    /// The instance carrying these owner tags, for an interrupted create.
    async fn find(&self, ctx: &Ctx<'_>, req: &FindRequest) -> Result<Option<ReadResource>, ProviderError>;
}

/// Builds a schema: `f` forces replacement, `u` updatable, `c` computed.
pub fn schema(group: &str, kind: &str, attrs: &[(&str, char)], protected: bool) -> TypeSchema {
    TypeSchema {
        rtype: ResourceType::new(group, kind).expect("static type name"),
        attributes: attrs
            .iter()
            .map(|&(n, k)| match k {
                'f' => AttrSchema::force_new(n),
                'c' => AttrSchema::computed(n),
                _ => AttrSchema::updatable(n),
            })
            .collect(),
        create_before_destroy: false,
        protected_by_default: protected,
        batched: false,
    }
}

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
}

/// Attributes from `(key, value)` pairs.
pub fn attrs<const N: usize>(pairs: [(&str, Json); N]) -> Attrs {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The tags to put on a new resource: owner tags, `Name`, and the configured extra tags.
pub fn tags_for(req: &ApplyRequest, extra: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut t: BTreeMap<String, String> = req.identity.owner_tags.clone();
    t.insert("Name".into(), req.identity.name.clone());
    t.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    t.into_iter().collect()
}

/// Tags as recorded in attributes: without the owner tags and `Name` (those are the identity).
pub fn user_tags<'t>(tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> Json {
    let m: serde_json::Map<String, Json> = tags
        .into_iter()
        .filter(|(k, _)| !k.starts_with("matih:") && *k != "Name")
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Json::Object(m)
}

/// Matches described objects to requested items by id.
pub fn by_id(items: &[ReadItem], found: Vec<(String, Attrs)>) -> BTreeMap<ResourceAddr, ReadResource> {
    let mut index: BTreeMap<String, Attrs> = found.into_iter().collect();
    items
        .iter()
        .filter_map(|i| index.remove(&i.id).map(|attrs| (i.addr.clone(), ReadResource { id: i.id.clone(), attrs })))
        .collect()
}

pub fn other(message: impl Into<String>) -> ProviderError {
    ProviderError::Other { message: message.into(), source: None }
}

/// The first described object as a found resource (for `find`).
pub fn first(found: Vec<(String, Attrs)>) -> Option<ReadResource> {
    found.into_iter().next().map(|(id, attrs)| ReadResource { id, attrs })
}

/// The one described object as an apply result, or an error naming what was missing.
pub fn the_one(
    found: Vec<(String, Attrs)>,
    service: &str,
    operation: &str,
    what: &str,
) -> Result<ApplyResponse, ProviderError> {
    found
        .into_iter()
        .next()
        .map(|(id, attrs)| ApplyResponse { id, attrs })
        .ok_or_else(|| crate::error::missing(service, operation, what))
}

/// For kinds whose every configurable attribute forces replacement: an update changes nothing.
pub fn unchanged(prior: &ReadResource) -> Result<ApplyResponse, ProviderError> {
    Ok(ApplyResponse { id: prior.id.clone(), attrs: prior.attrs.clone() })
}
