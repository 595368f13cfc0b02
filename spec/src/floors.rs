//! The oldest Kubernetes minor version each pinned add-on release can be installed on, and why.
//!
//! The floors come from what the release's manifests use (an API field or a CEL function a
//! smaller API server refuses); `providers/kubernetes` derives them from the pinned manifests in
//! a test and checks that this table says the same. A release not in the table (a version pinned
//! in the platform spec that the tool was not tested with) has no known floor.

use crate::{Addons, CloudKind, PlatformSpec};

/// One add-on release's floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floor {
    /// The add-on, as `addons.<key>` names it.
    pub addon: &'static str,
    /// The release (`addons.<key>.version`).
    pub version: &'static str,
    /// The oldest Kubernetes minor version (1.`minor`) whose API server accepts its manifests.
    pub minor: u32,
    /// What in its manifests needs that version.
    pub because: &'static str,
}

/// Floors of the releases the tool pins by default.
pub const FLOORS: &[Floor] = &[
    Floor {
        addon: "calico",
        version: Addons::DEFAULT_CALICO,
        minor: 31,
        because: "its operator CRDs validate with the CEL function isCIDR, which API servers have from 1.31",
    },
    Floor {
        addon: "cert_manager",
        version: Addons::DEFAULT_CERT_MANAGER,
        minor: 30,
        because: "its CRDs declare selectableFields, a CRD field API servers have from 1.30",
    },
    Floor {
        addon: "ingress_nginx",
        version: Addons::DEFAULT_INGRESS_NGINX,
        minor: 23,
        because: "its admission Jobs set ttlSecondsAfterFinished, which API servers have from 1.23",
    },
];

/// The add-ons the tool installs itself on `cloud` (GKE and AKS run their own managed Calico).
pub fn installed_on(cloud: CloudKind) -> &'static [&'static str] {
    match cloud {
        CloudKind::Eks => &["calico", "cert_manager", "ingress_nginx"],
        CloudKind::Gke | CloudKind::Aks => &["cert_manager", "ingress_nginx"],
    }
}

/// The version `spec` pins for `addon`.
fn pinned<'s>(spec: &'s Addons, addon: &str) -> &'s str {
    match addon {
        "calico" => &spec.calico.version,
        "cert_manager" => &spec.cert_manager.version,
        _ => &spec.ingress_nginx.version,
    }
}

/// The highest floor among the add-ons installed on `cloud` at the versions `spec` pins.
pub fn floor(spec: &PlatformSpec, cloud: CloudKind) -> Option<Floor> {
    installed_on(cloud)
        .iter()
        .filter_map(|a| FLOORS.iter().find(|f| f.addon == *a && f.version == pinned(&spec.addons, a)))
        .max_by_key(|f| f.minor)
        .copied()
}

/// `1.NN` as its minor number.
pub fn minor(version: &str) -> Option<u32> {
    version.strip_prefix("1.")?.parse().ok()
}
