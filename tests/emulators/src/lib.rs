//! Local emulators for integration tests, started on 127.0.0.1 and stopped on drop, and the
//! add-on manifest directory the bootstrap tests read.
//!
//! [`Moto`] runs the moto server (PyPI `moto[server]`, installed by `scripts/test`). It finds
//! `moto_server` through `MOTO_SERVER`, then `PATH`, then the virtualenv `scripts/test` makes, and
//! runs it with the Python interpreter its script names, through `moto_strict.py`: Route 53 change
//! batches are checked as Route 53 documents them (all or nothing, CREATE of an existing set and
//! DELETE of a missing one refused, no CNAME beside another set), where moto is kinder. It never
//! talks to anything but loopback and never falls back to a real cloud: if moto is missing the
//! test fails, saying how to install it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    port: u16,
}

fn find_moto() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("moto_server");
            if c.is_file() {
                return c;
            }
        }
    }
    let venv = default_venv().join("bin").join("moto_server");
    if venv.is_file() {
        return venv;
    }
    panic!(
        "moto_server not found (MOTO_SERVER, PATH, {}): run `scripts/test`, which installs the pinned moto \
         into that virtualenv, or `pip install 'moto[server]==5.2.5'`",
        venv.display()
    )
}

/// Where `scripts/test` keeps its virtualenv: `$MATIH_VENV`, else `~/.cache/matih-infra/venv`.
pub fn default_venv() -> PathBuf {
    if let Some(v) = std::env::var_os("MATIH_VENV") {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("matih-infra").join("venv")
}

/// The interpreter a pip-installed `moto_server` script runs with (its `#!` line); `python3` if
/// it has none.
fn interpreter_of(script: &std::path::Path) -> PathBuf {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(script).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]);
    head.lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .filter(|l| !l.is_empty() && !l.ends_with("/env") && !l.ends_with("/sh"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// moto's server with Route 53's documented change-batch checks (see the module's doc).
const MOTO_STRICT: &str = include_str!("moto_strict.py");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a loopback port").local_addr().unwrap().port()
}

/// A running Azurite blob service (npm `azurite`, installed by `scripts/test`), in memory.
pub struct Azurite {
    child: Child,
    port: u16,
}

/// Azurite's well-known development account and key (public, in Azure's documentation).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn find_azurite() -> PathBuf {
    if let Some(p) = std::env::var_os("AZURITE_BLOB") {
        return PathBuf::from(p);
    }
    let dir = match std::env::var_os("MATIH_AZURITE_DIR") {
        Some(d) => PathBuf::from(d),
        None => default_venv().parent().map(|p| p.join("azurite")).unwrap_or_default(),
    };
    let bin = dir.join("node_modules").join(".bin").join("azurite-blob");
    if bin.is_file() {
        return bin;
    }
    panic!(
        "azurite-blob not found (AZURITE_BLOB, {}): run `scripts/test`, which installs the pinned Azurite there, \
         or `npm install --prefix {} azurite@3.37.0`",
        bin.display(),
        dir.display()
    )
}

impl Azurite {
    /// Starts the blob service on a free loopback port, in memory, and waits until it answers.
    pub fn start() -> Azurite {
        let bin = find_azurite();
        let port = free_port();
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--silent", "--disableTelemetry"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut azurite = Azurite { child, port };
        let start = Instant::now();
        loop {
            // Any answer (an unsigned request gets 403) means it is serving.
            if let Ok((code, _)) = http(port, "GET", "/", "")
                && code != 0
            {
                return azurite;
            }
            if let Some(status) = azurite.child.try_wait().unwrap() {
                panic!("azurite-blob exited with {status} before it answered on port {port}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "azurite-blob did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The account's blob endpoint, path-style: `http://127.0.0.1:<port>/devstoreaccount1`.
    pub fn blob_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    /// `AZURE_STORAGE_CONNECTION_STRING` for this Azurite through `endpoint` (a proxy in front of
    /// it, or [`Azurite::blob_endpoint`]).
    pub fn connection_string(&self, endpoint: &str) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request to 127.0.0.1; returns the status code and body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.shutdown(Shutdown::Write).ok();
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it answers.
    pub fn start() -> Moto {
        let bin = find_moto();
        let python = interpreter_of(&bin);
        let port = free_port();
        let child = Command::new(&python)
            .args(["-c", MOTO_STRICT, "-H", "127.0.0.1", "-p", &port.to_string()])
            // EKS roles attach AWS managed policies, which moto loads only when asked.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} for {}: {e}", python.display(), bin.display()));
        let mut moto = Moto { child, port };
        let start = Instant::now();
        loop {
            if let Ok((200, _)) = http(port, "GET", "/moto-api/", "") {
                return moto;
            }
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!("moto_server exited with {status} before it answered on port {port}");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "moto_server did not answer on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for a process that should talk to this moto with dummy credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }

    /// Forgets every resource (moto's reset endpoint).
    pub fn reset(&self) {
        let (code, body) = http(self.port, "POST", "/moto-api/reset", "").expect("reset moto");
        assert_eq!(code, 200, "moto reset failed: {body}");
    }
}

/// moto split the way AWS is: each group of services on a server of its own, so that requests
/// to different services are served side by side, as separate AWS endpoints serve them, instead of
/// one after another in one Python process. The tool is pointed at each group through the SDK's
/// per-service variables (`AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL_ROUTE_53`, ...) and at the
/// last server, which serves every service no group names, through `AWS_ENDPOINT_URL`.
///
/// Each server keeps its own resources, which is how the groups must be chosen: moto 5.2.5's EKS
/// reads EC2 only for launch templates, and Route 53 and IAM read no other service.
pub struct MotoPerService {
    groups: Vec<(&'static [&'static str], Moto)>,
    rest: Moto,
}

impl MotoPerService {
    /// One server per group of SDK service ids (upper case, spaces as `_`: `ROUTE_53`), and one
    /// for the rest, started side by side.
    pub fn start(groups: &[&'static [&'static str]]) -> MotoPerService {
        std::thread::scope(|s| {
            let started: Vec<_> = groups.iter().map(|g| (*g, s.spawn(Moto::start))).collect();
            let rest = Moto::start();
            let groups = started.into_iter().map(|(g, h)| (g, h.join().expect("starting moto"))).collect();
            MotoPerService { groups, rest }
        })
    }

    /// The servers: one per group, in the order given, then the one for the rest.
    pub fn servers(&self) -> impl Iterator<Item = &Moto> {
        self.groups.iter().map(|(_, m)| m).chain(std::iter::once(&self.rest))
    }

    /// [`Moto::env`] for the rest, with an `AWS_ENDPOINT_URL_<SERVICE>` for each grouped service.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self.rest.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        for (services, moto) in &self.groups {
            env.extend(services.iter().map(|s| (format!("AWS_ENDPOINT_URL_{s}"), moto.endpoint())));
        }
        env
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `../shared/addons` beside the checkout: unmodified upstream manifests (test data).
pub fn shared_addons() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/addons");
    assert!(p.is_dir(), "{} is missing: the tests need ../shared beside the checkout", p.display());
    p
}

/// A local add-on manifest directory (`MATIH_ADDONS_DIR`) laid out as the tool reads it:
/// `../shared/addons` as it is, plus `cert-manager/<version>/cert-manager.yaml`, which upstream
/// ships only as a release asset and ../shared does not hold. The tests' stand-in for it is the
/// unmodified upstream CRDs followed by `tests/fixtures/addons/cert-manager-workloads.yaml` (see
/// its header). Built once for its contents and shared by every test process (a directory per
/// process would leave megabytes behind each run).
pub fn addons_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let shared = shared_addons();
        let version = "v1.21.1";
        let crds = shared.join("cert-manager").join(version).join("crds");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&crds).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        let mut bundle = String::new();
        for p in names {
            bundle.push_str("---\n");
            bundle.push_str(&std::fs::read_to_string(&p).unwrap());
        }
        bundle.push_str("---\n");
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/addons/cert-manager-workloads.yaml");
        bundle.push_str(&std::fs::read_to_string(&fixture).unwrap());
        // Named by what it holds: the same inputs give the same directory.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&tree_listing(&shared), &mut h);
        std::hash::Hash::hash(&bundle, &mut h);
        let dir = std::env::temp_dir().join(format!("matih-test-addons-{:016x}", std::hash::Hasher::finish(&h)));
        if dir.join(".complete").exists() {
            return dir;
        }
        // Built aside and renamed into place, so a process never sees half of it.
        let tmp = std::env::temp_dir().join(format!("matih-test-addons-build-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        copy_tree(&shared, &tmp);
        std::fs::write(tmp.join("cert-manager").join(version).join("cert-manager.yaml"), bundle).unwrap();
        std::fs::write(tmp.join(".complete"), "").unwrap();
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another process was first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dir
    })
}

/// Every file under `dir` with its size and modification time, sorted: what the copy depends on.
fn tree_listing(dir: &std::path::Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len(), m.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            // ../shared is read-only; the copy must be removable.
            let mut perm = std::fs::metadata(&dst).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&dst, perm).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The speed patches in `moto_strict.py` give the same bytes as moto's own functions for a
    /// platform's reads (`moto_same_answers.py` says what it compares).
    #[test]
    fn the_moto_wrapper_changes_speed_not_answers() {
        let python = interpreter_of(&find_moto());
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
        let out = Command::new(&python)
            .arg(src.join("moto_same_answers.py"))
            .arg(src.join("moto_strict.py"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    }
}
