//! The add-on table: one row per add-on, with its phase (before or after the node pools), the
//! add-ons it waits on, how many instances it has (one, one per tenant, one per tenant with a
//! dedicated ingress), its readiness deadline, and a variant per cloud. Each instance becomes one
//! graph node, `k8s.addon.<row>` or `k8s.addon.<row>["<tenant>"]`.
//!
//! [`render`] turns an instance's parameters (from the platform spec and the cloud provider's
//! outputs) and its upstream manifests into the objects to apply. It does not talk to a cluster
//! and does not fetch manifests; the provider does both.

use std::collections::BTreeMap;
use std::time::Duration;

use matih_spec::CloudKind;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::layout::{self, Layout, TenantLayout};
use crate::manifests::{self, ManifestFile as Upstream, ManifestRequest};
use crate::objects::{self, Dns01Solver, DnsConfig, LoadBalancer, ServiceBinding};

/// Whether an add-on needs nodes to become ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Needs only the API server (namespaces, policies, CRDs).
    BeforeNodes,
    /// Runs pods or reconfigures pods that run: waits for the node pools.
    AfterNodes,
}

/// How many instances of a row the platform has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instances {
    One,
    EachTenant,
    DedicatedIngressTenants,
    /// Each tenant, when the spec asks for per-tenant certificates (`cert_manager.certificates`).
    TenantCertificates,
}

/// What an add-on is on one cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Objects the tool writes itself (typed).
    Objects,
    /// Upstream manifests (patched where the platform needs it) plus typed objects.
    Upstream(&'static [Upstream]),
    /// The cloud runs it; its provider turns it on in the cluster definition. Nothing to write.
    Managed(&'static str),
}

/// One row of the add-on table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub name: &'static str,
    pub summary: &'static str,
    pub phase: Phase,
    /// Add-ons (rows) every instance of this one waits on. Per-tenant rows wait on the same
    /// tenant's instance of a per-tenant row.
    pub after: &'static [&'static str],
    pub instances: Instances,
    /// Deadline for each readiness wait of this add-on.
    pub wait: Duration,
    pub eks: Variant,
    pub gke: Variant,
    pub aks: Variant,
}

impl Row {
    pub fn variant(&self, cloud: CloudKind) -> Variant {
        match cloud {
            CloudKind::Eks => self.eks,
            CloudKind::Gke => self.gke,
            CloudKind::Aks => self.aks,
        }
    }
}

const MIN: Duration = Duration::from_secs(60);

/// The table. Order is only for display; dependencies are the `after` edges and the phase.
pub const TABLE: &[Row] = &[
    Row {
        name: "namespaces",
        summary: "the platform's namespaces",
        phase: Phase::BeforeNodes,
        after: &[],
        instances: Instances::One,
        wait: MIN,
        eks: Variant::Objects,
        gke: Variant::Objects,
        aks: Variant::Objects,
    },
    Row {
        name: "calico",
        summary: "Calico network policy",
        phase: Phase::AfterNodes,
        after: &[],
        instances: Instances::One,
        wait: Duration::from_secs(600),
        // Policy only: the Amazon VPC CNI (`aws-node`) keeps pod networking and is never touched.
        eks: Variant::Upstream(&[Upstream::CalicoOperatorCrds, Upstream::TigeraOperator]),
        gke: Variant::Managed("GKE network policy enforcement (Calico), set on the cluster"),
        aks: Variant::Managed("AKS network policy `calico`, set on the cluster"),
    },
    Row {
        name: "coredns",
        summary: "CoreDNS forwarders and stub domains",
        phase: Phase::AfterNodes,
        after: &[],
        instances: Instances::One,
        wait: Duration::from_secs(300),
        eks: Variant::Objects,
        gke: Variant::Objects,
        aks: Variant::Objects,
    },
    Row {
        name: "ingress_nginx",
        summary: "the platform's ingress-nginx controller (class `nginx`)",
        phase: Phase::AfterNodes,
        after: &["namespaces"],
        instances: Instances::One,
        wait: Duration::from_secs(600),
        eks: Variant::Upstream(&[Upstream::IngressNginxAws]),
        gke: Variant::Upstream(&[Upstream::IngressNginxCloud]),
        aks: Variant::Upstream(&[Upstream::IngressNginxCloud]),
    },
    Row {
        name: "cert_manager",
        summary: "cert-manager",
        phase: Phase::AfterNodes,
        after: &[],
        instances: Instances::One,
        wait: Duration::from_secs(600),
        eks: Variant::Upstream(&[Upstream::CertManager]),
        gke: Variant::Upstream(&[Upstream::CertManager]),
        aks: Variant::Upstream(&[Upstream::CertManager]),
    },
    Row {
        name: "cluster_issuer",
        summary: "ClusterIssuer `letsencrypt-prod-dns01` and the wildcard certificate",
        phase: Phase::AfterNodes,
        // cert-manager's webhook admits the issuer: its Deployment is Available first.
        after: &["cert_manager", "namespaces"],
        instances: Instances::One,
        wait: MIN,
        eks: Variant::Objects,
        gke: Variant::Objects,
        aks: Variant::Objects,
    },
    Row {
        name: "network_policies",
        summary: "the platform's network policies",
        phase: Phase::BeforeNodes,
        after: &["namespaces"],
        instances: Instances::One,
        wait: MIN,
        eks: Variant::Objects,
        gke: Variant::Objects,
        aks: Variant::Objects,
    },
    Row {
        name: "tenant",
        summary: "a tenant's namespace and network policies",
        phase: Phase::BeforeNodes,
        after: &[],
        instances: Instances::EachTenant,
        wait: MIN,
        eks: Variant::Objects,
        gke: Variant::Objects,
        aks: Variant::Objects,
    },
    Row {
        name: "tenant_certificate",
        summary: "a tenant's own certificate (`cert_manager.certificates: per-tenant`)",
        phase: Phase::AfterNodes,
        // Its namespace, and the issuer (which itself waits for cert-manager's CRDs and webhook).
        after: &["tenant", "cluster_issuer"],
        instances: Instances::TenantCertificates,
        wait: MIN,
        eks: Variant::Objects,
        gke: Variant::Objects,
        aks: Variant::Objects,
    },
    Row {
        name: "tenant_ingress",
        summary: "a tenant's dedicated ingress-nginx controller",
        phase: Phase::AfterNodes,
        after: &["tenant"],
        instances: Instances::DedicatedIngressTenants,
        wait: Duration::from_secs(600),
        eks: Variant::Objects,
        gke: Variant::Objects,
        aks: Variant::Objects,
    },
];

pub fn row(name: &str) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.name == name)
}

/// ingress-nginx is retired upstream: said once in every plan that installs it.
pub const INGRESS_NGINX_EOL: &str = "ingress-nginx is end-of-life since March 2026 (no further releases or fixes \
     upstream); the platform pins its final release controller-v1.15.1. Plan a move to another controller.";

/// Everything an add-on instance is made from, as recorded in its `params` attribute. Only the
/// fields its row uses are set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_account_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<Dns01Solver>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantParam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyParam>,
}

/// The spec's `network_policies` settings as the policy add-ons need them: the tenant
/// instances only Kafka's namespace, the platform's all of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyParam {
    pub kafka_namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_egress: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_ranges: Vec<String>,
}

impl PolicyParam {
    fn settings(&self, addon: &str) -> Result<crate::layout::PolicySettings, RenderError> {
        let err = |message: String| RenderError { addon: addon.into(), message };
        let ranges = self
            .cluster_ranges
            .iter()
            .map(|r| r.parse().map_err(|e| err(format!("cluster range {r}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let spec = matih_spec::NetworkPolicies {
            kafka_namespace: self.kafka_namespace.clone(),
            internet_egress: self.internet_egress.clone().unwrap_or_default(),
        };
        crate::layout::PolicySettings::from_spec(&spec, ranges).map_err(err)
    }
}

/// A tenant as an add-on needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantParam {
    pub slug: String,
    pub dedicated_ingress: bool,
}

impl TenantParam {
    fn layout(&self) -> TenantLayout {
        TenantLayout {
            slug: self.slug.clone(),
            namespace: layout::tenant_namespace(&self.slug),
            dedicated_ingress: self.dedicated_ingress,
        }
    }
}

/// The upstream files an instance is made of (empty for typed add-ons).
pub fn upstream_files(row: &Row, cloud: CloudKind) -> &'static [Upstream] {
    match row.variant(cloud) {
        Variant::Upstream(files) => files,
        Variant::Objects | Variant::Managed(_) => &[],
    }
}

/// The `objects` entry of an upstream file: its path in the manifest layout.
pub fn manifest_entry(file: Upstream, version: &str) -> String {
    format!("{}/{version}/{}", file.addon(), file.file_name())
}

/// The sha256 the file must have at `version`, if the tool knows it.
pub fn pinned_digest(file: Upstream, version: &str) -> Option<&'static str> {
    manifests::pinned(file, version).map(|p| p.sha256)
}

pub fn manifest_request(file: Upstream, version: &str) -> Result<ManifestRequest, manifests::ManifestError> {
    ManifestRequest::new(file, version)
}

/// `eks`, `gke`, `aks` as recorded in parameters.
pub fn cloud_kind(s: &str) -> Option<CloudKind> {
    match s {
        "eks" => Some(CloudKind::Eks),
        "gke" => Some(CloudKind::Gke),
        "aks" => Some(CloudKind::Aks),
        _ => None,
    }
}

/// A failure to render an add-on: a bug or an unexpected upstream manifest, never user input.
#[derive(Debug, thiserror::Error)]
#[error("add-on {addon}: {message}")]
pub struct RenderError {
    pub addon: String,
    pub message: String,
}

fn need<'a, T>(addon: &str, v: &'a Option<T>, what: &str) -> Result<&'a T, RenderError> {
    v.as_ref().ok_or_else(|| RenderError { addon: addon.into(), message: format!("parameter `{what}` missing") })
}

fn cloud_of(addon: &str, p: &Params) -> Result<CloudKind, RenderError> {
    let c = need(addon, &p.cloud, "cloud")?;
    cloud_kind(c).ok_or_else(|| RenderError { addon: addon.into(), message: format!("unknown cloud {c:?}") })
}

/// The objects the tool writes itself for an instance (`key` is the tenant for per-tenant rows).
pub fn typed_objects(row: &Row, key: Option<&str>, p: &Params) -> Result<Vec<Json>, RenderError> {
    let name = row.name;
    let tenant = || -> Result<TenantLayout, RenderError> {
        p.tenants
            .iter()
            .find(|t| Some(t.slug.as_str()) == key)
            .map(TenantParam::layout)
            .ok_or_else(|| RenderError { addon: name.into(), message: format!("no tenant parameters for {key:?}") })
    };
    Ok(match name {
        "namespaces" => layout::PLATFORM_NAMESPACES
            .iter()
            .map(|ns| objects::to_json(&objects::namespace(ns, crate::netpol::namespace_labels(ns, None))))
            .collect(),
        "calico" => match cloud_of(name, p)? {
            CloudKind::Eks => vec![objects::to_json(&objects::eks_calico_installation())],
            CloudKind::Gke | CloudKind::Aks => vec![],
        },
        "coredns" => {
            let dns = need(name, &p.dns, "dns")?;
            vec![match cloud_of(name, p)? {
                CloudKind::Eks => objects::to_json(&objects::eks_coredns(dns)),
                CloudKind::Aks => objects::to_json(&objects::aks_coredns_custom(dns)),
                CloudKind::Gke => objects::to_json(&objects::gke_kube_dns(dns)),
            }]
        }
        "ingress_nginx" | "cert_manager" => vec![],
        "cluster_issuer" => {
            let email = need(name, &p.acme_email, "acme_email")?;
            let solver = need(name, &p.solver, "solver")?;
            // A wildcard certificate unless the tenants have their own.
            let (cert, secret) = if p.dns_names.iter().any(|n| n.starts_with("*.")) {
                ("matih-wildcard", objects::WILDCARD_SECRET)
            } else {
                ("matih-platform", objects::PLATFORM_SECRET)
            };
            vec![
                objects::to_json(&objects::cluster_issuer(email, solver)),
                objects::to_json(&objects::certificate(cert, layout::INGRESS, secret, p.dns_names.clone())),
            ]
        }
        "tenant_certificate" => {
            let t = tenant()?;
            vec![objects::to_json(&objects::certificate(
                "tenant-tls",
                &t.namespace,
                objects::TENANT_SECRET,
                p.dns_names.clone(),
            ))]
        }
        "network_policies" => {
            let policy = need(name, &p.policy, "policy")?.settings(name)?;
            let layout = Layout { tenants: p.tenants.iter().map(TenantParam::layout).collect(), policy };
            crate::netpol::platform_policies(&layout).iter().map(objects::to_json).collect()
        }
        "tenant" => {
            let t = tenant()?;
            let policy = need(name, &p.policy, "policy")?.settings(name)?;
            let layout = Layout { tenants: vec![t.clone()], policy };
            std::iter::once(objects::to_json(&objects::namespace(
                &t.namespace,
                crate::netpol::namespace_labels(&t.namespace, Some(&t.slug)),
            )))
            .chain(crate::netpol::tenant_policies(&layout, &t).iter().map(objects::to_json))
            .collect()
        }
        "tenant_ingress" => {
            let t = tenant()?;
            objects::tenant_controller(&t, need(name, &p.load_balancer, "load_balancer")?)
        }
        other => return Err(RenderError { addon: other.into(), message: "not in the add-on table".into() }),
    })
}

/// Upstream objects of an instance, patched where the platform needs it.
pub fn patch_upstream(row: &Row, p: &Params, file: Upstream, objects: Vec<Json>) -> Result<Vec<Json>, RenderError> {
    match file {
        Upstream::IngressNginxAws | Upstream::IngressNginxCloud => {
            let lb = need(row.name, &p.load_balancer, "load_balancer")?;
            Ok(relocate(file, objects)
                .into_iter()
                .map(|mut o| {
                    if o["kind"] == "Service" && o["metadata"]["name"] == "ingress-nginx-controller" {
                        let ann = o["metadata"]
                            .as_object_mut()
                            .expect("object metadata")
                            .entry("annotations")
                            .or_insert_with(|| Json::Object(Default::default()));
                        for (k, v) in lb.annotations() {
                            ann[k] = Json::String(v);
                        }
                        if let Some(ip) = lb.load_balancer_ip() {
                            o["spec"]["loadBalancerIP"] = Json::String(ip);
                        }
                    }
                    o
                })
                .collect())
        }
        Upstream::CertManager => Ok(objects
            .into_iter()
            .map(|mut o| {
                if o["kind"] == "ServiceAccount"
                    && o["metadata"]["name"] == "cert-manager"
                    && !p.service_account_annotations.is_empty()
                {
                    let ann = o["metadata"]
                        .as_object_mut()
                        .expect("object metadata")
                        .entry("annotations")
                        .or_insert_with(|| Json::Object(Default::default()));
                    for (k, v) in &p.service_account_annotations {
                        ann[k] = Json::String(v.clone());
                    }
                }
                // Azure workload identity: the webhook AKS runs injects the federated token only
                // into pods labelled for it.
                if o["kind"] == "Deployment"
                    && o["metadata"]["name"] == "cert-manager"
                    && p.service_account_annotations.contains_key(AZURE_WORKLOAD_IDENTITY_CLIENT_ID)
                {
                    o["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] = Json::from("true");
                }
                o
            })
            .collect()),
        Upstream::TigeraOperator | Upstream::CalicoOperatorCrds => Ok(objects),
    }
}

/// The service account annotation naming an Azure workload identity's client id.
pub const AZURE_WORKLOAD_IDENTITY_CLIENT_ID: &str = "azure.workload.identity/client-id";

/// Where the platform puts an upstream file's objects: ingress-nginx's into `matih-ingress`, the
/// others where upstream has them. The only patch that changes which objects exist or their
/// names.
pub fn relocate(file: Upstream, objects: Vec<Json>) -> Vec<Json> {
    match file {
        Upstream::IngressNginxAws | Upstream::IngressNginxCloud => {
            into_namespace(objects, "ingress-nginx", layout::INGRESS)
        }
        Upstream::TigeraOperator | Upstream::CalicoOperatorCrds | Upstream::CertManager => objects,
    }
}

/// Moves an upstream bundle from its namespace into ours, as `kustomize`'s `namespace:` does:
/// drops the bundle's Namespace object, and rewrites object namespaces, role-binding subjects and
/// webhook service references.
pub fn into_namespace(objects: Vec<Json>, from: &str, to: &str) -> Vec<Json> {
    objects
        .into_iter()
        .filter(|o| !(o["kind"] == "Namespace" && o["metadata"]["name"] == from))
        .map(|mut o| {
            if o["metadata"]["namespace"] == from {
                o["metadata"]["namespace"] = Json::String(to.into());
            }
            if let Some(subjects) = o.get_mut("subjects").and_then(Json::as_array_mut) {
                for s in subjects.iter_mut().filter(|s| s["namespace"] == from) {
                    s["namespace"] = Json::String(to.into());
                }
            }
            if let Some(hooks) = o.get_mut("webhooks").and_then(Json::as_array_mut) {
                for h in hooks {
                    if h["clientConfig"]["service"]["namespace"] == from {
                        h["clientConfig"]["service"]["namespace"] = Json::String(to.into());
                    }
                }
            }
            o
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_row_names_known_dependencies_and_a_variant_per_cloud() {
        for r in TABLE {
            for a in r.after {
                assert!(row(a).is_some(), "{} waits on unknown add-on {a}", r.name);
            }
            for c in [CloudKind::Eks, CloudKind::Gke, CloudKind::Aks] {
                let _ = r.variant(c);
            }
        }
        assert_eq!(row("cluster_issuer").unwrap().after, &["cert_manager", "namespaces"]);
        assert_eq!(row("coredns").unwrap().phase, Phase::AfterNodes);
    }

    #[test]
    fn into_namespace_moves_objects_subjects_and_webhooks() {
        let objs = vec![
            json!({"kind": "Namespace", "metadata": {"name": "ingress-nginx"}}),
            json!({"kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "ingress-nginx"}}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "b"},
                   "subjects": [{"kind": "ServiceAccount", "name": "a", "namespace": "ingress-nginx"}]}),
            json!({"kind": "ValidatingWebhookConfiguration", "metadata": {"name": "c"},
                   "webhooks": [{"clientConfig": {"service": {"name": "x", "namespace": "ingress-nginx"}}}]}),
        ];
        let out = into_namespace(objs, "ingress-nginx", "matih-ingress");
        assert_eq!(out.len(), 3, "the bundle's own Namespace is dropped");
        assert_eq!(out[0]["metadata"]["namespace"], "matih-ingress");
        assert_eq!(out[1]["subjects"][0]["namespace"], "matih-ingress");
        assert_eq!(out[2]["webhooks"][0]["clientConfig"]["service"]["namespace"], "matih-ingress");
    }
}
