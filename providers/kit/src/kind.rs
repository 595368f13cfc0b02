//! The type registry: a cloud writes one [`Kind`] per resource type and hands them, with its
//! context (SDK clients) and its [`OwnerCodec`], to a [`KitProvider`], which is the engine's
//! [`Provider`]. Dispatch, the create path ([`crate::create`]), owner checks on everything found,
//! orphans, batches, upgrades and statistics are done here once for every cloud.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use matih_plans::*;
use matih_state::Attrs;

use crate::create::{self, ReconcilePolicy};
use crate::{OwnerCodec, Recorder, RetryPolicy};

/// A resource as a cloud lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: String,
    pub attrs: Attrs,
    /// Its tags or labels as the cloud reports them (owner tags among them).
    pub tags: BTreeMap<String, String>,
    /// The address it belongs to, where the kind knows it other than from the tags (a GCP
    /// resource's description); otherwise the codec reads it from the tags.
    pub address: Option<ResourceAddr>,
}

impl Found {
    pub fn new(id: impl Into<String>, attrs: Attrs, tags: BTreeMap<String, String>) -> Self {
        Found { id: id.into(), attrs, tags, address: None }
    }
}

/// What a kind's read found.
#[derive(Debug, Clone)]
pub enum Listing {
    /// What the cloud listed for the platform's owner filter. Emulators (and some APIs) ignore
    /// filters, so the kit keeps only what carries the platform's owner tags; listed resources
    /// no requested item has are orphans.
    Owned(Vec<Found>),
    /// The requested instances that still exist, read one by one: for types no list call covers,
    /// whose names are unique in the cloud (so they cannot be duplicated).
    ById(BTreeMap<ResourceAddr, ReadResource>),
}

/// One resource type of a cloud. `C` is the cloud's context (its clients and settings).
#[async_trait]
pub trait Kind<C: Send + Sync>: Send + Sync {
    fn schema(&self) -> TypeSchema;

    /// The instances of this type that exist, in as few calls as the API allows.
    async fn read(&self, ctx: &C, items: &[ReadItem]) -> Result<Listing, ProviderError>;

    /// Makes the resource and everything it consists of. Owner tags go on in the create call
    /// itself where the API allows. It may fail half-way or with an unknown outcome: the kit
    /// then finds what it made (see [`Kind::find`]) and finishes it with [`Kind::update`], so
    /// every step after the first must be safe to run again on what exists.
    async fn create(&self, ctx: &C, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError>;

    /// Brings an existing resource (`prior`, as read from the cloud) to the configuration.
    async fn update(&self, ctx: &C, prior: &ReadResource, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError>;

    /// Deletes it; "already gone" is success.
    async fn delete(&self, ctx: &C, req: &DeleteRequest) -> Result<(), ProviderError>;

    /// Resources that may be the one `req` describes: by its deterministic name, owner tags or
    /// idempotency token, with their tags. The kit adopts one only if its owner tags name
    /// `req.addr`; the others are reported (a name taken by someone else's resource).
    async fn find(&self, ctx: &C, req: &FindRequest) -> Result<Vec<Found>, ProviderError>;

    /// Creates or updates several resources in as few calls as the API allows; `None` means
    /// one by one through the create path. Only for kinds whose writes are idempotent (upserts).
    async fn apply_batch(&self, _ctx: &C, _reqs: &[ApplyRequest]) -> Option<Vec<Result<ApplyResponse, ProviderError>>> {
        None
    }

    /// Deletes several resources in as few calls as the API allows; `None` means one by one.
    async fn delete_batch(&self, _ctx: &C, _reqs: &[DeleteRequest]) -> Option<Vec<Result<(), ProviderError>>> {
        None
    }

    /// Attributes recorded under an older schema version, in the current shape.
    fn upgrade(&self, req: UpgradeRequest<'_>) -> Result<Attrs, ProviderError> {
        Ok(req.attrs)
    }
}

/// Whose resources these are, and how the cloud writes that down.
pub struct Owners {
    pub ownership: Ownership,
    pub codec: Box<dyn OwnerCodec>,
}

impl Owners {
    pub fn names(&self, addr: &ResourceAddr, tags: &BTreeMap<String, String>) -> bool {
        self.codec.names(&self.ownership, addr, tags)
    }
}

/// A cloud's kinds as the engine's [`Provider`].
pub struct KitProvider<C> {
    name: String,
    ctx: C,
    kinds: HashMap<ResourceType, Box<dyn Kind<C>>>,
    owners: Owners,
    recorder: Recorder,
    retry: RetryPolicy,
    reconcile: ReconcilePolicy,
}

impl<C: Send + Sync> KitProvider<C> {
    /// `recorder` must be the one the context's transport counts calls and retries in.
    pub fn new(
        name: &str,
        ctx: C,
        kinds: Vec<Box<dyn Kind<C>>>,
        ownership: Ownership,
        codec: Box<dyn OwnerCodec>,
        recorder: Recorder,
        retry: RetryPolicy,
    ) -> Self {
        let mut map = HashMap::new();
        for k in kinds {
            let rtype = k.schema().rtype;
            assert!(map.insert(rtype.clone(), k).is_none(), "{name}: two kinds for {rtype}");
        }
        KitProvider {
            name: name.to_string(),
            ctx,
            kinds: map,
            owners: Owners { ownership, codec },
            recorder,
            retry,
            reconcile: ReconcilePolicy::default(),
        }
    }

    /// How lost creates are looked for (the default suits clouds whose lists lag a little).
    pub fn with_reconcile(mut self, policy: ReconcilePolicy) -> Self {
        self.reconcile = policy;
        self
    }

    pub fn ctx(&self) -> &C {
        &self.ctx
    }

    fn kind(&self, rtype: &ResourceType) -> Result<&dyn Kind<C>, ProviderError> {
        self.kinds
            .get(rtype)
            .map(|k| k.as_ref())
            .ok_or_else(|| ProviderError::other(format!("the {} provider has no resource type {rtype}", self.name)))
    }

    /// Splits a listing into the requested instances found and the platform's other resources.
    fn sort_listing(&self, rtype: &ResourceType, items: &[ReadItem], list: Vec<Found>) -> ReadResponse {
        let wanted: HashMap<&str, &ReadItem> = items.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut resp = ReadResponse::default();
        for f in list {
            if !self.owners.codec.owned_by(&self.owners.ownership, &f.tags) {
                continue;
            }
            match wanted.get(f.id.as_str()) {
                Some(item) => {
                    resp.found.insert(item.addr.clone(), ReadResource { id: f.id, attrs: f.attrs });
                }
                None => {
                    let address = f.address.clone().or_else(|| self.owners.codec.address_of(&f.tags));
                    resp.orphans.push(Orphan {
                        rtype: rtype.clone(),
                        id: f.id,
                        address,
                        attrs: f.attrs,
                        remedy: Remedy::default(),
                    });
                }
            }
        }
        resp
    }
}

#[async_trait]
impl<C: Send + Sync + 'static> Provider for KitProvider<C> {
    fn name(&self) -> &str {
        &self.name
    }

    fn schemas(&self) -> Vec<TypeSchema> {
        let mut v: Vec<TypeSchema> = self.kinds.values().map(|k| k.schema()).collect();
        v.sort_by(|a, b| a.rtype.cmp(&b.rtype));
        v
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        match self.kind(&req.rtype)?.read(&self.ctx, &req.items).await? {
            Listing::Owned(list) => Ok(self.sort_listing(&req.rtype, &req.items, list)),
            Listing::ById(found) => Ok(ReadResponse { found, ..ReadResponse::default() }),
        }
    }

    async fn apply(&self, req: ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let kind = self.kind(&req.rtype)?;
        match &req.prior {
            None => create::create(kind, &self.ctx, &req, &self.owners, &self.recorder, &self.reconcile).await,
            Some(prior) => kind.update(&self.ctx, prior, &req).await,
        }
    }

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        self.kind(&req.rtype)?.delete(&self.ctx, &req).await
    }

    async fn apply_batch(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        if let Some(first) = reqs.first()
            && reqs.iter().all(|r| r.rtype == first.rtype)
            && let Ok(kind) = self.kind(&first.rtype)
            && let Some(out) = kind.apply_batch(&self.ctx, &reqs).await
        {
            return out;
        }
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.apply(r).await);
        }
        out
    }

    async fn delete_batch(&self, reqs: Vec<DeleteRequest>) -> Vec<Result<(), ProviderError>> {
        if let Some(first) = reqs.first()
            && reqs.iter().all(|r| r.rtype == first.rtype)
            && let Ok(kind) = self.kind(&first.rtype)
            && let Some(out) = kind.delete_batch(&self.ctx, &reqs).await
        {
            return out;
        }
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.delete(r).await);
        }
        out
    }

    /// A create interrupted by a crash may still land after the crash (its request was in
    /// flight), and lists may lag behind it: "not there" is concluded only after the reconcile
    /// policy's looks, and not before the request's `settled_at`.
    async fn find_by_owner(&self, req: FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        let kind = self.kind(&req.rtype)?;
        let (looks, settle) = (self.reconcile.looks, self.reconcile.settle);
        let found = create::look(kind, &self.ctx, &req, &self.owners, looks, settle).await?;
        Ok(found.mine.map(|f| ReadResource { id: f.id, attrs: f.attrs }))
    }

    fn owner_tags(&self, ownership: &Ownership, addr: &ResourceAddr) -> BTreeMap<String, String> {
        self.owners.codec.encode(ownership, addr)
    }

    fn upgrade(&self, req: UpgradeRequest<'_>) -> Result<Attrs, ProviderError> {
        self.kind(req.rtype)?.upgrade(req)
    }

    fn stats(&self) -> CallStats {
        self.recorder.snapshot()
    }

    fn retry_budget(&self) -> Option<String> {
        Some(self.retry.describe())
    }
}
