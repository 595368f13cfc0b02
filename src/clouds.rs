//! The one place the CLI names clouds: which ones `--cloud` takes and which this build has.
//! Adding a cloud is one entry in [`registry`] (and its crate behind a cargo feature); every
//! command works through the [`Cloud`] trait and never branches on a cloud.

use clap::builder::{PossibleValue, PossibleValuesParser};
use matih_provider_kit::Cloud;
use matih_state::Service;

/// One cloud `--cloud` knows: its name, the cargo feature that builds it, and the cloud itself
/// when this build has it.
struct Entry {
    name: &'static str,
    feature: &'static str,
    /// The object storage service whose state store the cloud's crate provides.
    state: Option<Service>,
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
        Entry { name: "eks", feature: "aws", state: Some(Service::S3), cloud: built!("aws", matih_provider_aws::Eks) },
        Entry { name: "gke", feature: "gcp", state: Some(Service::Gcs), cloud: built!("gcp", matih_provider_gcp::Gke) },
        Entry {
            name: "aks",
            feature: "azure",
            state: Some(Service::AzBlob),
            cloud: built!("azure", matih_provider_azure::Aks),
        },
        Entry { name: "fake", feature: "", state: None, cloud: Some(Box::new(matih_provider_fake::Fake)) },
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
    #[error("state in {service} is not part of this build")]
    NoStateStore { service: Service, feature: &'static str },
}

impl Unavailable {
    pub fn hint(&self) -> String {
        match self {
            Unavailable::NotBuilt { feature, built, .. } => format!(
                "`validate` works for every cloud; this build has {} (the `{feature}` cargo feature adds this one once its provider exists)",
                built.join(", ")
            ),
            Unavailable::NoStateStore { feature: "", .. } => {
                "keep state in a local file, or in s3, gcs or azblob".to_string()
            }
            Unavailable::NoStateStore { feature, .. } => {
                format!(
                    "build with the `{feature}` cargo feature, or keep state elsewhere (`state:` in the platform spec)"
                )
            }
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

/// The cloud whose crate keeps state in `service`.
pub fn for_state(service: Service) -> Result<Box<dyn Cloud>, Unavailable> {
    let e = registry().into_iter().find(|e| e.state == Some(service));
    match e {
        Some(Entry { cloud: Some(c), .. }) => Ok(c),
        Some(e) => Err(Unavailable::NoStateStore { service, feature: e.feature }),
        None => Err(Unavailable::NoStateStore { service, feature: "" }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use matih_plans::{Ownership, ResourceAddr};
    use matih_provider_kit::owner::{
        AZURE_TAG_NAME_FORBIDDEN, AZURE_TAG_VALUE_MAX, AwsTags, AzureTags, GcpLabels, LABEL_ADDRESS, OwnerCodec,
        gcp_label_ok,
    };

    use super::*;

    /// The example platform plus a tenant with the longest slug allowed and a dedicated ingress
    /// (so every per-tenant address shape is there at its longest), in staging (so the
    /// delegation is there too).
    fn spec(dir: &Path) -> matih_spec::LoadedSpec {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        std::fs::create_dir_all(dir.join("tenants")).unwrap();
        let main = std::fs::read_to_string(examples.join("matih.yaml")).unwrap();
        std::fs::write(dir.join("matih.yaml"), main.replacen("environment: prod", "environment: staging", 1)).unwrap();
        for t in ["acme", "bigcorp"] {
            std::fs::copy(
                examples.join("tenants").join(format!("{t}.yaml")),
                dir.join("tenants").join(format!("{t}.yaml")),
            )
            .unwrap();
        }
        let long = "t".repeat(31) + "x";
        std::fs::write(
            dir.join("tenants").join(format!("{long}.yaml")),
            format!("slug: {long}\ndisplay_name: Long\ndedicated_ingress: true\n"),
        )
        .unwrap();
        matih_spec::load(&dir.join("matih.yaml")).unwrap()
    }

    /// IAM's pattern for tag values: letters, spaces, digits and `_.:/=+-@`.
    fn iam_value_ok(v: &str) -> bool {
        v.len() <= 256 && v.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    }

    #[test]
    fn every_address_of_every_cloud_fits_every_clouds_owner_tag_rules() {
        let dir = tempfile::tempdir().unwrap();
        let spec = std::sync::Arc::new(spec(dir.path()));
        let o = Ownership {
            platform: spec.spec.platform.name.clone(),
            environment: spec.spec.platform.environment.clone(),
        };
        let mut addrs: BTreeSet<ResourceAddr> = BTreeSet::new();
        let mut clouds = Vec::new();
        for e in registry() {
            let Some(cloud) = e.cloud else { continue };
            if cloud.section().is_some_and(|k| !spec.spec.clouds.configured().contains(&k)) {
                continue;
            }
            clouds.push(e.name);
            addrs.extend(crate::context::desired(&spec, cloud.as_ref()).unwrap().resources.into_keys());
        }
        assert!(clouds.contains(&"eks") || !cfg!(feature = "aws"), "{clouds:?}");
        assert!(addrs.iter().any(|a| a.to_string().contains(&"t".repeat(31))), "the long tenant's addresses are in");
        let mut labels = BTreeSet::new();
        for a in &addrs {
            for (k, v) in AwsTags.encode(&o, a) {
                assert!(k.len() <= 128 && v.len() <= 256, "{a}: AWS tag {k}={v}");
            }
            if a.rtype.group == "eks" && matches!(a.rtype.kind.as_str(), "iam_role" | "oidc_provider") {
                for (k, v) in AwsTags.encode(&o, a) {
                    assert!(iam_value_ok(&k) && iam_value_ok(&v), "{a}: IAM refuses the tag {k}={v}");
                }
            }
            for (k, v) in AzureTags.encode(&o, a) {
                assert!(!k.contains(AZURE_TAG_NAME_FORBIDDEN) && k.len() <= 512, "{a}: Azure tag name {k}");
                // Azure DNS keeps only names of letters, digits and `_` (zone tags, record metadata).
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{a}: Azure DNS drops {k}");
                assert!(v.chars().count() <= AZURE_TAG_VALUE_MAX, "{a}: Azure tag value {v}");
            }
            let gcp = GcpLabels.encode(&o, a);
            for (k, v) in &gcp {
                assert!(gcp_label_ok(k) && k.starts_with(|c: char| c.is_ascii_lowercase()), "{a}: GCP label key {k}");
                assert!(gcp_label_ok(v), "{a}: GCP label value {v:?}");
            }
            assert!(labels.insert(gcp[LABEL_ADDRESS].clone()), "{a}: its GCP address label is another address's");
            // What finds a resource again: the encoding names this address and no other.
            for codec in [&AwsTags as &dyn OwnerCodec, &AzureTags, &GcpLabels] {
                assert!(codec.names(&o, a, &codec.encode(&o, a)), "{a}");
            }
        }
    }
}
