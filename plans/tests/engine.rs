//! Engine behaviour against the in-memory fake provider: ordering, parallelism, failures,
//! deletes, the replacement guard, unknown values, stale plans, batched refresh, drift, the
//! intent journal and create-before-destroy.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matih_plans::*;
use matih_provider_fake::{FailOn, FakeCloud, FakeOptions};
use matih_state::{Snapshot, State, StateError};
use serde_json::json;

/// Keeps every persisted state, decoded from the bytes a store would write. A write can be made
/// to take time (a remote store) and to fail from the n-th on.
#[derive(Default)]
struct Mem {
    writes: Mutex<Vec<State>>,
    latency: Duration,
    fail_from: Option<usize>,
    /// Writes running at once (must never exceed one).
    in_flight: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Persist for Mem {
    fn snapshot(&self, state: &mut State) -> Snapshot {
        Snapshot::take(state)
    }

    async fn write(&self, snapshot: Snapshot) -> Result<(), StateError> {
        use std::sync::atomic::Ordering;
        assert_eq!(self.in_flight.fetch_add(1, Ordering::SeqCst), 0, "one write at a time");
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut writes = self.writes.lock().unwrap();
        if self.fail_from.is_some_and(|n| writes.len() >= n) {
            return Err(StateError::Io {
                op: "write",
                path: "mem".into(),
                source: std::io::Error::other("the store went away"),
            });
        }
        let state = matih_state::format::decode(&snapshot.to_bytes(), std::path::Path::new("mem")).unwrap();
        assert_eq!(state.serial, snapshot.serial());
        assert!(writes.last().is_none_or(|w| w.serial < state.serial), "each write newer than the last");
        writes.push(state);
        Ok(())
    }
}

fn a(s: &str) -> ResourceAddr {
    ResourceAddr::must(s)
}

/// network <- subnet[a], subnet[b] <- cluster <- pool; zone <- record -> address.
fn graph(version: &str, cidr: &str, machine: &str) -> DesiredGraph {
    let mut g = DesiredGraph::default();
    let net = a("fake.network.main");
    g.add(Desired::new(net.clone(), "net").set("name", Value::str("net")).set("cidr", Value::str(cidr)));
    let mut ids = Vec::new();
    for z in ["a", "b"] {
        let s = a(&format!(r#"fake.subnet.private["{z}"]"#));
        g.add(
            Desired::new(s.clone(), format!("sn-{z}"))
                .set("network_id", Value::reference(&net, "id"))
                .set("cidr", Value::str(format!("10.0.{}.0/24", z.len())))
                .set("zone", Value::str(z))
                .set("role", Value::str("private")),
        );
        ids.push(Value::reference(&s, "id"));
    }
    let cl = a("fake.cluster.main");
    g.add(
        Desired::new(cl.clone(), "cl")
            .set("name", Value::str("cl"))
            .set("version", Value::str(version))
            .set("subnet_ids", Value::list(ids)),
    );
    g.add(
        Desired::new(a(r#"fake.node_pool.pool["system"]"#), "pool")
            .set("cluster_id", Value::reference(&cl, "id"))
            .set("machine_type", Value::str(machine))
            .set("min", Value::Known(json!(1)))
            .set("max", Value::Known(json!(3))),
    );
    let zone = a("dns.zone.platform");
    g.add(Desired::new(zone.clone(), "z").set("name", Value::str("matih.ai")));
    let ip = a(r#"fake.address.ingress["platform"]"#);
    g.add(Desired::new(ip.clone(), "ip").set("name", Value::str("ip")).set("purpose", Value::str("ingress")));
    g.add(
        Desired::new(a("dns.record.api"), "api")
            .set("zone_id", Value::reference(&zone, "id"))
            .set("name", Value::str("api.matih.ai"))
            .set("type", Value::str("A"))
            .set("values", Value::list(vec![Value::reference(&ip, "ip")]))
            .set("ttl", Value::Known(json!(300))),
    );
    g.output("endpoint", Value::reference(&cl, "endpoint"), false);
    g
}

struct World {
    cloud: Arc<FakeCloud>,
    providers: Providers,
    mem: Mem,
}

fn world(opts: FakeOptions) -> World {
    let cloud = Arc::new(FakeCloud::in_memory(opts));
    let providers = Providers::new(vec![cloud.clone() as Arc<dyn Provider>]).unwrap();
    World { cloud, providers, mem: Mem::default() }
}

fn opts(parallelism: usize) -> ApplyOptions {
    ApplyOptions {
        parallelism,
        stop: Arc::new(AtomicBool::new(false)),
        ownership: Ownership { platform: "matih".into(), environment: "prod".into() },
    }
}

async fn make_plan(w: &World, g: &DesiredGraph, state: &State, op: Operation, allow: &[&str]) -> Plan {
    let r = refresh(state, &w.providers, 4, RefreshMode::Batched, &Silent).await.unwrap();
    let allow: BTreeSet<ResourceAddr> = allow.iter().map(|s| a(s)).collect();
    plan(
        PlanInput {
            operation: op,
            desired: g,
            state: &r.state,
            recorded_serial: state.serial,
            drift: r.drift,
            allow_replace: &allow,
            allow_all_protected: false,
            cloud: "fake".into(),
            environment: "prod".into(),
            spec_hash: "h".into(),
            statistics: Statistics { api_calls: r.stats.calls, ..Default::default() },
            orphans: r.orphans,
        },
        &w.providers,
    )
    .await
    .unwrap()
}

async fn converge(w: &World, g: &DesiredGraph, state: State) -> State {
    let p = make_plan(w, g, &state, Operation::Apply, &[]).await;
    let r = apply(&p, state, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    assert!(r.is_complete(), "{:?}", r.nodes);
    r.state
}

fn action_of(p: &Plan, addr: &str) -> Action {
    p.changes.iter().find(|c| c.address == a(addr) && !c.deposed).unwrap().action
}

#[tokio::test]
async fn creates_in_dependency_order_and_propagates_known_after_apply() {
    let w = world(FakeOptions::default());
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    let empty = State::new();
    let p = make_plan(&w, &g, &empty, Operation::Apply, &[]).await;
    assert_eq!(p.summary.create, 8);
    let subnet = p.changes.iter().find(|c| c.address == a(r#"fake.subnet.private["a"]"#)).unwrap();
    let network_id = subnet.attributes.iter().find(|c| c.path == "network_id").unwrap();
    assert_eq!(
        network_id.after,
        Some(Value::Unknown),
        "a reference to an uncreated resource is known only after apply"
    );

    let state = apply(&p, empty, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap().state;
    let creates: Vec<String> =
        w.cloud.calls().into_iter().filter(|c| c.op == "Create").map(|c| c.addrs[0].clone()).collect();
    let pos = |s: &str| creates.iter().position(|x| x == s).unwrap();
    assert!(pos("fake.network.main") < pos(r#"fake.subnet.private["a"]"#));
    assert!(pos(r#"fake.subnet.private["b"]"#) < pos("fake.cluster.main"));
    assert!(pos("fake.cluster.main") < pos(r#"fake.node_pool.pool["system"]"#));
    assert!(pos(r#"fake.address.ingress["platform"]"#) < pos("dns.record.api"));

    let net_id = &state.resources[&a("fake.network.main")].attrs["id"];
    assert_eq!(&state.resources[&a(r#"fake.subnet.private["a"]"#)].attrs["network_id"], net_id);
    let ip = state.resources[&a(r#"fake.address.ingress["platform"]"#)].attrs["ip"].clone();
    assert_eq!(state.resources[&a("dns.record.api")].attrs["values"], json!([ip]));
    assert_eq!(state.outputs["endpoint"].value, state.resources[&a("fake.cluster.main")].attrs["endpoint"]);
    assert!(state.intents.is_empty());

    // Converged: a second plan has nothing to do.
    let again = make_plan(&w, &g, &state, Operation::Apply, &[]).await;
    assert!(!again.has_changes(), "{:#?}", again.changes);
    assert_eq!(again.summary.unchanged, 8);
}

#[tokio::test]
async fn state_is_persisted_before_each_create_and_after_each_resource() {
    let w = world(FakeOptions::default());
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    converge(&w, &g, State::new()).await;
    let writes = w.mem.writes.lock().unwrap();
    // 8 creates: an intent write and a result write each, plus one for outputs, where creates
    // that finish together share a write.
    assert!(writes.len() <= 17 && writes.len() >= 8, "{}", writes.len());
    // Every resource's intent was stored before it was: in a write earlier than the first that
    // records the resource.
    let last = writes.last().unwrap();
    for addr in last.resources.keys() {
        let recorded = writes.iter().position(|s| s.resources.contains_key(addr)).unwrap();
        assert!(writes[..recorded].iter().any(|s| s.intents.contains_key(addr)), "{addr}: no intent stored first");
    }
    // Resource counts never go down across writes during a create-only apply.
    let counts: Vec<usize> = writes.iter().map(|s| s.resources.len()).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
}

#[tokio::test]
async fn parallelism_bound_is_reached_and_never_exceeded() {
    let w = world(FakeOptions { latency: Duration::from_millis(30), ..Default::default() });
    let mut g = DesiredGraph::default();
    for i in 0..24 {
        g.add(
            Desired::new(a(&format!("fake.address.ingress[{i}]")), format!("ip{i}"))
                .set("name", Value::str(format!("ip{i}")))
                .set("purpose", Value::str("x")),
        );
    }
    let empty = State::new();
    let p = make_plan(&w, &g, &empty, Operation::Apply, &[]).await;
    apply(&p, empty, &w.providers, &w.mem, &opts(5), &Silent).await.unwrap();
    assert_eq!(w.cloud.max_in_flight(), 5);
}

fn addresses(n: usize) -> DesiredGraph {
    let mut g = DesiredGraph::default();
    for i in 0..n {
        g.add(
            Desired::new(a(&format!("fake.address.ingress[{i}]")), format!("ip{i}"))
                .set("name", Value::str(format!("ip{i}")))
                .set("purpose", Value::str("x")),
        );
    }
    g
}

#[tokio::test]
async fn work_finishing_together_shares_a_write_and_a_slow_store_keeps_the_walk_parallel() {
    let w = World {
        mem: Mem { latency: Duration::from_millis(40), ..Mem::default() },
        ..world(FakeOptions { latency: Duration::from_millis(30), ..Default::default() })
    };
    let g = addresses(40);
    let empty = State::new();
    let p = make_plan(&w, &g, &empty, Operation::Apply, &[]).await;
    let r = apply(&p, empty, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    assert!(r.is_complete());
    // Writes one at a time, each 40 ms, would let one or two 30 ms creates run at once.
    assert!(w.cloud.max_in_flight() >= 8, "the store's latency serialized the creates: {}", w.cloud.max_in_flight());
    // One write per intent and per result would be 80; writes in flight gather the rest.
    let writes = w.mem.writes.lock().unwrap();
    assert!(writes.len() < 40, "{} writes for 40 creates at parallelism 10", writes.len());
    assert_eq!(writes.last().unwrap().resources.len(), 40);
    for addr in writes.last().unwrap().resources.keys() {
        let recorded = writes.iter().position(|s| s.resources.contains_key(addr)).unwrap();
        assert!(writes[..recorded].iter().any(|s| s.intents.contains_key(addr)), "{addr}: no intent stored first");
    }
}

#[tokio::test]
async fn nothing_new_starts_after_a_failed_write() {
    let w = World {
        mem: Mem { fail_from: Some(3), ..Mem::default() },
        ..world(FakeOptions { latency: Duration::from_millis(5), ..Default::default() })
    };
    let g = addresses(30);
    let empty = State::new();
    let p = make_plan(&w, &g, &empty, Operation::Apply, &[]).await;
    let r = apply(&p, empty, &w.providers, &w.mem, &opts(2), &Silent).await.unwrap();
    let count = |f: fn(&NodeResult) -> bool| r.nodes.iter().filter(|n| f(&n.result)).count();
    assert!(count(|r| matches!(r, NodeResult::Failed(EngineError::State(_)))) >= 1);
    assert!(count(|r| matches!(r, NodeResult::NotStarted)) >= 20, "new work stopped");
    // Nothing was created that the stored state cannot find again: every object in the cloud
    // has its intent (or itself) in the last write that succeeded.
    let writes = w.mem.writes.lock().unwrap();
    let stored = writes.last().unwrap();
    assert_eq!(writes.len(), 3);
    for obj in w.cloud.objects() {
        let addr = a(&obj.tags["matih:address"]);
        assert!(stored.intents.contains_key(&addr) || stored.resources.contains_key(&addr), "{addr} unrecorded");
    }
}

#[tokio::test]
async fn a_failure_skips_its_dependents_and_keeps_finished_work() {
    let w = world(FakeOptions { fail: vec![FailOn::Create(a(r#"fake.subnet.private["a"]"#))], ..Default::default() });
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    let empty = State::new();
    let p = make_plan(&w, &g, &empty, Operation::Apply, &[]).await;
    let r = apply(&p, empty, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    let result = |s: &str| &r.nodes.iter().find(|n| n.address == a(s)).unwrap().result;
    match result(r#"fake.subnet.private["a"]"#) {
        NodeResult::Failed(EngineError::Provider { addr, source, .. }) => {
            assert_eq!(addr, &a(r#"fake.subnet.private["a"]"#));
            assert_eq!(source.code(), Some("InvalidParameterValue"), "{source}");
            assert_eq!(source.kind(), ErrorKind::Invalid);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(result("fake.cluster.main"), NodeResult::Skipped { because } if *because == a(r#"fake.subnet.private["a"]"#))
    );
    assert!(matches!(result(r#"fake.node_pool.pool["system"]"#), NodeResult::Skipped { .. }));
    assert!(matches!(result("dns.record.api"), NodeResult::Done));
    // What finished is in state; the failed create left an intent that the next run resolves.
    assert!(r.state.resources.contains_key(&a(r#"fake.subnet.private["b"]"#)));
    assert!(!r.state.resources.contains_key(&a("fake.cluster.main")));
    let last = w.mem.writes.lock().unwrap().last().unwrap().clone();
    assert_eq!(last.resources.len(), r.state.resources.len());
}

#[tokio::test]
async fn destroy_deletes_dependents_first_and_guards_protected() {
    let w = world(FakeOptions::default());
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    let state = converge(&w, &g, State::new()).await;
    let p = make_plan(&w, &g, &state, Operation::Destroy, &[]).await;
    let blocked: Vec<String> = p.blocked.iter().map(|b| b.address.to_string()).collect();
    assert_eq!(
        blocked,
        ["dns.zone.platform", r#"fake.address.ingress["platform"]"#, "fake.cluster.main", "fake.network.main"]
    );
    assert!(matches!(
        apply(&p, state.clone(), &w.providers, &w.mem, &opts(10), &Silent).await,
        Err(EngineError::Blocked(_))
    ));
    assert!(w.cloud.calls().iter().all(|c| c.op != "Delete"), "a blocked plan deletes nothing");

    let all = ["dns.zone.platform", r#"fake.address.ingress["platform"]"#, "fake.cluster.main", "fake.network.main"];
    let p = make_plan(&w, &g, &state, Operation::Destroy, &all).await;
    assert!(p.blocked.is_empty());
    w.cloud.clear_calls();
    let r = apply(&p, state, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    assert!(r.is_complete());
    let deletes: Vec<String> =
        w.cloud.calls().into_iter().filter(|c| c.op == "Delete").map(|c| c.addrs[0].clone()).collect();
    let pos = |s: &str| deletes.iter().position(|x| x == s).unwrap();
    assert!(pos(r#"fake.node_pool.pool["system"]"#) < pos("fake.cluster.main"));
    assert!(pos("fake.cluster.main") < pos(r#"fake.subnet.private["a"]"#));
    assert!(pos(r#"fake.subnet.private["b"]"#) < pos("fake.network.main"));
    assert!(pos("dns.record.api") < pos("dns.zone.platform"));
    assert!(w.cloud.objects().is_empty());
    assert!(r.state.resources.is_empty() && r.state.outputs.is_empty());
}

#[tokio::test]
async fn replacing_a_protected_resource_is_blocked_unless_allowed() {
    let w = world(FakeOptions::default());
    let state = converge(&w, &graph("1.32", "10.0.0.0/16", "m6i.large"), State::new()).await;
    let g2 = graph("1.32", "10.9.0.0/16", "m6i.large");
    let p = make_plan(&w, &g2, &state, Operation::Apply, &[]).await;
    assert_eq!(
        p.blocked,
        vec![
            Blocked { address: a("fake.cluster.main"), action: Action::Replace, forced_by: vec!["subnet_ids".into()] },
            Blocked { address: a("fake.network.main"), action: Action::Replace, forced_by: vec!["cidr".into()] },
        ]
    );
    // The replacement cascades through references: subnets' network_id becomes unknown.
    assert_eq!(action_of(&p, r#"fake.subnet.private["a"]"#), Action::Replace);
    assert_eq!(action_of(&p, "fake.cluster.main"), Action::Replace);
    // Node pools are create-before-destroy, but not when their cluster goes first.
    assert_eq!(action_of(&p, r#"fake.node_pool.pool["system"]"#), Action::Replace);
    let p = make_plan(&w, &g2, &state, Operation::Apply, &["fake.network.main"]).await;
    // Allowing the network alone is not enough: the cluster is replaced because its subnets are.
    assert_eq!(p.blocked.iter().map(|b| b.address.to_string()).collect::<Vec<_>>(), ["fake.cluster.main"]);
    let p = make_plan(&w, &g2, &state, Operation::Apply, &["fake.network.main", "fake.cluster.main"]).await;
    assert!(p.blocked.is_empty());
    let r = apply(&p, state, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    assert!(r.is_complete(), "{:?}", r.nodes);
    assert_eq!(r.state.resources[&a("fake.network.main")].attrs["cidr"], json!("10.9.0.0/16"));
    assert_eq!(w.cloud.objects().len(), 8, "old instances are gone");
    assert!(!make_plan(&w, &g2, &r.state, Operation::Apply, &[]).await.has_changes());
}

#[tokio::test]
async fn update_in_place_and_create_before_destroy() {
    let w = world(FakeOptions::default());
    let state = converge(&w, &graph("1.32", "10.0.0.0/16", "m6i.large"), State::new()).await;
    let old_pool = state.resources[&a(r#"fake.node_pool.pool["system"]"#)].id.clone();
    let g2 = graph("1.33", "10.0.0.0/16", "m6i.xlarge");
    let p = make_plan(&w, &g2, &state, Operation::Apply, &[]).await;
    assert_eq!(action_of(&p, "fake.cluster.main"), Action::Update);
    assert_eq!(action_of(&p, r#"fake.node_pool.pool["system"]"#), Action::CreateBeforeDestroy);
    w.cloud.clear_calls();
    let r = apply(&p, state, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    assert!(r.is_complete());
    let calls: Vec<(String, String)> = w
        .cloud
        .calls()
        .into_iter()
        .filter(|c| c.rtype == "fake.node_pool")
        .map(|c| (c.op.to_string(), c.addrs[0].clone()))
        .collect();
    assert_eq!(
        calls.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["Create", "Delete"],
        "new pool first, then the old one"
    );
    assert!(r.state.deposed.is_empty());
    assert_ne!(r.state.resources[&a(r#"fake.node_pool.pool["system"]"#)].id, old_pool);
    assert!(w.cloud.objects().iter().all(|o| o.id != old_pool));
}

#[tokio::test]
async fn a_deposed_instance_left_by_a_failed_delete_is_deleted_next_time() {
    let w =
        world(FakeOptions { fail: vec![FailOn::Delete(a(r#"fake.node_pool.pool["system"]"#))], ..Default::default() });
    let state = converge(&w, &graph("1.32", "10.0.0.0/16", "m6i.large"), State::new()).await;
    let g2 = graph("1.32", "10.0.0.0/16", "m6i.xlarge");
    let p = make_plan(&w, &g2, &state, Operation::Apply, &[]).await;
    let r = apply(&p, state, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    assert_eq!(r.failed().count(), 1);
    assert_eq!(r.state.deposed.len(), 1, "the old pool is remembered");
    let w2 = World { cloud: w.cloud.clone(), providers: w.providers, mem: Mem::default() };
    let p = make_plan(&w2, &g2, &r.state, Operation::Apply, &[]).await;
    let dep = p.changes.iter().find(|c| c.deposed).unwrap();
    assert_eq!((dep.action, &dep.reason), (Action::Delete, &Reason::Deposed));
}

#[tokio::test]
async fn refresh_reads_each_type_once_and_reports_drift_that_apply_repairs() {
    let w = world(FakeOptions::default());
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    let state = converge(&w, &g, State::new()).await;
    w.cloud.clear_calls();
    let sub_a = state.resources[&a(r#"fake.subnet.private["a"]"#)].id.clone();
    let rec = state.resources[&a("dns.record.api")].id.clone();
    w.cloud.tamper(&sub_a, "role", json!("public"));
    w.cloud.remove(&rec);

    let p = make_plan(&w, &g, &state, Operation::Apply, &[]).await;
    let reads: Vec<_> = w.cloud.calls().into_iter().filter(|c| c.op == "Describe").collect();
    assert_eq!(reads.len(), 7, "one batched read per resource type");
    assert_eq!(reads.iter().find(|c| c.rtype == "fake.subnet").unwrap().addrs.len(), 2);
    assert_eq!(p.statistics.api_calls.values().sum::<u64>(), 7);

    assert_eq!(p.drift.len(), 2);
    assert!(p.drift.iter().any(|d| d.address == a("dns.record.api") && d.deleted));
    assert!(p.drift.iter().any(|d| d.address == a(r#"fake.subnet.private["a"]"#) && d.attributes[0].path == "role"));
    let sub = p.changes.iter().find(|c| c.address == a(r#"fake.subnet.private["a"]"#)).unwrap();
    assert_eq!((sub.action, &sub.reason), (Action::Update, &Reason::DriftRepair));
    let recc = p.changes.iter().find(|c| c.address == a("dns.record.api")).unwrap();
    assert_eq!((recc.action, &recc.reason), (Action::Create, &Reason::DeletedOutside));

    let r = apply(&p, state, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    assert!(r.is_complete());
    assert!(!make_plan(&w, &g, &r.state, Operation::Apply, &[]).await.has_changes());
}

#[tokio::test]
async fn stale_plans_are_refused() {
    let w = world(FakeOptions::default());
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    let mut state = State::new();
    let p = make_plan(&w, &g, &state, Operation::Apply, &[]).await;
    let snapshot = w.mem.snapshot(&mut state);
    w.mem.write(snapshot).await.unwrap();
    let err = apply(&p, state.clone(), &w.providers, &w.mem, &opts(10), &Silent).await.unwrap_err();
    assert!(matches!(err, EngineError::StalePlan { .. }), "{err}");
    assert!(err.to_string().contains("serial 0") && err.to_string().contains("serial 1"), "{err}");
    let other = State::new();
    let err = apply(&p, other, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap_err();
    assert!(err.to_string().contains("lineage"), "{err}");
    assert!(w.cloud.calls().iter().all(|c| c.op != "Create"));
}

#[tokio::test]
async fn an_ambiguous_create_is_adopted_from_the_journal_not_repeated() {
    let target = a(r#"fake.address.ingress["platform"]"#);
    let w = world(FakeOptions { fail: vec![FailOn::CreateAfterCreating(target.clone())], ..Default::default() });
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    let empty = State::new();
    let p = make_plan(&w, &g, &empty, Operation::Apply, &[]).await;
    let r = apply(&p, empty, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    assert_eq!(r.failed().count(), 1);
    let mut state = r.state;
    assert!(state.intents.contains_key(&target), "the intent outlives an ambiguous failure");
    let report = resolve_intents(&mut state, &w.providers, &w.mem, &Silent).await.unwrap();
    assert_eq!(report.adopted, vec![target.clone()]);
    assert!(state.intents.is_empty());
    let p = make_plan(&w, &g, &state, Operation::Apply, &[]).await;
    assert_eq!(action_of(&p, r#"fake.address.ingress["platform"]"#), Action::NoOp);
    assert_eq!(w.cloud.objects_at(&target).len(), 1, "created once");
}

#[tokio::test]
async fn removed_resources_are_deleted_and_cycles_are_reported() {
    let w = world(FakeOptions::default());
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    let state = converge(&w, &g, State::new()).await;
    let mut g2 = g.clone();
    g2.resources.remove(&a("dns.record.api"));
    let p = make_plan(&w, &g2, &state, Operation::Apply, &[]).await;
    let c = p.changes.iter().find(|c| c.address == a("dns.record.api")).unwrap();
    assert_eq!((c.action, &c.reason), (Action::Delete, &Reason::RemovedFromSpec));
    assert_eq!(p.summary.delete, 1);

    let mut cyc = DesiredGraph::default();
    cyc.add(
        Desired::new(a("fake.address.ingress[1]"), "x")
            .set("name", Value::reference(&a("fake.address.ingress[2]"), "id")),
    );
    cyc.add(
        Desired::new(a("fake.address.ingress[2]"), "y")
            .set("name", Value::reference(&a("fake.address.ingress[1]"), "id")),
    );
    let err = validate(&cyc, &w.providers).await.unwrap_err();
    assert!(matches!(err, EngineError::Cycle { .. }), "{err}");
    let mut dangling = DesiredGraph::default();
    dangling.add(
        Desired::new(a("fake.address.ingress[1]"), "x").set("name", Value::reference(&a("fake.network.nope"), "id")),
    );
    assert!(matches!(validate(&dangling, &w.providers).await.unwrap_err(), EngineError::DanglingRef { .. }));
}

#[tokio::test]
async fn dns_records_of_one_apply_go_out_as_one_batch() {
    let w = world(FakeOptions { latency: Duration::from_millis(2), ..Default::default() });
    let mut g = DesiredGraph::default();
    let zone = a("dns.zone.platform");
    g.add(Desired::new(zone.clone(), "z").set("name", Value::str("matih.ai")));
    for i in 0..50 {
        let ip = a(&format!("fake.address.ingress[{i}]"));
        g.add(
            Desired::new(ip.clone(), format!("ip{i}"))
                .set("name", Value::str(format!("ip{i}")))
                .set("purpose", Value::str("x")),
        );
        g.add(
            Desired::new(a(&format!(r#"dns.record.tenant["t{i}"]"#)), format!("t{i}"))
                .set("zone_id", Value::reference(&zone, "id"))
                .set("name", Value::str(format!("t{i}.matih.ai")))
                .set("type", Value::str("A"))
                .set("values", Value::list(vec![Value::reference(&ip, "ip")]))
                .set("ttl", Value::Known(json!(300))),
        );
    }
    let state = converge(&w, &g, State::new()).await;
    let batches: Vec<_> = w.cloud.calls().into_iter().filter(|c| c.op == "ChangeBatch").collect();
    assert_eq!(batches.len(), 1, "all 50 records in one call");
    assert_eq!(batches[0].addrs.len(), 50);
    // One state write for the batch's intents and one for its results, not one per record.
    assert_eq!(state.resources.len(), 101);

    // Deleting them is one batch too.
    w.cloud.clear_calls();
    let mut g2 = g.clone();
    g2.resources.retain(|a, _| a.rtype.to_string() != "dns.record");
    let p = make_plan(&w, &g2, &state, Operation::Apply, &[]).await;
    assert_eq!(p.summary.delete, 50);
    apply(&p, state, &w.providers, &w.mem, &opts(10), &Silent).await.unwrap();
    let batches: Vec<_> = w.cloud.calls().into_iter().filter(|c| c.op == "ChangeBatch").collect();
    assert_eq!(batches.len(), 1);
}

#[tokio::test]
async fn per_resource_refresh_reads_each_resource_and_sees_the_same() {
    let w = world(FakeOptions::default());
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    let state = converge(&w, &g, State::new()).await;
    w.cloud.clear_calls();
    let batched = refresh(&state, &w.providers, 4, RefreshMode::Batched, &Silent).await.unwrap();
    let per = refresh(&state, &w.providers, 4, RefreshMode::PerResource, &Silent).await.unwrap();
    assert_eq!(batched.stats.total_calls(), 7);
    assert_eq!(per.stats.total_calls(), 8);
    assert_eq!(batched.state, per.state);
}

#[tokio::test]
async fn a_targeted_plan_applies_the_target_and_what_it_depends_on_only() {
    let w = world(FakeOptions::default());
    let g = graph("1.33", "10.0.0.0/16", "m6i.large");
    let state = State::default();
    let mut p = make_plan(&w, &g, &state, Operation::Apply, &[]).await;
    let left = p.target(|addr| addr.to_string() == r#"fake.node_pool.pool["system"]"#);
    // The pool needs the cluster, which needs the subnets and the network: those stay.
    for kept in
        [r#"fake.node_pool.pool["system"]"#, "fake.cluster.main", r#"fake.subnet.private["a"]"#, "fake.network.main"]
    {
        assert_eq!(action_of(&p, kept), Action::Create, "{kept}");
    }
    let mut left: Vec<String> = left.iter().map(ToString::to_string).collect();
    left.sort();
    assert_eq!(left, ["dns.record.api", "dns.zone.platform", r#"fake.address.ingress["platform"]"#]);
    assert_eq!(action_of(&p, "dns.zone.platform"), Action::NoOp);
    assert_eq!((p.summary.create, p.summary.unchanged), (5, 3));

    let r = apply(&p, state, &w.providers, &w.mem, &opts(4), &Silent).await.unwrap();
    assert!(r.is_complete());
    assert!(r.state.resources.contains_key(&a("fake.cluster.main")));
    assert!(!r.state.resources.contains_key(&a("dns.zone.platform")), "left for a later apply");
    // The full plan now has just what was left.
    let p = make_plan(&w, &g, &r.state, Operation::Apply, &[]).await;
    assert_eq!(p.summary.create, 3);
}

/// The fake cloud seen through a provider that has moved on: its `fake.network` type is at
/// schema version 2 (version 0 recorded `cidr_block`, version 2 records `cidr`). When told, it
/// answers every subnet create with one and the same id, and says a word with every create.
struct Evolved {
    inner: Arc<FakeCloud>,
    same_subnet_id: bool,
}

#[async_trait::async_trait]
impl Provider for Evolved {
    fn name(&self) -> &str {
        "evolved"
    }
    fn schemas(&self) -> Vec<TypeSchema> {
        let mut v = self.inner.schemas();
        for s in &mut v {
            if s.rtype.to_string() == "fake.network" {
                s.version = 2;
            }
        }
        v
    }
    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        self.inner.read(req).await
    }
    async fn apply(&self, req: ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let subnet = req.rtype.to_string() == "fake.subnet";
        let mut r = self.inner.apply(req).await?;
        if subnet && self.same_subnet_id {
            r.id = "subnet-same".into();
        }
        r.warnings.push("said by the provider".into());
        Ok(r)
    }
    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        self.inner.delete(req).await
    }
    async fn find_by_owner(&self, req: FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        self.inner.find_by_owner(req).await
    }
    fn upgrade(&self, req: UpgradeRequest<'_>) -> Result<matih_state::Attrs, ProviderError> {
        let mut attrs = req.attrs;
        if req.from < 2
            && let Some(v) = attrs.remove("cidr_block")
        {
            attrs.insert("cidr".into(), v);
        }
        Ok(attrs)
    }
}

fn evolved(same_subnet_id: bool) -> Providers {
    let inner = Arc::new(FakeCloud::in_memory(FakeOptions::default()));
    Providers::new(vec![Arc::new(Evolved { inner, same_subnet_id }) as Arc<dyn Provider>]).unwrap()
}

#[test]
fn attributes_recorded_under_an_older_schema_are_upgraded_and_newer_ones_refused() {
    let providers = evolved(false);
    let mut state = State::new();
    let net = a("fake.network.main");
    state.resources.insert(
        net.clone(),
        matih_state::ResourceState {
            rtype: net.rtype.clone(),
            id: "net-1".into(),
            attrs: json!({"cidr_block": "10.0.0.0/16", "name": "net"}).as_object().unwrap().clone().into(),
            dependencies: vec![],
            owner_tags: Default::default(),
            protected: true,
        },
    );
    let changed = upgrade_state(&mut state, &providers).unwrap();
    assert_eq!(changed, vec![net.clone()]);
    assert_eq!(state.resources[&net].attrs["cidr"], json!("10.0.0.0/16"));
    assert!(!state.resources[&net].attrs.contains_key("cidr_block"));
    assert_eq!(state.schema_versions[&net.rtype], 2, "the version is recorded with the attributes");
    assert!(upgrade_state(&mut state, &providers).unwrap().is_empty(), "upgraded once");

    state.schema_versions.insert(net.rtype.clone(), 3);
    match upgrade_state(&mut state, &providers) {
        Err(EngineError::NewerSchema { addr, recorded: 3, supported: 2 }) => assert_eq!(addr, net),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn one_cloud_id_is_never_recorded_at_two_addresses_and_warnings_reach_the_report() {
    let w = World {
        cloud: Arc::new(FakeCloud::in_memory(FakeOptions::default())),
        providers: evolved(true),
        mem: Mem::default(),
    };
    let g = graph("1.32", "10.0.0.0/16", "m6i.large");
    let empty = State::new();
    let p = make_plan(&w, &g, &empty, Operation::Apply, &[]).await;
    let r = apply(&p, empty, &w.providers, &w.mem, &opts(1), &Silent).await.unwrap();
    let subnets: Vec<&matih_state::ResourceState> =
        r.state.resources.values().filter(|s| s.rtype.to_string() == "fake.subnet").collect();
    assert_eq!(subnets.len(), 1, "the second subnet's id is the first's: not recorded twice");
    let shared: Vec<&NodeReport> =
        r.nodes.iter().filter(|n| matches!(n.result, NodeResult::Failed(EngineError::SharedId { .. }))).collect();
    assert_eq!(shared.len(), 1, "{:#?}", r.nodes);
    let NodeResult::Failed(e @ EngineError::SharedId { other, id, .. }) = &shared[0].result else { unreachable!() };
    assert_eq!(id, "subnet-same");
    assert!(e.to_string().contains(&other.to_string()), "the error names the address holding the id: {e}");
    assert!(r.state.intents.is_empty(), "nothing new exists for the refused address: its intent is settled");
    assert!(r.warnings.iter().any(|w| w.starts_with("fake.network.main: said by the provider")), "{:?}", r.warnings);
}
