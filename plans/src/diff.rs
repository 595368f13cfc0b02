//! Attribute-level diff between recorded and planned values.

use std::collections::BTreeMap;

use matih_state::Attrs;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

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

fn diff_value(path: String, before: Option<&Json>, after: &Value, forces: bool, out: &mut Vec<AttrChange>) {
    match (before, after) {
        (Some(b), Value::Known(a)) if b == a => {}
        (None, Value::Known(Json::Null)) => {}
        (Some(Json::Object(b)), Value::Known(Json::Object(a))) => {
            for (k, av) in a {
                diff_value(format!("{path}.{k}"), b.get(k), &Value::Known(av.clone()), forces, out);
            }
            for (k, bv) in b {
                if !a.contains_key(k) {
                    out.push(AttrChange {
                        path: format!("{path}.{k}"),
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
                diff_value(format!("{path}.{k}"), b.get(k), av, forces, out);
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
    fn identical_values_and_unset_nulls_are_no_change() {
        let prior = attrs(json!({"a": [1, 2], "b": {"c": true}}));
        let mut planned = BTreeMap::new();
        planned.insert("a".into(), Value::Known(json!([1, 2])));
        planned.insert("b".into(), Value::Known(json!({"c": true})));
        planned.insert("opt".into(), Value::Known(Json::Null));
        assert!(diff_attrs(Some(&prior), &planned, &[]).is_empty());
    }
}
