//! The DNS part of the desired graph and the list of ingress controllers, computed once for
//! every cloud: the platform's zone (`dns.zone.platform`), `api.<zone>` → the platform
//! controller's addresses (`dns.record.api`), `<tenant>.<zone>` → the tenant's dedicated
//! controller's addresses or the platform's (`dns.record.tenant["<slug>"]`), and for a non-prod
//! environment the NS delegation in the parent environment's zone (`dns.delegation.parent`).
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

/// Time to live of the `api.` and tenant records.
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
    let record = |g: &mut DesiredGraph, a: ResourceAddr, fqdn: String, values: Vec<Value>| {
        g.add(
            Desired::new(a, fqdn.clone())
                .set("zone_id", Value::reference(&zone, "id"))
                .set("name", Value::str(fqdn))
                .set("type", Value::str("A"))
                .set("ttl", Value::Known(json!(RECORD_TTL)))
                .set("values", Value::list(values)),
        );
    };
    record(g, api_record_addr(), format!("api.{zone_name}"), platform.clone());
    for tenant in &spec.tenants {
        let values = addresses.get(&tenant.slug).cloned().unwrap_or_else(|| platform.clone());
        record(g, tenant_record_addr(&tenant.slug), format!("{}.{zone_name}", tenant.slug), values);
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
