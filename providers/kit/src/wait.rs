//! "Wait until it reaches a status, or until it is gone", with a deadline, on top of the engine's
//! one wait helper: clusters ACTIVE, node pools RUNNING, NAT gateways available, operations DONE.

use std::future::Future;

use matih_plans::wait::{WaitPolicy, WaitStep, wait_until};
use matih_plans::{ProviderError, StatusSink};

/// What one look at the awaited thing saw.
#[derive(Debug, Clone)]
pub struct Observed<T> {
    /// The cloud's word for its state (`CREATING`, `available`, `RUNNING`).
    pub status: String,
    /// More words for a failure (health issues, an operation's error).
    pub detail: Option<String>,
    pub value: T,
}

impl<T> Observed<T> {
    pub fn new(status: impl Into<String>, value: T) -> Self {
        Observed { status: status.into(), detail: None, value }
    }
}

/// The status to wait for.
#[derive(Debug, Clone, Copy)]
pub enum Until<'a> {
    /// Any of these statuses.
    Status(&'a [&'a str]),
    /// Not found any more.
    Gone,
}

/// Polls `look` (`None`: not found) until the thing reaches `until`, shows one of `failed`, or
/// the policy's deadline passes. Pending statuses go to `sink`. Returns the last value seen
/// (`None` when it is gone).
pub async fn until<T, F, Fut>(
    what: &str,
    policy: WaitPolicy,
    sink: &StatusSink,
    until: Until<'_>,
    failed: &[&str],
    mut look: F,
) -> Result<Option<T>, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<Observed<T>>, ProviderError>>,
{
    let r = wait_until(
        what,
        policy,
        |s| sink.say(s),
        || {
            let seen = look();
            async move {
                Ok::<_, ProviderError>(match (seen.await?, until) {
                    (None, Until::Gone) => WaitStep::Done(None),
                    (None, Until::Status(_)) => WaitStep::Pending("not found yet".into()),
                    (Some(o), _) if failed.contains(&o.status.as_str()) => WaitStep::Failed(match o.detail {
                        Some(d) if !d.is_empty() => format!("status {}: {d}", o.status),
                        _ => format!("status {}", o.status),
                    }),
                    (Some(o), Until::Status(ok)) if ok.contains(&o.status.as_str()) => WaitStep::Done(Some(o.value)),
                    (Some(o), _) => WaitStep::Pending(o.status),
                })
            }
        },
    )
    .await?;
    Ok(r?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    fn script(steps: &[Option<&str>]) -> Mutex<Vec<Option<Observed<u32>>>> {
        Mutex::new(
            steps.iter().rev().enumerate().map(|(i, s)| s.map(|s| Observed::new(s, i as u32))).collect::<Vec<_>>(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn reaches_a_status_fails_on_a_failed_one_and_sees_deletion() {
        let p = WaitPolicy::new(Duration::from_secs(60));
        let sink = StatusSink::default();
        let steps = script(&[None, Some("CREATING"), Some("ACTIVE")]);
        let look = || {
            let next = steps.lock().unwrap().pop().unwrap();
            async move { Ok(next) }
        };
        let got = until("c", p, &sink, Until::Status(&["ACTIVE"]), &["FAILED"], look).await.unwrap();
        assert_eq!(got, Some(0));

        let steps = script(&[Some("CREATING"), Some("FAILED")]);
        let look = || {
            let next = steps.lock().unwrap().pop().unwrap();
            async move { Ok(next) }
        };
        let e = until::<u32, _, _>("c", p, &sink, Until::Status(&["ACTIVE"]), &["FAILED"], look).await.unwrap_err();
        assert!(e.to_string().contains("status FAILED"), "{e}");

        let steps = script(&[Some("DELETING"), None]);
        let look = || {
            let next = steps.lock().unwrap().pop().unwrap();
            async move { Ok(next) }
        };
        assert_eq!(until("c", p, &sink, Until::Gone, &[], look).await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_naming_the_last_status() {
        let p = WaitPolicy::new(Duration::from_secs(10));
        let look = || async { Ok(Some(Observed::new("PENDING", ()))) };
        let e = until("NAT gateway x", p, &StatusSink::default(), Until::Status(&["available"]), &[], look)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("NAT gateway x") && msg.contains("last status: PENDING"), "{msg}");
    }
}
