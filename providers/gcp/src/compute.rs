//! Compute Engine resources through one generic kind: a [`Collection`] says how its SDK client is
//! called (JSON in and out: the crate's models serialize as the REST JSON), a [`ComputeType`]
//! what the tool manages of it.
//!
//! - Refresh lists each collection once (regex filter on the platform's name prefix; owners read
//!   from labels and descriptions, so a filter a service ignores cannot widen what is adopted).
//! - A create carries the intent's token as `requestId` (compute runs a repeated request once),
//!   the owner in its description (and labels where the type has them), and waits on the
//!   operation. A lost answer is found again by its deterministic name.
//! - An update is read-modify-write: the fields the type manages are patched with the
//!   resource's `fingerprint`; a 412 (someone else's change, or this patch's own lost answer
//!   sent again) reads again, up to three times.
//!
//! Not here: aggregated lists across regions (the platform lives in one region), IAM on
//! compute resources.

use std::time::Duration;

use async_trait::async_trait;
use google_cloud_compute_v1::model;
use google_cloud_gax::error::Error as GaxError;
use matih_plans::*;
use matih_provider_kit::{Found, Kind, Listing, not_found_none};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::kind::*;

const SVC: &str = "compute";

/// How a compute collection is called.
#[async_trait]
pub trait Collection: Send + Sync {
    /// `networks`, `subnetworks`, …: the operation names' prefix.
    fn name(&self) -> &'static str;
    async fn insert(&self, ctx: &Ctx, body: Json, request_id: String) -> Result<Json, GaxError>;
    async fn get(&self, ctx: &Ctx, name: String) -> Result<Json, GaxError>;
    async fn list(&self, ctx: &Ctx, filter: String, page: Option<String>) -> Result<Json, GaxError>;
    async fn delete(&self, ctx: &Ctx, name: String, request_id: String) -> Result<Json, GaxError>;
    async fn patch(&self, ctx: &Ctx, name: String, body: Json, request_id: String) -> Result<Json, GaxError>;
    async fn operation(&self, ctx: &Ctx, op: String) -> Result<Json, GaxError>;
}

fn model_of<T: serde::de::DeserializeOwned>(v: Json) -> Result<T, GaxError> {
    serde_json::from_value(v).map_err(GaxError::ser)
}

/// A [`Collection`] over one compute client. `global` collections live in the project,
/// `regional` ones in the context's region.
macro_rules! collection {
    ($ty:ident, $label:literal, $client:ident, $model:ty, $set:ident, global, patch = $patch:tt) => {
        collection!(@impl $ty, $label, $client, $model, $set, |b, _ctx| b, $patch);
    };
    ($ty:ident, $label:literal, $client:ident, $model:ty, $set:ident, regional, patch = $patch:tt) => {
        collection!(@impl $ty, $label, $client, $model, $set, |b, ctx| b.set_region(ctx.region.clone()), $patch);
    };
    (@impl $ty:ident, $label:literal, $client:ident, $model:ty, $set:ident, |$b:ident, $c:ident| $scope:expr, $patch:tt) => {
        pub struct $ty;

        #[async_trait]
        impl Collection for $ty {
            fn name(&self) -> &'static str {
                $label
            }
            async fn insert(&self, ctx: &Ctx, body: Json, request_id: String) -> Result<Json, GaxError> {
                let body: $model = model_of(body)?;
                let $c = ctx;
                let $b = ctx.c.$client.insert().set_project(ctx.project.clone());
                let op = ($scope).set_body(body).set_request_id(request_id).send().await?;
                Ok(to_json(&op))
            }
            async fn get(&self, ctx: &Ctx, name: String) -> Result<Json, GaxError> {
                let $c = ctx;
                let $b = ctx.c.$client.get().set_project(ctx.project.clone());
                Ok(to_json(&($scope).$set(name).send().await?))
            }
            async fn list(&self, ctx: &Ctx, filter: String, page: Option<String>) -> Result<Json, GaxError> {
                let $c = ctx;
                let $b = ctx.c.$client.list().set_project(ctx.project.clone());
                let mut b = ($scope).set_filter(filter).set_max_results(500u32);
                if let Some(p) = page {
                    b = b.set_page_token(p);
                }
                Ok(to_json(&b.send().await?))
            }
            async fn delete(&self, ctx: &Ctx, name: String, request_id: String) -> Result<Json, GaxError> {
                let $c = ctx;
                let $b = ctx.c.$client.delete().set_project(ctx.project.clone());
                Ok(to_json(&($scope).$set(name).set_request_id(request_id).send().await?))
            }
            async fn patch(&self, ctx: &Ctx, name: String, body: Json, request_id: String) -> Result<Json, GaxError> {
                collection!(@patch ctx, name, body, request_id, $client, $model, $set, |$b, $c| $scope, $patch)
            }
            async fn operation(&self, ctx: &Ctx, op: String) -> Result<Json, GaxError> {
                let $c = ctx;
                let $b = ctx.c.$client.get_operation().set_project(ctx.project.clone());
                Ok(to_json(&($scope).set_operation(op).send().await?))
            }
        }
    };
    (@patch $ctx:ident, $name:ident, $body:ident, $rid:ident, $client:ident, $model:ty, $set:ident, |$b:ident, $c:ident| $scope:expr, yes) => {{
        let body: $model = model_of($body)?;
        let $c = $ctx;
        let $b = $ctx.c.$client.patch().set_project($ctx.project.clone());
        Ok(to_json(&($scope).$set($name).set_body(body).set_request_id($rid).send().await?))
    }};
    (@patch $ctx:ident, $name:ident, $body:ident, $rid:ident, $client:ident, $model:ty, $set:ident, |$b:ident, $c:ident| $scope:expr, no) => {{
        let _ = ($ctx, $body, $rid);
        Err(GaxError::binding(format!("{}: this collection has no patch; its fields force replacement", $name)))
    }};
}

collection!(Networks, "networks", networks, model::Network, set_network, global, patch = yes);
collection!(Firewalls, "firewalls", firewalls, model::Firewall, set_firewall, global, patch = yes);
collection!(Subnetworks, "subnetworks", subnetworks, model::Subnetwork, set_subnetwork, regional, patch = yes);
collection!(Routers, "routers", routers, model::Router, set_router, regional, patch = yes);
collection!(Addresses, "addresses", addresses, model::Address, set_address, regional, patch = no);

/// What the tool manages of one compute resource type.
#[async_trait]
pub trait ComputeType: Send + Sync {
    fn schema(&self) -> TypeSchema;
    fn collection(&self) -> &dyn Collection;
    /// The fields the tool manages, without `name`, `description` and `labels`.
    fn body(&self, ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError>;
    fn attrs(&self, ctx: &Ctx, j: &Json) -> Result<Attrs, ProviderError>;
    /// The type carries labels (owner labels go there too).
    fn labelled(&self) -> bool {
        false
    }
    /// The fields of [`ComputeType::body`] an update patches; empty: every field forces
    /// replacement and an update changes nothing.
    fn patched(&self) -> &'static [&'static str] {
        &[]
    }
    fn deadline(&self) -> Duration {
        Duration::from_secs(10 * 60)
    }
    /// Sets what PATCH cannot change (a method of its own) where `current` differs from `want`;
    /// the operation it started, if any.
    async fn set_other(
        &self,
        _ctx: &Ctx,
        _name: &str,
        _want: &Json,
        _current: &Json,
    ) -> Result<Option<Json>, ProviderError> {
        Ok(None)
    }
}

/// The kit's [`Kind`] for a [`ComputeType`].
pub struct ComputeKind<T>(pub T);

/// A compute operation's view: `DONE` with or without an error, else its status.
fn op_view(op: &Json, operation: &str) -> OpView {
    let status = op["status"].as_str().unwrap_or_default().to_string();
    let done = status == "DONE";
    let error = op["error"]["errors"].as_array().and_then(|e| e.first()).map(|e| {
        let http = op["httpErrorStatusCode"].as_u64().map(|s| s as u16);
        let code = e["code"].as_str().unwrap_or_default();
        let kind = match code {
            "RESOURCE_ALREADY_EXISTS" | "ALREADY_EXISTS" => ErrorKind::Conflict,
            "RESOURCE_NOT_FOUND" | "NOT_FOUND" => ErrorKind::NotFound,
            // Resource quota (addresses, CPUs) does not pass by waiting; rate limits and "in use" do.
            "RATE_LIMIT_EXCEEDED" | "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE" => ErrorKind::Throttled,
            _ => http.map_or(ErrorKind::Other, ErrorKind::from_status),
        };
        let message = e["message"].as_str().unwrap_or_default().to_string();
        ApiError::new(SVC, operation, kind, code, message).status_opt(http).into()
    });
    OpView { done, status: if status.is_empty() { "PENDING".into() } else { status }, error }
}

/// A UUID from the intent's token: compute takes `requestId` as a UUID.
fn request_id(token: &str) -> String {
    match uuid_like(token) {
        true => token.to_string(),
        false => {
            let d = sha2::Digest::finalize(sha2::Digest::chain_update(<sha2::Sha256 as sha2::Digest>::new(), token));
            let h = hex::encode(&d[..16]);
            format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
        }
    }
}

fn uuid_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl<T: ComputeType> ComputeKind<T> {
    fn op(&self, verb: &str) -> String {
        format!("{}.{verb}", self.0.collection().name())
    }

    /// Owner entries (labels and description) and the address a resource names.
    fn found(&self, ctx: &Ctx, j: &Json) -> Result<Found, ProviderError> {
        let (mut tags, address) = owner_of_description(j["description"].as_str().unwrap_or_default());
        if self.0.labelled() {
            tags.extend(string_map(j.get("labels")));
        }
        let mut f = Found::new(j["name"].as_str().unwrap_or_default(), self.0.attrs(ctx, j)?, tags);
        f.address = address;
        Ok(f)
    }

    async fn get(&self, ctx: &Ctx, name: &str) -> Result<Option<Json>, ProviderError> {
        let c = self.0.collection();
        matih_provider_kit::not_found_none(ctx.read(SVC, &self.op("get"), || c.get(ctx, name.to_string())).await)
    }

    /// Waits for `op` (as the mutation answered it) to be done.
    async fn wait(&self, ctx: &Ctx, op: &Json, verb: &str, status: &StatusSink) -> Result<(), ProviderError> {
        let name = op["name"].as_str().ok_or_else(|| crate::error::missing(SVC, &self.op(verb), "operation name"))?;
        let first = op_view(op, &self.op(verb));
        if first.done {
            return first.error.map_or(Ok(()), Err);
        }
        let c = self.0.collection();
        let what = format!("{} {}", self.op(verb), last_segment(op["targetLink"].as_str().unwrap_or(name)));
        wait_operation(&what, self.0.deadline(), status, || async {
            let j = ctx.read(SVC, "operations.get", || c.operation(ctx, name.to_string())).await?;
            Ok(op_view(&j, &self.op(verb)))
        })
        .await
    }

    async fn read_back(&self, ctx: &Ctx, name: &str) -> Result<ApplyResponse, ProviderError> {
        let j = self.get(ctx, name).await?.ok_or_else(|| {
            crate::error::missing(SVC, &self.op("get"), &format!("{name} after its operation finished"))
        })?;
        Ok(ApplyResponse::new(name, self.0.attrs(ctx, &j)?))
    }
}

#[async_trait]
impl<T: ComputeType> Kind<Ctx> for ComputeKind<T> {
    fn schema(&self) -> TypeSchema {
        self.0.schema()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        let c = self.0.collection();
        let filter = format!("name eq '{}.*'", ctx.prefix());
        let op = self.op("list");
        let items = all_pages("items", |p| {
            let (filter, op) = (filter.clone(), op.clone());
            async move { ctx.read(SVC, &op, || c.list(ctx, filter.clone(), p.clone())).await }
        })
        .await?;
        let found = items.iter().map(|i| self.found(ctx, i)).collect::<Result<Vec<_>, _>>()?;
        Ok(Listing::Owned(found))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let mut body = self.0.body(ctx, &Cfg::of(req))?;
        body["name"] = json!(req.identity.name);
        body["description"] = json!(owner_description(req));
        if self.0.labelled() {
            let mut labels = string_map(body.get("labels"));
            labels.extend(req.identity.owner_tags.clone());
            body["labels"] = json!(labels);
        }
        let c = self.0.collection();
        // An operation that failed for a passing reason (a referenced resource still being made,
        // a throttle) made nothing: the insert goes again under a new request id (the old one
        // would answer the failed operation).
        for attempt in 1u32.. {
            let token = &req.identity.client_token;
            let rid = if attempt == 1 { request_id(token) } else { request_id(&format!("{token}-{attempt}")) };
            let op = ctx.create(SVC, &self.op("insert"), || c.insert(ctx, body.clone(), rid.clone())).await?;
            match self.wait(ctx, &op, "insert", &req.status).await {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::Throttled && attempt < ctx.retry.max_attempts => {
                    tokio::time::sleep(ctx.retry.delay(attempt, None)).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.read_back(ctx, &req.identity.name).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let fields = self.0.patched();
        if fields.is_empty() {
            return Ok(ApplyResponse::new(prior.id.clone(), prior.attrs.clone()));
        }
        let want = self.0.body(ctx, &Cfg::of(req))?;
        let c = self.0.collection();
        for attempt in 1..=3 {
            let current = self
                .get(ctx, &prior.id)
                .await?
                .ok_or_else(|| ProviderError::other(format!("{} {} is gone", c.name(), prior.id)))?;
            let mut patch = json!({});
            for f in fields {
                if let Some(v) = want.get(*f) {
                    patch[*f] = v.clone();
                }
            }
            if let Some(fp) = current.get("fingerprint") {
                patch["fingerprint"] = fp.clone();
            }
            let rid = request_id(&format!("{}-{attempt}-{}", req.identity.client_token, uuid::Uuid::new_v4()));
            let sent =
                ctx.write(SVC, &self.op("patch"), || c.patch(ctx, prior.id.clone(), patch.clone(), rid.clone())).await;
            match sent {
                Ok(op) => {
                    self.wait(ctx, &op, "patch", &req.status).await?;
                    if let Some(op) = self.0.set_other(ctx, &prior.id, &want, &current).await? {
                        self.wait(ctx, &op, "set", &req.status).await?;
                    }
                    return self.read_back(ctx, &prior.id).await;
                }
                // A stale fingerprint: read again and patch over what is there now.
                Err(e) if e.kind() == ErrorKind::Conflict && attempt < 3 => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Deletes and waits; a delete whose operation fails because something still uses the
    /// resource (a subnet a cluster just let go of, a network GKE's own firewall rules still
    /// name) is sent again with back-off, under a new request id.
    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let c = self.0.collection();
        // A fresh request id per delete (compute answers a repeated one with its first operation
        // for an hour: a second destroy would be told the old delete finished).
        let call = uuid::Uuid::new_v4();
        for attempt in 1u32.. {
            let rid = request_id(&format!("{call}-{attempt}"));
            let sent = ctx.write(SVC, &self.op("delete"), || c.delete(ctx, req.id.clone(), rid.clone())).await;
            let Some(op) = not_found_none(sent)? else { return Ok(()) };
            match self.wait(ctx, &op, "delete", &req.status).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Throttled && attempt < ctx.retry.max_attempts => {
                    tokio::time::sleep(ctx.retry.delay(attempt, None)).await;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        match self.get(ctx, &req.name).await? {
            Some(j) => Ok(vec![self.found(ctx, &j)?]),
            None => Ok(vec![]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuids_and_stable() {
        let t = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        assert_eq!(request_id(t), t);
        let a = request_id("delete-matih-prod-vpc");
        assert!(uuid_like(&a), "{a}");
        assert_eq!(a, request_id("delete-matih-prod-vpc"));
    }

    #[test]
    fn a_done_operation_with_errors_is_its_first_error() {
        let op = json!({"name": "op-1", "status": "DONE", "httpErrorStatusCode": 409,
            "error": {"errors": [{"code": "RESOURCE_ALREADY_EXISTS", "message": "exists"}]}});
        let v = op_view(&op, "networks.insert");
        assert!(v.done);
        assert_eq!(v.error.unwrap().kind(), ErrorKind::Conflict);
        let v = op_view(&json!({"name": "op-2", "status": "RUNNING"}), "networks.insert");
        assert!(!v.done && v.error.is_none() && v.status == "RUNNING");
    }
}
