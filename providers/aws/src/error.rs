//! Turning SDK errors into provider errors that name the AWS error code and message.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use matih_plans::ProviderError;

/// `service`/`operation` name the call; the error's code and message come from AWS.
pub fn api<E, R>(service: &str, operation: &str, e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            ProviderError::Api {
                service: service.into(),
                operation: operation.into(),
                code: err.code().unwrap_or("Unknown").to_string(),
                message: err.message().unwrap_or("(no message)").to_string(),
            }
        }
        _ => ProviderError::Other {
            message: format!("{service} {operation}: {}", describe(&e)),
            source: Some(Box::new(e)),
        },
    }
}

/// The error code of a service error, if it is one.
pub fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

fn describe<E: std::error::Error + 'static, R: std::fmt::Debug>(e: &SdkError<E, R>) -> String {
    // Dispatch/timeout errors carry the useful part in their source chain.
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// A response that lacks a field the API promises.
pub fn missing(service: &str, operation: &str, what: &str) -> ProviderError {
    ProviderError::Other { message: format!("{service} {operation}: the response has no {what}"), source: None }
}

/// A delete's result: done, or already gone (any of `gone` codes), or the error.
pub fn deleted<T, E, R>(
    r: Result<T, SdkError<E, R>>,
    gone: &[&str],
    service: &str,
    operation: &str,
) -> Result<(), ProviderError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match r {
        Ok(_) => Ok(()),
        Err(e) if code(&e).is_some_and(|c| gone.contains(&c)) => Ok(()),
        Err(e) => Err(api(service, operation, e)),
    }
}
