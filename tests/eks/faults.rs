//! The network lies: `apply --cloud eks` through the project's fault proxy in front of moto.
//!
//! Each test faults the AWS traffic in one way — every mutating action's first call dropped before
//! moto sees it, carried out by moto while the tool sees a 500 or a reset connection, or
//! throttled with `Retry-After` — or at random (20 % of all calls, several seeds). The first
//! apply must finish, and an inventory made with the SDK clients straight against moto (not
//! through the tool, not through the proxy) must show exactly the platform: nothing duplicated,
//! nothing orphaned. The next plan must be empty and report no orphans. Each test prints the
//! faults it injected per action and what the tool did about them (retries, reconciled creates).

use std::collections::BTreeMap;

use matih_fault_proxy::{Fault, FaultProxy, Rule};

use super::*;

/// moto, the Kubernetes API emulator, and the proxy in front of moto that the tool talks to.
struct Lying {
    moto: Moto,
    proxy: FaultProxy,
    w: Work,
    _kube: Arc<KubeEmulator>,
}

fn lying(rules: Vec<Rule>) -> Lying {
    let moto = Moto::start();
    let upstream = format!("127.0.0.1:{}", moto.port()).parse().unwrap();
    let proxy = FaultProxy::start(matih_fault_proxy::aws::options(upstream, rules));
    let (mut w, kube) = work(&moto);
    for (k, v) in w.env.iter_mut() {
        if k == "AWS_ENDPOINT_URL" {
            *v = proxy.url();
        }
    }
    Lying { moto, proxy, w, _kube: kube }
}

/// Applies through the faults, then checks the platform exactly and that the next plan is empty.
/// Returns how many faults were injected, the actions the apply sent and its statistics.
fn converges_in_one_apply(l: &Lying, what: &str) -> (usize, Vec<String>, Value) {
    let (c, v) = l.w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    let injected = l.proxy.injected();
    let sent: Vec<String> = l.proxy.calls().into_keys().collect();
    let mut by_action: BTreeMap<String, usize> = BTreeMap::new();
    for i in &injected {
        *by_action.entry(format!("{}:{:?}", i.action, i.fault)).or_default() += 1;
    }
    assert_eq!(c, 0, "{what}: the first apply through {} faults failed: {v:#}", injected.len());
    let stats = &v["statistics"];
    eprintln!(
        "{what}: {} faults injected; retries {}; reconciled creates {}; faults by action: {by_action:?}",
        injected.len(),
        stats["retries"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum::<u64>()),
        stats["reconciled"],
    );

    // The inventory, straight from moto.
    let aws = Aws::new(&l.moto);
    assert_eq!(aws.inventory(), expected_inventory(), "{what}: duplicates or missing resources");
    let records = aws.records();
    let names: Vec<&str> = records.keys().map(String::as_str).collect();
    assert_eq!(names, ["acme.matih.ai", "api.matih.ai", "bigcorp.matih.ai", "ingress.matih.ai"], "{what}");
    let node_groups = aws.rt.block_on(async {
        aws.eks.list_nodegroups().cluster_name("matih-prod").send().await.unwrap().nodegroups().len()
    });
    assert_eq!(node_groups, 2, "{what}");

    // No faults now: the next plan has nothing to do and no orphans to report.
    l.proxy.set_rules(Vec::new());
    let (c, p) = l.w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{what}: {:?}", changed(&p));
    assert_eq!(p["orphans"], json!([]), "{what}");
    (injected.len(), sent, v["statistics"].clone())
}

fn first_of_each_mutating(fault: Fault) -> Vec<Rule> {
    vec![Rule::FirstOfEachAction { n: 1, mutating_only: true, fault }]
}

/// Every mutating action type the apply sends, faulted once each. Returns the apply's statistics.
fn every_action_once(fault: Fault, what: &str) -> Value {
    let l = lying(first_of_each_mutating(fault));
    let (n, sent, stats) = converges_in_one_apply(&l, what);
    let actions: Vec<String> = sent.into_iter().filter(|a| matih_fault_proxy::aws::is_mutating(a)).collect();
    assert_eq!(n, actions.len(), "{what}: one fault per mutating action type: {actions:?}");
    for want in ["CreateVpc", "CreateSubnet", "AllocateAddress", "CreateNatGateway", "CreateRouteTable", "CreateRole"] {
        assert!(actions.iter().any(|a| a == want), "{what}: {want} was not exercised: {actions:?}");
    }
    assert!(!stats["retry_budget"].as_array().unwrap().is_empty(), "{what}: {stats:#}");
    stats
}

/// Resource types that were created with a lost answer and found and adopted afterwards.
fn reconciled(stats: &Value) -> Vec<String> {
    stats["reconciled"].as_object().unwrap().keys().cloned().collect()
}

/// Every type whose create call the proxy faulted after moto had carried it out.
const CREATED_TYPES: [&str; 12] = [
    "dns.zone",
    "eks.cluster",
    "eks.eip",
    "eks.iam_role",
    "eks.internet_gateway",
    "eks.nat_gateway",
    "eks.node_group",
    "eks.oidc_provider",
    "eks.route_table",
    "eks.security_group",
    "eks.subnet",
    "eks.vpc",
];

#[test]
fn a_create_that_never_arrived_is_sent_again_once() {
    let stats = every_action_once(Fault::DropBeforeForward, "drop-before-forward");
    assert!(reconciled(&stats).is_empty(), "nothing was made, so nothing was adopted: {stats:#}");
}

#[test]
fn a_create_whose_500_hid_its_success_is_adopted_not_duplicated() {
    let stats = every_action_once(Fault::ForwardThen500, "forward-then-500");
    assert_eq!(reconciled(&stats), CREATED_TYPES, "{stats:#}");
    let warned = stats["warnings"].as_array().unwrap();
    assert!(warned.iter().any(|w| w.as_str().unwrap().contains("adopted it")), "{stats:#}");
}

#[test]
fn a_create_whose_connection_reset_after_success_is_adopted_not_duplicated() {
    let stats = every_action_once(Fault::ForwardThenReset, "forward-then-reset");
    assert_eq!(reconciled(&stats), CREATED_TYPES, "{stats:#}");
}

#[test]
fn throttled_calls_wait_as_told_and_go_again() {
    let stats = every_action_once(Fault::Throttle { retry_after_secs: 1 }, "429 with Retry-After");
    let retries: u64 = stats["retries"].as_object().unwrap().values().filter_map(Value::as_u64).sum();
    assert!(retries >= 20, "every throttled call was sent again: {stats:#}");
    assert!(reconciled(&stats).is_empty(), "a throttled create did nothing: {stats:#}");
}

#[test]
fn random_faults_on_a_fifth_of_all_calls_converge_in_one_apply() {
    for seed in [11, 23, 47] {
        let rules = vec![Rule::Random {
            seed,
            probability: 0.2,
            faults: vec![
                Fault::DropBeforeForward,
                Fault::ForwardThen500,
                Fault::ForwardThenReset,
                Fault::Throttle { retry_after_secs: 1 },
            ],
            mutating_only: false,
        }];
        let l = lying(rules);
        let (n, _, _) = converges_in_one_apply(&l, &format!("random, seed {seed}"));
        assert!(n >= 10, "seed {seed}: only {n} faults injected");
    }
}

#[test]
fn a_record_swap_whose_answer_was_lost_is_found_done_and_not_sent_again() {
    // bigcorp moves onto a controller of its own: its CNAME becomes an A record, both in one
    // ChangeResourceRecordSets request. moto makes that request, and the tool gets a 500 (then,
    // in a second run back, a reset connection) instead of the answer.
    let l = lying(Vec::new());
    let (c, v) = l.w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let aws = Aws::new(&l.moto);
    let tenant = |dedicated: bool| {
        let yaml = format!("slug: bigcorp\ndisplay_name: BigCorp\ndedicated_ingress: {dedicated}\n");
        std::fs::write(l.w.path("tenants/bigcorp.yaml"), yaml).unwrap();
    };
    let eips = ["a", "b", "c"].map(|az| format!(r#"eks.eip.ingress["bigcorp/us-east-1{az}"]"#));
    for (dedicated, fault) in [(true, Fault::ForwardThen500), (false, Fault::ForwardThenReset)] {
        tenant(dedicated);
        // (Setting rules starts the proxy's count of calls again.)
        let rule = Rule::Action { name: "ChangeResourceRecordSets".into(), calls: vec![1], fault: fault.clone() };
        l.proxy.set_rules(vec![rule]);
        let mut a = args(&["apply", "--auto-approve", "-o", "json"]);
        for e in &eips {
            a.extend(["--allow-replace", e.as_str()]);
        }
        let (c, v) = l.w.json(&a);
        assert_eq!(c, 0, "{fault:?}: {v:#}");
        assert_eq!(l.proxy.injected().len(), if dedicated { 1 } else { 2 }, "{fault:?}");
        let sent = l.proxy.calls()["ChangeResourceRecordSets"];
        assert_eq!(sent, 1, "{fault:?}: the swap was made once, and found made");
        let records = aws.records();
        let want: Vec<String> = if dedicated {
            let mut ips: Vec<String> = v["outputs"]["ingress_addresses"]["bigcorp"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            ips.sort();
            ips
        } else {
            vec!["ingress.matih.ai".into()]
        };
        assert_eq!(records["bigcorp.matih.ai"], want, "{fault:?}");
        l.proxy.set_rules(Vec::new());
        let (c, p) = l.w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
        assert_eq!(c, 0, "{fault:?}: {:?}", changed(&p));
    }
}
