//! The create path that never creates twice.
//!
//! A create whose outcome is unknown (a server error, a timeout, a connection reset after the
//! request was sent: the cloud may have done the work) is never simply sent again. The kit looks
//! first — by deterministic name, owner tags, idempotency token, whatever the kind's
//! [`Kind::find`] uses — and adopts what it finds if the owner tags name this very address,
//! finishing it with [`Kind::update`]. Only when nothing is there after a short settling time is
//! the create sent again (a bounded number of times). "Already exists" is handled the same way:
//! our own resource is adopted; a name taken by someone else's resource is an error naming it.
//!
//! Idempotency tokens are sent where an API has one (the intent's `client_token`), but nothing
//! here relies on them: emulators ignore them, and so may any service.

use std::time::Duration;

use matih_plans::*;

use crate::Recorder;
use crate::kind::{Found, Kind, Owners};

/// How hard the create path looks for a create whose answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcilePolicy {
    /// Creates sent at most for one resource (the first included).
    pub creates: u32,
    /// Looks before concluding that a create whose outcome is unknown made nothing.
    pub looks: u32,
    /// Wait between looks: lists can lag behind a create for a moment (EC2 is eventually
    /// consistent).
    pub settle: Duration,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        ReconcilePolicy { creates: 3, looks: 3, settle: Duration::from_millis(750) }
    }
}

/// What a look found.
#[derive(Debug, Default)]
pub struct Looked {
    /// The resource whose owner tags name the address (the lowest id if duplicates exist: the
    /// others are orphans the next plan reports).
    pub mine: Option<Found>,
    /// Candidates that are not ours (no owner tags, or another platform's or address's).
    pub others: Vec<Found>,
}

/// Asks the kind for candidates and keeps the one whose owner tags name `req.addr`.
pub async fn find_ours<C: Send + Sync>(
    kind: &dyn Kind<C>,
    ctx: &C,
    req: &FindRequest,
    owners: &Owners,
) -> Result<Looked, ProviderError> {
    let (mut mine, others): (Vec<Found>, Vec<Found>) =
        kind.find(ctx, req).await?.into_iter().partition(|f| owners.names(&req.addr, &f.tags));
    mine.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Looked { mine: mine.into_iter().next(), others })
}

/// [`find_ours`] up to `looks` times, `settle` apart, until it finds ours; and, while the
/// request's `settled_at` has not passed, for as long as that.
pub async fn look<C: Send + Sync>(
    kind: &dyn Kind<C>,
    ctx: &C,
    req: &FindRequest,
    owners: &Owners,
    looks: u32,
    settle: Duration,
) -> Result<Looked, ProviderError> {
    let mut n = 0;
    loop {
        let looked = find_ours(kind, ctx, req, owners).await?;
        n += 1;
        let pending = req.settled_at.and_then(|t| t.duration_since(std::time::SystemTime::now()).ok());
        if looked.mine.is_some() || (n >= looks.max(1) && pending.is_none()) {
            return Ok(looked);
        }
        tokio::time::sleep(pending.map_or(settle, |p| p.min(settle))).await;
    }
}

fn find_request(req: &ApplyRequest) -> FindRequest {
    FindRequest {
        addr: req.addr.clone(),
        rtype: req.rtype.clone(),
        name: req.identity.name.clone(),
        client_token: req.identity.client_token.clone(),
        owner_tags: req.identity.owner_tags.clone(),
        settled_at: None,
    }
}

/// The conflict error, explained: the name is held by a resource this tool does not own.
fn taken(err: ProviderError, req: &ApplyRequest, others: &[Found], owners: &Owners) -> ProviderError {
    let who: Vec<String> = others
        .iter()
        .map(|f| match owners.codec.address_of(&f.tags).or_else(|| f.address.clone()) {
            Some(a) if owners.codec.owned_by(&owners.ownership, &f.tags) => format!("{} (recorded for {a})", f.id),
            _ => format!(
                "{} (no owner tags of platform {} {})",
                f.id, owners.ownership.platform, owners.ownership.environment
            ),
        })
        .collect();
    let note = format!(
        "the name {} is taken by {}; matih-infra adopts only resources whose owner tags name {}: rename or remove the other resource",
        req.identity.name,
        who.join(", "),
        req.addr
    );
    match err {
        ProviderError::Api(mut a) => {
            a.message = format!("{}; {note}", a.message);
            ProviderError::Api(a)
        }
        other => ProviderError::Other { message: note, source: Some(std::sync::Arc::new(other)) },
    }
}

/// Creates `req` through `kind`, reconciling instead of re-sending when the outcome is unknown.
pub async fn create<C: Send + Sync>(
    kind: &dyn Kind<C>,
    ctx: &C,
    req: &ApplyRequest,
    owners: &Owners,
    rec: &Recorder,
    policy: &ReconcilePolicy,
) -> Result<ApplyResponse, ProviderError> {
    let find = find_request(req);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let err = match kind.create(ctx, req).await {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let conflict = err.kind() == ErrorKind::Conflict;
        if !(conflict || err.kind().outcome_unknown()) {
            return Err(err);
        }
        // "Already exists" is a fact now; a lost answer may take a moment to show in lists.
        let looks = if conflict { 1 } else { policy.looks };
        let looked = look(kind, ctx, &find, owners, looks, policy.settle).await?;
        if let Some(found) = looked.mine {
            rec.reconciled(&req.rtype.to_string());
            let prior = ReadResource { id: found.id.clone(), attrs: found.attrs };
            let mut resp = kind.update(ctx, &prior, req).await?;
            resp.warnings.push(format!(
                "the create's answer was lost or refused ({}); found {} in the cloud with this address's owner tags and adopted it",
                err.kind().as_str(),
                found.id
            ));
            return Ok(resp);
        }
        if conflict {
            return Err(if looked.others.is_empty() { err } else { taken(err, req, &looked.others, owners) });
        }
        if attempt >= policy.creates {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Listing;
    use crate::owner::{AwsTags, OwnerCodec};
    use async_trait::async_trait;
    use matih_state::Attrs;
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// A cloud of one type whose create calls can be scripted to fail after (or before) doing
    /// the work.
    #[derive(Default)]
    struct Cloud {
        made: Mutex<Vec<Found>>,
        /// Per create attempt: `Some((kind, did_the_work))` fails that way.
        script: Mutex<Vec<Option<(ErrorKind, bool)>>>,
        creates: Mutex<u32>,
        updates: Mutex<u32>,
    }

    struct Thing;

    fn own() -> Ownership {
        Ownership { platform: "matih".into(), environment: "prod".into() }
    }

    fn owners() -> Owners {
        Owners { ownership: own(), codec: Box::new(AwsTags) }
    }

    #[async_trait]
    impl Kind<Cloud> for Thing {
        fn schema(&self) -> TypeSchema {
            crate::schema("t", "thing").updatable(&["size"]).computed(&["id"]).build()
        }
        async fn read(&self, c: &Cloud, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
            Ok(Listing::Owned(c.made.lock().unwrap().clone()))
        }
        async fn create(&self, c: &Cloud, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
            *c.creates.lock().unwrap() += 1;
            let step = c.script.lock().unwrap().pop().flatten();
            let id = format!("t-{}", c.made.lock().unwrap().len() + 1);
            if step.is_none_or(|(_, did)| did) {
                let tags: BTreeMap<String, String> = req
                    .identity
                    .owner_tags
                    .clone()
                    .into_iter()
                    .chain([("Name".into(), req.identity.name.clone())])
                    .collect();
                c.made.lock().unwrap().push(Found::new(id.clone(), Attrs::new(), tags));
            }
            match step {
                Some((kind, _)) => Err(ApiError::new("t", "CreateThing", kind, "Boom", "lost").into()),
                None => Ok(ApplyResponse::new(id, Attrs::new())),
            }
        }
        async fn update(
            &self,
            c: &Cloud,
            prior: &ReadResource,
            _: &ApplyRequest,
        ) -> Result<ApplyResponse, ProviderError> {
            *c.updates.lock().unwrap() += 1;
            Ok(ApplyResponse::new(prior.id.clone(), json!({"size": 1}).as_object().unwrap().clone()))
        }
        async fn delete(&self, _: &Cloud, _: &DeleteRequest) -> Result<(), ProviderError> {
            Ok(())
        }
        async fn find(&self, c: &Cloud, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
            Ok(c.made.lock().unwrap().iter().filter(|f| f.tags.get("Name") == Some(&req.name)).cloned().collect())
        }
    }

    fn request(addr: &str) -> ApplyRequest {
        let addr = ResourceAddr::must(addr);
        ApplyRequest {
            rtype: addr.rtype.clone(),
            prior: None,
            config: serde_json::Map::new(),
            identity: Identity {
                name: "matih-prod-thing".into(),
                client_token: "tok".into(),
                owner_tags: AwsTags.encode(&own(), &addr),
            },
            status: StatusSink::default(),
            addr,
        }
    }

    fn fast() -> ReconcilePolicy {
        ReconcilePolicy { creates: 3, looks: 2, settle: Duration::from_millis(1) }
    }

    async fn run(cloud: &Cloud, addr: &str) -> Result<ApplyResponse, ProviderError> {
        create(&Thing, cloud, &request(addr), &owners(), &Recorder::default(), &fast()).await
    }

    fn script(cloud: &Cloud, steps: Vec<Option<(ErrorKind, bool)>>) {
        *cloud.script.lock().unwrap() = steps.into_iter().rev().collect();
    }

    #[tokio::test]
    async fn a_lost_answer_is_adopted_not_created_again() {
        for lost in [ErrorKind::Unavailable, ErrorKind::NoResponse] {
            let cloud = Cloud::default();
            script(&cloud, vec![Some((lost, true))]);
            let r = run(&cloud, "t.thing.a").await.unwrap();
            assert_eq!(r.id, "t-1");
            assert_eq!(cloud.made.lock().unwrap().len(), 1, "nothing made twice");
            assert_eq!((*cloud.creates.lock().unwrap(), *cloud.updates.lock().unwrap()), (1, 1));
            assert!(r.warnings[0].contains("adopted"), "{:?}", r.warnings);
        }
    }

    #[tokio::test]
    async fn a_request_that_never_arrived_is_created_again_after_looking() {
        let cloud = Cloud::default();
        script(&cloud, vec![Some((ErrorKind::NoResponse, false)), None]);
        let r = run(&cloud, "t.thing.a").await.unwrap();
        assert_eq!(r.id, "t-1");
        assert_eq!(cloud.made.lock().unwrap().len(), 1);
        assert_eq!(*cloud.creates.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn gives_up_after_the_bounded_number_of_creates() {
        let cloud = Cloud::default();
        script(&cloud, vec![Some((ErrorKind::Unavailable, false)); 5]);
        let e = run(&cloud, "t.thing.a").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(*cloud.creates.lock().unwrap(), 3);
        assert!(cloud.made.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn already_exists_adopts_ours_and_names_a_stranger() {
        // Ours: made by an earlier create whose answer never came.
        let cloud = Cloud::default();
        script(&cloud, vec![Some((ErrorKind::Conflict, false))]);
        let req = request("t.thing.a");
        let tags: BTreeMap<String, String> =
            req.identity.owner_tags.clone().into_iter().chain([("Name".into(), req.identity.name.clone())]).collect();
        cloud.made.lock().unwrap().push(Found::new("t-9", Attrs::new(), tags));
        assert_eq!(run(&cloud, "t.thing.a").await.unwrap().id, "t-9");

        // Someone else's, with the same name and no owner tags.
        let cloud = Cloud::default();
        script(&cloud, vec![Some((ErrorKind::Conflict, false))]);
        let stranger = BTreeMap::from([("Name".to_string(), "matih-prod-thing".to_string())]);
        cloud.made.lock().unwrap().push(Found::new("t-7", Attrs::new(), stranger));
        let e = run(&cloud, "t.thing.a").await.unwrap_err().to_string();
        assert!(e.contains("taken by t-7 (no owner tags") && e.contains("Boom"), "{e}");
        assert_eq!(*cloud.updates.lock().unwrap(), 0, "nothing adopted");
    }

    #[tokio::test]
    async fn only_a_resource_whose_tags_name_this_address_is_adopted() {
        // Another address's resource carries the same name (a bug elsewhere, or a renamed
        // address): it is not adopted for this one.
        let cloud = Cloud::default();
        script(&cloud, vec![Some((ErrorKind::Unavailable, false)), None]);
        let other = request("t.thing.b");
        let tags: BTreeMap<String, String> = other
            .identity
            .owner_tags
            .clone()
            .into_iter()
            .chain([("Name".into(), other.identity.name.clone())])
            .collect();
        cloud.made.lock().unwrap().push(Found::new("t-1", Attrs::new(), tags));
        let r = run(&cloud, "t.thing.a").await.unwrap();
        assert_eq!(r.id, "t-2", "created anew: t-1 belongs to t.thing.b");
    }

    #[tokio::test]
    async fn definitive_failures_are_returned_as_they_are() {
        let cloud = Cloud::default();
        script(&cloud, vec![Some((ErrorKind::Invalid, false))]);
        assert_eq!(run(&cloud, "t.thing.a").await.unwrap_err().kind(), ErrorKind::Invalid);
        assert_eq!(*cloud.creates.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn duplicates_adopt_the_lowest_id_and_the_registry_reports_the_rest_as_orphans() {
        use crate::kind::KitProvider;
        let cloud = Cloud::default();
        let req = request("t.thing.a");
        let tags: BTreeMap<String, String> =
            req.identity.owner_tags.clone().into_iter().chain([("Name".into(), req.identity.name.clone())]).collect();
        for id in ["t-2", "t-1"] {
            cloud.made.lock().unwrap().push(Found::new(id, Attrs::new(), tags.clone()));
        }
        let p = KitProvider::new(
            "test",
            cloud,
            vec![Box::new(Thing)],
            own(),
            Box::new(AwsTags),
            Recorder::default(),
            Default::default(),
        );
        let found = p
            .find_by_owner(FindRequest {
                addr: req.addr.clone(),
                rtype: req.rtype.clone(),
                name: req.identity.name.clone(),
                client_token: String::new(),
                owner_tags: req.identity.owner_tags.clone(),
                settled_at: None,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, "t-1");
        let read = p
            .read(ReadRequest {
                rtype: req.rtype.clone(),
                items: vec![ReadItem { addr: req.addr.clone(), id: "t-1".into(), attrs: Default::default() }],
            })
            .await
            .unwrap();
        assert_eq!(read.found[&req.addr].id, "t-1");
        assert_eq!(read.orphans.len(), 1);
        assert_eq!((read.orphans[0].id.as_str(), read.orphans[0].address.as_ref()), ("t-2", Some(&req.addr)));
    }
}
