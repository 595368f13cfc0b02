//! ARM errors: an HTTP status and the body every resource provider answers with,
//! `{"error":{"code","message","target"?}}`, plus the constructors the emulator uses more than once.
//!
//! No `details`/`additionalInfo` arrays: no emulated failure carries nested errors.

use serde_json::{Value, json};

/// A failed request, as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub(crate) struct ArmError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub target: Option<String>,
}

impl ArmError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ArmError { status, code: code.to_string(), message: message.into(), target: None }
    }

    pub(crate) fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub(crate) fn with_target(mut self, target: &str) -> Self {
        self.target = Some(target.to_string());
        self
    }

    pub(crate) fn body(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(t) = &self.target {
            e["target"] = json!(t);
        }
        json!({ "error": e })
    }

    pub(crate) fn group_not_found(rg: &str) -> Self {
        Self::new(404, "ResourceGroupNotFound", format!("Resource group '{rg}' could not be found."))
    }

    /// A missing top-level resource, worded as ARM words it.
    pub(crate) fn resource_not_found(type_and_name: &str, rg: &str) -> Self {
        Self::new(
            404,
            "ResourceNotFound",
            format!(
                "The Resource '{type_and_name}' under resource group '{rg}' was not found. \
                 For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    /// A missing child resource (subnet, agent pool, record set, ...), as the providers word it.
    pub(crate) fn child_not_found(id: &str) -> Self {
        Self::new(404, "NotFound", format!("Resource {id} not found."))
    }

    pub(crate) fn invalid_content(message: impl Into<String>) -> Self {
        Self::bad_request("InvalidRequestContent", message)
    }

    pub(crate) fn precondition(message: impl Into<String>) -> Self {
        Self::new(412, "PreconditionFailed", message)
    }
}
