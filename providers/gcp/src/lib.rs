//! The GKE cloud: the platform spec's `clouds.gke` section becomes a VPC-native network (a
//! custom-mode VPC, the node subnet with named secondary ranges for pods and services, firewall
//! rules, Cloud Router + Cloud NAT for private nodes), a regional GKE cluster with workload
//! identity and NetworkPolicy by Calico (or Dataplane V2), its node pools, regional static IPs
//! for the ingress controllers, the Cloud DNS zone and records, and cert-manager's DNS01
//! identity (a Google service account with `roles/dns.admin` on the zone only, bound to
//! cert-manager's Kubernetes service account through workload identity).
//!
//! It talks to Google through the official google-cloud-rust crates ([`clients`]) over
//! REST/JSON, with Application Default Credentials; `MATIH_GCP_ENDPOINT` points every client at
//! an emulator. It knows nothing about state files, plans or Kubernetes: the engine calls it
//! through the kit's [`KitProvider`], the bootstrap gets the typed
//! [`ClusterBinding`](matih_provider_kit::ClusterBinding) and a [`GkeAccess`].

// Provider errors carry typed addresses and causes; they are built next to network I/O.
#![allow(clippy::result_large_err)]

mod access;
pub mod clients;
mod cluster;
mod compute;
mod dns;
mod error;
mod graph;
mod identity;
mod kind;
mod network;
mod state_store;

use std::sync::Arc;

use async_trait::async_trait;
use matih_plans::{DesiredGraph, Ownership, ProviderError};
use matih_provider_kit::owner::GcpLabels;
use matih_provider_kit::{Cloud, ClusterBinding, Connected, ExecCredential, KitProvider, Recorder, RetryPolicy};
use matih_spec::{CloudKind, PlatformSpec};
use matih_state::{ObjectError, ObjectStore, RemoteLocation};

pub use access::GkeAccess;
pub use graph::CERT_MANAGER_KSA;
pub use kind::Ctx;
pub use state_store::{EMULATOR_ENV as STORAGE_EMULATOR_ENV, GcsObjects};

/// The GCP provider: the kit's registry over the GKE kinds.
pub type GcpProvider = KitProvider<Ctx>;

/// The GKE cloud (`--cloud gke`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gke;

impl Gke {
    /// The provider and cluster access for `spec`, with credentials from the environment.
    pub async fn provider(
        spec: &PlatformSpec,
        ownership: &Ownership,
    ) -> Result<(GcpProvider, GkeAccess), ProviderError> {
        let gke = graph::gke_spec(spec);
        let recorder = Recorder::default();
        let retry = RetryPolicy::default();
        let c = clients::Clients::from_env(recorder.clone()).await?;
        let ctx = Ctx { c, project: gke.project.clone(), region: gke.region.clone(), owner: ownership.clone(), retry };
        let kinds =
            [network::kinds(), cluster::kinds(), dns::kinds(), identity::kinds()].into_iter().flatten().collect();
        let access = GkeAccess { ctx: ctx.clone() };
        Ok((KitProvider::new("gcp", ctx, kinds, ownership.clone(), Box::new(GcpLabels), recorder, retry), access))
    }
}

#[async_trait]
impl Cloud for Gke {
    fn name(&self) -> &'static str {
        "gke"
    }

    fn section(&self) -> Option<CloudKind> {
        Some(CloudKind::Gke)
    }

    fn desired_graph(&self, spec: &PlatformSpec) -> DesiredGraph {
        graph::desired_graph(spec)
    }

    fn bootstrap_binding(&self, spec: &PlatformSpec) -> Option<ClusterBinding> {
        Some(graph::bootstrap_binding(spec))
    }

    fn exec_credential(&self, _spec: &PlatformSpec, _cluster: &str) -> Result<ExecCredential, String> {
        Ok(access::exec_credential())
    }

    async fn connect(
        &self,
        spec: &PlatformSpec,
        _spec_dir: &std::path::Path,
        ownership: &Ownership,
    ) -> Result<Connected, ProviderError> {
        let (provider, access) = Self::provider(spec, ownership).await?;
        Ok(Connected { providers: vec![Arc::new(provider)], access: Some(Arc::new(access)) })
    }

    async fn state_objects(
        &self,
        _spec: Option<&PlatformSpec>,
        location: &RemoteLocation,
    ) -> Result<Arc<dyn ObjectStore>, ObjectError> {
        Ok(Arc::new(GcsObjects::connect(location).await?))
    }
}
