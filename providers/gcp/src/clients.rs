//! The official google-cloud-rust clients the GKE kinds use, built once per run: compute
//! (networks, subnetworks, firewalls, routers, addresses), container (clusters, node pools),
//! Cloud DNS (zones, changes, record sets) and IAM (service accounts).
//!
//! Their own retries are off (`NeverRetry`) and every attempt has a timeout: the kit's retry
//! helper is the one place that decides what may be sent again (the container client, for one,
//! would not retry a 429). Against Google they use Application Default Credentials; with
//! `MATIH_GCP_ENDPOINT` (an emulator on loopback) they send no credentials at all.
//!
//! Not here: key files (never written or read by the tool), gRPC (the crates speak REST/JSON).

use std::time::Duration;

use google_cloud_auth::credentials::anonymous::Builder as Anonymous;
use google_cloud_gax::retry_policy::NeverRetry;
use matih_plans::ProviderError;
use matih_provider_kit::Recorder;

/// Points every client at one endpoint (an emulator) instead of Google's hosts.
pub const ENDPOINT_ENV: &str = "MATIH_GCP_ENDPOINT";
/// With [`ENDPOINT_ENV`]: the bearer token the bootstrap gives the cluster's API server.
pub const TOKEN_ENV: &str = "MATIH_GCP_TOKEN";

/// How long one attempt of one call may take before it counts as lost.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The clients of one run, with the recorder that counts their calls.
#[derive(Clone)]
pub struct Clients {
    pub networks: google_cloud_compute_v1::client::Networks,
    pub subnetworks: google_cloud_compute_v1::client::Subnetworks,
    pub firewalls: google_cloud_compute_v1::client::Firewalls,
    pub routers: google_cloud_compute_v1::client::Routers,
    pub addresses: google_cloud_compute_v1::client::Addresses,
    pub container: google_cloud_container_v1::client::ClusterManager,
    pub zones: google_cloud_dns_v1::client::ManagedZones,
    pub changes: google_cloud_dns_v1::client::Changes,
    pub rrsets: google_cloud_dns_v1::client::ResourceRecordSets,
    pub iam: google_cloud_iam_admin_v1::client::Iam,
    pub recorder: Recorder,
    /// The emulator the clients talk to, if any.
    pub endpoint: Option<String>,
}

/// One client with the tool's settings: the endpoint override, anonymous credentials for an
/// emulator, no retries of its own, a timeout per attempt.
macro_rules! build {
    ($client:ty, $endpoint:expr) => {{
        let mut b = <$client>::builder().with_retry_policy(NeverRetry).with_attempt_timeout(ATTEMPT_TIMEOUT);
        if let Some(e) = $endpoint {
            b = b.with_endpoint(e.clone()).with_credentials(Anonymous::new().build());
        }
        b.build().await.map_err(|e| {
            ProviderError::other(format!(
                "building the {} client: {e} (Application Default Credentials: `gcloud auth application-default login`, GOOGLE_APPLICATION_CREDENTIALS, or the metadata server)",
                stringify!($client)
            ))
        })?
    }};
}

impl Clients {
    /// Clients for Google, or for the emulator `MATIH_GCP_ENDPOINT` names.
    pub async fn from_env(recorder: Recorder) -> Result<Clients, ProviderError> {
        // rustls needs one crypto provider for the process; the kube client names ring too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = std::env::var(ENDPOINT_ENV).ok().filter(|s| !s.is_empty());
        let ep = endpoint.as_ref();
        Ok(Clients {
            networks: build!(google_cloud_compute_v1::client::Networks, ep),
            subnetworks: build!(google_cloud_compute_v1::client::Subnetworks, ep),
            firewalls: build!(google_cloud_compute_v1::client::Firewalls, ep),
            routers: build!(google_cloud_compute_v1::client::Routers, ep),
            addresses: build!(google_cloud_compute_v1::client::Addresses, ep),
            container: build!(google_cloud_container_v1::client::ClusterManager, ep),
            zones: build!(google_cloud_dns_v1::client::ManagedZones, ep),
            changes: build!(google_cloud_dns_v1::client::Changes, ep),
            rrsets: build!(google_cloud_dns_v1::client::ResourceRecordSets, ep),
            iam: build!(google_cloud_iam_admin_v1::client::Iam, ep),
            recorder,
            endpoint,
        })
    }
}
