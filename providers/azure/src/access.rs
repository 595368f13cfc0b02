//! Access to AKS clusters for the bootstrap: the cluster as ARM reports it (endpoint and CA from
//! the cluster user credential, identity from its id and OIDC issuer), and a token — an Entra ID
//! token for the AKS server application when the cluster uses Entra ID (managed AAD), otherwise
//! the cluster user credential's token. Either lives only in memory.

use async_trait::async_trait;
use matih_plans::ProviderError;
use matih_provider_kit::{ClusterAccess, ClusterInfo, ExecCredential, Secret};
use serde_json::{Value as Json, json};

use crate::auth::{AKS_SERVER_APP_SCOPE, TokenSource};
use crate::cluster::{AKS_API, Cluster};
use crate::kind::{Ctx, op};

pub struct AksAccess {
    pub(crate) ctx: Ctx,
    pub(crate) creds: std::sync::Arc<dyn TokenSource>,
    /// The last cluster user credential listed, by the cluster's FQDN (a cluster made again gets
    /// another): `describe` and `token` of one bootstrap share one `listClusterUserCredential`
    /// call (the token stays in memory).
    pub(crate) credential: std::sync::Mutex<Option<(String, Credential)>>,
}

/// A cluster user credential: API server, CA, and the token when the cluster has local accounts.
#[derive(Clone)]
pub(crate) struct Credential {
    server: String,
    ca: String,
    token: Option<Secret>,
}

impl AksAccess {
    pub(crate) fn new(ctx: Ctx, creds: std::sync::Arc<dyn TokenSource>) -> Self {
        AksAccess { ctx, creds, credential: std::sync::Mutex::new(None) }
    }

    async fn credential(&self, id: &str, cluster: &Json) -> Result<Credential, ProviderError> {
        let fqdn = cluster.pointer("/properties/fqdn").and_then(Json::as_str).unwrap_or_default();
        if let Some((f, c)) = self.credential.lock().unwrap().as_ref()
            && !fqdn.is_empty()
            && f == fqdn
        {
            return Ok(c.clone());
        }
        let (server, ca, token) = Cluster::user_credential(&self.ctx, id).await?;
        let c = Credential { server, ca, token: token.map(Secret::new) };
        *self.credential.lock().unwrap() = Some((fqdn.to_string(), c.clone()));
        Ok(c)
    }
}

/// `kubelogin` for a kubeconfig: it gets the user's own Entra ID token for the cluster.
pub fn exec_credential() -> ExecCredential {
    ExecCredential {
        command: "kubelogin".into(),
        args: ["get-token", "--login", "azurecli", "--server-id", AKS_SERVER_APP_SCOPE.trim_end_matches("/.default")]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        install_hint: "kubelogin (`az aks install-cli`) and `az login`".into(),
    }
}

impl AksAccess {
    async fn cluster(&self, name: &str) -> Result<Option<(String, Json)>, ProviderError> {
        let id = self.ctx.id(&["Microsoft.ContainerService", "managedClusters"], name);
        let j = self.ctx.arm.get(&id, AKS_API, op("Microsoft.ContainerService", "ManagedClusters", "Get")).await?;
        Ok(j.map(|j| (id, j)))
    }
}

#[async_trait]
impl ClusterAccess for AksAccess {
    async fn describe(&self, name: &str) -> Result<Option<ClusterInfo>, ProviderError> {
        let Some((id, j)) = self.cluster(name).await? else { return Ok(None) };
        let c = self.credential(&id, &j).await?;
        Ok(Some(ClusterInfo {
            endpoint: c.server,
            ca_data: c.ca,
            identity: json!({
                "id": j["id"],
                "oidc_issuer": j.pointer("/properties/oidcIssuerProfile/issuerURL").cloned().unwrap_or(Json::Null),
            }),
        }))
    }

    /// Azure documents up to five minutes before a new Azure RBAC role assignment is honoured
    /// by the cluster.
    fn grant_delay(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5 * 60)
    }

    fn denied_hint(&self) -> Option<String> {
        Some(
            "on an Entra ID cluster, add the object ID of the principal that runs matih-infra (`az ad signed-in-user show --query id`, or `az ad sp show --id <app id> --query id`) to clouds.aks.entra_id.cluster_admins, or put it in one of entra_id.admin_group_ids".into(),
        )
    }

    async fn token(&self, name: &str) -> Result<Secret, ProviderError> {
        let Some((id, j)) = self.cluster(name).await? else {
            return Err(ProviderError::other(format!("AKS cluster {name} does not exist")));
        };
        if j.pointer("/properties/aadProfile/managed").and_then(Json::as_bool) == Some(true) {
            return self.creds.token(AKS_SERVER_APP_SCOPE).await;
        }
        match self.credential(&id, &j).await?.token {
            Some(t) => Ok(t),
            None => Err(ProviderError::other(format!(
                "AKS cluster {name}: its user credential holds no token (local accounts disabled?); enable Entra ID on the cluster"
            ))),
        }
    }
}
