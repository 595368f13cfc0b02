//! Azure DNS: the platform's public zone (created, or adopted when it exists), the A records of
//! `api.`, `ingress.` and dedicated tenants, the CNAMEs of shared tenants, and the NS delegation of
//! a child environment's zone in its parent.
//!
//! Record sets carry the owner marks in their `metadata` (they have no tags), are created with
//! `If-None-Match: *` and changed with `If-Match` on their etag, as the Azure DNS API documents:
//! a record set someone else wrote in the meantime is never overwritten silently. Azure DNS has
//! no batch API, so each record set is one PUT; refresh lists each zone's record sets of each type
//! once.
//!
//! Not here: private zones, alias record sets, DNSSEC.

use async_trait::async_trait;
use matih_plans::*;
use matih_provider_kit::{Found, Kind, Listing, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::arm::Cond;
use crate::kind::*;
use crate::models::{self, parse};

const DNS_API: &str = "2018-05-01";
const NETWORK: &str = "Microsoft.Network";

pub fn kinds() -> Vec<Box<dyn Kind<Ctx>>> {
    vec![Box::new(ArmKind(Zone)), Box::new(ArmKind(Record)), Box::new(Delegation)]
}

fn bare(name: &str) -> &str {
    name.trim_end_matches('.')
}

/// `api.matih.ai` in zone `matih.ai` → `api`; the apex → `@`.
pub fn relative(fqdn: &str, zone: &str) -> String {
    let fqdn = bare(fqdn);
    if fqdn == zone { "@".into() } else { fqdn.strip_suffix(&format!(".{zone}")).unwrap_or(fqdn).to_string() }
}

// ---------------------------------------------------------------------------------------------

pub struct Zone;

#[async_trait]
impl ArmType for Zone {
    fn schema(&self) -> TypeSchema {
        schema("dns", "zone")
            .force_new(&["name", "location"])
            .updatable(&["comment"])
            .computed(&["id", "name_servers", "adopted"])
            .protected()
            .build()
    }
    fn api(&self) -> &'static str {
        DNS_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (NETWORK, "Zones")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        ctx.id(&[NETWORK, "dnsZones"], name)
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        let mut b = models::body(&models::Zone {
            properties: models::ZoneProperties { zone_type: "Public".into(), name_servers: vec![] },
        });
        // Azure DNS zones have no description: the comment is a tag.
        if let Some(c) = cfg.opt_str("comment") {
            b["tags"] = json!({ "description": c });
        }
        Ok(b)
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let z: models::Zone = parse(j)?;
        let mut ns: Vec<String> = z.properties.name_servers.iter().map(|n| bare(n).to_string()).collect();
        ns.sort();
        Ok(attrs([
            ("id", at(j, "/id")),
            ("name", at(j, "/name")),
            ("location", at(j, "/location")),
            ("comment", at(j, "/tags/description")),
            ("name_servers", json!(ns)),
        ]))
    }
    fn adoptable(&self) -> bool {
        true
    }
    fn conditional(&self) -> bool {
        true
    }
    fn if_none_match(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// An A or CNAME record set of the platform's zone (its name is the fully qualified name). The
/// type is part of the record set's id (`…/dnsZones/<zone>/CNAME/<name>`).
pub struct Record;

/// The record types `dns.record` writes.
const RECORD_TYPES: [&str; 2] = ["A", "CNAME"];

impl Record {
    fn typed_id(ctx: &Ctx, rtype: &str, name: &str) -> String {
        ctx.id(&[NETWORK, "dnsZones", rtype], &format!("{}/{}", ctx.zone, relative(name, &ctx.zone)))
    }

    /// `A` or `CNAME`, from the configuration.
    fn rtype<'a>(cfg: &Cfg<'a>) -> Result<&'a str, ProviderError> {
        let t = cfg.str("type")?;
        RECORD_TYPES.contains(&t).then_some(t).ok_or_else(|| ProviderError::Config {
            addr: cfg.addr.clone(),
            message: format!("record type `{t}` is not one Azure DNS records are written as here (A, CNAME)"),
        })
    }
}

#[async_trait]
impl ArmType for Record {
    /// `type` forces a replacement: Azure DNS keeps each type's record set as a resource of its
    /// own, with no request that deletes one and creates another as a whole, and refuses a CNAME
    /// beside another record set. So a record changing type (A ↔ CNAME) is deleted, then created:
    /// the name is without an answer for the time between the two requests.
    fn schema(&self) -> TypeSchema {
        schema("dns", "record")
            .force_new(&["zone_id", "name", "type"])
            .updatable(&["ttl", "values"])
            .computed(&["id"])
            .build()
    }
    fn api(&self) -> &'static str {
        DNS_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (NETWORK, "RecordSets")
    }
    /// The A record set of the name (what `find` looks at first).
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        Self::typed_id(ctx, "A", name)
    }
    fn create_id(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<String, ProviderError> {
        Ok(Self::typed_id(ctx, Self::rtype(&Cfg::of(req))?, &req.identity.name))
    }
    fn find_ids(&self, ctx: &Ctx, name: &str) -> Vec<String> {
        RECORD_TYPES.iter().map(|t| Self::typed_id(ctx, t, name)).collect()
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        let values = cfg.strs("values")?;
        let mut properties = models::RecordSetProperties { ttl: cfg.u64("ttl")?, ..Default::default() };
        match Self::rtype(cfg)? {
            "CNAME" => {
                let [target] = values.as_slice() else {
                    return Err(ProviderError::Config {
                        addr: cfg.addr.clone(),
                        message: format!("a CNAME holds one name, not {}", values.len()),
                    });
                };
                properties.cname_record = Some(models::CnameRecord { cname: bare(target).to_string() });
            }
            _ => {
                properties.a_records = Some(values.into_iter().map(|ip| models::ARecord { ipv4_address: ip }).collect())
            }
        }
        Ok(models::body(&models::RecordSet { properties }))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let id = j["id"].as_str().unwrap_or_default();
        let r: models::RecordSet = parse(j)?;
        // `…/dnszones/<zone>/<type>/<name>`: the type is the collection's last segment.
        let rtype = collection_of(id).rsplit('/').next().unwrap_or_default().to_ascii_uppercase();
        let mut values: Vec<String> = match &r.properties.cname_record {
            Some(c) => vec![bare(&c.cname).to_string()],
            None => r.properties.a_records.unwrap_or_default().into_iter().map(|a| a.ipv4_address).collect(),
        };
        values.sort();
        Ok(attrs([
            ("id", json!(id)),
            ("zone_id", json!(collection_of(collection_of(id)))),
            ("name", json!(bare(&r.properties.fqdn))),
            ("type", json!(rtype)),
            ("ttl", json!(r.properties.ttl)),
            ("values", json!(values)),
        ]))
    }
    fn tracked(&self) -> bool {
        false
    }
    fn marks(&self) -> Marks {
        Marks::Metadata
    }
    fn shared_name(&self) -> bool {
        true
    }
    fn conditional(&self) -> bool {
        true
    }
    fn if_none_match(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// The NS record set delegating this environment's zone, in the parent environment's zone
/// (found by name in the subscription: it usually lives in another resource group).
pub struct Delegation;

impl Delegation {
    /// The parent zone's id; `None` if the subscription has no zone of that name.
    async fn parent(ctx: &Ctx, name: &str, addr: &ResourceAddr) -> Result<Option<String>, ProviderError> {
        let zones = ctx
            .arm
            .list(
                &format!("/subscriptions/{}/providers/{NETWORK}/dnszones", ctx.subscription),
                DNS_API,
                "",
                op(NETWORK, "Zones", "List"),
            )
            .await?;
        let found: Vec<&str> =
            zones.iter().filter(|z| z["name"].as_str() == Some(name)).filter_map(|z| z["id"].as_str()).collect();
        match found.as_slice() {
            [one] => Ok(Some(one.to_string())),
            [] => Ok(None),
            many => Err(ProviderError::other(format!(
                "{addr}: {} zones are named {name} in subscription {} ({}); delegation needs exactly one",
                many.len(),
                ctx.subscription,
                many.join(", ")
            ))),
        }
    }

    fn attrs(j: &Json, parent: &str) -> Result<Attrs, ProviderError> {
        let r: models::RecordSet = parse(j)?;
        let mut ns: Vec<String> =
            r.properties.ns_records.unwrap_or_default().iter().map(|n| bare(&n.nsdname).to_string()).collect();
        ns.sort();
        Ok(attrs([
            ("id", at(j, "/id")),
            ("parent_zone_name", json!(parent)),
            ("name", json!(bare(&r.properties.fqdn))),
            ("ttl", json!(r.properties.ttl)),
            ("name_servers", json!(ns)),
        ]))
    }

    fn body(req: &ApplyRequest) -> Result<Json, ProviderError> {
        let cfg = Cfg::of(req);
        let ns =
            cfg.strs("name_servers")?.iter().map(|n| models::NsRecord { nsdname: format!("{}.", bare(n)) }).collect();
        Ok(models::body(&models::RecordSet {
            properties: models::RecordSetProperties {
                ttl: cfg.u64("ttl")?,
                ns_records: Some(ns),
                metadata: req.identity.owner_tags.clone(),
                ..Default::default()
            },
        }))
    }

    async fn write(
        &self,
        ctx: &Ctx,
        req: &ApplyRequest,
        cond: Cond<'_>,
        id: &str,
    ) -> Result<ApplyResponse, ProviderError> {
        let parent = Cfg::of(req).str("parent_zone_name")?;
        let j = ctx
            .arm
            .put(
                id,
                DNS_API,
                &Self::body(req)?,
                cond,
                op(NETWORK, "RecordSets", "CreateOrUpdate"),
                op(NETWORK, "RecordSets", "Get"),
                &req.status,
                std::time::Duration::from_secs(300),
            )
            .await?;
        Ok(ApplyResponse::new(id, Self::attrs(&j, parent)?))
    }

    /// The NS record set's id in the parent zone; `None` if there is no parent zone.
    async fn id_for(ctx: &Ctx, parent: &str, name: &str, addr: &ResourceAddr) -> Result<Option<String>, ProviderError> {
        Ok(Self::parent(ctx, parent, addr).await?.map(|zone| format!("{zone}/NS/{}", relative(name, parent))))
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
        let mut out = Vec::new();
        for i in items {
            let parent = i.attrs.get("parent_zone_name").and_then(Json::as_str).unwrap_or_default();
            if let Some(j) = ctx.arm.get(&i.id, DNS_API, op(NETWORK, "RecordSets", "Get")).await? {
                out.push(Found::new(i.id.clone(), Self::attrs(&j, parent)?, Marks::Metadata.of(&j)));
            }
        }
        Ok(Listing::Owned(out))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let parent = cfg.str("parent_zone_name")?;
        let id = Self::id_for(ctx, parent, cfg.str("name")?, &req.addr).await?.ok_or_else(|| {
            ProviderError::other(format!(
                "{}: the parent zone {parent} is not in subscription {}; apply the parent environment first (its zone must exist to delegate to this one)",
                req.addr, ctx.subscription
            ))
        })?;
        self.write(ctx, req, Cond::IfNoneMatch, &id).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let current = ctx.arm.get(&prior.id, DNS_API, op(NETWORK, "RecordSets", "Get")).await?;
        let etag = current.as_ref().and_then(|c| c["etag"].as_str()).map(str::to_string);
        let cond = etag.as_deref().map_or(Cond::IfNoneMatch, Cond::IfMatch);
        self.write(ctx, req, cond, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        ctx.arm
            .delete(
                &req.id,
                DNS_API,
                Cond::None,
                op(NETWORK, "RecordSets", "Delete"),
                &req.status,
                std::time::Duration::from_secs(300),
            )
            .await
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        // The name is the child zone's; its parent is the name minus the first label.
        let Some((_, parent)) = req.name.split_once('.') else { return Ok(vec![]) };
        // No parent zone: nothing can have been made there. Any other failure is an error, not
        // "not found" (which would let the create run again).
        let Some(id) = Self::id_for(ctx, parent, &req.name, &req.addr).await? else { return Ok(vec![]) };
        let Some(j) = ctx.arm.get(&id, DNS_API, op(NETWORK, "RecordSets", "Get")).await? else { return Ok(vec![]) };
        Ok(vec![Found::new(id, Self::attrs(&j, parent)?, Marks::Metadata.of(&j))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_relative_to_their_zone() {
        assert_eq!(relative("api.matih.ai", "matih.ai"), "api");
        assert_eq!(relative("matih.ai.", "matih.ai"), "@");
        assert_eq!(relative("staging.matih.ai", "matih.ai"), "staging");
    }
}
