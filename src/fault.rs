//! A test hook: `MATIH_TEST_HANG_AFTER_CREATE=ADDR=MARKER` wraps every provider so that right
//! after the cloud confirms the create of ADDR (and before the engine records it) the process
//! writes MARKER and hangs until MARKER is removed, for a test to SIGKILL it there or to change
//! something under it. It is announced on stderr whenever it
//! is in effect, and does nothing else.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use matih_plans::*;

pub const ENV: &str = "MATIH_TEST_HANG_AFTER_CREATE";

pub struct HangAfterCreate {
    inner: Arc<dyn Provider>,
    addr: ResourceAddr,
    marker: PathBuf,
}

/// Wraps `providers` when the hook is set; `Err` names what is wrong with its value.
pub fn wrap(providers: Vec<Arc<dyn Provider>>) -> Result<Vec<Arc<dyn Provider>>, String> {
    let Ok(spec) = std::env::var(ENV) else { return Ok(providers) };
    let (addr, marker) = spec.split_once('=').ok_or_else(|| format!("{ENV} is ADDR=MARKER_PATH"))?;
    let addr: ResourceAddr = addr.parse().map_err(|e| format!("{ENV}: {e}"))?;
    eprintln!("test hook in effect: {ENV} (the process hangs after creating {addr})");
    Ok(providers
        .into_iter()
        .map(|inner| {
            Arc::new(HangAfterCreate { inner, addr: addr.clone(), marker: PathBuf::from(marker) }) as Arc<dyn Provider>
        })
        .collect())
}

impl HangAfterCreate {
    async fn maybe_hang(&self, addr: &ResourceAddr, created: bool) {
        if created && *addr == self.addr {
            std::fs::write(&self.marker, addr.to_string()).expect("write the hang marker");
            while self.marker.exists() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

#[async_trait]
impl Provider for HangAfterCreate {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn schemas(&self) -> Vec<TypeSchema> {
        self.inner.schemas()
    }
    async fn validate(&self, req: ValidateRequest<'_>) -> ValidateResponse {
        self.inner.validate(req).await
    }
    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        self.inner.read(req).await
    }
    fn plan(&self, req: PlanRequest<'_>) -> PlanResponse {
        self.inner.plan(req)
    }
    async fn apply(&self, req: ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let (addr, creating) = (req.addr.clone(), req.prior.is_none());
        let r = self.inner.apply(req).await;
        self.maybe_hang(&addr, creating && r.is_ok()).await;
        r
    }
    async fn apply_batch(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        let created: Vec<(ResourceAddr, bool)> = reqs.iter().map(|r| (r.addr.clone(), r.prior.is_none())).collect();
        let out = self.inner.apply_batch(reqs).await;
        for ((addr, creating), r) in created.iter().zip(&out) {
            self.maybe_hang(addr, *creating && r.is_ok()).await;
        }
        out
    }
    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        self.inner.delete(req).await
    }
    async fn delete_batch(&self, reqs: Vec<DeleteRequest>) -> Vec<Result<(), ProviderError>> {
        self.inner.delete_batch(reqs).await
    }
    async fn find_by_owner(&self, req: FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        self.inner.find_by_owner(req).await
    }
    fn owner_tags(&self, ownership: &Ownership, addr: &ResourceAddr) -> std::collections::BTreeMap<String, String> {
        self.inner.owner_tags(ownership, addr)
    }
    fn upgrade(&self, req: UpgradeRequest<'_>) -> Result<matih_state::Attrs, ProviderError> {
        self.inner.upgrade(req)
    }
    fn stats(&self) -> CallStats {
        self.inner.stats()
    }
    fn retry_budget(&self) -> Option<String> {
        self.inner.retry_budget()
    }
}
