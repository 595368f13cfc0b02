//! Shared state in an object store, end to end, for every store: the binary keeps the fake cloud's
//! platform state in S3 (moto's S3, through the AWS SDK), Cloud Storage (the project's storage
//! emulator, which enforces generation preconditions on every call) and Azure Blob Storage
//! (Azurite, npm `azurite`, signed with Shared Key), chosen by the platform spec's `state:`
//! section, all on 127.0.0.1. Two "machines" are two working directories with their own copy of the
//! spec and their own host name in lock records (`MATIH_LOCK_HOST`), sharing the fake cloud's file
//! and the store.
//!
//! What the emulators cannot show: S3's 409 `ConditionalRequestConflict` for two conditional
//! writes in flight at once (moto serialises requests); bucket policies and IAM (every call is
//! allowed); Azure Blob versioning (Azurite has none, so the `.backup` blob is what keeps the
//! previous state there, as it does on Azure).

#![cfg(all(feature = "aws", feature = "gcp", feature = "azure"))]

use std::process::Stdio;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use matih_emulators::{AZURITE_ACCOUNT, AZURITE_KEY, Azurite, Moto};
use matih_fault_proxy::{Fault, FaultProxy, Rule};
use matih_gcp_emulator::{StorageEmulator, StorageOptions};
use serde_json::Value;

mod common;
use common::*;

const FAKE: &[&str] = &["--cloud", "fake"];
const BUCKET: &str = "matih-state";
const KEY: &str = "matih/prod-fake.json";

fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
    a.iter().copied().chain(FAKE.iter().copied()).collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    S3,
    Gcs,
    AzBlob,
}

const STORES: [Kind; 3] = [Kind::S3, Kind::Gcs, Kind::AzBlob];

/// A running store with the state bucket (or container) in it.
enum Store {
    S3(Moto, aws_sdk_s3::Client),
    Gcs(StorageEmulator),
    AzBlob(Azurite, matih_provider_azure::BlobObjects),
}

/// An S3 client for the test's own reads and writes, addressed by path.
fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(moto.endpoint())
            .force_path_style(true)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build(),
    )
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

impl Store {
    fn start(kind: Kind, versioned: bool) -> Store {
        match kind {
            Kind::S3 => {
                let moto = Moto::start();
                let s3 = s3(&moto);
                block_on(async {
                    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
                    if versioned {
                        let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
                        s3.put_bucket_versioning().bucket(BUCKET).versioning_configuration(conf).send().await.unwrap();
                    }
                });
                Store::S3(moto, s3)
            }
            Kind::Gcs => {
                let gcs = StorageEmulator::start(StorageOptions::default());
                gcs.create_bucket(BUCKET, versioned);
                Store::Gcs(gcs)
            }
            Kind::AzBlob => {
                let azurite = Azurite::start();
                let blobs = matih_provider_azure::BlobObjects::with_shared_key(
                    &azurite.blob_endpoint(),
                    AZURITE_ACCOUNT,
                    AZURITE_KEY,
                    BUCKET,
                )
                .unwrap();
                block_on(blobs.create_container()).unwrap();
                Store::AzBlob(azurite, blobs)
            }
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Store::S3(..) => Kind::S3,
            Store::Gcs(_) => Kind::Gcs,
            Store::AzBlob(..) => Kind::AzBlob,
        }
    }

    fn port(&self) -> u16 {
        match self {
            Store::S3(m, _) => m.port(),
            Store::Gcs(g) => g.port(),
            Store::AzBlob(a, _) => a.port(),
        }
    }

    /// Where the tool should send requests: the store itself.
    fn endpoint(&self) -> String {
        match self {
            Store::S3(m, _) => m.endpoint(),
            Store::Gcs(g) => g.url(),
            Store::AzBlob(a, _) => a.blob_endpoint(),
        }
    }

    /// The same through a proxy at `proxy` (`http://127.0.0.1:PORT`).
    fn endpoint_via(&self, proxy: &str) -> String {
        match self {
            Store::AzBlob(..) => format!("{proxy}/{AZURITE_ACCOUNT}"),
            _ => proxy.to_string(),
        }
    }

    /// The fault proxy's options for this store's API.
    fn proxy(&self, rules: Vec<Rule>) -> FaultProxy {
        let upstream = format!("127.0.0.1:{}", self.port()).parse().unwrap();
        FaultProxy::start(match self.kind() {
            Kind::S3 => matih_fault_proxy::aws::options(upstream, rules),
            Kind::Gcs => matih_fault_proxy::gcp::options(upstream, rules),
            Kind::AzBlob => matih_fault_proxy::azure::options(upstream, rules),
        })
    }

    /// The proxy's names for (write, delete, read) calls.
    fn actions(&self) -> [&'static str; 3] {
        match self.kind() {
            Kind::S3 => ["PutObject", "DeleteObject", "GetObject"],
            Kind::Gcs => ["POST storage.objects", "DELETE storage.objects", "GET storage.objects"],
            Kind::AzBlob => ["PutBlob", "DeleteBlob", "GetBlob"],
        }
    }

    /// The `state:` section of the platform spec.
    fn section(&self) -> String {
        match self.kind() {
            Kind::S3 => format!("state:\n  backend: s3\n  bucket: {BUCKET}\n"),
            Kind::Gcs => format!("state:\n  backend: gcs\n  bucket: {BUCKET}\n"),
            Kind::AzBlob => format!("state:\n  backend: azblob\n  account: {AZURITE_ACCOUNT}\n  container: {BUCKET}\n"),
        }
    }

    /// The state's URL.
    fn url(&self) -> String {
        match self.kind() {
            Kind::S3 => format!("s3://{BUCKET}/{KEY}"),
            Kind::Gcs => format!("gs://{BUCKET}/{KEY}"),
            Kind::AzBlob => format!("azblob://{AZURITE_ACCOUNT}/{BUCKET}/{KEY}"),
        }
    }

    /// What points the tool at the store through `endpoint`.
    fn env(&self, endpoint: &str) -> Vec<(String, String)> {
        match self {
            Store::S3(m, _) => m
                .env()
                .into_iter()
                .map(|(k, v)| (k.to_string(), if k == "AWS_ENDPOINT_URL" { endpoint.to_string() } else { v }))
                .collect(),
            Store::Gcs(_) => vec![("STORAGE_EMULATOR_HOST".into(), endpoint.to_string())],
            Store::AzBlob(a, _) => vec![("AZURE_STORAGE_CONNECTION_STRING".into(), a.connection_string(endpoint))],
        }
    }

    /// The object at `key`, read directly.
    fn object(&self, key: &str) -> Option<String> {
        match self {
            Store::S3(_, s3) => block_on(async {
                match s3.get_object().bucket(BUCKET).key(key).send().await {
                    Ok(o) => Some(String::from_utf8(o.body.collect().await.unwrap().to_vec()).unwrap()),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => None,
                    Err(e) => panic!("GetObject {key}: {e:?}"),
                }
            }),
            Store::Gcs(g) => g.object(BUCKET, key).map(|b| String::from_utf8(b).unwrap()),
            Store::AzBlob(_, blobs) => {
                use matih_state::ObjectStore;
                block_on(blobs.get(key)).unwrap().map(|o| String::from_utf8(o.bytes).unwrap())
            }
        }
    }

    /// Writes `text` at `key` with no condition: a writer that ignores the lock.
    fn overwrite(&self, key: &str, text: &str) {
        match self {
            Store::S3(_, s3) => block_on(async {
                let body = aws_sdk_s3::primitives::ByteStream::from(text.as_bytes().to_vec());
                s3.put_object().bucket(BUCKET).key(key).body(body).send().await.unwrap();
            }),
            Store::Gcs(g) => g.overwrite(BUCKET, key, text.as_bytes()),
            Store::AzBlob(_, blobs) => {
                use matih_state::ObjectStore;
                block_on(blobs.put(key, text.as_bytes().to_vec())).unwrap();
            }
        }
    }
}

/// A working directory whose spec keeps state in `store`, reached at `endpoint`, on a machine
/// called `host`; `cloud` is the fake cloud's file shared by every machine.
fn machine(store: &Store, endpoint: &str, host: &str, cloud: &std::path::Path) -> Work {
    let mut w = Work::new();
    let spec = w.path("matih.yaml");
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push('\n');
    text.push_str(&store.section());
    std::fs::write(&spec, text).unwrap();
    w.env = store.env(endpoint);
    w.env.push(("MATIH_LOCK_HOST".into(), host.into()));
    w.env.push(("MATIH_FAKE_CLOUD".into(), cloud.display().to_string()));
    w
}

fn fake_objects(cloud: &std::path::Path) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(cloud).unwrap()).unwrap();
    v["objects"].as_object().map(|m| m.values().cloned().collect()).unwrap_or_default()
}

fn count(cloud: &std::path::Path, rtype: &str) -> usize {
    fake_objects(cloud).iter().filter(|o| o["type"] == rtype).count()
}

/// Starts an apply on `w` that hangs right after the cloud confirmed the create of `addr`, until
/// the marker it returns is removed.
fn hung_apply(w: &Work, addr: &str) -> (std::process::Child, std::path::PathBuf) {
    let marker = w.path("hung");
    let mut child = w
        .cmd(&args(&["apply", "--auto-approve", "-q"]))
        .env("MATIH_TEST_HANG_AFTER_CREATE", format!("{addr}={}", marker.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&marker, &mut child);
    (child, marker)
}

/// Runs `test` for every store, naming the store in a failure.
fn for_each_store(test: impl Fn(Kind)) {
    for kind in STORES {
        eprintln!("== {kind:?}");
        test(kind);
    }
}

#[test]
fn two_machines_contend_for_the_lock_and_the_loser_names_the_holder() {
    for_each_store(contend);
}

fn contend(kind: Kind) {
    let store = Store::start(kind, true);
    let shared = tempfile::tempdir().unwrap();
    let cloud = shared.path().join("fake-cloud.json");
    let a = machine(&store, &store.endpoint(), "laptop-a", &cloud);
    let b = machine(&store, &store.endpoint(), "ci-runner-b", &cloud);

    let (mut child, _marker) = hung_apply(&a, "fake.network.main");
    let out = b.run(&args(&["plan"]));
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("laptop-a") && err.contains(&format!("pid {}", child.id())) && err.contains("apply"),
        "the loser names the holder: {err}"
    );

    let (c, status) = b.json(&args(&["state", "lock", "status", "-o", "json"]));
    assert_eq!(c, 0, "{status}");
    assert_eq!(status["locked"], true);
    assert_eq!(status["location"], store.url());
    let holder = &status["holder"];
    assert_eq!((holder["host"].as_str(), holder["pid"].as_u64()), (Some("laptop-a"), Some(child.id() as u64)));
    assert_eq!(holder["command"], "apply");
    assert!(holder["expires_at"].is_string() && holder["started_at"].is_string(), "{holder}");
    let id = holder["id"].as_str().unwrap().to_string();

    // Breaking it needs the id the status shows.
    let out = b.run(&args(&["state", "unlock", "--force", "not-the-id"]));
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains(&format!("held under id {id}")), "{}", text(&out.stderr));
    assert!(store.object(&format!("{KEY}.lock")).unwrap().contains(&id), "a wrong id breaks nothing");

    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let out = b.run(&args(&["state", "unlock", "--force", &id]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("broke the state lock {id}")), "{}", text(&out.stderr));
    assert_eq!(store.object(&format!("{KEY}.lock")), None);
    let (_, status) = b.json(&args(&["state", "lock", "status", "-o", "json"]));
    assert_eq!(status["locked"], false);
}

#[test]
fn a_killed_holder_is_taken_over_after_its_lease_and_its_journal_resolved() {
    for_each_store(take_over);
}

fn take_over(kind: Kind) {
    let store = Store::start(kind, false);
    let shared = tempfile::tempdir().unwrap();
    let cloud = shared.path().join("fake-cloud.json");
    let mut a = machine(&store, &store.endpoint(), "laptop-a", &cloud);
    let mut b = machine(&store, &store.endpoint(), "ci-runner-b", &cloud);
    for w in [&mut a, &mut b] {
        w.env.push(("MATIH_STATE_LEASE".into(), "2s".into()));
    }

    let (mut child, _marker) = hung_apply(&a, "fake.cluster.main");
    let pid = child.id();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    child.wait().unwrap();
    // Its lease is still running: a command that will not wait is refused.
    let out = b.run(&args(&["plan"]));
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("laptop-a"), "{}", text(&out.stderr));

    let out = b.run(&args(&["apply", "--auto-approve", "--lock-timeout", "60s"]));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains(&format!("took over the state lock of `apply` (pid {pid} on laptop-a")),
        "the new holder says it took over: {err}"
    );
    assert!(err.contains("fake.cluster.main: adopted"), "the journal was resolved: {err}");
    assert_eq!(count(&cloud, "fake.cluster"), 1, "the cluster was created once");
    assert_eq!(fake_objects(&cloud).len(), 13);
    // Without versioning, the previous state is kept beside it.
    assert!(store.object(&format!("{KEY}.backup")).is_some());
    assert_eq!(store.object(&format!("{KEY}.lock")), None, "released at the end");
    let out = a.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "the other machine sees the same state: {}", text(&out.stdout));
}

#[test]
fn a_writer_that_lost_the_race_writes_nothing_stops_and_keeps_its_state_aside() {
    for_each_store(lose_the_race);
}

fn lose_the_race(kind: Kind) {
    let store = Store::start(kind, true);
    let shared = tempfile::tempdir().unwrap();
    let cloud = shared.path().join("fake-cloud.json");
    let a = machine(&store, &store.endpoint(), "laptop-a", &cloud);

    let (child, marker) = hung_apply(&a, "fake.network.main");
    // Someone writes the state without the lock: a copy of it with a higher serial.
    let before = store.object(KEY).expect("the apply wrote its intents");
    let mut theirs: Value = serde_json::from_str(&before).unwrap();
    theirs["serial"] = Value::from(theirs["serial"].as_u64().unwrap() + 5);
    let theirs = serde_json::to_string_pretty(&theirs).unwrap();
    store.overwrite(KEY, &theirs);

    std::fs::remove_file(&marker).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(code(&out), 1, "{err}");
    assert!(err.contains("changed since this command read it") && err.contains("another writer"), "{err}");
    assert_eq!(store.object(KEY).as_deref(), Some(theirs.as_str()), "the other writer's state is untouched");

    // What it could not write is kept, with the network it created.
    let unsaved: Vec<_> =
        std::fs::read_dir(a.path(".matih/state/unsaved")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(unsaved.len(), 1, "{unsaved:?}");
    let name = unsaved[0].file_name().unwrap().to_str().unwrap();
    assert!(err.contains(&format!(".matih/state/unsaved/{name}")), "the error says where: {err}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&unsaved[0]).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let out = a.run(&args(&["state", "list", "-o", "json", "--state", unsaved[0].to_str().unwrap()]));
    let kept: Value = serde_json::from_slice(&out.stdout).unwrap();
    let addrs: Vec<&str> =
        kept["resources"].as_array().unwrap().iter().map(|r| r["address"].as_str().unwrap()).collect();
    assert!(addrs.contains(&"fake.network.main"), "{kept:#}");
    // Nothing new started after the failed write: the cluster needs the network's subnets.
    assert_eq!(count(&cloud, "fake.cluster"), 0);
}

#[test]
fn state_migrates_to_a_store_and_back_keeping_lineage_and_serial() {
    for_each_store(migrate);
}

fn migrate(kind: Kind) {
    let store = Store::start(kind, false);
    let to = match kind {
        Kind::S3 => "s3",
        Kind::Gcs => "gcs",
        Kind::AzBlob => "azblob",
    };
    let shared = tempfile::tempdir().unwrap();
    let cloud = shared.path().join("fake-cloud.json");
    let a = machine(&store, &store.endpoint(), "laptop-a", &cloud);
    // Applied with local state first (--state names the file), then moved to the spec's bucket.
    let local = ".matih/state/prod-fake.json";
    let out = a.run(&args(&["apply", "--auto-approve", "--state", local]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let (_, before) = a.json(&args(&["state", "list", "-o", "json", "--state", local]));

    let (c, moved) = a.json(&args(&["state", "migrate", "--to", to, "-o", "json"]));
    assert_eq!(c, 0, "{moved}");
    assert_eq!(moved["result"], "migrated");
    assert_eq!(moved["to"], store.url());
    let (_, remote) = a.json(&args(&["state", "list", "-o", "json"]));
    assert_eq!(remote, before, "same lineage, serial and resources");
    let out = a.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    // Again: nothing to do.
    let (c, again) = a.json(&args(&["state", "migrate", "--to", to, "-o", "json"]));
    assert_eq!((c, again["result"].as_str()), (0, Some("already-there")), "{again}");

    // A change in the bucket, then back to a file.
    let out = a.run(&args(&["state", "rm", "fake.network.main"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let back = a.path("back.json");
    let (c, res) = a.json(&args(&["state", "migrate", "--to", back.to_str().unwrap(), "-o", "json"]));
    assert_eq!(c, 0, "{res}");
    let (_, remote) = a.json(&args(&["state", "list", "-o", "json"]));
    let (_, file) = a.json(&args(&["state", "list", "-o", "json", "--state", back.to_str().unwrap()]));
    assert_eq!(file, remote);
    assert_eq!(file["serial"].as_u64(), Some(before["serial"].as_u64().unwrap() + 1));

    // The old local file is another, older copy of the same lineage: refused.
    let out = a.run(&args(&["state", "migrate", "--state", local, "--to", to]));
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("newer copy of this state"), "{}", text(&out.stderr));
    // Another lineage is never overwritten.
    let other = Work::new();
    let out = other.run(&args(&["apply", "--auto-approve", "--state", "other.json"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let theirs = other.path("other.json");
    let out = a.run(&args(&["state", "migrate", "--state", theirs.to_str().unwrap(), "--to", to]));
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("holds another state"), "{}", text(&out.stderr));
}

#[test]
fn saves_through_a_lying_network_lose_and_duplicate_nothing() {
    for_each_store(lying_network);
}

fn lying_network(kind: Kind) {
    let store = Store::start(kind, false);
    let [write, delete, read] = store.actions();
    // Every third write is carried out while its answer is lost (a 500), the first delete's
    // answer is cut off, and the first read never arrives.
    let rules = vec![
        Rule::Action { name: write.into(), calls: (1..200).step_by(3).collect(), fault: Fault::ForwardThen500 },
        Rule::Action { name: delete.into(), calls: vec![1], fault: Fault::ForwardThenReset },
        Rule::Action { name: read.into(), calls: vec![1], fault: Fault::DropBeforeForward },
    ];
    let proxy = store.proxy(rules);
    let shared = tempfile::tempdir().unwrap();
    let cloud = shared.path().join("fake-cloud.json");
    let a = machine(&store, &store.endpoint_via(&proxy.url()), "laptop-a", &cloud);

    let out = a.run(&args(&["apply", "--auto-approve"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let injected = proxy.injected();
    assert!(injected.iter().filter(|i| i.action == write).count() >= 3, "{injected:?}");
    assert!(injected.iter().any(|i| i.action == delete) && injected.iter().any(|i| i.action == read), "{injected:?}");
    assert_eq!(fake_objects(&cloud).len(), 13, "nothing created twice");
    let (_, st) = a.json(&args(&["state", "list", "-o", "json"]));
    assert_eq!(st["resources"].as_array().unwrap().len(), 13, "nothing lost: {st:#}");
    assert_eq!(st["pending_intents"].as_array().unwrap().len(), 0);
    assert_eq!(store.object(&format!("{KEY}.lock")), None, "the lock was released despite the lost answer");
    let out = a.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}
