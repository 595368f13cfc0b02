//! The EKS provider: the platform spec's `clouds.eks` section becomes a VPC for the Amazon VPC
//! CNI, IAM roles and the cluster's OIDC provider, an EKS cluster with managed node groups,
//! Elastic IPs for the ingress controllers' load balancers, and the platform's Route 53 zone and
//! records.
//!
//! It talks to AWS only through the official AWS SDK for Rust (credentials from the SDK's default
//! chain; `AWS_ENDPOINT_URL` points it at an emulator). It knows nothing about state files or
//! plans: the engine calls it through [`matih_plans::Provider`]. Cluster bootstrap (Kubernetes
//! objects) is `matih-provider-kubernetes`; this crate hands it cluster access (tokens) and the
//! addresses it needs ([`bootstrap_binding`]).

mod access;
mod clients;
mod ec2;
mod eks;
mod error;
mod graph;
mod iam;
mod kind;
mod route53;

use std::collections::HashMap;

use async_trait::async_trait;
use matih_plans::*;

pub use access::{EksAccess, presigned_token};
pub use clients::Clients;
pub use graph::{bootstrap_binding, desired_graph};
pub use kind::Owner;
use kind::{Ctx, Kind};

/// The AWS provider for one platform and environment.
pub struct AwsProvider {
    pub(crate) clients: Clients,
    owner: Owner,
    kinds: HashMap<ResourceType, Box<dyn Kind>>,
}

impl AwsProvider {
    /// Builds the SDK clients for `region` from the standard configuration chain.
    pub async fn new(region: &str, owner: Owner) -> Self {
        let clients = Clients::load(region).await;
        let all: Vec<Box<dyn Kind>> =
            [ec2::kinds(), iam::kinds(), eks::kinds(), route53::kinds()].into_iter().flatten().collect();
        let kinds = all.into_iter().map(|k| (k.schema().rtype, k)).collect();
        AwsProvider { clients, owner, kinds }
    }

    /// Access to the provider's EKS clusters for the bootstrap (same clients and credentials).
    pub fn cluster_access(&self) -> EksAccess {
        EksAccess::new(self.clients.clone())
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx { c: &self.clients, owner: &self.owner }
    }

    fn kind(&self, rtype: &ResourceType) -> Result<&dyn Kind, ProviderError> {
        self.kinds
            .get(rtype)
            .map(|k| k.as_ref())
            .ok_or_else(|| kind::other(format!("the aws provider has no resource type {rtype}")))
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &str {
        "aws"
    }

    fn schemas(&self) -> Vec<TypeSchema> {
        let mut v: Vec<TypeSchema> = self.kinds.values().map(|k| k.schema()).collect();
        v.sort_by(|a, b| a.rtype.cmp(&b.rtype));
        v
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        let found = self.kind(&req.rtype)?.read(&self.ctx(), &req.items).await?;
        Ok(ReadResponse { found })
    }

    async fn apply(&self, req: ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let kind = self.kind(&req.rtype)?;
        match &req.prior {
            None => kind.create(&self.ctx(), &req).await,
            Some(prior) => kind.update(&self.ctx(), prior, &req).await,
        }
    }

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        self.kind(&req.rtype)?.delete(&self.ctx(), &req).await
    }

    /// DNS records go to Route 53 together; other types one by one.
    async fn apply_batch(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        if !reqs.is_empty() && reqs.iter().all(|r| route53::is_record(&r.rtype)) {
            return route53::apply_records(&self.ctx(), &reqs).await;
        }
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.apply(r).await);
        }
        out
    }

    async fn delete_batch(&self, reqs: Vec<DeleteRequest>) -> Vec<Result<(), ProviderError>> {
        if !reqs.is_empty() && reqs.iter().all(|r| route53::is_record(&r.rtype)) {
            return route53::delete_records(&self.ctx(), &reqs).await;
        }
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.delete(r).await);
        }
        out
    }

    async fn find_by_owner(&self, req: FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        self.kind(&req.rtype)?.find(&self.ctx(), &req).await
    }

    fn api_calls(&self) -> ApiCalls {
        self.clients.calls.snapshot()
    }
}
