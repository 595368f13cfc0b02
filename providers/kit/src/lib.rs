//! What every cloud provider shares, written once: the seam a cloud plugs into ([`Cloud`]), the
//! typed binding between a cloud and the cluster bootstrap ([`ClusterBinding`]), the registry
//! that dispatches engine calls to one implementation per resource type ([`KitProvider`], [`Kind`]),
//! the create path that never creates twice when the network lies ([`create`]), retries with
//! back-off for throttles and server errors ([`retry`]), the one call counter ([`Recorder`]),
//! waits for a status or for deletion ([`wait`]), owner tags per cloud ([`owner`]), the schema
//! builder ([`schema()`]) and the cloud-neutral DNS part of the graph ([`dns`]).
//!
//! It depends on no cloud SDK and no Kubernetes crate: cloud crates and the bootstrap crate
//! depend on it, never on each other. It talks to no network itself.

// Provider errors carry typed addresses and causes; they are built next to network I/O.
#![allow(clippy::result_large_err)]

pub mod calls;
pub mod cfg;
pub mod cloud;
pub mod create;
pub mod dns;
pub mod kind;
#[cfg(feature = "objects")]
pub mod objects;
pub mod owner;
pub mod retry;
pub mod schema;
pub mod version;
pub mod wait;

pub use calls::Recorder;
pub use cfg::{Cfg, attrs};
pub use cloud::{
    Cloud, ClusterAccess, ClusterBinding, ClusterInfo, ClusterRef, Connected, Dns01Solver, ExecCredential,
    LoadBalancer, Secret,
};
pub use kind::{Found, Kind, KitProvider, Listing};
pub use owner::OwnerCodec;
pub use retry::{Call, RetryPolicy};
pub use schema::schema;

use matih_plans::ProviderError;

/// The first error of type `T` in `e`'s source chain (`e` included): how a transport's typed
/// cause (a connect failure) is found under an SDK's own error.
pub fn in_chain<'e, T: std::error::Error + 'static>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e T> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<T>() {
            return Some(t);
        }
        cur = c.source();
    }
    None
}

/// A delete's result where "already gone" counts as deleted.
pub fn gone_ok<T>(r: Result<T, ProviderError>) -> Result<(), ProviderError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == matih_plans::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `r`, or `Ok(None)` if the thing is not there.
pub fn not_found_none<T>(r: Result<T, ProviderError>) -> Result<Option<T>, ProviderError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == matih_plans::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A secondary call's result where one of the service's `codes` means "already as wanted"
/// (attaching an attached gateway, adding a rule that is there).
pub fn already_ok<T>(r: Result<T, ProviderError>, codes: &[&str]) -> Result<(), ProviderError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code().is_some_and(|c| codes.contains(&c)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The same outcome for every member of a batch that rode on one call.
pub fn replicate<T: Clone>(r: &Result<T, ProviderError>, n: usize) -> Vec<Result<T, ProviderError>> {
    vec![r.clone(); n]
}
