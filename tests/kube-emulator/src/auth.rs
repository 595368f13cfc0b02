//! Request authentication: a static bearer token, or EKS `k8s-aws-v1.` tokens checked the way
//! aws-iam-authenticator checks them, minus the call to STS.
//!
//! An EKS token is `k8s-aws-v1.` + base64url (no padding) of a presigned STS `GetCallerIdentity`
//! URL whose signature covers the headers `host` and `x-k8s-aws-id` (the cluster name). The
//! emulator checks the URL's shape, the access key, the time window, and (given the secret key)
//! recomputes the SigV4 query-string signature with `x-k8s-aws-id` = the configured cluster. A
//! signature made for another cluster and one made with another secret look the same from here:
//! both are reported as a signature mismatch naming the expected cluster.
//!
//! Presigned URLs hash the payload differently depending on who signs them: botocore (`aws eks
//! get-token`) and aws-sdk-go v1 (aws-iam-authenticator) use the SHA-256 of the empty body, the
//! `aws-sigv4` crate with `SignableBody::UnsignedPayload` uses `UNSIGNED-PAYLOAD`. Both are
//! accepted. Expiry follows STS: 15 minutes after `X-Amz-Date`, whatever `X-Amz-Expires` says
//! (which must still be 1..=900); a date more than 5 minutes in the future is rejected too.
//! Temporary credentials (`X-Amz-Security-Token`) are accepted, the token itself is not checked.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::Auth;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const TOKEN_LIFETIME_SECS: i64 = 15 * 60;
const CLOCK_SKEW_SECS: i64 = 5 * 60;

/// Checks the `Authorization` header against `auth`; the error says why it is refused.
pub(crate) fn check(auth: &Auth, header: Option<&str>, now: jiff::Timestamp) -> Result<(), String> {
    let bearer = || {
        header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| "no bearer token in the Authorization header".to_string())
    };
    match auth {
        Auth::None => Ok(()),
        Auth::Bearer(want) => {
            if bearer()? == want.as_str() {
                Ok(())
            } else {
                Err("invalid bearer token".into())
            }
        }
        Auth::EksToken { cluster, access_key_id, secret_access_key } => {
            check_eks_token(bearer()?, cluster, access_key_id, secret_access_key, now)
        }
    }
}

/// AWS's URI encoding: everything but `A-Za-z0-9-_.~` as `%XX`.
fn aws_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn parse_amz_date(s: &str) -> Option<jiff::Timestamp> {
    let dt = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", s).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// The SigV4 query-string signature of `GET <path>?<params>` with headers `host` and
/// `x-k8s-aws-id`.
pub(crate) fn presigned_signature(
    secret: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
    signed_headers: &str,
    cluster: &str,
    payload_hash: &str,
) -> Option<String> {
    let get = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str());
    let amz_date = get("X-Amz-Date")?;
    let credential = get("X-Amz-Credential")?;
    let scope = credential.split_once('/')?.1;
    let mut parts = scope.split('/');
    let (date, region, service) = (parts.next()?, parts.next()?, parts.next()?);
    let mut query: Vec<(String, String)> =
        params.iter().filter(|(k, _)| k != "X-Amz-Signature").map(|(k, v)| (aws_encode(k), aws_encode(v))).collect();
    query.sort();
    let canonical_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for h in signed_headers.split(';') {
        let value = match h {
            "host" => host,
            "x-k8s-aws-id" => cluster,
            _ => return None,
        };
        headers.push_str(&format!("{h}:{value}\n"));
    }
    let canonical_request =
        format!("GET\n{path}\n{}\n{headers}\n{signed_headers}\n{payload_hash}", canonical_query.join("&"));
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())));
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    let k_signing = hmac(&k_service, "aws4_request");
    Some(hex::encode(hmac(&k_signing, &string_to_sign)))
}

fn check_eks_token(
    token: &str,
    cluster: &str,
    access_key: &str,
    secret: &str,
    now: jiff::Timestamp,
) -> Result<(), String> {
    let encoded = token.strip_prefix("k8s-aws-v1.").ok_or("not an EKS token (no k8s-aws-v1. prefix)")?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|e| format!("EKS token is not base64url without padding: {e}"))?;
    let text = String::from_utf8(raw).map_err(|_| "EKS token does not decode to text")?;
    let url = url::Url::parse(&text).map_err(|e| format!("EKS token does not hold a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!("EKS token URL is not https: {}", url.scheme()));
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let sts_host = host == "sts.amazonaws.com"
        || (host.starts_with("sts.") && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")));
    if !sts_host {
        return Err(format!("EKS token URL host is not an STS endpoint: {host}"));
    }
    let path = if url.path().is_empty() { "/" } else { url.path() };
    if path != "/" {
        return Err(format!("EKS token URL path must be /, not {path}"));
    }
    let params: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let get = |k: &str| -> Result<&str, String> {
        let mut found = params.iter().filter(|(pk, _)| pk == k);
        match (found.next(), found.next()) {
            (Some((_, v)), None) => Ok(v.as_str()),
            (Some(_), Some(_)) => Err(format!("EKS token URL repeats {k}")),
            _ => Err(format!("EKS token URL has no {k}")),
        }
    };
    if get("Action")? != "GetCallerIdentity" {
        return Err(format!("EKS token URL action is {}, not GetCallerIdentity", get("Action")?));
    }
    if get("Version")? != "2011-06-15" {
        return Err(format!("EKS token URL has STS version {}, not 2011-06-15", get("Version")?));
    }
    if get("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err("EKS token is not signed with AWS4-HMAC-SHA256".into());
    }
    let credential = get("X-Amz-Credential")?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [key_id, date, _region, "sts", "aws4_request"] = parts.as_slice() else {
        return Err(format!("EKS token credential scope is malformed: {credential}"));
    };
    if *key_id != access_key {
        return Err(format!("EKS token is signed by access key {key_id}, not {access_key}"));
    }
    let amz_date = get("X-Amz-Date")?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| format!("EKS token X-Amz-Date is malformed: {amz_date}"))?;
    if !amz_date.starts_with(date) {
        return Err(format!("EKS token credential date {date} does not match X-Amz-Date {amz_date}"));
    }
    let expires: i64 = get("X-Amz-Expires")?.parse().map_err(|_| "EKS token X-Amz-Expires is not a number")?;
    if !(1..=900).contains(&expires) {
        return Err(format!("EKS token X-Amz-Expires is {expires}, must be 1..=900 seconds"));
    }
    let age = now.as_second() - signed_at.as_second();
    if age > TOKEN_LIFETIME_SECS {
        return Err(format!("EKS token expired: signed at {signed_at}, {age}s ago (lifetime {TOKEN_LIFETIME_SECS}s)"));
    }
    if age < -CLOCK_SKEW_SECS {
        return Err(format!("EKS token is dated in the future: {signed_at}"));
    }
    let signed_headers = get("X-Amz-SignedHeaders")?;
    let headers: Vec<&str> = signed_headers.split(';').collect();
    if !headers.contains(&"host") || !headers.contains(&"x-k8s-aws-id") {
        return Err(format!("EKS token must sign the host and x-k8s-aws-id headers, signs {signed_headers}"));
    }
    if headers.iter().any(|h| !matches!(*h, "host" | "x-k8s-aws-id")) {
        return Err(format!("EKS token signs headers the server cannot know: {signed_headers}"));
    }
    let signature = get("X-Amz-Signature")?;
    if secret.is_empty() {
        return Ok(());
    }
    let matches = ["UNSIGNED-PAYLOAD", EMPTY_SHA256].iter().any(|payload| {
        presigned_signature(secret, &host, path, &params, signed_headers, cluster, payload).as_deref()
            == Some(signature)
    });
    if matches {
        Ok(())
    } else {
        Err(format!(
            "EKS token signature does not match for cluster {cluster:?}: it was signed for another cluster \
             (x-k8s-aws-id) or with another secret key"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(cluster: &str, secret: &str, date: &str, payload: &str) -> String {
        let host = "sts.us-east-1.amazonaws.com";
        let mut params: Vec<(String, String)> = [
            ("Action", "GetCallerIdentity"),
            ("Version", "2011-06-15"),
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", &format!("AKID/{}/us-east-1/sts/aws4_request", &date[..8])),
            ("X-Amz-Date", date),
            ("X-Amz-Expires", "60"),
            ("X-Amz-SignedHeaders", "host;x-k8s-aws-id"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = presigned_signature(secret, host, "/", &params, "host;x-k8s-aws-id", cluster, payload).unwrap();
        params.push(("X-Amz-Signature".into(), sig));
        let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", aws_encode(v))).collect();
        let url = format!("https://{host}/?{}", q.join("&"));
        format!("k8s-aws-v1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
    }

    #[test]
    fn eks_tokens_are_checked_for_cluster_secret_and_age() {
        let now: jiff::Timestamp = "2025-03-01T12:05:00Z".parse().unwrap();
        let good = token("prod", "s3cret", "20250301T120000Z", EMPTY_SHA256);
        assert_eq!(check_eks_token(&good, "prod", "AKID", "s3cret", now), Ok(()));
        let unsigned = token("prod", "s3cret", "20250301T120000Z", "UNSIGNED-PAYLOAD");
        assert_eq!(check_eks_token(&unsigned, "prod", "AKID", "s3cret", now), Ok(()));
        let err = check_eks_token(&good, "staging", "AKID", "s3cret", now).unwrap_err();
        assert!(err.contains("signature does not match for cluster \"staging\""), "{err}");
        assert!(check_eks_token(&good, "prod", "AKID", "other", now).unwrap_err().contains("signature"));
        assert!(check_eks_token(&good, "prod", "OTHER", "s3cret", now).unwrap_err().contains("access key AKID"));
        let late: jiff::Timestamp = "2025-03-01T12:20:01Z".parse().unwrap();
        assert!(check_eks_token(&good, "prod", "AKID", "s3cret", late).unwrap_err().contains("expired"));
        assert!(check_eks_token("k8s-aws-v1.!!!", "prod", "AKID", "s3cret", now).is_err());
        assert!(check_eks_token("abc", "prod", "AKID", "s3cret", now).unwrap_err().contains("prefix"));
    }
}
