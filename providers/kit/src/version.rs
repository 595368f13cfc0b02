//! Kubernetes versions as managed clusters take them: a control plane moves one minor version at
//! a time and never back (EKS, GKE and AKS alike), so a spec that asks for more is an error that
//! names the versions to apply in turn, before anything is sent.

use matih_plans::{ProviderError, ResourceAddr};

/// `(major, minor)` of a Kubernetes version (`1.33`, `1.33.2`, `v1.33.5-gke.100`).
pub fn minor_of(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim_start_matches('v').split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Whether `cloud` (`AKS`, `GKE`) can move the cluster at `addr` from `from` to `to` in one step.
pub fn check_upgrade(cloud: &str, addr: &ResourceAddr, from: &str, to: &str) -> Result<(), ProviderError> {
    let (Some(f), Some(t)) = (minor_of(from), minor_of(to)) else { return Ok(()) };
    let config = |message: String| Err(ProviderError::Config { addr: addr.clone(), message });
    if t < f {
        return config(format!(
            "the cluster runs Kubernetes {from}; {cloud} cannot downgrade it to {to}: set kubernetes_version to {}.{} or later",
            f.0, f.1
        ));
    }
    if t.0 == f.0 && t.1 > f.1 + 1 {
        let steps: Vec<String> = (f.1 + 1..=t.1).map(|m| format!("{}.{m}", t.0)).collect();
        return config(format!(
            "the cluster runs Kubernetes {from}; {cloud} upgrades one minor version at a time: set kubernetes_version to {} and apply, one after another",
            steps.join(", then ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_go_one_minor_version_at_a_time_and_never_back() {
        let addr = ResourceAddr::must("aks.cluster.main");
        assert!(check_upgrade("AKS", &addr, "1.33", "1.33").is_ok());
        assert!(check_upgrade("AKS", &addr, "1.33", "1.34").is_ok());
        assert!(check_upgrade("GKE", &addr, "1.33.5-gke.100", "1.34").is_ok());
        let skip = check_upgrade("AKS", &addr, "1.32", "1.35").unwrap_err().to_string();
        assert!(skip.contains("1.33, then 1.34, then 1.35"), "{skip}");
        let down = check_upgrade("GKE", &addr, "1.34", "1.33").unwrap_err().to_string();
        assert!(down.contains("GKE cannot downgrade"), "{down}");
        assert_eq!(minor_of("v1.33.5-gke.100"), Some((1, 33)));
    }
}
