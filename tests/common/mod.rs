//! Helpers shared by the CLI integration tests: a work directory with a copy of `examples/`,
//! and ways to run the binary in it.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_matih-infra");

/// A copy of examples/ in a temp dir; the fake cloud and state live under its .matih/.
pub struct Work {
    pub dir: tempfile::TempDir,
    /// Extra environment for every command (e.g. the emulator's endpoint).
    pub env: Vec<(String, String)>,
}

impl Work {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"), dir.path());
        Work { dir, env: Vec::new() }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .args(args)
            .env_remove("NO_COLOR")
            .env_remove("MATIH_CLOUD")
            .env_remove("MATIH_FAKE_CLOUD")
            .stdin(Stdio::null());
        for k in
            ["MATIH_FAKE_FAIL", "MATIH_TEST_HANG_AFTER_CREATE", "MATIH_FAKE_LATENCY_MS", "MATIH_CONFIG", "MATIH_STATE"]
        {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        let out = self.run(args);
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
        (out.status.code().unwrap(), v)
    }

    pub fn edit(&self, file: &str, from: &str, to: &str) {
        let p = self.path(file);
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.contains(from), "{file} has no `{from}`");
        std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Waits until `path` exists (a hang marker), failing if the child exits first.
pub fn wait_for(path: &Path, child: &mut std::process::Child) {
    let start = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early with {status}");
        }
        assert!(start.elapsed() < Duration::from_secs(30), "child never reached the hang point");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `a` followed by the cloud's flags (`--cloud gke`).
pub fn with_cloud<'a>(a: &[&'a str], cloud: &[&'a str]) -> Vec<&'a str> {
    a.iter().chain(cloud).copied().collect()
}

/// The resources a JSON plan changes, as `(address, action)`.
pub fn changed(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| (c["address"].as_str().unwrap().to_string(), c["action"].as_str().unwrap().to_string()))
        .collect()
}

/// A plan's text without the bootstrap's add-ons (their objects are the bootstrap tests').
pub fn cloud_text(text: &str) -> String {
    let mut out = String::new();
    let mut keep = true;
    for line in text.lines() {
        let resource_line = line.starts_with("  ") && !line.starts_with("      ") && !line.trim().is_empty();
        if resource_line {
            keep = !line.contains("k8s.addon");
        }
        if keep && !line.starts_with("note:") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Kills an apply with SIGKILL right after the cloud confirmed the create of `addr` (before the
/// tool recorded it, with other creates in flight), checks that state holds its intent, and
/// runs the apply again; returns what that apply said on stderr (it must succeed).
pub fn sigkill_then_apply(w: &Work, cloud: &[&str], addr: &str) -> String {
    let marker = w.path("hung");
    let mut child = w
        .cmd(&with_cloud(&["apply", "--auto-approve", "-q"], cloud))
        .env("MATIH_TEST_HANG_AFTER_CREATE", format!("{addr}={}", marker.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&marker, &mut child);
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let (_, st) = w.json(&with_cloud(&["state", "list", "-o", "json"], cloud));
    assert!(st["pending_intents"].as_array().unwrap().contains(&serde_json::json!(addr)), "{addr}: {st:#}");
    let out = w.run(&with_cloud(&["apply", "--auto-approve"], cloud));
    assert_eq!(code(&out), 0, "{addr}: {}", text(&out.stderr));
    text(&out.stderr)
}

/// A plan with nothing to change and no orphans.
pub fn assert_settled(w: &Work, cloud: &[&str], what: &str) {
    let (c, p) = w.json(&with_cloud(&["plan", "-o", "json", "--detailed-exitcode"], cloud));
    assert_eq!(c, 0, "{what}: {:?}", changed(&p));
    assert!(p["orphans"].as_array().is_none_or(|o| o.is_empty()), "{what}: {:#}", p["orphans"]);
}
