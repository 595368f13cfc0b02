//! State in a Cloud Storage bucket, over the JSON API: objects read with `alt=media` (bytes and
//! the `x-goog-generation` header in one answer), written by media upload with
//! `ifGenerationMatch=0` to create and `ifGenerationMatch=<generation last read>` to replace, and
//! deleted with `ifGenerationMatch`; a failed precondition is 412 `conditionNotMet`. Whether the
//! bucket versions objects is its `versioning.enabled`.
//!
//! Credentials: Application Default Credentials with the `devstorage.read_write` scope, as the GKE
//! provider's. `STORAGE_EMULATOR_HOST` (the convention of Google's client libraries) points it at
//! an emulator, which gets no token unless `MATIH_GCP_TOKEN` names one. Retries are the kit's
//! (see [`matih_provider_kit::objects`]).

use async_trait::async_trait;
use matih_provider_kit::objects::{HttpObjects, encode_name, status_of};
use matih_state::{Object, ObjectError, ObjectStore, RemoteLocation, Stored, Version};
use reqwest::header::HeaderMap;

use crate::clients::TOKEN_ENV;

/// Points the store at a Cloud Storage emulator (`http://127.0.0.1:PORT`).
pub const EMULATOR_ENV: &str = "STORAGE_EMULATOR_HOST";
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

enum Auth {
    Anonymous,
    Static(String),
    Adc(google_cloud_auth::credentials::AccessTokenCredentials),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Anonymous => "Anonymous",
            Auth::Static(_) => "Static(<redacted>)",
            Auth::Adc(_) => "ApplicationDefaultCredentials",
        })
    }
}

/// One bucket, through the Cloud Storage JSON API.
#[derive(Debug)]
pub struct GcsObjects {
    http: HttpObjects,
    base: String,
    bucket: String,
    auth: Auth,
    /// The bucket's `versioning.enabled`, once read.
    versioning: std::sync::Mutex<Option<bool>>,
}

/// `conditionNotMet`, `notFound`: the reason of Google's error answer, else its status.
fn error_of(status: u16, _headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let e = &v["error"];
    let code = e["errors"][0]["reason"].as_str().or(e["status"].as_str()).map(str::to_string);
    let message = e["message"].as_str().map(str::to_string);
    (
        code.unwrap_or_else(|| status.to_string()),
        message.unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect()),
    )
}

/// An object or bucket name as one path segment.
fn segment(name: &str) -> String {
    encode_name(name, false)
}

impl GcsObjects {
    /// A client for `location`'s bucket, from the environment's credentials.
    pub async fn connect(location: &RemoteLocation) -> Result<GcsObjects, ObjectError> {
        let http = HttpObjects::new("storage", error_of)?;
        let emulator = std::env::var(EMULATOR_ENV).ok().filter(|s| !s.is_empty());
        let (base, auth) = match emulator {
            Some(host) => {
                let base = if host.contains("://") { host } else { format!("http://{host}") };
                let auth = match std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()) {
                    Some(t) => Auth::Static(t),
                    None => Auth::Anonymous,
                };
                (base.trim_end_matches('/').to_string(), auth)
            }
            None => {
                let creds = google_cloud_auth::credentials::Builder::default()
                    .with_scopes([SCOPE])
                    .build_access_token_credentials()
                    .map_err(|e| ObjectError::Api {
                        message: format!(
                            "Application Default Credentials for Cloud Storage: {e} (`gcloud auth application-default login`)"
                        ),
                        source: None,
                    })?;
                ("https://storage.googleapis.com".to_string(), Auth::Adc(creds))
            }
        };
        Ok(GcsObjects { http, base, bucket: location.bucket.clone(), auth, versioning: Default::default() })
    }

    async fn authorize(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, ObjectError> {
        Ok(match &self.auth {
            Auth::Anonymous => rb,
            Auth::Static(t) => rb.bearer_auth(t),
            Auth::Adc(c) => {
                let t = c.access_token().await.map_err(|e| ObjectError::Api {
                    message: format!("an access token from Application Default Credentials: {e}"),
                    source: None,
                })?;
                rb.bearer_auth(t.token)
            }
        })
    }

    /// Whether the bucket keeps replaced generations (read once).
    async fn versioned(&self) -> Result<bool, ObjectError> {
        if let Some(v) = *self.versioning.lock().unwrap() {
            return Ok(v);
        }
        let url = format!("{}/storage/v1/b/{}?fields=versioning", self.base, segment(&self.bucket));
        let reply =
            self.http.send("buckets.get", || async { self.authorize(self.http.http().get(&url)).await }).await?;
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        let on = v["versioning"]["enabled"].as_bool().unwrap_or(false);
        *self.versioning.lock().unwrap() = Some(on);
        Ok(on)
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/storage/v1/b/{}/o/{}", self.base, segment(&self.bucket), segment(key))
    }

    /// Uploads `bytes` as `key`, on the generation precondition `if_generation` if any.
    async fn upload(&self, key: &str, bytes: Vec<u8>, if_generation: Option<&str>) -> Result<Stored, ObjectError> {
        let mut url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.base,
            segment(&self.bucket),
            segment(key)
        );
        if let Some(g) = if_generation {
            url.push_str(&format!("&ifGenerationMatch={g}"));
        }
        let body = bytes::Bytes::from(bytes);
        let reply = self
            .http
            .send("objects.insert", || async {
                let rb = self.http.http().post(&url).header("content-type", "application/json").body(body.clone());
                self.authorize(rb).await
            })
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        let version = v["generation"].as_str().map(|g| Version(g.to_string())).ok_or_else(|| ObjectError::Api {
            message: "Cloud Storage objects.insert answered without a generation".into(),
            source: None,
        })?;
        Ok(Stored { version, kept: self.versioned().await? })
    }
}

#[async_trait]
impl ObjectStore for GcsObjects {
    fn url(&self, key: &str) -> String {
        format!("gs://{}/{key}", self.bucket)
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        let url = format!("{}?alt=media", self.object_url(key));
        let reply =
            match self.http.send("objects.get", || async { self.authorize(self.http.http().get(&url)).await }).await {
                Ok(r) => r,
                // No such object (a missing bucket shows at the first write, which names it).
                Err(e) if status_of(&e) == Some(404) => return Ok(None),
                Err(e) => return Err(e),
            };
        let generation =
            reply.headers.get("x-goog-generation").and_then(|v| v.to_str().ok()).ok_or_else(|| ObjectError::Api {
                message: "Cloud Storage answered an object without x-goog-generation".into(),
                source: None,
            })?;
        let version = Version(generation.to_string());
        Ok(Some(Object { bytes: reply.body.to_vec(), version, kept: self.versioned().await? }))
    }

    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError> {
        self.upload(key, bytes, Some("0")).await
    }

    async fn replace(&self, key: &str, bytes: Vec<u8>, expected: &Version) -> Result<Stored, ObjectError> {
        self.upload(key, bytes, Some(&expected.0)).await
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError> {
        self.upload(key, bytes, None).await
    }

    async fn delete(&self, key: &str, expected: &Version) -> Result<(), ObjectError> {
        let url = format!("{}?ifGenerationMatch={}", self.object_url(key), expected.0);
        match self.http.send("objects.delete", || async { self.authorize(self.http.http().delete(&url)).await }).await {
            Ok(_) => Ok(()),
            // Already gone: the condition cannot hold.
            Err(e) if status_of(&e) == Some(404) => Err(ObjectError::Conflict),
            Err(e) => Err(e),
        }
    }
}
