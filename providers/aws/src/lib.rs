//! The EKS cloud: the platform spec's `clouds.eks` section becomes a VPC for the Amazon VPC CNI,
//! IAM roles and the cluster's OIDC provider, an EKS cluster with managed node groups, Elastic
//! IPs for the ingress controllers' load balancers, and the platform's Route 53 zone and records.
//!
//! It talks to AWS only through the official AWS SDK for Rust (credentials from the SDK's default
//! chain; `AWS_ENDPOINT_URL` points it at an emulator), with the SDK's own retries off: the kit's
//! retry helper and create path decide what may be sent again. It knows nothing about state
//! files, plans or Kubernetes: the engine calls it through the kit's [`KitProvider`], and the
//! bootstrap gets the typed [`ClusterBinding`](matih_provider_kit::ClusterBinding) and an
//! [`EksAccess`] through [`Eks`], its [`Cloud`].

mod access;
mod clients;
mod ec2;
mod eks;
mod error;
mod graph;
mod iam;
mod kind;
mod route53;
mod state_store;

use std::sync::Arc;

use async_trait::async_trait;
use matih_plans::{DesiredGraph, Ownership, ProviderError};
use matih_provider_kit::owner::AwsTags;
use matih_provider_kit::{Cloud, ClusterBinding, Connected, ExecCredential, KitProvider, Recorder, RetryPolicy};
use matih_spec::{CloudKind, PlatformSpec};
use matih_state::{ObjectError, ObjectStore, RemoteLocation};

pub use access::{EksAccess, presigned_token};
pub use clients::Clients;
pub use graph::{CERT_MANAGER_SUBJECT, IAM_PATH};
pub use kind::Ctx;
pub use state_store::S3Objects;

/// The AWS provider: the kit's registry over the AWS kinds.
pub type AwsProvider = KitProvider<Ctx>;

/// The EKS cloud (`--cloud eks`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Eks;

fn eks_spec(spec: &PlatformSpec) -> &matih_spec::EksSpec {
    spec.clouds.eks.as_ref().expect("the CLI checked that the platform spec has clouds.eks")
}

impl Eks {
    /// The provider for `region` with clients from the standard configuration chain.
    pub async fn provider(region: &str, ownership: &Ownership) -> (AwsProvider, Clients) {
        let recorder = Recorder::default();
        let clients = Clients::load(region, recorder.clone()).await;
        let retry = RetryPolicy::default();
        let ctx = Ctx { c: clients.clone(), owner: ownership.clone(), retry };
        let kinds = [ec2::kinds(), iam::kinds(), eks::kinds(), route53::kinds()].into_iter().flatten().collect();
        (KitProvider::new("aws", ctx, kinds, ownership.clone(), Box::new(AwsTags), recorder, retry), clients)
    }
}

#[async_trait]
impl Cloud for Eks {
    fn name(&self) -> &'static str {
        "eks"
    }

    fn section(&self) -> Option<CloudKind> {
        Some(CloudKind::Eks)
    }

    fn desired_graph(&self, spec: &PlatformSpec) -> DesiredGraph {
        graph::desired_graph(spec)
    }

    fn bootstrap_binding(&self, spec: &PlatformSpec) -> Option<ClusterBinding> {
        Some(graph::bootstrap_binding(spec))
    }

    fn exec_credential(&self, spec: &PlatformSpec, cluster: &str) -> Result<ExecCredential, String> {
        Ok(access::exec_credential(&eks_spec(spec).region, cluster))
    }

    async fn connect(
        &self,
        spec: &PlatformSpec,
        _spec_dir: &std::path::Path,
        ownership: &Ownership,
    ) -> Result<Connected, ProviderError> {
        let (provider, clients) = Self::provider(&eks_spec(spec).region, ownership).await;
        Ok(Connected { providers: vec![Arc::new(provider)], access: Some(Arc::new(EksAccess::new(clients))) })
    }

    async fn state_objects(
        &self,
        spec: Option<&PlatformSpec>,
        location: &RemoteLocation,
    ) -> Result<Arc<dyn ObjectStore>, ObjectError> {
        let fallback = spec.and_then(|s| s.clouds.eks.as_ref()).map(|e| e.region.as_str());
        Ok(Arc::new(S3Objects::for_location(location, fallback).await?))
    }
}
