//! Object validation as the API server does it before a write: names, label and annotation keys,
//! label values, kind-specific rules (CRD naming, ConfigMap keys), and the object's body against its
//! kind (the `k8s-openapi` type for built-ins, the structural schema for custom resources).
//!
//! It reports; it does not decide what a write does with unknown fields (the caller prunes or
//! rejects them depending on the operation). Not checked: immutable fields, cross-field rules
//! (selector matches template labels, ...), annotation total size.

use serde_json::Value;

use crate::catalog::{NameRule, ResourceType, Validation};
use crate::error::Cause;
use crate::schema::{self, Seg};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIGMAP_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn is_label_1123(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_label_1123)
}

/// Why `name` is not acceptable under `rule`, if it is not.
pub(crate) fn name_error(rule: NameRule, name: &str) -> Option<String> {
    match rule {
        NameRule::Subdomain => {
            if name.len() > 253 {
                Some("must be no more than 253 characters".into())
            } else if !is_subdomain(name) {
                Some(SUBDOMAIN_MSG.into())
            } else {
                None
            }
        }
        NameRule::Label1123 | NameRule::Label1035 => {
            if name.len() > 63 {
                Some("must be no more than 63 characters".into())
            } else if rule == NameRule::Label1123 && !is_label_1123(name) {
                Some(LABEL_MSG.into())
            } else if rule == NameRule::Label1035 && !(is_label_1123(name) && name.as_bytes()[0].is_ascii_lowercase()) {
                Some(DNS1035_MSG.into())
            } else {
                None
            }
        }
        NameRule::PathSegment => match name {
            "." | ".." => Some(format!("may not be '{name}'")),
            _ if name.contains('/') => Some("may not contain '/'".into()),
            _ if name.contains('%') => Some("may not contain '%'".into()),
            "" => Some("name or generateName is required".into()),
            _ => None,
        },
    }
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Why `k` is not a valid label or annotation key (`[prefix/]name`), if it is not.
pub(crate) fn label_key_error(k: &str) -> Option<String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        if p.len() > 253 {
            return Some("prefix part must be no more than 253 characters".into());
        }
        if !is_subdomain(p) {
            return Some(format!("prefix part {SUBDOMAIN_MSG}"));
        }
    }
    if name.len() > 63 {
        return Some("name part must be no more than 63 characters".into());
    }
    if !is_qualified_name_part(name) {
        return Some(QUALIFIED_MSG.into());
    }
    None
}

fn label_value_error(v: &str) -> Option<String> {
    if v.len() > 63 {
        Some("must be no more than 63 characters".into())
    } else if !v.is_empty() && !is_qualified_name_part(v) {
        Some(VALUE_MSG.into())
    } else {
        None
    }
}

/// Metadata problems: the name, label keys and values, annotation keys.
pub(crate) fn metadata_causes(obj: &Value, rt: &ResourceType) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired",
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        });
    } else if let Some(why) = name_error(rt.names, name) {
        causes.push(Cause::invalid("metadata.name", name, &why));
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(why) = label_key_error(k) {
                causes.push(Cause::invalid("metadata.labels", k, &why));
            }
            match v.as_str() {
                Some(s) => {
                    if let Some(why) = label_value_error(s) {
                        causes.push(Cause::invalid("metadata.labels", s, &why));
                    }
                }
                None if v.is_null() => {}
                None => causes.push(Cause::invalid("metadata.labels", &v.to_string(), "must be a string")),
            }
        }
    }
    if let Some(annotations) = obj.pointer("/metadata/annotations").and_then(Value::as_object) {
        for (k, v) in annotations {
            if let Some(why) = label_key_error(k) {
                causes.push(Cause::invalid("metadata.annotations", k, &why));
            }
            if !v.is_string() && !v.is_null() {
                causes.push(Cause::invalid("metadata.annotations", &v.to_string(), "must be a string"));
            }
        }
    }
    causes
}

/// Kind-specific rules.
pub(crate) fn kind_causes(obj: &Value, rt: &ResourceType) -> Vec<Cause> {
    let mut causes = Vec::new();
    if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
        let spec = &obj["spec"];
        let plural = spec.pointer("/names/plural").and_then(Value::as_str).unwrap_or_default();
        let group = spec["group"].as_str().unwrap_or_default();
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        if name != format!("{plural}.{group}") {
            causes.push(Cause::invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"));
        }
        let versions = spec["versions"].as_array().map(Vec::as_slice).unwrap_or_default();
        if versions.is_empty() {
            causes.push(Cause {
                reason: "FieldValueRequired",
                message: "Required value".into(),
                field: "spec.versions".into(),
            });
        }
        let storage = versions.iter().filter(|v| v["storage"].as_bool() == Some(true)).count();
        if !versions.is_empty() && storage != 1 {
            causes.push(Cause::invalid(
                "spec.versions",
                &storage.to_string(),
                "must have exactly one version marked as storage version",
            ));
        }
        if !matches!(spec["scope"].as_str(), Some("Namespaced" | "Cluster")) {
            let scope = spec["scope"].as_str().unwrap_or_default();
            causes.push(Cause {
                reason: "FieldValueNotSupported",
                message: format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
                field: "spec.scope".into(),
            });
        }
    }
    if rt.is("batch", "Job") {
        // Kubernetes ≥ 1.31 (success and failure policies): a terminal condition only with the
        // condition that leads to it.
        let conditions =
            obj.pointer("/status/conditions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let is_true = |t: &str| conditions.iter().any(|c| c["type"] == t && c["status"] == "True");
        for (terminal, needs) in [("Complete", "SuccessCriteriaMet"), ("Failed", "FailureTarget")] {
            if is_true(terminal) && !is_true(needs) {
                causes.push(Cause {
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: cannot set {terminal}=True condition without the {needs}=true condition"
                    ),
                    field: "status.conditions".into(),
                });
            }
        }
    }
    if rt.group.is_empty() && matches!(rt.kind.as_str(), "ConfigMap" | "Secret") {
        for field in ["data", "binaryData", "stringData"] {
            for k in obj[field].as_object().map(|m| m.keys().collect::<Vec<_>>()).unwrap_or_default() {
                let ok =
                    !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
                if !ok || k.len() > 253 {
                    causes.push(Cause::invalid(&format!("{field}[{k}]"), k, CONFIGMAP_KEY_MSG));
                }
            }
        }
    }
    causes
}

/// The body checked against its kind.
#[derive(Debug, Default)]
pub(crate) struct BodyReport {
    /// Wrong types, missing required fields, schema violations: the write fails with 422.
    pub causes: Vec<Cause>,
    /// Fields the kind does not declare.
    pub unknown: Vec<Vec<Seg>>,
}

fn lost_fields(input: &Value, output: &Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                path.push(Seg::Key(k.clone()));
                match o.get(k) {
                    None => out.push(path.clone()),
                    Some(ov) => lost_fields(v, ov, path, out),
                }
                path.pop();
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o).enumerate() {
                path.push(Seg::Index(n));
                lost_fields(iv, ov, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn typed_check(f: fn(&Value) -> Result<Value, serde_json::Error>, v: &Value, prefix: &[Seg], report: &mut BodyReport) {
    match f(v) {
        Ok(out) => {
            let mut lost = Vec::new();
            lost_fields(v, &out, &mut prefix.to_vec(), &mut lost);
            report.unknown.extend(lost);
        }
        Err(e) => {
            let field = schema::path_string(prefix);
            report.causes.push(Cause { reason: "FieldValueInvalid", message: format!("Invalid value: {e}"), field });
        }
    }
}

fn object_meta(v: &Value) -> Result<Value, serde_json::Error> {
    let m: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta = serde_json::from_value(v.clone())?;
    serde_json::to_value(&m)
}

/// Checks `obj` against its kind.
pub(crate) fn body(obj: &Value, rt: &ResourceType) -> BodyReport {
    let mut report = BodyReport::default();
    match &rt.validation {
        Validation::Typed(f) => typed_check(*f, obj, &[], &mut report),
        Validation::Schema(s) => {
            if let Some(meta) = obj.get("metadata") {
                typed_check(object_meta, meta, &[Seg::Key("metadata".into())], &mut report);
            }
            for e in schema::check(s, obj) {
                if e.unknown {
                    report.unknown.push(e.path);
                } else {
                    let field = schema::path_string(&e.path);
                    let message = e.message.strip_prefix(&format!("{field}: ")).unwrap_or(&e.message).to_string();
                    let reason = if message.starts_with("Required") {
                        "FieldValueRequired"
                    } else if message.starts_with("Unsupported") {
                        "FieldValueNotSupported"
                    } else {
                        "FieldValueInvalid"
                    };
                    report.causes.push(Cause { reason, message, field });
                }
            }
        }
        Validation::None => {
            if let Some(meta) = obj.get("metadata") {
                typed_check(object_meta, meta, &[Seg::Key("metadata".into())], &mut report);
            }
        }
    }
    report
}

/// Removes a field found unknown (a map key path).
pub(crate) fn remove_path(obj: &mut Value, path: &[Seg]) {
    let Some((Seg::Key(last), parent)) = path.split_last() else { return };
    let mut cur = obj;
    for seg in parent {
        let next = match seg {
            Seg::Key(k) => cur.get_mut(k.as_str()),
            Seg::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_their_rule() {
        assert_eq!(name_error(NameRule::Subdomain, "a.b-c"), None);
        assert!(name_error(NameRule::Subdomain, "Foo_bar").is_some());
        assert!(name_error(NameRule::Label1123, "a.b").is_some());
        assert_eq!(name_error(NameRule::Label1123, "1abc"), None);
        assert!(name_error(NameRule::Label1035, "1abc").is_some());
        assert_eq!(name_error(NameRule::PathSegment, "system:controller:x"), None);
        assert!(name_error(NameRule::PathSegment, "a/b").is_some());
    }

    #[test]
    fn label_keys_and_values() {
        assert_eq!(label_key_error("app.kubernetes.io/name"), None);
        assert!(label_key_error("Bad Key").is_some());
        assert!(label_key_error("UPPER.io/x").is_some());
        assert_eq!(label_value_error(""), None);
        assert!(label_value_error("has space").is_some());
        assert!(label_value_error(&"x".repeat(64)).is_some());
    }
}
