//! Where a remote state is: a service, a bucket (or an Azure storage account and container) and
//! an object key, written as a URL — `s3://bucket/key`, `gs://bucket/key`,
//! `azblob://account/container/key` — on the command line (`--state`, `state migrate --to`) and
//! in messages.
//!
//! Not here: talking to any service (each cloud's crate does), or the platform spec's `state:`
//! section (the CLI turns it into a location).

use std::fmt;

/// An object storage service that can keep state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Amazon S3.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    AzBlob,
}

impl Service {
    /// The name the platform spec's `state.backend` takes.
    pub fn name(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::Gcs => "gcs",
            Service::AzBlob => "azblob",
        }
    }

    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::Gcs => "gs",
            Service::AzBlob => "azblob",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A state object in an object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLocation {
    pub service: Service,
    /// The storage account (Azure Blob only).
    pub account: Option<String>,
    /// The bucket (the container, on Azure Blob).
    pub bucket: String,
    /// The object's key (blob name).
    pub key: String,
    /// The bucket's region (S3 only; `None`: the AWS configuration's).
    pub region: Option<String>,
}

impl RemoteLocation {
    /// Reads `s3://bucket/key`, `gs://bucket/key` or `azblob://account/container/key`; `Ok(None)`
    /// for anything without a `scheme://` (a path), an error saying what is wrong otherwise.
    pub fn parse(s: &str) -> Result<Option<RemoteLocation>, String> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(None);
        };
        let service = [Service::S3, Service::Gcs, Service::AzBlob]
            .into_iter()
            .find(|svc| svc.scheme() == scheme)
            .ok_or_else(|| format!("`{scheme}://` is not a state store; use s3://, gs:// or azblob://"))?;
        let mut parts = rest.splitn(if service == Service::AzBlob { 3 } else { 2 }, '/');
        let mut next = |what: &str| match parts.next() {
            Some(p) if !p.is_empty() => Ok(p.to_string()),
            _ => Err(format!("`{s}` has no {what}: write {}", RemoteLocation::shape(service))),
        };
        let account = if service == Service::AzBlob { Some(next("storage account")?) } else { None };
        let bucket = next(if service == Service::AzBlob { "container" } else { "bucket" })?;
        let key = next("object key")?;
        if key.ends_with('/') || key.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            return Err(format!("`{s}`: the object key `{key}` has an empty, `.` or `..` segment"));
        }
        Ok(Some(RemoteLocation { service, account, bucket, key, region: None }))
    }

    fn shape(service: Service) -> &'static str {
        match service {
            Service::S3 => "s3://<bucket>/<key>",
            Service::Gcs => "gs://<bucket>/<key>",
            Service::AzBlob => "azblob://<account>/<container>/<key>",
        }
    }

    /// The same location with another key.
    pub fn with_key(&self, key: impl Into<String>) -> RemoteLocation {
        RemoteLocation { key: key.into(), ..self.clone() }
    }
}

impl fmt::Display for RemoteLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.service.scheme())?;
        if let Some(a) = &self.account {
            write!(f, "{a}/")?;
        }
        write!(f, "{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip_and_paths_are_not_urls() {
        for url in ["s3://b-1/matih/prod-eks.json", "gs://b_2/k", "azblob://acct/cont/a/b.json"] {
            let loc = RemoteLocation::parse(url).unwrap().unwrap();
            assert_eq!(loc.to_string(), url);
        }
        let az = RemoteLocation::parse("azblob://acct/cont/a/b.json").unwrap().unwrap();
        assert_eq!((az.account.as_deref(), az.bucket.as_str(), az.key.as_str()), (Some("acct"), "cont", "a/b.json"));
        assert_eq!(RemoteLocation::parse("state/prod.json").unwrap(), None);
        assert!(RemoteLocation::parse("ftp://x/y").unwrap_err().contains("s3://, gs:// or azblob://"));
        assert!(RemoteLocation::parse("s3://bucket").unwrap_err().contains("s3://<bucket>/<key>"));
        assert!(RemoteLocation::parse("azblob://acct/cont").unwrap_err().contains("no object key"));
        assert!(RemoteLocation::parse("s3://b/a//c").unwrap_err().contains("empty"));
    }
}
