//! Access to EKS clusters for the bootstrap: the cluster as EKS reports it (endpoint, CA,
//! identity) and the `k8s-aws-v1.` bearer token EKS accepts — an STS `GetCallerIdentity` URL
//! pre-signed for 60 seconds with the cluster's name in the signed `x-k8s-aws-id` header, as
//! `aws eks get-token` and aws-iam-authenticator make it.
//!
//! The token is made from the SDK's default credential chain and lives only in memory.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use matih_plans::ProviderError;
use matih_provider_kit::{ClusterAccess, ClusterInfo, ExecCredential, RetryPolicy, Secret, not_found_none};
use serde_json::json;

use crate::Clients;

/// How long a pre-signed token URL is valid; EKS accepts it for 15 minutes after signing
/// regardless, and rejects longer expiries.
const TOKEN_EXPIRY: Duration = Duration::from_secs(60);

pub struct EksAccess {
    ctx: crate::Ctx,
}

impl EksAccess {
    pub fn new(clients: Clients) -> Self {
        // The bootstrap's calls are reads; the owner is not needed for them.
        let owner = matih_plans::Ownership { platform: String::new(), environment: String::new() };
        EksAccess { ctx: crate::Ctx { c: clients, owner, retry: RetryPolicy::default() } }
    }
}

fn other(message: String) -> ProviderError {
    ProviderError::other(message)
}

/// `aws eks get-token` for a kubeconfig: the AWS CLI mints the same token for the user.
pub fn exec_credential(region: &str, cluster: &str) -> ExecCredential {
    ExecCredential {
        command: "aws".into(),
        args: ["--region", region, "eks", "get-token", "--cluster-name", cluster, "--output", "json"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        install_hint: "the AWS CLI v2 and credentials for the account".into(),
    }
}

/// The token for `cluster`, signed with `creds` for STS in `region` at `now`.
pub fn presigned_token(
    creds: &aws_credential_types::Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<Secret, ProviderError> {
    let url = format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_EXPIRY);
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| other(format!("signing an EKS token: {e}")))?
        .into();
    let signable =
        SignableRequest::new("GET", url.clone(), [("x-k8s-aws-id", cluster)].into_iter(), SignableBody::Bytes(&[]))
            .map_err(|e| other(format!("signing an EKS token: {e}")))?;
    let (instructions, _) =
        sign(signable, &params).map_err(|e| other(format!("signing an EKS token: {e}")))?.into_parts();
    let mut req = http::Request::builder()
        .uri(&url)
        .header("x-k8s-aws-id", cluster)
        .body(())
        .map_err(|e| other(format!("signing an EKS token: {e}")))?;
    instructions.apply_to_request_http1x(&mut req);
    let signed = req.uri().to_string();
    Ok(Secret::new(format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed.as_bytes())
    )))
}

#[async_trait]
impl ClusterAccess for EksAccess {
    async fn describe(&self, name: &str) -> Result<Option<ClusterInfo>, ProviderError> {
        let ctx = &self.ctx;
        let r = ctx.read("eks", "DescribeCluster", || ctx.c.eks.describe_cluster().name(name).send()).await;
        let c = not_found_none(r)?.and_then(|r| r.cluster().cloned());
        Ok(c.map(|c| ClusterInfo {
            endpoint: c.endpoint().unwrap_or_default().to_string(),
            ca_data: c.certificate_authority().and_then(|ca| ca.data()).unwrap_or_default().to_string(),
            // The same values the cluster resource records (`arn`, `created_at`).
            identity: json!({"arn": c.arn(), "created_at": c.created_at().map(|t| t.to_string())}),
        }))
    }

    async fn token(&self, name: &str) -> Result<Secret, ProviderError> {
        use aws_credential_types::provider::ProvideCredentials as _;
        let provider = self.ctx.c.credentials.as_ref().ok_or_else(|| {
            other("no AWS credentials configured (the SDK's default chain found none) to sign an EKS token".into())
        })?;
        let creds = provider.provide_credentials().await.map_err(|e| ProviderError::Other {
            message: "AWS credentials for an EKS token".into(),
            source: Some(std::sync::Arc::new(e)),
        })?;
        presigned_token(&creds, &self.ctx.c.region, name, SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_a_presigned_get_caller_identity_url_bound_to_the_cluster() {
        let creds = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let t = presigned_token(&creds, "us-east-1", "matih-prod", SystemTime::UNIX_EPOCH).unwrap();
        let b64 = t.expose().strip_prefix("k8s-aws-v1.").expect("EKS token prefix");
        let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap();
        assert!(url.starts_with("https://sts.us-east-1.amazonaws.com/?"), "{url}");
        for part in ["Action=GetCallerIdentity", "Version=2011-06-15", "X-Amz-Expires=60", "X-Amz-Signature="] {
            assert!(url.contains(part), "{part} missing in {url}");
        }
        assert!(url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"), "{url}");
        assert!(url.contains("AKIDEXAMPLE%2F19700101%2Fus-east-1%2Fsts%2Faws4_request"), "{url}");
        let other = presigned_token(&creds, "us-east-1", "matih-staging", SystemTime::UNIX_EPOCH).unwrap();
        assert_ne!(t.expose(), other.expose(), "the signature covers the cluster name");
    }
}
