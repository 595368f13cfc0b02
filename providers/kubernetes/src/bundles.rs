//! The objects of each pinned upstream release, so that a plan (which reads no manifest and no
//! network) can say which objects an add-on creates, keeps or deletes, by kind and name.
//!
//! `bundles.txt` is generated from the pinned manifests, as the bootstrap applies them (moved
//! into the platform's namespaces, see [`crate::addons::relocate`]); a test regenerates it from
//! the manifests and compares (`UPDATE_BUNDLES=1` writes it). A release that is not pinned has no
//! listing: its objects are known once it is fetched.

use std::sync::OnceLock;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::manifests::ManifestFile;

/// One object of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleObject {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// Digest of the object as released (16 hex digits): a later release changed it if this differs.
    pub digest: String,
}

impl BundleObject {
    /// Its key among an add-on's objects: `Kind/namespace/name` or `Kind/name`.
    pub fn key(&self) -> String {
        crate::provider::key(&self.kind, self.namespace.as_deref(), &self.name)
    }
}

const TABLE: &str = include_str!("bundles.txt");

/// `(manifest path, objects)` for every listed release, in file order.
fn table() -> &'static [(String, Vec<BundleObject>)] {
    static PARSED: OnceLock<Vec<(String, Vec<BundleObject>)>> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut out: Vec<(String, Vec<BundleObject>)> = Vec::new();
        for line in TABLE.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "bundles.txt: {line}");
            let o = BundleObject {
                kind: f[1].into(),
                namespace: (f[2] != "-").then(|| f[2].to_string()),
                name: f[3].into(),
                digest: f[4].into(),
            };
            match out.last_mut() {
                Some((path, objects)) if path == f[0] => objects.push(o),
                _ => out.push((f[0].to_string(), vec![o])),
            }
        }
        out
    })
}

/// The objects `file` at `version` brings, if the release is listed.
pub fn objects(file: ManifestFile, version: &str) -> Option<&'static [BundleObject]> {
    let path = format!("{}/{version}/{}", file.addon(), file.file_name());
    table().iter().find(|(p, _)| *p == path).map(|(_, o)| o.as_slice())
}

/// Digest of one object (16 hex digits of the sha256 of its JSON).
pub fn object_digest(o: &Json) -> String {
    json_digest(o)
}

/// The first 8 bytes of the SHA-256 of `v` as compact JSON, in hex. The JSON is written straight
/// into the hash, never held as text.
pub fn json_digest(v: &Json) -> String {
    let mut hash = Sha256::new();
    serde_json::to_writer(&mut hash, v).expect("a JSON value writes to a hash");
    hex::encode(&hash.finalize()[..8])
}

/// The listing of one release's objects (already relocated), as `bundles.txt` lines.
pub fn listing(path: &str, objects: &[Json]) -> String {
    let mut out = String::new();
    for o in objects {
        let s = |p: &str| o.pointer(p).and_then(Json::as_str).unwrap_or("-").to_string();
        out.push_str(&format!(
            "{path}\t{}\t{}\t{}\t{}\n",
            s("/kind"),
            s("/metadata/namespace"),
            s("/metadata/name"),
            object_digest(o)
        ));
    }
    out
}

/// The header of `bundles.txt`.
pub const HEADER: &str = "# Objects of each pinned upstream release as the bootstrap applies them:\n\
# manifest path, kind, namespace (- for none), name, digest of the object.\n\
# Generated from the manifests: UPDATE_BUNDLES=1 cargo test -p matih-provider-kubernetes --test manifests bundles\n";
