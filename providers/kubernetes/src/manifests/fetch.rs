//! One HTTP GET of a manifest: hyper's pooled client over plain TCP or rustls, redirects
//! followed, a connect timeout, a deadline for the whole download and a size cap.
//!
//! Deliberately not done: proxies (`HTTPS_PROXY` is not read; air-gapped sites use a mirror or a
//! local directory instead), retries (the caller reports the failure; a re-run resumes from the
//! cache), compression, and redirects from https:// down to plain http://.

use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{LOCATION, USER_AGENT};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{FetchOptions, ManifestError};

const AGENT: &str = concat!("matih-infra/", env!("CARGO_PKG_VERSION"));

/// The two clients, built when first needed: the TLS one loads the system's root certificates,
/// which a plain-http mirror should not require.
struct Clients<'a> {
    opts: &'a FetchOptions,
    plain: Option<Client<HttpConnector, Empty<Bytes>>>,
    tls: Option<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>>,
}

impl Clients<'_> {
    fn connector(&self) -> HttpConnector {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(self.opts.connect_timeout));
        http.enforce_http(false);
        http
    }

    async fn get(&mut self, uri: &Uri, url: &str) -> Result<Response<hyper::body::Incoming>, ManifestError> {
        let request = Request::get(uri.clone())
            .header(USER_AGENT, AGENT)
            .body(Empty::<Bytes>::new())
            .map_err(|e| ManifestError::BadUrl { url: url.to_string(), reason: e.to_string() })?;
        let sent = if uri.scheme_str() == Some("https") {
            if self.tls.is_none() {
                // rustls' ring provider by name: with several providers compiled in (the AWS SDK
                // brings aws-lc-rs) there is no process default to fall back on.
                let tls = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                    .map_err(|source| ManifestError::TlsRoots { url: url.to_string(), source })?
                    .https_only()
                    .enable_http1()
                    .wrap_connector(self.connector());
                self.tls = Some(Client::builder(TokioExecutor::new()).build(tls));
            }
            self.tls.as_ref().map(|c| c.request(request))
        } else {
            if self.plain.is_none() {
                self.plain = Some(Client::builder(TokioExecutor::new()).build(self.connector()));
            }
            self.plain.as_ref().map(|c| c.request(request))
        };
        let Some(sent) = sent else { unreachable!("the client was built above") };
        sent.await.map_err(|source| ManifestError::Request { url: url.to_string(), source: Box::new(source) })
    }
}

/// Downloads `url`, following up to `opts.max_redirects` redirects, within `opts.timeout`.
pub(super) async fn download(url: &str, opts: &FetchOptions) -> Result<Vec<u8>, ManifestError> {
    match tokio::time::timeout(opts.timeout, follow(url, opts)).await {
        Ok(result) => result,
        Err(_) => Err(ManifestError::Timeout { url: url.to_string(), after: opts.timeout }),
    }
}

async fn follow(url: &str, opts: &FetchOptions) -> Result<Vec<u8>, ManifestError> {
    let mut clients = Clients { opts, plain: None, tls: None };
    let mut current = url.to_string();
    let mut redirects = 0;
    loop {
        let uri = http_uri(&current)?;
        let response = clients.get(&uri, &current).await?;
        let status = response.status();
        if is_redirect(status) {
            let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
            let bad = |reason: &str| ManifestError::BadRedirect {
                url: current.clone(),
                status: status.as_u16(),
                location: location.clone().unwrap_or_default(),
                reason: reason.to_string(),
            };
            let Some(loc) = location.as_deref() else { return Err(bad("the response has no Location header")) };
            let next = resolve(&uri, loc).ok_or_else(|| bad("the location is not an http(s) URL"))?;
            if uri.scheme_str() == Some("https") && next.starts_with("http://") {
                return Err(bad("it would leave https for plain http"));
            }
            redirects += 1;
            if redirects > opts.max_redirects {
                return Err(ManifestError::TooManyRedirects {
                    url: url.to_string(),
                    last: next,
                    limit: opts.max_redirects,
                });
            }
            current = next;
            continue;
        }
        if !status.is_success() {
            return Err(ManifestError::Status {
                url: current.clone(),
                requested: (current != url).then(|| url.to_string()),
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("").to_string(),
            });
        }
        let body = Limited::new(response.into_body(), opts.max_bytes);
        return match body.collect().await {
            Ok(collected) => Ok(collected.to_bytes().to_vec()),
            Err(e) if e.is::<LengthLimitError>() => {
                Err(ManifestError::TooLarge { url: current.clone(), limit: opts.max_bytes })
            }
            Err(source) => Err(ManifestError::Request { url: current.clone(), source }),
        };
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// An absolute http:// or https:// URL with a host.
pub(super) fn http_uri(url: &str) -> Result<Uri, ManifestError> {
    let bad = |reason: &str| ManifestError::BadUrl { url: url.to_string(), reason: reason.to_string() };
    let uri: Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(bad(&format!("the scheme is `{other}`; only http and https are supported"))),
        None => return Err(bad("it has no scheme; start it with https:// or http://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    Ok(uri)
}

/// Resolves a `Location` header against the URL that sent it (RFC 3986 for the forms servers
/// use: absolute, scheme-relative, absolute-path and path-relative). `None` for other schemes.
fn resolve(base: &Uri, location: &str) -> Option<String> {
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    if let Some((head, _)) = location.split_once(':')
        && !head.is_empty()
        && !head.contains('/')
        && head.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        // It has a scheme of its own.
        return (head.eq_ignore_ascii_case("http") || head.eq_ignore_ascii_case("https")).then(|| location.to_string());
    }
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    Some(format!("{scheme}://{authority}{dir}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_redirecting_url() {
        let base: Uri = "https://github.com/cert-manager/releases/download/v1/cert-manager.yaml".parse().unwrap();
        let cases = [
            ("https://objects.example.com/x?sig=1", Some("https://objects.example.com/x?sig=1")),
            ("//cdn.example.com/y", Some("https://cdn.example.com/y")),
            ("/other/path", Some("https://github.com/other/path")),
            ("next.yaml", Some("https://github.com/cert-manager/releases/download/v1/next.yaml")),
            ("ftp://example.com/x", None),
            ("file:/etc/passwd", None),
        ];
        for (loc, want) in cases {
            assert_eq!(resolve(&base, loc).as_deref(), want, "{loc}");
        }
    }

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        assert!(http_uri("http://127.0.0.1:8080/a").is_ok());
        for bad in ["ftp://x/y", "example.com/a", "/just/a/path", "https:///nohost"] {
            assert!(matches!(http_uri(bad), Err(ManifestError::BadUrl { .. })), "{bad}");
        }
    }
}
