//! The AKS cloud: the platform spec's `clouds.aks` section becomes a resource group (created or
//! adopted), a VNet for Azure CNI with the node subnet (and a pod subnet for dynamic pod IP
//! allocation) behind an NSG, an AKS cluster with Calico network policy, OIDC issuer and workload
//! identity, its user agent pools, Standard static public IPs for the ingress controllers, the
//! Azure DNS zone and records, and cert-manager's DNS01 identity (a managed identity with a
//! federated credential and DNS Zone Contributor on the zone only).
//!
//! It talks to Azure Resource Manager through its own thin typed client ([`arm`]; the
//! `azure_mgmt_*` crates are frozen and the official resource manager crates are placeholders),
//! with credentials from an explicit `azure_identity` chain ([`auth`]). `MATIH_ARM_ENDPOINT` and
//! `MATIH_AZURE_TOKEN` point it at an emulator. It knows nothing about state files, plans or
//! Kubernetes: the engine calls it through the kit's [`KitProvider`], the bootstrap gets the
//! typed [`ClusterBinding`](matih_provider_kit::ClusterBinding) and an [`AksAccess`].

// Provider errors carry typed addresses and causes; they are built next to network I/O.
#![allow(clippy::result_large_err)]

pub mod arm;
pub mod auth;

mod access;
mod cluster;
mod dns;
mod graph;
mod identity;
mod kind;
pub mod models;
mod network;
mod state_store;

use std::sync::Arc;

use async_trait::async_trait;
use matih_plans::{DesiredGraph, Ownership, ProviderError};
use matih_provider_kit::owner::AzureTags;
use matih_provider_kit::{Cloud, ClusterBinding, Connected, ExecCredential, KitProvider, Recorder, RetryPolicy};
use matih_spec::{CloudKind, PlatformSpec};
use matih_state::{ObjectError, ObjectStore, RemoteLocation};

pub use access::AksAccess;
pub use graph::CERT_MANAGER_SUBJECT;
pub use kind::Ctx;
pub use state_store::BlobObjects;

/// The Azure provider: the kit's registry over the Azure kinds.
pub type AzureProvider = KitProvider<Ctx>;

/// The AKS cloud (`--cloud aks`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Aks;

impl Aks {
    /// The provider and cluster access for `spec`, with credentials from the environment.
    pub fn provider(spec: &PlatformSpec, ownership: &Ownership) -> Result<(AzureProvider, AksAccess), ProviderError> {
        let aks = graph::aks_spec(spec);
        let recorder = Recorder::default();
        let retry = RetryPolicy::default();
        let creds = auth::from_env()?;
        let arm = arm::Arm::new(&arm::Arm::endpoint_from_env(), creds.clone(), recorder.clone(), retry);
        let ctx = Ctx {
            arm,
            subscription: aks.subscription_id.clone(),
            resource_group: aks.resource_group.clone(),
            location: aks.location.clone(),
            zone: spec.zone_name(),
        };
        let kinds =
            [network::kinds(), cluster::kinds(), identity::kinds(), dns::kinds()].into_iter().flatten().collect();
        let access = AksAccess::new(ctx.clone(), creds);
        Ok((KitProvider::new("azure", ctx, kinds, ownership.clone(), Box::new(AzureTags), recorder, retry), access))
    }
}

#[async_trait]
impl Cloud for Aks {
    fn name(&self) -> &'static str {
        "aks"
    }

    fn section(&self) -> Option<CloudKind> {
        Some(CloudKind::Aks)
    }

    fn desired_graph(&self, spec: &PlatformSpec) -> DesiredGraph {
        graph::desired_graph(spec)
    }

    fn bootstrap_binding(&self, spec: &PlatformSpec) -> Option<ClusterBinding> {
        Some(graph::bootstrap_binding(spec))
    }

    fn exec_credential(&self, spec: &PlatformSpec, _cluster: &str) -> Result<ExecCredential, String> {
        match graph::aks_spec(spec).entra_id {
            Some(_) => Ok(access::exec_credential()),
            None => Err("the cluster has local accounts, whose credential is a static token this tool does not hand out: use `az aks get-credentials`, or set clouds.aks.entra_id so users sign in with Entra ID (kubelogin)".into()),
        }
    }

    async fn connect(
        &self,
        spec: &PlatformSpec,
        _spec_dir: &std::path::Path,
        ownership: &Ownership,
    ) -> Result<Connected, ProviderError> {
        let (provider, access) = Self::provider(spec, ownership)?;
        Ok(Connected { providers: vec![Arc::new(provider)], access: Some(Arc::new(access)) })
    }

    async fn state_objects(
        &self,
        _spec: Option<&PlatformSpec>,
        location: &RemoteLocation,
    ) -> Result<Arc<dyn ObjectStore>, ObjectError> {
        Ok(Arc::new(BlobObjects::connect(location)?))
    }
}
