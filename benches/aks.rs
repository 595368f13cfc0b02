//! No-op plan against the ARM emulator with 10, 100 and 1,000 tenants (see `common`): wall time
//! and ARM calls of the batched refresh (one list per type and resource group or parent) side by
//! side with `--refresh per-resource` (one GET per resource), plus the record set writes of the
//! apply that created the tenants' records (Azure DNS has no batch API: one PUT each).
//!
//! `cargo bench --bench aks`. Every tenth tenant has a dedicated ingress (a public IP of its own);
//! the others share the platform's.

mod common;

use matih_azure_emulator::{AzureEmulator, Options};

const TOKEN: &str = "bench-token";
const KUBE_TOKEN: &str = "bench-kube-token";

fn main() {
    common::main_for(
        common::Cloud {
            name: "aks",
            state_file: "prod-aks.json",
            dns_change: |k| k.starts_with("Microsoft.Network:RecordSets_CreateOrUpdate"),
            start: || {
                let arm = AzureEmulator::start(Options {
                    token: Some(TOKEN.into()),
                    kubeconfig_token: KUBE_TOKEN.into(),
                    ..Options::default()
                });
                let env = vec![
                    ("MATIH_ARM_ENDPOINT".to_string(), arm.url()),
                    ("MATIH_AZURE_TOKEN".to_string(), TOKEN.to_string()),
                ];
                (env, Box::new(arm))
            },
            kube: || matih_kube_emulator::Options {
                auth: matih_kube_emulator::Auth::Bearer(KUBE_TOKEN.into()),
                flavor: matih_kube_emulator::Flavor::Aks,
                ..Default::default()
            },
        },
        "the ARM emulator",
    );
}
