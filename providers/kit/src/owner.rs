//! Owner tags per cloud: how the engine's [`Ownership`] (platform, environment, address) is
//! written on a resource under each cloud's rules, and read back.
//!
//! The encodings never change for an address: they are how a create whose answer was lost, or
//! whose process died, is found again. Each is tested against its cloud's rules with every
//! address the example platform produces (see the workspace test `tests/owner_tags.rs`).
//!
//! - AWS ([`AwsTags`]): `matih:platform`, `matih:environment`, `matih:address` with the values as
//!   they are (EC2, EKS and Route 53 take any characters; IAM's stricter pattern holds for the
//!   addresses IAM resources have, which the AWS crate tests).
//! - GCP ([`GcpLabels`]): label keys and values allow only lowercase letters, digits, `_` and `-`,
//!   at most 63 characters, no `:`. Keys are `matih-platform`, `matih-environment`,
//!   `matih-address`; the address becomes a readable prefix plus a digest of the whole address,
//!   so it cannot be read back from the label (GCP resources carry it in their description).
//! - Azure ([`AzureTags`]): `matih_platform`, `matih_environment`, `matih_address`. Tag names
//!   may not contain `<>%&\?/`, and Azure DNS (zone tags, record set metadata) silently drops
//!   names with any character but letters, digits and `_`, so the AWS keys' `:` cannot be used;
//!   values (at most 256 characters) are as they are.

use std::collections::BTreeMap;

use matih_plans::{Ownership, ResourceAddr};
use sha2::{Digest, Sha256};

/// How one cloud writes and reads owner tags.
pub trait OwnerCodec: Send + Sync {
    /// The tags (labels) a resource at `addr` carries.
    fn encode(&self, o: &Ownership, addr: &ResourceAddr) -> BTreeMap<String, String>;

    /// Whether `tags` mark a resource of this platform and environment (any address).
    fn owned_by(&self, o: &Ownership, tags: &BTreeMap<String, String>) -> bool;

    /// The address the tags name, if the encoding can be read back.
    fn address_of(&self, tags: &BTreeMap<String, String>) -> Option<ResourceAddr>;

    /// Whether `tags` name exactly `addr` of this platform.
    fn names(&self, o: &Ownership, addr: &ResourceAddr, tags: &BTreeMap<String, String>) -> bool {
        self.encode(o, addr).iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

/// The tag keys AWS and Azure resources carry.
pub const TAG_PLATFORM: &str = "matih:platform";
pub const TAG_ENVIRONMENT: &str = "matih:environment";
pub const TAG_ADDRESS: &str = "matih:address";

fn colon_tags(o: &Ownership, addr: &ResourceAddr) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_PLATFORM.to_string(), o.platform.clone()),
        (TAG_ENVIRONMENT.to_string(), o.environment.clone()),
        (TAG_ADDRESS.to_string(), addr.to_string()),
    ])
}

fn colon_owned(o: &Ownership, tags: &BTreeMap<String, String>) -> bool {
    tags.get(TAG_PLATFORM) == Some(&o.platform) && tags.get(TAG_ENVIRONMENT) == Some(&o.environment)
}

/// AWS: `matih:*` tags with values as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsTags;

impl OwnerCodec for AwsTags {
    fn encode(&self, o: &Ownership, addr: &ResourceAddr) -> BTreeMap<String, String> {
        colon_tags(o, addr)
    }
    fn owned_by(&self, o: &Ownership, tags: &BTreeMap<String, String>) -> bool {
        colon_owned(o, tags)
    }
    fn address_of(&self, tags: &BTreeMap<String, String>) -> Option<ResourceAddr> {
        tags.get(TAG_ADDRESS)?.parse().ok()
    }
}

/// Azure: `matih_*` tags (names of letters, digits and `_`, as Azure DNS requires; values within
/// 256 characters).
#[derive(Debug, Clone, Copy, Default)]
pub struct AzureTags;

/// The tag keys Azure resources carry (Azure DNS metadata included).
pub const AZURE_TAG_PLATFORM: &str = "matih_platform";
pub const AZURE_TAG_ENVIRONMENT: &str = "matih_environment";
pub const AZURE_TAG_ADDRESS: &str = "matih_address";

/// Azure's limit on a tag value.
pub const AZURE_TAG_VALUE_MAX: usize = 256;
/// Characters Azure refuses in tag names.
pub const AZURE_TAG_NAME_FORBIDDEN: &[char] = &['<', '>', '%', '&', '\\', '?', '/'];

impl OwnerCodec for AzureTags {
    fn encode(&self, o: &Ownership, addr: &ResourceAddr) -> BTreeMap<String, String> {
        BTreeMap::from([
            (AZURE_TAG_PLATFORM.to_string(), o.platform.clone()),
            (AZURE_TAG_ENVIRONMENT.to_string(), o.environment.clone()),
            (AZURE_TAG_ADDRESS.to_string(), addr.to_string()),
        ])
    }
    fn owned_by(&self, o: &Ownership, tags: &BTreeMap<String, String>) -> bool {
        // ARM keeps tag names as written but compares them case-insensitively.
        let get = |k: &str| tags.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v);
        get(AZURE_TAG_PLATFORM) == Some(&o.platform) && get(AZURE_TAG_ENVIRONMENT) == Some(&o.environment)
    }
    fn address_of(&self, tags: &BTreeMap<String, String>) -> Option<ResourceAddr> {
        tags.iter().find(|(n, _)| n.eq_ignore_ascii_case(AZURE_TAG_ADDRESS))?.1.parse().ok()
    }
    /// ARM compares tag names without case.
    fn names(&self, o: &Ownership, addr: &ResourceAddr, tags: &BTreeMap<String, String>) -> bool {
        self.encode(o, addr).iter().all(|(k, v)| tags.iter().any(|(n, x)| n.eq_ignore_ascii_case(k) && x == v))
    }
}

/// GCP: `matih-*` labels; the address as a readable prefix and a digest.
#[derive(Debug, Clone, Copy, Default)]
pub struct GcpLabels;

pub const LABEL_PLATFORM: &str = "matih-platform";
pub const LABEL_ENVIRONMENT: &str = "matih-environment";
pub const LABEL_ADDRESS: &str = "matih-address";
/// GCP's limit on a label key or value.
pub const GCP_LABEL_MAX: usize = 63;

/// Whether `s` is a valid GCP label value (keys must also start with a letter and be non-empty).
pub fn gcp_label_ok(s: &str) -> bool {
    s.len() <= GCP_LABEL_MAX && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The label value for an address: its characters outside `[a-z0-9_-]` as `-` (runs collapsed),
/// cut to leave room for `-` and 12 hex digits of the SHA-256 of the whole address.
pub fn gcp_address_label(addr: &ResourceAddr) -> String {
    let text = addr.to_string();
    let digest = hex::encode(&Sha256::digest(text.as_bytes())[..6]);
    let mut readable = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' { c } else { '-' };
        if !(c == '-' && readable.ends_with('-')) {
            readable.push(c);
        }
    }
    let room = GCP_LABEL_MAX - 1 - digest.len();
    let readable: String = readable.trim_matches('-').chars().take(room).collect();
    format!("{}-{digest}", readable.trim_end_matches('-'))
}

impl OwnerCodec for GcpLabels {
    fn encode(&self, o: &Ownership, addr: &ResourceAddr) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_PLATFORM.to_string(), o.platform.clone()),
            (LABEL_ENVIRONMENT.to_string(), o.environment.clone()),
            (LABEL_ADDRESS.to_string(), gcp_address_label(addr)),
        ])
    }
    fn owned_by(&self, o: &Ownership, tags: &BTreeMap<String, String>) -> bool {
        tags.get(LABEL_PLATFORM) == Some(&o.platform) && tags.get(LABEL_ENVIRONMENT) == Some(&o.environment)
    }
    fn address_of(&self, _tags: &BTreeMap<String, String>) -> Option<ResourceAddr> {
        // A digest cannot be read back; GCP kinds report the address from the description.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Ownership {
        Ownership { platform: "matih".into(), environment: "prod".into() }
    }

    #[test]
    fn aws_and_azure_round_trip_the_address() {
        let addr = ResourceAddr::must(r#"eks.eip.ingress["acme/us-east-1a"]"#);
        for codec in [&AwsTags as &dyn OwnerCodec, &AzureTags] {
            let tags = codec.encode(&own(), &addr);
            assert!(codec.owned_by(&own(), &tags));
            assert!(codec.names(&own(), &addr, &tags));
            assert!(!codec.names(&own(), &ResourceAddr::must("eks.vpc.main"), &tags));
            assert_eq!(codec.address_of(&tags), Some(addr.clone()));
            let other = Ownership { platform: "matih".into(), environment: "staging".into() };
            assert!(!codec.owned_by(&other, &tags));
        }
    }

    #[test]
    fn azure_compares_tag_names_without_case_and_uses_names_azure_dns_keeps() {
        let tags = BTreeMap::from([
            ("MATIH_Platform".to_string(), "matih".to_string()),
            ("matih_ENVIRONMENT".to_string(), "prod".to_string()),
            ("Matih_Address".to_string(), "aks.vnet.main".to_string()),
        ]);
        assert!(AzureTags.owned_by(&own(), &tags));
        assert!(AzureTags.names(&own(), &ResourceAddr::must("aks.vnet.main"), &tags));
        assert_eq!(AzureTags.address_of(&tags), Some(ResourceAddr::must("aks.vnet.main")));
        let addr = ResourceAddr::must(r#"dns.record.tenant["acme"]"#);
        for k in AzureTags.encode(&own(), &addr).keys() {
            assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{k}");
        }
    }

    #[test]
    fn gcp_labels_follow_the_rules_and_differ_per_address() {
        let long = format!(r#"k8s.addon.tenant_ingress["{}"]"#, "t".repeat(32));
        let addrs = [
            "gke.network.main".to_string(),
            r#"gke.static_ip.ingress["acme"]"#.to_string(),
            r#"dns.record.tenant["a-b"]"#.to_string(),
            r#"dns.record.tenant["a_b"]"#.to_string(),
            long,
        ];
        let mut seen = std::collections::BTreeSet::new();
        for a in &addrs {
            let addr = ResourceAddr::must(a);
            let labels = GcpLabels.encode(&own(), &addr);
            for (k, v) in &labels {
                assert!(gcp_label_ok(k) && k.starts_with(|c: char| c.is_ascii_lowercase()), "key {k}");
                assert!(gcp_label_ok(v), "{a}: value {v:?} breaks GCP's label rules");
            }
            assert!(GcpLabels.names(&own(), &addr, &labels));
            assert!(seen.insert(labels[LABEL_ADDRESS].clone()), "{a}: two addresses share a label");
        }
        assert!(gcp_address_label(&ResourceAddr::must("gke.network.main")).starts_with("gke-network-main-"));
        // Stable: the label of an address is part of how a lost create is found again.
        assert_eq!(gcp_address_label(&ResourceAddr::must("gke.network.main")), "gke-network-main-15af508a8301");
    }
}
