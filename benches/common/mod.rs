//! The no-op plan benchmark every cloud shares: a platform with 10, 100 and 1,000 tenants
//! (every tenth with a dedicated ingress) applied once, then the batched refresh's plan timed side
//! by side with `--refresh per-resource` (one read per resource, the way Terraform refreshes),
//! with the calls each made, the DNS change calls of the apply, its wall time and the state
//! file's size. The cluster bootstrap runs against the Kubernetes API emulator (in this process);
//! its calls are counted with the cloud's and also shown on their own.
//!
//! Per size it also prints: state bytes per resource; the apply's Kubernetes API calls per
//! Kubernetes object it applied (objects counted from the add-ons' inventories in state); the
//! time to the first byte `plan` writes (text output, as a person runs it); the no-op plan's
//! peak resident memory and CPU time (from `wait4`, measured through a fresh copy of the bench, see
//! [`measure`]); and the emulators' CPU time while it ran (this process, where the Kubernetes
//! emulator runs, and its child processes such as moto; see [`wait::emulators_cpu`]): with two
//! cores, the wall time of a plan is bounded below by half of the two together.
//!
//! Then one apply with 100 ms added to every cloud call (a latency proxy in front of each loopback
//! endpoint the cloud's environment names; the Kubernetes emulator is not delayed), set against
//! the critical path of its graph: the longest chain of resources that depend on each other, each
//! costing the time it took in that apply (see [`latency`]).
//!
//! `MATIH_BENCH_TENANTS=10,100,10000` picks sizes; above 100 tenants the per-resource plan (many
//! minutes at 1,000) is left out unless `MATIH_BENCH_PER_RESOURCE=1`. `MATIH_BENCH_KEEP_STATE=DIR`
//! keeps each state file and apply report. `MATIH_BENCH_LATENCY_TENANTS` sizes the latency apply
//! (10 by default; 0 leaves it out). `MATIH_BENCH_WRAP="heaptrack -o /tmp/plan"` runs each measured
//! `plan` under a profiler (its figures then include the profiler's). `MATIH_BENCH_HOLD=FILE`
//! stops after each size's apply with a script at FILE that runs `plan` against it (see
//! [`hold_for_profiling`]).
#![allow(dead_code)] // each bench uses its part

pub mod wait;

use std::io::Read as _;
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

/// The tool with `args`, pointed at the emulators.
fn tool(dir: &Path, cloud: &Cloud, env: &[(String, String)], kube: &KubeEmulator, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .args(args)
        .args(["--cloud", cloud.name])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("MATIH_KUBE_API_SERVER", kube.url())
        .env("MATIH_ADDONS_DIR", matih_emulators::addons_dir())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

pub fn run(
    dir: &Path,
    cloud: &Cloud,
    env: &[(String, String)],
    kube: &KubeEmulator,
    args: &[&str],
) -> (Duration, Value) {
    let start = Instant::now();
    let out = tool(dir, cloud, env, kube, args).args(["-o", "json", "-q"]).output().unwrap();
    let wall = start.elapsed();
    assert!(out.status.success() || out.status.code() == Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (wall, serde_json::from_slice(&out.stdout).unwrap())
}

/// With `MATIH_BENCH_HOLD=FILE`: after the apply and the warm-up plan, writes FILE, a shell
/// script that runs `plan` (its arguments appended) against the applied platform and the running
/// emulators, and waits until FILE is removed. For profiling one size by hand, again and again,
/// without applying it again (`bash FILE -o json -q`, or with `MATIH_WRAP="perf record …"`).
fn hold_for_profiling(file: &Path, plan: &Command) {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let mut script = format!("cd {}\n", quote(plan.get_current_dir().unwrap().as_os_str()));
    for (k, v) in plan.get_envs() {
        if let Some(v) = v {
            script.push_str(&format!("export {}={}\n", k.to_string_lossy(), quote(v)));
        }
    }
    let args: Vec<String> = plan.get_args().map(quote).collect();
    script.push_str(&format!("exec $MATIH_WRAP {} {} \"$@\"\n", quote(plan.get_program()), args.join(" ")));
    std::fs::write(file, script).unwrap();
    eprintln!("holding: `bash {}` runs plan; remove it to go on", file.display());
    while file.exists() {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// What [`run_measured`] measured of the tool.
pub struct Measured {
    pub wall: Duration,
    pub max_rss_kib: i64,
    /// The tool's own CPU time (user and system), apart from the emulators'.
    pub cpu: Duration,
    /// The emulators' CPU time while the tool ran (see [`wait::emulators_cpu`]).
    pub emulators_cpu: Duration,
}

/// [`run`], with the peak resident memory and CPU time of the tool, through a fresh copy of the
/// bench (see [`measure`]): only for benches whose `main` is [`main_for`], which answers as that
/// copy.
pub fn run_measured(
    dir: &Path,
    cloud: &Cloud,
    env: &[(String, String)],
    kube: &KubeEmulator,
    args: &[&str],
) -> (Measured, Value) {
    let figures = tempfile::NamedTempFile::new().unwrap();
    let mut c = tool(dir, cloud, env, kube, args);
    c.args(["-o", "json", "-q"]);
    let wrap = std::env::var("MATIH_BENCH_WRAP").unwrap_or_default();
    let emulators_before = wait::emulators_cpu();
    let helper = Command::new(std::env::current_exe().unwrap())
        .env(MEASURE, figures.path())
        .args(wrap.split_whitespace())
        .arg(c.get_program())
        .args(c.get_args())
        .envs(c.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let emulators_cpu = wait::cpu_between(&emulators_before, &wait::emulators_cpu());
    let report = std::fs::read_to_string(figures.path()).unwrap();
    let f: Vec<i64> = report.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let [code, wall_us, max_rss_kib, cpu_us] = f[..] else { panic!("measuring {args:?}: {report}") };
    assert!(code == 0 || code == 2, "{args:?}: exit {code}: {}", String::from_utf8_lossy(&helper.stderr));
    // A profiler may say where its report goes on stdout before the tool's document starts.
    let out = &helper.stdout;
    let doc = if wrap.is_empty() { 0 } else { out.windows(2).position(|w| w == b"\n{").map_or(0, |i| i + 1) };
    let m = Measured {
        wall: Duration::from_micros(wall_us as u64),
        max_rss_kib,
        cpu: Duration::from_micros(cpu_us as u64),
        emulators_cpu,
    };
    (m, serde_json::from_slice(&out[doc..]).unwrap())
}

/// Set (to a file to write the figures to) for the copy of the bench that runs one command.
const MEASURE: &str = "MATIH_BENCH_MEASURE";

/// In the copy of the bench started by [`run_measured`]: runs the command, passing its output
/// through, and writes its exit code, wall time (µs) and peak resident memory (KiB). Through a
/// fresh copy because a child's peak as the kernel reports it starts from its parent's size at
/// the fork, and the bench holds the emulators; the fresh copy is a few MiB, below the tool's
/// own floor.
fn measure(figures: &std::ffi::OsStr) {
    let cmd: Vec<String> = std::env::args().skip(1).collect();
    let r = wait::run(&cmd, Stdio::inherit());
    std::fs::write(figures, format!("{} {} {} {}", r.code, r.wall.as_micros(), r.max_rss_kib, r.cpu.as_micros()))
        .unwrap();
}

/// Time from starting `plan` (text output, as a person runs it) to the first byte it writes on
/// either stream (other than the note the emulators' environment variable adds).
pub fn first_output(dir: &Path, cloud: &Cloud, env: &[(String, String)], kube: &KubeEmulator) -> Duration {
    let start = Instant::now();
    let mut child =
        tool(dir, cloud, env, kube, &["plan"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|mut r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut first = true;
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                // The note the emulators' environment adds (MATIH_KUBE_API_SERVER) is not what
                // a user sees: the first output is the first other byte.
                let chunk = &buf[..n];
                let only_note = chunk.starts_with(b"note: MATIH_KUBE_API_SERVER")
                    && chunk.iter().position(|&b| b == b'\n').is_none_or(|nl| nl + 1 == n);
                if first && !only_note {
                    first = false;
                    let _ = tx.send(start.elapsed());
                }
            }
        })
    })
    .collect();
    drop(tx);
    let first = rx.recv().expect("plan writes something");
    child.wait().unwrap();
    readers.into_iter().for_each(|r| r.join().unwrap());
    first
}

/// Kubernetes objects the add-ons in the state file at `path` applied (their inventories).
pub fn kubernetes_objects(path: &Path) -> u64 {
    let state = matih_state::format::decode(&std::fs::read(path).unwrap(), path).unwrap();
    state
        .resources
        .values()
        .filter_map(|r| r.attrs.get("inventory")?.as_array())
        .flatten()
        .filter_map(|run| Some(run.as_array()?.len().saturating_sub(1) as u64))
        .sum()
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
    if let Some(figures) = std::env::var_os(MEASURE) {
        return measure(&figures);
    }
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
        let kube_objects = kubernetes_objects(&state_file);
        let kube_apply = kubernetes(&applied["api_calls"]);
        if let Some(keep) = std::env::var_os("MATIH_BENCH_KEEP_STATE") {
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::copy(&state_file, Path::new(&keep).join(format!("state-{n}.json"))).unwrap();
            std::fs::write(Path::new(&keep).join(format!("apply-{n}.json")), applied.to_string()).unwrap();
        }
        // Warm-up, then the median of three batched runs and one per-resource run.
        run(dir.path(), &cloud, &env, &kube, &["plan", "--detailed-exitcode"]);
        if let Some(hold) = std::env::var_os("MATIH_BENCH_HOLD") {
            hold_for_profiling(Path::new(&hold), &tool(dir.path(), &cloud, &env, &kube, &["plan"]));
        }
        let measure = |extra: &[&str], runs: usize| {
            let mut peak_rss = 0;
            let mut walls = Vec::new();
            let mut cpus = Vec::new();
            let mut emulators = Vec::new();
            let mut calls = 0;
            let mut kube_calls = 0;
            let mut tool = (0, 0);
            let mut slowest = serde_json::Map::new();
            for _ in 0..runs {
                let mut a = vec!["plan", "--detailed-exitcode"];
                a.extend_from_slice(extra);
                let (m, plan) = run_measured(dir.path(), &cloud, &env, &kube, &a);
                emulators.push(m.emulators_cpu);
                let wall = m.wall;
                peak_rss = peak_rss.max(m.max_rss_kib);
                cpus.push(m.cpu);
                assert_eq!(plan["summary"]["create"], 0, "converged");
                calls = total(&plan["statistics"]["api_calls"]);
                kube_calls = kubernetes(&plan["statistics"]["api_calls"]);
                let st = &plan["statistics"];
                tool = (st["refresh_ms"].as_u64().unwrap_or(0), st["plan_ms"].as_u64().unwrap_or(0));
                slowest = st["refresh_ms_by_type"].as_object().cloned().unwrap_or_default();
                walls.push(wall);
            }
            walls.sort();
            cpus.sort();
            emulators.sort();
            let mut slowest: Vec<(String, u64)> =
                slowest.into_iter().map(|(t, ms)| (t, ms.as_u64().unwrap_or(0))).collect();
            slowest.sort_by_key(|s| std::cmp::Reverse(s.1));
            let slowest: Vec<String> = slowest.iter().take(4).map(|(t, ms)| format!("{t} {ms} ms")).collect();
            let cpu = (cpus[cpus.len() / 2], emulators[emulators.len() / 2]);
            (calls, walls[walls.len() / 2], tool, kube_calls, peak_rss, slowest.join(", "), cpu)
        };
        let (b_calls, b_wall, (b_refresh, b_plan), b_kube, batched_rss, b_slowest, (b_cpu, b_emulators)) =
            measure(&[], 3);
        if n <= 100 || std::env::var_os("MATIH_BENCH_PER_RESOURCE").is_some() {
            // One run: at 1,000 tenants this mode alone keeps the emulators busy for many minutes.
            let (p_calls, p_wall, _, p_kube, _, _, _) = measure(&["--refresh", "per-resource"], 1);
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
            println!("{:>8}   Kubernetes calls in the plan: {b_kube} batched vs {p_kube} per-resource", "");
        } else {
            println!(
                "{:>8} {:>10} | {:>14} {:>8.0}ms | {:>14} {:>10} | {:>9} {:>8} | {:>17}",
                n,
                resources,
                b_calls,
                b_wall.as_secs_f64() * 1e3,
                "(not run)",
                "",
                "",
                "",
                dns_changes
            );
        }
        let first = first_output(dir.path(), &cloud, &env, &kube);
        println!(
            "{:>8}   batched plan, last run: refresh {b_refresh} ms (waiting on the cloud), planning {b_plan} ms; \
             the tool's own CPU {:.0} ms, the emulators' {:.0} ms (medians); peak RSS {:.0} MiB; first output \
             after {:.0} ms; slowest reads: {b_slowest}",
            "",
            b_cpu.as_secs_f64() * 1e3,
            b_emulators.as_secs_f64() * 1e3,
            batched_rss as f64 / 1024.0,
            first.as_secs_f64() * 1e3
        );
        println!(
            "{:>8}   apply: {:.1} s; {kube_apply} Kubernetes calls for {kube_objects} objects ({:.2} per object); \
             state {:.0} KiB, {:.0} bytes per resource",
            "",
            apply_wall.as_secs_f64(),
            kube_apply as f64 / kube_objects.max(1) as f64,
            state_bytes as f64 / 1024.0,
            state_bytes as f64 / resources.max(1) as f64
        );
    }
    let n = std::env::var("MATIH_BENCH_LATENCY_TENANTS")
        .map(|v| v.parse().expect("MATIH_BENCH_LATENCY_TENANTS: a number"))
        .unwrap_or(10);
    if n > 0 {
        latency(&cloud, n, Duration::from_millis(100));
    }
}

/// Every `http://127.0.0.1:<port>` in `env` pointed at a proxy that delays each request by `delay`
/// before passing it on; the proxies, to keep running.
fn delayed(env: &[(String, String)], delay: Duration) -> (Vec<(String, String)>, Vec<matih_fault_proxy::FaultProxy>) {
    use matih_fault_proxy::{Fault, FaultProxy, Options as ProxyOptions, Rule};
    const LOOPBACK: &str = "http://127.0.0.1:";
    let mut proxies: Vec<(u16, FaultProxy)> = Vec::new();
    let env = env
        .iter()
        .map(|(k, v)| {
            let Some(rest) = v.strip_prefix(LOOPBACK) else { return (k.clone(), v.clone()) };
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            let port: u16 = rest[..digits].parse().expect("a port");
            if !proxies.iter().any(|(p, _)| *p == port) {
                let proxy = FaultProxy::start(ProxyOptions {
                    upstream: ([127, 0, 0, 1], port).into(),
                    classify: std::sync::Arc::new(|_| None),
                    error_body: std::sync::Arc::new(|_, _| ("text/plain".into(), Vec::new())),
                    rules: vec![Rule::Random {
                        seed: 1,
                        probability: 1.0,
                        faults: vec![Fault::Latency(delay)],
                        mutating_only: false,
                    }],
                });
                proxies.push((port, proxy));
            }
            let proxy = &proxies.iter().find(|(p, _)| *p == port).unwrap().1;
            (k.clone(), format!("{LOOPBACK}{}{}", proxy.port(), &rest[digits..]))
        })
        .collect();
    (env, proxies.into_iter().map(|(_, p)| p).collect())
}

/// The longest chain of `resources` (address, elapsed ms) along `depends_on`: its cost and its
/// addresses, first to last.
fn critical_path(resources: &[(String, u64)], depends_on: &dyn Fn(&str) -> Vec<String>) -> (u64, Vec<String>) {
    use std::collections::HashMap;
    let elapsed: HashMap<&str, u64> = resources.iter().map(|(a, e)| (a.as_str(), *e)).collect();
    let mut best: HashMap<String, (u64, Vec<String>)> = HashMap::new();
    fn longest(
        a: &str,
        elapsed: &HashMap<&str, u64>,
        depends_on: &dyn Fn(&str) -> Vec<String>,
        best: &mut HashMap<String, (u64, Vec<String>)>,
    ) -> (u64, Vec<String>) {
        if let Some(b) = best.get(a) {
            return b.clone();
        }
        let mut chain = (0, Vec::new());
        for d in depends_on(a).iter().filter(|d| elapsed.contains_key(d.as_str())) {
            let c = longest(d, elapsed, depends_on, best);
            if c.0 > chain.0 {
                chain = c;
            }
        }
        chain.0 += elapsed[a];
        chain.1.push(a.to_string());
        best.insert(a.to_string(), chain.clone());
        chain
    }
    resources.iter().map(|(a, _)| longest(a, &elapsed, depends_on, &mut best)).max_by_key(|c| c.0).unwrap_or_default()
}

/// A fresh platform of `n` tenants applied with `delay` added to every cloud call: the apply's
/// wall time and the span of its walk, against the critical path of its graph.
pub fn latency(cloud: &Cloud, n: usize, delay: Duration) {
    let (env, _guard) = (cloud.start)();
    let (env, _proxies) = delayed(&env, delay);
    let kube = KubeEmulator::start((cloud.kube)());
    let dir = tempfile::tempdir().unwrap();
    platform(dir.path(), n);
    let (_, plan) = run(dir.path(), cloud, &env, &kube, &["plan", "--out", "plan.json"]);
    let (wall, applied) = run(dir.path(), cloud, &env, &kube, &["apply", "plan.json", "--parallelism", "20"]);
    assert_eq!(applied["outcome"], "complete", "{applied:#}");
    let deps: std::collections::HashMap<String, Vec<String>> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let d = c["depends_on"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string);
            (c["address"].as_str().unwrap().to_string(), d.collect())
        })
        .collect();
    let ran: Vec<(String, u64, u64)> = applied["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["phase"] == "apply")
        .filter_map(|r| {
            Some((r["address"].as_str()?.to_string(), r["started_ms"].as_u64()?, r["elapsed_ms"].as_u64()?))
        })
        .collect();
    let span = ran.iter().map(|r| r.1 + r.2).max().unwrap_or(0) - ran.iter().map(|r| r.1).min().unwrap_or(0);
    let elapsed: Vec<(String, u64)> = ran.iter().map(|r| (r.0.clone(), r.2)).collect();
    let (critical, chain) = critical_path(&elapsed, &|a| deps.get(a).cloned().unwrap_or_default());
    let calls = total(&applied["api_calls"]) - kubernetes(&applied["api_calls"]);
    println!(
        "apply of {n} tenants with {} ms added to each of its {calls} cloud calls: wall {:.1} s (with process start, \
         refresh and plan), walk {:.1} s; critical path {:.1} s over {} resources; walk / critical path {:.2}×",
        delay.as_millis(),
        wall.as_secs_f64(),
        span as f64 / 1e3,
        critical as f64 / 1e3,
        chain.len(),
        span as f64 / critical.max(1) as f64
    );
    println!("    critical path: {}", chain.join(" → "));
}
