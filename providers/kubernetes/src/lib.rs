//! Cluster bootstrap: the add-on table (namespaces, Calico, CoreDNS, ingress-nginx,
//! cert-manager and its issuer, network policies, tenants), upstream manifests pinned and
//! verified, server-side apply with readiness waits and pruning, and the network-policy
//! reachability report.
//!
//! It talks to a cluster only through kube-rs, built from the cluster the cloud provider created
//! or refreshed (endpoint, CA, a short-lived token from the cloud); never from an ambient
//! kubeconfig. It knows no cloud SDK: the cloud provider hands it addresses and a token source.

pub mod addons;
pub mod bundles;
pub mod cluster;
pub mod graph;
pub mod kubeapi;
pub mod layout;
pub mod manifests;
pub mod netpol;
pub mod objects;
pub mod provider;
pub mod requirements;

pub use graph::{ClusterBinding, add_bootstrap};
pub use provider::KubernetesProvider;
