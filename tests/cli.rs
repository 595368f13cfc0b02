//! The binary end to end on the fake cloud: plan text and JSON snapshots, exit codes, the
//! replacement guard, saved plans, lock contention between processes, and a SIGKILL mid-apply.

use std::process::Stdio;

use serde_json::Value;

mod common;
use common::*;

const FAKE: &[&str] = &["--cloud", "fake"];

fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
    a.iter().copied().chain(FAKE.iter().copied()).collect()
}

fn fake_objects(w: &Work) -> Vec<Value> {
    let bytes = std::fs::read(w.path(".matih/fake-cloud.json")).unwrap_or_default();
    if bytes.is_empty() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["objects"].as_object().unwrap().values().cloned().collect()
}

fn redact_plan(mut v: Value) -> Value {
    v["state"]["lineage"] = "[lineage]".into();
    v["spec_hash"] = "[hash]".into();
    v["tool_version"] = "[version]".into();
    v["statistics"]["refresh_ms"] = 0.into();
    v["statistics"]["plan_ms"] = 0.into();
    v
}

#[test]
fn validate_reports_the_spec() {
    let w = Work::new();
    let (c, v) = w.json(&["validate", "-o", "json"]);
    assert_eq!(c, 0);
    assert_eq!(v["clouds"], serde_json::json!(["eks", "gke", "aks"]));
    assert_eq!(v["tenants"], serde_json::json!(["acme", "bigcorp"]));
    assert_eq!(v["zone"], "matih.ai");
}

#[test]
fn a_broken_spec_names_file_line_and_column() {
    let w = Work::new();
    w.edit("tenants/acme.yaml", "slug: acme", "slug: Acme_Corp");
    let out = w.run(&["validate"]);
    assert_eq!(code(&out), 1);
    let err = text(&out.stderr);
    assert!(err.contains("tenants/acme.yaml:"), "{err}");
    assert!(err.contains("help:") || err.contains("hint:"), "{err}");
    // Every command validates first.
    let out = w.run(&args(&["plan"]));
    assert_eq!(code(&out), 1);
    assert!(!w.path(".matih/state").exists(), "nothing is recorded for an invalid spec");
}

#[test]
fn first_plan_text_and_json() {
    let w = Work::new();
    let out = w.run(&args(&["plan", "--no-color"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    insta::assert_snapshot!("first_plan_text", text(&out.stdout));
    let (c, v) = w.json(&args(&["plan", "-o", "json"]));
    assert_eq!(c, 0);
    insta::assert_json_snapshot!("first_plan_json", redact_plan(v));
}

#[test]
fn apply_converges_and_exit_codes_follow_the_plan() {
    let w = Work::new();
    let out = w.run(&args(&["apply"]));
    assert_eq!(code(&out), 64, "no TTY and no --auto-approve");
    assert!(text(&out.stderr).contains("--auto-approve"));

    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["outcome"], "complete");
    assert_eq!(v["summary"]["create"], 13);
    assert!(v["outputs"]["cluster_endpoint"].as_str().unwrap().starts_with("https://"));
    assert_eq!(v["outputs"]["cluster_ca"], "(sensitive)");

    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("No changes."));

    // A new tenant with a dedicated ingress: an address and a record.
    std::fs::write(w.path("tenants/globex.yaml"), "slug: globex\ndisplay_name: Globex\ndedicated_ingress: true\n")
        .unwrap();
    let (c, v) = w.json(&args(&["plan", "--detailed-exitcode", "-o", "json"]));
    assert_eq!(c, 2);
    let changed: Vec<(&str, &str)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| (c["address"].as_str().unwrap(), c["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changed,
        [(r#"dns.record.tenant["globex"]"#, "create"), (r#"fake.address.ingress["globex"]"#, "create")]
    );

    // Removing a tenant removes what it had.
    std::fs::remove_file(w.path("tenants/acme.yaml")).unwrap();
    std::fs::remove_file(w.path("tenants/globex.yaml")).unwrap();
    // The tenant's reserved address is protected: removing it is said explicitly.
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 3, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains(r#"fake.address.ingress["acme"]"#));
    let (c, v) =
        w.json(&args(&["apply", "--auto-approve", "-o", "json", "--allow-replace", r#"fake.address.ingress["acme"]"#]));
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["summary"]["delete"], 2);
    let addrs: Vec<String> =
        fake_objects(&w).iter().map(|o| o["tags"]["matih:address"].as_str().unwrap().to_string()).collect();
    assert!(!addrs.iter().any(|a| a.contains("acme")), "{addrs:?}");
    assert_eq!(addrs.len(), 11);
}

#[test]
fn the_replacement_guard_blocks_with_exit_3() {
    let w = Work::new();
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    w.edit("matih.yaml", "vpc_cidr: 10.0.0.0/16", "vpc_cidr: 10.1.0.0/16");
    let out = w.run(&args(&["plan", "--no-color"]));
    assert_eq!(code(&out), 3);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Blocked: fake.network.main would be replaced because cidr changed"), "{stdout}");
    assert!(text(&out.stderr).contains("--allow-replace"));
    let out = w.run(&args(&["apply", "--auto-approve"]));
    assert_eq!(code(&out), 3);
    let out = w.run(&args(&[
        "plan",
        "--allow-replace",
        "fake.network.main",
        "--allow-replace",
        "fake.cluster.main",
        "--detailed-exitcode",
    ]));
    assert_eq!(code(&out), 2, "{}", text(&out.stdout));
    let out = w.run(&args(&["plan", "--allow-replace", "not an address"]));
    assert_eq!(code(&out), 64);
}

#[test]
fn saved_plans_apply_exactly_or_are_refused_when_stale() {
    let w = Work::new();
    let out = w.run(&args(&["plan", "--out", "p1.json", "-q"]));
    assert_eq!(code(&out), 0);
    let out = w.run(&args(&["apply", "p1.json", "-q"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(fake_objects(&w).len(), 13);
    // Applying the same plan again: state has moved on.
    let out = w.run(&args(&["apply", "p1.json"]));
    assert_eq!(code(&out), 1);
    let err = text(&out.stderr);
    assert!(err.contains("stale") && err.contains("serial"), "{err}");
    assert!(err.contains("hint: run `matih-infra plan --out FILE` again"), "{err}");
    // A spec change after planning.
    assert_eq!(code(&w.run(&args(&["plan", "--out", "p2.json", "-q"]))), 0);
    std::fs::write(w.path("tenants/initech.yaml"), "slug: initech\ndisplay_name: Initech\ndedicated_ingress: false\n")
        .unwrap();
    let out = w.run(&args(&["apply", "p2.json"]));
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("platform spec or a tenant file changed"), "{}", text(&out.stderr));
    assert_eq!(fake_objects(&w).len(), 13, "a refused plan changes nothing");
}

#[test]
fn failures_skip_dependents_and_keep_finished_work_in_state() {
    let w = Work::new();
    let out = w
        .run_env(&args(&["apply", "--auto-approve", "-o", "json"]), &[("MATIH_FAKE_FAIL", "create:fake.cluster.main")]);
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "failed");
    let by = |addr: &str| v["resources"].as_array().unwrap().iter().find(|r| r["address"] == addr).unwrap().clone();
    assert_eq!(by("fake.cluster.main")["result"], "failed");
    assert!(by("fake.cluster.main")["error"].as_str().unwrap().contains("InvalidParameterValue"));
    assert_eq!(by(r#"fake.node_pool.pool["system"]"#)["result"], "skipped");
    assert_eq!(by(r#"fake.node_pool.pool["system"]"#)["because"], "fake.cluster.main");
    assert_eq!(by("dns.record.api")["result"], "done");
    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    assert_eq!(st["resources"].as_array().unwrap().len(), 10);
    // The next apply does only what is left.
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0);
    assert_eq!(v["summary"]["create"], 3);
    assert_eq!(fake_objects(&w).len(), 13);
}

#[test]
fn errors_in_json_mode_are_json() {
    let w = Work::new();
    let (c, v) = w.json(&["plan", "--cloud", "fake", "-o", "json", "-c", "missing.yaml"]);
    assert_eq!(c, 1);
    assert_eq!(v["error"]["class"], "user");
    assert!(v["error"]["hint"].as_str().unwrap().contains("-c/--config"));
}

#[test]
fn state_commands_and_outputs() {
    let w = Work::new();
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    let out = w.run(&args(&["state", "show", "fake.network.main"]));
    assert_eq!(code(&out), 0);
    assert!(text(&out.stdout).contains("cidr = \"10.0.0.0/16\""));
    let out = w.run(&args(&["output", "cluster_ca"]));
    assert!(text(&out.stdout).starts_with("CA-"), "a sensitive output is printed when named");
    let out = w.run(&args(&["state", "mv", "dns.record.api", "dns.record.api2"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    // The moved record is no longer where the spec wants it: plan deletes the old address and creates the new.
    let (c, v) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    assert_eq!((v["summary"]["create"].as_u64(), v["summary"]["delete"].as_u64()), (Some(1), Some(1)));
    let out = w.run(&args(&["state", "rm", "dns.record.api2"]));
    assert_eq!(code(&out), 0);
    let out = w.run(&args(&["state", "rm", "dns.record.nope"]));
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("is not in state"));
    let out = w.run(&args(&["graph"]));
    assert!(
        text(&out.stdout).contains(r#""fake.cluster.main" -> "fake.subnet.private[\"zone-a\"]";"#),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn sigkill_mid_apply_then_rerun_adopts_instead_of_recreating() {
    let w = Work::new();
    let marker = w.path("hung");
    let mut child = w
        .cmd(&args(&["apply", "--auto-approve", "-q"]))
        .env("MATIH_TEST_HANG_AFTER_CREATE", format!("fake.cluster.main={}", marker.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&marker, &mut child);

    // While it hangs it holds the state lock: another process is refused, naming the holder.
    let out = w.run(&args(&["plan"]));
    assert_eq!(code(&out), 1);
    let err = text(&out.stderr);
    assert!(err.contains(&format!("pid {}", child.id())) && err.contains("apply"), "{err}");

    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();

    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    // Other creates may have been in flight too; each left its own intent.
    let pending = st["pending_intents"].as_array().unwrap();
    assert!(
        pending.contains(&serde_json::json!("fake.cluster.main")),
        "the intent was persisted before the create: {st}"
    );

    let out = w.run(&args(&["apply", "--auto-approve"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("fake.cluster.main: adopted"), "{}", text(&out.stderr));
    let clusters = fake_objects(&w).into_iter().filter(|o| o["type"] == "fake.cluster").count();
    assert_eq!(clusters, 1, "the cluster was created once");
    assert_eq!(fake_objects(&w).len(), 13);
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0);
}

#[test]
fn a_second_process_waits_for_the_lock_with_lock_timeout() {
    let w = Work::new();
    let marker = w.path("hung");
    let mut child = w
        .cmd(&args(&["apply", "--auto-approve", "-q"]))
        .env("MATIH_TEST_HANG_AFTER_CREATE", format!("fake.network.main={}", marker.display()))
        .spawn()
        .unwrap();
    wait_for(&marker, &mut child);
    let mut waiter =
        w.cmd(&args(&["plan", "--lock-timeout", "60s"])).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The waiter says what it plans, then that it is waiting, naming the holder; then the holder
    // dies and the waiter goes ahead.
    let mut stderr = std::io::BufReader::new(waiter.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.starts_with("plan: matih prod on fake, ") && line.contains("state "), "{line}");
    line.clear();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(
        line.contains("waiting up to 1m for the state lock") && line.contains(&format!("pid {}", child.id())),
        "{line}"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(code(&out), 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Plan: ") && !stdout.contains("+ fake.network.main"),
        "the network was adopted, not planned again: {stdout}"
    );
}

#[test]
fn a_corrupt_state_file_is_refused_and_left_alone() {
    let w = Work::new();
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    let state = w.path(".matih/state/prod-fake.json");
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();
    let before = std::fs::read(&state).unwrap();
    let backup = std::fs::read(w.path(".matih/state/prod-fake.json.backup")).unwrap();
    for cmd in [&["plan"][..], &["apply", "--auto-approve"], &["state", "list"]] {
        let out = w.run(&args(cmd));
        assert_eq!(code(&out), 1, "{cmd:?}");
        let err = text(&out.stderr);
        assert!(err.contains("prod-fake.json") && err.contains("hint:") && err.contains(".backup"), "{err}");
    }
    assert_eq!(std::fs::read(&state).unwrap(), before, "a refused state file is not overwritten");
    assert_eq!(std::fs::read(w.path(".matih/state/prod-fake.json.backup")).unwrap(), backup);
    assert_eq!(fake_objects(&w).len(), 13, "nothing was created again");
}

#[test]
fn a_swapped_open_or_linked_state_file_is_named_and_never_lost() {
    use std::os::unix::fs::PermissionsExt;
    let w = Work::new();
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    let state = w.path(".matih/state/prod-fake.json");
    let backup = w.path(".matih/state/prod-fake.json.backup");

    // Another environment's state copied over this one (another lineage): refused, untouched.
    let other = Work::new();
    assert_eq!(code(&other.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    std::fs::copy(other.path(".matih/state/prod-fake.json"), &state).unwrap();
    let (before, backup_before) = (std::fs::read(&state).unwrap(), std::fs::read(&backup).unwrap());
    for cmd in [&["plan"][..], &["apply", "--auto-approve"], &["state", "list"]] {
        let out = w.run(&args(cmd));
        assert_eq!(code(&out), 1, "{cmd:?}");
        let err = text(&out.stderr);
        assert!(err.contains("lineage") && err.contains("--force-lineage"), "{err}");
    }
    assert_eq!((std::fs::read(&state).unwrap(), std::fs::read(&backup).unwrap()), (before, backup_before));
    // The copy had the default umask's mode too: accepting it on purpose warns about both.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = w.run(&args(&["plan", "--force-lineage"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("warning: using state file") && err.contains("--force-lineage"), "{err}");
    assert!(err.contains("warning: state file") && err.contains("mode 0644"), "{err}");
    assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o600);

    // A state path that is a link: written through, and said so.
    let moved = w.path("elsewhere/prod.json");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    let link = w.path("state-link.json");
    std::os::unix::fs::symlink(&moved, &link).unwrap();
    let linked = link.display().to_string();
    let out = w.run(&args(&["apply", "--auto-approve", "--state", &linked]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is a symbolic link: reading and writing"), "{}", text(&out.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is still a link");
    assert!(moved.exists() && w.path("elsewhere/prod.json.lock").exists());
    let (_, v) = w.json(&args(&["state", "list", "-o", "json", "--state", &linked]));
    assert!(v["serial"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn drift_is_shown_apart_from_changes_and_repaired() {
    let w = Work::new();
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    // Change one object and delete another behind the tool's back.
    let path = w.path(".matih/fake-cloud.json");
    let mut cloud: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let objects = cloud["objects"].as_object_mut().unwrap();
    let id_of = |objects: &serde_json::Map<String, Value>, addr: &str| {
        objects.iter().find(|(_, o)| o["tags"]["matih:address"] == addr).map(|(k, _)| k.clone()).unwrap()
    };
    let pool = id_of(objects, r#"fake.node_pool.pool["system"]"#);
    objects[&pool]["attrs"]["max"] = 9.into();
    let api = id_of(objects, "dns.record.api");
    objects.remove(&api);
    std::fs::write(&path, serde_json::to_vec(&cloud).unwrap()).unwrap();

    let out = w.run(&args(&["plan", "--no-color", "--detailed-exitcode"]));
    assert_eq!(code(&out), 2);
    insta::with_settings!({ filters => vec![(r"\b[a-z]+-\d{6}\b", "[id]")] }, {
        insta::assert_snapshot!("drift_plan_text", text(&out.stdout));
    });
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    assert_eq!(code(&w.run(&args(&["plan", "--detailed-exitcode"]))), 0);
}

#[test]
fn first_ctrl_c_finishes_in_flight_work_records_it_and_exits_130() {
    let w = Work::new();
    let mut child = w
        .cmd(&args(&["apply", "--auto-approve", "--parallelism", "1"]))
        .env("MATIH_FAKE_LATENCY_MS", "300")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // Wait until the first create is in flight, then interrupt.
    loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "apply ended before creating anything"
        );
        if line.contains("creating…") {
            break;
        }
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupt: starting nothing new"), "{rest}");
    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    assert_eq!(st["resources"].as_array().unwrap().len(), 1, "the in-flight create finished and was recorded");
    assert_eq!(st["pending_intents"], serde_json::json!([]));
    assert_eq!(fake_objects(&w).len(), 1);
    let out = w.run(&args(&["apply", "--auto-approve", "-q"]));
    assert_eq!(code(&out), 0);
    assert_eq!(fake_objects(&w).len(), 13);
}

#[test]
fn policy_report_shows_kafka_plaintext_blocked_and_tenants_apart() {
    let w = Work::new();
    let (c, v) = w.json(&["policy", "report", "-o", "json"]);
    assert_eq!(c, 0, "{v:#}");
    let entries = v["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    let covers = |e: &serde_json::Value, port: u64| {
        e["ports"].as_array().unwrap().iter().any(|p| {
            let from = p["port"].as_u64().unwrap();
            let to = p["end_port"].as_u64().unwrap_or(from);
            p["protocol"] == "TCP" && (from..=to).contains(&port)
        })
    };
    for e in entries {
        // kube-system has no policies of the platform's; every namespace the platform owns is covered.
        if e["to"].as_str().unwrap().starts_with("matih-") || e["from"].as_str().unwrap().starts_with("matih-") {
            assert!(!covers(e, 9092), "9092 open: {e}");
        }
        let (from, to) = (e["from"].as_str().unwrap(), e["to"].as_str().unwrap());
        if from.starts_with("matih-tenant-") && to.starts_with("matih-tenant-") {
            assert_eq!(from, to, "tenants reach each other: {e}");
        }
    }
    let kafka = entries.iter().find(|e| e["from"] == "matih-tenant-acme" && e["to"] == "matih-data-plane").unwrap();
    assert!(covers(kafka, 9093), "{kafka}");
    let out = w.run(&["policy", "report"]);
    assert!(text(&out.stdout).starts_with("Ports allowed by network policy"), "{}", text(&out.stdout));
}

#[test]
fn tenant_files_are_added_idempotently_validated_and_removed() {
    let w = Work::new();
    let (c, v) =
        w.json(&["tenant", "add", "globex", "--name", "Globex: \"the\" corp", "--dedicated-ingress", "-o", "json"]);
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["tenant"]["ingress_class"], "nginx-tenant-globex");
    assert_eq!(v["tenant"]["namespace"], "matih-tenant-globex");
    let (c, v) = w.json(&["tenant", "add", "globex", "--dedicated-ingress", "-o", "json"]);
    assert_eq!((c, v["changed"].as_bool()), (0, Some(false)), "adding it again changes nothing");
    let (_, l) = w.json(&["tenant", "list", "-o", "json"]);
    let g = l["tenants"].as_array().unwrap().iter().find(|t| t["slug"] == "globex").unwrap().clone();
    assert_eq!(g["display_name"], "Globex: \"the\" corp", "the name survives the file's quoting");

    for bad in ["../escape", "Globex"] {
        let out = w.run(&["tenant", "add", bad]);
        assert_eq!(code(&out), 64, "{}", text(&out.stderr));
    }
    assert!(!w.path("escape.yaml").exists() && !w.path("tenants/Globex.yaml").exists());
    // A reserved slug fails the platform spec's own check; the file goes again.
    let out = w.run(&["tenant", "add", "api"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(!w.path("tenants/api.yaml").exists());

    let (c, v) = w.json(&["tenant", "remove", "globex", "-o", "json"]);
    assert_eq!((c, v["changed"].as_bool()), (0, Some(true)));
    assert!(!w.path("tenants/globex.yaml").exists());
    let (c, v) = w.json(&["tenant", "remove", "globex", "-o", "json"]);
    assert_eq!((c, v["changed"].as_bool()), (0, Some(false)));
}
