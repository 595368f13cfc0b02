//! A small validator for CRD structural schemas (`openAPIV3Schema`), as the API server applies them
//! to custom resources.
//!
//! Checks: `type` (with `nullable`), `properties` and unknown fields (allowed only under
//! `x-kubernetes-preserve-unknown-fields: true` or `additionalProperties`), `required`, `enum`,
//! `items`, `additionalProperties`, `x-kubernetes-int-or-string`, `x-kubernetes-embedded-resource`,
//! and the numeric/length/count bounds (`minimum`, `maxLength`, `minItems`, ...).
//! Deliberately not checked: `pattern` and `format` (no regex engine here), `oneOf`/`anyOf`/`allOf`/
//! `not`, CEL rules (`x-kubernetes-validations`), list-type uniqueness. Defaults are not applied.
//! At the root, `apiVersion`, `kind` and `metadata` are always allowed and not checked (the server
//! validates object metadata on its own).

use serde_json::Value;

/// One step of a path into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A schema violation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SchemaError {
    pub path: Vec<Seg>,
    /// A field the schema does not declare (the server prunes these on create/update, and
    /// rejects them in an apply or with `fieldValidation=Strict`).
    pub unknown: bool,
    pub message: String,
}

/// `spec.containers[0].name`.
pub(crate) fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The value at a path, if it exists.
pub(crate) fn get<'v>(v: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        Seg::Key(k) => cur.as_object()?.get(k),
        Seg::Index(i) => cur.as_array()?.get(*i),
    })
}

/// Validates a custom resource (a whole object: `apiVersion`, `kind`, `metadata`, `spec`, ...)
/// against a CRD version's `openAPIV3Schema`. Each error starts with the JSON path it is about,
/// e.g. `spec.acme.privateKeySecretRef.name: Required value`. Empty means valid.
pub fn validate_against_schema(schema: &Value, obj: &Value) -> Vec<String> {
    check(schema, obj).into_iter().map(|e| e.message).collect()
}

/// As [`validate_against_schema`], structured.
pub(crate) fn check(schema: &Value, obj: &Value) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    let mut v = Validator { errors: &mut errors, path: Vec::new() };
    v.node(schema, obj, true);
    errors
}

struct Validator<'a> {
    errors: &'a mut Vec<SchemaError>,
    path: Vec<Seg>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}...", s.chars().take(57).collect::<String>()) } else { s }
}

impl Validator<'_> {
    fn err(&mut self, unknown: bool, what: String) {
        let p = path_string(&self.path);
        let message = if p.is_empty() { what } else { format!("{p}: {what}") };
        self.errors.push(SchemaError { path: self.path.clone(), unknown, message });
    }

    fn node(&mut self, schema: &Value, v: &Value, root: bool) {
        let Some(s) = schema.as_object() else { return };
        let flag = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
        if v.is_null() {
            if !flag("nullable") && s.contains_key("type") {
                let p = path_string(&self.path);
                let ty = s["type"].as_str().unwrap_or("?").to_string();
                self.err(false, format!("Invalid value: \"null\": {p} in body must be of type {ty}: \"null\""));
            }
            return;
        }
        if flag("x-kubernetes-int-or-string") {
            if !(v.is_string() || v.is_i64() || v.is_u64()) {
                self.err(false, format!("Invalid value: {}: must be an integer or a string", short(v)));
            }
            return;
        }
        if let Some(ty) = s.get("type").and_then(Value::as_str) {
            let actual = type_name(v);
            let ok = match ty {
                "number" => v.is_number(),
                other => other == actual,
            };
            if !ok {
                let p = path_string(&self.path);
                self.err(false, format!("Invalid value: \"{actual}\": {p} in body must be of type {ty}: {}", short(v)));
                return;
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array)
            && !allowed.contains(v)
        {
            let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
            self.err(false, format!("Unsupported value: {}: supported values: {}", short(v), list.join(", ")));
        }
        self.bounds(s, v);
        match v {
            Value::Object(m) => {
                let props = s.get("properties").and_then(Value::as_object);
                let additional = s.get("additionalProperties");
                let preserve = flag("x-kubernetes-preserve-unknown-fields");
                let embedded = flag("x-kubernetes-embedded-resource");
                for (k, child) in m {
                    let implicit = matches!(k.as_str(), "apiVersion" | "kind" | "metadata");
                    if implicit && (root || (embedded && props.and_then(|p| p.get(k)).is_none())) {
                        continue;
                    }
                    self.path.push(Seg::Key(k.clone()));
                    if let Some(child_schema) = props.and_then(|p| p.get(k)) {
                        self.node(child_schema, child, false);
                    } else if let Some(add) = additional.filter(|a| a.is_object()) {
                        self.node(add, child, false);
                    } else if !(preserve || additional.and_then(Value::as_bool) == Some(true)) {
                        self.err(true, "field not declared in schema".to_string());
                    }
                    self.path.pop();
                }
                if let Some(required) = s.get("required").and_then(Value::as_array) {
                    for r in required.iter().filter_map(Value::as_str) {
                        if m.get(r).is_none_or(Value::is_null) {
                            self.path.push(Seg::Key(r.to_string()));
                            self.err(false, "Required value".to_string());
                            self.path.pop();
                        }
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(Seg::Index(i));
                        self.node(item_schema, item, false);
                        self.path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    fn bounds(&mut self, s: &serde_json::Map<String, Value>, v: &Value) {
        let num = |k: &str| s.get(k).and_then(Value::as_f64);
        let p = path_string(&self.path);
        if let Some(x) = v.as_f64() {
            let excl_min = s.get("exclusiveMinimum").and_then(Value::as_bool).unwrap_or(false);
            let excl_max = s.get("exclusiveMaximum").and_then(Value::as_bool).unwrap_or(false);
            if let Some(min) = num("minimum")
                && (x < min || (excl_min && x == min))
            {
                self.err(false, format!("Invalid value: {x}: {p} in body should be greater than or equal to {min}"));
            }
            if let Some(max) = num("maximum")
                && (x > max || (excl_max && x == max))
            {
                self.err(false, format!("Invalid value: {x}: {p} in body should be less than or equal to {max}"));
            }
        }
        let count = match v {
            Value::String(st) => Some((st.chars().count(), "minLength", "maxLength", "chars long")),
            Value::Array(a) => Some((a.len(), "minItems", "maxItems", "items")),
            Value::Object(m) => Some((m.len(), "minProperties", "maxProperties", "properties")),
            _ => None,
        };
        if let Some((n, min_k, max_k, unit)) = count {
            let n = n as f64;
            if let Some(min) = num(min_k)
                && n < min
            {
                self.err(false, format!("Invalid value: {}: {p} in body should have at least {min} {unit}", short(v)));
            }
            if let Some(max) = num(max_k)
                && n > max
            {
                self.err(false, format!("Too long: {p} in body should have at most {max} {unit}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "count": {"type": "integer", "maximum": 3},
                        "port": {"x-kubernetes-int-or-string": true},
                        "items": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "boolean"}}}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    }
                }
            }
        })
    }

    #[test]
    fn a_valid_object_passes_with_root_metadata_allowed() {
        let obj = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"},
            "spec": {"name": "n", "mode": "a", "count": 2, "port": "http", "items": [{"x": true}],
                     "labels": {"a": "b"}, "free": {"anything": [1]}}});
        assert_eq!(validate_against_schema(&schema(), &obj), Vec::<String>::new());
    }

    #[test]
    fn each_violation_names_its_path() {
        let obj = json!({"spec": {"mode": "c", "count": "2", "items": [{"x": 1}], "labels": {"a": 1}, "typo": 1}});
        let errs = validate_against_schema(&schema(), &obj);
        let want = [
            "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"",
            "spec.count: Invalid value: \"string\": spec.count in body must be of type integer: \"2\"",
            "spec.items[0].x: Invalid value: \"integer\": spec.items[0].x in body must be of type boolean: 1",
            "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: 1",
            "spec.typo: field not declared in schema",
            "spec.name: Required value",
        ];
        assert_eq!(errs, want);
        let structured = check(&schema(), &obj);
        assert_eq!(structured.iter().filter(|e| e.unknown).count(), 1);
    }

    #[test]
    fn bounds_are_checked() {
        let obj = json!({"spec": {"name": "", "count": 4}});
        let errs = validate_against_schema(&schema(), &obj);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("spec.name: Invalid value") && errs[1].starts_with("spec.count: Invalid value"));
    }
}
