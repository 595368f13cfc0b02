//! Attribute-level diff between recorded and planned values.

use std::collections::BTreeMap;

use matih_state::Attrs;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::plan::{Action, PartChange};
use crate::value::Value;

/// One attribute path that changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrChange {
    /// `name`, `tags.env`, `subnet_ids[1]`.
    pub path: String,
    /// Absent when the attribute is new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Json>,
    /// Absent when the attribute goes away; `{"$unknown": true}` when known only after apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

/// Attribute changes from `prior` to `planned`. Attributes that are in `prior` but not planned
/// are cloud-managed extras and not compared.
pub fn diff_attrs(prior: Option<&Attrs>, planned: &BTreeMap<String, Value>, replace: &[String]) -> Vec<AttrChange> {
    let mut out = Vec::new();
    for (k, after) in planned {
        let before = prior.and_then(|p| p.get(k));
        let forces = replace.iter().any(|r| r == k);
        diff_value(k.clone(), before, after, forces, &mut out);
    }
    out
}

/// The changed leaf paths within a JSON value (`spec.ports[0].port`), for parts.
pub fn diff_json(before: &Json, after: &Json) -> Vec<AttrChange> {
    let mut out = Vec::new();
    diff_value(String::new(), Some(before), &Value::Known(after.clone()), false, &mut out);
    out
}

/// The entries of a map attribute that appear, go or change, each a part named by its key; an
/// update carries its changed paths. Entries in `after`'s order, then those only in `before`.
pub fn map_parts(before: Option<&Json>, after: Option<&Json>) -> Vec<PartChange> {
    let empty = serde_json::Map::new();
    let b = before.and_then(Json::as_object).unwrap_or(&empty);
    let a = after.and_then(Json::as_object).unwrap_or(&empty);
    let part =
        |action, name: &str, fields| PartChange { action, name: name.to_string(), source: None, fields, note: None };
    let mut out = Vec::new();
    for (k, av) in a {
        match b.get(k) {
            None => out.push(part(Action::Create, k, Vec::new())),
            Some(bv) if bv != av => out.push(part(Action::Update, k, diff_json(bv, av))),
            Some(_) => {}
        }
    }
    out.extend(b.keys().filter(|k| !a.contains_key(*k)).map(|k| part(Action::Delete, k, Vec::new())));
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn diff_value(path: String, before: Option<&Json>, after: &Value, forces: bool, out: &mut Vec<AttrChange>) {
    match (before, after) {
        (Some(b), Value::Known(a)) if b == a => {}
        (None, Value::Known(Json::Null)) => {}
        (Some(Json::Object(b)), Value::Known(Json::Object(a))) => {
            for (k, av) in a {
                diff_value(join(&path, k), b.get(k), &Value::Known(av.clone()), forces, out);
            }
            for (k, bv) in b {
                if !a.contains_key(k) {
                    out.push(AttrChange {
                        path: join(&path, k),
                        before: Some(bv.clone()),
                        after: None,
                        forces_replacement: forces,
                    });
                }
            }
        }
        (Some(Json::Array(b)), Value::Known(Json::Array(a))) if a.len() == b.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                diff_value(format!("{path}[{i}]"), Some(bv), &Value::Known(av.clone()), forces, out);
            }
        }
        (Some(Json::Array(b)), Value::List(a)) if a.len() == b.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                diff_value(format!("{path}[{i}]"), Some(bv), av, forces, out);
            }
        }
        (Some(Json::Object(b)), Value::Map(a)) => {
            for (k, av) in a {
                diff_value(join(&path, k), b.get(k), av, forces, out);
            }
        }
        _ => out.push(AttrChange {
            path,
            before: before.cloned(),
            after: Some(after.clone()),
            forces_replacement: forces,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(j: Json) -> Attrs {
        j.as_object().unwrap().clone()
    }

    #[test]
    fn reports_leaf_paths() {
        let prior = attrs(json!({"cidr": "10.0.0.0/16", "tags": {"a": "1", "b": "2"}, "ids": ["x", "y"], "extra": 1}));
        let mut planned = BTreeMap::new();
        planned.insert("cidr".into(), Value::str("10.1.0.0/16"));
        planned.insert("tags".into(), Value::Known(json!({"a": "1", "c": "3"})));
        planned.insert("ids".into(), Value::List(vec![Value::str("x"), Value::Unknown]));
        let d = diff_attrs(Some(&prior), &planned, &["cidr".into()]);
        let paths: Vec<(&str, bool)> = d.iter().map(|c| (c.path.as_str(), c.forces_replacement)).collect();
        assert_eq!(paths, [("cidr", true), ("ids[1]", false), ("tags.c", false), ("tags.b", false)]);
        assert_eq!(d[1].after, Some(Value::Unknown));
        assert_eq!(d[3].after, None);
    }

    #[test]
    fn map_parts_name_each_entry_that_appears_goes_or_changes() {
        let before = json!({"a": {"spec": {"x": 1, "y": [1, 2]}}, "b": {"k": 1}, "gone": {}});
        let after = json!({"new": {"k": 1}, "a": {"spec": {"x": 2, "y": [1, 3]}}, "b": {"k": 1}});
        let parts = map_parts(Some(&before), Some(&after));
        let summary: Vec<(Action, &str)> = parts.iter().map(|p| (p.action, p.name.as_str())).collect();
        assert_eq!(summary, [(Action::Create, "new"), (Action::Update, "a"), (Action::Delete, "gone")]);
        let fields: Vec<(&str, Option<&Json>)> =
            parts[1].fields.iter().map(|f| (f.path.as_str(), f.before.as_ref())).collect();
        assert_eq!(fields, [("spec.x", Some(&json!(1))), ("spec.y[1]", Some(&json!(2)))]);
        assert!(map_parts(None, Some(&after)).iter().all(|p| p.action == Action::Create));
        assert!(map_parts(Some(&before), None).iter().all(|p| p.action == Action::Delete));
    }

    #[test]
    fn identical_values_and_unset_nulls_are_no_change() {
        let prior = attrs(json!({"a": [1, 2], "b": {"c": true}}));
        let mut planned = BTreeMap::new();
        planned.insert("a".into(), Value::Known(json!([1, 2])));
        planned.insert("b".into(), Value::Known(json!({"c": true})));
        planned.insert("opt".into(), Value::Known(Json::Null));
        assert!(diff_attrs(Some(&prior), &planned, &[]).is_empty());
    }
}
