//! Plan of a synthetic 10,000-resource graph with the fake provider: from empty state (all
//! creates) and against converged state (refresh + no-op). Prints wall time (median of runs) and
//! the process's peak RSS. Targets: plan ≤ 200 ms, peak RSS ≤ 150 MB.
//!
//! `cargo bench -p matih-plans --bench plan`

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use matih_plans::*;
use matih_provider_fake::{FakeCloud, FakeOptions};
use matih_state::{ResourceState, State};
use serde_json::json;

const RESOURCES: usize = 10_000;

/// One zone, the platform address, and per tenant an address and a record that references both.
fn graph() -> DesiredGraph {
    let mut g = DesiredGraph::default();
    let zone = ResourceAddr::must("dns.zone.platform");
    g.add(Desired::new(zone.clone(), "z").set("name", Value::str("matih.ai")));
    let tenants = (RESOURCES - 2) / 2;
    let at = ResourceType::new("fake", "address").unwrap();
    let platform = ResourceAddr::keyed(&at, "ingress", "platform").unwrap();
    g.add(
        Desired::new(platform, "ip-platform")
            .set("name", Value::str("ip-platform"))
            .set("purpose", Value::str("ingress")),
    );
    let rt = ResourceType::new("dns", "record").unwrap();
    for i in 0..tenants {
        let slug = format!("tenant{i:05}");
        let ip = ResourceAddr::keyed(&at, "ingress", slug.as_str()).unwrap();
        g.add(
            Desired::new(ip.clone(), format!("ip-{slug}"))
                .set("name", Value::str(format!("ip-{slug}")))
                .set("purpose", Value::str("ingress")),
        );
        g.add(
            Desired::new(ResourceAddr::keyed(&rt, "tenant", slug.as_str()).unwrap(), format!("{slug}.matih.ai"))
                .set("zone_id", Value::reference(&zone, "id"))
                .set("name", Value::str(format!("{slug}.matih.ai")))
                .set("type", Value::str("A"))
                .set("values", Value::list(vec![Value::reference(&ip, "ip")]))
                .set("ttl", Value::Known(json!(300))),
        );
    }
    g
}

/// State as if the graph had been applied, and the same objects in the fake cloud.
fn converged(g: &DesiredGraph, cloud: &FakeCloud) -> State {
    let mut st = State::new();
    for (addr, d) in &g.resources {
        let id = format!("id-{addr}");
        let mut attrs = serde_json::Map::new();
        for (k, v) in &d.config {
            let val = v.resolve(&mut |r| {
                Some(if r.attr == "ip" { json!("198.51.100.1") } else { json!(format!("id-{}", r.addr)) })
            });
            attrs.insert(k.clone(), val.into_known().unwrap());
        }
        attrs.insert("id".into(), json!(id));
        attrs.insert("arn".into(), json!(format!("fake:{}:{id}", addr.rtype)));
        if addr.rtype.kind == "address" {
            attrs.insert("ip".into(), json!("198.51.100.1"));
        }
        st.resources.insert(
            addr.clone(),
            ResourceState {
                rtype: addr.rtype.clone(),
                id,
                attrs: attrs.into(),
                dependencies: d.dependencies(),
                owner_tags: Default::default(),
                protected: false,
            },
        );
    }
    cloud.seed(st.resources.values().map(|r| (r.rtype.to_string(), r.id.clone(), (*r.attrs).clone())));
    st
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn one_plan(g: &DesiredGraph, state: &State, providers: &Providers) -> (Duration, Duration, Plan) {
    let start = Instant::now();
    let r = refresh(state, providers, 10, RefreshMode::Batched, &Silent).await.unwrap();
    let refreshed = start.elapsed();
    let allow = BTreeSet::new();
    let p = plan(
        PlanInput {
            operation: Operation::Apply,
            desired: g,
            state: &r.state,
            recorded_serial: state.serial,
            drift: r.drift,
            orphans: r.orphans,
            allow_replace: &allow,
            allow_all_protected: false,
            cloud: "fake".into(),
            environment: "bench".into(),
            spec_hash: String::new(),
            statistics: Statistics::default(),
        },
        providers,
    )
    .await
    .unwrap();
    (refreshed, start.elapsed(), p)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let g = graph();
        assert_eq!(g.resources.len(), RESOURCES);
        let cloud = Arc::new(FakeCloud::in_memory(FakeOptions::default()));
        let providers = Providers::new(vec![cloud.clone() as Arc<dyn Provider>]).unwrap();

        let empty = State::new();
        let mut times = Vec::new();
        for _ in 0..7 {
            let (_, t, p) = one_plan(&g, &empty, &providers).await;
            assert_eq!(p.summary.create, RESOURCES);
            times.push(t);
        }
        println!("plan, {RESOURCES} resources, empty state (all create): median {:.1} ms (target ≤ 200 ms)", median(times).as_secs_f64() * 1e3);

        let state = converged(&g, &cloud);
        let mut times = Vec::new();
        let mut refresh_times = Vec::new();
        for _ in 0..7 {
            let (r, t, p) = one_plan(&g, &state, &providers).await;
            assert!(!p.has_changes(), "converged state plans no changes: {:?}", p.changes.iter().find(|c| c.action != Action::NoOp));
            refresh_times.push(r);
            times.push(t);
        }
        println!(
            "plan, {RESOURCES} resources, converged state (refresh + no-op): median {:.1} ms, of which refresh {:.1} ms",
            median(times).as_secs_f64() * 1e3,
            median(refresh_times).as_secs_f64() * 1e3
        );
        println!("peak RSS of the bench process: {:.1} MB (target ≤ 150 MB)", peak_rss_mb());
    });
}
