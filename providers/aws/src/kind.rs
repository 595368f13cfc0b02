//! What the AWS kinds share: the context they run in (clients, owner, retry policy) with one
//! way to call the SDK, and helpers for configuration, attributes and tags.
//!
//! A kind turns the cloud's view of a resource into attributes, and the same function serves
//! create, read and find, so what apply records and what refresh sees have one shape: a
//! difference between them is real drift, never an artefact of two code paths.

use std::collections::BTreeMap;
use std::future::Future;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use matih_plans::*;
use matih_provider_kit::owner::{TAG_ENVIRONMENT, TAG_PLATFORM};
use matih_provider_kit::{Call, RetryPolicy};
use serde_json::{Value as Json, json};

use crate::clients::Clients;

/// Everything a kind needs to talk to AWS.
#[derive(Clone)]
pub struct Ctx {
    pub c: Clients,
    pub owner: Ownership,
    pub retry: RetryPolicy,
}

impl Ctx {
    /// Sends one SDK request (`send` builds and sends it) with the kit's retries for `call`, and
    /// turns a failure into a typed provider error naming `service` and `operation`.
    pub async fn call<T, E, F, Fut>(
        &self,
        service: &str,
        operation: &str,
        call: Call,
        mut send: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        matih_provider_kit::retry::retry(&self.retry, &self.c.recorder, service, operation, call, || {
            let sent = send();
            async move { sent.await.map_err(|e| crate::error::api(service, operation, e)) }
        })
        .await
    }

    /// A read (Describe, List, Get): repeated after throttles, server errors and lost answers.
    pub async fn read<T, E, F, Fut>(&self, service: &str, operation: &str, send: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.call(service, operation, Call::Read, send).await
    }

    /// A write that leaves the same result when sent twice (attach, modify, put, delete).
    pub async fn write<T, E, F, Fut>(&self, service: &str, operation: &str, send: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.call(service, operation, Call::Idempotent, send).await
    }

    /// A call that makes something new each time: repeated only when it certainly did nothing.
    pub async fn create<T, E, F, Fut>(&self, service: &str, operation: &str, send: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.call(service, operation, Call::Create, send).await
    }

    /// Whether `tags` mark a resource of this platform and environment.
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(TAG_PLATFORM) == Some(&self.owner.platform)
            && tags.get(TAG_ENVIRONMENT) == Some(&self.owner.environment)
    }
}

pub use matih_provider_kit::cfg::{Cfg, attrs};

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

/// A map of all tags.
pub fn tag_map<'t>(tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> BTreeMap<String, String> {
    tags.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The one described object as an apply result, or an error naming what was missing.
pub fn the_one(
    found: Vec<matih_provider_kit::Found>,
    service: &str,
    operation: &str,
    what: &str,
) -> Result<ApplyResponse, ProviderError> {
    found
        .into_iter()
        .next()
        .map(|f| ApplyResponse::new(f.id, f.attrs))
        .ok_or_else(|| crate::error::missing(service, operation, what))
}

/// For kinds whose every configurable attribute forces replacement: an update changes nothing.
pub fn unchanged(prior: &ReadResource) -> Result<ApplyResponse, ProviderError> {
    Ok(ApplyResponse::new(prior.id.clone(), prior.attrs.clone()))
}

/// The idempotency token of one logical call (a client-generated UUID), so that the kit's
/// retries of that call send the same token.
pub fn token() -> String {
    uuid::Uuid::new_v4().to_string()
}
