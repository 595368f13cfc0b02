//! API errors as the real server reports them: a `Status` object with a code, a reason, a message
//! and details, so that kube-rs turns them into `kube::Error::Api` with the right `reason`/`code`.
//!
//! Only the constructors the emulator needs; no retry-after, no aggregated API errors.

use serde_json::{Value, json};

use crate::catalog::ResourceType;
use crate::ssa::Conflict;

/// One `details.causes` entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldManagerConflict`, ...
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub(crate) fn invalid(field: &str, value: &str, why: &str) -> Self {
        Cause { reason: "FieldValueInvalid", message: format!("Invalid value: {value:?}: {why}"), field: field.into() }
    }
}

/// A failed API request: becomes a `Status` response body.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

fn details(rt: &ResourceType, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": rt.plural});
    if !rt.group.is_empty() {
        d["group"] = json!(rt.group);
    }
    d
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>, details: Option<Value>) -> Self {
        ApiError { code, reason, message: message.into(), details }
    }

    /// The `Status` body.
    pub(crate) fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }

    /// Adds a cause to the details (`{reason, message, field}`).
    pub(crate) fn add_cause(&mut self, reason: &str, message: &str, field: &str) {
        let d = self.details.get_or_insert_with(|| json!({}));
        let cause = json!({"reason": reason, "message": message, "field": field});
        match d["causes"].as_array_mut() {
            Some(c) => c.push(cause),
            None => d["causes"] = json!([cause]),
        }
    }

    /// An applied configuration that does not convert to the kind's typed form (list keys
    /// missing or repeated), as the server words it.
    pub(crate) fn typed_patch(rt: &ResourceType, name: &str, problems: &[String]) -> Self {
        let gv = if rt.group.is_empty() { format!("/{}", rt.version) } else { rt.api_version() };
        let message = format!("failed to create typed patch object ({gv}, Kind={}): {}", rt.kind, problems.join(", "));
        let mut d = json!({"name": name, "kind": rt.kind});
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        Self::new(422, "Invalid", message, Some(d))
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message, None)
    }

    pub(crate) fn unauthorized(why: &str) -> Self {
        Self::new(401, "Unauthorized", format!("Unauthorized: {why}"), None)
    }

    pub(crate) fn forbidden(rt: &ResourceType, name: &str, why: &str) -> Self {
        let msg = format!("{} {name:?} is forbidden: {why}", rt.qualified_plural());
        Self::new(403, "Forbidden", msg, Some(details(rt, name)))
    }

    /// A request the authorizer refuses outright.
    pub(crate) fn forbidden_request(why: &str) -> Self {
        Self::new(403, "Forbidden", why.to_string(), None)
    }

    /// A path the server does not serve.
    pub(crate) fn no_such_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})),
        )
    }

    pub(crate) fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} {name:?} not found", rt.qualified_plural()), Some(details(rt, name)))
    }

    pub(crate) fn namespace_not_found(ns: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces {ns:?} not found"),
            Some(json!({"name": ns, "kind": "namespaces"})),
        )
    }

    pub(crate) fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource: {method}"),
            None,
        )
    }

    pub(crate) fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", rt.qualified_plural()),
            Some(details(rt, name)),
        )
    }

    /// An admission webhook refused the request.
    pub(crate) fn denied(message: String) -> Self {
        Self::new(400, "BadRequest", message, None)
    }

    /// The server failed (calling a webhook, ...).
    pub(crate) fn internal(message: String, details: Value) -> Self {
        Self::new(500, "InternalError", message, Some(details))
    }

    /// Optimistic concurrency: the request's resourceVersion (or a precondition) is stale.
    pub(crate) fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        let msg = format!("Operation cannot be fulfilled on {} {name:?}: {why}", rt.qualified_plural());
        Self::new(409, "Conflict", msg, Some(details(rt, name)))
    }

    /// Server-side apply conflicts, worded as the real server words them.
    pub(crate) fn apply_conflicts(rt: &ResourceType, name: &str, conflicts: &[Conflict]) -> Self {
        let message = if let [c] = conflicts {
            format!("Apply failed with 1 conflict: conflict with {}: {}", c.manager, crate::fields::dotted(&c.path))
        } else {
            let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
            managers.sort();
            managers.dedup();
            let mut lines = Vec::new();
            for m in managers {
                lines.push(format!("conflict with {m}:"));
                for c in conflicts.iter().filter(|c| c.manager == m) {
                    lines.push(format!("- {}", crate::fields::dotted(&c.path)));
                }
            }
            format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|c| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager),
                       "field": crate::fields::dotted(&c.path)})
            })
            .collect();
        let mut d = details(rt, name);
        d["causes"] = Value::Array(causes);
        Self::new(409, "Conflict", message, Some(d))
    }

    /// 422 with field causes, worded `Kind "name" is invalid: field: message`.
    pub(crate) fn invalid(rt: &ResourceType, name: &str, causes: &[Cause]) -> Self {
        let parts: Vec<String> = causes
            .iter()
            .map(|c| if c.field.is_empty() { c.message.clone() } else { format!("{}: {}", c.field, c.message) })
            .collect();
        let joined = if parts.len() == 1 { parts[0].clone() } else { format!("[{}]", parts.join(", ")) };
        let message = format!("{} {name:?} is invalid: {joined}", rt.kind);
        let mut d = json!({"name": name, "kind": rt.kind});
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        d["causes"] = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect::<Vec<_>>()
            .into();
        Self::new(422, "Invalid", message, Some(d))
    }

    /// An `Accept` header none of whose media types the server can answer with (a table, a
    /// metadata shape it does not serve).
    /// A `continue` token for a list that can no longer be served as one consistent snapshot, in
    /// the words of a real server whose store has compacted past the token's resourceVersion.
    pub(crate) fn expired_continue() -> Self {
        Self::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            None,
        )
    }

    /// A watch from a resourceVersion the store has compacted away; `oldest` is the oldest it
    /// still knows.
    pub(crate) fn too_old_resource_version(rv: u64, oldest: u64) -> Self {
        Self::new(410, "Expired", format!("too old resource version: {rv} ({oldest})"), None)
    }

    pub(crate) fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            None,
        )
    }

    pub(crate) fn unsupported_media_type(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/merge-patch+json, application/strategic-merge-patch+json (got {ct:?})"
            ),
            None,
        )
    }
}
