//! The one wait helper. Every wait has a deadline, and its error says what was awaited, how many
//! times it looked, how long it took and the last status it saw.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long and how often to poll.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    pub deadline: Duration,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl WaitPolicy {
    pub fn new(deadline: Duration) -> Self {
        Self { deadline, first_delay: Duration::from_millis(200), max_delay: Duration::from_secs(15) }
    }
}

/// One look at the thing being awaited.
pub enum WaitStep<T> {
    Done(T),
    /// Not there yet; the status is shown in progress and in the error if time runs out.
    Pending(String),
    /// It will never get there (e.g. a cluster in FAILED).
    Failed(String),
}

/// A wait that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed.
    #[error("timed out after {elapsed:.1?} ({attempts} attempts) waiting for {what}; last status: {last_status}")]
    Timeout { what: String, attempts: u32, elapsed: Duration, last_status: String },
    /// The awaited thing reached a terminal failure.
    #[error("{what} failed after {elapsed:.1?} ({attempts} attempts): {status}")]
    Failed { what: String, attempts: u32, elapsed: Duration, status: String },
}

/// Polls `look` with exponential back-off until it is done, fails, or the deadline passes.
/// `on_status` sees every pending status (for progress lines).
pub async fn wait_until<T, E, F, Fut>(
    what: &str,
    policy: WaitPolicy,
    mut on_status: impl FnMut(&str),
    mut look: F,
) -> Result<Result<T, WaitError>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<WaitStep<T>, E>>,
{
    let start = Instant::now();
    let mut delay = policy.first_delay;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let status = match look().await? {
            WaitStep::Done(v) => return Ok(Ok(v)),
            WaitStep::Failed(status) => {
                return Ok(Err(WaitError::Failed { what: what.into(), attempts, elapsed: start.elapsed(), status }));
            }
            WaitStep::Pending(s) => s,
        };
        on_status(&status);
        let elapsed = start.elapsed();
        if elapsed + delay > policy.deadline {
            return Ok(Err(WaitError::Timeout { what: what.into(), attempts, elapsed, last_status: status }));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(policy.max_delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn times_out_with_attempts_and_last_status() {
        let mut n = 0;
        let r: Result<Result<(), WaitError>, ()> = wait_until(
            "cluster ACTIVE",
            WaitPolicy::new(Duration::from_secs(5)),
            |_| {},
            || {
                n += 1;
                let s = format!("CREATING ({n})");
                async move { Ok(WaitStep::Pending(s)) }
            },
        )
        .await;
        let err = r.unwrap().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("waiting for cluster ACTIVE"), "{msg}");
        let WaitError::Timeout { attempts, last_status, .. } = err else { panic!() };
        assert_eq!(last_status, format!("CREATING ({attempts})"));
        assert!(attempts >= 4);
    }

    #[tokio::test(start_paused = true)]
    async fn returns_value_and_terminal_failure() {
        let mut n = 0;
        let ok: Result<Result<u32, WaitError>, ()> = wait_until(
            "x",
            WaitPolicy::new(Duration::from_secs(60)),
            |_| {},
            || {
                n += 1;
                let step = if n == 3 { WaitStep::Done(n) } else { WaitStep::Pending("no".into()) };
                async move { Ok(step) }
            },
        )
        .await;
        assert_eq!(ok.unwrap().unwrap(), 3);
        let failed: Result<Result<u32, WaitError>, ()> = wait_until(
            "y",
            WaitPolicy::new(Duration::from_secs(60)),
            |_| {},
            || async { Ok(WaitStep::Failed("FAILED".into())) },
        )
        .await;
        assert!(matches!(failed.unwrap(), Err(WaitError::Failed { attempts: 1, .. })));
    }
}
