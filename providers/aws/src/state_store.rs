//! State in an S3 bucket: the kit-independent [`ObjectStore`] calls over the AWS SDK's S3 client,
//! every write conditional on the object's ETag (`If-None-Match: *` to create, `If-Match` to
//! replace or delete), as S3 has supported since 2024. Whether the bucket keeps replaced versions
//! is read off each object's version id (so no `s3:GetBucketVersioning` is needed).
//!
//! Unlike the provider's clients, this client keeps the SDK's standard retries (3 attempts with
//! backoff, for throttling, 5xx and lost connections): a state write is one object, and a retried
//! conditional write that meets its own first attempt fails its condition, which the
//! [`RemoteStore`](matih_state::RemoteStore) above resolves by comparing bytes. Credentials come
//! from the SDK's default chain; `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) points it at an
//! emulator such as moto, addressed by path when the endpoint is an IP address.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use matih_state::{Object, ObjectError, ObjectStore, RemoteLocation, Stored, Version};

/// One bucket, through the S3 API.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Objects {
    /// A client for `bucket` in `region` (`None`: the configuration chain's region).
    pub async fn connect(bucket: &str, region: Option<&str>) -> Result<S3Objects, ObjectError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .read_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_string()));
        }
        let conf = loader.load().await;
        if conf.region().is_none() {
            return Err(ObjectError::Api {
                message: format!(
                    "no AWS region for the state bucket `{bucket}`: set `state.region` in the platform spec, or AWS_REGION"
                ),
                source: None,
            });
        }
        Ok(S3Objects { client: aws_sdk_s3::Client::new(&conf), bucket: bucket.to_string() })
    }

    /// The store for `location`, with `fallback_region` when the location names none.
    pub async fn for_location(location: &RemoteLocation, fallback_region: Option<&str>) -> Result<Self, ObjectError> {
        Self::connect(&location.bucket, location.region.as_deref().or(fallback_region)).await
    }
}

/// The ETag S3 answered with; a write that answers without one is a broken emulator or proxy.
fn version(etag: Option<String>, op: &str) -> Result<Version, ObjectError> {
    etag.map(Version)
        .ok_or_else(|| ObjectError::Api { message: format!("S3 {op} answered without an ETag"), source: None })
}

/// Whether S3 keeps this version when the object is replaced: in a versioned bucket every
/// object version has an id (`null` for one written while versioning was off or suspended).
fn kept(version_id: Option<&str>) -> bool {
    version_id.is_some_and(|v| v != "null")
}

fn stored(out: aws_sdk_s3::operation::put_object::PutObjectOutput, op: &str) -> Result<Stored, ObjectError> {
    let kept = kept(out.version_id());
    Ok(Stored { version: version(out.e_tag, op)?, kept })
}

/// S3's answer to a failed call: a failed condition (412 `PreconditionFailed`, or 409
/// `ConditionalRequestConflict` when another conditional write to the key was in flight) is a
/// [`ObjectError::Conflict`]; anything else keeps S3's code, message and request id.
fn s3_error<E>(op: &str, e: SdkError<E, aws_smithy_runtime_api::http::Response>) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    if matches!(status, Some(412) | Some(409)) {
        return ObjectError::Conflict;
    }
    let message = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            let rid = s.raw().headers().get("x-amz-request-id").unwrap_or("-");
            format!(
                "S3 {op}: {} ({}){}, request id {rid}",
                err.message().unwrap_or("no message"),
                err.code().unwrap_or("no code"),
                status.map(|s| format!(", HTTP {s}")).unwrap_or_default()
            )
        }
        other => format!("S3 {op}: {}", aws_smithy_types::error::display::DisplayErrorContext(other)),
    };
    ObjectError::Api { message, source: Some(Box::new(e)) }
}

/// The condition of a PutObject.
enum Condition<'a> {
    None,
    /// `If-None-Match: *`.
    Absent,
    /// `If-Match: <etag>`.
    At(&'a Version),
}

impl S3Objects {
    async fn put_object(&self, key: &str, bytes: Vec<u8>, condition: Condition<'_>) -> Result<Stored, ObjectError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes));
        req = match condition {
            Condition::None => req,
            Condition::Absent => req.if_none_match("*"),
            Condition::At(v) => req.if_match(&v.0),
        };
        let out = req.send().await.map_err(|e| s3_error("PutObject", e))?;
        stored(out, "PutObject")
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(o) => o,
            Err(SdkError::ServiceError(s)) if s.err().is_no_such_key() => return Ok(None),
            Err(e) => return Err(s3_error("GetObject", e)),
        };
        let v = version(out.e_tag().map(str::to_string), "GetObject")?;
        let kept = kept(out.version_id());
        let bytes = out.body.collect().await.map_err(|e| ObjectError::Api {
            message: format!("S3 GetObject: reading the body of `{key}`: {e}"),
            source: Some(Box::new(e)),
        })?;
        Ok(Some(Object { bytes: bytes.to_vec(), version: v, kept }))
    }

    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError> {
        self.put_object(key, bytes, Condition::Absent).await
    }

    async fn replace(&self, key: &str, bytes: Vec<u8>, expected: &Version) -> Result<Stored, ObjectError> {
        self.put_object(key, bytes, Condition::At(expected)).await
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError> {
        self.put_object(key, bytes, Condition::None).await
    }

    async fn delete(&self, key: &str, expected: &Version) -> Result<(), ObjectError> {
        match self.client.delete_object().bucket(&self.bucket).key(key).if_match(&expected.0).send().await {
            Ok(_) => Ok(()),
            // Already gone: the condition cannot hold.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Err(ObjectError::Conflict),
            Err(e) => Err(s3_error("DeleteObject", e)),
        }
    }
}
