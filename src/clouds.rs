//! The one place the CLI names clouds: which ones `--cloud` takes and which this build has.
//! Adding a cloud is one entry in [`registry`] (and its crate behind a cargo feature); every
//! command works through the [`Cloud`] trait and never branches on a cloud.

use clap::builder::{PossibleValue, PossibleValuesParser};
use matih_provider_kit::Cloud;

/// One cloud `--cloud` knows: its name, the cargo feature that builds it, and the cloud itself
/// when this build has it.
struct Entry {
    name: &'static str,
    feature: &'static str,
    cloud: Option<Box<dyn Cloud>>,
}

/// The cloud built with `feature`, or `None` without it.
macro_rules! built {
    ($feature:literal, $cloud:expr) => {{
        #[cfg(feature = $feature)]
        let c: Option<Box<dyn Cloud>> = Some(Box::new($cloud));
        #[cfg(not(feature = $feature))]
        let c: Option<Box<dyn Cloud>> = None;
        c
    }};
}

fn registry() -> Vec<Entry> {
    vec![
        Entry { name: "eks", feature: "aws", cloud: built!("aws", matih_provider_aws::Eks) },
        Entry { name: "gke", feature: "gcp", cloud: None },
        Entry { name: "aks", feature: "azure", cloud: None },
        Entry { name: "fake", feature: "", cloud: Some(Box::new(matih_provider_fake::Fake)) },
    ]
}

/// What `--cloud` accepts (the fake cloud is accepted but not advertised).
pub fn parser() -> PossibleValuesParser {
    PossibleValuesParser::new(registry().into_iter().map(|e| PossibleValue::new(e.name).hide(e.name == "fake")))
}

/// Why a named cloud cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("the {name} provider is not part of this build")]
    NotBuilt { name: String, feature: &'static str, built: Vec<&'static str> },
    #[error("unknown cloud `{0}`")]
    Unknown(String),
}

impl Unavailable {
    pub fn hint(&self) -> String {
        match self {
            Unavailable::NotBuilt { feature, built, .. } => format!(
                "`validate` works for every cloud; this build has {} (the `{feature}` cargo feature adds this one once its provider exists)",
                built.join(", ")
            ),
            Unavailable::Unknown(_) => {
                format!("choose one of {}", registry().iter().map(|e| e.name).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// The cloud named `name`, if this build has it.
pub fn get(name: &str) -> Result<Box<dyn Cloud>, Unavailable> {
    let mut entries = registry();
    let built: Vec<&'static str> = entries.iter().filter(|e| e.cloud.is_some()).map(|e| e.name).collect();
    let i = entries.iter().position(|e| e.name == name).ok_or_else(|| Unavailable::Unknown(name.to_string()))?;
    let e = entries.swap_remove(i);
    e.cloud.ok_or(Unavailable::NotBuilt { name: e.name.to_string(), feature: e.feature, built })
}
