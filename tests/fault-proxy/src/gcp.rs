//! Google Cloud REST (compute, GKE, Cloud DNS, IAM, as the google-cloud-rust clients send them):
//! names the action of each request as `<METHOD> <kind>`, with the kind names the GCP emulator
//! counts calls under (`POST compute.addresses`, `GET container.clusters`,
//! `POST container.nodePools:setSize`, `POST dns.managedZones:setIamPolicy`,
//! `DELETE iam.serviceAccounts`), and `GET operations` for operation polls (compute's
//! `POST …/wait` is `POST operations`); and writes error answers in Google's shape
//! (`{"error":{"code","message","status"}}`, plus `errors[{message,domain,reason}]` for compute
//! and DNS, which still send it), so the client reads the code Google itself would send.
//!
//! The kind is the API (`compute`, `container`, `dns`, `iam`; told apart by the path prefix:
//! `/compute/v1/`, `/dns/v1/`, and `/v1/` for container, or for IAM when the collection is
//! `serviceAccounts`) and the last collection in the path, scopes (`projects`, `global`,
//! `regions`, `zones`, `locations`) aside; a custom method is `:<verb>` (compute's trailing
//! `/<verb>` segment too). Reads: GET and HEAD, compute's `wait`, and the `get*`, `list*`,
//! `fetch*`, `check*` and `testIamPermissions` custom methods; everything else mutates.
//!
//! What it deliberately does not do: other Google APIs (storage, resource manager, the metadata
//! server, OAuth token requests) come back unclassified (`None`); legacy container paths
//! (`/v1/projects/{p}/zones/{z}/…`) are named like the others but not told from them.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::{Action, Options, Request, Rule};

/// [`Options`] that classify Google Cloud requests and answer Google-shaped errors.
pub fn options(upstream: SocketAddr, rules: Vec<Rule>) -> Options {
    Options { upstream, classify: Arc::new(classify), error_body: Arc::new(error_body), rules }
}

/// Path segments that scope resources rather than name a kind.
const SCOPES: [&str; 5] = ["projects", "global", "regions", "zones", "locations"];

/// The API a path belongs to and the path after its prefix.
fn api(path: &str) -> Option<(&'static str, &str)> {
    if let Some(rest) = path.strip_prefix("/compute/v1/") {
        return Some(("compute", rest));
    }
    if let Some(rest) = path.strip_prefix("/dns/v1/") {
        return Some(("dns", rest));
    }
    let rest = path.strip_prefix("/v1/")?;
    let third = rest.split('/').nth(2).map(|s| s.split(':').next().unwrap_or(s));
    Some((if third == Some("serviceAccounts") { "iam" } else { "container" }, rest))
}

/// The kind a Google Cloud path addresses (`compute.networks`, `container.nodePools:setSize`),
/// or `operations` for an operation; `None` for other APIs.
pub fn kind(path_and_query: &str) -> Option<String> {
    let path = path_and_query.split('?').next().unwrap_or(path_and_query);
    let (api, rest) = api(path)?;
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let [first, _project, rest @ ..] = segs.as_slice() else { return None };
    if *first != "projects" {
        return None;
    }
    let (collection, verb) = if api == "compute" {
        // `global/{collection}/{name}/{verb}`, `regions/{r}/…`, `zones/{z}/…`.
        let tail = match rest {
            ["global", tail @ ..] => tail,
            ["regions" | "zones", _, tail @ ..] => tail,
            _ => return None,
        };
        match tail {
            [c] | [c, _] => (*c, None),
            [c, _, verb] => (*c, Some(*verb)),
            _ => return None,
        }
    } else if let ["managedZones", _, c, ..] = rest {
        // A zone's record sets are `rrsets/{name}/{type}`: two ids.
        (split_verb(c).0, split_verb(rest.last()?).1)
    } else {
        // Collection/id pairs (`locations/{l}` a scope), a custom method as `:verb` at the end.
        let last = split_verb(rest.last()?);
        let mut collections = rest.iter().step_by(2).map(|s| split_verb(s).0).filter(|s| !SCOPES.contains(s));
        (collections.next_back()?, last.1)
    };
    if collection == "operations" {
        return Some("operations".into());
    }
    Some(match verb {
        Some(v) => format!("{api}.{collection}:{v}"),
        None => format!("{api}.{collection}"),
    })
}

/// A Cloud Storage JSON API call (`storage.objects`, `storage.buckets`): uploads under
/// `/upload/storage/v1/`, the rest under `/storage/v1/`.
fn storage(req: &Request<'_>) -> Option<&'static str> {
    let path = req.path_and_query.split('?').next().unwrap_or(req.path_and_query);
    let rest = path.strip_prefix("/upload/storage/v1/b/").or_else(|| path.strip_prefix("/storage/v1/b"))?;
    Some(if rest.contains("/o") { "storage.objects" } else { "storage.buckets" })
}

fn split_verb(seg: &str) -> (&str, Option<&str>) {
    match seg.split_once(':') {
        Some((s, v)) => (s, Some(v)),
        None => (seg, None),
    }
}

/// The action a Google Cloud request performs, `None` if it is none this module knows.
pub fn classify(req: &Request<'_>) -> Option<Action> {
    if let Some(op) = storage(req) {
        return Some(Action { name: format!("{} {op}", req.method), mutating: !matches!(req.method, "GET" | "HEAD") });
    }
    let kind = kind(req.path_and_query)?;
    let verb = kind.split_once(':').map(|(_, v)| v);
    let read_verb = verb.is_some_and(|v| {
        ["get", "list", "fetch", "check"].iter().any(|p| v.starts_with(p)) || v == "testIamPermissions"
    });
    let mutating = match req.method {
        "GET" | "HEAD" => false,
        "POST" if kind == "operations" || read_verb => false,
        _ => true,
    };
    Some(Action { name: format!("{} {kind}", req.method), mutating })
}

/// A Google error answer: `RESOURCE_EXHAUSTED` for 429, `INTERNAL` otherwise, with the legacy
/// `errors[]` for compute and DNS paths.
pub fn error_body(req: &Request<'_>, status: u16) -> (String, Vec<u8>) {
    let (code, message, reason) = if status == 429 {
        ("RESOURCE_EXHAUSTED", "Quota exceeded (injected by the fault proxy)", "rateLimitExceeded")
    } else {
        ("INTERNAL", "Internal error (injected by the fault proxy)", "backendError")
    };
    let legacy = matches!(api(req.path_and_query.split('?').next().unwrap_or_default()), Some(("compute" | "dns", _)));
    let errors = if legacy {
        format!(r#","errors":[{{"message":"{message}","domain":"global","reason":"{reason}"}}]"#)
    } else {
        String::new()
    };
    let body = format!(r#"{{"error":{{"code":{status},"message":"{message}","status":"{code}"{errors}}}}}"#);
    ("application/json; charset=UTF-8".into(), body.into_bytes())
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn action(method: &str, target: &str) -> Option<(String, bool)> {
        let headers = HeaderMap::new();
        let req = Request { method, path_and_query: target, headers: &headers, body: b"" };
        classify(&req).map(|a| (a.name, a.mutating))
    }

    #[test]
    fn paths_name_their_kinds() {
        let cases = [
            ("/compute/v1/projects/p/global/networks?$alt=json", "compute.networks"),
            ("/compute/v1/projects/p/global/networks/n", "compute.networks"),
            ("/compute/v1/projects/p/regions/r/subnetworks/s", "compute.subnetworks"),
            ("/compute/v1/projects/p/regions/r/addresses", "compute.addresses"),
            ("/compute/v1/projects/p/regions/r/addresses/a/setLabels", "compute.addresses:setLabels"),
            ("/compute/v1/projects/p/global/networks/n/addPeering", "compute.networks:addPeering"),
            ("/compute/v1/projects/p/global/operations/op-1", "operations"),
            ("/compute/v1/projects/p/regions/r/operations/op-1/wait", "operations"),
            ("/v1/projects/p/locations/l/clusters", "container.clusters"),
            ("/v1/projects/p/locations/l/clusters/c?projectId=&zone=", "container.clusters"),
            ("/v1/projects/p/locations/l/clusters/c:setResourceLabels", "container.clusters:setResourceLabels"),
            ("/v1/projects/p/locations/l/clusters/c/nodePools/np:setSize", "container.nodePools:setSize"),
            ("/v1/projects/p/locations/l/operations/operation-1", "operations"),
            ("/v1/projects/p/serviceAccounts", "iam.serviceAccounts"),
            (
                "/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com:setIamPolicy",
                "iam.serviceAccounts:setIamPolicy",
            ),
            ("/dns/v1/projects/p/managedZones", "dns.managedZones"),
            ("/dns/v1/projects/p/managedZones/z:getIamPolicy", "dns.managedZones:getIamPolicy"),
            ("/dns/v1/projects/p/managedZones/z/changes", "dns.changes"),
            ("/dns/v1/projects/p/managedZones/z/rrsets/www.example.com./A", "dns.rrsets"),
        ];
        for (path, want) in cases {
            assert_eq!(kind(path).as_deref(), Some(want), "{path}");
        }
        assert_eq!(kind("/storage/v1/b"), None);
        assert_eq!(kind("/computeMetadata/v1/instance/service-accounts/default/token"), None);
    }

    #[test]
    fn reads_and_mutations() {
        let cases = [
            ("POST", "/compute/v1/projects/p/regions/r/addresses", "POST compute.addresses", true),
            ("GET", "/compute/v1/projects/p/regions/r/addresses/a", "GET compute.addresses", false),
            ("DELETE", "/compute/v1/projects/p/global/networks/n", "DELETE compute.networks", true),
            ("PATCH", "/compute/v1/projects/p/regions/r/routers/x", "PATCH compute.routers", true),
            ("GET", "/compute/v1/projects/p/global/operations/o", "GET operations", false),
            ("POST", "/compute/v1/projects/p/global/operations/o/wait", "POST operations", false),
            ("PUT", "/v1/projects/p/locations/l/clusters/c", "PUT container.clusters", true),
            (
                "POST",
                "/v1/projects/p/locations/l/clusters/c/nodePools/np:setSize",
                "POST container.nodePools:setSize",
                true,
            ),
            ("POST", "/dns/v1/projects/p/managedZones/z:getIamPolicy", "POST dns.managedZones:getIamPolicy", false),
            ("POST", "/dns/v1/projects/p/managedZones/z:setIamPolicy", "POST dns.managedZones:setIamPolicy", true),
            ("POST", "/dns/v1/projects/p/managedZones/z/changes", "POST dns.changes", true),
            (
                "POST",
                "/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com:getIamPolicy",
                "POST iam.serviceAccounts:getIamPolicy",
                false,
            ),
            (
                "DELETE",
                "/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com",
                "DELETE iam.serviceAccounts",
                true,
            ),
        ];
        for (method, path, name, mutating) in cases {
            assert_eq!(action(method, path), Some((name.to_string(), mutating)), "{method} {path}");
        }
        assert_eq!(action("GET", "/healthz"), None);
    }

    #[test]
    fn error_bodies_are_google_shaped() {
        let headers = HeaderMap::new();
        let req = |p: &'static str| Request { method: "POST", path_and_query: p, headers: &headers, body: b"" };
        let (ty, body) = error_body(&req("/v1/projects/p/locations/l/clusters"), 500);
        assert_eq!(ty, "application/json; charset=UTF-8");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"error":{"code":500,"message":"Internal error (injected by the fault proxy)","status":"INTERNAL"}}"#
        );
        let (_, body) = error_body(&req("/compute/v1/projects/p/global/networks?$alt=json"), 429);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"error":{"code":429,"message":"Quota exceeded (injected by the fault proxy)","status":"RESOURCE_EXHAUSTED","errors":[{"message":"Quota exceeded (injected by the fault proxy)","domain":"global","reason":"rateLimitExceeded"}]}}"#
        );
        let (_, body) = error_body(&req("/dns/v1/projects/p/managedZones"), 500);
        assert!(String::from_utf8(body).unwrap().contains(r#""reason":"backendError""#));
    }
}
