//! Where the platform lives inside a cluster: its namespaces, each tenant's namespace and ingress,
//! and the service port table of the platform document (`cluster-networking`, "Internal
//! Communication Ports"). Network policies, the ingress controllers and the policy report all
//! read these tables; nothing here talks to a cluster.

use matih_spec::PlatformSpec;

/// Control plane services (IAM, tenant, config, ...).
pub const CONTROL_PLANE: &str = "matih-control-plane";
/// Data plane services (AI, query engine, BI, Kafka, databases, ...).
pub const DATA_PLANE: &str = "matih-data-plane";
/// Front-end applications (workbenches).
pub const FRONTEND: &str = "matih-frontend";
/// The platform's ingress controller.
pub const INGRESS: &str = "matih-ingress";
/// The platform's own namespaces, in creation order.
pub const PLATFORM_NAMESPACES: [&str; 4] = [CONTROL_PLANE, DATA_PLANE, FRONTEND, INGRESS];

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
/// Kafka's TLS listener is here; its plaintext listener (9092) is deliberately absent.
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

/// The platform's namespaces and tenants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub tenants: Vec<TenantLayout>,
}

impl Layout {
    pub fn from_spec(spec: &PlatformSpec) -> Layout {
        let tenants = spec
            .tenants
            .iter()
            .map(|t| TenantLayout {
                slug: t.slug.clone(),
                namespace: tenant_namespace(&t.slug),
                dedicated_ingress: t.dedicated_ingress,
            })
            .collect();
        Layout { tenants }
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
