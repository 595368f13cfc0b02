//! Field paths and field sets: what server-side apply tracks ownership of.
//!
//! A field is a path of map keys from the object's root (`["spec", "replicas"]`). Only maps are
//! descended into: a list is one leaf, whatever it holds (the emulator treats every list as atomic,
//! where a real server merges lists with `x-kubernetes-list-type: map` per key). An empty map is a
//! leaf too ("this map exists"). This module converts sets of such paths to and from the `FieldsV1`
//! JSON the real server writes (`{"f:spec":{"f:replicas":{}}}`, with `"."` marking a map that is
//! owned itself and has owned children). It knows nothing of managers or operations.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A path of map keys from the object root.
pub(crate) type Path = Vec<String>;
/// A set of owned fields.
pub(crate) type FieldSet = BTreeSet<Path>;

/// Metadata that is not a field anyone owns: the object's identity and what the server sets.
fn unowned_metadata(key: &str) -> bool {
    key == "name" || key == "namespace" || crate::cluster::SERVER_METADATA.contains(&key)
}

/// The owned-field leaves of an object: every path to a scalar, list or empty map, skipping
/// `apiVersion`, `kind` and server-set metadata (and `status` when `skip_status`). Nulls are not
/// fields.
pub(crate) fn leaves(obj: &Value, skip_status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(root) = obj.as_object() else { return out };
    for (k, v) in root {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" if skip_status => {}
            "metadata" => {
                if let Some(meta) = v.as_object() {
                    for (mk, mv) in meta {
                        if !unowned_metadata(mk.as_str()) {
                            collect(mv, &mut vec!["metadata".to_string(), mk.clone()], &mut out);
                        }
                    }
                }
            }
            _ => collect(v, &mut vec![k.clone()], &mut out),
        }
    }
    out
}

fn collect(v: &Value, path: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Null => {}
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(k.clone());
                collect(child, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The value at `path`, if every step is a map key that exists.
pub(crate) fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.as_object()?.get(k))
}

/// Sets `path` to `val`, creating (or replacing non-map values with) maps on the way. An empty map
/// does not replace a map that is already there: it only says the map exists.
pub(crate) fn set(v: &mut Value, path: &[String], val: Value) {
    let mut cur = v;
    for k in path {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        cur = cur.as_object_mut().expect("made a map above").entry(k.clone()).or_insert(Value::Null);
    }
    let keep = matches!((&*cur, &val), (Value::Object(_), Value::Object(m)) if m.is_empty());
    if !keep {
        *cur = val;
    }
}

/// Removes `path`, then every map on the way up that became empty, unless `keep` says that map's
/// path must stay (someone owns it as an empty map). `metadata`, `spec` and `status` stay even when
/// empty (Go structs, never omitted); other empty top-level maps (a ConfigMap's `data`) go.
pub(crate) fn remove(v: &mut Value, path: &[String], keep: &dyn Fn(&[String]) -> bool) {
    let Some((last, parent)) = path.split_last() else { return };
    let removed = match get_mut(v, parent).and_then(Value::as_object_mut) {
        Some(m) => m.remove(last).is_some(),
        None => false,
    };
    if !removed {
        return;
    }
    let mut depth = parent.len();
    while depth >= 1 {
        let p = &path[..depth];
        let empty = get(v, p).and_then(Value::as_object).is_some_and(Map::is_empty);
        if !empty || keep(p) || (depth == 1 && ["metadata", "spec", "status"].contains(&p[0].as_str())) {
            break;
        }
        if let Some(m) = get_mut(v, &path[..depth - 1]).and_then(Value::as_object_mut) {
            m.remove(&path[depth - 1]);
        }
        depth -= 1;
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, k| cur.as_object_mut()?.get_mut(k))
}

/// One path is a prefix of the other (or they are equal).
pub(crate) fn overlaps(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// The dotted form the real server prints in conflicts: `.data.Corefile`.
pub(crate) fn dotted(path: &[String]) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

/// A field set in the `FieldsV1` format.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for k in path {
            cur = cur
                .entry(format!("f:{k}"))
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("only maps are inserted");
        }
    }
    // A path that is owned and also has owned children gets a "." entry.
    let mut with_dots = Value::Object(root);
    for path in set {
        if let Some(node) = get_mut(&mut with_dots, &path.iter().map(|k| format!("f:{k}")).collect::<Vec<_>>())
            && let Some(m) = node.as_object_mut()
            && !m.is_empty()
        {
            m.insert(".".to_string(), Value::Object(Map::new()));
        }
    }
    sort_keys(&mut with_dots);
    with_dots
}

fn sort_keys(v: &mut Value) {
    if let Value::Object(m) = v {
        let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, mut child) in entries {
            sort_keys(&mut child);
            m.insert(k, child);
        }
    }
}

/// Reads a `FieldsV1` value back into a set. `k:`/`v:`/`i:` list entries never occur (the
/// emulator writes none) and are ignored.
pub(crate) fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    if let Some(m) = v.as_object() {
        walk_fields_v1(m, &mut Vec::new(), &mut out);
    }
    out
}

fn walk_fields_v1(m: &Map<String, Value>, path: &mut Path, out: &mut FieldSet) {
    for (k, child) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        let Some(name) = k.strip_prefix("f:") else { continue };
        path.push(name.to_string());
        match child.as_object() {
            Some(cm) if !cm.is_empty() => walk_fields_v1(cm, path, out),
            _ => {
                out.insert(path.clone());
            }
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Path {
        s.split('.').map(String::from).collect()
    }

    #[test]
    fn leaves_skip_identity_and_treat_lists_as_atomic() {
        let obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "y", "labels": {"a": "1"}, "annotations": {}},
            "data": {"k": "v", "n": null},
            "spec": {"list": [{"a": 1}]},
            "status": {"s": 1}
        });
        let got = leaves(&obj, true);
        let want: FieldSet =
            [p("metadata.labels.a"), p("metadata.annotations"), p("data.k"), p("spec.list")].into_iter().collect();
        assert_eq!(got, want);
        assert!(leaves(&obj, false).contains(&p("status.s")));
    }

    #[test]
    fn fields_v1_round_trip_uses_the_real_format() {
        let set: FieldSet =
            [p("metadata.labels.app"), p("spec.replicas"), p("spec"), p("data.x")].into_iter().collect();
        let v = to_fields_v1(&set);
        assert_eq!(
            v,
            json!({"f:data":{"f:x":{}},"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{".":{},"f:replicas":{}}})
        );
        assert_eq!(from_fields_v1(&v), set);
    }

    #[test]
    fn set_and_remove_prune_empty_maps() {
        let mut v = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": {"y": 1}}});
        set(&mut v, &p("spec.x.z"), json!(2));
        set(&mut v, &p("spec.x"), json!({}));
        assert_eq!(v["spec"]["x"], json!({"y": 1, "z": 2}));
        remove(&mut v, &p("metadata.labels.a"), &|_| false);
        assert_eq!(v["metadata"], json!({}));
        remove(&mut v, &p("spec.x.y"), &|_| false);
        remove(&mut v, &p("spec.x.z"), &|q| q == p("spec.x").as_slice());
        assert_eq!(v["spec"], json!({"x": {}}));
    }
}
