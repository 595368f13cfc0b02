//! Reaching a cluster's API server: only the cluster the cloud provider created or refreshed
//! (endpoint, CA, a short-lived token from the cloud), never an ambient kubeconfig or in-cluster
//! configuration.
//!
//! Emulated clouds hand out endpoints that do not exist, so tests send the API traffic elsewhere
//! with one explicit override ([`ApiOverride`], `MATIH_KUBE_API_SERVER`), which the tool announces
//! whenever it is in effect. Nothing here falls back silently.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use matih_plans::ProviderError;

pub use matih_provider_kit::{ClusterAccess, ClusterInfo, ExecCredential, Secret};

/// `MATIH_KUBE_API_SERVER` (and optionally `MATIH_KUBE_CA_FILE`, `MATIH_KUBE_TOKEN`): send every
/// cluster's API traffic to this URL instead of the endpoint the cloud reports. For emulated
/// clouds; the tool says so on every run while it is set.
#[derive(Clone)]
pub struct ApiOverride {
    pub url: String,
    pub ca_file: Option<PathBuf>,
    pub token: Option<Secret>,
}

pub const OVERRIDE_ENV: &str = "MATIH_KUBE_API_SERVER";
pub const OVERRIDE_CA_ENV: &str = "MATIH_KUBE_CA_FILE";
pub const OVERRIDE_TOKEN_ENV: &str = "MATIH_KUBE_TOKEN";

/// `MATIH_KUBE_API_SERVER` holds something that is not a URL.
#[derive(Debug, thiserror::Error)]
#[error("{OVERRIDE_ENV}={url:?} is not a URL")]
pub struct OverrideError {
    pub url: String,
    #[source]
    pub source: http::uri::InvalidUri,
}

impl ApiOverride {
    /// The override from the environment, if set.
    pub fn from_env() -> Result<Option<ApiOverride>, OverrideError> {
        let Some(url) = std::env::var(OVERRIDE_ENV).ok().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        url.parse::<http::Uri>().map_err(|source| OverrideError { url: url.clone(), source })?;
        let ca_file = std::env::var_os(OVERRIDE_CA_ENV).filter(|s| !s.is_empty()).map(PathBuf::from);
        let token = std::env::var(OVERRIDE_TOKEN_ENV).ok().filter(|s| !s.is_empty()).map(Secret::new);
        Ok(Some(ApiOverride { url, ca_file, token }))
    }

    /// The announcement printed while the override is in effect.
    pub fn announcement(&self) -> String {
        let mut s = format!(
            "{OVERRIDE_ENV} is set: Kubernetes API traffic for every cluster goes to {} instead of the endpoint its cloud reports",
            self.url
        );
        if let Some(ca) = &self.ca_file {
            s.push_str(&format!(" (CA from {})", ca.display()));
        }
        if self.token.is_some() {
            s.push_str(&format!(" with the token from {OVERRIDE_TOKEN_ENV}"));
        }
        s
    }
}

impl fmt::Debug for ApiOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiOverride").field("url", &self.url).field("ca_file", &self.ca_file).finish_non_exhaustive()
    }
}

/// Where to reach one cluster: what the cluster resource reported.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub cluster: String,
    pub url: String,
    pub ca_data: String,
}

/// Tokens from the cloud last 15 minutes; a client is rebuilt well before that.
const CLIENT_MAX_AGE: Duration = Duration::from_secs(600);

/// Builds and caches clients, one per cluster.
pub struct Connector {
    access: Arc<dyn ClusterAccess>,
    api_override: Option<ApiOverride>,
    clients: Mutex<HashMap<Endpoint, (kube::Client, Instant)>>,
}

impl Connector {
    pub fn new(access: Arc<dyn ClusterAccess>, api_override: Option<ApiOverride>) -> Self {
        Connector { access, api_override, clients: Mutex::new(HashMap::new()) }
    }

    pub fn access(&self) -> &dyn ClusterAccess {
        self.access.as_ref()
    }

    /// A client for the cluster at `ep`.
    pub async fn client(&self, ep: &Endpoint) -> Result<kube::Client, ProviderError> {
        if let Some((c, at)) = self.clients.lock().unwrap().get(ep)
            && at.elapsed() < CLIENT_MAX_AGE
        {
            return Ok(c.clone());
        }
        let client = self.build(ep).await?;
        self.clients.lock().unwrap().insert(ep.clone(), (client.clone(), Instant::now()));
        Ok(client)
    }

    async fn build(&self, ep: &Endpoint) -> Result<kube::Client, ProviderError> {
        // The AWS SDK compiles in aws-lc-rs and kube ring: with two crypto providers rustls has
        // no default, so the process picks one before the first TLS client is built.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (url, root_cert, token) = match &self.api_override {
            Some(o) => {
                let ca = match &o.ca_file {
                    Some(p) => Some(pem_certs(
                        &std::fs::read(p)
                            .map_err(|e| other(format!("{OVERRIDE_CA_ENV}: cannot read {}: {e}", p.display())))?,
                    )?),
                    None => None,
                };
                let token = match &o.token {
                    Some(t) => t.clone(),
                    None => self.access.token(&ep.cluster).await?,
                };
                (o.url.clone(), ca, token)
            }
            None => {
                if ep.url.is_empty() || ep.ca_data.is_empty() {
                    return Err(other(format!(
                        "cluster {} has no known API endpoint or CA yet; refusing to guess one",
                        ep.cluster
                    )));
                }
                let pem = base64::engine::general_purpose::STANDARD
                    .decode(ep.ca_data.trim())
                    .map_err(|e| other(format!("cluster {}: its CA is not base64: {e}", ep.cluster)))?;
                (ep.url.clone(), Some(pem_certs(&pem)?), self.access.token(&ep.cluster).await?)
            }
        };
        let uri: http::Uri = url.parse().map_err(|e| other(format!("cluster API URL {url:?}: {e}")))?;
        let mut cfg = kube::Config::new(uri);
        cfg.root_cert = root_cert;
        cfg.connect_timeout = Some(Duration::from_secs(10));
        cfg.read_timeout = Some(Duration::from_secs(60));
        cfg.auth_info.token = Some(secrecy::SecretString::from(token.expose().to_string()));
        kube::Client::try_from(cfg).map_err(|e| other(format!("building a client for cluster {}: {e}", ep.cluster)))
    }
}

/// DER certificates of a PEM bundle.
fn pem_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, ProviderError> {
    let text = std::str::from_utf8(pem).map_err(|_| other("the cluster CA is not PEM text".into()))?;
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            body = Some(String::new());
        } else if line.starts_with("-----END CERTIFICATE-----") {
            let b = body.take().ok_or_else(|| other("the cluster CA has an END without BEGIN".into()))?;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| other(format!("the cluster CA's certificate is not base64: {e}")))?,
            );
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    if out.is_empty() {
        return Err(other("the cluster CA holds no certificate".into()));
    }
    Ok(out)
}

pub(crate) fn other(message: String) -> ProviderError {
    ProviderError::other(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundle_decodes_to_der() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\nAwQ=\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certs(pem.as_bytes()).unwrap(), vec![vec![0, 1, 2, 3, 4]]);
        assert!(pem_certs(b"nothing here").is_err());
    }
}
