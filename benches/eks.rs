//! No-op plan against moto with 10, 100 and 1,000 tenants (see `common`): wall time and API
//! calls of the batched refresh side by side with `--refresh per-resource`, plus the DNS change
//! calls of the apply that created the tenants' records.
//! Targets at 1,000 tenants: ≥ 100× fewer calls and ≤ 1 s wall for batched; ≤ 2 DNS change calls.
//!
//! `cargo bench --bench eks` (needs moto: `scripts/test` installs it). Every tenth tenant has a
//! dedicated ingress (three Elastic IPs of its own); the others share the platform's.
//!
//! moto runs as three servers, EC2, Route 53 and the rest (EKS, IAM), each on its own endpoint
//! the way AWS serves them ([`MotoPerService`]): one moto process serves its requests one at a
//! time, so a single server would queue the plan's EC2 reads behind its Route 53 pages.

mod common;

use matih_emulators::MotoPerService;

fn main() {
    common::main_for(
        common::eks(|| {
            let moto = MotoPerService::start(&[&["EC2"], &["ROUTE_53"]]);
            (moto.env(), Box::new(moto))
        }),
        "moto",
    );
}
