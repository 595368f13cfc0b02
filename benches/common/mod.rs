//! The no-op plan benchmark every cloud shares: a platform with 10, 100 and 1,000 tenants
//! (every tenth with a dedicated ingress) applied once, then the batched refresh's plan timed side
//! by side with `--refresh per-resource` (one read per resource, the way Terraform refreshes),
//! with the calls each made, the DNS change calls of the apply, its wall time and the state
//! file's size. The cluster bootstrap runs against the Kubernetes API emulator (in this process);
//! its calls are counted with the cloud's and also shown on their own.
//!
//! `MATIH_BENCH_TENANTS=10,100` picks sizes, `MATIH_BENCH_KEEP_STATE=DIR` keeps each state file.
#![allow(dead_code)] // each bench uses its part

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use matih_kube_emulator::{KubeEmulator, Options};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_matih-infra");

pub fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("matih.yaml"), to.join("matih.yaml")).unwrap();
    std::fs::create_dir_all(to.join("tenants")).unwrap();
}

/// A started emulator: the environment that points the tool at it, and what keeps it running.
pub type Started = (Vec<(String, String)>, Box<dyn std::any::Any>);

/// One cloud's side of the benchmark.
pub struct Cloud {
    /// `--cloud`.
    pub name: &'static str,
    /// The state file under `.matih/state/`.
    pub state_file: &'static str,
    /// Statistics keys (`service:Operation`) that count DNS changes.
    pub dns_change: fn(&str) -> bool,
    /// Starts the cloud's emulator; the environment that points the tool at it, and a guard
    /// that keeps it running.
    pub start: fn() -> Started,
    /// Options of the Kubernetes emulator standing in for the cluster.
    pub kube: fn() -> Options,
}

pub fn run(
    dir: &Path,
    cloud: &Cloud,
    env: &[(String, String)],
    kube: &KubeEmulator,
    args: &[&str],
) -> (Duration, Value) {
    let start = Instant::now();
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .args(["--cloud", cloud.name, "-o", "json", "-q"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("MATIH_KUBE_API_SERVER", kube.url())
        .env("MATIH_ADDONS_DIR", matih_emulators::addons_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let wall = start.elapsed();
    assert!(out.status.success() || out.status.code() == Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (wall, serde_json::from_slice(&out.stdout).unwrap())
}

fn total(calls: &Value) -> u64 {
    calls.as_object().map(|m| m.values().filter_map(Value::as_u64).sum()).unwrap_or(0)
}

fn kubernetes(calls: &Value) -> u64 {
    calls
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.starts_with("kubernetes:")).filter_map(|(_, v)| v.as_u64()).sum())
        .unwrap_or(0)
}

/// EKS on the emulator `start` starts (moto).
pub fn eks(start: fn() -> Started) -> Cloud {
    Cloud {
        name: "eks",
        state_file: "prod-eks.json",
        dns_change: |k| k.ends_with(":ChangeResourceRecordSets"),
        start,
        kube: Options::default,
    }
}

/// `examples/matih.yaml` and `n` tenants (every tenth with a dedicated ingress) in `dir`.
pub fn platform(dir: &Path, n: usize) {
    copy(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"), dir);
    for i in 0..n {
        let dedicated = i % 10 == 0;
        std::fs::write(
            dir.join(format!("tenants/t{i:04}.yaml")),
            format!("slug: t{i:04}\ndisplay_name: Tenant {i}\ndedicated_ingress: {dedicated}\n"),
        )
        .unwrap();
    }
}

pub fn main_for(cloud: Cloud, emulator: &str) {
    println!("no-op plan against {emulator} (release binary, wall time includes process start):");
    println!(
        "{:>8} {:>10} | {:>14} {:>10} | {:>14} {:>10} | {:>9} {:>8} | {:>17}",
        "tenants",
        "resources",
        "batched calls",
        "wall",
        "per-res. calls",
        "wall",
        "call ratio",
        "speedup",
        "DNS change calls"
    );
    // `MATIH_BENCH_TENANTS=100` runs one size; `MATIH_BENCH_KEEP_STATE=DIR` keeps each state file.
    let sizes: Vec<usize> = match std::env::var("MATIH_BENCH_TENANTS") {
        Ok(v) => v.split(',').map(|n| n.trim().parse().expect("MATIH_BENCH_TENANTS: numbers")).collect(),
        Err(_) => vec![10, 100, 1000],
    };
    for n in sizes {
        let (env, _guard) = (cloud.start)();
        let kube = KubeEmulator::start((cloud.kube)());
        let dir = tempfile::tempdir().unwrap();
        platform(dir.path(), n);
        let (apply_wall, applied) =
            run(dir.path(), &cloud, &env, &kube, &["apply", "--auto-approve", "--parallelism", "20"]);
        assert_eq!(applied["outcome"], "complete", "{applied:#}");
        let dns_changes = applied["api_calls"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| (cloud.dns_change)(k))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum::<u64>();
        let resources = applied["summary"]["create"].as_u64().unwrap();
        let state_file = dir.path().join(".matih/state").join(cloud.state_file);
        let state_bytes = std::fs::metadata(&state_file).map(|m| m.len()).unwrap_or(0);
        if let Some(keep) = std::env::var_os("MATIH_BENCH_KEEP_STATE") {
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::copy(&state_file, Path::new(&keep).join(format!("state-{n}.json"))).unwrap();
        }
        // Warm-up, then the median of three batched runs and one per-resource run.
        run(dir.path(), &cloud, &env, &kube, &["plan", "--detailed-exitcode"]);
        let measure = |extra: &[&str], runs: usize| {
            let mut walls = Vec::new();
            let mut calls = 0;
            let mut kube_calls = 0;
            let mut tool = (0, 0);
            for _ in 0..runs {
                let mut a = vec!["plan", "--detailed-exitcode"];
                a.extend_from_slice(extra);
                let (wall, plan) = run(dir.path(), &cloud, &env, &kube, &a);
                assert_eq!(plan["summary"]["create"], 0, "converged");
                calls = total(&plan["statistics"]["api_calls"]);
                kube_calls = kubernetes(&plan["statistics"]["api_calls"]);
                let st = &plan["statistics"];
                tool = (st["refresh_ms"].as_u64().unwrap_or(0), st["plan_ms"].as_u64().unwrap_or(0));
                walls.push(wall);
            }
            walls.sort();
            (calls, walls[walls.len() / 2], tool, kube_calls)
        };
        let (b_calls, b_wall, (b_refresh, b_plan), b_kube) = measure(&[], 3);
        // One run: at 1,000 tenants this mode alone keeps the emulator busy for minutes.
        let (p_calls, p_wall, _, p_kube) = measure(&["--refresh", "per-resource"], 1);
        println!(
            "{:>8} {:>10} | {:>14} {:>8.0}ms | {:>14} {:>8.0}ms | {:>8.1}× {:>7.1}× | {:>17}",
            n,
            resources,
            b_calls,
            b_wall.as_secs_f64() * 1e3,
            p_calls,
            p_wall.as_secs_f64() * 1e3,
            p_calls as f64 / b_calls as f64,
            p_wall.as_secs_f64() / b_wall.as_secs_f64(),
            dns_changes
        );
        println!(
            "{:>8}   batched plan, last run: refresh {b_refresh} ms (waiting on the cloud), planning {b_plan} ms; \
             Kubernetes calls {b_kube} batched vs {p_kube} per-resource; the apply took {:.1} s; state {:.0} KiB",
            "",
            apply_wall.as_secs_f64(),
            state_bytes as f64 / 1024.0
        );
    }
}
