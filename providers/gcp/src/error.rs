//! Google API errors as the engine's typed provider errors: the service and operation, the
//! google.rpc status (`NOT_FOUND`, `ALREADY_EXISTS`, …) or, where compute and Cloud DNS give one,
//! the legacy reason (`alreadyExists`, `resourceInUseByAnotherResource`, `rateLimitExceeded`) as
//! the code, the message, the HTTP status, and `Retry-After` when the service sent one.
//!
//! The kind decides retries and reconciliation, from codes only (never from text): a 429, a
//! `RESOURCE_EXHAUSTED` or a 403 `rateLimitExceeded` is a throttle; a resource still in use by
//! what is going away, and a cluster busy with another operation (container's
//! `FAILED_PRECONDITION`), are waited out like throttles.

use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::{Code, StatusDetails};
use matih_plans::{ApiError, ErrorKind, ProviderError};

/// Legacy reasons that mean "not now": retried like throttles.
const BUSY_REASONS: [&str; 3] = ["resourceInUseByAnotherResource", "resourceNotReady", "operationInProgress"];
const THROTTLE_REASONS: [&str; 2] = ["rateLimitExceeded", "userRateLimitExceeded"];

/// The error of one call of `operation` on `service` (`compute`, `container`, `dns`, `iam`).
pub fn api(service: &str, operation: &str, e: GaxError) -> ProviderError {
    let http = e.http_status_code();
    let retry_after = e
        .http_headers()
        .and_then(|h| h.get("retry-after"))
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    if let Some(status) = e.status() {
        let reason = status
            .details
            .iter()
            .find_map(|d| match d {
                StatusDetails::ErrorInfo(i) if !i.reason.is_empty() => Some(i.reason.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let kind = kind_of(service, status.code, &reason, http);
        let mut message = status.message.clone();
        // A project that has never used the API: say how to turn it on.
        if matches!(reason.as_str(), "SERVICE_DISABLED" | "accessNotConfigured") {
            message.push_str(&format!(
                " — enable it: `gcloud services enable {service}.googleapis.com --project <project>`"
            ));
        }
        let code = if reason.is_empty() { status.code.name().to_string() } else { reason };
        return ApiError::new(service, operation, kind, &code, message)
            .status_opt(http)
            .retry_after(retry_after)
            .source(e)
            .into();
    }
    let (kind, what) = if e.is_timeout() || e.is_io() {
        (ErrorKind::NoResponse, "no answer came back")
    } else if e.is_connect() {
        (ErrorKind::Unreachable, "the service could not be reached")
    } else if e.is_authentication() {
        (
            ErrorKind::Denied,
            "no credentials: run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS",
        )
    } else if let Some(s) = http {
        (ErrorKind::from_status(s), "the service answered without a Google error body")
    } else {
        (ErrorKind::Other, "the call failed")
    };
    ApiError::new(service, operation, kind, "", what).status_opt(http).retry_after(retry_after).source(e).into()
}

/// The kind of a google.rpc code without a reason or HTTP status (an operation's error).
pub fn kind_of_code(service: &str, code: Code) -> ErrorKind {
    kind_of(service, code, "", None)
}

fn kind_of(service: &str, code: Code, reason: &str, http: Option<u16>) -> ErrorKind {
    if THROTTLE_REASONS.contains(&reason) {
        return ErrorKind::Throttled;
    }
    if BUSY_REASONS.contains(&reason) {
        return ErrorKind::Throttled;
    }
    match code {
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists | Code::Aborted => ErrorKind::Conflict,
        Code::ResourceExhausted => ErrorKind::Throttled,
        Code::PermissionDenied | Code::Unauthenticated => ErrorKind::Denied,
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::Invalid,
        // GKE runs one operation per cluster at a time and says so with FAILED_PRECONDITION: the
        // request conflicts with the cluster's state until that operation is done (the container
        // kinds wait for it, which may take far longer than a throttle).
        Code::FailedPrecondition if service == "container" => ErrorKind::Conflict,
        Code::FailedPrecondition => {
            if http == Some(412) {
                ErrorKind::Conflict
            } else {
                ErrorKind::Invalid
            }
        }
        Code::Unavailable | Code::Internal | Code::Unknown if http.is_none_or(|s| s >= 500) => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::NoResponse,
        _ => http.map_or(ErrorKind::Other, ErrorKind::from_status),
    }
}

/// An answer that lacked what the call promises (a create without an operation name).
pub fn missing(service: &str, operation: &str, what: &str) -> ProviderError {
    ApiError::new(service, operation, ErrorKind::Other, "", format!("the answer has no {what}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_reasons_decide_the_kind() {
        assert_eq!(kind_of("compute", Code::NotFound, "notFound", Some(404)), ErrorKind::NotFound);
        assert_eq!(kind_of("compute", Code::AlreadyExists, "alreadyExists", Some(409)), ErrorKind::Conflict);
        assert_eq!(kind_of("compute", Code::PermissionDenied, "rateLimitExceeded", Some(403)), ErrorKind::Throttled);
        assert_eq!(kind_of("compute", Code::PermissionDenied, "forbidden", Some(403)), ErrorKind::Denied);
        assert_eq!(
            kind_of("compute", Code::InvalidArgument, "resourceInUseByAnotherResource", Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(kind_of("container", Code::FailedPrecondition, "", Some(400)), ErrorKind::Conflict);
        assert_eq!(kind_of("compute", Code::FailedPrecondition, "conditionNotMet", Some(412)), ErrorKind::Conflict);
        assert_eq!(kind_of("dns", Code::ResourceExhausted, "", Some(429)), ErrorKind::Throttled);
        assert_eq!(kind_of("iam", Code::Unavailable, "", Some(503)), ErrorKind::Unavailable);
        assert_eq!(kind_of("iam", Code::InvalidArgument, "", Some(400)), ErrorKind::Invalid);
    }
}
