//! The add-on table as desired resources: one `k8s.addon.*` node per add-on instance, each
//! depending on the cluster (through its identity and connection references), on the node pools
//! if it needs nodes, and on the add-ons its row waits on.
//!
//! Planning needs no cluster and no network: an instance's `objects` attribute holds a digest of
//! every object the tool writes itself (rendered with placeholders for values only the cloud
//! knows yet) and the pinned digest of every upstream file, so a changed object or release shows
//! up as an update. Upstream manifests are fetched at apply time.

use std::collections::BTreeMap;

use matih_plans::{Desired, DesiredGraph, ResourceAddr, Value};
use matih_provider_kit::cloud::to_value;
use matih_spec::{Certificates, PlatformSpec, TenantSpec};
use serde_json::{Value as Json, json};

use crate::addons::{self, Instances, Params, Phase, TABLE, Variant};
use crate::provider::{addon_type, instance_label, object_key};
use matih_provider_kit::dns::PLATFORM_CONTROLLER;

pub use matih_provider_kit::ClusterBinding;

fn addr(row: &str, key: Option<&str>) -> ResourceAddr {
    match key {
        Some(k) => ResourceAddr::keyed(&addon_type(), row, k).expect("valid address"),
        None => ResourceAddr::new(&addon_type(), row).expect("valid address"),
    }
}

/// Params with every reference replaced by a placeholder naming it.
fn placeholders(v: &Value) -> Json {
    v.resolve(&mut |r| Some(Json::String(format!("${{{}.{}}}", r.addr, r.attr))))
        .into_known()
        .expect("every reference resolved to a placeholder")
}

/// Adds every add-on instance for `spec` on `binding`'s cluster. `Err` names an add-on the tool
/// failed to render (a bug, not a spec problem).
pub fn add_bootstrap(g: &mut DesiredGraph, spec: &PlatformSpec, b: &ClusterBinding) -> Result<(), addons::RenderError> {
    let cloud = b.cloud.to_string();
    let a = &spec.addons;
    let tenants: Vec<Json> =
        spec.tenants.iter().map(|t| json!({"slug": t.slug, "dedicated_ingress": t.dedicated_ingress})).collect();
    let dns = json!({
        "forwarders": a.coredns.forwarders.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "stub_domains": a.coredns.stub_domains.iter()
            .map(|(d, ips)| (d.clone(), ips.iter().map(ToString::to_string).collect::<Vec<_>>()))
            .collect::<BTreeMap<_, _>>(),
    });
    let zone = spec.zone_name();
    let np = &a.network_policies;
    let ranges: Vec<String> = spec.cluster_ranges(b.cloud).iter().map(ToString::to_string).collect();
    let platform_policy = json!({
        "kafka_namespace": np.kafka_namespace,
        "internet_egress": np.internet_egress,
        "cluster_ranges": ranges,
    });
    // A tenant's policies need only Kafka's namespace: changing who reaches the internet does
    // not touch every tenant.
    let tenant_policy = json!({ "kafka_namespace": np.kafka_namespace });
    // Every instance refers to the same cluster.
    let (cluster, connection) = (Value::map(b.identity.clone()), to_value(&b.connection));

    for row in TABLE {
        let variant = row.variant(b.cloud);
        if matches!(variant, Variant::Managed(_)) {
            continue;
        }
        // Each instance with its tenant (none for a platform-wide row).
        let instances: Vec<Option<&TenantSpec>> = match row.instances {
            Instances::One => vec![None],
            Instances::EachTenant => spec.tenants.iter().map(Some).collect(),
            Instances::DedicatedIngressTenants => {
                spec.tenants.iter().filter(|t| t.dedicated_ingress).map(Some).collect()
            }
            Instances::TenantCertificates if a.certificates == Certificates::PerTenant => {
                spec.tenants.iter().map(Some).collect()
            }
            Instances::TenantCertificates => vec![],
        };
        for tenant in instances {
            let key = tenant.map(|t| t.slug.as_str());
            let mut p: BTreeMap<String, Value> = BTreeMap::new();
            p.insert("cloud".into(), Value::str(cloud.clone()));
            let this_tenant = || {
                let t = tenant.expect("instance of a tenant");
                Value::Known(json!([{"slug": t.slug, "dedicated_ingress": t.dedicated_ingress}]))
            };
            match row.name {
                "calico" => {
                    p.insert("version".into(), Value::str(a.calico.version.clone()));
                }
                "coredns" => {
                    p.insert("dns".into(), Value::Known(dns.clone()));
                }
                "ingress_nginx" => {
                    p.insert("version".into(), Value::str(a.ingress_nginx.version.clone()));
                    p.insert("load_balancer".into(), to_value(&b.load_balancers[PLATFORM_CONTROLLER]));
                }
                "cert_manager" => {
                    p.insert("version".into(), Value::str(a.cert_manager.version.clone()));
                    p.insert("service_account_annotations".into(), Value::map(b.cert_manager_annotations.clone()));
                }
                "cluster_issuer" => {
                    p.insert("acme_email".into(), Value::str(spec.platform.acme_email.clone()));
                    p.insert("solver".into(), to_value(&b.dns01));
                    let names = match a.certificates {
                        Certificates::Wildcard => json!([zone, format!("*.{zone}")]),
                        Certificates::PerTenant => json!([zone, format!("api.{zone}")]),
                    };
                    p.insert("dns_names".into(), Value::Known(names));
                }
                "network_policies" => {
                    p.insert("tenants".into(), Value::Known(Json::Array(tenants.clone())));
                    p.insert("policy".into(), Value::Known(platform_policy.clone()));
                }
                "tenant" => {
                    p.insert("tenants".into(), this_tenant());
                    p.insert("policy".into(), Value::Known(tenant_policy.clone()));
                }
                "tenant_certificate" => {
                    p.insert("tenants".into(), this_tenant());
                    let slug = key.expect("per-tenant row");
                    p.insert("dns_names".into(), Value::Known(json!([format!("{slug}.{zone}")])));
                }
                "tenant_ingress" => {
                    p.insert("tenants".into(), this_tenant());
                    p.insert("load_balancer".into(), to_value(&b.load_balancers[key.expect("per-tenant row")]));
                }
                _ => {}
            }
            let params = Value::map(p);
            let rendered: Params = serde_json::from_value(placeholders(&params))
                .map_err(|e| addons::RenderError { addon: row.name.into(), message: format!("params: {e}") })?;

            // Every object by `Kind/namespace/name`: the tool's own as a digest of it as written
            // (values only the cloud knows yet as placeholders; plans show its fields by
            // rendering `params`), an upstream release's as its bundle, pinned digest and the
            // object's digest (a release that is not listed: one entry).
            let mut objects = serde_json::Map::new();
            for file in addons::upstream_files(row, b.cloud) {
                let version = rendered.version.as_deref().unwrap_or_default();
                let bundle = format!("{} {version} {}", file.addon(), file.file_name());
                let sha256 = addons::pinned_digest(*file, version)
                    .map(|d| format!("sha256:{d}"))
                    .unwrap_or_else(|| "not pinned".to_string());
                match crate::bundles::objects(*file, version) {
                    Some(listed) => {
                        for o in listed {
                            objects.insert(o.key(), json!({"bundle": bundle, "sha256": sha256, "digest": o.digest}));
                        }
                    }
                    None => {
                        objects.insert(
                            addons::manifest_entry(*file, version),
                            json!({"bundle": bundle, "sha256": sha256}),
                        );
                    }
                }
            }
            for o in addons::typed_objects(row, key, &rendered)? {
                objects.insert(object_key(&o), Json::String(crate::bundles::object_digest(&o)));
            }

            let at = addr(row.name, key);
            let mut d = Desired::new(at.clone(), instance_label(&at))
                .set("cluster", cluster.clone())
                .set("connection", connection.clone())
                .set("params", params)
                .set("objects", Value::Known(Json::Object(objects)));
            for grant in &b.access_grants {
                d = d.after(grant);
            }
            if row.phase == Phase::AfterNodes {
                for pool in &b.node_pools {
                    d = d.after(pool);
                }
            }
            for dep in row.after {
                let dep_row = addons::row(dep).expect("the table names known add-ons");
                if matches!(dep_row.variant(b.cloud), Variant::Managed(_)) {
                    continue;
                }
                let dep_key = match dep_row.instances {
                    Instances::One => None,
                    Instances::EachTenant | Instances::DedicatedIngressTenants | Instances::TenantCertificates => key,
                };
                d = d.after(&addr(dep, dep_key));
            }
            g.add(d);
        }
    }
    if addons::TABLE.iter().any(|r| r.name == "ingress_nginx") {
        g.warnings.push(addons::INGRESS_NGINX_EOL.to_string());
    }
    Ok(())
}
