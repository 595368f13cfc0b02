//! Access to GKE clusters for the bootstrap: the cluster as the container API reports it
//! (endpoint and CA; identity from its id and self link) and a short-lived OAuth2 access token
//! from Application Default Credentials (`MATIH_GCP_TOKEN` against an emulator), held in memory
//! only. GKE accepts Google access tokens at the API server; IAM and RBAC decide what they may do.

use async_trait::async_trait;
use matih_plans::ProviderError;
use matih_provider_kit::{ClusterAccess, ClusterInfo, ExecCredential, Secret};
use serde_json::json;

use crate::clients::TOKEN_ENV;
use crate::kind::Ctx;

/// `userinfo.email` too: without it a service account reaches GKE as its numeric id, and RBAC
/// bindings written by email do not match (what gke-gcloud-auth-plugin asks for as well).
const SCOPES: [&str; 2] =
    ["https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"];

pub struct GkeAccess {
    pub(crate) ctx: Ctx,
}

/// `gke-gcloud-auth-plugin` for a kubeconfig: it gets the user's own token from gcloud.
pub fn exec_credential() -> ExecCredential {
    ExecCredential {
        command: "gke-gcloud-auth-plugin".into(),
        args: vec![],
        install_hint:
            "gke-gcloud-auth-plugin (`gcloud components install gke-gcloud-auth-plugin`) and `gcloud auth login`".into(),
    }
}

#[async_trait]
impl ClusterAccess for GkeAccess {
    async fn describe(&self, name: &str) -> Result<Option<ClusterInfo>, ProviderError> {
        let full = format!("projects/{}/locations/{}/clusters/{name}", self.ctx.project, self.ctx.region);
        let r = self
            .ctx
            .read("container", "clusters.get", || self.ctx.c.container.get_cluster().set_name(full.clone()).send())
            .await;
        let Some(c) = matih_provider_kit::not_found_none(r)? else { return Ok(None) };
        Ok(Some(ClusterInfo {
            endpoint: if c.endpoint.is_empty() { String::new() } else { format!("https://{}", c.endpoint) },
            ca_data: c.master_auth.as_ref().map(|m| m.cluster_ca_certificate.clone()).unwrap_or_default(),
            identity: json!({"id": c.id, "self_link": c.self_link}),
        }))
    }

    async fn token(&self, _name: &str) -> Result<Secret, ProviderError> {
        if self.ctx.c.endpoint.is_some() {
            return std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()).map(Secret::new).ok_or_else(|| {
                ProviderError::other(format!(
                    "{TOKEN_ENV} is not set: with an emulator endpoint the bootstrap takes its cluster token from there"
                ))
            });
        }
        let creds = google_cloud_auth::credentials::Builder::default()
            .with_scopes(SCOPES)
            .build_access_token_credentials()
            .map_err(|e| {
                ProviderError::other(format!(
                    "Application Default Credentials: {e} (`gcloud auth application-default login`)"
                ))
            })?;
        let t = creds
            .access_token()
            .await
            .map_err(|e| ProviderError::other(format!("an access token from Application Default Credentials: {e}")))?;
        Ok(Secret::new(t.token))
    }
}
