//! Human text rendered from the same documents `-o json` prints.

use std::fmt::Write;

use matih_plans::{Action, AttrChange, Plan, Reason, Value};
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
    serde_json::to_string(&shorten(v)).unwrap_or_default()
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Known(j) => show_json(j),
        Value::Unknown => "(known after apply)".into(),
        Value::Ref(r) => format!("{}.{}", r.addr, r.attr),
        Value::List(items) => format!("[{}]", items.iter().map(show_value).collect::<Vec<_>>().join(", ")),
        Value::Map(m) => {
            format!("{{{}}}", m.iter().map(|(k, v)| format!("{k}: {}", show_value(v))).collect::<Vec<_>>().join(", "))
        }
    }
}

fn attr_lines(out: &mut String, attrs: &[AttrChange], indent: &str, creating: bool) {
    let width = attrs.iter().map(|a| a.path.len()).max().unwrap_or(0);
    for a in attrs {
        let after = a.after.as_ref().map(show_value).unwrap_or_else(|| "(removed)".into());
        let line = match (&a.before, creating) {
            (Some(b), false) => format!("{}: {} → {after}", a.path, show_json(b)),
            _ => format!("{:width$} = {after}", a.path),
        };
        let _ = write!(out, "{indent}{line}");
        if a.forces_replacement {
            out.push_str("  # forces replacement");
        }
        out.push('\n');
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
