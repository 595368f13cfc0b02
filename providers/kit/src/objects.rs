//! The HTTP half every REST object-store client for state shares (Cloud Storage, Azure Blob):
//! one request at a time with the kit's retries, transport failures and answers sorted into
//! [`ErrorKind`]s, and the conversion to the state crate's [`ObjectError`] — a failed
//! precondition is [`ObjectError::Conflict`], anything else keeps the service's status, code,
//! message and request id.
//!
//! Every call is retried as [`Call::Idempotent`]: reads are, and a conditional write repeated after
//! a lost answer fails its own condition, which [`RemoteStore`](matih_state::RemoteStore) resolves
//! by reading the object back. The caller signs each attempt afresh (`build` runs per attempt), so
//! signatures with a date stay valid across back-off.
//!
//! Not here: any service's URLs, headers or error bodies (each client passes its own).

use std::time::Duration;

use bytes::Bytes;
use matih_plans::{ApiError, ErrorKind, ProviderError};
use matih_state::ObjectError;
use reqwest::header::HeaderMap;

use crate::Recorder;
use crate::retry::{Call, RetryPolicy, retry};

/// An answer with a 2xx or 3xx status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What a service's error answer says: its code (`conditionNotMet`, `BlobNotFound`) and message.
pub type ErrorOf = fn(status: u16, headers: &HeaderMap, body: &[u8]) -> (String, String);

/// A reqwest client with the kit's retry policy, for one object service.
#[derive(Debug, Clone)]
pub struct HttpObjects {
    http: reqwest::Client,
    retry: RetryPolicy,
    recorder: Recorder,
    service: &'static str,
    error_of: ErrorOf,
}

impl HttpObjects {
    /// A client for `service` (`storage`, `blob`), reading error answers with `error_of`.
    pub fn new(service: &'static str, error_of: ErrorOf) -> Result<Self, ObjectError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ObjectError::Api {
                message: format!("an HTTP client for {service}: {e}"),
                source: Some(Box::new(e)),
            })?;
        // A state write is small; give up within a minute rather than the provider's two.
        let retry = RetryPolicy { deadline: Duration::from_secs(60), max_attempts: 5, ..RetryPolicy::default() };
        Ok(HttpObjects { http, retry, recorder: Recorder::default(), service, error_of })
    }

    /// The client, to build requests with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends the request `build` makes (once per attempt) until it succeeds, fails in a way that
    /// may not be repeated, or the retry budget is spent.
    pub async fn send<F, Fut>(&self, operation: &'static str, build: F) -> Result<Reply, ObjectError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<reqwest::RequestBuilder, ObjectError>>,
    {
        let service = self.service;
        let r = retry(&self.retry, &self.recorder, service, operation, Call::Idempotent, || async {
            let rb = build().await.map_err(|e| ProviderError::other(e.to_string()))?;
            self.attempt(operation, rb).await
        })
        .await;
        r.map_err(|e| to_object_error(service, operation, e))
    }

    async fn attempt(&self, operation: &str, rb: reqwest::RequestBuilder) -> Result<Reply, ProviderError> {
        self.recorder.call(self.service, operation);
        let resp = rb.send().await.map_err(|e| {
            // A refused connection never reached the service; anything later may have.
            let kind = if e.is_connect() { ErrorKind::Unreachable } else { ErrorKind::NoResponse };
            ProviderError::from(
                ApiError::new(self.service, operation, kind, "", format!("request failed: {e}")).source(e),
            )
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| {
            ProviderError::from(
                ApiError::new(
                    self.service,
                    operation,
                    ErrorKind::NoResponse,
                    "",
                    format!("the answer was cut off: {e}"),
                )
                .status(status),
            )
        })?;
        if status < 400 {
            return Ok(Reply { status, headers, body });
        }
        let (code, message) = (self.error_of)(status, &headers, &body);
        let request_id = ["x-ms-request-id", "x-guploader-uploadid", "x-request-id"]
            .iter()
            .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(str::to_string));
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs);
        let kind = if status == 412 { ErrorKind::Conflict } else { ErrorKind::from_status(status) };
        Err(ApiError::new(self.service, operation, kind, &code, message)
            .status(status)
            .request_id(request_id)
            .retry_after(retry_after)
            .into())
    }
}

/// A failed call as the state crate sees it: a failed precondition (412) is a conflict.
fn to_object_error(service: &str, operation: &str, e: ProviderError) -> ObjectError {
    if e.api().and_then(|a| a.status) == Some(412) {
        return ObjectError::Conflict;
    }
    ObjectError::Api { message: format!("{service} {operation}: {e}"), source: Some(Box::new(e)) }
}

/// Percent-encodes an object name for a URL path: everything but unreserved characters, and `/`
/// too unless `keep_slash` (Cloud Storage names are one path segment; blob names are paths).
pub fn encode_name(name: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The status of a failed call, when an answer came back.
pub fn status_of(e: &ObjectError) -> Option<u16> {
    match e {
        ObjectError::Api { source: Some(s), .. } => {
            s.downcast_ref::<ProviderError>().and_then(|p| p.api()).and_then(|a| a.status)
        }
        _ => None,
    }
}

/// The service's error code of a failed call (`BlobAlreadyExists`), when it gave one.
pub fn code_of(e: &ObjectError) -> Option<&str> {
    match e {
        ObjectError::Api { source: Some(s), .. } => {
            s.downcast_ref::<ProviderError>().and_then(|p| p.api()).map(|a| a.code.as_str())
        }
        _ => None,
    }
}
