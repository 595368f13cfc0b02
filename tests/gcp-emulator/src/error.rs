//! Google API errors: an HTTP status and the body every Google REST API answers with,
//! `{"error":{"code","message","status","errors"?}}`, plus the constructors used more than once.
//!
//! `status` is the canonical code name (`NOT_FOUND`, ...), which is all the Rust clients read to
//! pick their `Code`. The legacy `errors[{message,domain,reason}]` array is sent by the APIs that
//! still send it (compute and Cloud DNS) and left out for container and IAM. No `details` array:
//! no emulated failure carries typed details.

use serde_json::{Value, json};

use crate::route::Api;

/// A failed request, as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{http} {status}: {message}")]
pub(crate) struct ApiError {
    pub http: u16,
    /// The canonical code name: `NOT_FOUND`, `INVALID_ARGUMENT`, ...
    pub status: String,
    pub message: String,
    /// The legacy reason (`notFound`, `alreadyExists`, ...) and its domain, sent as `errors[]`.
    pub reason: Option<(String, String)>,
}

/// The canonical code an HTTP status stands for in the legacy (compute, Cloud DNS) APIs.
pub(crate) fn canonical(http: u16) -> &'static str {
    match http {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// The legacy reason a canonical code is sent with, when the caller names none.
pub(crate) fn reason_for(status: &str) -> &'static str {
    match status {
        "NOT_FOUND" => "notFound",
        "ALREADY_EXISTS" => "alreadyExists",
        "ABORTED" => "aborted",
        "FAILED_PRECONDITION" => "conditionNotMet",
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" => "invalid",
        "PERMISSION_DENIED" => "forbidden",
        "UNAUTHENTICATED" => "required",
        "RESOURCE_EXHAUSTED" => "rateLimitExceeded",
        "UNIMPLEMENTED" => "notImplemented",
        "UNAVAILABLE" | "DEADLINE_EXCEEDED" => "backendError",
        _ => "internalError",
    }
}

/// The numeric value of a canonical code (google.rpc.Code), for container operation errors.
pub(crate) fn code_number(status: &str) -> i32 {
    match status {
        "OK" => 0,
        "CANCELLED" => 1,
        "INVALID_ARGUMENT" => 3,
        "DEADLINE_EXCEEDED" => 4,
        "NOT_FOUND" => 5,
        "ALREADY_EXISTS" => 6,
        "PERMISSION_DENIED" => 7,
        "RESOURCE_EXHAUSTED" | "QUOTA_EXCEEDED" => 8,
        "FAILED_PRECONDITION" => 9,
        "ABORTED" => 10,
        "OUT_OF_RANGE" => 11,
        "UNIMPLEMENTED" => 12,
        "INTERNAL" => 13,
        "UNAVAILABLE" => 14,
        "DATA_LOSS" => 15,
        "UNAUTHENTICATED" => 16,
        _ => 2,
    }
}

/// The HTTP status a compute operation error code is reported with (`httpErrorStatusCode`).
pub(crate) fn http_for_code(code: &str) -> u16 {
    match code {
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "QUOTA_EXCEEDED" | "PERMISSION_DENIED" => 403,
        "RESOURCE_EXHAUSTED" => 429,
        "UNAUTHENTICATED" => 401,
        "INTERNAL" | "UNKNOWN" => 500,
        "UNAVAILABLE" | "ZONE_RESOURCE_POOL_EXHAUSTED" => 503,
        "UNIMPLEMENTED" => 501,
        "DEADLINE_EXCEEDED" => 504,
        _ => 400,
    }
}

/// The reason phrase compute puts in `httpErrorMessage`.
pub(crate) fn http_phrase(http: u16) -> &'static str {
    match http {
        400 => "BAD REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT FOUND",
        409 => "CONFLICT",
        412 => "PRECONDITION FAILED",
        429 => "TOO MANY REQUESTS",
        501 => "NOT IMPLEMENTED",
        503 => "SERVICE UNAVAILABLE",
        504 => "GATEWAY TIMEOUT",
        _ => "INTERNAL SERVER ERROR",
    }
}

impl ApiError {
    /// An error of the legacy APIs (compute, Cloud DNS): the status from the HTTP code, and
    /// `errors[]` with this reason.
    pub(crate) fn legacy(http: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            http,
            status: canonical(http).to_string(),
            message: message.into(),
            reason: Some((reason.to_string(), "global".to_string())),
        }
    }

    /// An error of the newer APIs (container, IAM): a canonical status and no `errors[]`.
    pub(crate) fn rpc(http: u16, status: &str, message: impl Into<String>) -> Self {
        ApiError { http, status: status.to_string(), message: message.into(), reason: None }
    }

    /// An error shaped as `api` shapes them: with `errors[]` (reason derived from `status`) for
    /// the legacy APIs, without for the others.
    pub(crate) fn for_api(api: Option<Api>, http: u16, status: &str, message: impl Into<String>) -> Self {
        let mut e = Self::rpc(http, status, message);
        if api.is_some_and(Api::legacy) {
            e.reason = Some((reason_for(status).to_string(), "global".to_string()));
        }
        e
    }

    pub(crate) fn with_domain(mut self, domain: &str) -> Self {
        if let Some((_, d)) = &mut self.reason {
            *d = domain.to_string();
        }
        self
    }

    pub(crate) fn body(&self) -> Value {
        let mut e = json!({"code": self.http, "message": self.message, "status": self.status});
        if let Some((reason, domain)) = &self.reason {
            e["errors"] = json!([{"message": self.message, "domain": domain, "reason": reason}]);
        }
        json!({ "error": e })
    }

    // ---- compute and Cloud DNS -------------------------------------------------------------

    /// 400 `invalid`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::legacy(400, "invalid", message)
    }

    /// 400 `required`: a required field is missing.
    pub(crate) fn required(field: &str) -> Self {
        Self::legacy(400, "required", format!("Required field '{field}' not specified"))
    }

    /// 400 `invalid` for a bad field value, worded as compute words it.
    pub(crate) fn bad_field(field: &str, value: &str, why: &str) -> Self {
        Self::invalid(format!("Invalid value for field '{field}': '{value}'. {why}"))
    }

    /// 404 `notFound` for a compute resource.
    pub(crate) fn compute_not_found(key: &str) -> Self {
        Self::legacy(404, "notFound", format!("The resource '{key}' was not found"))
    }

    /// 409 `alreadyExists` for a compute resource.
    pub(crate) fn compute_exists(key: &str) -> Self {
        Self::legacy(409, "alreadyExists", format!("The resource '{key}' already exists"))
    }

    /// 400 `resourceNotReady`: an operation on it (or its creation) is still running.
    pub(crate) fn not_ready(key: &str) -> Self {
        Self::legacy(400, "resourceNotReady", format!("The resource '{key}' is not ready"))
    }

    /// 400 `resourceInUseByAnotherResource`.
    pub(crate) fn in_use(what: &str, key: &str, user: &str) -> Self {
        Self::legacy(
            400,
            "resourceInUseByAnotherResource",
            format!("The {what} resource '{key}' is already being used by '{user}'"),
        )
    }

    /// 412 `conditionNotMet`.
    pub(crate) fn condition_not_met(message: impl Into<String>) -> Self {
        Self::legacy(412, "conditionNotMet", message)
    }

    // ---- container and IAM -----------------------------------------------------------------

    /// 400 `INVALID_ARGUMENT`.
    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::rpc(400, "INVALID_ARGUMENT", message)
    }

    /// 400 `FAILED_PRECONDITION` (GKE answers 400, not 412).
    pub(crate) fn failed_precondition(message: impl Into<String>) -> Self {
        Self::rpc(400, "FAILED_PRECONDITION", message)
    }

    /// 404 `NOT_FOUND` worded as GKE words it.
    pub(crate) fn gke_not_found(key: &str) -> Self {
        Self::rpc(404, "NOT_FOUND", format!("Not found: {key}."))
    }

    /// 409 `ABORTED`: an IAM policy changed since the etag the caller read.
    pub(crate) fn stale_policy() -> Self {
        Self::rpc(
            409,
            "ABORTED",
            "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_errors_carry_errors_and_a_status() {
        let b = ApiError::compute_not_found("projects/p/global/networks/n").body();
        assert_eq!(b["error"]["code"], 404);
        assert_eq!(b["error"]["status"], "NOT_FOUND");
        assert_eq!(b["error"]["errors"][0]["reason"], "notFound");
        assert_eq!(b["error"]["errors"][0]["domain"], "global");
        let b = ApiError::gke_not_found("projects/p/locations/l/clusters/c").body();
        assert!(b["error"].get("errors").is_none());
        assert_eq!(b["error"]["status"], "NOT_FOUND");
        let b = ApiError::for_api(Some(Api::Dns), 503, "UNAVAILABLE", "down").body();
        assert_eq!(b["error"]["errors"][0]["reason"], "backendError");
        assert!(ApiError::for_api(Some(Api::Iam), 503, "UNAVAILABLE", "down").reason.is_none());
    }
}
