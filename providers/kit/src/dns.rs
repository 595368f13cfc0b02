//! The DNS part of the desired graph and the list of ingress controllers, computed once for
//! every cloud: the platform's zone (`dns.zone.platform`), `api.<zone>` and `ingress.<zone>` → the
//! platform controller's addresses (`dns.record.api`, `dns.record.ingress`), `<tenant>.<zone>` →
//! the tenant's dedicated controller's addresses (an A record) or, for a tenant on the shared
//! controller, a CNAME to `ingress.<zone>` (`dns.record.tenant["<slug>"]`), and for a non-prod
//! environment the NS delegation in the parent environment's zone (`dns.delegation.parent`).
//!
//! The CNAMEs make the platform's load balancer one record: when its addresses change, only
//! `ingress.<zone>` and `api.<zone>` are rewritten, not every shared tenant's record. They are also
//! cheap to create in bulk (Route 53 counts a CNAME as one record of its 1,000 per request, an A
//! record of three addresses as three, and an UPSERT twice).
//!
//! Each cloud implements the `dns.zone`, `dns.record` and `dns.delegation` types with these
//! attributes (Route 53, Cloud DNS, Azure DNS) and supplies only the addresses each controller's
//! records point at and any zone attributes of its own.

use std::collections::BTreeMap;

use matih_plans::{Desired, DesiredGraph, ResourceAddr, ResourceType, Value};
use matih_spec::PlatformSpec;
use serde_json::json;

/// The controller every tenant without a dedicated ingress shares.
pub const PLATFORM_CONTROLLER: &str = "platform";

/// The label of the name every shared tenant's CNAME points at (`ingress.<zone>`); a reserved
/// slug and environment name.
pub const INGRESS_LABEL: &str = "ingress";

/// Time to live of the `api.`, `ingress.` and tenant records.
pub const RECORD_TTL: u64 = 300;
/// Time to live of the delegation's NS record (two days, as registries use).
pub const DELEGATION_TTL: u64 = 172_800;

/// The ingress controllers that get their own load balancer and addresses: the platform's and
/// each tenant's with a dedicated ingress, in that order.
pub fn ingress_controllers(spec: &PlatformSpec) -> Vec<String> {
    std::iter::once(PLATFORM_CONTROLLER.to_string())
        .chain(spec.tenants.iter().filter(|t| t.dedicated_ingress).map(|t| t.slug.clone()))
        .collect()
}

fn single(kind: &str, name: &str) -> ResourceAddr {
    ResourceAddr::new(&ResourceType::new("dns", kind).expect("static type"), name).expect("static address")
}

/// `dns.zone.platform`.
pub fn zone_addr() -> ResourceAddr {
    single("zone", "platform")
}

/// `dns.record.api`.
pub fn api_record_addr() -> ResourceAddr {
    single("record", "api")
}

/// `dns.record.ingress`.
pub fn ingress_record_addr() -> ResourceAddr {
    single("record", INGRESS_LABEL)
}

/// `dns.record.tenant["<slug>"]`.
pub fn tenant_record_addr(slug: &str) -> ResourceAddr {
    ResourceAddr::keyed(&ResourceType::new("dns", "record").expect("static type"), "tenant", slug)
        .expect("a slug is a valid key")
}

/// `dns.delegation.parent`.
pub fn delegation_addr() -> ResourceAddr {
    single("delegation", "parent")
}

/// Adds the zone, its records and the delegation to `g`. `addresses` gives, per ingress
/// controller (see [`ingress_controllers`]), the values its A records hold (references to the
/// cloud's reserved addresses); `zone_extra` adds the cloud's own zone attributes. Adds the
/// outputs `zone_id` and `zone_name_servers`.
///
/// A record's `type` is `A` (values are addresses) or `CNAME` (one value, a name without its
/// trailing dot); each cloud writes the name in its own form. A tenant moving between a dedicated
/// and the shared controller changes its record's type. A name cannot hold a CNAME beside another
/// record, so the old set goes before the new one comes: where the cloud makes a deletion and an
/// addition as one change (a Route 53 change batch, a Cloud DNS change), `type` is updatable and
/// both go in one change, so the name never answers NXDOMAIN (which resolvers would keep for the
/// zone's negative-caching time); Azure DNS keeps each type's record set as a resource of its
/// own, so there `type` forces a replacement, the delete first.
pub fn add_dns(
    g: &mut DesiredGraph,
    spec: &PlatformSpec,
    addresses: &BTreeMap<String, Vec<Value>>,
    zone_extra: impl FnOnce(Desired) -> Desired,
) -> ResourceAddr {
    let p = &spec.platform;
    let zone_name = spec.zone_name();
    let zone = zone_addr();
    g.add(zone_extra(
        Desired::new(zone.clone(), zone_name.clone())
            .set("name", Value::str(zone_name.clone()))
            .set("comment", Value::str(format!("MATIH {} ({}), managed by matih-infra", p.name, p.environment))),
    ));
    let platform =
        addresses.get(PLATFORM_CONTROLLER).cloned().expect("the cloud gives the platform controller's addresses");
    let record = |g: &mut DesiredGraph, a: ResourceAddr, fqdn: String, rtype: &str, values: Vec<Value>| {
        g.add(
            Desired::new(a, fqdn.clone())
                .set("zone_id", Value::reference(&zone, "id"))
                .set("name", Value::str(fqdn))
                .set("type", Value::str(rtype))
                .set("ttl", Value::Known(json!(RECORD_TTL)))
                .set("values", Value::list(values)),
        );
    };
    let ingress = format!("{INGRESS_LABEL}.{zone_name}");
    record(g, api_record_addr(), format!("api.{zone_name}"), "A", platform.clone());
    record(g, ingress_record_addr(), ingress.clone(), "A", platform);
    for tenant in &spec.tenants {
        let fqdn = format!("{}.{zone_name}", tenant.slug);
        match addresses.get(&tenant.slug) {
            Some(values) => record(g, tenant_record_addr(&tenant.slug), fqdn, "A", values.clone()),
            None => record(g, tenant_record_addr(&tenant.slug), fqdn, "CNAME", vec![Value::str(ingress.clone())]),
        }
    }
    if let Some(parent) = spec.parent_zone() {
        g.add(
            Desired::new(delegation_addr(), zone_name.clone())
                .set("parent_zone_name", Value::str(parent))
                .set("name", Value::str(zone_name.clone()))
                .set("ttl", Value::Known(json!(DELEGATION_TTL)))
                .set("name_servers", Value::reference(&zone, "name_servers")),
        );
    }
    g.output("zone_id", Value::reference(&zone, "id"), false);
    g.output("zone_name_servers", Value::reference(&zone, "name_servers"), false);
    zone
}
