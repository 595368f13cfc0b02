//! Field ownership: `metadata.managedFields`, server-side apply merges and conflicts, and the
//! ownership an update (PUT, merge patch, a controller's write) takes.
//!
//! Rules, after the real server's structured-merge-diff:
//! - An apply owns exactly the fields of its config. Setting a field another manager owns to a
//!   different value is a conflict (unless forced: then ownership moves); the same value is shared.
//! - Fields the applier owned last time and no longer sends are removed, unless someone else owns them.
//! - An update takes every field it changes from everybody else and never conflicts.
//!
//! - Lists merge by their list type ([`crate::lists`]): items of a `map` list and values of a
//!   `set` are fields of their own, so two managers own different items of `containers` or `env`,
//!   and an apply removes only the items it stopped sending that nobody else owns. An atomic
//!   list is one field, compared and replaced whole. New items go after the live ones.
//!
//! Deliberately simpler than the real thing: `apiVersion` is not part of an entry's identity
//! (one entry per manager, operation and subresource). Validation, defaults and the write itself
//! belong to the caller.

use serde_json::{Map, Value, json};

use crate::fields::{self, FieldSet, Path};
use crate::lists::ListTypes;

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

/// Why an apply was refused.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ApplyError {
    /// Fields other managers own that it would change (without `force`).
    Conflicts(Vec<Conflict>),
    /// Lists the configuration gets wrong (an item without its key, duplicates), as the server
    /// words them.
    Lists(Vec<String>),
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
    /// The kind's list types.
    pub lists: &'a ListTypes,
}

/// Server-side apply of `config` (already stripped of server-set fields and nulls) onto `live`
/// (the stored object, or a skeleton holding only identity when creating). Returns the merged
/// object with its new `managedFields`, or the conflicts.
pub(crate) fn apply(live: &Value, config: &Value, req: &ApplyRequest<'_>) -> Result<Value, ApplyError> {
    let problems = fields::list_problems(config, req.lists);
    if !problems.is_empty() {
        return Err(ApplyError::Lists(problems));
    }
    let mut entries = read_entries(live);
    let mine = entries.iter().position(|e| e.is(req.manager, Operation::Apply, req.subresource));
    let applied = fields::leaves(config, req.skip_status, req.lists);
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
                    // An item is no value of its own: its fields decide.
                    !fields::is_item(s) && !matches!(fields::get(config, s), Some(Value::Object(m)) if m.is_empty())
                } else {
                    // q owns a value above s; only a map (or a list item) there can take a new key.
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
            return Err(ApplyError::Conflicts(
                conflicts.into_iter().map(|(i, path)| Conflict { path, manager: entries[i].describe() }).collect(),
            ));
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
            let owned_map = |p: &[fields::Seg]| {
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

/// Who writes an update.
pub(crate) struct Updater<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    pub now: &'a str,
    pub lists: &'a ListTypes,
}

/// An update by `u.manager` turned `old` (None when creating) into `new`: it takes every field
/// that changed, nobody else keeps them. A list item changes when it appears or goes; a change
/// inside it is a change of that field alone. `entries` are the ownership before the write; the
/// result is written into `new`.
pub(crate) fn record_update(old: Option<&Value>, entries: Vec<Entry>, new: &mut Value, u: &Updater<'_>) {
    let (manager, api_version, subresource, now) = (u.manager, u.api_version, u.subresource, u.now);
    let mut entries = entries;
    let new_leaves = fields::leaves(new, false, u.lists);
    let old_leaves = old.map(|o| fields::leaves(o, false, u.lists)).unwrap_or_default();
    let differs = |p: &Path| match old {
        Some(o) if fields::is_item(p) => fields::get(o, p).is_some() != fields::get(new, p).is_some(),
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
    use crate::fields::{Seg, field_path};

    fn none() -> &'static ListTypes {
        static NONE: std::sync::OnceLock<ListTypes> = std::sync::OnceLock::new();
        NONE.get_or_init(ListTypes::none)
    }

    fn deployment() -> &'static ListTypes {
        static D: std::sync::OnceLock<ListTypes> = std::sync::OnceLock::new();
        D.get_or_init(|| ListTypes::of(crate::catalog::builtins().iter().find(|t| t.kind == "Deployment").unwrap()))
    }

    fn req<'a>(manager: &'a str, force: bool) -> ApplyRequest<'a> {
        ApplyRequest {
            manager,
            api_version: "v1",
            subresource: None,
            force,
            skip_status: true,
            now: "t",
            lists: none(),
        }
    }

    fn update(old: &Value, new: &mut Value, manager: &str, lists: &ListTypes) {
        let u = Updater { manager, api_version: "v1", subresource: None, now: "t", lists };
        record_update(Some(old), read_entries(old), new, &u);
    }

    fn conflicts(e: ApplyError) -> Vec<Conflict> {
        match e {
            ApplyError::Conflicts(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn owned(obj: &Value, manager: &str) -> FieldSet {
        read_entries(obj).into_iter().filter(|e| e.manager == manager).flat_map(|e| e.fields).collect()
    }

    fn p(s: &str) -> Path {
        field_path(&s.split('.').collect::<Vec<_>>())
    }

    #[test]
    fn apply_conflicts_on_a_changed_field_but_shares_an_equal_one() {
        let base = json!({"metadata": {"name": "c"}});
        let a = apply(&base, &json!({"data": {"x": "1", "y": "2"}}), &req("a", false)).unwrap();
        let err = conflicts(apply(&a, &json!({"data": {"x": "1", "y": "3"}}), &req("b", false)).unwrap_err());
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
        update(&a, &mut edited, "kubectl-edit", none());
        assert_eq!(owned(&edited, "kubectl-edit"), [p("data.x")].into_iter().collect());
        assert!(owned(&edited, "a").is_empty());
        let err = conflicts(apply(&edited, &json!({"data": {"x": "1"}}), &req("a", false)).unwrap_err());
        assert_eq!(err[0].manager, "\"kubectl-edit\" using v1");
    }

    /// Another manager's env var in a container the applier owns survives the applier's next
    /// apply, is not the applier's, and the applier's own items still come and go.
    #[test]
    fn map_list_items_belong_to_whoever_set_them() {
        let d = deployment();
        let r = |manager, force| ApplyRequest { lists: d, ..req(manager, force) };
        let config = |env: Value| json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:1", "env": env}]}}}});
        let base = json!({"metadata": {"name": "d"}});
        let mine = apply(&base, &config(json!([{"name": "A", "value": "1"}])), &r("tool", false)).unwrap();

        // An injector adds B to the same container, and a sidecar.
        let mut injected = mine.clone();
        let spec = &mut injected["spec"]["template"]["spec"];
        spec["containers"][0]["env"].as_array_mut().unwrap().push(json!({"name": "B", "value": "2"}));
        spec["containers"].as_array_mut().unwrap().push(json!({"name": "sidecar", "image": "s:1"}));
        update(&mine, &mut injected, "injector", d);
        assert_eq!(owned(&injected, "tool"), owned(&mine, "tool"), "the tool's fields are untouched");
        let container = Seg::Key(r#"{"name":"app"}"#.into());
        let b = [
            p("spec.template.spec.containers"),
            vec![container.clone()],
            p("env"),
            vec![Seg::Key(r#"{"name":"B"}"#.into())],
        ]
        .concat();
        assert!(owned(&injected, "injector").contains(&b), "{:?}", owned(&injected, "injector"));

        // The tool applies again (forced, as it does), changing A and adding C: B and the sidecar stay.
        let again = config(json!([{"name": "A", "value": "9"}, {"name": "C", "value": "3"}]));
        let merged = apply(&injected, &again, &r("tool", true)).unwrap();
        let names = |o: &Value, path: &str| -> Vec<String> {
            fields::get(o, &p(path))
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&merged, "spec.template.spec.containers"), ["app", "sidecar"]);
        let env = &merged["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(
            env,
            &json!([{"name": "A", "value": "9"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}])
        );

        // Dropping A removes it; B (the injector's) stays even when the tool sends no env at all.
        let bare = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}}});
        let dropped = apply(&merged, &bare, &r("tool", true)).unwrap();
        let env = &dropped["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env, &json!([{"name": "B", "value": "2"}]));
        // The injector's item conflicts with a different value from the tool, unless forced.
        let clash = config(json!([{"name": "B", "value": "x"}]));
        let err = conflicts(apply(&dropped, &clash, &r("tool", false)).unwrap_err());
        assert_eq!(err[0].manager, "\"injector\" using v1");
        assert_eq!(fields::dotted(&err[0].path), r#".spec.template.spec.containers[name="app"].env[name="B"].value"#);
    }

    #[test]
    fn an_item_without_its_key_is_refused() {
        let d = deployment();
        let r = ApplyRequest { lists: d, ..req("tool", false) };
        let config = json!({"spec": {"template": {"spec": {"containers": [{"image": "a:1"}]}}}});
        let Err(ApplyError::Lists(problems)) = apply(&json!({"metadata": {"name": "d"}}), &config, &r) else {
            panic!("accepted")
        };
        assert!(problems[0].contains("omits key field \"name\""), "{problems:?}");
    }
}
