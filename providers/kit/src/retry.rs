//! Retries of single API calls: with back-off and full jitter, within a deadline, and only where
//! repeating the call is safe.
//!
//! What may be repeated depends on the call ([`Call`]): a read or an idempotent write is repeated
//! after a throttle, a server error or a lost answer; a create only when the service certainly
//! did nothing (throttled, or the request never left). A create whose outcome is unknown is not
//! this module's to repeat: [`crate::create`] looks for what it may have made first.
//!
//! Retries are counted in the [`Recorder`]; SDKs' own retry loops are switched off so that this
//! is the only one.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use matih_plans::{ErrorKind, ProviderError};

use crate::Recorder;

/// What a call does to the cloud, which decides when it may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Changes nothing (Describe, List, Get).
    Read,
    /// Sending it twice leaves the same result as once (attach, put, upsert, delete, set tags).
    Idempotent,
    /// Makes something new each time it is sent (CreateVpc, AllocateAddress).
    Create,
}

impl Call {
    /// Whether a failure of `kind` may be followed by the same call.
    pub fn may_repeat_after(self, kind: ErrorKind) -> bool {
        match self {
            Call::Read | Call::Idempotent => kind.transient(),
            // Throttled and unreachable requests were certainly not carried out.
            Call::Create => matches!(kind, ErrorKind::Throttled | ErrorKind::Unreachable),
        }
    }
}

/// How long and how often one call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// No retry starts after this much time since the first attempt.
    pub deadline: Duration,
    /// At most this many attempts in all.
    pub max_attempts: u32,
    /// The back-off ceiling before the first retry; it doubles up to `max_delay`. The actual
    /// wait is drawn uniformly below it (full jitter), unless the service said how long.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(120),
            max_attempts: 10,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The budget in words, for `-v` and statistics.
    pub fn describe(&self) -> String {
        format!(
            "up to {} attempts within {} s per call, back-off {:.1} s to {} s with full jitter, Retry-After honoured",
            self.max_attempts,
            self.deadline.as_secs(),
            self.first_delay.as_secs_f64(),
            self.max_delay.as_secs()
        )
    }

    /// The wait before retry number `retry` (1-based): the service's `Retry-After` if it gave
    /// one (up to the ceiling), else a uniform draw below the exponential ceiling.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay * 3);
        }
        let ceiling = self.first_delay.saturating_mul(1u32 << (retry - 1).min(16)).min(self.max_delay);
        Duration::from_secs_f64(ceiling.as_secs_f64() * fastrand::f64())
    }
}

/// Runs `attempt` until it succeeds, fails in a way `call` may not repeat, or the policy's
/// budget is spent; the last error is returned as it was. Each repeat is counted as a retry of
/// `service:operation`.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    rec: &Recorder,
    service: &str,
    operation: &str,
    call: Call,
    mut attempt: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let err = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !call.may_repeat_after(err.kind()) || attempts >= policy.max_attempts {
            return Err(err);
        }
        let wait = policy.delay(attempts, err.api().and_then(|a| a.retry_after));
        if start.elapsed() + wait > policy.deadline {
            return Err(err);
        }
        tokio::time::sleep(wait).await;
        rec.retry(service, operation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matih_plans::ApiError;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn failing(kind: ErrorKind) -> ProviderError {
        ApiError::new("svc", "Op", kind, "Code", "no").into()
    }

    async fn run(call: Call, kinds: &[ErrorKind], policy: RetryPolicy) -> (Result<u32, ProviderError>, u32, Recorder) {
        let n = AtomicU32::new(0);
        let rec = Recorder::default();
        let r = retry(&policy, &rec, "svc", "Op", call, || {
            let i = n.fetch_add(1, Ordering::SeqCst) as usize;
            let out = match kinds.get(i) {
                Some(k) => Err(failing(*k)),
                None => Ok(i as u32),
            };
            async move { out }
        })
        .await;
        (r, n.load(Ordering::SeqCst), rec)
    }

    #[tokio::test(start_paused = true)]
    async fn reads_repeat_after_every_transient_failure_and_count_retries() {
        let kinds = [ErrorKind::Throttled, ErrorKind::Unavailable, ErrorKind::NoResponse, ErrorKind::Unreachable];
        let (r, attempts, rec) = run(Call::Read, &kinds, RetryPolicy::default()).await;
        assert_eq!(r.unwrap(), 4);
        assert_eq!(attempts, 5);
        assert_eq!(rec.snapshot().retries["svc:Op"], 4);
    }

    #[tokio::test(start_paused = true)]
    async fn creates_repeat_only_when_nothing_was_done() {
        let (r, attempts, _) =
            run(Call::Create, &[ErrorKind::Throttled, ErrorKind::Unreachable], RetryPolicy::default()).await;
        assert_eq!((r.unwrap(), attempts), (2, 3));
        for unknown in [ErrorKind::Unavailable, ErrorKind::NoResponse] {
            let (r, attempts, rec) = run(Call::Create, &[unknown], RetryPolicy::default()).await;
            assert_eq!(r.unwrap_err().kind(), unknown, "an unknown outcome goes back to the caller");
            assert_eq!(attempts, 1);
            assert!(rec.snapshot().retries.is_empty());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn definitive_failures_are_not_repeated() {
        for k in [ErrorKind::NotFound, ErrorKind::Conflict, ErrorKind::Denied, ErrorKind::Invalid, ErrorKind::Other] {
            let (r, attempts, _) = run(Call::Idempotent, &[k], RetryPolicy::default()).await;
            assert_eq!((r.unwrap_err().kind(), attempts), (k, 1));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_attempt_limit_and_at_the_deadline() {
        let always = [ErrorKind::Unavailable; 5000];
        let policy = RetryPolicy { max_attempts: 4, ..RetryPolicy::default() };
        let (r, attempts, _) = run(Call::Read, &always, policy).await;
        assert_eq!((r.unwrap_err().kind(), attempts), (ErrorKind::Unavailable, 4));

        let policy = RetryPolicy {
            deadline: Duration::from_secs(5),
            max_attempts: 1000,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(1),
        };
        let start = tokio::time::Instant::now();
        let (r, attempts, _) = run(Call::Read, &always, policy).await;
        assert!(r.is_err());
        assert!(start.elapsed() <= Duration::from_secs(5), "{:?}", start.elapsed());
        assert!(attempts >= 5, "with waits below 1 s, at least 5 attempts fit in 5 s: {attempts}");
    }

    #[test]
    fn retry_after_wins_over_back_off_and_jitter_stays_below_the_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(p.delay(1, Some(Duration::from_secs(3600))), p.max_delay * 3);
        for retry in 1..20 {
            let d = p.delay(retry, None);
            let ceiling = p.first_delay.saturating_mul(1 << (retry - 1).min(16)).min(p.max_delay);
            assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
        }
    }
}
