//! The ARM client against the ARM emulator on 127.0.0.1: long-running operations of both header
//! styles with deadlines, `nextLink` paging, conditional writes, throttling and the ARM error
//! body with its request id.

use std::sync::Arc;
use std::time::Duration;

use matih_azure_emulator::{AzureEmulator, Options};
use matih_plans::{ErrorKind, ProviderError, StatusSink};
use matih_provider_azure::arm::{Arm, Cond, Op};
use matih_provider_azure::auth::StaticToken;
use matih_provider_kit::{Recorder, RetryPolicy, Secret};
use serde_json::json;

const GROUP: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg";
const NET: &str = "2024-05-01";
const GET: Op = Op { service: "Microsoft.Network", operation: "VirtualNetworks_Get" };
const PUT: Op = Op { service: "Microsoft.Network", operation: "VirtualNetworks_CreateOrUpdate" };

fn client(emu: &AzureEmulator) -> Arm {
    let retry = RetryPolicy { first_delay: Duration::from_millis(10), ..RetryPolicy::default() };
    Arm::new(&emu.url(), Arc::new(StaticToken(Secret::new("t"))), Recorder::default(), retry)
}

fn start(options: Options) -> AzureEmulator {
    AzureEmulator::start(Options { token: Some("t".into()), ..options })
}

async fn group(arm: &Arm) {
    let op = Op { service: "Microsoft.Resources", operation: "ResourceGroups_CreateOrUpdate" };
    let get = Op { service: "Microsoft.Resources", operation: "ResourceGroups_Get" };
    arm.put(
        GROUP,
        "2024-03-01",
        &json!({"location": "eastus"}),
        Cond::None,
        op,
        get,
        &StatusSink::default(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
}

fn vnet(name: &str) -> (String, serde_json::Value) {
    let id = format!("{GROUP}/providers/Microsoft.Network/virtualNetworks/{name}");
    (id, json!({"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_waits_for_its_operation_and_a_deadline_names_the_last_status() {
    let emu = start(Options { lro_delay: Duration::from_millis(1500), retry_after_secs: 0, ..Options::default() });
    let arm = client(&emu);
    group(&arm).await;
    let (id, body) = vnet("a");
    let got =
        arm.put(&id, NET, &body, Cond::None, PUT, GET, &StatusSink::default(), Duration::from_secs(30)).await.unwrap();
    assert_eq!(got["properties"]["provisioningState"], "Succeeded");
    assert!(emu.calls()["GET operations"] >= 1, "{:?}", emu.calls());

    let (id, body) = vnet("b");
    let e = arm
        .put(&id, NET, &body, Cond::None, PUT, GET, &StatusSink::default(), Duration::from_millis(400))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ProviderError::Wait(_)), "{msg}");
    assert!(msg.contains("VirtualNetworks_CreateOrUpdate of") && msg.contains("provisioningState Updating"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_waits_until_the_resource_is_gone_and_gone_is_success() {
    let emu = start(Options { lro_delay: Duration::from_millis(300), ..Options::default() });
    let arm = client(&emu);
    group(&arm).await;
    let (id, body) = vnet("a");
    arm.put(&id, NET, &body, Cond::None, PUT, GET, &StatusSink::default(), Duration::from_secs(30)).await.unwrap();
    let del = Op { service: "Microsoft.Network", operation: "VirtualNetworks_Delete" };
    arm.delete(&id, NET, Cond::None, del, &StatusSink::default(), Duration::from_secs(30)).await.unwrap();
    assert!(emu.get(&id).is_none());
    arm.delete(&id, NET, Cond::None, del, &StatusSink::default(), Duration::from_secs(30)).await.unwrap();
    // A resource group's delete is polled through `Location`.
    let rg_del = Op { service: "Microsoft.Resources", operation: "ResourceGroups_Delete" };
    arm.delete(GROUP, "2024-03-01", Cond::None, rg_del, &StatusSink::default(), Duration::from_secs(30)).await.unwrap();
    assert!(emu.get(GROUP).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_follow_next_link_across_pages() {
    let emu = start(Options { page_size: 2, ..Options::default() });
    let arm = client(&emu);
    group(&arm).await;
    for n in ["a", "b", "c", "d", "e"] {
        let (id, body) = vnet(n);
        arm.put(&id, NET, &body, Cond::None, PUT, GET, &StatusSink::default(), Duration::from_secs(30)).await.unwrap();
    }
    let list = Op { service: "Microsoft.Network", operation: "VirtualNetworks_List" };
    let all = arm.list(&format!("{GROUP}/providers/Microsoft.Network/virtualNetworks"), NET, "", list).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(arm.recorder.snapshot().calls["Microsoft.Network:VirtualNetworks_List"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_carry_the_arm_code_message_and_request_id_and_conditions_are_kept() {
    let emu = start(Options::default());
    let arm = client(&emu);
    group(&arm).await;
    let (id, body) = vnet("a");
    emu.fail_next("PUT", "Microsoft.Network/virtualNetworks", 400, "InvalidAddressPrefix", "the prefix is reserved");
    let e = arm
        .put(&id, NET, &body, Cond::None, PUT, GET, &StatusSink::default(), Duration::from_secs(30))
        .await
        .unwrap_err();
    let api = e.api().expect("an API error");
    assert_eq!((api.kind, api.code.as_str(), api.status), (ErrorKind::Invalid, "InvalidAddressPrefix", Some(400)));
    assert!(api.message.contains("the prefix is reserved"));
    assert!(api.request_id.as_deref().is_some_and(|r| r.len() >= 32), "{api:?}");

    // If-Match with a stale etag: 412, nothing changed.
    arm.put(&id, NET, &body, Cond::None, PUT, GET, &StatusSink::default(), Duration::from_secs(30)).await.unwrap();
    let e = arm
        .put(&id, NET, &body, Cond::IfMatch("W/\"stale\""), PUT, GET, &StatusSink::default(), Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(e.api().unwrap().status, Some(412));
    assert_eq!(e.kind(), ErrorKind::Conflict);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_requests_are_sent_again_after_retry_after() {
    let emu = start(Options::default());
    let arm = client(&emu);
    group(&arm).await;
    emu.throttle_next(2, 1);
    let (id, _) = vnet("missing");
    assert!(arm.get(&id, NET, GET).await.unwrap().is_none());
    assert_eq!(arm.recorder.snapshot().retries["Microsoft.Network:VirtualNetworks_Get"], 2);
}
