//! SDK errors as typed provider errors: the kind of failure (decided by the HTTP status, the
//! service's error code and how the request failed on the wire, never by message text), the
//! status, the code, the message and the request id.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;
use matih_plans::{ApiError, ErrorKind, ProviderError};

/// Error codes of the AWS services used here, by the kind of failure they stand for.
fn kind_of_code(code: &str) -> Option<ErrorKind> {
    Some(match code {
        // Throttling, as the SDK's own retry classifier lists it.
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "BandwidthLimitExceeded"
        | "RequestThrottled"
        | "SlowDown"
        | "PriorRequestNotComplete"
        | "EC2ThrottledException" => ErrorKind::Throttled,
        // Server-side failures with a code.
        "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceFailure"
        | "ServerException"
        | "Unavailable"
        | "RequestTimeout"
        | "RequestTimeoutException" => ErrorKind::Unavailable,
        "NoSuchEntity"
        | "ResourceNotFoundException"
        | "NoSuchHostedZone"
        | "NoSuchChange"
        | "NatGatewayNotFound"
        | "NotFoundException" => ErrorKind::NotFound,
        "EntityAlreadyExists"
        | "ResourceInUseException"
        | "HostedZoneAlreadyExists"
        | "RouteAlreadyExists"
        | "Resource.AlreadyAssociated"
        | "DependencyViolation"
        | "ConflictingDomainExists"
        | "IdempotentParameterMismatch"
        | "ResourceLimitExceeded"
        | "DeleteConflict"
        | "HostedZoneNotEmpty"
        | "ConcurrentModification"
        | "InvalidChangeBatch" => ErrorKind::Conflict,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthFailure"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "UnrecognizedClientException" => ErrorKind::Denied,
        c if c.ends_with(".NotFound") => ErrorKind::NotFound,
        c if c.ends_with(".Duplicate") || c.ends_with(".Conflict") || c.ends_with("AlreadyExists") => {
            ErrorKind::Conflict
        }
        c if c.starts_with("Invalid") || c.starts_with("Malformed") || c.starts_with("Missing") => ErrorKind::Invalid,
        "ValidationError"
        | "ValidationException"
        | "InvalidInput"
        | "InvalidParameterException"
        | "InvalidRequestException"
        | "LimitExceeded"
        | "LimitExceededException"
        | "UnsupportedAvailabilityZoneException"
        | "ClientException" => ErrorKind::Invalid,
        _ => return None,
    })
}

/// `service`/`operation` name the call; the rest comes from the SDK's error.
pub fn api<E>(service: &str, operation: &str, e: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let request_id = e.request_id().map(str::to_string);
    let (kind, status, code, message) = match &e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or_default().to_string();
            let kind = kind_of_code(&code).unwrap_or_else(|| match ErrorKind::from_status(status) {
                // A 2xx whose body would not parse: the service acted, the answer is lost.
                ErrorKind::Other if status < 300 => ErrorKind::NoResponse,
                k => k,
            });
            let message = se.err().message().map(str::to_string).unwrap_or_else(|| se.err().to_string());
            (kind, Some(status), code, message)
        }
        // Headers came, the body did not: the service processed the request.
        SdkError::ResponseError(re) => {
            let status = re.raw().status().as_u16();
            let kind = if status >= 500 { ErrorKind::Unavailable } else { ErrorKind::NoResponse };
            (kind, Some(status), String::new(), "the answer could not be read".to_string())
        }
        SdkError::DispatchFailure(df) => {
            let connect = df
                .as_connector_error()
                .and_then(|ce| StdError::source(ce))
                .and_then(matih_provider_kit::in_chain::<hyper_util::client::legacy::Error>)
                .is_some_and(|h| h.is_connect());
            // Only a failed connect proves the request never left; anything else (reset, EOF,
            // read timeout, a signing failure the SDK reports the same way) may have been sent.
            let (kind, what) = if connect {
                (ErrorKind::Unreachable, "the service could not be reached")
            } else {
                (ErrorKind::NoResponse, "no answer came back")
            };
            (kind, None, String::new(), what.to_string())
        }
        SdkError::TimeoutError(_) => (ErrorKind::NoResponse, None, String::new(), "timed out".to_string()),
        SdkError::ConstructionFailure(_) => {
            (ErrorKind::Invalid, None, String::new(), "the request could not be built".to_string())
        }
        _ => (ErrorKind::Other, None, String::new(), e.to_string()),
    };
    let retry_after = match &e {
        SdkError::ServiceError(se) => retry_after(se.raw()),
        _ => None,
    };
    ApiError::new(service, operation, kind, &code, message)
        .status_opt(status)
        .request_id(request_id)
        .retry_after(retry_after)
        .source(e)
        .into()
}

/// `Retry-After` (seconds) or AWS's `x-amz-retry-after` (milliseconds).
fn retry_after(r: &HttpResponse) -> Option<std::time::Duration> {
    let h = r.headers();
    if let Some(ms) = h.get("x-amz-retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(std::time::Duration::from_millis(ms));
    }
    h.get("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(std::time::Duration::from_secs)
}

/// A response that lacks a field the API promises.
pub fn missing(service: &str, operation: &str, what: &str) -> ProviderError {
    ProviderError::other(format!("{service} {operation}: the response has no {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        for (code, kind) in [
            ("InvalidVpcID.NotFound", ErrorKind::NotFound),
            ("NoSuchEntity", ErrorKind::NotFound),
            ("InvalidGroup.Duplicate", ErrorKind::Conflict),
            ("InvalidPermission.Duplicate", ErrorKind::Conflict),
            ("EntityAlreadyExists", ErrorKind::Conflict),
            ("ResourceInUseException", ErrorKind::Conflict),
            ("RouteAlreadyExists", ErrorKind::Conflict),
            ("InvalidSubnet.Conflict", ErrorKind::Conflict),
            ("RequestLimitExceeded", ErrorKind::Throttled),
            ("Throttling", ErrorKind::Throttled),
            ("PriorRequestNotComplete", ErrorKind::Throttled),
            ("InternalError", ErrorKind::Unavailable),
            ("ServiceFailure", ErrorKind::Unavailable),
            ("UnauthorizedOperation", ErrorKind::Denied),
            ("InvalidParameterValue", ErrorKind::Invalid),
            ("MalformedPolicyDocument", ErrorKind::Invalid),
        ] {
            assert_eq!(kind_of_code(code), Some(kind), "{code}");
        }
        assert_eq!(kind_of_code("SomethingNew"), None, "unknown codes fall back to the HTTP status");
    }
}
