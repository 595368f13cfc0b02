//! Load/save cost of a large state: 10,000 resources of a typical shape (8 short string
//! attributes, 2 dependencies, 3 owner tags). Prints figures; asserts nothing.
//!
//! Targets (release): load + save ≤ 50 ms in total, ≤ 1 KB per resource on disk.
//!
//! Run with `cargo bench -p matih-state`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use matih_addrs::{ResourceAddr, ResourceType};
use matih_state::{LocalStore, LockOptions, ResourceState, State, format};
use serde_json::json;

const RESOURCES: usize = 10_000;
const RUNS: usize = 11;

fn synthetic_state(n: usize) -> State {
    let mut state = State::new();
    let subnet = ResourceType::new("eks", "subnet").unwrap();
    let vpc = ResourceAddr::must("eks.vpc.main");
    let zone = ResourceAddr::must("dns.zone.platform");
    for i in 0..n {
        let addr = ResourceAddr::keyed(&subnet, "tenant", format!("tenant-{i:05}")).unwrap();
        let attrs = json!({
            "name": format!("prod-tenant-{i:05}"),
            "cidr_block": format!("10.{}.{}.0/24", i / 256 % 256, i % 256),
            "availability_zone": "us-east-1a",
            "vpc_id": "vpc-0a1b2c3d4e5f67890",
            "arn": format!("arn:aws:ec2:us-east-1:123456789012:subnet/subnet-{i:017x}"),
            "state": "available",
            "map_public_ip_on_launch": "false",
            "owner_id": "123456789012",
        });
        let owner_tags = BTreeMap::from([
            ("matih:platform".to_string(), "prod".to_string()),
            ("matih:env".to_string(), "prod-us-east-1".to_string()),
            ("matih:address".to_string(), addr.to_string()),
        ]);
        state.resources.insert(
            addr,
            ResourceState {
                rtype: subnet.clone(),
                id: format!("subnet-{i:017x}"),
                attrs: std::sync::Arc::new(attrs.as_object().unwrap().clone()),
                dependencies: vec![vpc.clone(), zone.clone()],
                owner_tags,
                protected: i % 10 == 0,
            },
        );
    }
    state
}

/// Set in a child run of this benchmark: load the state at this path once, print the time.
const LOAD_ONCE: &str = "MATIH_STATE_BENCH_LOAD_ONCE";

fn main() {
    if let Ok(path) = std::env::var(LOAD_ONCE) {
        let t = Instant::now();
        let state = LocalStore::new(path).load().unwrap().unwrap();
        println!("{}", t.elapsed().as_nanos());
        assert_eq!(state.resources.len(), RESOURCES);
        return;
    }

    let mut state = synthetic_state(RESOURCES);
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("state").join("prod-aws.json"));
    let lock = store.lock(&LockOptions { timeout: Duration::ZERO, command: "bench".into() }).unwrap();

    // Warm up as an apply does: the first saves create the directory, the backup and the
    // scratch file that every later save reuses.
    for _ in 0..3 {
        store.save(&mut state, &lock).unwrap();
    }

    let (mut enc, mut dec, mut save, mut load) = (vec![], vec![], vec![], vec![]);
    let first = state.resources.keys().next().unwrap().clone();
    for run in 0..RUNS {
        // Rendering and parsing alone, in memory.
        let t = Instant::now();
        let bytes = format::encode(&state);
        enc.push(t.elapsed());
        let t = Instant::now();
        let back = format::decode(&bytes, store.path()).unwrap();
        dec.push(t.elapsed());
        assert_eq!(back.resources.len(), RESOURCES);
        drop((bytes, back));

        // A save after a resource finished, as during an apply.
        std::sync::Arc::make_mut(&mut state.resources.get_mut(&first).unwrap().attrs)
            .insert("state".into(), json!(format!("run-{run}")));
        let t = Instant::now();
        store.save(&mut state, &lock).unwrap();
        save.push(t.elapsed());

        let t = Instant::now();
        let loaded = store.load().unwrap().unwrap();
        load.push(t.elapsed());
        assert_eq!(loaded.serial, state.serial);
    }

    // A load in a fresh process, as every CLI command starts with: this also pays for
    // faulting in the memory the state takes.
    let fresh: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .env(LOAD_ONCE, store.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            Duration::from_nanos(String::from_utf8(out.stdout).unwrap().trim().parse().unwrap())
        })
        .collect();

    let on_disk = std::fs::metadata(store.path()).unwrap().len();
    assert_eq!(format::encode(&state).len() as u64, on_disk, "encode and the saved file agree");

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("state store: {RESOURCES} resources, {RUNS} runs, {cores} cores, files in {}", dir.path().display());
    println!("                              median        min");
    let rows = [
        ("encode (memory)", &enc),
        ("decode (memory)", &dec),
        ("save (fsync'd)", &save),
        ("load", &load),
        ("load, fresh process", &fresh),
    ];
    for (name, v) in rows {
        println!("  {name:<23} {:8.2} ms {:8.2} ms", ms(median(v)), ms(min(v)));
    }
    for (name, loads) in [("load + save", &load), ("fresh load + save", &fresh)] {
        let both: Vec<Duration> = save.iter().zip(loads).map(|(s, l)| *s + *l).collect();
        println!("  {name:<23} {:8.2} ms {:8.2} ms   (target ≤ 50 ms)", ms(median(&both)), ms(min(&both)));
    }
    println!("  bytes on disk           {on_disk:>8}");
    println!("  bytes per resource      {:>8.1}                (target ≤ 1024)", on_disk as f64 / RESOURCES as f64);
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn min(v: &[Duration]) -> Duration {
    *v.iter().min().unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
