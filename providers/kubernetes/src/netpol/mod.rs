//! Network policies: the NetworkPolicies that isolate the platform's namespaces and tenants
//! (`generate`), and an evaluator that turns any set of NetworkPolicies into a
//! namespace-to-namespace reachability matrix (`evaluate`), behind `matih-infra policy report`.
//!
//! Policy in one paragraph: every platform and tenant namespace denies all traffic by default;
//! pods may use the cluster DNS and talk within their namespace on every port but Kafka's
//! plaintext 9092; the platform's service namespaces reach each other's ports from the port
//! table; the platform ingress controller (`matih-ingress`) accepts 80/443 and its admission
//! webhook from anywhere and reaches only the ports served through it, plus tenants without a
//! controller of their own; a tenant with its own controller accepts 80/443 on that controller's
//! pods; tenants reach the control plane's APIs and Kafka's TLS listener, never each other; Kafka
//! accepts TLS on 9093 from every managed namespace, and 9093 is opened only toward Kafka's pods
//! in Kafka's namespace (`addons.network_policies.kafka_namespace`); the namespaces the spec names
//! (`internet_egress`) reach the internet: every address but the cluster's node, pod and service
//! ranges and the instance metadata address; nothing anywhere allows 9092.
//!
//! Deliberately not here: applying the policies (the add-on machinery does), reading policies
//! from a live cluster (the evaluator takes them as values), Calico's own policy kinds, and
//! traffic that NetworkPolicy does not govern (host-network pods, kubelet probes). Policies
//! cannot restrict namespaces the platform does not manage (kube-system, an operator's
//! namespace): whatever those allow themselves stays allowed.

mod evaluate;
mod generate;
mod portset;

pub use evaluate::{
    Entry, INTERNET, NamespaceInfo, Note, PortRange, REACHABILITY_FORMAT_VERSION, Reachability, evaluate, report,
};
pub use generate::{
    ANYWHERE, API_SERVER_PORT, INGRESS_WEBHOOK_PORT, INSTANCE_METADATA, MANAGED_BY, MANAGED_BY_LABEL,
    NAMESPACE_NAME_LABEL, PART_OF, PART_OF_LABEL, ROLE_LABEL, TENANT_LABEL, all_policies, namespace_labels,
    platform_policies, tenant_ingress_pod_labels, tenant_policies,
};
