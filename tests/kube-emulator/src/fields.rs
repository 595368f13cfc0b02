//! Field paths and field sets: what server-side apply tracks ownership of.
//!
//! A field is a path from the object's root: map keys, and list items for the lists that are not
//! atomic ([`crate::lists`]): an item of a `map` list by its key fields
//! (`containers[name="app"]`), a value of a `set` list by itself. An atomic list is one leaf,
//! whatever it holds, and so is an empty map ("this map exists"). An item is a field of its own
//! (it exists) with its fields below it. This module converts sets of such paths to and from the
//! `FieldsV1` JSON the real server writes (`{"f:spec":{"f:replicas":{}}}`, `"k:{\"name\":\"app\"}"`
//! for a map-list item, `"v:\"x\""` for a set value, `"."` marking a path that is owned itself and
//! has owned children). It knows nothing of managers or operations.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::lists::{ListKind, ListTypes};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Seg {
    /// A map key.
    Field(String),
    /// An item of a `map` list: its key fields as canonical JSON (`{"name":"app"}`, keys sorted).
    Key(String),
    /// A value of a `set` list, as canonical JSON.
    Value(String),
}

/// A path from the object root.
pub(crate) type Path = Vec<Seg>;
/// A set of owned fields.
pub(crate) type FieldSet = BTreeSet<Path>;

/// A path of map keys alone.
pub(crate) fn field_path<S: AsRef<str>>(keys: &[S]) -> Path {
    keys.iter().map(|k| Seg::Field(k.as_ref().to_string())).collect()
}

/// JSON with object keys sorted, no spaces: how the real server writes `k:` and `v:` entries.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let parts: Vec<String> =
                sorted.iter().map(|(k, v)| format!("{}:{}", Value::String((*k).clone()), canonical(v))).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// An item's key, with each missing key field's default; `None` when a key field is missing and
/// has no default.
fn item_key(item: &Value, keys: &[(String, Option<Value>)]) -> Option<String> {
    let mut m = Map::new();
    for (k, default) in keys {
        let v = item.get(k).filter(|v| !v.is_null()).or(default.as_ref())?;
        m.insert(k.clone(), v.clone());
    }
    Some(canonical(&Value::Object(m)))
}

/// Whether `item` is the one `key` (canonical JSON of its key fields) names. A key field the item
/// leaves out matches only the default the key was made with.
fn matches_key(item: &Value, key: &str) -> bool {
    let Ok(Value::Object(want)) = serde_json::from_str::<Value>(key) else { return false };
    want.iter().all(|(k, v)| match item.get(k).filter(|x| !x.is_null()) {
        Some(x) => x == v,
        None => k == "protocol" && v == "TCP",
    })
}

/// The key field names of a `Key` segment.
fn key_fields(key: &str) -> Vec<String> {
    match serde_json::from_str::<Value>(key) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Metadata that is not a field anyone owns: the object's identity and what the server sets.
fn unowned_metadata(key: &str) -> bool {
    key == "name" || key == "namespace" || crate::cluster::SERVER_METADATA.contains(&key)
}

/// The owned-field leaves of an object: every path to a scalar, atomic list or empty map, and
/// every item of a `map` or `set` list, skipping `apiVersion`, `kind` and server-set metadata
/// (and `status` when `skip_status`). Nulls are not fields. An item without its key fields (see
/// [`list_problems`]) is left out.
pub(crate) fn leaves(obj: &Value, skip_status: bool, lists: &ListTypes) -> FieldSet {
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
                            collect(mv, &mut field_path(&["metadata", mk]), lists, &mut out);
                        }
                    }
                }
            }
            _ => collect(v, &mut field_path(&[k]), lists, &mut out),
        }
    }
    out
}

fn collect(v: &Value, path: &mut Path, lists: &ListTypes, out: &mut FieldSet) {
    match v {
        Value::Null => {}
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(Seg::Field(k.clone()));
                collect(child, path, lists, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match lists.at(path) {
            ListKind::Atomic => {
                out.insert(path.clone());
            }
            ListKind::Set => {
                for item in items {
                    path.push(Seg::Value(canonical(item)));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListKind::Map(keys) => {
                for item in items {
                    let Some(key) = item_key(item, &keys) else { continue };
                    path.push(Seg::Key(key));
                    out.insert(path.clone());
                    if let Some(m) = item.as_object() {
                        for (k, child) in m {
                            path.push(Seg::Field(k.clone()));
                            collect(child, path, lists, out);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// What a real server refuses in an applied configuration's lists: an item of a `map` list
/// without one of its key fields (and no default for it), and two items (or set values) that are
/// the same. Messages in the server's words, with the list's dotted path.
pub(crate) fn list_problems(obj: &Value, lists: &ListTypes) -> Vec<String> {
    let mut out = Vec::new();
    walk_lists(obj, &mut Vec::new(), lists, &mut out);
    out
}

fn walk_lists(v: &Value, path: &mut Path, lists: &ListTypes, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if path.is_empty() && (k == "apiVersion" || k == "kind") {
                    continue;
                }
                path.push(Seg::Field(k.clone()));
                walk_lists(child, path, lists, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            let kind = lists.at(path);
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let seg = match &kind {
                    ListKind::Atomic => return,
                    ListKind::Set => Seg::Value(canonical(item)),
                    ListKind::Map(keys) => match item_key(item, keys) {
                        Some(k) => Seg::Key(k),
                        None => {
                            let missing = keys
                                .iter()
                                .find(|(k, d)| item.get(k).is_none_or(Value::is_null) && d.is_none())
                                .map(|(k, _)| k.clone())
                                .unwrap_or_default();
                            out.push(format!(
                                "{}: element {i}: associative list with keys has an element that omits key field {missing:?} (and doesn't have default value)",
                                dotted(path)
                            ));
                            continue;
                        }
                    },
                };
                if !seen.insert(seg.clone()) {
                    let what = match &seg {
                        Seg::Key(k) => format!("duplicate entries for key {}", bracket(k)),
                        _ => format!("duplicate entries for value {}", seg_text(&seg)),
                    };
                    out.push(format!("{}: {what}", dotted(path)));
                    continue;
                }
                path.push(seg);
                walk_lists(item, path, lists, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The value at `path`, if every step exists.
pub(crate) fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        Seg::Field(k) => cur.as_object()?.get(k),
        Seg::Key(k) => cur.as_array()?.iter().find(|item| matches_key(item, k)),
        Seg::Value(x) => cur.as_array()?.iter().find(|item| canonical(item) == *x),
    })
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        Seg::Field(k) => cur.as_object_mut()?.get_mut(k),
        Seg::Key(k) => cur.as_array_mut()?.iter_mut().find(|item| matches_key(item, k)),
        Seg::Value(x) => cur.as_array_mut()?.iter_mut().find(|item| canonical(item) == *x),
    })
}

/// One step down from `cur`, creating what is missing: a map for a key (replacing a non-map), a
/// list item made of its key fields (appended), a set value (appended).
fn step<'a>(cur: &'a mut Value, seg: &Seg) -> &'a mut Value {
    match seg {
        Seg::Field(k) => {
            if !cur.is_object() {
                *cur = Value::Object(Map::new());
            }
            cur.as_object_mut().expect("made a map above").entry(k.clone()).or_insert(Value::Null)
        }
        Seg::Key(k) | Seg::Value(k) => {
            if !cur.is_array() {
                *cur = Value::Array(Vec::new());
            }
            let list = cur.as_array_mut().expect("made a list above");
            let found = list.iter().position(|item| match seg {
                Seg::Key(_) => matches_key(item, k),
                _ => canonical(item) == *k,
            });
            let i = match found {
                Some(i) => i,
                None => {
                    list.push(serde_json::from_str(k).unwrap_or(Value::Null));
                    list.len() - 1
                }
            };
            &mut list[i]
        }
    }
}

/// Sets `path` to `val`, creating what is missing on the way. An empty map does not replace a map
/// that is already there (it only says the map exists); a list item or set value only has to
/// exist (its fields are set through their own paths).
pub(crate) fn set(v: &mut Value, path: &[Seg], val: Value) {
    let mut cur = v;
    for seg in path {
        cur = step(cur, seg);
    }
    let keep = match path.last() {
        Some(Seg::Key(_) | Seg::Value(_)) => true,
        _ => matches!((&*cur, &val), (Value::Object(_), Value::Object(m)) if m.is_empty()),
    };
    if !keep {
        *cur = val;
    }
}

/// Removes `path`, then every map (or list) on the way up that became empty, unless `keep` says
/// that path must stay (someone owns it as an empty map). A key field of an item is never
/// removed alone: the item goes as a whole or not at all. `metadata`, `spec` and `status` stay
/// even when empty (Go structs, never omitted); other empty top-level maps (a ConfigMap's
/// `data`) go.
pub(crate) fn remove(v: &mut Value, path: &[Seg], keep: &dyn Fn(&[Seg]) -> bool) {
    let Some((last, parent)) = path.split_last() else { return };
    if let (Seg::Field(f), Some(Seg::Key(k))) = (last, parent.last())
        && key_fields(k).contains(f)
    {
        return;
    }
    let removed = match (get_mut(v, parent), last) {
        (Some(Value::Object(m)), Seg::Field(k)) => m.remove(k).is_some(),
        (Some(Value::Array(list)), Seg::Key(k)) => {
            let before = list.len();
            list.retain(|item| !matches_key(item, k));
            list.len() != before
        }
        (Some(Value::Array(list)), Seg::Value(x)) => {
            let before = list.len();
            list.retain(|item| canonical(item) != *x);
            list.len() != before
        }
        _ => false,
    };
    if !removed {
        return;
    }
    let mut depth = parent.len();
    while depth >= 1 {
        let p = &path[..depth];
        let empty = match get(v, p) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        let top_struct =
            depth == 1 && matches!(&p[0], Seg::Field(f) if ["metadata", "spec", "status"].contains(&f.as_str()));
        if !empty || keep(p) || top_struct {
            break;
        }
        remove_one(v, &path[..depth]);
        depth -= 1;
    }
}

/// Removes exactly the value at `path` (no clean-up).
fn remove_one(v: &mut Value, path: &[Seg]) {
    let Some((last, parent)) = path.split_last() else { return };
    match (get_mut(v, parent), last) {
        (Some(Value::Object(m)), Seg::Field(k)) => {
            m.remove(k);
        }
        (Some(Value::Array(list)), Seg::Key(k)) => list.retain(|item| !matches_key(item, k)),
        (Some(Value::Array(list)), Seg::Value(x)) => list.retain(|item| canonical(item) != *x),
        _ => {}
    }
}

/// Whether the path ends at a list item or set value.
pub(crate) fn is_item(path: &[Seg]) -> bool {
    matches!(path.last(), Some(Seg::Key(_) | Seg::Value(_)))
}

/// One path is a prefix of the other (or they are equal).
pub(crate) fn overlaps(a: &[Seg], b: &[Seg]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// `[name="app",protocol="TCP"]` from a key's canonical JSON.
fn bracket(key: &str) -> String {
    match serde_json::from_str::<Value>(key) {
        Ok(Value::Object(m)) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", canonical(v))).collect();
            format!("[{}]", parts.join(","))
        }
        _ => format!("[{key}]"),
    }
}

fn seg_text(seg: &Seg) -> String {
    match seg {
        Seg::Field(f) => format!(".{f}"),
        Seg::Key(k) => bracket(k),
        Seg::Value(x) => format!("[={x}]"),
    }
}

/// The dotted form the real server prints in conflicts: `.data.Corefile`,
/// `.spec.containers[name="app"].image`.
pub(crate) fn dotted(path: &[Seg]) -> String {
    path.iter().map(seg_text).collect()
}

fn fields_v1_key(seg: &Seg) -> String {
    match seg {
        Seg::Field(f) => format!("f:{f}"),
        Seg::Key(k) => format!("k:{k}"),
        Seg::Value(x) => format!("v:{x}"),
    }
}

/// A field set in the `FieldsV1` format.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            cur = cur
                .entry(fields_v1_key(seg))
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("only maps are inserted");
        }
    }
    // A path that is owned and also has owned children gets a "." entry.
    let mut with_dots = Value::Object(root);
    for path in set {
        let keys: Vec<String> = path.iter().map(fields_v1_key).collect();
        let node = keys.iter().try_fold(&mut with_dots, |cur, k| cur.as_object_mut()?.get_mut(k));
        if let Some(m) = node.and_then(Value::as_object_mut)
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

/// Reads a `FieldsV1` value back into a set. `i:` entries (list items by index, which the
/// server writes for none of the lists modelled here) are ignored.
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
        let seg = if let Some(f) = k.strip_prefix("f:") {
            Seg::Field(f.to_string())
        } else if let Some(key) = k.strip_prefix("k:") {
            Seg::Key(key.to_string())
        } else if let Some(x) = k.strip_prefix("v:") {
            Seg::Value(x.to_string())
        } else {
            continue;
        };
        path.push(seg);
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
        field_path(&s.split('.').collect::<Vec<_>>())
    }

    fn with(mut path: Path, seg: Seg) -> Path {
        path.push(seg);
        path
    }

    #[test]
    fn leaves_skip_identity_and_treat_atomic_lists_as_one_field() {
        let obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "y", "labels": {"a": "1"}, "annotations": {}},
            "data": {"k": "v", "n": null},
            "spec": {"list": [{"a": 1}]},
            "status": {"s": 1}
        });
        let got = leaves(&obj, true, &ListTypes::none());
        let want: FieldSet =
            [p("metadata.labels.a"), p("metadata.annotations"), p("data.k"), p("spec.list")].into_iter().collect();
        assert_eq!(got, want);
        assert!(leaves(&obj, false, &ListTypes::none()).contains(&p("status.s")));
    }

    #[test]
    fn map_list_items_and_set_values_are_fields_of_their_own() {
        let rt = crate::catalog::builtins().iter().find(|t| t.kind == "Service").unwrap();
        let lists = ListTypes::of(rt);
        let obj = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"ports": [{"port": 80, "name": "http"}]}});
        let item = with(p("spec.ports"), Seg::Key(r#"{"port":80,"protocol":"TCP"}"#.into()));
        let want: FieldSet = [
            with(p("metadata.finalizers"), Seg::Value(r#""a""#.into())),
            with(p("metadata.finalizers"), Seg::Value(r#""b""#.into())),
            item.clone(),
            with(item.clone(), Seg::Field("port".into())),
            with(item.clone(), Seg::Field("name".into())),
        ]
        .into_iter()
        .collect();
        assert_eq!(leaves(&obj, true, &lists), want);
        // The item is found although it leaves its defaulted key (protocol) out.
        assert_eq!(get(&obj, &item).unwrap()["name"], "http");
        let v1 = to_fields_v1(&want);
        assert_eq!(
            v1["f:spec"]["f:ports"],
            json!({r#"k:{"port":80,"protocol":"TCP"}"#: {".": {}, "f:name": {}, "f:port": {}}})
        );
        assert_eq!(from_fields_v1(&v1), want);
        assert_eq!(dotted(&with(item, Seg::Field("name".into()))), r#".spec.ports[port=80,protocol="TCP"].name"#);

        let bad = json!({"spec": {"ports": [{"name": "a"}, {"port": 1}, {"port": 1, "protocol": "TCP"}]}});
        assert_eq!(
            list_problems(&bad, &lists),
            [
                r#".spec.ports: element 0: associative list with keys has an element that omits key field "port" (and doesn't have default value)"#,
                r#".spec.ports: duplicate entries for key [port=1,protocol="TCP"]"#,
            ]
        );
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
    fn set_and_remove_prune_empty_maps_and_keep_items_whole() {
        let mut v = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": {"y": 1}}});
        set(&mut v, &p("spec.x.z"), json!(2));
        set(&mut v, &p("spec.x"), json!({}));
        assert_eq!(v["spec"]["x"], json!({"y": 1, "z": 2}));
        remove(&mut v, &p("metadata.labels.a"), &|_| false);
        assert_eq!(v["metadata"], json!({}));
        remove(&mut v, &p("spec.x.y"), &|_| false);
        remove(&mut v, &p("spec.x.z"), &|q| q == p("spec.x").as_slice());
        assert_eq!(v["spec"], json!({"x": {}}));

        // Items: created from their key, never stripped of it, removed whole.
        let item = with(p("spec.env"), Seg::Key(r#"{"name":"A"}"#.into()));
        set(&mut v, &item, json!({"name": "A", "value": "1"}));
        set(&mut v, &with(item.clone(), Seg::Field("value".into())), json!("1"));
        assert_eq!(v["spec"]["env"], json!([{"name": "A", "value": "1"}]));
        remove(&mut v, &with(item.clone(), Seg::Field("name".into())), &|_| false);
        assert_eq!(v["spec"]["env"], json!([{"name": "A", "value": "1"}]), "a key field stays with its item");
        remove(&mut v, &item, &|_| false);
        assert!(v["spec"].get("env").is_none(), "the emptied list goes");
    }
}
