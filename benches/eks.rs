//! No-op plan against moto with 10, 100 and 1,000 tenants (see `common`): wall time and API
//! calls of the batched refresh side by side with `--refresh per-resource`, plus the DNS change
//! calls of the apply that created the tenants' records.
//! Targets at 1,000 tenants: ≥ 100× fewer calls and ≤ 1 s wall for batched; ≤ 2 DNS change calls.
//!
//! `cargo bench --bench eks` (needs moto: `scripts/test` installs it). Every tenth tenant has a
//! dedicated ingress (three Elastic IPs of its own); the others share the platform's.

mod common;

use matih_emulators::Moto;

fn main() {
    common::main_for(
        common::eks(|| {
            let moto = Moto::start();
            let env = moto.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            (env, Box::new(moto))
        }),
        "moto",
    );
}
