//! Route 53: the platform's public hosted zone, the A and CNAME records that point names at the
//! ingress controllers, and the NS delegation of an environment's zone in its parent zone.
//!
//! Records are batched: the record changes of one apply reach `ChangeResourceRecordSets`
//! together, grouped by zone and cut into requests within Route 53's limits, and a refresh lists
//! each zone's record sets once. A record the tool has no record of is sent as a CREATE (Route 53
//! counts its values once against the per-request limit, an UPSERT's twice); one it has is changed
//! with an UPSERT. A CREATE refused because the set exists, or whose answer was lost, is settled
//! from a fresh listing of the zone: what is there as wanted is done, what is there otherwise is
//! taken over with an UPSERT, what is missing is created again. A record that changes type (A ↔
//! CNAME) is swapped in one request, its old set's DELETE beside its new set's CREATE
//! ([`swap_zone`]).
//!
//! Route 53 speaks in fully qualified names (`api.matih.ai.`) and prefixed ids (`/hostedzone/Z…`,
//! `/change/C…`); attributes always hold the bare forms.
//!
//! Not here: private zones, alias/weighted/latency record sets (they are left alone, never
//! matched), DNSSEC and health checks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, HostedZone, HostedZoneConfig, ResourceRecord, ResourceRecordSet,
    RrType, Tag, TagResourceType,
};
use aws_smithy_types::error::operation::BuildError;
use matih_plans::wait::{WaitPolicy, WaitStep, wait_until};
use matih_plans::*;
use matih_provider_kit::owner::{TAG_ADDRESS, TAG_ENVIRONMENT, TAG_PLATFORM};
use matih_provider_kit::{Call, Found, Kind, Listing, gone_ok, not_found_none, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::error::missing;
use crate::kind::*;

const SVC: &str = "route53";

/// Route 53 usually propagates a change within a minute.
const CHANGE_WAIT: Duration = Duration::from_secs(5 * 60);

/// `ChangeResourceRecordSets` limits per request: changes, `ResourceRecord` elements and
/// characters of all `Value`s. An UPSERT counts its records and characters twice.
const MAX_CHANGES: usize = 1_000;
const MAX_RECORDS: usize = 1_000;
const MAX_CHARS: usize = 32_000;

/// `ChangeTagsForResource` takes at most this many tags per call.
const MAX_TAGS_PER_CALL: usize = 10;

pub fn kinds() -> Vec<Box<dyn Kind<Ctx>>> {
    vec![Box::new(Zone), Box::new(Record), Box::new(Delegation)]
}

// ---------------------------------------------------------------------------------------------
// Names and ids

/// `/hostedzone/Z0123` → `Z0123`.
fn bare_zone_id(id: &str) -> &str {
    id.strip_prefix("/hostedzone/").unwrap_or(id)
}

/// `/change/C0123` → `C0123`.
fn bare_change_id(id: &str) -> &str {
    id.strip_prefix("/change/").unwrap_or(id)
}

/// A DNS name as recorded: no trailing dot, Route 53's octal escapes (`\052` for `*`) decoded.
fn bare_name(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name);
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b[i] == b'\\' && b.len() >= i + 4 && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c));
        match octal.then(|| u8::from_str_radix(&name[i + 1..i + 4], 8).ok()).flatten() {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fully qualified form Route 53 is sent.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

/// How two names or types are compared: DNS is case-insensitive.
fn match_key(name: &str, rtype: &str) -> (String, String) {
    (bare_name(name).to_ascii_lowercase(), rtype.to_ascii_uppercase())
}

/// A value as recorded: names (NS, CNAME targets) without their trailing dot.
fn bare_value(rtype: &RrType, v: &str) -> String {
    match rtype {
        RrType::Ns | RrType::Cname => v.strip_suffix('.').unwrap_or(v).to_string(),
        _ => v.to_string(),
    }
}

/// Route 53 keeps a record's values as a set and may list them in any order. They are recorded
/// in the order the state already holds when they are the same values (the configuration's
/// order, e.g. addresses by availability zone), so an unchanged record never shows drift; a real
/// change is recorded sorted.
fn in_recorded_order(mut current: Vec<String>, recorded: Option<&Json>) -> Vec<String> {
    current.sort();
    let recorded: Option<Vec<String>> =
        recorded.and_then(Json::as_array).and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect());
    if let Some(r) = recorded {
        let mut sorted = r.clone();
        sorted.sort();
        if sorted == current {
            return r;
        }
    }
    current
}

fn build_error(e: BuildError) -> ProviderError {
    ProviderError::Other {
        message: format!("{SVC}: could not build the request"),
        source: Some(std::sync::Arc::new(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Calls shared by the kinds

/// Waits until a change has reached every Route 53 name server.
async fn wait_insync(ctx: &Ctx, change_id: &str) -> Result<(), ProviderError> {
    let id = bare_change_id(change_id);
    let what = format!("Route 53 change {id} to be INSYNC");
    let r = wait_until(
        &what,
        WaitPolicy::new(CHANGE_WAIT),
        |_| {},
        || async {
            let r = ctx.read(SVC, "GetChange", || ctx.c.route53.get_change().id(id).send()).await?;
            let status = r.change_info().map(|c| c.status().clone());
            Ok::<_, ProviderError>(match status {
                Some(ChangeStatus::Insync) => WaitStep::Done(()),
                Some(s) => WaitStep::Pending(s.as_str().to_string()),
                None => WaitStep::Pending("no status yet".into()),
            })
        },
    )
    .await?;
    Ok(r?)
}

/// The public zones named exactly `name` (several zones may share a name).
async fn public_zones_named(ctx: &Ctx, name: &str) -> Result<Vec<HostedZone>, ProviderError> {
    let want = match_key(name, "").0;
    let mut out = Vec::new();
    let mut next: Option<(String, Option<String>)> = Some((fqdn(name), None));
    while let Some((dns_name, zone_id)) = next.take() {
        let r = ctx
            .read(SVC, "ListHostedZonesByName", || {
                ctx.c.route53.list_hosted_zones_by_name().dns_name(&dns_name).set_hosted_zone_id(zone_id.clone()).send()
            })
            .await?;
        // Zones come sorted by name, starting at `name`: the first other name ends the search.
        let mut past = false;
        for z in r.hosted_zones() {
            if match_key(z.name(), "").0 != want {
                past = true;
            } else if !z.config().is_some_and(|c| c.private_zone()) {
                out.push(z.clone());
            }
        }
        if !past && r.is_truncated() {
            next = r.next_dns_name().map(|n| (n.to_string(), r.next_hosted_zone_id().map(str::to_string)));
        }
    }
    Ok(out)
}

/// A zone's tags; none if the zone is gone.
async fn zone_tags(ctx: &Ctx, id: &str) -> Result<BTreeMap<String, String>, ProviderError> {
    let r = ctx
        .read(SVC, "ListTagsForResource", || {
            ctx.c.route53.list_tags_for_resource().resource_type(TagResourceType::Hostedzone).resource_id(id).send()
        })
        .await;
    let Some(r) = not_found_none(r)? else { return Ok(BTreeMap::new()) };
    Ok(r.resource_tag_set()
        .map(|s| s.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect())
        .unwrap_or_default())
}

async fn add_zone_tags(ctx: &Ctx, id: &str, tags: Vec<(String, String)>) -> Result<(), ProviderError> {
    for chunk in tags.chunks(MAX_TAGS_PER_CALL) {
        let tags: Vec<Tag> = chunk.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        ctx.write(SVC, "ChangeTagsForResource", || {
            ctx.c
                .route53
                .change_tags_for_resource()
                .resource_type(TagResourceType::Hostedzone)
                .resource_id(id)
                .set_add_tags(Some(tags.clone()))
                .send()
        })
        .await?;
    }
    Ok(())
}

/// `ListResourceRecordSets` returns at most this many record sets per page.
const PAGE_SIZE: usize = 300;

/// Known record sets per parallel walk of a zone: a page's worth, less room for a few sets state
/// does not know (the zone's SOA and NS, a record of someone else's), so that a walk is usually
/// one page and the walks together list each set about once. A range with more sets than that
/// takes its walk a second page.
const WALK_SPAN: usize = PAGE_SIZE - 10;

/// At most this many walks of a zone at once: within Route 53's burst of 50 requests (its
/// per-account and per-operation token buckets), leaving room for the other calls of a refresh.
const MAX_WALKS: usize = 40;

/// Every record set of a zone; `None` if the zone does not exist.
///
/// `known` are sets the zone is expected to hold (in any order). With more of them than one walk's
/// span, the zone is listed by several walks at once: one from the start and one from each of a
/// few known sets (`StartRecordName`/`StartRecordType`), so a large zone costs about one round
/// trip instead of one per page. A walk stops at the first page that holds another walk's start
/// (from there that walk lists on) or at the zone's end. Since a walk only ever sees sets at or
/// after its own start, the walks cover the zone whatever order `known` is in and whether or not
/// its sets still exist; sets two walks both saw are kept once.
async fn list_sets(
    ctx: &Ctx,
    zone_id: &str,
    known: &[&RecordKey],
) -> Result<Option<Vec<ResourceRecordSet>>, ProviderError> {
    let starts = walk_starts(known);
    let stops: HashSet<&(String, String)> = starts.iter().collect();
    let walks = std::iter::once(None).chain(starts.iter().map(Some)).map(|start| walk(ctx, zone_id, start, &stops));
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for walked in futures_util::future::join_all(walks).await {
        let Some(sets) = walked? else { return Ok(None) };
        for s in sets {
            if seen.insert((s.name().to_string(), s.r#type().clone(), s.set_identifier().map(str::to_string))) {
                out.push(s);
            }
        }
    }
    Ok(Some(out))
}

/// Where a zone's walks other than the first start: at every [`WALK_SPAN`]th of the known sets
/// in Route 53's listing order (at most [`MAX_WALKS`] walks in all), as (name, type) match keys.
fn walk_starts(known: &[&RecordKey]) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = known.iter().map(|k| k.matcher()).collect();
    keys.sort_by(listing_order);
    keys.dedup();
    let span = WALK_SPAN.max(keys.len().div_ceil(MAX_WALKS));
    keys.into_iter().skip(span).step_by(span).collect()
}

/// Route 53's listing order of (name, type) match keys: by name with its labels reversed
/// (`api.matih.ai` as `ai.matih.api`), then by type. Near enough is enough (escapes aside): the
/// order only decides how evenly the walks share a zone.
fn listing_order((a, at): &(String, String), (b, bt): &(String, String)) -> std::cmp::Ordering {
    a.rsplit('.').cmp(b.rsplit('.')).then_with(|| at.cmp(bt))
}

/// One walk of a zone's pages from `start` (from the first set if `None`), until a page holds
/// one of `stops` other than `start`, or the last page; `None` if the zone does not exist.
async fn walk(
    ctx: &Ctx,
    zone_id: &str,
    start: Option<&(String, String)>,
    stops: &HashSet<&(String, String)>,
) -> Result<Option<Vec<ResourceRecordSet>>, ProviderError> {
    let mut out = Vec::new();
    let mut next: Option<(String, RrType, Option<String>)> =
        start.map(|(name, rtype)| (fqdn(name), RrType::from(rtype.as_str()), None));
    loop {
        let from = next.take();
        let r = ctx
            .read(SVC, "ListResourceRecordSets", || {
                let mut q = ctx.c.route53.list_resource_record_sets().hosted_zone_id(zone_id);
                if let Some((name, rtype, ident)) = &from {
                    q = q
                        .start_record_name(name)
                        .start_record_type(rtype.clone())
                        .set_start_record_identifier(ident.clone());
                }
                q.send()
            })
            .await;
        let Some(r) = not_found_none(r)? else { return Ok(None) };
        let sets = r.resource_record_sets();
        let reached = sets.iter().any(|s| {
            let key = match_key(s.name(), s.r#type().as_str());
            start != Some(&key) && stops.contains(&key)
        });
        out.extend(sets.iter().cloned());
        if reached || !r.is_truncated() {
            return Ok(Some(out));
        }
        match (r.next_record_name(), r.next_record_type()) {
            (Some(n), Some(t)) => {
                next = Some((n.to_string(), t.clone(), r.next_record_identifier().map(str::to_string)))
            }
            _ => return Err(missing(SVC, "ListResourceRecordSets", "NextRecordName for a truncated page")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Record sets: what is wanted, what is there, and the changes between them

/// Which record set: zone, name and type. Only simple record sets (no set identifier) match.
#[derive(Debug, Clone, PartialEq)]
struct RecordKey {
    zone_id: String,
    name: String,
    rtype: String,
}

impl RecordKey {
    /// `<zone_id>/<name>/<type>`.
    fn parse(id: &str) -> Option<Self> {
        let (zone, rest) = id.split_once('/')?;
        let (name, rtype) = rest.rsplit_once('/')?;
        (!zone.is_empty() && !name.is_empty() && !rtype.is_empty()).then(|| RecordKey {
            zone_id: zone.to_string(),
            name: name.to_string(),
            rtype: rtype.to_string(),
        })
    }

    fn of(addr: &ResourceAddr, id: &str) -> Result<Self, ProviderError> {
        Self::parse(id)
            .ok_or_else(|| ProviderError::other(format!("{addr}: recorded id `{id}` is not <zone_id>/<name>/<type>")))
    }

    /// A `dns.record` from its recorded attributes, or from its id.
    fn of_record(addr: &ResourceAddr, id: &str, attrs: &Attrs) -> Result<Self, ProviderError> {
        let s = |k: &str| attrs.get(k).and_then(Json::as_str);
        match (s("zone_id"), s("name"), s("type")) {
            (Some(z), Some(n), Some(t)) => {
                Ok(RecordKey { zone_id: bare_zone_id(z).to_string(), name: bare_name(n), rtype: t.to_string() })
            }
            _ => Self::of(addr, id),
        }
    }

    fn id(&self) -> String {
        format!("{}/{}/{}", self.zone_id, self.name, self.rtype)
    }

    fn matcher(&self) -> (String, String) {
        match_key(&self.name, &self.rtype)
    }
}

/// The simple record sets of a zone by (name, type).
fn index(sets: &[ResourceRecordSet]) -> HashMap<(String, String), &ResourceRecordSet> {
    sets.iter()
        .filter(|s| s.set_identifier().is_none())
        .map(|s| (match_key(s.name(), s.r#type().as_str()), s))
        .collect()
}

/// One simple record set as wanted (or as found).
#[derive(Debug, Clone, PartialEq)]
struct RecordSpec {
    key: RecordKey,
    ttl: Option<i64>,
    values: Vec<String>,
}

impl RecordSpec {
    fn from_cfg(cfg: &Cfg<'_>, zone_id: &str, name: &str, rtype: &str, values: &str) -> Result<Self, ProviderError> {
        let ttl = cfg.u64("ttl")?;
        let ttl = i64::try_from(ttl).map_err(|_| ProviderError::Config {
            addr: cfg.addr.clone(),
            message: format!("`ttl` {ttl} is out of range"),
        })?;
        let values = cfg.strs(values)?;
        if values.is_empty() {
            return Err(ProviderError::Config {
                addr: cfg.addr.clone(),
                message: "a record needs at least one value".into(),
            });
        }
        Ok(RecordSpec {
            key: RecordKey {
                zone_id: bare_zone_id(zone_id).to_string(),
                name: bare_name(name),
                rtype: rtype.to_string(),
            },
            ttl: Some(ttl),
            values,
        })
    }

    /// What Route 53 holds, with the values in the order `recorded` has them if they are the same.
    fn found(zone_id: &str, s: &ResourceRecordSet, recorded: Option<&Json>) -> Self {
        let values = s.resource_records().iter().map(|r| bare_value(s.r#type(), r.value())).collect();
        RecordSpec {
            key: RecordKey {
                zone_id: zone_id.to_string(),
                name: bare_name(s.name()),
                rtype: s.r#type().as_str().to_string(),
            },
            ttl: s.ttl(),
            values: in_recorded_order(values, recorded),
        }
    }

    fn rrset(&self) -> Result<ResourceRecordSet, ProviderError> {
        let records = self
            .values
            .iter()
            .map(|v| ResourceRecord::builder().value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(build_error)?;
        ResourceRecordSet::builder()
            .name(fqdn(&self.key.name))
            .r#type(RrType::from(self.key.rtype.as_str()))
            .set_ttl(self.ttl)
            .set_resource_records(Some(records))
            .build()
            .map_err(build_error)
    }
}

/// What one change (or changes that must go in one request) costs against the per-request
/// limits.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cost {
    changes: usize,
    records: usize,
    chars: usize,
}

fn cost(c: &Change) -> Cost {
    let twice = if *c.action() == ChangeAction::Upsert { 2 } else { 1 };
    let records = c.resource_record_set().map(|s| s.resource_records()).unwrap_or_default();
    Cost {
        changes: 1,
        records: records.len().max(1) * twice,
        chars: records.iter().map(|r| r.value().len()).sum::<usize>() * twice,
    }
}

/// The cost of changes sent together.
fn cost_of(changes: &[Change]) -> Cost {
    changes.iter().map(cost).fold(Cost { changes: 0, records: 0, chars: 0 }, |a, c| Cost {
        changes: a.changes + c.changes,
        records: a.records + c.records,
        chars: a.chars + c.chars,
    })
}

/// Cuts consecutive units (a change, or changes that go together) into requests within the
/// limits. A unit that alone exceeds a limit is sent on its own, so Route 53's refusal reaches
/// only that unit.
fn chunks(costs: &[Cost]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut changes, mut records, mut chars) = (0, 0, 0, 0);
    for (i, c) in costs.iter().enumerate() {
        if i > start
            && (changes + c.changes > MAX_CHANGES || records + c.records > MAX_RECORDS || chars + c.chars > MAX_CHARS)
        {
            out.push(start..i);
            (start, changes, records, chars) = (i, 0, 0, 0);
        }
        changes += c.changes;
        records += c.records;
        chars += c.chars;
    }
    if start < costs.len() {
        out.push(start..costs.len());
    }
    out
}

/// For each request of one zone: `Ok(Some(i))` rides on change `i`, `Ok(None)` has nothing to
/// do, `Err` was refused before anything was sent.
type Slots = Vec<Result<Option<usize>, ProviderError>>;

/// CREATEs and UPSERTs. Requests for the same name and type share one change (the first's
/// action); conflicting ones are refused.
fn plan_writes(specs: &[(&ResourceAddr, &ChangeAction, &RecordSpec)]) -> (Vec<Change>, Slots) {
    let mut changes = Vec::new();
    let mut seen: HashMap<(String, String), (usize, &ResourceAddr, &RecordSpec)> = HashMap::new();
    let mut slots = Slots::with_capacity(specs.len());
    for &(addr, action, spec) in specs {
        if let Some(&(i, first, same)) = seen.get(&spec.key.matcher()) {
            slots.push(if same == spec {
                Ok(Some(i))
            } else {
                Err(ProviderError::Config {
                    addr: addr.clone(),
                    message: format!("{first} also sets {} {} to other values", spec.key.name, spec.key.rtype),
                })
            });
            continue;
        }
        let change = spec
            .rrset()
            .and_then(|s| Change::builder().action(action.clone()).resource_record_set(s).build().map_err(build_error));
        slots.push(change.map(|c| {
            seen.insert(spec.key.matcher(), (changes.len(), addr, spec));
            changes.push(c);
            Some(changes.len() - 1)
        }));
    }
    (changes, slots)
}

/// DELETEs built from what the zone holds now: Route 53 deletes a record set only when given its
/// current TTL and values, which may have been changed outside this tool. Record sets already
/// gone need nothing; one deleted twice rides on one change.
fn plan_deletes(keys: &[&RecordKey], current: &[ResourceRecordSet]) -> (Vec<Change>, Slots) {
    let now = index(current);
    let mut changes = Vec::new();
    let mut planned: HashMap<(String, String), usize> = HashMap::new();
    let mut slots = Slots::with_capacity(keys.len());
    for key in keys {
        let m = key.matcher();
        if let Some(&i) = planned.get(&m) {
            slots.push(Ok(Some(i)));
            continue;
        }
        let Some(set) = now.get(&m) else {
            slots.push(Ok(None));
            continue;
        };
        let change = Change::builder().action(ChangeAction::Delete).resource_record_set((*set).clone()).build();
        slots.push(change.map_err(build_error).map(|c| {
            planned.insert(m, changes.len());
            changes.push(c);
            Some(changes.len() - 1)
        }));
    }
    (changes, slots)
}

/// Sends one request and waits until it is INSYNC. A request of UPSERTs is idempotent and sent
/// again after a lost answer; one with CREATEs or DELETEs is not (a second CREATE of a set, or
/// DELETE of a gone one, is refused), so its caller reads the zone again instead.
async fn send_changes(ctx: &Ctx, zone_id: &str, changes: Vec<Change>) -> Result<(), ProviderError> {
    let upserts_only = changes.iter().all(|c| *c.action() == ChangeAction::Upsert);
    let batch = ChangeBatch::builder().set_changes(Some(changes)).build().map_err(build_error)?;
    let call = if upserts_only { Call::Idempotent } else { Call::Create };
    let r = ctx
        .call(SVC, "ChangeResourceRecordSets", call, || {
            ctx.c.route53.change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch.clone()).send()
        })
        .await?;
    let change = r.change_info().ok_or_else(|| missing(SVC, "ChangeResourceRecordSets", "ChangeInfo"))?;
    wait_insync(ctx, change.id()).await
}

/// Sends a zone's changes in as few requests as the limits allow and maps the outcome back to
/// the requests. Every request in a failed chunk gets that chunk's error; other chunks go on.
async fn execute(ctx: &Ctx, zone_id: &str, changes: Vec<Change>, slots: Slots) -> Vec<Result<(), ProviderError>> {
    let costs: Vec<Cost> = changes.iter().map(cost).collect();
    let mut done: Vec<Option<ProviderError>> = Vec::with_capacity(changes.len());
    let mut changes = changes.into_iter();
    for range in chunks(&costs) {
        let n = range.len();
        let chunk: Vec<Change> = changes.by_ref().take(n).collect();
        match send_changes(ctx, zone_id, chunk).await {
            Ok(()) => done.extend((0..n).map(|_| None)),
            Err(e) => done.extend((0..n).map(|_| Some(e.clone()))),
        }
    }
    slots
        .into_iter()
        .map(|s| match s? {
            Some(i) => done[i].as_ref().map_or(Ok(()), |e| Err(e.clone())),
            None => Ok(()),
        })
        .collect()
}

/// Writes record sets of any zones, each with its action (CREATE or UPSERT); one result per
/// spec, in order.
async fn write(
    ctx: &Ctx,
    specs: Vec<(&ResourceAddr, ChangeAction, Result<RecordSpec, ProviderError>)>,
) -> Vec<Result<RecordSpec, ProviderError>> {
    let mut zones: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (_, _, s)) in specs.iter().enumerate() {
        if let Ok(s) = s {
            zones.entry(s.key.zone_id.clone()).or_default().push(i);
        }
    }
    let mut sent: Vec<Result<(), ProviderError>> = specs.iter().map(|_| Ok(())).collect();
    for (zone, idx) in zones {
        let group: Vec<(&ResourceAddr, ChangeAction, &RecordSpec)> =
            idx.iter().filter_map(|&i| Some((specs[i].0, specs[i].1.clone(), specs[i].2.as_ref().ok()?))).collect();
        for (i, r) in idx.into_iter().zip(write_zone(ctx, &zone, group).await) {
            sent[i] = r;
        }
    }
    specs.into_iter().zip(sent).map(|((_, _, spec), sent)| sent.and(spec)).collect()
}

/// How many times a zone's writes are sent, each time after reading what the zone holds.
const WRITE_ROUNDS: usize = 3;

/// Writes one zone's record sets. A request refused as a whole (a CREATE of a set that exists)
/// or whose outcome is unknown (a lost answer) is settled from a fresh listing ([`settle`]) and
/// what is still to do is sent again, a few times.
async fn write_zone(
    ctx: &Ctx,
    zone: &str,
    group: Vec<(&ResourceAddr, ChangeAction, &RecordSpec)>,
) -> Vec<Result<(), ProviderError>> {
    // `Some(action)` while a spec still has to be written.
    let mut todo: Vec<Option<ChangeAction>> = group.iter().map(|g| Some(g.1.clone())).collect();
    let mut out: Vec<Result<(), ProviderError>> = group.iter().map(|_| Ok(())).collect();
    for round in 1..=WRITE_ROUNDS {
        let open: Vec<usize> = (0..group.len()).filter(|&i| todo[i].is_some()).collect();
        if open.is_empty() {
            break;
        }
        let batch: Vec<(&ResourceAddr, &ChangeAction, &RecordSpec)> =
            open.iter().map(|&i| (group[i].0, todo[i].as_ref().expect("open"), group[i].2)).collect();
        let (changes, slots) = plan_writes(&batch);
        let mut unsettled = Vec::new();
        for (&i, r) in open.iter().zip(execute(ctx, zone, changes, slots).await) {
            match r {
                Err(e) if round < WRITE_ROUNDS && (e.kind().transient() || e.kind() == ErrorKind::Conflict) => {
                    out[i] = Err(e);
                    unsettled.push(i);
                }
                r => {
                    out[i] = r;
                    todo[i] = None;
                }
            }
        }
        if unsettled.is_empty() {
            break;
        }
        let known: Vec<&RecordKey> = group.iter().map(|g| &g.2.key).collect();
        let current = match list_sets(ctx, zone, &known).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                for &i in &unsettled {
                    out[i] = Err(ProviderError::other(format!(
                        "{}: hosted zone {zone} is gone; apply again to create it",
                        group[i].0
                    )));
                    todo[i] = None;
                }
                break;
            }
            Err(e) => {
                for &i in &unsettled {
                    out[i] = Err(e.clone());
                    todo[i] = None;
                }
                break;
            }
        };
        let now = index(&current);
        for i in unsettled {
            match settle(group[i].0, group[i].2, &current, &now) {
                Ok(next) => {
                    if next.is_none() {
                        out[i] = Ok(());
                    }
                    todo[i] = next;
                }
                Err(e) => {
                    out[i] = Err(e);
                    todo[i] = None;
                }
            }
        }
    }
    out
}

/// What a record set still needs, given what the zone holds: nothing if it is there as wanted
/// (a CREATE whose answer was lost did happen), an UPSERT if the set is there otherwise (the tool
/// takes over a set of its name and type, as a repeated create must), a CREATE if it is missing.
/// A CNAME cannot share its name with a set of another type, nor any set with a CNAME: that is
/// an error naming what is in the way, so the rest of the request can go on without it.
fn settle(
    addr: &ResourceAddr,
    spec: &RecordSpec,
    current: &[ResourceRecordSet],
    now: &HashMap<(String, String), &ResourceRecordSet>,
) -> Result<Option<ChangeAction>, ProviderError> {
    if let Some(set) = now.get(&spec.key.matcher()) {
        return Ok(differs(spec, set).then_some(ChangeAction::Upsert));
    }
    match clash(addr, spec, current, None) {
        Some(e) => Err(e),
        None => Ok(Some(ChangeAction::Create)),
    }
}

/// Whether the set Route 53 holds for `spec`'s name and type has another TTL or other values.
fn differs(spec: &RecordSpec, set: &ResourceRecordSet) -> bool {
    let found = RecordSpec::found(&spec.key.zone_id, set, None);
    let mut wanted = spec.values.clone();
    wanted.sort();
    found.ttl != spec.ttl || found.values != wanted
}

/// The error for a set of another type at `spec`'s name that `spec` cannot stand beside (a CNAME
/// shares its name with no other set), if the zone holds one; the set of type `leaving`, deleted in
/// the same request, does not count.
fn clash(
    addr: &ResourceAddr,
    spec: &RecordSpec,
    current: &[ResourceRecordSet],
    leaving: Option<&str>,
) -> Option<ProviderError> {
    let (name, rtype) = spec.key.matcher();
    let s = current.iter().find(|s| {
        let (n, t) = match_key(s.name(), s.r#type().as_str());
        n == name && t != rtype && Some(t.as_str()) != leaving && (t == "CNAME" || rtype == "CNAME")
    })?;
    Some(
        ApiError::new(
            SVC,
            "ChangeResourceRecordSets",
            ErrorKind::Conflict,
            "InvalidChangeBatch",
            format!(
                "{addr}: {} already holds a record set of type {}, and a CNAME cannot share its name with another \
                 record set; delete that record set or pick another name",
                spec.key.name,
                s.r#type().as_str()
            ),
        )
        .into(),
    )
}

/// A record changing type (a tenant moving between a dedicated and the shared controller: A ↔
/// CNAME), with the key of the set it had.
struct Swap<'a> {
    addr: &'a ResourceAddr,
    old: RecordKey,
    spec: &'a RecordSpec,
}

/// The changes that take a zone from `current` to `swap` done: the old set's DELETE (from what
/// the zone holds now, as Route 53 requires) and the new set's CREATE, or UPSERT if it is there
/// otherwise; none if it is done.
fn swap_changes(
    swap: &Swap<'_>,
    current: &[ResourceRecordSet],
    now: &HashMap<(String, String), &ResourceRecordSet>,
) -> Result<Vec<Change>, ProviderError> {
    let (old_type, spec) = (swap.old.rtype.to_ascii_uppercase(), swap.spec);
    if let Some(e) = clash(swap.addr, spec, current, Some(&old_type)) {
        return Err(e);
    }
    let mut changes = Vec::new();
    if let Some(set) = now.get(&swap.old.matcher()) {
        changes.push(Change::builder().action(ChangeAction::Delete).resource_record_set((*set).clone()).build());
    }
    let write = match now.get(&spec.key.matcher()) {
        None => Some(ChangeAction::Create),
        Some(set) => differs(spec, set).then_some(ChangeAction::Upsert),
    };
    if let Some(action) = write {
        changes.push(Change::builder().action(action).resource_record_set(spec.rrset()?).build());
    }
    changes.into_iter().map(|c| c.map_err(build_error)).collect()
}

/// Records of one zone that change type. Each one's DELETE and CREATE go in the same request,
/// which Route 53 makes as a whole: the name always answers, with the old set or the new one,
/// never with NXDOMAIN (which resolvers would keep for the zone's negative-caching time). Each
/// round reads the zone first, so a request whose answer was lost is not sent again: the next
/// round finds it done.
async fn swap_zone(ctx: &Ctx, zone: &str, swaps: &[Swap<'_>]) -> Vec<Result<(), ProviderError>> {
    let mut out: Vec<Result<(), ProviderError>> = swaps.iter().map(|_| Ok(())).collect();
    let mut open: Vec<usize> = (0..swaps.len()).collect();
    for round in 1..=WRITE_ROUNDS {
        let known: Vec<&RecordKey> = open.iter().flat_map(|&i| [&swaps[i].old, &swaps[i].spec.key]).collect();
        let current = match list_sets(ctx, zone, &known).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                for &i in &open {
                    let addr = swaps[i].addr;
                    out[i] = Err(ProviderError::other(format!(
                        "{addr}: hosted zone {zone} is gone; apply again to create it"
                    )));
                }
                break;
            }
            Err(e) => {
                for &i in &open {
                    out[i] = Err(e.clone());
                }
                break;
            }
        };
        let now = index(&current);
        let mut units: Vec<(usize, Vec<Change>)> = Vec::new();
        for &i in &open {
            match swap_changes(&swaps[i], &current, &now) {
                Ok(changes) if changes.is_empty() => out[i] = Ok(()),
                Ok(changes) => units.push((i, changes)),
                Err(e) => out[i] = Err(e),
            }
        }
        open.clear();
        let costs: Vec<Cost> = units.iter().map(|(_, c)| cost_of(c)).collect();
        for range in chunks(&costs) {
            let batch = units[range.clone()].iter().flat_map(|(_, c)| c.iter().cloned()).collect();
            let sent = send_changes(ctx, zone, batch).await;
            for &(i, _) in &units[range] {
                out[i] = match &sent {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        if round < WRITE_ROUNDS && (e.kind().transient() || e.kind() == ErrorKind::Conflict) {
                            open.push(i);
                        }
                        Err(e.clone())
                    }
                };
            }
        }
        if open.is_empty() {
            break;
        }
    }
    out
}

/// DELETEs record sets of any zones, from their current contents; one result per key, in order.
async fn delete_sets(ctx: &Ctx, keys: Vec<Result<RecordKey, ProviderError>>) -> Vec<Result<(), ProviderError>> {
    let mut zones: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        if let Ok(k) = k {
            zones.entry(k.zone_id.clone()).or_default().push(i);
        }
    }
    let mut out: Vec<Result<(), ProviderError>> = keys.iter().map(|_| Ok(())).collect();
    for (zone, idx) in zones {
        let group: Vec<&RecordKey> = idx.iter().filter_map(|&i| keys[i].as_ref().ok()).collect();
        let mut results: Vec<Result<(), ProviderError>> = Vec::new();
        // A DELETE whose answer was lost may have happened: read the zone again and delete what
        // is still there, a few times, rather than send the same DELETE twice.
        for _round in 0..DELETE_ROUNDS {
            results = match list_sets(ctx, &zone, &group).await {
                // The zone is gone, and its records with it.
                Ok(None) => group.iter().map(|_| Ok(())).collect(),
                Ok(Some(current)) => {
                    let (changes, slots) = plan_deletes(&group, &current);
                    execute(ctx, &zone, changes, slots).await
                }
                Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
            };
            if !results
                .iter()
                .any(|r| r.as_ref().is_err_and(|e| e.kind().transient() || e.kind() == ErrorKind::Conflict))
            {
                break;
            }
        }
        for (i, r) in idx.into_iter().zip(results) {
            out[i] = r;
        }
    }
    keys.into_iter().zip(out).map(|(k, r)| k.and(r)).collect()
}

/// The record sets of `items` that still exist: one listing per zone, never one call per record.
async fn read_sets<'i>(
    ctx: &Ctx,
    items: &'i [ReadItem],
    key_of: impl Fn(&ReadItem) -> Result<RecordKey, ProviderError>,
    values_attr: &str,
) -> Result<Vec<(&'i ReadItem, RecordSpec)>, ProviderError> {
    let mut zones: BTreeMap<String, Vec<(&ReadItem, RecordKey)>> = BTreeMap::new();
    for item in items {
        let key = key_of(item)?;
        zones.entry(key.zone_id.clone()).or_default().push((item, key));
    }
    let mut out = Vec::new();
    for (zone, wanted) in zones {
        if wanted.len() <= TARGETED_READS {
            // Look it up where it sits rather than walk the whole zone.
            for (item, key) in wanted {
                if let Some(s) = lookup_set(ctx, &zone, &key).await? {
                    out.push((item, RecordSpec::found(&zone, &s, item.attrs.get(values_attr))));
                }
            }
            continue;
        }
        // A zone that is gone takes all its records with it.
        let known: Vec<&RecordKey> = wanted.iter().map(|(_, k)| k).collect();
        let Some(sets) = list_sets(ctx, &zone, &known).await? else { continue };
        let now = index(&sets);
        for (item, key) in wanted {
            if let Some(s) = now.get(&key.matcher()) {
                out.push((item, RecordSpec::found(&zone, s, item.attrs.get(values_attr))));
            }
        }
    }
    Ok(out)
}

/// How many times a zone's deletes are planned from a fresh listing when a request fails in a way
/// that may have left part of it done.
const DELETE_ROUNDS: usize = 3;

/// A single record is read with one targeted call (refreshing one resource, as per-resource
/// refresh does); two or more with one walk of the zone.
const TARGETED_READS: usize = 1;

/// One record set, by a listing that starts at its name and type (`None` if it or its zone is gone).
async fn lookup_set(ctx: &Ctx, zone_id: &str, key: &RecordKey) -> Result<Option<ResourceRecordSet>, ProviderError> {
    let r = ctx
        .read(SVC, "ListResourceRecordSets", || {
            ctx.c
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .start_record_name(fqdn(&key.name))
                .start_record_type(RrType::from(key.rtype.as_str()))
                .max_items(1)
                .send()
        })
        .await;
    let Some(r) = not_found_none(r)? else { return Ok(None) };
    Ok(r.resource_record_sets()
        .iter()
        .find(|s| s.set_identifier().is_none() && match_key(s.name(), s.r#type().as_str()) == key.matcher())
        .cloned())
}

// ---------------------------------------------------------------------------------------------
// Hosted zone

struct Zone;

impl Zone {
    fn attrs(z: &HostedZone, mut name_servers: Vec<String>, adopted: bool) -> (String, Attrs) {
        let id = bare_zone_id(z.id()).to_string();
        name_servers = name_servers.iter().map(|n| bare_value(&RrType::Ns, n)).collect();
        name_servers.sort();
        (
            id.clone(),
            attrs([
                ("id", json!(id)),
                ("name", json!(bare_name(z.name()))),
                ("comment", json!(z.config().and_then(|c| c.comment()))),
                ("name_servers", json!(name_servers)),
                ("adopted", json!(adopted)),
            ]),
        )
    }

    /// The zone and its name servers, in one call; `None` if it is gone.
    async fn get(ctx: &Ctx, id: &str, adopted: bool) -> Result<Option<(String, Attrs)>, ProviderError> {
        let r = ctx.read(SVC, "GetHostedZone", || ctx.c.route53.get_hosted_zone().id(id).send()).await;
        let Some(r) = not_found_none(r)? else { return Ok(None) };
        let z = r.hosted_zone().ok_or_else(|| missing(SVC, "GetHostedZone", "HostedZone"))?;
        let ns = r.delegation_set().map(|d| d.name_servers().to_vec()).unwrap_or_default();
        Ok(Some(Self::attrs(z, ns, adopted)))
    }

    async fn one(ctx: &Ctx, id: &str, adopted: bool) -> Result<ApplyResponse, ProviderError> {
        let (id, attrs) = Self::get(ctx, id, adopted).await?.ok_or_else(|| missing(SVC, "GetHostedZone", "zone"))?;
        Ok(ApplyResponse::new(id, attrs))
    }

    async fn set_comment(ctx: &Ctx, id: &str, comment: Option<&str>) -> Result<(), ProviderError> {
        ctx.write(SVC, "UpdateHostedZoneComment", || {
            ctx.c.route53.update_hosted_zone_comment().id(id).set_comment(comment.map(str::to_string)).send()
        })
        .await?;
        Ok(())
    }

    fn adopted(attrs: &Attrs) -> bool {
        attrs.get("adopted").and_then(Json::as_bool).unwrap_or(false)
    }

    /// Takes over a zone someone else created: it gets our owner tags (so it is found again) and
    /// the configured comment, and is recorded as adopted. A zone that another platform or
    /// environment of this tool owns is refused: our tags would overwrite its owner's.
    async fn adopt(ctx: &Ctx, z: &HostedZone, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let id = bare_zone_id(z.id());
        let tags = zone_tags(ctx, id).await?;
        let mine = &req.identity.owner_tags;
        if [TAG_PLATFORM, TAG_ENVIRONMENT].iter().any(|k| tags.get(*k).is_some_and(|v| mine.get(*k) != Some(v))) {
            let tag = |k: &str| tags.get(k).map_or("?", String::as_str);
            return Err(ProviderError::other(format!(
                "{}: the hosted zone {} ({id}) belongs to platform {} environment {} of matih-infra; refusing to adopt it",
                req.addr,
                bare_name(z.name()),
                tag(TAG_PLATFORM),
                tag(TAG_ENVIRONMENT),
            )));
        }
        // Made by this very intent (its caller reference), whose answer was lost: not adopted.
        let created = z.caller_reference() == req.identity.client_token;
        let mut tags = tags_for(req, &BTreeMap::new());
        if !created {
            tags.push((TAG_ADOPTED.to_string(), "true".to_string()));
        }
        add_zone_tags(ctx, id, tags).await?;
        let want = Cfg::of(req).opt_str("comment");
        if want.is_some() && z.config().and_then(|c| c.comment()) != want {
            Self::set_comment(ctx, id, want).await?;
        }
        Self::one(ctx, id, !created).await
    }

    /// The public zones named `name` as candidates: their tags, and for one this intent created
    /// (its caller reference) whose tags never went on, the intent's owner tags.
    async fn candidates(ctx: &Ctx, name: &str, req: Option<&FindRequest>) -> Result<Vec<Found>, ProviderError> {
        let mut out = Vec::new();
        for z in public_zones_named(ctx, name).await? {
            let id = bare_zone_id(z.id());
            let mut tags = zone_tags(ctx, id).await?;
            let by_token = req.is_some_and(|r| !r.client_token.is_empty() && z.caller_reference() == r.client_token);
            if by_token && let Some(r) = req {
                tags.extend(r.owner_tags.clone());
            }
            let adopted = !by_token && Self::was_adopted(&tags);
            if let Some((id, attrs)) = Self::get(ctx, id, adopted).await? {
                out.push(Found::new(id, attrs, tags));
            }
        }
        Ok(out)
    }

    /// Whether tags say the zone was adopted rather than created (recorded as a tag so that a
    /// lost state can still tell).
    fn was_adopted(tags: &BTreeMap<String, String>) -> bool {
        tags.get(TAG_ADOPTED).is_some_and(|v| v == "true")
    }
}

/// Set on a zone the tool adopted instead of creating, so it is never deleted by the tool.
const TAG_ADOPTED: &str = "matih:adopted";

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

    /// The recorded zones, and every other public zone of their names carrying this platform's
    /// tags (a duplicate from a lost create shows as an orphan). Name servers are not in the
    /// listing: one look per zone (a platform has one).
    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        let mut names: Vec<String> =
            items.iter().filter_map(|i| i.attrs.get("name").and_then(Json::as_str).map(str::to_string)).collect();
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            for mut f in Self::candidates(ctx, &name, None).await? {
                let adopted = items.iter().find(|i| bare_zone_id(&i.id) == f.id).map(|i| Self::adopted(&i.attrs));
                let adopted = adopted.unwrap_or_else(|| Self::was_adopted(&f.tags));
                f.attrs.insert("adopted".into(), json!(adopted));
                out.push(f);
            }
        }
        // A recorded zone whose name changed outside the tool is still read by its id.
        for i in items {
            let id = bare_zone_id(&i.id);
            if !out.iter().any(|f| f.id == id)
                && let Some((id, attrs)) = Self::get(ctx, id, Self::adopted(&i.attrs)).await?
            {
                let tags = zone_tags(ctx, &id).await?;
                out.push(Found::new(id, attrs, tags));
            }
        }
        Ok(Listing::Owned(out))
    }

    /// Creates the zone, or adopts the one public zone that already has the name.
    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let name = cfg.str("name")?;
        let existing = public_zones_named(ctx, name).await?;
        match existing.as_slice() {
            [] => {}
            [z] => return Self::adopt(ctx, z, req).await,
            many => {
                let ids: Vec<&str> = many.iter().map(|z| bare_zone_id(z.id())).collect();
                return Err(ProviderError::other(format!(
                    "{}: {} public hosted zones are named {name} ({}); delete the extra ones so one can be adopted",
                    req.addr,
                    many.len(),
                    ids.join(", ")
                )));
            }
        }
        let token = &req.identity.client_token;
        let config = HostedZoneConfig::builder()
            .set_comment(cfg.opt_str("comment").map(str::to_string))
            .private_zone(false)
            .build();
        // Route 53 takes no tags in CreateHostedZone: until they are on, the caller reference
        // (the intent's token) is how a zone whose answer was lost is found again.
        let r = ctx
            .create(SVC, "CreateHostedZone", || {
                ctx.c
                    .route53
                    .create_hosted_zone()
                    .name(name)
                    .caller_reference(token)
                    .hosted_zone_config(config.clone())
                    .send()
            })
            .await?;
        let id = bare_zone_id(r.hosted_zone().ok_or_else(|| missing(SVC, "CreateHostedZone", "HostedZone"))?.id())
            .to_string();
        add_zone_tags(ctx, &id, tags_for(req, &BTreeMap::new())).await?;
        if let Some(change) = r.change_info() {
            wait_insync(ctx, change.id()).await?;
        }
        Self::one(ctx, &id, false).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let adopted = Self::adopted(&prior.attrs);
        // Owner tags again: a zone adopted after a lost create answer may not have them yet.
        let mut tags = tags_for(req, &BTreeMap::new());
        if adopted {
            tags.push((TAG_ADOPTED.to_string(), "true".to_string()));
        }
        add_zone_tags(ctx, &prior.id, tags).await?;
        let want = Cfg::of(req).opt_str("comment");
        if prior.attrs.get("comment").and_then(Json::as_str) != want {
            Self::set_comment(ctx, &prior.id, want).await?;
        }
        Self::one(ctx, &prior.id, adopted).await
    }

    /// Deletes a zone this tool created. An adopted zone was not created by this tool and may
    /// serve others: deleting it only takes our owner tags off, and the zone stays.
    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let id = bare_zone_id(&req.id);
        if Self::adopted(&req.attrs) {
            let keys = vec![TAG_PLATFORM.into(), TAG_ENVIRONMENT.into(), TAG_ADDRESS.into(), TAG_ADOPTED.into()];
            return gone_ok(
                ctx.write(SVC, "ChangeTagsForResource", || {
                    ctx.c
                        .route53
                        .change_tags_for_resource()
                        .resource_type(TagResourceType::Hostedzone)
                        .resource_id(id)
                        .set_remove_tag_keys(Some(keys.clone()))
                        .send()
                })
                .await,
            );
        }
        gone_ok(ctx.write(SVC, "DeleteHostedZone", || ctx.c.route53.delete_hosted_zone().id(id).send()).await)
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Self::candidates(ctx, &req.name, Some(req)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Record (batched)

struct Record;

impl Record {
    fn spec(req: &ApplyRequest) -> Result<RecordSpec, ProviderError> {
        let cfg = Cfg::of(req);
        RecordSpec::from_cfg(&cfg, cfg.str("zone_id")?, cfg.str("name")?, cfg.str("type")?, "values")
    }

    fn attrs(s: &RecordSpec) -> Attrs {
        attrs([
            ("id", json!(s.key.id())),
            ("zone_id", json!(s.key.zone_id)),
            ("name", json!(s.key.name)),
            ("type", json!(s.key.rtype)),
            ("ttl", json!(s.ttl)),
            ("values", json!(s.values)),
        ])
    }
}

/// Creates or updates `dns.record`s together: one request per zone (per 1,000 records), a CREATE
/// for each record the tool has not recorded and an UPSERT for each it changes. Records that
/// change type are swapped in requests of their own ([`swap_zone`]).
async fn apply_records(ctx: &Ctx, reqs: &[ApplyRequest]) -> Vec<Result<ApplyResponse, ProviderError>> {
    let specs: Vec<Result<RecordSpec, ProviderError>> = reqs.iter().map(Record::spec).collect();
    // The key a record had, where it changes type.
    let old: Vec<Option<RecordKey>> = reqs
        .iter()
        .zip(&specs)
        .map(|(r, s)| {
            let (prior, spec) = (r.prior.as_ref()?, s.as_ref().ok()?);
            let old = RecordKey::of_record(&r.addr, &prior.id, &prior.attrs).ok()?;
            (!old.rtype.eq_ignore_ascii_case(&spec.key.rtype)).then_some(old)
        })
        .collect();
    let plain = reqs
        .iter()
        .zip(&specs)
        .zip(&old)
        .filter(|(_, old)| old.is_none())
        .map(|((r, s), _)| {
            let action = if r.prior.is_some() { ChangeAction::Upsert } else { ChangeAction::Create };
            (&r.addr, action, s.clone())
        })
        .collect();
    let mut written = write(ctx, plain).await.into_iter();
    let mut zones: BTreeMap<&str, Vec<(usize, Swap<'_>)>> = BTreeMap::new();
    for (i, ((r, s), old)) in reqs.iter().zip(&specs).zip(old).enumerate() {
        if let (Some(old), Ok(spec)) = (old, s) {
            zones.entry(&spec.key.zone_id).or_default().push((i, Swap { addr: &r.addr, old, spec }));
        }
    }
    let mut swapped: HashMap<usize, Result<(), ProviderError>> = HashMap::new();
    for (zone, swaps) in zones {
        let (at, swaps): (Vec<usize>, Vec<Swap<'_>>) = swaps.into_iter().unzip();
        swapped.extend(at.into_iter().zip(swap_zone(ctx, zone, &swaps).await));
    }
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let done = match swapped.remove(&i) {
                Some(r) => r.and_then(|()| s.clone()),
                None => written.next().expect("a result for each record not swapped"),
            };
            done.map(|s| ApplyResponse::new(s.key.id(), Record::attrs(&s)))
        })
        .collect()
}

/// Deletes `dns.record`s together: one listing and one DELETE request per zone.
async fn delete_records(ctx: &Ctx, reqs: &[DeleteRequest]) -> Vec<Result<(), ProviderError>> {
    delete_sets(ctx, reqs.iter().map(|r| RecordKey::of_record(&r.addr, &r.id, &r.attrs)).collect()).await
}

fn only<T>(mut v: Vec<Result<T, ProviderError>>) -> Result<T, ProviderError> {
    v.pop().unwrap_or_else(|| Err(ProviderError::other("route53: a batch of one gave no result")))
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
        let found = read_sets(ctx, items, |i| RecordKey::of_record(&i.addr, &i.id, &i.attrs), "values").await?;
        Ok(Listing::ById(
            found
                .into_iter()
                .map(|(i, s)| (i.addr.clone(), ReadResource { id: i.id.clone(), attrs: Record::attrs(&s) }))
                .collect(),
        ))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        only(apply_records(ctx, std::slice::from_ref(req)).await)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        only(apply_records(ctx, std::slice::from_ref(req)).await)
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        only(delete_records(ctx, std::slice::from_ref(req)).await)
    }

    /// Nothing to find: Route 53 holds at most one simple record set per name and type, and a
    /// create that meets the set takes it over (see [`settle`]), so a repeated create is harmless.
    async fn find(&self, _ctx: &Ctx, _req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Ok(Vec::new())
    }

    /// The record changes of one apply go out together.
    async fn apply_batch(&self, ctx: &Ctx, reqs: &[ApplyRequest]) -> Option<Vec<Result<ApplyResponse, ProviderError>>> {
        Some(apply_records(ctx, reqs).await)
    }

    async fn delete_batch(&self, ctx: &Ctx, reqs: &[DeleteRequest]) -> Option<Vec<Result<(), ProviderError>>> {
        Some(delete_records(ctx, reqs).await)
    }
}

// ---------------------------------------------------------------------------------------------
// Delegation: the NS record of this environment's zone in the parent environment's zone

struct Delegation;

impl Delegation {
    fn attrs(s: &RecordSpec, parent_zone_name: Option<&Json>) -> Attrs {
        attrs([
            ("id", json!(s.key.id())),
            ("parent_zone_name", parent_zone_name.cloned().unwrap_or(Json::Null)),
            ("name", json!(s.key.name)),
            ("ttl", json!(s.ttl)),
            ("name_servers", json!(s.values)),
        ])
    }

    /// The parent zone's id; it belongs to another environment's state and must exist already.
    async fn parent_zone_id(ctx: &Ctx, req: &ApplyRequest, parent: &str) -> Result<String, ProviderError> {
        let zones = public_zones_named(ctx, parent).await?;
        match zones.as_slice() {
            [z] => Ok(bare_zone_id(z.id()).to_string()),
            [] => Err(ProviderError::other(format!(
                "{}: there is no public hosted zone named {parent} to delegate {} from; create the parent \
                 environment's zone first (apply the parent environment), then apply this one",
                req.addr,
                Cfg::of(req).opt_str("name").unwrap_or("this zone"),
            ))),
            many => Err(ProviderError::other(format!(
                "{}: {} public hosted zones are named {parent}; keep only the parent environment's zone",
                req.addr,
                many.len()
            ))),
        }
    }

    async fn put(ctx: &Ctx, req: &ApplyRequest, zone_id: &str) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let spec = RecordSpec::from_cfg(&cfg, zone_id, cfg.str("name")?, "NS", "name_servers");
        let s = only(write(ctx, vec![(&req.addr, ChangeAction::Upsert, spec)]).await)?;
        Ok(ApplyResponse::new(s.key.id(), Self::attrs(&s, cfg.get("parent_zone_name"))))
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
        let found = read_sets(ctx, items, |i| RecordKey::of(&i.addr, &i.id), "name_servers").await?;
        Ok(Listing::ById(
            found
                .into_iter()
                .map(|(i, s)| {
                    let attrs = Delegation::attrs(&s, i.attrs.get("parent_zone_name"));
                    (i.addr.clone(), ReadResource { id: i.id.clone(), attrs })
                })
                .collect(),
        ))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let zone_id = Self::parent_zone_id(ctx, req, Cfg::of(req).str("parent_zone_name")?).await?;
        Self::put(ctx, req, &zone_id).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        // The parent zone cannot change in place (`parent_zone_name` forces replacement).
        let zone_id = RecordKey::of(&req.addr, &prior.id)?.zone_id;
        Self::put(ctx, req, &zone_id).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        only(delete_sets(ctx, vec![RecordKey::of(&req.addr, &req.id)]).await)
    }

    /// Nothing to find: the delegation is one NS record set, unique by name in the parent zone,
    /// and create is an UPSERT that takes over whatever is there.
    async fn find(&self, _ctx: &Ctx, _req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, rtype: RrType, ttl: i64, values: &[&str]) -> ResourceRecordSet {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(rtype)
            .ttl(ttl)
            .set_resource_records(Some(
                values.iter().map(|v| ResourceRecord::builder().value(*v).build().unwrap()).collect(),
            ))
            .build()
            .unwrap()
    }

    fn key(name: &str, rtype: &str) -> RecordKey {
        RecordKey { zone_id: "Z1".into(), name: name.into(), rtype: rtype.into() }
    }

    fn spec(name: &str, values: &[&str]) -> RecordSpec {
        RecordSpec { key: key(name, "A"), ttl: Some(300), values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn walks_start_at_every_spanth_known_set_in_listing_order() {
        let few: Vec<RecordKey> = (0..WALK_SPAN).map(|i| key(&format!("t{i}.matih.ai"), "CNAME")).collect();
        assert!(walk_starts(&few.iter().collect::<Vec<_>>()).is_empty(), "a span's worth is one walk");

        // Given in reverse, named in mixed case, each twice: the starts are the same.
        let n = 2 * WALK_SPAN + 10;
        let mut keys: Vec<RecordKey> = (0..n).map(|i| key(&format!("T{i:04}.matih.ai"), "cname")).collect();
        keys.reverse();
        let twice: Vec<&RecordKey> = keys.iter().chain(&keys).collect();
        let want = |i: usize| (format!("t{i:04}.matih.ai"), "CNAME".to_string());
        assert_eq!(walk_starts(&twice), vec![want(WALK_SPAN), want(2 * WALK_SPAN)]);

        // By labels reversed: every name under `b.matih.ai` sorts after `c.a.matih.ai`.
        let mut order: Vec<(String, String)> =
            [("x.b.matih.ai", "A"), ("c.a.matih.ai", "A"), ("a.matih.ai", "TXT"), ("a.matih.ai", "A")]
                .iter()
                .map(|(n, t)| key(n, t).matcher())
                .collect();
        order.sort_by(listing_order);
        let names: Vec<String> = order.iter().map(|(n, t)| format!("{n} {t}")).collect();
        assert_eq!(names, ["a.matih.ai A", "a.matih.ai TXT", "c.a.matih.ai A", "x.b.matih.ai A"]);

        // Never more than MAX_WALKS walks: the span grows instead.
        let many: Vec<RecordKey> =
            (0..WALK_SPAN * MAX_WALKS * 3).map(|i| key(&format!("t{i:06}.matih.ai"), "A")).collect();
        assert_eq!(walk_starts(&many.iter().collect::<Vec<_>>()).len(), MAX_WALKS - 1);
    }

    fn values_of(c: &Change) -> (Option<i64>, Vec<&str>) {
        let s = c.resource_record_set().unwrap();
        (s.ttl(), s.resource_records().iter().map(|r| r.value()).collect())
    }

    #[test]
    fn ids_and_names_lose_route53_decoration() {
        assert_eq!(bare_zone_id("/hostedzone/Z0123ABC"), "Z0123ABC");
        assert_eq!(bare_zone_id("Z0123ABC"), "Z0123ABC");
        assert_eq!(bare_change_id("/change/C9"), "C9");
        assert_eq!(bare_name("api.staging.matih.ai."), "api.staging.matih.ai");
        assert_eq!(bare_name("api.staging.matih.ai"), "api.staging.matih.ai");
        assert_eq!(bare_name("\\052.matih.ai."), "*.matih.ai");
        assert_eq!(bare_name("a\\05"), "a\\05", "an incomplete escape stays as it is");
        assert_eq!(fqdn("matih.ai"), "matih.ai.");
        assert_eq!(fqdn("matih.ai."), "matih.ai.");
        assert_eq!(bare_value(&RrType::Ns, "ns-1.awsdns-01.org."), "ns-1.awsdns-01.org");
        assert_eq!(match_key("API.Matih.AI.", "a"), match_key("api.matih.ai", "A"));
    }

    #[test]
    fn record_ids_round_trip() {
        let k = key("api.matih.ai", "A");
        assert_eq!(k.id(), "Z1/api.matih.ai/A");
        assert_eq!(RecordKey::parse(&k.id()), Some(k));
        assert_eq!(RecordKey::parse("Z1/api.matih.ai"), None);
        assert_eq!(RecordKey::parse("Z1//A"), None);
        let attrs = attrs([("zone_id", json!("/hostedzone/Z2")), ("name", json!("x.matih.ai.")), ("type", json!("A"))]);
        let addr = ResourceAddr::must("dns.record.api");
        let from_attrs = RecordKey::of_record(&addr, "Z1/api.matih.ai/A", &attrs).unwrap();
        assert_eq!(from_attrs.id(), "Z2/x.matih.ai/A");
        let from_id = RecordKey::of_record(&addr, "Z1/api.matih.ai/A", &Attrs::new()).unwrap();
        assert_eq!(from_id.id(), "Z1/api.matih.ai/A");
        assert!(RecordKey::of_record(&addr, "nonsense", &Attrs::new()).is_err());
    }

    #[test]
    fn values_keep_the_recorded_order_unless_they_changed() {
        let now = vec!["3.3.3.3".to_string(), "1.1.1.1".to_string(), "2.2.2.2".to_string()];
        let recorded = json!(["2.2.2.2", "3.3.3.3", "1.1.1.1"]);
        assert_eq!(in_recorded_order(now.clone(), Some(&recorded)), vec!["2.2.2.2", "3.3.3.3", "1.1.1.1"]);
        let other = json!(["2.2.2.2", "9.9.9.9", "1.1.1.1"]);
        assert_eq!(in_recorded_order(now.clone(), Some(&other)), vec!["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
        assert_eq!(in_recorded_order(now, None), vec!["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
    }

    #[test]
    fn chunks_stay_within_every_limit() {
        let one = Cost { changes: 1, records: 1, chars: 7 };
        let sizes = |c: Vec<Range<usize>>| c.iter().map(|r| r.len()).collect::<Vec<_>>();
        assert_eq!(sizes(chunks(&vec![one; 2500])), vec![1000, 1000, 500]);
        // An UPSERT of one value costs two records: 500 to a request.
        let upsert = Cost { changes: 1, records: 2, chars: 14 };
        assert_eq!(sizes(chunks(&vec![upsert; 1200])), vec![500, 500, 200]);
        // Long values: the character limit binds first.
        let long = Cost { changes: 1, records: 2, chars: 4000 };
        assert_eq!(sizes(chunks(&[long; 10])), vec![8, 2]);
        // Too big alone: sent alone, and the rest carries on.
        let huge = Cost { changes: 1, records: 1, chars: 40_000 };
        assert_eq!(chunks(&[one, huge, one]), vec![0..1, 1..2, 2..3]);
        assert!(chunks(&[]).is_empty());
        // The ranges cover every change exactly once, in order.
        let ranges = chunks(&vec![upsert; 1001]);
        assert_eq!(ranges.first().unwrap().start, 0);
        assert_eq!(ranges.last().unwrap().end, 1001);
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn changes_that_go_together_stay_in_one_request() {
        // Swaps of two changes each: 500 to a request of at most 1,000 changes.
        let pair = Cost { changes: 2, records: 2, chars: 30 };
        let sizes = |c: Vec<Range<usize>>| c.iter().map(|r| r.len()).collect::<Vec<_>>();
        assert_eq!(sizes(chunks(&vec![pair; 1100])), vec![500, 500, 100]);
        let a = set("t1.matih.ai.", RrType::A, 300, &["1.1.1.1", "2.2.2.2"]);
        let del = Change::builder().action(ChangeAction::Delete).resource_record_set(a.clone()).build().unwrap();
        let up = Change::builder().action(ChangeAction::Upsert).resource_record_set(a).build().unwrap();
        assert_eq!(cost_of(&[del, up]), Cost { changes: 2, records: 6, chars: 42 });
    }

    #[test]
    fn a_swap_deletes_what_the_zone_holds_and_creates_the_new_type_in_one_request() {
        let addr = ResourceAddr::must(r#"dns.record.tenant["t1"]"#);
        let cname =
            RecordSpec { key: key("t1.matih.ai", "CNAME"), ttl: Some(300), values: vec!["ingress.matih.ai".into()] };
        let swap = Swap { addr: &addr, old: key("t1.matih.ai", "A"), spec: &cname };
        let changes_for = |current: &[ResourceRecordSet]| swap_changes(&swap, current, &index(current));
        let actions = |c: Result<Vec<Change>, ProviderError>| {
            c.unwrap()
                .iter()
                .map(|c| {
                    (c.action().as_str().to_string(), c.resource_record_set().unwrap().r#type().as_str().to_string())
                })
                .collect::<Vec<_>>()
        };
        // The A set as the zone holds it now (its values changed outside the tool): deleted as is.
        let a = set("T1.matih.ai.", RrType::A, 60, &["9.9.9.9"]);
        let changes = changes_for(std::slice::from_ref(&a)).unwrap();
        assert_eq!(changes[0].resource_record_set(), Some(&a));
        assert_eq!(actions(Ok(changes)), [("DELETE".into(), "A".into()), ("CREATE".into(), "CNAME".into())]);
        // Done already (a lost answer): nothing; half there: what is left.
        let done = set("t1.matih.ai.", RrType::Cname, 300, &["ingress.matih.ai."]);
        assert!(changes_for(&[done]).unwrap().is_empty());
        assert_eq!(actions(changes_for(&[])), [("CREATE".to_string(), "CNAME".to_string())]);
        let stale = set("t1.matih.ai.", RrType::Cname, 60, &["ingress.matih.ai."]);
        assert_eq!(actions(changes_for(&[stale])), [("UPSERT".to_string(), "CNAME".to_string())]);
        // A set of a third type at the name: the CNAME cannot stand beside it; nothing is sent.
        let aaaa = set("t1.matih.ai.", RrType::Aaaa, 300, &["2001:db8::1"]);
        let e = changes_for(&[a, aaaa]).unwrap_err();
        assert!(e.to_string().contains("already holds a record set of type AAAA"), "{e}");
    }

    #[test]
    fn upserts_cost_double() {
        let s = spec("api.matih.ai", &["1.1.1.1", "2.2.2.2"]);
        let addr = ResourceAddr::must("dns.record.api");
        let (changes, _) = plan_writes(&[(&addr, &ChangeAction::Upsert, &s)]);
        assert_eq!(cost(&changes[0]), Cost { changes: 1, records: 4, chars: 28 });
        let (creates, _) = plan_writes(&[(&addr, &ChangeAction::Create, &s)]);
        assert_eq!(cost(&creates[0]), Cost { changes: 1, records: 2, chars: 14 });
        let (deletes, _) = plan_deletes(&[&s.key], &[s.rrset().unwrap()]);
        assert_eq!(cost(&deletes[0]), Cost { changes: 1, records: 2, chars: 14 });
    }

    #[test]
    fn upserts_share_identical_requests_and_refuse_conflicting_ones() {
        let (a, b, c) = (
            ResourceAddr::must("dns.record.a"),
            ResourceAddr::must("dns.record.b"),
            ResourceAddr::must("dns.record.c"),
        );
        let api = spec("api.matih.ai", &["1.1.1.1"]);
        let clash = spec("api.matih.ai", &["9.9.9.9"]);
        let t1 = spec("t1.matih.ai", &["2.2.2.2"]);
        let up = ChangeAction::Upsert;
        let create = ChangeAction::Create;
        let (changes, slots) = plan_writes(&[(&a, &up, &api), (&b, &create, &t1), (&c, &up, &clash)]);
        assert_eq!(changes.len(), 2);
        assert_eq!(*changes[0].action(), ChangeAction::Upsert);
        assert_eq!(*changes[1].action(), ChangeAction::Create);
        assert_eq!(changes[0].resource_record_set().unwrap().name(), "api.matih.ai.");
        assert!(matches!(slots[0], Ok(Some(0))));
        assert!(matches!(slots[1], Ok(Some(1))));
        let Err(ProviderError::Config { addr, message }) = &slots[2] else { panic!("{:?}", slots[2]) };
        assert_eq!(addr, &c);
        assert!(message.contains("dns.record.a"), "{message}");
        // Two addresses asking for the very same record set: one change serves both.
        let (changes, slots) = plan_writes(&[(&a, &up, &api), (&b, &up, &api.clone())]);
        assert_eq!(changes.len(), 1);
        assert!(matches!(slots[1], Ok(Some(0))));
    }

    #[test]
    fn unsettled_writes_follow_what_the_zone_holds() {
        let current = vec![
            set("api.matih.ai.", RrType::A, 300, &["2.2.2.2", "1.1.1.1"]),
            set("old.matih.ai.", RrType::A, 300, &["3.3.3.3"]),
            set("acme.matih.ai.", RrType::Cname, 300, &["ingress.matih.ai."]),
            set("mail.matih.ai.", RrType::Txt, 300, &["\"v=spf1\""]),
        ];
        let now = index(&current);
        let addr = ResourceAddr::must("dns.record.x");
        let settle = |s: &RecordSpec| settle(&addr, s, &current, &now);
        // There as wanted (values in any order): the lost CREATE happened.
        assert_eq!(settle(&spec("api.matih.ai", &["1.1.1.1", "2.2.2.2"])).unwrap(), None);
        let cname =
            |n: &str| RecordSpec { key: key(n, "CNAME"), ttl: Some(300), values: vec!["ingress.matih.ai".into()] };
        assert_eq!(settle(&cname("acme.matih.ai")).unwrap(), None, "a CNAME's trailing dot is no difference");
        // There otherwise: taken over.
        assert_eq!(settle(&spec("old.matih.ai", &["4.4.4.4"])).unwrap(), Some(ChangeAction::Upsert));
        // Missing: created again.
        assert_eq!(settle(&spec("new.matih.ai", &["4.4.4.4"])).unwrap(), Some(ChangeAction::Create));
        // In the way of a CNAME, or held by one: an error naming the other set.
        let e = settle(&cname("old.matih.ai")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("already holds a record set of type A"), "{e}");
        assert!(settle(&cname("mail.matih.ai")).unwrap_err().to_string().contains("TXT"));
        assert!(settle(&spec("acme.matih.ai", &["1.1.1.1"])).unwrap_err().to_string().contains("CNAME"));
    }

    #[test]
    fn deletes_use_current_values_and_skip_what_is_gone() {
        // Recorded as TTL 300 with 1.1.1.1; changed outside the tool since.
        let current = vec![
            set("matih.ai.", RrType::Ns, 172800, &["ns-1.awsdns-01.org."]),
            set("api.matih.ai.", RrType::A, 60, &["5.5.5.5", "6.6.6.6"]),
            set("t1.matih.ai.", RrType::A, 300, &["2.2.2.2"]),
        ];
        let api = key("api.matih.ai", "A");
        let gone = key("old.matih.ai", "A");
        let t1 = key("T1.matih.ai", "A");
        let (changes, slots) = plan_deletes(&[&api, &gone, &t1, &api], &current);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| *c.action() == ChangeAction::Delete));
        assert_eq!(values_of(&changes[0]), (Some(60), vec!["5.5.5.5", "6.6.6.6"]));
        assert_eq!(values_of(&changes[1]), (Some(300), vec!["2.2.2.2"]));
        assert!(matches!(slots[0], Ok(Some(0))));
        assert!(matches!(slots[1], Ok(None)), "already gone: nothing to send");
        assert!(matches!(slots[2], Ok(Some(1))));
        assert!(matches!(slots[3], Ok(Some(0))), "a record set is deleted once per request");
    }

    #[test]
    fn only_simple_record_sets_match() {
        let weighted = ResourceRecordSet::builder()
            .name("api.matih.ai.")
            .r#type(RrType::A)
            .set_identifier("blue")
            .weight(10)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value("7.7.7.7").build().unwrap())
            .build()
            .unwrap();
        let (changes, slots) = plan_deletes(&[&key("api.matih.ai", "A")], &[weighted]);
        assert!(changes.is_empty());
        assert!(matches!(slots[0], Ok(None)));
    }

    #[test]
    fn found_records_have_the_configured_shape() {
        let s = set("api.matih.ai.", RrType::A, 300, &["3.3.3.3", "1.1.1.1"]);
        let found = RecordSpec::found("Z1", &s, Some(&json!(["3.3.3.3", "1.1.1.1"])));
        assert_eq!(found, spec("api.matih.ai", &["3.3.3.3", "1.1.1.1"]));
        let a = Record::attrs(&found);
        assert_eq!(a["id"], json!("Z1/api.matih.ai/A"));
        assert_eq!(a["ttl"], json!(300));
        let ns = set("staging.matih.ai.", RrType::Ns, 172800, &["ns-2.awsdns-02.net.", "ns-1.awsdns-01.org."]);
        let d = Delegation::attrs(&RecordSpec::found("Z9", &ns, None), Some(&json!("matih.ai")));
        assert_eq!(d["id"], json!("Z9/staging.matih.ai/NS"));
        assert_eq!(d["name_servers"], json!(["ns-1.awsdns-01.org", "ns-2.awsdns-02.net"]));
        assert_eq!(d["parent_zone_name"], json!("matih.ai"));
    }
}
