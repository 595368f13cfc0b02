//! A thin typed Azure Resource Manager client over reqwest: one path for PUT / PATCH / GET /
//! DELETE / POST actions with `api-version`, lists that follow `nextLink`, long-running
//! operations (`Azure-AsyncOperation` polled to Succeeded / Failed / Canceled, or `Location`
//! polled until it stops answering 202; `Retry-After` honoured) with a deadline, conditional
//! requests (`If-Match`, `If-None-Match: *`), and the ARM error body
//! (`{error:{code,message,target,details}}`) with `x-ms-request-id` in every error.
//!
//! Retries go through the kit ([`matih_provider_kit::retry`]): reads and idempotent writes after
//! throttles (429), server errors and lost answers; creates only when ARM certainly did nothing.
//! Every request is counted in the kit's [`Recorder`] as `<service>:<operation>` with the REST
//! specification's operation ids (`VirtualNetworks_CreateOrUpdate`).
//!
//! It knows no resource type: the kinds build paths and bodies. It does not cache, and it never
//! logs a request's headers (the bearer token is in them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use matih_plans::wait::WaitError;
use matih_plans::{ApiError, ErrorKind, ProviderError, StatusSink};
use matih_provider_kit::{Call, Recorder, RetryPolicy};
use reqwest::header::HeaderMap;
use serde_json::{Value as Json, json};

use crate::auth::{ARM_SCOPE, TokenSource};

/// Where ARM is: `MATIH_ARM_ENDPOINT` overrides it (emulators).
pub const ENDPOINT_ENV: &str = "MATIH_ARM_ENDPOINT";
pub const PUBLIC_CLOUD: &str = "https://management.azure.com";

/// One REST operation: the resource provider and the specification's operation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub service: &'static str,
    pub operation: &'static str,
}

/// A precondition on a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond<'a> {
    None,
    /// Only if the resource's `etag` is this one.
    IfMatch(&'a str),
    /// Only if it does not exist yet.
    IfNoneMatch,
}

/// An answer with a 2xx status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Json,
    headers: HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The client.
#[derive(Clone)]
pub struct Arm {
    http: reqwest::Client,
    base: String,
    creds: Arc<dyn TokenSource>,
    pub recorder: Recorder,
    pub retry: RetryPolicy,
}

/// The code ARM answers a write with when the subscription is not registered for its provider.
const MISSING_REGISTRATION: &str = "MissingSubscriptionRegistration";
/// The API version of `Microsoft.Resources` provider registration.
const PROVIDERS_API: &str = "2021-04-01";

/// The subscription and resource provider namespace a request URL addresses.
fn registration_target(url: &str) -> Option<(String, String)> {
    let path = url.split('?').next()?;
    let segs: Vec<&str> = path.split('/').collect();
    let sub = segs.iter().position(|s| s.eq_ignore_ascii_case("subscriptions")).and_then(|i| segs.get(i + 1))?;
    let ns = segs.iter().rposition(|s| s.eq_ignore_ascii_case("providers")).and_then(|i| segs.get(i + 1))?;
    Some((sub.to_string(), ns.to_string()))
}

/// Terminal statuses of an operation or a resource's `provisioningState`.
const SUCCEEDED: &str = "Succeeded";
const FAILED: [&str; 2] = ["Failed", "Canceled"];

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The kind of failure an ARM error code stands for, where the HTTP status does not say it.
fn kind_of(status: u16, code: &str) -> ErrorKind {
    match code {
        // Refused for now, nothing done: another write to the same parent (two subnets of one
        // VNet, two pools of one cluster) is still running.
        "TooManyRequests"
        | "ResourceRequestsThrottled"
        | "SubscriptionRequestsThrottled"
        | "AnotherOperationInProgress" => ErrorKind::Throttled,
        "ResourceGroupNotFound" | "ResourceNotFound" | "NotFound" | "ParentResourceNotFound" => ErrorKind::NotFound,
        "RoleAssignmentExists" | "Conflict" => ErrorKind::Conflict,
        // Nothing exists: the subscription cannot use the provider yet.
        MISSING_REGISTRATION => ErrorKind::Invalid,
        // Refused, not conflicting with anything of this name (quota, a state that forbids it).
        "OperationNotAllowed" => ErrorKind::Invalid,
        // Still held by what is going away (a deleted cluster's service association link, a load
        // balancer releasing its address): refused for now, nothing done.
        "InUseSubnetCannotBeDeleted" | "PublicIPAddressInUse" => ErrorKind::Throttled,
        "InternalServerError" | "RetryableError" | "ServiceUnavailable" | "GatewayTimeout" => ErrorKind::Unavailable,
        _ => ErrorKind::from_status(status),
    }
}

/// The ARM error body's code and message (with the target and the details' codes and messages).
fn error_of(body: &Json) -> (String, String) {
    let e = body.get("error").unwrap_or(body);
    let code = e.get("code").and_then(Json::as_str).unwrap_or_default().to_string();
    let mut message = e.get("message").and_then(Json::as_str).unwrap_or_default().to_string();
    if let Some(t) = e.get("target").and_then(Json::as_str).filter(|t| !t.is_empty()) {
        message.push_str(&format!(" (target: {t})"));
    }
    for d in e.get("details").and_then(Json::as_array).into_iter().flatten() {
        let c = d.get("code").and_then(Json::as_str).unwrap_or_default();
        let m = d.get("message").and_then(Json::as_str).unwrap_or_default();
        message.push_str(&format!("; {c}: {m}"));
    }
    (code, message)
}

impl Arm {
    pub fn new(base: &str, creds: Arc<dyn TokenSource>, recorder: Recorder, retry: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .expect("a reqwest client with rustls builds");
        Arm { http, base: base.trim_end_matches('/').to_string(), creds, recorder, retry }
    }

    /// The ARM endpoint from the environment (or the public cloud's).
    pub fn endpoint_from_env() -> String {
        std::env::var(ENDPOINT_ENV).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| PUBLIC_CLOUD.to_string())
    }

    fn url(&self, path: &str, api: &str, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "&" };
        format!("{}{path}?api-version={api}{sep}{query}", self.base)
    }

    /// One request, counted; a failure becomes a typed error naming the operation.
    async fn attempt(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Json>,
        cond: Cond<'_>,
        op: Op,
    ) -> Result<Answer, ProviderError> {
        self.recorder.call(op.service, op.operation);
        let token = self.creds.token(ARM_SCOPE).await?;
        let mut rb = self.http.request(method, url).bearer_auth(token.expose());
        rb = match cond {
            Cond::None => rb,
            Cond::IfMatch(etag) => rb.header("If-Match", etag),
            Cond::IfNoneMatch => rb.header("If-None-Match", "*"),
        };
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                // A refused connection never reached ARM; anything later may have.
                let kind = if e.is_connect() { ErrorKind::Unreachable } else { ErrorKind::NoResponse };
                return Err(ApiError::new(op.service, op.operation, kind, "", format!("request failed: {e}"))
                    .source(e)
                    .into());
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let request_id = headers.get("x-ms-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Err(ApiError::new(
                    op.service,
                    op.operation,
                    ErrorKind::NoResponse,
                    "",
                    format!("the answer was cut off: {e}"),
                )
                .status(status)
                .request_id(request_id)
                .into());
            }
        };
        let json: Json =
            if bytes.is_empty() { Json::Null } else { serde_json::from_slice(&bytes).unwrap_or(Json::Null) };
        if status >= 400 {
            let (code, mut message) = error_of(&json);
            if message.is_empty() {
                message = String::from_utf8_lossy(&bytes).chars().take(300).collect();
            }
            return Err(ApiError::new(op.service, op.operation, kind_of(status, &code), &code, message)
                .status(status)
                .request_id(request_id)
                .retry_after(retry_after(&headers))
                .into());
        }
        Ok(Answer { status, body: json, headers })
    }

    /// A request with the kit's retries for `call`. A subscription not registered for the
    /// request's resource provider (a fresh subscription: 409 `MissingSubscriptionRegistration`)
    /// is registered, as the Azure SDKs do, and the request sent once more.
    pub async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Json>,
        cond: Cond<'_>,
        op: Op,
        call: Call,
    ) -> Result<Answer, ProviderError> {
        let send = || self.send(method.clone(), url, body, cond, op, call);
        match send().await {
            Err(e) if e.code() == Some(MISSING_REGISTRATION) => {
                let Some((subscription, namespace)) = registration_target(url) else { return Err(e) };
                self.register(&subscription, &namespace).await.map_err(|r| {
                    ProviderError::other(format!(
                        "{e}; registering the subscription for {namespace} failed: {r} (an owner of subscription {subscription} can run `az provider register --namespace {namespace}`)"
                    ))
                })?;
                send().await
            }
            r => r,
        }
    }

    /// A request with the kit's retries for `call`, nothing else.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Json>,
        cond: Cond<'_>,
        op: Op,
        call: Call,
    ) -> Result<Answer, ProviderError> {
        matih_provider_kit::retry::retry(&self.retry, &self.recorder, op.service, op.operation, call, || {
            self.attempt(method.clone(), url, body, cond, op)
        })
        .await
    }

    /// Registers `subscription` for `namespace` and waits until it is registered.
    async fn register(&self, subscription: &str, namespace: &str) -> Result<(), ProviderError> {
        let path = format!("/subscriptions/{subscription}/providers/{namespace}");
        let post = Op { service: "Microsoft.Resources", operation: "Providers_Register" };
        let get = Op { service: "Microsoft.Resources", operation: "Providers_Get" };
        let url = self.url(&format!("{path}/register"), PROVIDERS_API, "");
        self.send(reqwest::Method::POST, &url, None, Cond::None, post, Call::Idempotent).await?;
        let url = self.url(&path, PROVIDERS_API, "");
        let what = format!("registration of subscription {subscription} for {namespace}");
        self.poll(&what, "Registering", Duration::from_secs(600), None, &StatusSink::default(), || async {
            let r = self.send(reqwest::Method::GET, &url, None, Cond::None, get, Call::Read).await?;
            let state = r.body["registrationState"].as_str().unwrap_or_default();
            let status = if state.eq_ignore_ascii_case("Registered") { SUCCEEDED } else { "InProgress" };
            Ok((status.to_string(), None, retry_after(&r.headers)))
        })
        .await
    }

    /// GET one resource; `None` if it is not there.
    pub async fn get(&self, id: &str, api: &str, op: Op) -> Result<Option<Json>, ProviderError> {
        let url = self.url(id, api, "");
        matih_provider_kit::not_found_none(
            self.request(reqwest::Method::GET, &url, None, Cond::None, op, Call::Read).await,
        )
        .map(|a| a.map(|a| a.body))
    }

    /// Every item of a collection, following `nextLink`. A missing parent lists nothing.
    pub async fn list(&self, path: &str, api: &str, query: &str, op: Op) -> Result<Vec<Json>, ProviderError> {
        let mut out = Vec::new();
        let mut url = self.url(path, api, query);
        loop {
            let r = self.request(reqwest::Method::GET, &url, None, Cond::None, op, Call::Read).await;
            let Some(a) = matih_provider_kit::not_found_none(r)? else { return Ok(out) };
            if let Some(items) = a.body.get("value").and_then(Json::as_array) {
                out.extend(items.iter().cloned());
            }
            match a.body.get("nextLink").and_then(Json::as_str).filter(|l| !l.is_empty()) {
                Some(next) => url = next.to_string(),
                None => return Ok(out),
            }
        }
    }

    /// PUT a resource and wait for its operation (`deadline`), reporting its status to `sink`;
    /// returns the resource as ARM then reports it. `call` says whether sending it again is
    /// safe (a PUT of a deterministic name is: it can only make that one resource).
    #[allow(clippy::too_many_arguments)]
    pub async fn put(
        &self,
        id: &str,
        api: &str,
        body: &Json,
        cond: Cond<'_>,
        op: Op,
        get: Op,
        sink: &StatusSink,
        deadline: Duration,
    ) -> Result<Json, ProviderError> {
        let url = self.url(id, api, "");
        let call = if cond == Cond::IfNoneMatch { Call::Create } else { Call::Idempotent };
        let a = self.request(reqwest::Method::PUT, &url, Some(body), cond, op, call).await?;
        self.settle(&a, id, op, sink, deadline).await?;
        self.get(id, api, get).await?.ok_or_else(|| {
            ApiError::new(
                get.service,
                get.operation,
                ErrorKind::NotFound,
                "ResourceNotFound",
                format!("{id} was not there after its {} succeeded", op.operation),
            )
            .into()
        })
    }

    /// DELETE a resource and wait until it is gone; "already gone" is success.
    pub async fn delete(
        &self,
        id: &str,
        api: &str,
        cond: Cond<'_>,
        op: Op,
        sink: &StatusSink,
        deadline: Duration,
    ) -> Result<(), ProviderError> {
        let url = self.url(id, api, "");
        let r = self.request(reqwest::Method::DELETE, &url, None, cond, op, Call::Idempotent).await;
        let Some(a) = matih_provider_kit::not_found_none(r)? else { return Ok(()) };
        self.settle(&a, id, op, sink, deadline).await
    }

    /// POST an action (`listClusterUserCredential`); reads are `Call::Read`.
    pub async fn post(&self, path: &str, api: &str, op: Op, call: Call) -> Result<Json, ProviderError> {
        let url = self.url(path, api, "");
        Ok(self.request(reqwest::Method::POST, &url, Some(&json!({})), Cond::None, op, call).await?.body)
    }

    /// Waits for the operation an answer started, if it started one.
    async fn settle(
        &self,
        a: &Answer,
        id: &str,
        op: Op,
        sink: &StatusSink,
        deadline: Duration,
    ) -> Result<(), ProviderError> {
        let state = a.body.pointer("/properties/provisioningState").and_then(Json::as_str);
        let poll = Op { service: op.service, operation: "OperationStatus" };
        let what = format!("{} of {id}", op.operation);
        // What progress says: the resource's provisioningState as the first answer gave it
        // (`Creating`, `Updating`, `Deleting`) beside the operation's status.
        let label = state.unwrap_or(if op.operation.ends_with("_Delete") { "Deleting" } else { "InProgress" });
        if let Some(url) = a.header("azure-asyncoperation").map(str::to_string) {
            return self
                .poll(&what, label, deadline, retry_after(&a.headers), sink, || async {
                    let r = self.request(reqwest::Method::GET, &url, None, Cond::None, poll, Call::Read).await?;
                    let status = r.body.get("status").and_then(Json::as_str).unwrap_or("InProgress").to_string();
                    let detail = r.body.get("error").map(|e| {
                        let (c, m) = error_of(&json!({ "error": e }));
                        format!("{c}: {m}")
                    });
                    Ok((status, detail, retry_after(&r.headers)))
                })
                .await;
        }
        if a.status == 202
            && let Some(url) = a.header("location").map(str::to_string)
        {
            return self
                .poll(&what, label, deadline, retry_after(&a.headers), sink, || async {
                    let r = self.request(reqwest::Method::GET, &url, None, Cond::None, poll, Call::Read).await?;
                    let status = if r.status == 202 { "InProgress" } else { SUCCEEDED };
                    Ok((status.to_string(), None, retry_after(&r.headers)))
                })
                .await;
        }
        match state {
            // Synchronous, or a resource that reports its own progress.
            None | Some(SUCCEEDED) => Ok(()),
            Some(s) if FAILED.contains(&s) => Err(ProviderError::from(WaitError::Failed {
                what,
                attempts: 1,
                elapsed: Duration::ZERO,
                status: s.to_string(),
            })),
            Some(_) => Ok(()),
        }
    }

    /// Polls `look` (status, failure detail, Retry-After) until Succeeded, a failure, or the
    /// deadline. Waits what ARM asks (`Retry-After`), else doubles from 0.5 s up to 10 s.
    #[allow(clippy::too_many_arguments)]
    async fn poll<F, Fut>(
        &self,
        what: &str,
        label: &str,
        deadline: Duration,
        first: Option<Duration>,
        sink: &StatusSink,
        mut look: F,
    ) -> Result<(), ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(String, Option<String>, Option<Duration>), ProviderError>>,
    {
        let start = Instant::now();
        let mut backoff = Duration::from_millis(500);
        let mut wait = first.unwrap_or(Duration::ZERO);
        let mut attempts = 0;
        loop {
            tokio::time::sleep(wait).await;
            attempts += 1;
            let (status, detail, after) = look().await?;
            if status == SUCCEEDED {
                return Ok(());
            }
            if FAILED.contains(&status.as_str()) {
                let status = match detail {
                    Some(d) => format!("{status}: {d}"),
                    None => status,
                };
                return Err(WaitError::Failed { what: what.into(), attempts, elapsed: start.elapsed(), status }.into());
            }
            let status = format!("provisioningState {label}, operation {status}");
            sink.say(&status);
            wait = after.unwrap_or(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(10));
            if start.elapsed() + wait > deadline {
                return Err(WaitError::Timeout {
                    what: what.into(),
                    attempts,
                    elapsed: start.elapsed(),
                    last_status: status,
                }
                .into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arm_error_body_gives_code_message_target_and_details() {
        let body = json!({"error": {"code": "InvalidDnsServiceIP", "message": "bad ip", "target": "dnsServiceIP",
            "details": [{"code": "Inner", "message": "more"}]}});
        let (c, m) = error_of(&body);
        assert_eq!(c, "InvalidDnsServiceIP");
        assert_eq!(m, "bad ip (target: dnsServiceIP); Inner: more");
        assert_eq!(kind_of(400, &c), ErrorKind::Invalid);
        assert_eq!(kind_of(404, "ResourceGroupNotFound"), ErrorKind::NotFound);
        assert_eq!(kind_of(429, "whatever"), ErrorKind::Throttled);
        assert_eq!(kind_of(409, "AnotherOperationInProgress"), ErrorKind::Throttled);
        assert_eq!(kind_of(409, "RoleAssignmentExists"), ErrorKind::Conflict);
        assert_eq!(kind_of(412, "PreconditionFailed"), ErrorKind::Conflict);
        assert_eq!(kind_of(500, ""), ErrorKind::Unavailable);
    }

    #[test]
    fn the_registration_target_is_the_last_provider_of_the_path() {
        let url = "http://h/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/dnszones/z/providers/Microsoft.Authorization/roleAssignments/g?api-version=1";
        assert_eq!(registration_target(url), Some(("s1".into(), "Microsoft.Authorization".into())));
        assert_eq!(kind_of(409, MISSING_REGISTRATION), ErrorKind::Invalid);
        assert_eq!(kind_of(409, "OperationNotAllowed"), ErrorKind::Invalid);
        assert_eq!(kind_of(400, "InUseSubnetCannotBeDeleted"), ErrorKind::Throttled);
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", reqwest::header::HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
