//! What tests steer: authentication, throttling, injected errors and failed operations, latency,
//! call counts and the request log, raw edits (drift), and the `arm-emulator` binary.

mod common;

use std::io::BufRead;
use std::time::{Duration, Instant};

use common::*;
use matih_azure_emulator::{AzureEmulator, Options};
use serde_json::json;

#[test]
fn a_missing_or_wrong_token_is_refused() {
    let em = AzureEmulator::start(Options { token: Some("s3cret".into()), ..Options::default() });
    let r = Arm::new(&em).get(&group("rg1"), RG_API).expect(401);
    assert_eq!(r.code(), "InvalidAuthenticationToken");
    assert!(r.header("WWW-Authenticate").is_some() && r.header("x-ms-request-id").is_some());
    assert_eq!(
        Arm::with_token(&em, "wrong").get(&group("rg1"), RG_API).expect(401).code(),
        "InvalidAuthenticationToken"
    );
    Arm::with_token(&em, "s3cret").put(&group("rg1"), RG_API, json!({"location": "westeurope"})).expect(201);
}

#[test]
fn throttled_requests_get_429_with_retry_after() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    em.throttle_next(2, 7);
    for _ in 0..2 {
        let r = arm.put(&group("rg1"), RG_API, json!({"location": "westeurope"})).expect(429);
        assert_eq!((r.code(), r.header("Retry-After")), ("TooManyRequests", Some("7")));
    }
    arm.put(&group("rg1"), RG_API, json!({"location": "westeurope"})).expect(201);
}

#[test]
fn an_injected_error_hits_the_next_matching_request_only() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    arm.group("rg1");
    em.fail_next("PUT", "microsoft.network/virtualnetworks", 409, "AnotherOperationInProgress", "busy");
    assert_eq!(
        arm.get(&res("rg1", "Microsoft.Network/virtualNetworks/v1"), NET).expect(404).code(),
        "ResourceNotFound"
    );
    let r = arm.vnet("rg1", "v1", "10.0.0.0/16", &[]).expect(409);
    assert_eq!((r.code(), r.body["error"]["message"].as_str()), ("AnotherOperationInProgress", Some("busy")));
    arm.vnet("rg1", "v1", "10.0.0.0/16", &[]).expect(201);
}

#[test]
fn a_failed_operation_is_reported_by_both_poll_styles() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    arm.group("rg1");
    let pip = res("rg1", "Microsoft.Network/publicIPAddresses/ip1");
    let body = json!({"location": "westeurope", "sku": {"name": "Standard"}});
    em.fail_next_operation("Microsoft.Network/publicIPAddresses", "PublicIPCountLimitReached", "no more IPs");
    let r = arm.put(&pip, NET, body.clone()).expect(201);
    let status = arm.get(r.header("Azure-AsyncOperation").unwrap(), "").expect(200).body;
    assert_eq!(status["status"], "Failed");
    assert_eq!(status["error"]["code"], "PublicIPCountLimitReached");
    let stored = arm.get(&pip, NET).expect(200).body;
    assert_eq!(stored["properties"]["provisioningState"], "Failed");
    assert!(stored["properties"]["ipAddress"].is_null());

    arm.put(&pip, NET, body).expect(200);
    em.fail_next_operation("Microsoft.Network/publicIPAddresses", "InternalServerError", "try again");
    let r = arm.delete(&pip, NET).expect(202);
    let r = arm.get(r.header("Location").unwrap(), "").expect(400);
    assert_eq!(r.code(), "InternalServerError");
    assert!(em.get(&pip).is_some(), "a failed delete leaves the resource");
}

#[test]
fn concurrent_clients_see_one_consistent_state() {
    let em = AzureEmulator::start(Options::default());
    Arm::new(&em).group("rg1");
    std::thread::scope(|s| {
        for i in 0..8 {
            let arm = Arm::new(&em);
            s.spawn(move || {
                let id = res("rg1", &format!("Microsoft.ManagedIdentity/userAssignedIdentities/id{i}"));
                arm.put(&id, MSI, json!({"location": "westeurope"})).expect(201);
            });
        }
    });
    let ids = em.resources("Microsoft.ManagedIdentity/userAssignedIdentities");
    let principals: std::collections::HashSet<_> = ids.iter().map(|i| i["properties"]["principalId"].clone()).collect();
    assert_eq!((ids.len(), principals.len()), (8, 8));
}

#[test]
fn latency_delays_every_answer() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    em.set_latency(Duration::from_millis(300));
    let start = Instant::now();
    arm.get(&group("rg1"), RG_API).expect(404);
    assert!(start.elapsed() >= Duration::from_millis(300), "answered after {:?}", start.elapsed());
}

#[test]
fn calls_and_requests_are_recorded() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    arm.group("rg1");
    let r = arm.vnet("rg1", "v1", "10.0.0.0/16", &[("a", "10.0.0.0/24")]).expect(201);
    arm.get(r.header("Azure-AsyncOperation").unwrap(), "").expect(200);
    arm.get(&res("rg1", "Microsoft.Network/virtualNetworks/v1"), NET).expect(200);
    arm.get(&res("rg1", "Microsoft.Network/virtualNetworks"), NET).expect(200);
    arm.get(&res("rg1", "Microsoft.Network/virtualNetworks/v1/subnets/a"), NET).expect(200);
    arm.get(&res("rg1", "Microsoft.Compute/virtualMachines/x"), NET).expect(400);
    let calls: Vec<(String, u64)> = em.calls().into_iter().collect();
    let expected = [
        ("GET Microsoft.Network/virtualNetworks", 2),
        ("GET Microsoft.Network/virtualNetworks/subnets", 1),
        ("GET operations", 1),
        ("GET unknown", 1),
        ("PUT Microsoft.Network/virtualNetworks", 1),
        ("PUT Microsoft.Resources/resourceGroups", 1),
    ];
    assert_eq!(calls, expected.map(|(k, v)| (k.to_string(), v)));
    let log = em.requests();
    assert_eq!(log.len(), 7);
    assert_eq!((log[1].method.as_str(), log[1].status), ("PUT", 201));
    assert!(log[1].path.ends_with("/virtualNetworks/v1") && log[1].query == "api-version=2024-05-01", "{:?}", log[1]);
    em.clear_requests();
    assert!(em.calls().is_empty() && em.requests().is_empty());
}

#[test]
fn raw_edits_show_as_drift() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    arm.group("rg1");
    arm.vnet("rg1", "v1", "10.0.0.0/16", &[("a", "10.0.0.0/24")]).expect(201);
    let vnet = res("rg1", "Microsoft.Network/virtualNetworks/v1");
    em.patch_raw(&vnet, |v| v["tags"] = json!({"edited": "by hand"}));
    em.patch_raw(&format!("{vnet}/subnets/a"), |s| s["properties"]["addressPrefix"] = json!("10.0.9.0/24"));
    let v = arm.get(&vnet, NET).expect(200).body;
    assert_eq!(v["tags"], json!({"edited": "by hand"}));
    assert_eq!(v["properties"]["subnets"][0]["properties"]["addressPrefix"], "10.0.9.0/24");
    let mut copy = v.clone();
    copy["properties"]["addressSpace"]["addressPrefixes"] = json!(["10.9.0.0/16"]);
    em.put_raw(&vnet.to_uppercase(), copy);
    assert_eq!(
        arm.get(&vnet, NET).expect(200).body["properties"]["addressSpace"]["addressPrefixes"],
        json!(["10.9.0.0/16"])
    );
    assert!(em.delete_raw(&vnet));
    assert_eq!(arm.get(&vnet, NET).expect(404).code(), "ResourceNotFound");
    assert!(em.get(&format!("{vnet}/subnets/a")).is_none(), "its subnets went with it");
    assert!(!em.delete_raw(&vnet));
}

#[test]
fn the_binary_serves_until_killed() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arm-emulator"))
        .args(["--token", "t0k", "--kubeconfig-server", "http://127.0.0.1:1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("ARM_ENDPOINT=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let arm = Arm { base: url.clone(), token: Some("t0k".into()) };
    assert_eq!(arm.get(&group("rg1"), RG_API).expect(404).code(), "ResourceGroupNotFound");
    let anonymous = Arm { base: url, token: None };
    assert_eq!(anonymous.get(&group("rg1"), RG_API).status, 401);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_unregistered_provider_refuses_writes_until_registered() {
    let em = AzureEmulator::start(Options { unregistered: vec!["Microsoft.Network".into()], ..Options::default() });
    let arm = Arm::new(&em);
    arm.group("rg1");
    let vnet = res("rg1", "Microsoft.Network/virtualNetworks/v");
    let body =
        serde_json::json!({"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
    let r = arm.put(&vnet, NET, body.clone());
    assert_eq!((r.status, r.code()), (409, "MissingSubscriptionRegistration"), "{r:#?}");
    let provider = format!("/subscriptions/{SUB}/providers/Microsoft.Network");
    assert_eq!(arm.get(&provider, "2021-04-01").expect(200).body["registrationState"], "NotRegistered");
    arm.call("POST", &format!("{provider}/register"), "2021-04-01", None, &[]).expect(200);
    assert_eq!(arm.get(&provider, "2021-04-01").expect(200).body["registrationState"], "Registered");
    arm.put(&vnet, NET, body).expect(201);
}
