//! Where the platform lives inside a cluster: its namespaces, each tenant's namespace and ingress,
//! and the service port table of the platform document (`cluster-networking`, "Internal
//! Communication Ports"). Network policies, the ingress controllers and the policy report all
//! read these tables; nothing here talks to a cluster.

use ipnet::Ipv4Net;
use matih_spec::{CloudKind, PlatformSpec};

pub use matih_spec::naming::{CONTROL_PLANE, DATA_PLANE, FRONTEND, INGRESS, PLATFORM_NAMESPACES, SERVICE_NAMESPACES};

/// The cluster DNS service lives here (`k8s-app: kube-dns` on every cloud).
pub const KUBE_SYSTEM: &str = "kube-system";

/// Kafka's TLS listener: the only Kafka port any namespace may reach.
pub const KAFKA_TLS_PORT: u16 = 9093;
/// Kafka's plaintext listener: blocked everywhere.
pub const KAFKA_PLAINTEXT_PORT: u16 = 9092;

/// The port tenant workloads serve on behind their ingress controller. The platform document
/// has no tenant port; 8080 matches the platform's HTTP services.
pub const TENANT_APP_PORT: u16 = 8080;

/// Ports the ingress controllers listen on for outside traffic.
pub const INGRESS_PORTS: [u16; 2] = [80, 443];

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// One row of the port table: a service, where it runs, and who may reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePort {
    pub service: &'static str,
    pub namespace: &'static str,
    /// First port; `end_port` makes it a range (inclusive).
    pub port: u16,
    pub end_port: Option<u16>,
    /// Served to the outside through the platform ingress controller.
    pub via_ingress: bool,
    /// Pods of the service, when the policy targets them rather than the whole namespace
    /// (`key=value`); `None` means every pod of the namespace.
    pub pod_label: Option<(&'static str, &'static str)>,
}

/// The platform document's port table, placed in the platform's namespaces. All TCP.
/// Kafka's TLS listener is here (in the data plane unless the spec's
/// `network_policies.kafka_namespace` moves it, see [`Layout::kafka`]); its plaintext listener
/// (9092) is deliberately absent.
pub const SERVICE_PORTS: &[ServicePort] = &[
    ServicePort {
        service: "control plane APIs",
        namespace: CONTROL_PLANE,
        port: 8080,
        end_port: Some(8089),
        via_ingress: true,
        pod_label: None,
    },
    ServicePort {
        service: "AI service",
        namespace: DATA_PLANE,
        port: 8000,
        end_port: None,
        via_ingress: true,
        pod_label: None,
    },
    ServicePort {
        service: "Trino",
        namespace: DATA_PLANE,
        port: 8080,
        end_port: None,
        via_ingress: true,
        pod_label: None,
    },
    ServicePort {
        service: "Kafka (TLS)",
        namespace: DATA_PLANE,
        port: KAFKA_TLS_PORT,
        end_port: None,
        via_ingress: false,
        pod_label: Some(("strimzi.io/kind", "Kafka")),
    },
    ServicePort {
        service: "PostgreSQL",
        namespace: DATA_PLANE,
        port: 5432,
        end_port: None,
        via_ingress: false,
        pod_label: None,
    },
    ServicePort {
        service: "Redis",
        namespace: DATA_PLANE,
        port: 6379,
        end_port: None,
        via_ingress: false,
        pod_label: None,
    },
    ServicePort {
        service: "Spark Connect",
        namespace: DATA_PLANE,
        port: 15002,
        end_port: None,
        via_ingress: false,
        pod_label: None,
    },
    ServicePort {
        service: "Qdrant",
        namespace: DATA_PLANE,
        port: 6333,
        end_port: None,
        via_ingress: false,
        pod_label: None,
    },
    ServicePort {
        service: "Neo4j",
        namespace: DATA_PLANE,
        port: 7687,
        end_port: None,
        via_ingress: false,
        pod_label: None,
    },
    // Not in the platform document's table: the workbenches serve HTTP on the platform's usual port.
    ServicePort {
        service: "front-end applications",
        namespace: FRONTEND,
        port: 8080,
        end_port: None,
        via_ingress: true,
        pod_label: None,
    },
];

/// A tenant as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantLayout {
    pub slug: String,
    /// `matih-tenant-<slug>`.
    pub namespace: String,
    /// Served by a controller of its own (ingress class `nginx-tenant-<slug>`, running in the
    /// tenant's namespace) instead of the platform controller in `matih-ingress`.
    pub dedicated_ingress: bool,
}

impl TenantLayout {
    pub fn ingress_class(&self) -> String {
        ingress_class(&self.slug)
    }
}

pub use matih_spec::naming::{ingress_class, tenant_namespace};

/// What the network policies allow beyond the port table (the spec's
/// `addons.network_policies`), and the cluster's own address ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// The service namespace where Kafka runs: the only one any pod reaches on 9093.
    pub kafka_namespace: &'static str,
    /// Platform namespaces whose pods reach the internet.
    pub internet_egress: Vec<&'static str>,
    /// The cluster's node, pod and service ranges: the internet is everything but these (and
    /// the instance metadata address). Empty when unknown (the policy report, tests).
    pub cluster_ranges: Vec<Ipv4Net>,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings::from_spec(&matih_spec::NetworkPolicies::default(), Vec::new())
            .expect("the spec's defaults are platform namespaces")
    }
}

impl PolicySettings {
    /// The spec's settings (which the spec checks name platform namespaces); `Err` names one
    /// that is not.
    pub fn from_spec(n: &matih_spec::NetworkPolicies, cluster_ranges: Vec<Ipv4Net>) -> Result<Self, String> {
        let platform = |ns: &str| {
            PLATFORM_NAMESPACES
                .iter()
                .copied()
                .find(|p| *p == ns)
                .ok_or_else(|| format!("`{ns}` is not a platform namespace"))
        };
        let kafka_namespace = SERVICE_NAMESPACES
            .iter()
            .copied()
            .find(|p| *p == n.kafka_namespace)
            .ok_or_else(|| format!("`{}` is not a platform service namespace", n.kafka_namespace))?;
        let internet_egress = n.internet_egress.iter().map(|ns| platform(ns)).collect::<Result<_, _>>()?;
        Ok(PolicySettings { kafka_namespace, internet_egress, cluster_ranges })
    }
}

/// The platform's namespaces and tenants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub tenants: Vec<TenantLayout>,
    pub policy: PolicySettings,
}

impl Layout {
    /// The layout of `spec` on `cloud`'s cluster, or, with `None`, with every configured
    /// cloud's ranges (what the policy report evaluates: it does not depend on the ranges).
    pub fn from_spec(spec: &PlatformSpec, cloud: Option<CloudKind>) -> Layout {
        let clouds = match cloud {
            Some(c) => vec![c],
            None => spec.clouds.configured(),
        };
        let ranges = clouds.into_iter().flat_map(|c| spec.cluster_ranges(c)).collect();
        let policy = PolicySettings::from_spec(&spec.addons.network_policies, ranges)
            .expect("a loaded spec names platform namespaces in network_policies");
        let tenants = spec
            .tenants
            .iter()
            .map(|t| TenantLayout {
                slug: t.slug.clone(),
                namespace: tenant_namespace(&t.slug),
                dedicated_ingress: t.dedicated_ingress,
            })
            .collect();
        Layout { tenants, policy }
    }

    /// The port table's Kafka row, placed in the spec's Kafka namespace.
    pub fn kafka(&self) -> ServicePort {
        let row =
            SERVICE_PORTS.iter().find(|r| r.port == KAFKA_TLS_PORT).expect("the port table lists Kafka's TLS listener");
        ServicePort { namespace: self.policy.kafka_namespace, ..*row }
    }

    /// Every namespace the platform owns: the platform's four, then one per tenant.
    pub fn namespaces(&self) -> Vec<String> {
        PLATFORM_NAMESPACES
            .iter()
            .map(|s| s.to_string())
            .chain(self.tenants.iter().map(|t| t.namespace.clone()))
            .collect()
    }
}
