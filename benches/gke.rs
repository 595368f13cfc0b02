//! No-op plan against the Google Cloud emulator with 10, 100 and 1,000 tenants (see `common`):
//! wall time and API calls of the batched refresh (one list per type, node pools per cluster,
//! record sets per zone) side by side with `--refresh per-resource` (one read per resource),
//! plus the Cloud DNS change calls of the apply that created the tenants' records.
//!
//! `cargo bench --bench gke`. Every tenth tenant has a dedicated ingress (a static IP of its
//! own); the others share the platform's.

mod common;

use matih_gcp_emulator::{GcpEmulator, Options};

const TOKEN: &str = "bench-gke-token";

fn main() {
    common::main_for(
        common::Cloud {
            name: "gke",
            state_file: "prod-gke.json",
            dns_change: |k| k.starts_with("dns:changes.create"),
            start: || {
                let gcp = GcpEmulator::start(Options::default());
                let env = vec![
                    ("MATIH_GCP_ENDPOINT".to_string(), gcp.url()),
                    ("MATIH_GCP_TOKEN".to_string(), TOKEN.to_string()),
                ];
                (env, Box::new(gcp))
            },
            kube: || matih_kube_emulator::Options {
                auth: matih_kube_emulator::Auth::Bearer(TOKEN.into()),
                flavor: matih_kube_emulator::Flavor::Gke,
                ..Default::default()
            },
        },
        "the Google Cloud emulator",
    );
}
