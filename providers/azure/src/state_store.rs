//! State in an Azure Blob Storage container, over the Blob service REST API (our own thin client,
//! as for ARM): Get Blob (bytes and ETag in one answer), Put Blob as a block blob with
//! `If-None-Match: *` to create and `If-Match: <ETag last read>` to replace, Delete Blob with
//! `If-Match`. A failed condition is 412 `ConditionNotMet`, or 409 `BlobAlreadyExists` for a create
//! that meets a blob.
//!
//! Credentials, first present wins: `AZURE_STORAGE_CONNECTION_STRING` (its `AccountName`,
//! `AccountKey` and `BlobEndpoint`: how Azurite is reached), `AZURE_STORAGE_KEY` (the account's
//! key, as the Azure CLI reads it), else an Entra ID token for `https://storage.azure.com` from the
//! provider's credential chain ([`crate::auth`]; the principal needs *Storage Blob Data
//! Contributor* on the container). A key signs each request (Shared Key); nothing is written to
//! disk.
//!
//! Blob versioning is a management-plane setting; the data plane shows it as an `x-ms-version-id`
//! on every write and read, which is how this client tells whether the previous state is kept by
//! the account or must be copied to `<key>.backup`.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use matih_provider_kit::Secret;
use matih_provider_kit::objects::{HttpObjects, code_of, encode_name, status_of};
use matih_state::{Object, ObjectError, ObjectStore, RemoteLocation, Stored, Version};
use reqwest::header::HeaderMap;
use sha2::Sha256;

use crate::auth::TokenSource;

/// The Blob service version spoken (conditional Put Blob and the error codes used here).
const VERSION: &str = "2021-08-06";
const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

enum Auth {
    SharedKey { account: String, key: Secret },
    Token(Arc<dyn TokenSource>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::SharedKey { account, .. } => write!(f, "SharedKey({account}, <redacted>)"),
            Auth::Token(t) => write!(f, "Token({})", t.describe()),
        }
    }
}

/// One container, through the Blob service.
#[derive(Debug)]
pub struct BlobObjects {
    http: HttpObjects,
    /// The storage account, for messages.
    account: String,
    /// `https://<account>.blob.core.windows.net`, or the connection string's `BlobEndpoint`.
    endpoint: String,
    container: String,
    auth: Auth,
}

/// The `x-ms-error-code` header (HEAD answers have no body), and the XML body's `<Message>`.
fn error_of(status: u16, headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let code = headers.get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = String::from_utf8_lossy(body);
    let message = text
        .split_once("<Message>")
        .and_then(|(_, rest)| rest.split_once("</Message>"))
        .map(|(m, _)| m.lines().next().unwrap_or(m).to_string());
    (code.unwrap_or_else(|| status.to_string()), message.unwrap_or_else(|| text.chars().take(300).collect()))
}

/// Fields of a connection string: `Key=Value;...` (values may contain `=`).
fn connection_field<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    s.split(';')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// A blob name for the URL path, its `/` kept.
fn path(name: &str) -> String {
    encode_name(name, true)
}

fn unusable(what: &str) -> ObjectError {
    ObjectError::Api { message: what.to_string(), source: None }
}

impl BlobObjects {
    /// A client for `location`'s account and container, from the environment's credentials.
    pub fn connect(location: &RemoteLocation) -> Result<BlobObjects, ObjectError> {
        let account = location.account.clone().ok_or_else(|| unusable("an azblob location names a storage account"))?;
        let http = HttpObjects::new("blob", error_of)?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let default_endpoint = format!("https://{account}.blob.core.windows.net");
        let (endpoint, auth) = if let Some(cs) = env("AZURE_STORAGE_CONNECTION_STRING") {
            let name = connection_field(&cs, "AccountName")
                .ok_or_else(|| unusable("AZURE_STORAGE_CONNECTION_STRING has no AccountName"))?;
            if name != account {
                return Err(unusable(&format!(
                    "AZURE_STORAGE_CONNECTION_STRING is for storage account `{name}`, the state is in `{account}`"
                )));
            }
            let key = connection_field(&cs, "AccountKey")
                .ok_or_else(|| unusable("AZURE_STORAGE_CONNECTION_STRING has no AccountKey (SAS is not supported)"))?;
            let endpoint = match connection_field(&cs, "BlobEndpoint") {
                Some(e) => e.trim_end_matches('/').to_string(),
                None => match connection_field(&cs, "EndpointSuffix") {
                    Some(suffix) => format!(
                        "{}://{account}.blob.{suffix}",
                        connection_field(&cs, "DefaultEndpointsProtocol").unwrap_or("https")
                    ),
                    None => default_endpoint,
                },
            };
            (endpoint, Auth::SharedKey { account, key: Secret::new(key) })
        } else if let Some(key) = env("AZURE_STORAGE_KEY") {
            (default_endpoint, Auth::SharedKey { account, key: Secret::new(key) })
        } else {
            let tokens =
                crate::auth::from_env().map_err(|e| unusable(&format!("Azure credentials for Blob Storage: {e}")))?;
            (default_endpoint, Auth::Token(tokens))
        };
        let account = location.account.clone().unwrap_or_default();
        Ok(BlobObjects { http, account, endpoint, container: location.bucket.clone(), auth })
    }

    /// A client signing with `account`'s `key` against `endpoint` (Azurite, or a proxy before it).
    pub fn with_shared_key(endpoint: &str, account: &str, key: &str, container: &str) -> Result<Self, ObjectError> {
        Ok(BlobObjects {
            http: HttpObjects::new("blob", error_of)?,
            account: account.to_string(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            container: container.to_string(),
            auth: Auth::SharedKey { account: account.to_string(), key: Secret::new(key) },
        })
    }

    /// Creates the container (a team's one-time set-up; the tool itself only reads and writes
    /// blobs). One that exists already is fine.
    pub async fn create_container(&self) -> Result<(), ObjectError> {
        let url = format!("{}/{}?restype=container", self.endpoint, self.container);
        match self.http.send("CreateContainer", || self.request(reqwest::Method::PUT, &url, &[], None)).await {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == Some("ContainerAlreadyExists") => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn blob_url(&self, key: &str) -> String {
        format!("{}/{}/{}", self.endpoint, self.container, path(key))
    }

    /// A request with the service version, the date and the credential (signed last).
    async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<bytes::Bytes>,
    ) -> Result<reqwest::RequestBuilder, ObjectError> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let mut all: Vec<(String, String)> = vec![("x-ms-date".into(), date), ("x-ms-version".into(), VERSION.into())];
        all.extend(headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())));
        let length = body.as_ref().map_or(0, |b| b.len());
        let authorization = match &self.auth {
            Auth::SharedKey { account, key } => {
                format!("SharedKey {account}:{}", sign(method.as_str(), url, account, key, &all, length)?)
            }
            Auth::Token(t) => {
                let token =
                    t.token(STORAGE_SCOPE).await.map_err(|e| unusable(&format!("a Blob Storage token: {e}")))?;
                format!("Bearer {}", token.expose())
            }
        };
        let mut rb = self.http.http().request(method, url).header("authorization", authorization);
        for (k, v) in &all {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        Ok(rb)
    }

    async fn put_blob(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Option<(&str, String)>,
    ) -> Result<Stored, ObjectError> {
        let url = self.blob_url(key);
        let body = bytes::Bytes::from(bytes);
        let mut headers =
            vec![("x-ms-blob-type", "BlockBlob".to_string()), ("content-type", "application/json".to_string())];
        headers.extend(condition);
        let reply = match self
            .http
            .send("PutBlob", || self.request(reqwest::Method::PUT, &url, &headers, Some(body.clone())))
            .await
        {
            Ok(r) => r,
            // `If-None-Match: *` on an existing blob.
            Err(e) if status_of(&e) == Some(409) && code_of(&e) == Some("BlobAlreadyExists") => {
                return Err(ObjectError::Conflict);
            }
            Err(e) => return Err(e),
        };
        Ok(Stored { version: etag(&reply.headers, "PutBlob")?, kept: kept(&reply.headers) })
    }
}

/// Whether Blob Storage keeps this version when the blob is replaced: with blob versioning on,
/// every write answers, and every read names, an `x-ms-version-id`.
fn kept(headers: &HeaderMap) -> bool {
    headers.contains_key("x-ms-version-id")
}

fn etag(headers: &HeaderMap, op: &str) -> Result<Version, ObjectError> {
    headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(|e| Version(e.to_string()))
        .ok_or_else(|| unusable(&format!("Blob Storage {op} answered without an ETag")))
}

/// The Shared Key signature of a request: HMAC-SHA256 with the account key over the verb, the
/// standard headers (only Content-Length, Content-Type and the conditions are ever sent), the
/// `x-ms-` headers in order, and `/<account><path>` with the query's parameters.
fn sign(
    method: &str,
    url: &str,
    account: &str,
    key: &Secret,
    headers: &[(String, String)],
    length: usize,
) -> Result<String, ObjectError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| unusable(&format!("the blob URL `{url}`: {e}")))?;
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
    let mut ms: Vec<&(String, String)> = headers.iter().filter(|(k, _)| k.starts_with("x-ms-")).collect();
    ms.sort();
    let mut to_sign = format!(
        "{method}\n\n\n{}\n\n{}\n\n\n{}\n{}\n\n\n",
        if length == 0 { String::new() } else { length.to_string() },
        header("content-type"),
        header("if-match"),
        header("if-none-match"),
    );
    for (k, v) in ms {
        to_sign.push_str(&format!("{k}:{v}\n"));
    }
    to_sign.push_str(&format!("/{account}{}", parsed.path()));
    let mut query: Vec<(String, String)> =
        parsed.query_pairs().map(|(k, v)| (k.to_lowercase(), v.into_owned())).collect();
    query.sort();
    for (k, v) in query {
        to_sign.push_str(&format!("\n{k}:{v}"));
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(key.expose())
        .map_err(|_| unusable("the storage account key is not base64"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| unusable("the storage account key is empty"))?;
    mac.update(to_sign.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl ObjectStore for BlobObjects {
    fn url(&self, key: &str) -> String {
        format!("azblob://{}/{}/{key}", self.account, self.container)
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        let url = self.blob_url(key);
        let reply = match self.http.send("GetBlob", || self.request(reqwest::Method::GET, &url, &[], None)).await {
            Ok(r) => r,
            Err(e) if code_of(&e) == Some("BlobNotFound") => return Ok(None),
            Err(e) => return Err(e),
        };
        let version = etag(&reply.headers, "GetBlob")?;
        Ok(Some(Object { bytes: reply.body.to_vec(), version, kept: kept(&reply.headers) }))
    }

    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError> {
        self.put_blob(key, bytes, Some(("if-none-match", "*".to_string()))).await
    }

    async fn replace(&self, key: &str, bytes: Vec<u8>, expected: &Version) -> Result<Stored, ObjectError> {
        self.put_blob(key, bytes, Some(("if-match", expected.0.clone()))).await
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, ObjectError> {
        self.put_blob(key, bytes, None).await
    }

    async fn delete(&self, key: &str, expected: &Version) -> Result<(), ObjectError> {
        let url = self.blob_url(key);
        let headers = [("if-match", expected.0.clone())];
        match self.http.send("DeleteBlob", || self.request(reqwest::Method::DELETE, &url, &headers, None)).await {
            Ok(_) => Ok(()),
            // Already gone: the condition cannot hold.
            Err(e) if code_of(&e) == Some("BlobNotFound") => Err(ObjectError::Conflict),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_are_read_by_field() {
        let cs = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;";
        assert_eq!(connection_field(cs, "accountname"), Some("devstoreaccount1"));
        assert_eq!(connection_field(cs, "AccountKey"), Some("a2V5=="));
        assert_eq!(connection_field(cs, "BlobEndpoint"), Some("http://127.0.0.1:10000/devstoreaccount1"));
        assert_eq!(connection_field(cs, "SharedAccessSignature"), None);
    }

    #[test]
    fn blob_names_keep_their_slashes() {
        assert_eq!(path("matih/prod aks.json"), "matih/prod%20aks.json");
    }
}
