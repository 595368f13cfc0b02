//! Failure classes, exit codes, and how errors are printed (`error:` / `caused by:` / `hint:`).

use std::fmt;

/// Exit codes. Scripts depend on these; change them only with a major version.
pub mod code {
    pub const OK: i32 = 0;
    /// Bad platform spec, refused state, cloud API error, failed apply.
    pub const USER: i32 = 1;
    /// `plan --detailed-exitcode`: the plan has changes.
    pub const CHANGES: i32 = 2;
    /// The replacement guard blocked the plan.
    pub const BLOCKED: i32 = 3;
    /// Bad command-line arguments (EX_USAGE).
    pub const USAGE: i32 = 64;
    /// A bug in matih-infra (EX_SOFTWARE).
    pub const UNEXPECTED: i32 = 70;
    /// Interrupted by Ctrl-C.
    pub const INTERRUPTED: i32 = 130;
}

/// How a failure is classed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    User,
    Usage,
    Blocked,
    Unexpected,
    Interrupted,
}

impl Class {
    pub fn code(self) -> i32 {
        match self {
            Class::User => code::USER,
            Class::Usage => code::USAGE,
            Class::Blocked => code::BLOCKED,
            Class::Unexpected => code::UNEXPECTED,
            Class::Interrupted => code::INTERRUPTED,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::User => "user",
            Class::Usage => "usage",
            Class::Blocked => "blocked",
            Class::Unexpected => "unexpected",
            Class::Interrupted => "interrupted",
        }
    }
}

/// A failure the binary reports: its class, the error chain, and a way to fix it.
#[derive(Debug)]
pub struct Failure {
    pub class: Class,
    pub error: anyhow::Error,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(class: Class, error: impl Into<anyhow::Error>) -> Self {
        Self { class, error: error.into(), hint: None }
    }

    pub fn user(error: impl Into<anyhow::Error>) -> Self {
        Self::new(Class::User, error)
    }

    pub fn usage(msg: impl fmt::Display) -> Self {
        Self::new(Class::Usage, anyhow::anyhow!("{msg}"))
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The failure as a JSON document for `-o json` callers.
    pub fn to_json(&self) -> serde_json::Value {
        let causes: Vec<String> = self.error.chain().skip(1).map(|c| c.to_string()).collect();
        serde_json::json!({
            "error": {
                "class": self.class.as_str(),
                "exit_code": self.class.code(),
                "message": self.error.to_string(),
                "causes": causes,
                "hint": self.hint,
            }
        })
    }

    /// `error:` / `caused by:` / `hint:` lines for stderr. Errors never repeat their source's
    /// text in their own (the house convention), so every cause is printed as it is.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.error);
        for cause in self.error.chain().skip(1) {
            out.push_str(&format!("caused by: {cause}\n"));
        }
        if let Some(h) = &self.hint {
            out.push_str(&format!("hint: {h}\n"));
        }
        out
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        classify(e.into())
    }
}

/// An error and its causes on one line, `outer: inner: innermost` (for per-resource results).
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Sorts an error into its class by its type (never by its text) and picks a hint.
pub fn classify(error: anyhow::Error) -> Failure {
    use matih_plans::EngineError;
    if let Some(e) = error.downcast_ref::<matih_state::StateError>() {
        let hint = e.hint();
        return Failure { class: Class::User, error, hint };
    }
    if let Some(e) = error.downcast_ref::<EngineError>() {
        let (class, hint) = match e {
            EngineError::Blocked(_) => (
                Class::Blocked,
                Some("pass --allow-replace ADDR for each protected resource you mean to replace or delete".to_string()),
            ),
            EngineError::StalePlan { .. } => {
                (Class::User, Some("run `matih-infra plan --out FILE` again and apply the new plan".to_string()))
            }
            EngineError::State(s) => (Class::User, s.hint()),
            EngineError::NoProvider { .. }
            | EngineError::DuplicateType { .. }
            | EngineError::Cycle { .. }
            | EngineError::DanglingRef { .. } => (
                Class::Unexpected,
                Some(
                    "this is a bug in matih-infra's resource mapping; please report it with the platform spec"
                        .to_string(),
                ),
            ),
            _ => (Class::User, None),
        };
        return Failure { class, error, hint };
    }
    if error.downcast_ref::<matih_spec::SpecError>().is_some() {
        return Failure::user(error);
    }
    Failure::user(error)
}
