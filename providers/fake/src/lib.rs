//! The fake cloud: a provider whose "cloud" is a map in memory or a JSON file on disk.
//!
//! It exists to prove the engine: it records every call, can add latency, fail chosen operations, and answers
//! refreshes with one batched call per type, as real providers must. The file-backed mode lets
//! several processes (the CLI under test, the test itself acting as "the cloud console") share one
//! cloud. It is not a model of any real cloud's API and makes no claims about one; it has no
//! cluster to bootstrap.

mod cloud;
mod graph;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use matih_plans::{DesiredGraph, Ownership, ProviderError};
use matih_provider_kit::{Cloud, ClusterBinding, Connected, ExecCredential};
use matih_spec::{CloudKind, PlatformSpec};

pub use cloud::{Call, FailOn, FakeCloud, FakeObject, FakeOptions, OptionsError};
pub use graph::{desired_graph, schemas};

/// Where the file-backed fake cloud lives: `MATIH_FAKE_CLOUD`, else `.matih/fake-cloud.json`
/// beside the platform spec.
pub const FILE_ENV: &str = "MATIH_FAKE_CLOUD";

/// The fake cloud (`--cloud fake`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fake;

impl Fake {
    pub fn file(spec_dir: &Path) -> PathBuf {
        match std::env::var_os(FILE_ENV) {
            Some(p) => PathBuf::from(p),
            None => spec_dir.join(".matih").join("fake-cloud.json"),
        }
    }
}

#[async_trait]
impl Cloud for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn section(&self) -> Option<CloudKind> {
        None
    }

    fn desired_graph(&self, spec: &PlatformSpec) -> DesiredGraph {
        graph::desired_graph(spec)
    }

    fn bootstrap_binding(&self, _spec: &PlatformSpec) -> Option<ClusterBinding> {
        None
    }

    fn exec_credential(&self, _spec: &PlatformSpec, _cluster: &str) -> Result<ExecCredential, String> {
        Err("it has no clusters".into())
    }

    async fn connect(
        &self,
        _spec: &PlatformSpec,
        spec_dir: &Path,
        _ownership: &Ownership,
    ) -> Result<Connected, ProviderError> {
        let path = Self::file(spec_dir);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| ProviderError::Other {
                message: format!("creating {}", dir.display()),
                source: Some(Arc::new(e)),
            })?;
        }
        let opts = FakeOptions::from_env().map_err(|e| ProviderError::Other {
            message: "the fake cloud's test settings".into(),
            source: Some(Arc::new(e)),
        })?;
        Ok(Connected { providers: vec![Arc::new(FakeCloud::file_backed(&path, opts))], access: None })
    }
}
