//! The one counter of API calls, shared by every cloud and by the cluster bootstrap: requests
//! sent, retries among them, and creates reconciled with what the cloud already had.
//!
//! Each transport counts where it sends (the AWS SDK's interceptor, the Kubernetes session, the
//! ARM client); the retry helper counts retries; the create path counts reconciliations. Nothing
//! here decides anything.

use std::sync::{Arc, Mutex};

use matih_plans::CallStats;

/// A shared, cloneable counter. Keys are `service:Operation` (calls and retries) and resource
/// types (reconciled creates).
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<CallStats>>);

impl Recorder {
    /// One request sent to `service` for `operation` (every attempt counts: each is a real call).
    pub fn call(&self, service: &str, operation: &str) {
        *self.0.lock().unwrap().calls.entry(format!("{service}:{operation}")).or_default() += 1;
    }

    /// The request about to be sent repeats an earlier attempt.
    pub fn retry(&self, service: &str, operation: &str) {
        *self.0.lock().unwrap().retries.entry(format!("{service}:{operation}")).or_default() += 1;
    }

    /// A create of `rtype` whose outcome was unknown (or that met "already exists") found its
    /// resource in the cloud and adopted it.
    pub fn reconciled(&self, rtype: &str) {
        *self.0.lock().unwrap().reconciled.entry(rtype.to_string()).or_default() += 1;
    }

    pub fn snapshot(&self) -> CallStats {
        self.0.lock().unwrap().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_key_and_snapshots_are_independent() {
        let r = Recorder::default();
        let clone = r.clone();
        r.call("ec2", "CreateVpc");
        clone.call("ec2", "CreateVpc");
        r.retry("ec2", "CreateVpc");
        r.reconciled("eks.vpc");
        let before = r.snapshot();
        assert_eq!(before.calls["ec2:CreateVpc"], 2);
        assert_eq!(before.retries["ec2:CreateVpc"], 1);
        assert_eq!(before.reconciled["eks.vpc"], 1);
        r.call("iam", "CreateRole");
        let since = r.snapshot().since(&before);
        assert_eq!(since.calls.len(), 1);
        assert_eq!(since.calls["iam:CreateRole"], 1);
        assert!(since.retries.is_empty());
    }
}
