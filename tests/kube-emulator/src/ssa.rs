//! Field ownership: `metadata.managedFields`, server-side apply merges and conflicts, and the
//! ownership an update (PUT, merge patch, a controller's write) takes.
//!
//! Rules, after the real server's structured-merge-diff:
//! - An apply owns exactly the fields of its config. Setting a field another manager owns to a
//!   different value is a conflict (unless forced: then ownership moves); the same value is shared.
//! - Fields the applier owned last time and no longer sends are removed, unless someone else owns them.
//! - An update takes every field it changes from everybody else and never conflicts.
//!
//! Deliberately simpler than the real thing: every list is atomic (one field, compared whole), so
//! two managers cannot own different items of `containers`; `apiVersion` is not part of an entry's
//! identity (one entry per manager, operation and subresource). Validation, defaults and the write
//! itself belong to the caller.

use serde_json::{Map, Value, json};

use crate::fields::{self, FieldSet, Path};

/// `Apply` or `Update`, as in `managedFields[].operation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Apply,
    Update,
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub subresource: Option<String>,
    pub api_version: String,
    pub time: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: Operation, subresource: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == subresource
    }

    /// How the real server names a manager in a conflict: `"eks" using v1` for an update,
    /// `"helm"` for an apply.
    pub(crate) fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// A field an apply would take from another manager.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Conflict {
    pub path: Path,
    /// The other manager, described as in [`Entry::describe`].
    pub manager: String,
}

/// The entries in an object's `metadata.managedFields` (entries that do not parse are dropped).
pub(crate) fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj.pointer("/metadata/managedFields").and_then(Value::as_array) else { return Vec::new() };
    list.iter()
        .filter_map(|e| {
            let operation = match e.get("operation")?.as_str()? {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return None,
            };
            Some(Entry {
                manager: e.get("manager").and_then(Value::as_str).unwrap_or_default().to_string(),
                operation,
                subresource: e.get("subresource").and_then(Value::as_str).map(String::from),
                api_version: e.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string(),
                time: e.get("time").and_then(Value::as_str).map(String::from),
                fields: e.get("fieldsV1").map(fields::from_fields_v1).unwrap_or_default(),
            })
        })
        .collect()
}

/// Writes `entries` as `metadata.managedFields` (removing the key when there are none).
pub(crate) fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    if entries.is_empty() {
        meta.remove("managedFields");
        return;
    }
    let list = entries
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), json!(e.manager));
            m.insert(
                "operation".into(),
                json!(match e.operation {
                    Operation::Apply => "Apply",
                    Operation::Update => "Update",
                }),
            );
            m.insert("apiVersion".into(), json!(e.api_version));
            if let Some(t) = &e.time {
                m.insert("time".into(), json!(t));
            }
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), fields::to_fields_v1(&e.fields));
            if let Some(s) = &e.subresource {
                m.insert("subresource".into(), json!(s));
            }
            Value::Object(m)
        })
        .collect();
    meta.insert("managedFields".into(), Value::Array(list));
}

/// Drops owned fields that no longer exist in `obj`, and entries left with none.
pub(crate) fn prune(obj: &mut Value) {
    let mut entries = read_entries(obj);
    for e in &mut entries {
        e.fields.retain(|p| fields::get(obj, p).is_some());
    }
    entries.retain(|e| !e.fields.is_empty());
    write_entries(obj, &entries);
}

/// What an apply is asked to do.
pub(crate) struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    pub force: bool,
    /// The status is not the applier's (a main-resource apply of a kind with a status subresource).
    pub skip_status: bool,
    pub now: &'a str,
}

/// Server-side apply of `config` (already stripped of server-set fields and nulls) onto `live`
/// (the stored object, or a skeleton holding only identity when creating). Returns the merged
/// object with its new `managedFields`, or the conflicts.
pub(crate) fn apply(live: &Value, config: &Value, req: &ApplyRequest<'_>) -> Result<Value, Vec<Conflict>> {
    let mut entries = read_entries(live);
    let mine = entries.iter().position(|e| e.is(req.manager, Operation::Apply, req.subresource));
    let applied = fields::leaves(config, req.skip_status);
    let previous = mine.map(|i| entries[i].fields.clone()).unwrap_or_default();

    // Conflicts: a field another manager owns that this config would change.
    let mut conflicts: Vec<(usize, Path)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == mine {
            continue;
        }
        for q in &e.fields {
            for s in applied.iter().filter(|s| fields::overlaps(q, s)) {
                let conflict = if q == s {
                    match (fields::get(live, s), fields::get(config, s)) {
                        (Some(Value::Object(_)), Some(Value::Object(_))) => false,
                        (Some(l), Some(c)) => l != c,
                        _ => false,
                    }
                } else if q.len() > s.len() {
                    // The config puts a non-map (or an empty map, which changes nothing) above q.
                    !matches!(fields::get(config, s), Some(Value::Object(m)) if m.is_empty())
                } else {
                    // q owns a value above s; only a map there can take a new key.
                    !matches!(fields::get(live, q), None | Some(Value::Object(_)))
                };
                if conflict && !conflicts.contains(&(i, q.clone())) {
                    conflicts.push((i, q.clone()));
                }
            }
        }
    }
    if !conflicts.is_empty() {
        if !req.force {
            return Err(conflicts
                .into_iter()
                .map(|(i, path)| Conflict { path, manager: entries[i].describe() })
                .collect());
        }
        for (i, q) in &conflicts {
            entries[*i].fields.remove(q);
        }
    }

    let mut merged = live.clone();
    // Fields dropped from this manager's config go, unless somebody else holds them.
    for r in previous.difference(&applied) {
        let held = entries
            .iter()
            .enumerate()
            .any(|(i, e)| Some(i) != mine && e.fields.iter().any(|f| f.len() >= r.len() && f[..r.len()] == r[..]));
        if !held {
            let owned_map = |p: &[String]| {
                applied.iter().any(|a| a.as_slice() == p) || entries.iter().any(|e| e.fields.iter().any(|f| f == p))
            };
            fields::remove(&mut merged, r, &owned_map);
        }
    }
    for s in &applied {
        let v = fields::get(config, s).cloned().unwrap_or(Value::Null);
        fields::set(&mut merged, s, v);
    }

    let content_changed = without_managed(&merged) != without_managed(live);
    match mine {
        Some(i) => {
            let e = &mut entries[i];
            if e.fields != applied || content_changed || e.api_version != req.api_version {
                e.time = Some(req.now.to_string());
            }
            e.fields = applied;
            e.api_version = req.api_version.to_string();
        }
        None => entries.push(Entry {
            manager: req.manager.to_string(),
            operation: Operation::Apply,
            subresource: req.subresource.map(String::from),
            api_version: req.api_version.to_string(),
            time: Some(req.now.to_string()),
            fields: applied,
        }),
    }
    write_entries(&mut merged, &entries);
    prune(&mut merged);
    Ok(merged)
}

/// An update by `manager` turned `old` (None when creating) into `new`: `manager` takes every field
/// that changed, nobody else keeps them. `entries` are the ownership before the write; the result is
/// written into `new`.
pub(crate) fn record_update(
    old: Option<&Value>,
    entries: Vec<Entry>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let mut entries = entries;
    let new_leaves = fields::leaves(new, false);
    let old_leaves = old.map(|o| fields::leaves(o, false)).unwrap_or_default();
    let differs = |p: &Path| match old {
        Some(o) => fields::get(o, p) != fields::get(new, p),
        None => true,
    };
    let changed: FieldSet = new_leaves.iter().chain(old_leaves.iter()).filter(|p| differs(p)).cloned().collect();
    if changed.is_empty() {
        write_entries(new, &entries);
        return;
    }
    let taken: FieldSet = changed.intersection(&new_leaves).cloned().collect();
    for e in &mut entries {
        if e.is(manager, Operation::Update, subresource) {
            continue;
        }
        e.fields.retain(|f| !changed.iter().any(|c| f.len() >= c.len() && f[..c.len()] == c[..]));
    }
    match entries.iter_mut().find(|e| e.is(manager, Operation::Update, subresource)) {
        Some(e) => {
            e.fields.extend(taken);
            e.time = Some(now.to_string());
            e.api_version = api_version.to_string();
        }
        None if !taken.is_empty() => entries.push(Entry {
            manager: manager.to_string(),
            operation: Operation::Update,
            subresource: subresource.map(String::from),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            fields: taken,
        }),
        None => {}
    }
    write_entries(new, &entries);
    prune(new);
}

/// The object without `metadata.managedFields`, for "did anything change" comparisons.
pub(crate) fn without_managed(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(manager: &'a str, force: bool) -> ApplyRequest<'a> {
        ApplyRequest { manager, api_version: "v1", subresource: None, force, skip_status: true, now: "t" }
    }

    fn owned(obj: &Value, manager: &str) -> FieldSet {
        read_entries(obj).into_iter().filter(|e| e.manager == manager).flat_map(|e| e.fields).collect()
    }

    fn p(s: &str) -> Path {
        s.split('.').map(String::from).collect()
    }

    #[test]
    fn apply_conflicts_on_a_changed_field_but_shares_an_equal_one() {
        let base = json!({"metadata": {"name": "c"}});
        let a = apply(&base, &json!({"data": {"x": "1", "y": "2"}}), &req("a", false)).unwrap();
        let err = apply(&a, &json!({"data": {"x": "1", "y": "3"}}), &req("b", false)).unwrap_err();
        assert_eq!(err, vec![Conflict { path: p("data.y"), manager: "\"a\"".into() }]);
        let shared = apply(&a, &json!({"data": {"x": "1"}}), &req("b", false)).unwrap();
        assert!(owned(&shared, "a").contains(&p("data.x")) && owned(&shared, "b").contains(&p("data.x")));
        let forced = apply(&a, &json!({"data": {"y": "3"}}), &req("b", true)).unwrap();
        assert_eq!(forced["data"]["y"], "3");
        assert!(!owned(&forced, "a").contains(&p("data.y")));
    }

    #[test]
    fn dropped_fields_are_removed_unless_someone_else_owns_them() {
        let base = json!({"metadata": {"name": "c"}});
        let a = apply(&base, &json!({"data": {"x": "1", "y": "2"}}), &req("a", false)).unwrap();
        let b = apply(&a, &json!({"data": {"x": "1"}}), &req("b", false)).unwrap();
        let a2 = apply(&b, &json!({"metadata": {"labels": {"l": "v"}}}), &req("a", false)).unwrap();
        assert_eq!(a2["data"], json!({"x": "1"}), "y dropped, x still owned by b");
        assert_eq!(owned(&a2, "a"), [p("metadata.labels.l")].into_iter().collect());
    }

    #[test]
    fn update_takes_ownership_without_conflict() {
        let base = json!({"metadata": {"name": "c"}});
        let a = apply(&base, &json!({"data": {"x": "1"}}), &req("a", false)).unwrap();
        let mut edited = a.clone();
        edited["data"]["x"] = json!("2");
        record_update(Some(&a), read_entries(&a), &mut edited, "kubectl-edit", "v1", None, "t");
        assert_eq!(owned(&edited, "kubectl-edit"), [p("data.x")].into_iter().collect());
        assert!(owned(&edited, "a").is_empty());
        let err = apply(&edited, &json!({"data": {"x": "1"}}), &req("a", false)).unwrap_err();
        assert_eq!(err[0].manager, "\"kubectl-edit\" using v1");
    }
}
