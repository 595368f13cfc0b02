//! What the GKE kinds share: the context they run in (clients, project, region, owner, retry
//! policy) with one way to call the SDK, ownership written into descriptions, and waits on
//! Google's long-running operations.
//!
//! Only addresses, clusters and managed zones carry labels; networks, subnetworks, firewalls,
//! routers and service accounts do not. Every resource the tool makes therefore also carries its
//! owner in its `description`, as one JSON object (`{"managed-by":"matih-infra",
//! "matih-platform":…,"matih-environment":…,"matih-address":…,"address":"gke.network.main"}`),
//! the way Kubernetes' GCE cloud provider marks the firewalls and addresses it makes. The label
//! form of the address is a digest; the description also holds it in full, so the kit can name
//! the address of a resource it finds.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use matih_plans::wait::{WaitPolicy, WaitStep, wait_until};
use matih_plans::*;
use matih_provider_kit::owner::{LABEL_ENVIRONMENT, LABEL_PLATFORM};
use matih_provider_kit::{Call, RetryPolicy};
use serde_json::{Value as Json, json};

use crate::clients::Clients;

pub use matih_provider_kit::cfg::{Cfg, attrs};

/// Everything a kind needs to talk to Google Cloud.
#[derive(Clone)]
pub struct Ctx {
    pub c: Clients,
    pub project: String,
    pub region: String,
    pub owner: Ownership,
    pub retry: RetryPolicy,
}

/// The key under which a description names the address in full.
const DESCRIPTION_ADDRESS: &str = "address";

impl Ctx {
    /// Sends one SDK request (`send` builds and sends it) with the kit's retries for `call`,
    /// counting it, and turns a failure into a typed provider error naming `service` and
    /// `operation`.
    pub async fn call<T, F, Fut>(
        &self,
        service: &str,
        operation: &str,
        call: Call,
        mut send: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, google_cloud_gax::error::Error>>,
    {
        let rec = &self.c.recorder;
        matih_provider_kit::retry::retry(&self.retry, rec, service, operation, call, || {
            rec.call(service, operation);
            let sent = send();
            async move { sent.await.map_err(|e| crate::error::api(service, operation, e)) }
        })
        .await
    }

    /// A read: repeated after throttles, server errors and lost answers.
    pub async fn read<T, F, Fut>(&self, service: &str, operation: &str, send: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, google_cloud_gax::error::Error>>,
    {
        self.call(service, operation, Call::Read, send).await
    }

    /// A write that leaves the same result when sent twice.
    pub async fn write<T, F, Fut>(&self, service: &str, operation: &str, send: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, google_cloud_gax::error::Error>>,
    {
        self.call(service, operation, Call::Idempotent, send).await
    }

    /// A call that makes something new: repeated only when it certainly did nothing.
    pub async fn create<T, F, Fut>(&self, service: &str, operation: &str, send: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, google_cloud_gax::error::Error>>,
    {
        self.call(service, operation, Call::Create, send).await
    }

    /// `<platform>-<environment>-`: every name the tool gives starts so.
    pub fn prefix(&self) -> String {
        format!("{}-{}-", self.owner.platform, self.owner.environment)
    }

    /// Whether labels (or a description's owner entries) mark this platform and environment.
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(LABEL_PLATFORM) == Some(&self.owner.platform)
            && tags.get(LABEL_ENVIRONMENT) == Some(&self.owner.environment)
    }
}

/// The description of a resource the tool makes: the owner labels and the address in full.
pub fn owner_description(req: &ApplyRequest) -> String {
    let mut m = owner_entries(req);
    m.insert("managed-by".into(), json!("matih-infra"));
    Json::Object(m).to_string()
}

/// The same without the `managed-by` note, for descriptions of at most 256 bytes (service
/// accounts): with the spec's longest names it stays within them.
pub fn short_owner_description(req: &ApplyRequest) -> String {
    Json::Object(owner_entries(req)).to_string()
}

fn owner_entries(req: &ApplyRequest) -> serde_json::Map<String, Json> {
    let mut m: serde_json::Map<String, Json> =
        req.identity.owner_tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    m.insert(DESCRIPTION_ADDRESS.into(), json!(req.addr.to_string()));
    m
}

/// The owner entries and the address a description holds (none when it is not the tool's).
pub fn owner_of_description(description: &str) -> (BTreeMap<String, String>, Option<ResourceAddr>) {
    let Ok(Json::Object(m)) = serde_json::from_str::<Json>(description) else { return (BTreeMap::new(), None) };
    let addr = m.get(DESCRIPTION_ADDRESS).and_then(Json::as_str).and_then(|a| a.parse::<ResourceAddr>().ok());
    let tags = m
        .iter()
        .filter(|(k, _)| k.starts_with("matih-"))
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect();
    (tags, addr)
}

/// A string map of a JSON object (labels).
pub fn string_map(j: Option<&Json>) -> BTreeMap<String, String> {
    j.and_then(Json::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default()
}

/// The last path segment of a URL or resource name (`…/networks/matih-prod-vpc` → the name).
pub fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// A resource's JSON as the crates' models serialize it.
pub fn to_json<T: serde::Serialize>(v: &T) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// A model from the JSON the tool builds; a mistake here is the tool's own.
pub fn from_json<T: serde::de::DeserializeOwned>(what: &str, v: Json) -> Result<T, ProviderError> {
    serde_json::from_value(v).map_err(|e| ProviderError::other(format!("building the {what} request: {e}")))
}

/// Every item of a paged list: `page(token)` fetches one page (as JSON), `key` names its items.
pub async fn all_pages<F, Fut>(key: &str, mut page: F) -> Result<Vec<Json>, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Json, ProviderError>>,
{
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let j = page(token.take()).await?;
        out.extend(j[key].as_array().cloned().unwrap_or_default());
        match j["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(out),
        }
    }
}

/// How an operation looks: `(done, status text, error)`.
pub struct OpView {
    pub done: bool,
    pub status: String,
    pub error: Option<ProviderError>,
}

/// Polls an operation with `look` until it is done, with `deadline`, reporting its status on
/// `status`; a done operation with an error is that error.
pub async fn wait_operation<F, Fut>(
    what: &str,
    deadline: Duration,
    status: &StatusSink,
    mut look: F,
) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<OpView, ProviderError>>,
{
    let policy = WaitPolicy { deadline, first_delay: Duration::from_millis(250), max_delay: Duration::from_secs(10) };
    let r = wait_until(
        what,
        policy,
        |s| status.say(s),
        || {
            let f = look();
            async move {
                let v = f.await?;
                Ok::<_, ProviderError>(match (v.done, v.error) {
                    (true, Some(e)) => return Err(e),
                    (true, None) => WaitStep::Done(()),
                    (false, _) => WaitStep::Pending(v.status),
                })
            }
        },
    )
    .await?;
    r.map_err(ProviderError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_carry_the_owner_and_the_whole_address() {
        let addr = ResourceAddr::must(r#"gke.address.ingress["acme"]"#);
        let req = ApplyRequest {
            addr: addr.clone(),
            rtype: addr.rtype.clone(),
            prior: None,
            config: Default::default(),
            identity: Identity {
                name: "matih-prod-ingress-acme".into(),
                client_token: "t".into(),
                owner_tags: BTreeMap::from([("matih-platform".to_string(), "matih".to_string())]),
            },
            status: StatusSink::default(),
        };
        let d = owner_description(&req);
        let (tags, a) = owner_of_description(&d);
        assert_eq!(tags.get("matih-platform").map(String::as_str), Some("matih"));
        assert_eq!(a, Some(addr));
        assert_eq!(owner_of_description("a firewall someone made"), (BTreeMap::new(), None));
    }
}
