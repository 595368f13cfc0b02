//! What every Azure resource type shares, written once ([`ArmKind`]): ARM's resources are
//! addressed by deterministic ids and written with PUT (create or replace), so one generic kind
//! does refresh, create, update, delete and find for every type, and a type ([`ArmType`]) only
//! says where it lives, what body the tool manages and which attributes it reports.
//!
//! - **Refresh** lists each collection the recorded resources live in (one list per type per
//!   resource group or parent, following `nextLink`), never one GET per resource.
//! - **Create** never overwrites what it did not make: where a name may be someone else's (a
//!   top-level resource in a resource group the tool may have adopted) it looks first, and a
//!   resource that is there is "already exists" for the kit's create path, which adopts it only
//!   if its owner tags name this address. Types that support it send `If-None-Match: *`
//!   instead. A PUT of a deterministic name can make only that one resource, so a lost answer
//!   can never duplicate anything; the kit still looks before sending it again.
//! - **Update** is read-modify-write: the current resource, with the fields the tool manages
//!   replaced, goes back with `If-Match` on its etag, so fields set by Azure or by others (a
//!   VNet's subnets, a cluster's add-on profiles) survive, and a concurrent change fails loudly
//!   (412) instead of being lost.
//! - **Delete** waits for the operation; "already gone" is success. A resource the tool adopted
//!   is never deleted: its owner tags come off and it stays.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use matih_plans::*;
use matih_provider_kit::owner::{AZURE_TAG_ADDRESS, AZURE_TAG_ENVIRONMENT, AZURE_TAG_PLATFORM};
use matih_provider_kit::{Found, Kind, Listing};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::arm::{Arm, Cond, Op};

/// Everything a kind needs to talk to ARM.
#[derive(Clone)]
pub struct Ctx {
    pub arm: Arm,
    pub subscription: String,
    pub resource_group: String,
    pub location: String,
    /// The platform's DNS zone (`matih.ai`, `staging.matih.ai`).
    pub zone: String,
}

impl Ctx {
    /// `/subscriptions/{sub}/resourceGroups/{rg}`.
    pub fn group_id(&self) -> String {
        format!("/subscriptions/{}/resourceGroups/{}", self.subscription, self.resource_group)
    }

    /// `<group>/providers/<namespace>/<type>/<name>[/<child type>/<child name>…]` for a
    /// `name` of `parent/child` segments.
    pub fn id(&self, provider_path: &[&str], name: &str) -> String {
        resource_id(&self.group_id(), provider_path, name)
    }
}

/// `<group>/providers/<namespace>/<type>/<name>[/<child type>/<child name>…]`.
pub fn resource_id(group_id: &str, provider_path: &[&str], name: &str) -> String {
    let mut id = format!("{group_id}/providers/{}", provider_path[0]);
    for (t, n) in provider_path[1..].iter().zip(name.split('/')) {
        id.push_str(&format!("/{t}/{n}"));
    }
    id
}

/// Where a type keeps the owner tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    /// `tags` (tracked resources).
    Tags,
    /// `properties.metadata` (DNS record sets, which have no tags).
    Metadata,
    /// Nowhere: a child of one of the platform's own resources, or named from its address.
    Nowhere,
}

impl Marks {
    /// The marks of a resource as ARM returned it.
    pub fn of(self, j: &Json) -> BTreeMap<String, String> {
        string_map(match self {
            Marks::Tags => j.get("tags"),
            Marks::Metadata => j.pointer("/properties/metadata"),
            Marks::Nowhere => None,
        })
    }
}

/// Set on a resource the tool adopted instead of creating: it is never deleted by the tool.
pub const TAG_ADOPTED: &str = "matih_adopted";

/// One Azure resource type.
#[async_trait]
pub trait ArmType: Send + Sync + 'static {
    fn schema(&self) -> TypeSchema;
    /// The REST API version.
    fn api(&self) -> &'static str;
    /// The resource provider and the specification's operation group (`VirtualNetworks`).
    fn ops(&self) -> (&'static str, &'static str);
    /// The ARM id of the resource with this deterministic name (`parent/child` for children).
    fn id(&self, ctx: &Ctx, name: &str) -> String;
    /// The body the tool manages, without `tags` (added for tracked types) and `location`.
    fn body(&self, ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError>;
    /// Attributes from the resource as ARM reports it.
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError>;
    /// Resources with `location` and `tags`.
    fn tracked(&self) -> bool {
        true
    }
    /// Where the type keeps owner marks.
    fn marks(&self) -> Marks {
        if self.tracked() { Marks::Tags } else { Marks::Nowhere }
    }
    /// Whether the type keeps etags and honours `If-Match` (updates are conditional).
    fn conditional(&self) -> bool {
        false
    }
    /// Whether the type documents `If-None-Match: *` on PUT (creates are conditional instead of
    /// looking first).
    fn if_none_match(&self) -> bool {
        false
    }
    /// Whether a name may be someone else's resource (a create then looks first).
    fn shared_name(&self) -> bool {
        self.tracked()
    }
    /// Whether an existing resource of the name that no matih-infra platform owns is taken over
    /// (resource groups, DNS zones) rather than refused.
    fn adoptable(&self) -> bool {
        false
    }
    /// The id a create PUTs to: by default [`ArmType::id`] of the deterministic name; a type
    /// whose parent is configured (a role assignment's scope) builds it from the configuration,
    /// so the id keeps the casing ARM gave that parent.
    fn create_id(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<String, ProviderError> {
        Ok(self.id(ctx, &req.identity.name))
    }
    /// Where a create of this deterministic name may have landed, looked at in order by `find`
    /// (which has the name, not the configuration): by default [`ArmType::id`] alone; a record
    /// set may be of any type the tool writes.
    fn find_ids(&self, ctx: &Ctx, name: &str) -> Vec<String> {
        vec![self.id(ctx, name)]
    }
    /// The managed body as an update sends it (a cluster leaves its pools to the pool API).
    fn for_update(&self, _body: &mut Json) {}
    /// The resource as ARM returned it, made fit to send back (read-only fields a type's
    /// provider refuses or would act on are removed).
    fn clean(&self, _body: &mut Json) {}
    /// How long its operations may take.
    fn deadline(&self) -> Duration {
        Duration::from_secs(10 * 60)
    }
    /// Attributes that need another call (a cluster's endpoint and CA).
    async fn extra(&self, _ctx: &Ctx, _j: &Json, _attrs: &mut Attrs) -> Result<(), ProviderError> {
        Ok(())
    }
    /// The PUT and its wait; a type overrides it to do more around it (a role assignment waits
    /// for its principal, a cluster scales its system pool through the agent pool API).
    async fn put(
        &self,
        ctx: &Ctx,
        id: &str,
        body: &Json,
        cond: Cond<'_>,
        req: &ApplyRequest,
        _update: bool,
    ) -> Result<Json, ProviderError> {
        put(self, ctx, id, body, cond, req).await
    }
}

/// The PUT of a resource of type `t` and the wait for its operation, within `t`'s deadline.
pub async fn put<T: ArmType + ?Sized>(
    t: &T,
    ctx: &Ctx,
    id: &str,
    body: &Json,
    cond: Cond<'_>,
    req: &ApplyRequest,
) -> Result<Json, ProviderError> {
    let (svc, group) = t.ops();
    ctx.arm
        .put(
            id,
            t.api(),
            body,
            cond,
            op(svc, group, "CreateOrUpdate"),
            op(svc, group, "Get"),
            &req.status,
            t.deadline(),
        )
        .await
}

/// `<Group>_<Verb>` as a static operation name (interned once per name).
pub fn op(service: &'static str, group: &'static str, verb: &'static str) -> Op {
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<(&'static str, &'static str), &'static str>>> = OnceLock::new();
    let mut m = NAMES.get_or_init(Default::default).lock().unwrap();
    let operation = *m.entry((group, verb)).or_insert_with(|| Box::leak(format!("{group}_{verb}").into_boxed_str()));
    Op { service, operation }
}

pub use matih_provider_kit::cfg::{Cfg, attrs};

/// A string at a JSON pointer, or null.
pub fn at(j: &Json, pointer: &str) -> Json {
    j.pointer(pointer).cloned().unwrap_or(Json::Null)
}

/// `East US` and `eastus` are one location.
fn normal_location(l: &str) -> String {
    l.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

/// ARM compares ids without case.
pub fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The collection an id is in (`…/virtualNetworks/v/subnets/s` → `…/virtualNetworks/v/subnets`).
pub fn collection_of(id: &str) -> &str {
    id.rsplit_once('/').map_or(id, |(c, _)| c)
}

pub fn string_map(j: Option<&Json>) -> BTreeMap<String, String> {
    j.and_then(Json::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// Fields of `desired` written over `current`: objects merge key by key, anything else
/// (arrays included) is replaced.
pub fn merge(current: &mut Json, desired: &Json) {
    match (current, desired) {
        (Json::Object(c), Json::Object(d)) => {
            for (k, v) in d {
                match c.get_mut(k) {
                    Some(cur) if cur.is_object() && v.is_object() => merge(cur, v),
                    _ => {
                        c.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (c, d) => *c = d.clone(),
    }
}

fn is_matih_owned(tags: &BTreeMap<String, String>) -> bool {
    tags.keys().any(|k| k.eq_ignore_ascii_case(AZURE_TAG_PLATFORM))
}

/// The generic kind over an [`ArmType`].
pub struct ArmKind<T>(pub T);

impl<T: ArmType> ArmKind<T> {
    /// Whether the type keeps owner marks anywhere (tags, or a record set's metadata).
    fn has_marks(&self) -> bool {
        self.0.marks() != Marks::Nowhere
    }

    fn op(&self, verb: &'static str) -> Op {
        let (svc, group) = self.0.ops();
        op(svc, group, verb)
    }

    async fn found(&self, ctx: &Ctx, j: &Json) -> Result<Found, ProviderError> {
        let id = j.get("id").and_then(Json::as_str).unwrap_or_default().to_string();
        let mut a = self.0.attrs(j)?;
        self.0.extra(ctx, j, &mut a).await?;
        let marks = self.0.marks().of(j);
        if self.0.adoptable() {
            a.insert("adopted".into(), json!(marks.get(TAG_ADOPTED).is_some_and(|v| v == "true")));
        }
        Ok(Found::new(id, a, marks))
    }

    /// The full body of a new resource: location, owner marks, what the type manages.
    fn new_body(&self, ctx: &Ctx, req: &ApplyRequest, extra_tags: &[(&str, &str)]) -> Result<Json, ProviderError> {
        let cfg = Cfg::of(req);
        let mut body = self.0.body(ctx, &cfg)?;
        let mut marks: serde_json::Map<String, Json> =
            req.identity.owner_tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        for (k, v) in extra_tags {
            marks.insert(k.to_string(), json!(v));
        }
        if self.0.tracked() {
            body["location"] = json!(cfg.opt_str("location").unwrap_or(&ctx.location));
            // The type's own tags (a zone's description) with the owner marks.
            if let Some(own) = body.get("tags").and_then(Json::as_object) {
                for (k, v) in own {
                    marks.insert(k.clone(), v.clone());
                }
            }
            body["tags"] = Json::Object(marks);
        } else if self.0.marks() == Marks::Metadata {
            body["properties"]["metadata"] = Json::Object(marks);
        }
        Ok(body)
    }

    /// Read-modify-write of an existing resource.
    /// Read-modify-write with `If-Match`. A 412 means the resource changed since it was read —
    /// by someone else, or by this very write whose answer was lost and which the retry sent
    /// again — so it is read again and the tool's fields are written over the new state (a few
    /// times at most): others' changes to what the tool does not manage are never lost.
    async fn rewrite(
        &self,
        ctx: &Ctx,
        mut current: Json,
        req: &ApplyRequest,
        extra_tags: &[(&str, &str)],
    ) -> Result<ApplyResponse, ProviderError> {
        const READS: u32 = 3;
        let id = current.get("id").and_then(Json::as_str).unwrap_or_default().to_string();
        let mut reads = 1;
        loop {
            match self.rewrite_once(ctx, current, req, extra_tags).await {
                Err(e) if reads < READS && e.api().and_then(|a| a.status) == Some(412) => {
                    reads += 1;
                    current = match self.current(ctx, &id).await? {
                        Some(c) => c,
                        None => return Err(e),
                    };
                }
                r => return r,
            }
        }
    }

    async fn rewrite_once(
        &self,
        ctx: &Ctx,
        current: Json,
        req: &ApplyRequest,
        extra_tags: &[(&str, &str)],
    ) -> Result<ApplyResponse, ProviderError> {
        let id = current.get("id").and_then(Json::as_str).unwrap_or_default().to_string();
        let etag = current.get("etag").and_then(Json::as_str).map(str::to_string);
        let mut body = current.clone();
        let mut desired = self.new_body(ctx, req, extra_tags)?;
        // Someone else's tags stay (an adopted group's, a team's cost-centre tag).
        if self.0.tracked()
            && let (Some(have), Some(want)) = (current.get("tags").and_then(Json::as_object), desired.get_mut("tags"))
        {
            for (k, v) in have {
                if !k.to_ascii_lowercase().starts_with("matih_") {
                    want[k] = v.clone();
                }
            }
        }
        self.0.for_update(&mut desired);
        // A location cannot change: an existing resource (an adopted group) elsewhere is a
        // configuration matter, not something to send and see refused.
        if let (Some(have), Some(want)) = (current["location"].as_str(), desired["location"].as_str())
            && normal_location(have) != normal_location(want)
        {
            return Err(ProviderError::Config {
                addr: req.addr.clone(),
                message: format!(
                    "{id} is in {have}, not {want}; a location cannot change: set the spec's location to {have}, or use another name"
                ),
            });
        }
        if let Some(d) = desired.as_object_mut() {
            d.remove("location");
        }
        merge(&mut body, &desired);
        self.0.clean(&mut body);
        if let Some(p) = body.get_mut("properties").and_then(Json::as_object_mut) {
            p.remove("provisioningState");
        }
        let cond = match (&etag, self.0.conditional()) {
            (Some(e), true) => Cond::IfMatch(e),
            _ => Cond::None,
        };
        let j = self.0.put(ctx, &id, &body, cond, req, true).await?;
        let f = self.found(ctx, &j).await?;
        Ok(ApplyResponse::new(f.id, f.attrs))
    }

    async fn current(&self, ctx: &Ctx, id: &str) -> Result<Option<Json>, ProviderError> {
        ctx.arm.get(id, self.0.api(), self.op("Get")).await
    }
}

#[async_trait]
impl<T: ArmType> Kind<Ctx> for ArmKind<T> {
    fn schema(&self) -> TypeSchema {
        self.0.schema()
    }

    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        // A lone resource is one GET (its name is deterministic: no duplicate can hide under it).
        if let [one] = items {
            let found = match self.current(ctx, &one.id).await? {
                Some(j) => Some(self.found(ctx, &j).await?),
                None => None,
            };
            return Ok(match found {
                Some(mut f) if self.has_marks() => {
                    f.id = one.id.clone();
                    Listing::Owned(vec![f])
                }
                Some(f) => {
                    Listing::ById([(one.addr.clone(), ReadResource { id: one.id.clone(), attrs: f.attrs })].into())
                }
                None => Listing::ById(Default::default()),
            });
        }
        let mut collections: Vec<&str> = items.iter().map(|i| collection_of(&i.id)).collect();
        collections.sort_by_key(|c| c.to_ascii_lowercase());
        collections.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let mut listed = Vec::new();
        for c in collections {
            for j in ctx.arm.list(c, self.0.api(), "", self.op("List")).await? {
                listed.push(self.found(ctx, &j).await?);
            }
        }
        // Ids as recorded (ARM may answer in another case).
        for f in &mut listed {
            if let Some(i) = items.iter().find(|i| same_id(&i.id, &f.id)) {
                f.id = i.id.clone();
            }
        }
        if self.has_marks() {
            Ok(Listing::Owned(listed))
        } else {
            let by_id: HashMap<String, Found> = listed.into_iter().map(|f| (f.id.to_ascii_lowercase(), f)).collect();
            Ok(Listing::ById(
                items
                    .iter()
                    .filter_map(|i| {
                        let f = by_id.get(&i.id.to_ascii_lowercase())?;
                        Some((i.addr.clone(), ReadResource { id: i.id.clone(), attrs: f.attrs.clone() }))
                    })
                    .collect(),
            ))
        }
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let id = self.0.create_id(ctx, req)?;
        if self.0.shared_name()
            && !self.0.if_none_match()
            && let Some(current) = self.current(ctx, &id).await?
        {
            let marks = self.0.marks().of(&current);
            if self.0.adoptable() && !is_matih_owned(&marks) {
                return self.rewrite(ctx, current, req, &[(TAG_ADOPTED, "true")]).await;
            }
            // The kit's create path adopts it if its owner tags name this address.
            let (svc, group) = self.0.ops();
            return Err(ApiError::new(
                svc,
                &format!("{group}_CreateOrUpdate"),
                ErrorKind::Conflict,
                "AlreadyExists",
                format!("{id} already exists"),
            )
            .into());
        }
        let body = self.new_body(ctx, req, &[])?;
        let cond = if self.0.if_none_match() { Cond::IfNoneMatch } else { Cond::None };
        let r = self.0.put(ctx, &id, &body, cond, req, false).await;
        let j = match r {
            Err(e) if self.0.adoptable() && e.kind() == ErrorKind::Conflict => {
                // `If-None-Match` refused: someone's zone of this name exists.
                let Some(current) = self.current(ctx, &id).await? else { return Err(e) };
                if is_matih_owned(&self.0.marks().of(&current)) {
                    return Err(e);
                }
                return self.rewrite(ctx, current, req, &[(TAG_ADOPTED, "true")]).await;
            }
            r => r?,
        };
        let f = self.found(ctx, &j).await?;
        Ok(ApplyResponse::new(f.id, f.attrs))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let current = self.current(ctx, &prior.id).await?.ok_or_else(|| {
            ProviderError::from(ApiError::new(
                self.0.ops().0,
                self.op("Get").operation,
                ErrorKind::NotFound,
                "ResourceNotFound",
                format!("{} is gone", prior.id),
            ))
        })?;
        let adopted = prior.attrs.get("adopted").and_then(Json::as_bool) == Some(true);
        let extra: &[(&str, &str)] = if adopted { &[(TAG_ADOPTED, "true")] } else { &[] };
        self.rewrite(ctx, current, req, extra).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        if req.attrs.get("adopted").and_then(Json::as_bool) == Some(true) {
            // Not ours to delete: take our marks off and leave it.
            let Some(mut current) = self.current(ctx, &req.id).await? else { return Ok(()) };
            if let Some(tags) = current.get_mut("tags").and_then(Json::as_object_mut) {
                tags.retain(|k, _| {
                    ![AZURE_TAG_PLATFORM, AZURE_TAG_ENVIRONMENT, AZURE_TAG_ADDRESS, TAG_ADOPTED]
                        .iter()
                        .any(|t| k.eq_ignore_ascii_case(t))
                });
            }
            if let Some(p) = current.get_mut("properties").and_then(Json::as_object_mut) {
                p.remove("provisioningState");
            }
            let etag = current.get("etag").and_then(Json::as_str).map(str::to_string);
            let cond = match (&etag, self.0.conditional()) {
                (Some(e), true) => Cond::IfMatch(e),
                _ => Cond::None,
            };
            let (svc, group) = self.0.ops();
            ctx.arm
                .put(
                    &req.id,
                    self.0.api(),
                    &current,
                    cond,
                    op(svc, group, "CreateOrUpdate"),
                    op(svc, group, "Get"),
                    &req.status,
                    self.0.deadline(),
                )
                .await?;
            return Ok(());
        }
        ctx.arm.delete(&req.id, self.0.api(), Cond::None, self.op("Delete"), &req.status, self.0.deadline()).await
    }

    /// The resource at the id the deterministic name gives. A type with nowhere to keep owner
    /// marks (a subnet, an agent pool, a federated credential, a role assignment) is a child of
    /// one of this platform's own resources, or named by a GUID derived from its address: what
    /// is at that id is this address's, and is reported with its owner tags.
    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        for id in self.0.find_ids(ctx, &req.name) {
            let Some(j) = self.current(ctx, &id).await? else { continue };
            let mut f = self.found(ctx, &j).await?;
            if !self.has_marks() {
                f.tags = req.owner_tags.clone();
            }
            return Ok(vec![f]);
        }
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_what_the_tool_does_not_manage() {
        let mut cur = json!({"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [{"name": "a"}]}, "etag": "x"});
        merge(&mut cur, &json!({"properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}}));
        assert_eq!(cur["properties"]["subnets"][0]["name"], "a");
        assert_eq!(cur["properties"]["addressSpace"]["addressPrefixes"][0], "10.1.0.0/16");
    }

    #[test]
    fn ids_are_built_from_parent_child_names() {
        assert_eq!(
            resource_id(
                "/subscriptions/s/resourceGroups/rg",
                &["Microsoft.Network", "virtualNetworks", "subnets"],
                "v/nodes"
            ),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/nodes"
        );
        assert_eq!(collection_of("/a/b/c"), "/a/b");
        assert!(same_id("/Subscriptions/S", "/subscriptions/s"));
    }
}
