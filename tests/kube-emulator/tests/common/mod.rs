//! Helpers shared by the integration tests: a kube-rs client for an emulator, upstream manifests
//! from `shared/addons`, and assertions on API errors.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, Config};
use matih_kube_emulator::KubeEmulator;
use serde_json::Value;

/// A client for `em`, with no credentials.
pub fn client(em: &KubeEmulator) -> Client {
    client_with_token(em, None)
}

/// A client for `em` sending `Authorization: Bearer <token>`.
pub fn client_with_token(em: &KubeEmulator, token: Option<&str>) -> Client {
    let mut config = Config::new(em.url().parse().expect("the emulator URL is a URI"));
    config.auth_info.token = token.map(|t| secrecy::SecretString::from(t.to_string()));
    // In a workspace build the AWS SDK brings rustls's aws-lc-rs provider next to kube's ring, and
    // rustls then has no default: pick one, as the tool itself does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::try_from(config).expect("a client for the emulator")
}

/// The upstream add-on manifests: `$MATIH_ADDONS_DIR`, else `shared/addons` beside the checkout.
pub fn addons_dir() -> PathBuf {
    let dir = match std::env::var_os("MATIH_ADDONS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/addons"),
    };
    assert!(dir.is_dir(), "upstream manifests not found at {} (set MATIH_ADDONS_DIR)", dir.display());
    dir
}

/// Every document of a multi-document YAML file under the add-ons directory (empty ones skipped).
pub fn manifests(rel: &str) -> Vec<Value> {
    let path = addons_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The one document of a YAML file.
pub fn manifest(rel: &str) -> Value {
    let mut docs = manifests(rel);
    assert_eq!(docs.len(), 1, "{rel} holds {} documents", docs.len());
    docs.remove(0)
}

/// An `Api<DynamicObject>` for a kind the test names (no discovery).
pub fn dynamic(client: &Client, api_version: &str, kind: &str, plural: &str, ns: Option<&str>) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Server-side apply of a JSON object through `api`.
pub async fn apply(api: &Api<DynamicObject>, manager: &str, obj: &Value) -> kube::Result<DynamicObject> {
    let name = obj["metadata"]["name"].as_str().expect("the object has a name");
    api.patch(name, &PatchParams::apply(manager), &Patch::Apply(obj)).await
}

/// The API error of a result that must have failed.
pub fn api_error<T: std::fmt::Debug>(r: kube::Result<T>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// `managedFields` entries of an object as (manager, operation) pairs.
pub fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or_default().into(),
                        e["operation"].as_str().unwrap_or_default().into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `fieldsV1` of one manager's entry.
pub fn fields_of(obj: &Value, manager: &str, operation: &str) -> Option<Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .map(|e| e["fieldsV1"].clone())
}
