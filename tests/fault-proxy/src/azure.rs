//! Azure Resource Manager: names the action of each ARM request as `<METHOD> <resource type>`,
//! the type in lower case as ARM compares it (`PUT microsoft.network/virtualnetworks/subnets`,
//! `POST microsoft.containerservice/managedclusters/listclusterusercredential`), and writes error answers in ARM's shape
//! (`{"error":{"code","message"}}`), so the client reads the code ARM itself would send.
//!
//! The resource type is the path's provider namespace and its type segments (every other segment
//! after `providers/<namespace>` is a type); resource groups are `Microsoft.Resources/
//! resourceGroups`. Polls of long-running operations (`…/operations/…`, `…/operationresults/…`)
//! are `GET operations`. GETs and `list*` POST actions are reads; PUT, PATCH, DELETE and other
//! POSTs mutate.
//!
//! Blob Storage data-plane calls (signed with `x-ms-version`, no `api-version` query) are named by
//! their REST operation (`PutBlob`, `GetBlob`, `DeleteBlob`) and answered with Blob Storage's XML
//! errors. What it deliberately does not do: other data-plane calls (queues, key vault) and Entra
//! ID token requests come back unclassified (`None`).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::{Action, Options, Request, Rule};

/// [`Options`] that classify ARM requests and answer ARM-shaped errors.
pub fn options(upstream: SocketAddr, rules: Vec<Rule>) -> Options {
    Options { upstream, classify: Arc::new(classify), error_body: Arc::new(error_body), rules }
}

/// The resource type an ARM path addresses, or `operations` for an operation poll.
pub fn resource_type(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segs.iter().any(|s| s.eq_ignore_ascii_case("operations") || s.eq_ignore_ascii_case("operationresults")) {
        return Some("operations".into());
    }
    if !segs.first()?.eq_ignore_ascii_case("subscriptions") {
        return None;
    }
    // The last `providers/<namespace>` decides (a role assignment's scope is another resource).
    match segs.iter().rposition(|s| s.eq_ignore_ascii_case("providers")) {
        Some(i) => {
            let ns = segs.get(i + 1)?;
            let types: Vec<&str> = segs[i + 2..].iter().step_by(2).copied().collect();
            Some(format!("{ns}/{}", types.join("/")))
        }
        None if segs.len() >= 3 && segs[2].eq_ignore_ascii_case("resourcegroups") => {
            Some("Microsoft.Resources/resourceGroups".into())
        }
        None => None,
    }
}

/// The action an ARM request performs, `None` if it is none this module knows.
pub fn classify(req: &Request<'_>) -> Option<Action> {
    if let Some(op) = blob_operation(req) {
        return Some(Action { name: op.into(), mutating: !op.starts_with("Get") });
    }
    // ARM names are case-insensitive (DNS answers `dnszones` for `dnsZones`): one action per type.
    let rtype = resource_type(req.path_and_query)?.to_ascii_lowercase();
    let name = format!("{} {rtype}", req.method);
    let last = rtype.rsplit('/').next().unwrap_or_default();
    // `listClusterUserCredential` and the like read.
    let mutating = match req.method {
        "GET" | "HEAD" => false,
        "POST" => !last.starts_with("list"),
        _ => true,
    };
    Some(Action { name, mutating })
}

/// A Blob Storage call: it carries `x-ms-version` and, unlike ARM, no `api-version`.
fn blob_operation(req: &Request<'_>) -> Option<&'static str> {
    if !req.headers.contains_key("x-ms-version") || req.path_and_query.contains("api-version=") {
        return None;
    }
    let container = req.path_and_query.contains("restype=container");
    Some(match (req.method, container) {
        ("PUT", true) => "CreateContainer",
        ("GET" | "HEAD", true) => "GetContainerProperties",
        ("PUT", false) => "PutBlob",
        ("GET", false) => "GetBlob",
        ("HEAD", false) => "GetBlobProperties",
        ("DELETE", false) => "DeleteBlob",
        _ => return None,
    })
}

/// An ARM error answer: `TooManyRequests` for 429, `InternalServerError` otherwise (Blob Storage:
/// `ServerBusy` and `InternalError` in its XML shape).
pub fn error_body(req: &Request<'_>, status: u16) -> (String, Vec<u8>) {
    if blob_operation(req).is_some() {
        let code = if status == 429 { "ServerBusy" } else { "InternalError" };
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error>"#
        );
        return ("application/xml".into(), body.into_bytes());
    }
    let (code, message) = if status == 429 {
        ("TooManyRequests", "Too many requests (injected by the fault proxy)")
    } else {
        ("InternalServerError", "An internal error occurred (injected by the fault proxy)")
    };
    let body = format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#);
    ("application/json; charset=utf-8".into(), body.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_paths_name_their_resource_types() {
        let t = |p: &str| resource_type(p).unwrap();
        assert_eq!(
            t("/subscriptions/s/resourcegroups/rg?api-version=2024-03-01"),
            "Microsoft.Resources/resourceGroups"
        );
        assert_eq!(
            t("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/n"),
            "Microsoft.Network/virtualNetworks/subnets"
        );
        assert_eq!(
            t(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnsZones/z/providers/Microsoft.Authorization/roleAssignments/g"
            ),
            "Microsoft.Authorization/roleAssignments"
        );
        assert_eq!(
            t(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/listClusterUserCredential"
            ),
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential"
        );
        assert_eq!(t("/subscriptions/s/providers/Microsoft.Network/locations/eastus/operations/1"), "operations");
        assert_eq!(resource_type("/healthz"), None);
    }
}
