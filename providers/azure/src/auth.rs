//! Credentials for Azure Resource Manager and for AKS clusters, behind one small trait
//! ([`TokenSource`]): an explicit chain of `azure_identity` 1.x credentials (1.x has no
//! `DefaultAzureCredential`), or a static token for tests and emulators.
//!
//! The chain, in order, takes the first credential whose environment is present:
//! 1. workload identity (`AZURE_FEDERATED_TOKEN_FILE`, with `AZURE_CLIENT_ID` and `AZURE_TENANT_ID`):
//!    CI on a cluster, GitHub Actions OIDC;
//! 2. managed identity (`IDENTITY_ENDPOINT` or `MSI_ENDPOINT`, optionally `AZURE_CLIENT_ID` for a
//!    user-assigned one): runners on Azure VMs;
//! 3. a service principal's client secret (`AZURE_CLIENT_SECRET`, `AZURE_CLIENT_ID`,
//!    `AZURE_TENANT_ID`);
//! 4. the Azure CLI (`az login`): laptops.
//!
//! `MATIH_AZURE_TOKEN` replaces the chain with that bearer token (for emulators; never needed
//! against Azure). Tokens live in memory as [`Secret`]s: never in state, plans or logs.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use matih_plans::{ApiError, ErrorKind, ProviderError};
use matih_provider_kit::Secret;

/// The scope of Azure Resource Manager tokens.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The AKS AAD server application every AAD-enabled cluster accepts tokens for.
pub const AKS_SERVER_APP_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";
/// A fixed bearer token in place of the credential chain (emulators).
pub const STATIC_TOKEN_ENV: &str = "MATIH_AZURE_TOKEN";

/// Where bearer tokens come from.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token for `scope` (`…/.default`).
    async fn token(&self, scope: &str) -> Result<Secret, ProviderError>;
    /// Which credential this is, for `-v` and errors (never the token).
    fn describe(&self) -> String;
}

/// One token for every scope.
pub struct StaticToken(pub Secret);

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self, _scope: &str) -> Result<Secret, ProviderError> {
        Ok(self.0.clone())
    }
    fn describe(&self) -> String {
        format!("the static token in {STATIC_TOKEN_ENV}")
    }
}

/// An `azure_identity` credential.
pub struct Identity {
    cred: Arc<dyn TokenCredential>,
    name: &'static str,
}

#[async_trait]
impl TokenSource for Identity {
    async fn token(&self, scope: &str) -> Result<Secret, ProviderError> {
        match self.cred.get_token(&[scope], None).await {
            Ok(t) => Ok(Secret::new(t.token.secret())),
            Err(e) => Err(ApiError::new(
                "entra-id",
                "GetToken",
                ErrorKind::Denied,
                "CredentialUnavailable",
                format!("{} could not get a token for {scope}: {e}", self.name),
            )
            .into()),
        }
    }
    fn describe(&self) -> String {
        self.name.to_string()
    }
}

fn present(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn unusable(name: &str, e: azure_core::Error) -> ProviderError {
    ProviderError::other(format!("Azure credentials: {name} is configured but unusable: {e}"))
}

/// The token source the environment selects (see the module docs).
pub fn from_env() -> Result<Arc<dyn TokenSource>, ProviderError> {
    use azure_identity::*;
    if let Some(t) = present(STATIC_TOKEN_ENV) {
        return Ok(Arc::new(StaticToken(Secret::new(t))));
    }
    if present("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        let cred = WorkloadIdentityCredential::new(None).map_err(|e| unusable("workload identity", e))?;
        return Ok(Arc::new(Identity { cred, name: "workload identity (AZURE_FEDERATED_TOKEN_FILE)" }));
    }
    if present("IDENTITY_ENDPOINT").is_some() || present("MSI_ENDPOINT").is_some() {
        let options = present("AZURE_CLIENT_ID").map(|id| ManagedIdentityCredentialOptions {
            user_assigned_id: Some(UserAssignedId::ClientId(id)),
            ..Default::default()
        });
        let cred = ManagedIdentityCredential::new(options).map_err(|e| unusable("managed identity", e))?;
        return Ok(Arc::new(Identity { cred, name: "managed identity" }));
    }
    if let (Some(secret), Some(client), Some(tenant)) =
        (present("AZURE_CLIENT_SECRET"), present("AZURE_CLIENT_ID"), present("AZURE_TENANT_ID"))
    {
        let cred = ClientSecretCredential::new(&tenant, client, secret.into(), None)
            .map_err(|e| unusable("the client secret (AZURE_CLIENT_SECRET)", e))?;
        return Ok(Arc::new(Identity { cred, name: "a service principal's client secret (AZURE_CLIENT_SECRET)" }));
    }
    let cred = AzureCliCredential::new(None).map_err(|e| unusable("the Azure CLI", e))?;
    Ok(Arc::new(Identity { cred, name: "the Azure CLI (az login)" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_static_token_answers_every_scope_and_never_prints() {
        let s = StaticToken(Secret::new("t0ken"));
        assert_eq!(s.token(ARM_SCOPE).await.unwrap().expose(), "t0ken");
        assert_eq!(s.token(AKS_SERVER_APP_SCOPE).await.unwrap().expose(), "t0ken");
        assert!(!s.describe().contains("t0ken"));
    }
}
