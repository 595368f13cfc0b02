//! Cloud DNS: the platform's public managed zone (created, or adopted when a zone of that DNS
//! name exists: an adopted zone only loses our labels on destroy), the A records that point
//! names at the ingress controllers' static IPs, and the NS delegation of an environment's zone
//! in its parent zone.
//!
//! Records are batched: the record changes of one apply go out as one `changes.create` per zone
//! — deletions of the record sets as they are now plus additions of the wanted ones, applied by
//! Cloud DNS all or nothing — and the change is waited on until `done`. A deletion that no longer
//! matches (someone changed the record in between, or this change's own lost answer was sent
//! again) is refused with 412: the zone is read again and the change rebuilt, up to three times.
//! A refresh lists each zone's record sets once.
//!
//! Record sets carry no labels: a record's owner is its name in the platform's zone, which only
//! this tool writes. Not here: private zones, DNSSEC, routing policies (left alone, never
//! matched).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use google_cloud_dns_v1::model;
use matih_plans::*;
use matih_provider_kit::owner::{LABEL_ADDRESS, LABEL_ENVIRONMENT, LABEL_PLATFORM};
use matih_provider_kit::{Found, Kind, Listing, gone_ok, not_found_none, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::kind::*;

const SVC: &str = "dns";
const CHANGE_WAIT: Duration = Duration::from_secs(5 * 60);
/// Marks a zone the tool adopted rather than created.
const LABEL_ADOPTED: &str = "matih-adopted";

pub fn kinds() -> Vec<Box<dyn Kind<Ctx>>> {
    vec![Box::new(Zone), Box::new(Record), Box::new(Delegation)]
}

/// `matih.ai` → `matih.ai.`.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

/// `matih.ai.` → `matih.ai`.
fn bare(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// The managed zone name the tool gives a DNS name (`staging.matih.ai` → `staging-matih-ai`):
/// letters, digits and `-` only.
/// It starts with a letter (`z-` before a domain that starts with a digit) and has at most 63
/// characters (a longer one keeps its start and ends in a digest of the whole).
pub fn zone_resource_name(dns_name: &str) -> String {
    let mut name = bare(dns_name).replace('.', "-").to_ascii_lowercase();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name = format!("z-{name}");
    }
    if name.len() > 63 {
        let digest = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(name.as_bytes())[..4]);
        let head: String = name.chars().take(63 - 1 - digest.len()).collect();
        name = format!("{}-{digest}", head.trim_end_matches('-'));
    }
    name
}

// ---------------------------------------------------------------------------------------------

pub struct Zone;

impl Zone {
    fn attrs(z: &Json, adopted: bool) -> Attrs {
        attrs([
            ("id", z["name"].clone()),
            ("name", json!(bare(z["dnsName"].as_str().unwrap_or_default()))),
            ("comment", z["description"].clone()),
            // Bare, as every cloud's zone reports them (a delegation writes them back with dots).
            (
                "name_servers",
                json!(
                    z["nameServers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Json::as_str)
                        .map(bare)
                        .collect::<Vec<_>>()
                ),
            ),
            ("adopted", json!(adopted)),
        ])
    }

    fn found(z: &Json) -> Found {
        let tags = string_map(z.get("labels"));
        let adopted = tags.get(LABEL_ADOPTED).is_some_and(|v| v == "true");
        Found::new(z["name"].as_str().unwrap_or_default(), Self::attrs(z, adopted), tags)
    }

    /// Public zones named `dns_name` in the project.
    async fn named(ctx: &Ctx, dns_name: &str) -> Result<Vec<Json>, ProviderError> {
        let zones = all_pages("managedZones", |p| async move {
            let list = || {
                let b = ctx.c.zones.list().set_project(ctx.project.clone()).set_dns_name(fqdn(dns_name));
                match p.clone() {
                    Some(p) => b.set_page_token(p),
                    None => b,
                }
                .send()
            };
            ctx.read(SVC, "managedZones.list", list).await.map(|r| to_json(&r))
        })
        .await?;
        Ok(zones.into_iter().filter(|z| z["visibility"] != "private").collect())
    }

    async fn get(ctx: &Ctx, zone: &str) -> Result<Option<Json>, ProviderError> {
        let r = ctx
            .read(SVC, "managedZones.get", || {
                ctx.c.zones.get().set_project(ctx.project.clone()).set_managed_zone(zone.to_string()).send()
            })
            .await;
        Ok(not_found_none(r)?.map(|z| to_json(&z)))
    }

    /// Sets the zone's labels (ours next to whatever else is there) and description.
    async fn patch(
        ctx: &Ctx,
        zone: &Json,
        labels: BTreeMap<String, String>,
        description: &str,
        status: &StatusSink,
    ) -> Result<Json, ProviderError> {
        let name = zone["name"].as_str().unwrap_or_default().to_string();
        let body: model::ManagedZone =
            from_json("managed zone", json!({"labels": labels, "description": description}))?;
        let op = ctx
            .write(SVC, "managedZones.patch", || {
                ctx.c
                    .zones
                    .patch()
                    .set_project(ctx.project.clone())
                    .set_managed_zone(name.clone())
                    .set_body(body.clone())
                    .send()
            })
            .await?;
        let op = to_json(&op);
        if op["status"] != "done" {
            let id = op["id"].as_str().unwrap_or_default().to_string();
            wait_operation(&format!("managedZones.patch {name}"), CHANGE_WAIT, status, || async {
                let o = ctx
                    .read(SVC, "managedZoneOperations.get", || {
                        ctx.c
                            .zones
                            .get_operation()
                            .set_project(ctx.project.clone())
                            .set_managed_zone(name.clone())
                            .set_operation(id.clone())
                            .send()
                    })
                    .await?;
                Ok(dns_status(&to_json(&o)))
            })
            .await?;
        }
        Self::get(ctx, &name)
            .await?
            .ok_or_else(|| crate::error::missing(SVC, "managedZones.get", "zone after its patch"))
    }
}

#[async_trait]
impl Kind<Ctx> for Zone {
    fn schema(&self) -> TypeSchema {
        schema("dns", "zone")
            .force_new(&["name"])
            .updatable(&["comment"])
            .computed(&["id", "name_servers", "adopted"])
            .protected()
            .build()
    }

    /// Every public zone of the recorded names: ours, duplicates (orphans) and others.
    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        let mut names: Vec<String> =
            items.iter().filter_map(|i| i.attrs.get("name").and_then(Json::as_str).map(str::to_string)).collect();
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            out.extend(Self::named(ctx, &name).await?.iter().map(Self::found));
        }
        Ok(Listing::Owned(out))
    }

    /// Creates the zone, or adopts the one public zone that already has its DNS name.
    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let name = cfg.str("name")?;
        let comment = cfg.opt_str("comment").unwrap_or_default();
        match Self::named(ctx, name).await?.as_slice() {
            [] => {}
            [z] => {
                let mut labels = string_map(z.get("labels"));
                labels.extend(req.identity.owner_tags.clone());
                // A zone this tool made after a lost answer carries our labels already.
                let ours = ctx.owns(&string_map(z.get("labels")));
                if !ours {
                    labels.insert(LABEL_ADOPTED.into(), "true".into());
                }
                let z = Zone::patch(ctx, z, labels, comment, &req.status).await?;
                return Ok(ApplyResponse::new(z["name"].as_str().unwrap_or_default(), Self::attrs(&z, !ours)));
            }
            many => {
                let ids: Vec<&str> = many.iter().filter_map(|z| z["name"].as_str()).collect();
                return Err(ProviderError::other(format!(
                    "{}: {} public managed zones serve {name} ({}); delete the extra ones so one can be adopted",
                    req.addr,
                    many.len(),
                    ids.join(", ")
                )));
            }
        }
        let body: model::ManagedZone = from_json(
            "managed zone",
            json!({
                "name": req.identity.name,
                "dnsName": fqdn(name),
                "description": comment,
                "visibility": "public",
                "labels": req.identity.owner_tags,
            }),
        )?;
        let z = ctx
            .create(SVC, "managedZones.create", || {
                ctx.c.zones.create().set_project(ctx.project.clone()).set_body(body.clone()).send()
            })
            .await?;
        let z = to_json(&z);
        Ok(ApplyResponse::new(z["name"].as_str().unwrap_or_default(), Self::attrs(&z, false)))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let adopted = prior.attrs.get("adopted").and_then(Json::as_bool).unwrap_or(false);
        let z = Self::get(ctx, &prior.id)
            .await?
            .ok_or_else(|| ProviderError::other(format!("zone {} is gone", prior.id)))?;
        let mut labels = string_map(z.get("labels"));
        labels.extend(req.identity.owner_tags.clone());
        if adopted {
            labels.insert(LABEL_ADOPTED.into(), "true".into());
        }
        let comment = Cfg::of(req).opt_str("comment").unwrap_or_default();
        let z = Zone::patch(ctx, &z, labels, comment, &req.status).await?;
        Ok(ApplyResponse::new(prior.id.clone(), Self::attrs(&z, adopted)))
    }

    /// Deletes a zone this tool created; an adopted zone keeps serving, without our labels.
    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        if req.attrs.get("adopted").and_then(Json::as_bool).unwrap_or(false) {
            let Some(z) = Self::get(ctx, &req.id).await? else { return Ok(()) };
            let mut labels = string_map(z.get("labels"));
            for k in [LABEL_PLATFORM, LABEL_ENVIRONMENT, LABEL_ADDRESS, LABEL_ADOPTED] {
                labels.remove(k);
            }
            Zone::patch(ctx, &z, labels, z["description"].as_str().unwrap_or_default(), &req.status).await?;
            return Ok(());
        }
        gone_ok(
            ctx.write(SVC, "managedZones.delete", || {
                ctx.c.zones.delete().set_project(ctx.project.clone()).set_managed_zone(req.id.clone()).send()
            })
            .await,
        )
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Ok(Self::get(ctx, &req.name).await?.iter().map(Self::found).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Record sets

/// Whether a type's data are domain names, which Cloud DNS takes fully qualified (`ingress.matih.ai.`)
/// and attributes hold bare.
fn names_data(rtype: &str) -> bool {
    matches!(rtype, "NS" | "CNAME")
}

/// One record set: `(zone, fqdn, type)`, its TTL and data.
#[derive(Debug, Clone, PartialEq)]
struct Set {
    zone: String,
    name: String,
    rtype: String,
    ttl: u64,
    data: Vec<String>,
}

impl Set {
    fn id(&self) -> String {
        format!("{}/{}/{}", self.zone, bare(&self.name), self.rtype)
    }

    fn of(zone: &str, j: &Json) -> Set {
        let mut data: Vec<String> =
            j["rrdatas"].as_array().into_iter().flatten().filter_map(Json::as_str).map(str::to_string).collect();
        data.sort();
        Set {
            zone: zone.to_string(),
            name: fqdn(j["name"].as_str().unwrap_or_default()),
            rtype: j["type"].as_str().unwrap_or_default().to_string(),
            ttl: j["ttl"].as_u64().unwrap_or_default(),
            data,
        }
    }

    fn json(&self) -> Json {
        json!({"name": self.name, "type": self.rtype, "ttl": self.ttl, "rrdatas": self.data})
    }

    /// The set as the graph configures it.
    fn from_cfg(cfg: &Cfg<'_>, zone: &str, name: &str, rtype: &str, data_key: &str) -> Result<Set, ProviderError> {
        let mut data = cfg.strs(data_key)?;
        if names_data(rtype) {
            data = data.iter().map(|d| fqdn(d)).collect();
        }
        data.sort();
        Ok(Set { zone: zone.to_string(), name: fqdn(name), rtype: rtype.to_string(), ttl: cfg.u64("ttl")?, data })
    }
}

/// Every record set of `zone`, by `(fqdn, type)`.
async fn zone_sets(ctx: &Ctx, zone: &str) -> Result<BTreeMap<(String, String), Set>, ProviderError> {
    let sets = all_pages("rrsets", |p| async move {
        let list = || {
            let b = ctx.c.rrsets.list().set_project(ctx.project.clone()).set_managed_zone(zone.to_string());
            match p.clone() {
                Some(p) => b.set_page_token(p),
                None => b,
            }
            .send()
        };
        ctx.read(SVC, "resourceRecordSets.list", list).await.map(|r| to_json(&r))
    })
    .await?;
    Ok(sets
        .iter()
        .map(|s| {
            let set = Set::of(zone, s);
            ((set.name.clone(), set.rtype.clone()), set)
        })
        .collect())
}

/// Applies, per zone, one change that makes each `(key, Some(set))` so and removes each
/// `(key, None)`: the current sets go in `deletions`, the wanted ones in `additions`. Results in
/// the order of `wanted`.
async fn change(
    ctx: &Ctx,
    wanted: Vec<(String, String, String, Option<Set>)>,
    status: &StatusSink,
) -> Vec<Result<Option<Set>, ProviderError>> {
    let mut zones: Vec<String> = wanted.iter().map(|w| w.0.clone()).collect();
    zones.sort();
    zones.dedup();
    let mut results: Vec<Option<Result<Option<Set>, ProviderError>>> = (0..wanted.len()).map(|_| None).collect();
    for zone in zones {
        let idx: Vec<usize> = (0..wanted.len()).filter(|i| wanted[*i].0 == zone).collect();
        let r = change_zone(ctx, &zone, idx.iter().map(|i| &wanted[*i]).collect(), status).await;
        for i in idx {
            results[i] = Some(match &r {
                Ok(()) => Ok(wanted[i].3.clone()),
                Err(e) => Err(e.clone()),
            });
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ProviderError::other("dns: a record was left out of its change"))))
        .collect()
}

async fn change_zone(
    ctx: &Ctx,
    zone: &str,
    wanted: Vec<&(String, String, String, Option<Set>)>,
    status: &StatusSink,
) -> Result<(), ProviderError> {
    for attempt in 1..=3 {
        let now = zone_sets(ctx, zone).await?;
        let mut deletions = Vec::new();
        let mut additions = Vec::new();
        for (_, name, rtype, want) in &wanted {
            let have = now.get(&(fqdn(name), rtype.clone()));
            if have == want.as_ref() {
                continue;
            }
            if let Some(h) = have {
                deletions.push(h.json());
            }
            if let Some(w) = want {
                additions.push(w.json());
            }
        }
        if deletions.is_empty() && additions.is_empty() {
            return Ok(());
        }
        let body: model::Change = from_json("change", json!({"additions": additions, "deletions": deletions}))?;
        // A change is conditional: its deletions must match what the zone holds and its
        // additions must not be there yet, so sent again after it was made it is refused. A lost
        // answer is therefore not sent again blindly: the zone is read again, and the change is
        // left out when the zone already shows it (or made of what is still missing).
        let sent = ctx
            .create(SVC, "changes.create", || {
                ctx.c
                    .changes
                    .create()
                    .set_project(ctx.project.clone())
                    .set_managed_zone(zone.to_string())
                    .set_body(body.clone())
                    .send()
            })
            .await;
        let c = match sent {
            Ok(c) => to_json(&c),
            // The answer was lost (or the server failed, having done it or not), or the zone
            // changed under us (an addition that exists, a deletion already gone): read again.
            Err(e)
                if (e.kind().transient() || matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound))
                    && attempt < 3 =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        if c["status"] == "done" {
            return Ok(());
        }
        let id = c["id"].as_str().unwrap_or_default().to_string();
        return wait_operation(&format!("change {id} in zone {zone}"), CHANGE_WAIT, status, || async {
            let c = ctx
                .read(SVC, "changes.get", || {
                    ctx.c
                        .changes
                        .get()
                        .set_project(ctx.project.clone())
                        .set_managed_zone(zone.to_string())
                        .set_change_id(id.clone())
                        .send()
                })
                .await?;
            Ok(dns_status(&to_json(&c)))
        })
        .await;
    }
    unreachable!("the last attempt returns")
}

/// A Cloud DNS change or zone operation: `pending` until `done` (neither carries an error once
/// accepted).
fn dns_status(j: &Json) -> OpView {
    OpView { done: j["status"] == "done", status: j["status"].as_str().unwrap_or("pending").into(), error: None }
}

fn record_attrs(s: &Set, data_key: &str, zone_key: &str) -> Attrs {
    attrs([
        ("id", json!(s.id())),
        (zone_key, json!(s.zone)),
        ("name", json!(bare(&s.name))),
        ("type", json!(s.rtype)),
        ("ttl", json!(s.ttl)),
        (
            data_key,
            json!(
                s.data
                    .iter()
                    .map(|d| if names_data(&s.rtype) { bare(d).to_string() } else { d.clone() })
                    .collect::<Vec<_>>()
            ),
        ),
    ])
}

/// `<zone>/<name>/<type>` → its parts.
fn parts(id: &str) -> Option<(String, String, String)> {
    let mut it = id.splitn(3, '/');
    Some((it.next()?.to_string(), it.next()?.to_string(), it.next()?.to_string()))
}

/// The recorded instances that exist, one listing per zone.
async fn read_sets(ctx: &Ctx, items: &[ReadItem], data_key: &str, zone_key: &str) -> Result<Listing, ProviderError> {
    let mut by_zone: BTreeMap<String, Vec<&ReadItem>> = BTreeMap::new();
    for i in items {
        if let Some((zone, _, _)) = parts(&i.id) {
            by_zone.entry(zone).or_default().push(i);
        }
    }
    let mut found = BTreeMap::new();
    for (zone, items) in by_zone {
        // One record set (a per-resource refresh): one GET, not the zone's listing.
        if let [one] = items.as_slice() {
            let (_, name, rtype) = parts(&one.id).expect("grouped by a parsed id");
            let r = ctx
                .read(SVC, "resourceRecordSets.get", || {
                    ctx.c
                        .rrsets
                        .get()
                        .set_project(ctx.project.clone())
                        .set_managed_zone(zone.clone())
                        .set_name(fqdn(&name))
                        .set_type(rtype.clone())
                        .send()
                })
                .await;
            if let Some(s) = not_found_none(r)? {
                let s = Set::of(&zone, &to_json(&s));
                found
                    .insert(one.addr.clone(), ReadResource { id: s.id(), attrs: record_attrs(&s, data_key, zone_key) });
            }
            continue;
        }
        let sets = match zone_sets(ctx, &zone).await {
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            r => r?,
        };
        for i in items {
            let (_, name, rtype) = parts(&i.id).expect("grouped by a parsed id");
            if let Some(s) = sets.get(&(fqdn(&name), rtype)) {
                found.insert(i.addr.clone(), ReadResource { id: s.id(), attrs: record_attrs(s, data_key, zone_key) });
            }
        }
    }
    Ok(Listing::ById(found))
}

struct Record;

impl Record {
    fn set(req: &ApplyRequest) -> Result<Set, ProviderError> {
        let cfg = Cfg::of(req);
        Set::from_cfg(&cfg, cfg.str("zone_id")?, cfg.str("name")?, cfg.str("type")?, "values")
    }
}

fn only<T>(mut v: Vec<Result<T, ProviderError>>) -> Result<T, ProviderError> {
    v.pop().unwrap_or_else(|| Err(ProviderError::other("dns: a batch of one gave no result")))
}

#[async_trait]
impl Kind<Ctx> for Record {
    fn schema(&self) -> TypeSchema {
        schema("dns", "record")
            .force_new(&["zone_id", "name"])
            .updatable(&["type", "ttl", "values"])
            .computed(&["id"])
            .batched()
            .build()
    }

    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        read_sets(ctx, items, "values", "zone_id").await
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        only(self.apply_batch(ctx, std::slice::from_ref(req)).await.expect("records are batched"))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        self.create(ctx, req).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        only(self.delete_batch(ctx, std::slice::from_ref(req)).await.expect("records are batched"))
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        // Record sets are written by upsert: there is nothing to find that a change would
        // duplicate.
        let _ = (ctx, req);
        Ok(vec![])
    }

    async fn apply_batch(&self, ctx: &Ctx, reqs: &[ApplyRequest]) -> Option<Vec<Result<ApplyResponse, ProviderError>>> {
        let mut out: Vec<Option<Result<ApplyResponse, ProviderError>>> = reqs.iter().map(|_| None).collect();
        let mut wanted = Vec::new();
        // For each entry of `wanted`, its request, and whether it is the deletion of a set that
        // changes type.
        let mut at = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            match Record::set(r) {
                Ok(s) => {
                    // A record changing type (a tenant moving between a dedicated and the shared
                    // controller: A ↔ CNAME): the old set's deletion goes in the same change as
                    // the new set's addition. Cloud DNS makes a change as a whole, so the name
                    // always answers, never with NXDOMAIN.
                    let old = r.prior.as_ref().and_then(|p| parts(&p.id));
                    if let Some((zone, name, rtype)) = old
                        && zone == s.zone
                        && fqdn(&name) == s.name
                        && rtype != s.rtype
                    {
                        wanted.push((zone, name, rtype, None));
                        at.push((i, true));
                    }
                    wanted.push((s.zone.clone(), s.name.clone(), s.rtype.clone(), Some(s)));
                    at.push((i, false));
                }
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let status = reqs.first().map(|r| r.status.clone()).unwrap_or_default();
        for ((i, deletion), r) in at.into_iter().zip(change(ctx, wanted, &status).await) {
            // A zone's change succeeds or fails as a whole: the addition's result is the request's.
            if deletion {
                continue;
            }
            out[i] = Some(r.map(|s| {
                let s = s.expect("an addition");
                ApplyResponse::new(s.id(), record_attrs(&s, "values", "zone_id"))
            }));
        }
        Some(out.into_iter().map(|r| r.expect("every request has a result")).collect())
    }

    async fn delete_batch(&self, ctx: &Ctx, reqs: &[DeleteRequest]) -> Option<Vec<Result<(), ProviderError>>> {
        let wanted = reqs
            .iter()
            .map(|r| {
                let (zone, name, rtype) = parts(&r.id).unwrap_or_default();
                (zone, name, rtype, None)
            })
            .collect();
        let status = reqs.first().map(|r| r.status.clone()).unwrap_or_default();
        Some(change(ctx, wanted, &status).await.into_iter().map(gone_ok).collect())
    }
}

// ---------------------------------------------------------------------------------------------

/// The NS record of an environment's zone in its parent's zone (the parent zone is found by
/// its DNS name in the project).
struct Delegation;

impl Delegation {
    async fn parent(ctx: &Ctx, name: &str) -> Result<String, ProviderError> {
        match Zone::named(ctx, name).await?.as_slice() {
            [z] => Ok(z["name"].as_str().unwrap_or_default().to_string()),
            [] => Err(ProviderError::other(format!(
                "the parent zone {name} is not in project {}: apply the parent environment first",
                ctx.project
            ))),
            _ => {
                Err(ProviderError::other(format!("more than one public zone serves {name} in project {}", ctx.project)))
            }
        }
    }

    async fn set(ctx: &Ctx, req: &ApplyRequest) -> Result<Set, ProviderError> {
        let cfg = Cfg::of(req);
        let zone = Self::parent(ctx, cfg.str("parent_zone_name")?).await?;
        Set::from_cfg(&cfg, &zone, cfg.str("name")?, "NS", "name_servers")
    }
}

#[async_trait]
impl Kind<Ctx> for Delegation {
    fn schema(&self) -> TypeSchema {
        schema("dns", "delegation")
            .force_new(&["parent_zone_name", "name"])
            .updatable(&["ttl", "name_servers"])
            .computed(&["id"])
            .build()
    }

    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        let Listing::ById(mut found) = read_sets(ctx, items, "name_servers", "parent_zone").await? else {
            unreachable!("read_sets reads by id")
        };
        for (addr, r) in found.iter_mut() {
            let parent = items.iter().find(|i| &i.addr == addr).and_then(|i| i.attrs.get("parent_zone_name").cloned());
            r.attrs.insert("parent_zone_name".into(), parent.unwrap_or(Json::Null));
            r.attrs.remove("parent_zone");
        }
        Ok(Listing::ById(found))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let s = Self::set(ctx, req).await?;
        let wanted = vec![(s.zone.clone(), s.name.clone(), s.rtype.clone(), Some(s.clone()))];
        only(change(ctx, wanted, &req.status).await)?;
        let mut a = record_attrs(&s, "name_servers", "parent_zone");
        a.remove("parent_zone");
        a.insert("parent_zone_name".into(), json!(Cfg::of(req).str("parent_zone_name")?));
        Ok(ApplyResponse::new(s.id(), a))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        self.create(ctx, req).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let (zone, name, rtype) = parts(&req.id).unwrap_or_default();
        gone_ok(only(change(ctx, vec![(zone, name, rtype, None)], &req.status).await))
    }

    async fn find(&self, _ctx: &Ctx, _req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert_eq!(zone_resource_name("staging.matih.ai"), "staging-matih-ai");
        assert_eq!(zone_resource_name("9fold.io"), "z-9fold-io");
        let long = zone_resource_name(&format!("{}.example.com", "a".repeat(70)));
        assert!(long.len() <= 63 && long.starts_with("aaa"), "{long}");
        assert_eq!(fqdn("api.matih.ai"), "api.matih.ai.");
        let s =
            Set { zone: "matih-ai".into(), name: "api.matih.ai.".into(), rtype: "A".into(), ttl: 300, data: vec![] };
        assert_eq!(parts(&s.id()), Some(("matih-ai".into(), "api.matih.ai".into(), "A".into())));
    }
}
