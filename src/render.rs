//! Human text rendered from the same documents `-o json` prints.

use std::fmt::Write;

use matih_plans::{Action, AttrChange, PartChange, Plan, Reason, Value};
use serde::Serialize;

/// Colour on or off; decided once from the terminal, `NO_COLOR` and `--no-color`.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
    fn action(&self, a: Action) -> String {
        let code = match a {
            Action::Create => "32",
            Action::Update => "33",
            Action::Delete => "31",
            Action::Replace | Action::CreateBeforeDestroy => "35",
            Action::NoOp => "0",
        };
        self.paint(code, a.symbol())
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// Strings longer than this (certificates, tokens' public parts) are shortened in the text plan;
/// `-o json` carries them whole.
const LONG_STRING: usize = 96;

fn show_json(v: &serde_json::Value) -> String {
    fn shorten(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) if s.chars().count() > LONG_STRING => {
                let head: String = s.chars().take(32).collect();
                serde_json::Value::String(format!("{head}… ({} characters)", s.chars().count()))
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(shorten).collect()),
            serde_json::Value::Object(m) => {
                serde_json::Value::Object(m.iter().map(|(k, x)| (k.clone(), shorten(x))).collect())
            }
            other => other.clone(),
        }
    }
    inline(&shorten(v))
}

/// One line of JSON, spaced like the rest of the plan, keys sorted: `{"k": "v", "n": [1, 2]}`.
fn inline(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        serde_json::Value::Object(m) => {
            let sorted: std::collections::BTreeMap<&String, &serde_json::Value> = m.iter().collect();
            let entries: Vec<String> =
                sorted.iter().map(|(k, x)| format!("{}: {}", serde_json::Value::from(k.as_str()), inline(x))).collect();
            format!("{{{}}}", entries.join(", "))
        }
        other => other.to_string(),
    }
}

/// The lines that differ between two texts, as a unified diff shows them (`-` old, `+` new,
/// one unchanged line of context before each run of changes, `…` where lines are left out);
/// `None` when the texts are too long to compare line by line.
fn line_diff(before: &str, after: &str) -> Option<Vec<String>> {
    let (a, b): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    if a.len() * b.len() > 250_000 {
        return None;
    }
    // Longest common subsequence, then walk it.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let mut out = Vec::new();
    let mut shown_to: Option<usize> = None;
    for (n, (op, line)) in ops.iter().enumerate() {
        if *op == ' ' {
            continue;
        }
        if shown_to.is_none_or(|l| l + 1 < n) {
            let context = (n > 0 && ops[n - 1].0 == ' ').then(|| n - 1);
            let first_shown = context.unwrap_or(n);
            if shown_to.map_or(first_shown > 0, |l| l + 1 < first_shown) {
                out.push("  …".to_string());
            }
            if let Some(c) = context {
                out.push(format!("  {}", ops[c].1));
            }
        }
        out.push(format!("{op} {line}"));
        shown_to = Some(n);
    }
    if shown_to.is_some_and(|l| l + 1 < ops.len()) {
        out.push("  …".to_string());
    }
    Some(out)
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Known(j) => show_json(j),
        Value::Unknown => "(known after apply)".into(),
        Value::Ref(r) => format!("{}.{}", r.addr, r.attr),
        Value::List(items) => format!("[{}]", items.iter().map(show_value).collect::<Vec<_>>().join(", ")),
        // The same style as a known map, with unknown values said as such.
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", serde_json::Value::from(k.as_str()), show_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn attr_lines(out: &mut String, attrs: &[AttrChange], indent: &str, creating: bool) {
    let width = attrs.iter().map(|a| a.path.len()).max().unwrap_or(0);
    for a in attrs {
        // A multi-line text that changed (a Corefile): the lines that differ.
        if let (Some(serde_json::Value::String(b)), Some(Value::Known(serde_json::Value::String(n))), false) =
            (&a.before, &a.after, creating)
            && (b.contains('\n') || n.contains('\n'))
            && let Some(lines) = line_diff(b, n)
        {
            let _ = writeln!(out, "{indent}{}:", a.path);
            for l in lines {
                let _ = writeln!(out, "{indent}    {l}");
            }
            continue;
        }
        let after = a.after.as_ref().map(show_value).unwrap_or_else(|| "(removed)".into());
        let line = match (&a.before, creating) {
            (_, true) => format!("{:width$} = {after}", a.path),
            (Some(b), false) => format!("{}: {} → {after}", a.path, show_json(b)),
            (None, false) => format!("{}: (absent) → {after}", a.path),
        };
        let _ = write!(out, "{indent}{line}");
        if a.forces_replacement {
            out.push_str("  # forces replacement");
        }
        out.push('\n');
    }
}

/// A resource's parts (a Kubernetes add-on's objects), one line each; an update's changed
/// fields under it. Parts from an upstream release are grouped under it.
fn part_lines(out: &mut String, style: Style, parts: &[PartChange], indent: &str) {
    let mut source: Option<&str> = None;
    for p in parts {
        if p.source.as_deref() != source {
            source = p.source.as_deref();
            if let Some(s) = source {
                let n = parts.iter().filter(|q| q.source.as_deref() == Some(s)).count();
                let _ = writeln!(out, "{indent}from {s} ({n} object{}):", if n == 1 { "" } else { "s" });
            }
        }
        let inner = if source.is_some() { format!("{indent}  ") } else { indent.to_string() };
        let _ = write!(out, "{inner}{} {}", style.action(p.action), p.name);
        if let Some(n) = &p.note {
            let _ = write!(out, "  # {n}");
        }
        out.push('\n');
        attr_lines(out, &p.fields, &format!("{inner}    "), false);
    }
}

fn reason_text(r: &Reason) -> Option<String> {
    Some(match r {
        Reason::New | Reason::Unchanged | Reason::SpecChanged | Reason::Destroy => return None,
        Reason::DeletedOutside => "deleted outside matih-infra".into(),
        Reason::DriftRepair => "changed outside matih-infra".into(),
        Reason::ForcedReplace { attributes } => format!("{} cannot change in place", attributes.join(", ")),
        Reason::RemovedFromSpec => "no longer in the platform spec".into(),
        Reason::Deposed => "old instance left by an earlier replacement".into(),
    })
}

/// The plan as people read it.
pub fn plan_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if !plan.drift.is_empty() {
        out.push_str(&style.bold("Changed outside matih-infra since the last apply:"));
        out.push('\n');
        for d in &plan.drift {
            if d.deleted {
                let _ = writeln!(out, "  {} {} (deleted)", style.action(Action::Delete), d.address);
            } else {
                let _ = writeln!(out, "  {} {}", style.action(Action::Update), d.address);
                attr_lines(&mut out, &d.attributes, "      ", false);
                part_lines(&mut out, style, &d.parts, "      ");
            }
        }
        out.push('\n');
    }
    let changes: Vec<_> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if !plan.has_changes() {
        out.push_str("No changes. The infrastructure matches the platform spec.\n");
    } else {
        let _ = writeln!(
            out,
            "{}",
            style.bold(&format!(
                "matih-infra will {} ({}, {}):",
                if plan.operation == matih_plans::Operation::Destroy { "destroy" } else { "make these changes" },
                plan.cloud,
                plan.environment
            ))
        );
        for c in &changes {
            let mut head = format!("{:>3} {}", style.action(c.action), c.address);
            if c.deposed {
                head.push_str(" (deposed)");
            }
            if c.protected && matches!(c.action, Action::Delete | Action::Replace | Action::CreateBeforeDestroy) {
                head.push_str(" [protected]");
            }
            if let Some(r) = reason_text(&c.reason) {
                let _ = write!(head, "  # {r}");
            }
            let _ = writeln!(out, "{head}");
            attr_lines(&mut out, &c.attributes, "      ", c.action == Action::Create);
            part_lines(&mut out, style, &c.parts, "      ");
        }
        let outputs: Vec<_> = plan.outputs.iter().filter(|o| o.action != Action::NoOp).collect();
        if !outputs.is_empty() {
            out.push_str("\nOutputs:\n");
            for o in outputs {
                let v = match (&o.after, o.sensitive, o.action) {
                    (_, _, Action::Delete) => String::new(),
                    (_, true, _) => " = (sensitive)".into(),
                    (Some(v), _, _) => format!(" = {}", show_value(v)),
                    (None, _, _) => String::new(),
                };
                let _ = writeln!(out, "{:>3} {}{v}", style.action(o.action), o.name);
            }
        }
    }
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "\nPlan: {} to create, {} to update, {} to replace, {} to delete; {} unchanged.",
        s.create, s.update, s.replace, s.delete, s.unchanged
    );
    if !plan.orphans.is_empty() {
        out.push('\n');
        out.push_str(&style.bold(&format!(
            "Orphans: {} resource(s) carry this platform's owner tags but are not in state:",
            plan.orphans.len()
        )));
        out.push('\n');
        for o in &plan.orphans {
            let at = o.address.as_ref().map(|a| format!(" (tagged {a})")).unwrap_or_default();
            let fix = match (&o.remedy, &o.address) {
                (matih_plans::Remedy::Import, Some(a)) => format!("adopt it: matih-infra state import '{a}' {}", o.id),
                _ => "delete it: matih-infra destroy --prune-orphans".to_string(),
            };
            let _ = writeln!(out, "  {} {}{at}: {fix}", o.rtype, o.id);
        }
    }
    if !plan.blocked.is_empty() {
        out.push('\n');
        for b in &plan.blocked {
            let why = if b.forced_by.is_empty() {
                String::new()
            } else {
                format!(" because {} changed", b.forced_by.join(", "))
            };
            let _ = writeln!(
                out,
                "{} {} would be {}d{why}: it is protected.",
                style.paint("31", "Blocked:"),
                b.address,
                b.action.verb()
            );
        }
    }
    out
}

/// How one resource ended in an apply (the `-o json` apply document).
#[derive(Debug, Serialize)]
pub struct ResourceResult {
    pub address: String,
    pub action: Action,
    pub phase: &'static str,
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// When its work started, in milliseconds from the start of the apply's walk, and how long it
    /// took (resources written in one batch share both); absent for what never ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
}

/// What an apply's calls cost beyond the calls themselves.
#[derive(Debug, Default, Serialize)]
pub struct ApplyStatistics {
    /// Calls that repeated an earlier attempt (throttled, server error, no answer), by
    /// `service:Operation`.
    pub retries: matih_plans::ApiCalls,
    /// Creates whose answer was lost (or that met "already exists") and that found their
    /// resource and adopted it instead of creating it twice, by resource type.
    pub reconciled: matih_plans::ApiCalls,
    /// How each provider retries.
    pub retry_budget: Vec<String>,
    pub warnings: Vec<String>,
    /// State writes this apply made (work finishing together shares one).
    pub state_writes: u64,
}

/// The apply result document.
#[derive(Debug, Serialize)]
pub struct ApplyDoc {
    pub format_version: u32,
    pub operation: matih_plans::Operation,
    /// `complete`, `failed` or `interrupted`.
    pub outcome: &'static str,
    pub state_serial: u64,
    /// What the plan proposed.
    pub summary: matih_plans::Summary,
    pub resources: Vec<ResourceResult>,
    pub outputs: serde_json::Map<String, serde_json::Value>,
    /// API calls made by this apply, by `service:Operation`.
    pub api_calls: matih_plans::ApiCalls,
    /// Retries, reconciled creates, the retry budget and providers' warnings.
    pub statistics: ApplyStatistics,
    /// The tenant a `tenant add|remove --apply` worked on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<serde_json::Value>,
}

pub fn apply_text(doc: &ApplyDoc) -> String {
    let mut out = String::new();
    let count = |r: &str| doc.resources.iter().filter(|x| x.result == r).count();
    for r in doc.resources.iter().filter(|r| r.result == "failed") {
        let _ = writeln!(out, "failed: {} ({}): {}", r.address, r.action.verb(), r.error.as_deref().unwrap_or(""));
    }
    for r in doc.resources.iter().filter(|r| r.result == "skipped") {
        let _ = writeln!(out, "skipped: {} (upstream {} failed)", r.address, r.because.as_deref().unwrap_or("?"));
    }
    let _ = writeln!(
        out,
        "{} {}: {} done, {} failed, {} skipped, {} not started.",
        if doc.operation == matih_plans::Operation::Destroy { "Destroy" } else { "Apply" },
        doc.outcome,
        count("done"),
        count("failed"),
        count("skipped"),
        count("not-started")
    );
    if !doc.outputs.is_empty() {
        out.push_str("\nOutputs:\n");
        for (k, v) in &doc.outputs {
            let _ = writeln!(out, "  {k} = {}", show_json(v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_is_shown_with_a_line_of_context() {
        let before = "a\nb\nc\nd\ne\nf\n";
        let after = "a\nb\nC\nd\ne\nf\ng\n";
        assert_eq!(line_diff(before, after).unwrap(), ["  …", "  b", "- c", "+ C", "  …", "  f", "+ g"]);
        assert_eq!(line_diff("x\n", "y\n").unwrap(), ["- x", "+ y"]);
        assert_eq!(line_diff("x\ny\n", "x\n").unwrap(), ["  x", "- y"]);
    }

    #[test]
    fn maps_render_in_one_style_known_or_not() {
        let known = show_value(&Value::Known(serde_json::json!({"cloud": "eks", "a": [1, 2]})));
        assert_eq!(known, r#"{"a": [1, 2], "cloud": "eks"}"#);
        let partly = Value::Map([("cloud".to_string(), Value::str("eks")), ("id".to_string(), Value::Unknown)].into());
        assert_eq!(show_value(&partly), r#"{"cloud": "eks", "id": (known after apply)}"#);
    }
}
