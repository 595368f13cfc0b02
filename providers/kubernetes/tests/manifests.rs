//! Add-on manifests: the pinned digests against the upstream copies in `shared/addons`, parsing
//! those copies, and loading them from a local directory and from a mirror on 127.0.0.1 (a tiny
//! HTTP server written here, which counts requests so the cache can be observed).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matih_provider_kubernetes::manifests::{
    self, FetchOptions, ManifestError, ManifestFile, ManifestRequest, PINNED, Source, load, load_with, parse_documents,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The read-only upstream copies (`/work/shared/addons`).
fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/addons")
}

fn read_shared(rel: &str) -> Vec<u8> {
    let path = shared().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("test data `{}`: {e}", path.display()))
}

fn parse_shared(rel: &str) -> Vec<Value> {
    let text = String::from_utf8(read_shared(rel)).unwrap();
    parse_documents(&text, rel).unwrap_or_else(|e| panic!("{e}"))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn kinds(objects: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for o in objects {
        *out.entry(o["kind"].as_str().unwrap().to_string()).or_default() += 1;
    }
    out
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn req(file: ManifestFile) -> ManifestRequest {
    ManifestRequest::default_for(file)
}

// ---------------------------------------------------------------------------------------------
// The digest table

#[test]
fn every_pinned_digest_matches_the_upstream_copy() {
    assert_eq!(PINNED.len(), 4, "ingress-nginx aws/cloud, tigera-operator, operator-crds");
    for pin in PINNED {
        let bytes = read_shared(&pin.path());
        assert_eq!(pin.sha256, sha256(&bytes), "{}", pin.path());
        assert_eq!(pin.size, bytes.len() as u64, "{}", pin.path());
        // The defaults are what is pinned.
        assert_eq!(pin.version, pin.file.default_version(), "{}", pin.path());
        assert_eq!(req(pin.file).pinned(), Some(pin));
    }
    // cert-manager's release asset has no known digest: it loads unverified.
    assert_eq!(req(ManifestFile::CertManager).pinned(), None);
    assert_eq!(manifests::pinned(ManifestFile::TigeraOperator, "v3.31.0"), None);
}

// ---------------------------------------------------------------------------------------------
// Parsing the upstream copies

#[test]
fn ingress_nginx_bundles_have_19_objects() {
    let want = counts(&[
        ("ClusterRole", 2),
        ("ClusterRoleBinding", 2),
        ("ConfigMap", 1),
        ("Deployment", 1),
        ("IngressClass", 1),
        ("Job", 2),
        ("Namespace", 1),
        ("Role", 2),
        ("RoleBinding", 2),
        ("Service", 2),
        ("ServiceAccount", 2),
        ("ValidatingWebhookConfiguration", 1),
    ]);
    for rel in
        ["ingress-nginx/controller-v1.15.1/aws-deploy.yaml", "ingress-nginx/controller-v1.15.1/cloud-deploy.yaml"]
    {
        let objects = parse_shared(rel);
        assert_eq!(objects.len(), 19, "{rel}");
        assert_eq!(kinds(&objects), want, "{rel}");
        let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(deployment["metadata"]["name"], "ingress-nginx-controller");
        let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap();
        assert!(image.starts_with("registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:594ceea7"), "{image}");
        // Integers stay integers (the API server refuses 1.0 for an int field).
        assert_eq!(deployment["spec"]["revisionHistoryLimit"], Value::from(10));
    }
    // The AWS flavour's service carries the NLB annotation; the cloud one does not.
    let svc = |rel| {
        parse_shared(rel)
            .into_iter()
            .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "ingress-nginx-controller")
            .unwrap()
    };
    let aws = svc("ingress-nginx/controller-v1.15.1/aws-deploy.yaml");
    let cloud = svc("ingress-nginx/controller-v1.15.1/cloud-deploy.yaml");
    assert_eq!(aws["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"], "nlb");
    assert!(cloud["metadata"]["annotations"].is_null());
}

#[test]
fn tigera_operator_has_no_crds() {
    let objects = parse_shared("calico/v3.32.1/tigera-operator.yaml");
    assert_eq!(
        kinds(&objects),
        counts(&[
            ("ClusterRole", 2),
            ("ClusterRoleBinding", 1),
            ("Deployment", 1),
            ("Namespace", 1),
            ("RoleBinding", 1),
            ("ServiceAccount", 1)
        ])
    );
    assert_eq!(objects[0]["kind"], "Namespace", "the namespace comes first");
    assert_eq!(objects[0]["metadata"]["name"], "tigera-operator");
}

#[test]
fn operator_crds_are_32_custom_resource_definitions() {
    let text = String::from_utf8(read_shared("calico/v3.32.1/operator-crds.yaml")).unwrap();
    // Measured, not asserted: `cargo test [--release] --test manifests -- --nocapture` prints it.
    let runs = 3;
    let started = Instant::now();
    let mut objects = Vec::new();
    for _ in 0..runs {
        objects = parse_documents(&text, "operator-crds.yaml").unwrap();
    }
    let each = started.elapsed() / runs;
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("operator-crds.yaml ({} bytes): parsed in {each:.1?} ({profile} build, mean of {runs})", text.len());

    assert_eq!(kinds(&objects), counts(&[("CustomResourceDefinition", 32)]));
    let names: Vec<&str> = objects.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    // What custom-resources.yaml needs (Installation, APIServer, Goldmane, Whisker).
    for needed in [
        "installations.operator.tigera.io",
        "apiservers.operator.tigera.io",
        "goldmanes.operator.tigera.io",
        "whiskers.operator.tigera.io",
    ] {
        assert!(names.contains(&needed), "{needed} missing from {names:?}");
    }
    assert_eq!(names.iter().filter(|n| n.ends_with(".crd.projectcalico.org")).count(), 22);
}

#[test]
fn cert_manager_crd_files_hold_one_crd_each() {
    let dir = shared().join("cert-manager/v1.21.1/crds");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let objects = parse_shared(&format!("cert-manager/v1.21.1/crds/{name}"));
        assert_eq!(objects.len(), 1, "{name}");
        assert_eq!(objects[0]["kind"], "CustomResourceDefinition", "{name}");
        // `cert-manager.io_certificates.yaml` defines `certificates.cert-manager.io`.
        let (group, plural) = name.trim_end_matches(".yaml").split_once('_').unwrap();
        assert_eq!(objects[0]["metadata"]["name"], format!("{plural}.{group}"), "{name}");
        seen += 1;
    }
    assert_eq!(seen, 6);
}

#[test]
fn non_ascii_descriptions_survive() {
    let cert = parse_shared("cert-manager/v1.21.1/crds/cert-manager.io_certificates.yaml");
    let spec = &cert[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let cron = spec["renewal"]["properties"]["windows"]["items"]["properties"]["cron"]["description"].as_str().unwrap();
    assert!(cron.contains("| | | | day of the week (0–6) (Sunday to Saturday;\n"), "{cron}");
    assert!(cron.ends_with("minute (0–59)"), "{cron}");

    let order = parse_shared("cert-manager/v1.21.1/crds/acme.cert-manager.io_orders.yaml");
    let spec = &order[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let replaces = spec["replaces"]["description"].as_str().unwrap();
    assert!(replaces.contains("ARI CertID (RFC 9773 §4.1)"), "{replaces}");
}

// ---------------------------------------------------------------------------------------------
// Parsing rules and errors

#[test]
fn empty_and_comment_only_documents_are_skipped_and_lists_flattened() {
    let text = "\
# leading comment
---
---
# only a comment
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b}
--- ~
---
apiVersion: v1
kind: Secret
metadata: {name: c}
stringData: {enabled: 'true', port: \"8080\"}
data: null
...
";
    let objects = parse_documents(text, "inline").unwrap();
    let names: Vec<_> = objects.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(objects[2]["stringData"]["enabled"], "true", "quoted scalars stay strings");
    assert_eq!(objects[2]["stringData"]["port"], "8080");
    assert!(objects[2]["data"].is_null());
    assert_eq!(parse_documents("# nothing here\n", "inline").unwrap(), Vec::<Value>::new());
    assert_eq!(parse_documents("", "inline").unwrap(), Vec::<Value>::new());
}

#[test]
fn anchors_and_merge_keys_resolve() {
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  labels: &common {app: web, tier: front}
  annotations:
    <<: *common
    tier: back
data: {copy: *common}
";
    let o = &parse_documents(text, "inline").unwrap()[0];
    assert_eq!(o["metadata"]["annotations"], serde_json::json!({"tier": "back", "app": "web"}));
    assert_eq!(o["data"]["copy"], serde_json::json!({"app": "web", "tier": "front"}));
}

#[test]
fn syntax_errors_report_origin_line_and_column() {
    let text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: [1, 2\n  b: 3\n";
    let err = parse_documents(text, "broken.yaml").unwrap_err();
    let ManifestError::Yaml { origin, line, column, .. } = &err else { panic!("{err:?}") };
    assert_eq!(origin, "broken.yaml");
    assert_eq!(*line, 5, "{err}");
    assert!(*column > 0, "{err}");
    assert!(err.to_string().starts_with(&format!("broken.yaml:{line}:{column}: YAML syntax error")), "{err}");
    assert!(err.hint().unwrap().contains("broken.yaml"));

    // Tab indentation, a classic hand-edit.
    let err = parse_documents("apiVersion: v1\nkind: X\nspec:\n\tfoo: 1\n", "tabs.yaml").unwrap_err();
    assert!(matches!(err, ManifestError::Yaml { line: 4, .. }), "{err:?}");
}

#[test]
fn documents_that_are_not_objects_are_refused_where_they_start() {
    let cases = [
        ("apiVersion: v1\nkind: A\n---\n- a\n- b\n", 4, 1, "a list"),
        ("apiVersion: v1\nkind: A\n---\n\n  metadata: {name: x}\n", 5, 3, "no `apiVersion`"),
        ("---\napiVersion: v1\nmetadata: {}\n", 2, 1, "no `kind`"),
        ("apiVersion: v1\nkind: List\nitems:\n- 3\n", 1, 1, "item 0 of the list"),
        ("apiVersion: v1\nkind: A\nspec:\n  [a, b]: 1\n", 4, 3, "mapping key is a list"),
        ("apiVersion: v1\nkind: A\nspec: {n: .inf}\n", 3, 11, "JSON has no NaN or infinity"),
    ];
    for (text, want_line, want_column, what) in cases {
        let err = parse_documents(text, "x.yaml").unwrap_err();
        let ManifestError::Invalid { line, column, problem, .. } = &err else { panic!("{text:?}: {err:?}") };
        assert_eq!((*line, *column), (want_line, want_column), "{text:?}: {err}");
        assert!(problem.contains(what), "{text:?}: {err}");
        assert!(err.to_string().starts_with(&format!("x.yaml:{want_line}:{want_column}: ")), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Source::Dir

#[tokio::test]
async fn local_directory_loads_pinned_files_verified() {
    let source = Source::Dir(shared());
    assert!(source.describe().contains("local directory"), "{}", source.describe());
    for pin in PINNED {
        let m = load(&source, &req(pin.file)).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(m.verified, "{}", m.file);
        assert_eq!(m.sha256, pin.sha256);
        assert_eq!(m.file, pin.path());
        assert!(m.origin.ends_with(&pin.path()), "{}", m.origin);
        assert!(!m.from_cache && m.cache_path.is_none());
        assert_eq!(m.unverified_note(), None);
        assert!(!m.objects.is_empty());
    }
}

#[tokio::test]
async fn local_copy_with_one_byte_changed_is_refused_naming_both_digests() {
    let dir = tempfile::tempdir().unwrap();
    let rel = "calico/v3.32.1/tigera-operator.yaml";
    let mut bytes = read_shared(rel);
    // Still valid YAML (a letter in a comment or value), so only the digest can catch it.
    let i = bytes.iter().position(|&b| b == b'a').unwrap();
    bytes[i] = b'b';
    std::fs::create_dir_all(dir.path().join("calico/v3.32.1")).unwrap();
    std::fs::write(dir.path().join(rel), &bytes).unwrap();

    let err = load(&Source::Dir(dir.path().into()), &req(ManifestFile::TigeraOperator)).await.unwrap_err();
    let ManifestError::DigestMismatch { expected, actual, origin, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*expected, "f18e073794207d372606bc3ea6f8fd73972f86d6828f4ba666dfe0d4aa8ab07f");
    assert_eq!(actual, &sha256(&bytes));
    let msg = err.to_string();
    assert!(msg.contains(*expected) && msg.contains(actual.as_str()) && msg.contains(rel), "{msg}");
    assert!(msg.contains(origin.as_str()) && origin.ends_with(rel), "{msg}");
    let hint = err.hint().unwrap();
    assert!(
        hint.contains("https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/tigera-operator.yaml"),
        "{hint}"
    );
}

#[tokio::test]
async fn missing_local_file_names_the_path_and_the_upstream_url() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&Source::Dir(dir.path().into()), &req(ManifestFile::IngressNginxAws)).await.unwrap_err();
    let msg = err.to_string();
    let path = dir.path().join("ingress-nginx/controller-v1.15.1/aws-deploy.yaml");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains(
            "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.15.1/deploy/static/provider/aws/deploy.yaml"
        ),
        "{msg}"
    );
    assert!(matches!(err, ManifestError::Missing { crds_only: false, .. }), "{err:?}");
}

#[tokio::test]
async fn cert_manager_crds_are_not_taken_for_the_release_manifest() {
    // shared/addons has cert-manager's CRDs only; nothing may be pieced together from them.
    let err = load(&Source::Dir(shared()), &req(ManifestFile::CertManager)).await.unwrap_err();
    let ManifestError::Missing { crds_only, path, upstream_url, .. } = &err else { panic!("{err:?}") };
    assert!(crds_only);
    assert!(path.ends_with("cert-manager/v1.21.1/cert-manager.yaml"), "{}", path.display());
    assert_eq!(
        upstream_url,
        "https://github.com/cert-manager/cert-manager/releases/download/v1.21.1/cert-manager.yaml"
    );
    let hint = err.hint().unwrap();
    assert!(hint.contains("`crds/`") && hint.contains("release asset"), "{hint}");

    // Another version the directory lacks: the hint lists what it has.
    let other = ManifestRequest::new(ManifestFile::TigeraOperator, "v3.30.0").unwrap();
    let err = load(&Source::Dir(shared()), &other).await.unwrap_err();
    assert!(err.hint().unwrap().contains("has calico v3.32.1"), "{:?}", err.hint());
}

#[tokio::test]
async fn a_version_without_a_pinned_digest_loads_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let rel = "calico/v3.99.0/tigera-operator.yaml";
    std::fs::create_dir_all(dir.path().join("calico/v3.99.0")).unwrap();
    std::fs::write(dir.path().join(rel), read_shared("calico/v3.32.1/tigera-operator.yaml")).unwrap();

    let r = ManifestRequest::new(ManifestFile::TigeraOperator, "v3.99.0").unwrap();
    let m = load(&Source::Dir(dir.path().into()), &r).await.unwrap();
    assert!(!m.verified);
    assert_eq!(m.objects.len(), 7);
    let note = m.unverified_note().unwrap();
    assert!(note.contains(rel) && note.contains(&m.sha256), "{note}");
}

// ---------------------------------------------------------------------------------------------
// Source::Mirror against a server on 127.0.0.1

/// A mirror of `shared/addons` on 127.0.0.1 that records every request path.
///
/// Routes: `/addons/<path>` serves the file (404 when absent); `/redirect/<path>` answers 302 to
/// `/addons/<path>`; `/retag/<add-on>/<any version>/<file>` serves the pinned version's file;
/// `/tampered/<path>` serves the file with one byte changed; `/loop/<path>`
/// redirects to itself; `/hang/<path>` never answers.
struct Mirror {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Mirror {
    async fn start() -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, log.clone()));
            }
        });
        Mirror { base, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn source(&self, route: &str, cache_dir: &Path) -> Source {
        Source::Mirror { base_url: format!("{}/{route}", self.base), cache_dir: cache_dir.into() }
    }
}

async fn answer(mut socket: TcpStream, log: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    log.lock().unwrap().push(path.clone());

    let (route, rest) = path.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
    let file = || std::fs::read(shared().join(rest)).ok();
    let (status, location, body) = match route {
        "addons" => match file() {
            Some(body) => ("200 OK", None, body),
            None => ("404 Not Found", None, b"no such file\n".to_vec()),
        },
        "redirect" => ("302 Found", Some(format!("/addons/{rest}")), Vec::new()),
        "loop" => ("302 Found", Some(path.clone()), Vec::new()),
        "retag" => {
            // Any version of a file: the pinned one's bytes.
            let mut parts: Vec<&str> = rest.splitn(3, '/').collect();
            parts[1] = match parts[0] {
                "calico" => "v3.32.1",
                "ingress-nginx" => "controller-v1.15.1",
                _ => "v1.21.1",
            };
            ("200 OK", None, std::fs::read(shared().join(parts.join("/"))).unwrap())
        }
        "tampered" => {
            let mut body = file().unwrap();
            let i = body.iter().position(|&b| b == b'a').unwrap();
            body[i] = b'b';
            ("200 OK", None, body)
        }
        "hang" => {
            // Hold the connection open without answering; the client's deadline ends it.
            std::future::pending::<()>().await;
            unreachable!()
        }
        _ => ("404 Not Found", None, Vec::new()),
    };
    let mut response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    if let Some(location) = location {
        response.push_str(&format!("Location: {location}\r\n"));
    }
    response.push_str("\r\n");
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.write_all(&body).await;
    let _ = socket.shutdown().await;
}

#[tokio::test]
async fn mirror_downloads_through_a_redirect_then_serves_from_cache() {
    let mirror = Mirror::start().await;
    let cache = tempfile::tempdir().unwrap();
    let source = mirror.source("redirect", cache.path());
    let r = req(ManifestFile::CalicoOperatorCrds);
    let rel = "calico/v3.32.1/operator-crds.yaml";

    // First load: the redirect is followed, the file verified, parsed and cached.
    let first = load(&source, &r).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mirror.requests(), [format!("/redirect/{rel}"), format!("/addons/{rel}")]);
    assert!(first.verified && !first.from_cache);
    assert_eq!(first.origin, format!("{}/redirect/{rel}", mirror.base));
    assert_eq!(first.objects.len(), 32);
    let cached = cache.path().join(rel);
    assert_eq!(first.cache_path.as_deref(), Some(cached.as_path()));
    assert_eq!(sha256(&std::fs::read(&cached).unwrap()), first.sha256);
    let leftovers: Vec<_> =
        std::fs::read_dir(cached.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind: {leftovers:?}");

    // Second load: from the cache, no request.
    let second = load(&source, &r).await.unwrap();
    assert_eq!(mirror.requests().len(), 2);
    assert!(second.verified && second.from_cache);
    assert_eq!(second.objects, first.objects);

    // A cached copy corrupted on disk is downloaded again (once) and replaced.
    let mut bytes = std::fs::read(&cached).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&cached, &bytes).unwrap();
    let third = load(&source, &r).await.unwrap();
    assert_eq!(mirror.requests().len(), 4, "{:?}", mirror.requests());
    assert!(third.verified && !third.from_cache);
    assert_eq!(sha256(&std::fs::read(&cached).unwrap()), manifests::pinned(r.file(), r.version()).unwrap().sha256);
}

#[tokio::test]
async fn a_corrupt_cache_and_a_tampered_mirror_give_one_download_then_an_error() {
    let mirror = Mirror::start().await;
    let cache = tempfile::tempdir().unwrap();
    let rel = "ingress-nginx/controller-v1.15.1/cloud-deploy.yaml";
    let cached = cache.path().join(rel);
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    std::fs::write(&cached, "not what was pinned\n").unwrap();

    let err = load(&mirror.source("tampered", cache.path()), &req(ManifestFile::IngressNginxCloud)).await.unwrap_err();
    assert_eq!(mirror.requests(), [format!("/tampered/{rel}")], "exactly one download");
    let ManifestError::DigestMismatch { origin, expected, actual, .. } = &err else { panic!("{err:?}") };
    assert_eq!(origin, &format!("{}/tampered/{rel}", mirror.base));
    assert_eq!(*expected, "502fddca66b09c20dd48b6d0a792a9671cd663a3a0d2a8bda5ae990d13b6c5b2");
    assert_ne!(actual, expected);
    assert!(err.hint().unwrap().contains("mirror"), "{:?}", err.hint());
    // The bad download was not cached over the old entry.
    assert_eq!(std::fs::read_to_string(&cached).unwrap(), "not what was pinned\n");
}

#[tokio::test]
async fn a_404_gives_the_url_and_caches_nothing() {
    let mirror = Mirror::start().await;
    let cache = tempfile::tempdir().unwrap();
    let r = ManifestRequest::new(ManifestFile::TigeraOperator, "v3.30.0").unwrap();
    let err = load(&mirror.source("addons", cache.path()), &r).await.unwrap_err();
    let url = format!("{}/addons/calico/v3.30.0/tigera-operator.yaml", mirror.base);
    assert!(matches!(&err, ManifestError::Status { status: 404, url: u, requested: None, .. } if *u == url), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&url) && msg.contains("404"), "{msg}");
    assert!(err.hint().unwrap().contains("version"), "{:?}", err.hint());
    assert!(!cache.path().join("calico/v3.30.0").exists(), "nothing cached for a failed download");
}

#[tokio::test]
async fn an_unpinned_version_from_a_mirror_is_cached_unverified() {
    let mirror = Mirror::start().await;
    let cache = tempfile::tempdir().unwrap();
    let source = mirror.source("retag", cache.path());
    let r = ManifestRequest::new(ManifestFile::TigeraOperator, "v3.99.0").unwrap();

    let first = load(&source, &r).await.unwrap();
    assert!(!first.verified && !first.from_cache);
    assert_eq!(first.objects.len(), 7);
    assert!(first.unverified_note().unwrap().contains("calico/v3.99.0/tigera-operator.yaml"));
    assert!(cache.path().join("calico/v3.99.0/tigera-operator.yaml").is_file());

    let second = load(&source, &r).await.unwrap();
    assert!(!second.verified && second.from_cache);
    assert_eq!(second.sha256, first.sha256);
    assert_eq!(mirror.requests().len(), 1);
}

#[tokio::test]
async fn a_404_after_a_redirect_names_both_urls() {
    let mirror = Mirror::start().await;
    let cache = tempfile::tempdir().unwrap();
    let r = ManifestRequest::new(ManifestFile::CalicoOperatorCrds, "v0.0.1").unwrap();
    let err = load(&mirror.source("redirect", cache.path()), &r).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}/addons/calico/v0.0.1/operator-crds.yaml answered 404", mirror.base)), "{msg}");
    assert!(msg.contains(&format!("redirected from {}/redirect/", mirror.base)), "{msg}");
}

#[tokio::test]
async fn redirect_loops_and_silent_servers_end_with_clear_errors() {
    let mirror = Mirror::start().await;
    let cache = tempfile::tempdir().unwrap();
    let r = req(ManifestFile::TigeraOperator);

    let err = load(&mirror.source("loop", cache.path()), &r).await.unwrap_err();
    assert!(matches!(err, ManifestError::TooManyRedirects { limit: 5, .. }), "{err:?}");
    assert_eq!(mirror.requests().len(), 6, "the first request and five redirects");

    let opts = FetchOptions { timeout: Duration::from_millis(300), ..FetchOptions::default() };
    let err = load_with(&mirror.source("hang", cache.path()), &r, &opts).await.unwrap_err();
    let ManifestError::Timeout { url, .. } = &err else { panic!("{err:?}") };
    assert_eq!(url, &format!("{}/hang/calico/v3.32.1/tigera-operator.yaml", mirror.base));
    assert!(err.to_string().contains(url.as_str()));
}

#[tokio::test]
async fn connection_failures_name_the_url() {
    // A port nobody listens on: bind one, note it, close it.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let cache = tempfile::tempdir().unwrap();
    let source = Source::Mirror { base_url: format!("http://127.0.0.1:{port}"), cache_dir: cache.path().into() };
    let err = load(&source, &req(ManifestFile::TigeraOperator)).await.unwrap_err();
    assert!(matches!(err, ManifestError::Request { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("http://127.0.0.1:{port}/calico/v3.32.1/tigera-operator.yaml")));
    assert!(std::error::Error::source(&err).is_some(), "the cause is kept");
}

#[tokio::test]
async fn https_goes_through_rustls() {
    // A server that answers a TLS ClientHello with plain text: this proves the https:// path
    // builds its rustls client (no crypto-provider panic) and reports the failed handshake with
    // the URL. Without system root certificates the error is `TlsRoots` instead.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
            let _ = socket.shutdown().await;
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let source = Source::Mirror { base_url: base_url.clone(), cache_dir: cache.path().into() };
    let err = load(&source, &req(ManifestFile::TigeraOperator)).await.unwrap_err();
    assert!(matches!(err, ManifestError::Request { .. } | ManifestError::TlsRoots { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("{base_url}/calico/v3.32.1/tigera-operator.yaml")), "{err}");
}

#[tokio::test]
async fn a_bad_mirror_url_is_refused_before_anything_else() {
    let cache = tempfile::tempdir().unwrap();
    let source = Source::Mirror { base_url: "mirror.local/addons".into(), cache_dir: cache.path().into() };
    let err = load(&source, &req(ManifestFile::TigeraOperator)).await.unwrap_err();
    assert!(matches!(err, ManifestError::BadUrl { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("MATIH_ADDONS_MIRROR"));
}

#[test]
fn upstream_urls_are_the_release_urls() {
    let urls: HashMap<ManifestFile, String> = ManifestFile::ALL.iter().map(|f| (*f, req(*f).upstream_url())).collect();
    assert_eq!(
        urls[&ManifestFile::IngressNginxCloud],
        "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.15.1/deploy/static/provider/cloud/deploy.yaml"
    );
    assert_eq!(
        urls[&ManifestFile::CalicoOperatorCrds],
        "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/operator-crds.yaml"
    );
    assert_eq!(
        urls[&ManifestFile::CertManager],
        "https://github.com/cert-manager/cert-manager/releases/download/v1.21.1/cert-manager.yaml"
    );
    let source = Source::Upstream { cache_dir: "/c".into() };
    assert_eq!(source.url_for(&req(ManifestFile::TigeraOperator)), Some(urls[&ManifestFile::TigeraOperator].clone()));
}

// ---------------------------------------------------------------------------------------------
// Kubernetes version floors

#[test]
fn the_platform_specs_floor_table_is_what_the_pinned_manifests_need() {
    use matih_spec::floors::FLOORS;
    let files = |addon: &str, version: &str| -> Vec<String> {
        let dir = shared().join(addon.replace('_', "-")).join(version);
        let mut out: Vec<String> = match addon {
            "cert_manager" => std::fs::read_dir(dir.join("crds"))
                .unwrap()
                .map(|e| format!("cert-manager/{version}/crds/{}", e.unwrap().file_name().to_string_lossy()))
                .collect(),
            _ => std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| format!("{}/{version}/{}", addon.replace('_', "-"), e.unwrap().file_name().to_string_lossy()))
                .collect(),
        };
        out.sort();
        out
    };
    assert_eq!(FLOORS.len(), 3);
    for f in FLOORS {
        let objects: Vec<Value> = files(f.addon, f.version).iter().flat_map(|rel| parse_shared(rel)).collect();
        assert!(!objects.is_empty(), "{}: no manifests", f.addon);
        let need = matih_provider_kubernetes::requirements::floor(&objects).expect("something needs a version");
        assert_eq!(
            need.minor, f.minor,
            "{} {}: the manifests need 1.{} ({})",
            f.addon, f.version, need.minor, need.what
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Release listings

/// `bundles.txt` lists every pinned release's objects as the bootstrap applies them.
#[test]
fn the_bundle_listing_is_what_the_pinned_manifests_hold() {
    use matih_provider_kubernetes::{addons, bundles, manifests::PINNED};
    let mut want = String::from(bundles::HEADER);
    for p in PINNED {
        let objects = addons::relocate(p.file, parse_shared(&p.path()));
        want.push_str(&bundles::listing(&p.path(), &objects));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bundles.txt");
    if std::env::var_os("UPDATE_BUNDLES").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap();
    assert!(have == want, "src/bundles.txt is stale: run with UPDATE_BUNDLES=1 and review the diff");
    for p in PINNED {
        let listed = bundles::objects(p.file, p.version).expect("every pinned release is listed");
        assert!(!listed.is_empty());
        if p.addon() == "ingress-nginx" {
            assert!(listed.iter().all(|o| o.namespace.as_deref() != Some("ingress-nginx")), "moved into matih-ingress");
        }
    }
}
