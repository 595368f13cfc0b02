//! Resource groups and what every resource shares: ARM errors, 404 kinds, API versions, paging,
//! and a group's delete taking its contents with it.

mod common;

use std::time::Duration;

use common::*;
use matih_azure_emulator::{AzureEmulator, Options};
use serde_json::json;

#[test]
fn a_group_is_created_then_replaced_with_its_tags() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    let r = arm.put(&group("rg1"), RG_API, json!({"location": "westeurope", "tags": {"a": "1", "b": "2"}})).expect(201);
    assert_eq!(r.body["id"], group("rg1"));
    assert_eq!(r.body["type"], "Microsoft.Resources/resourceGroups");
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    assert!(r.header("x-ms-request-id").is_some() && r.header("x-ms-correlation-request-id").is_some());
    let r = arm.put(&group("RG1"), RG_API, json!({"location": "West Europe", "tags": {"b": "3"}})).expect(200);
    assert_eq!(r.body["tags"], json!({"b": "3"}), "a PUT replaces the tags");
    assert_eq!(r.body["id"], group("rg1"), "the id keeps the casing of the first PUT");
    assert_eq!(arm.get(&group("Rg1"), RG_API).expect(200).body["tags"], json!({"b": "3"}));
    assert_eq!(arm.call("HEAD", &group("rg1"), RG_API, None, &[]).status, 204);
    assert_eq!(arm.call("HEAD", &group("nope"), RG_API, None, &[]).status, 404);
}

#[test]
fn a_missing_group_and_a_missing_resource_are_told_apart() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    let vnet = "Microsoft.Network/virtualNetworks/v1";
    let r = arm.get(&res("nope", vnet), NET).expect(404);
    assert_eq!(r.code(), "ResourceGroupNotFound");
    assert!(r.header("x-ms-request-id").is_some(), "errors carry a request id too");
    assert_eq!(arm.vnet("nope", "v1", "10.0.0.0/16", &[]).expect(404).code(), "ResourceGroupNotFound");
    arm.group("rg1");
    assert_eq!(arm.get(&res("rg1", vnet), NET).expect(404).code(), "ResourceNotFound");
    let r = arm.put(
        &res("rg1", &format!("{vnet}/subnets/a")),
        NET,
        json!({"properties": {"addressPrefix": "10.0.0.0/24"}}),
    );
    let r = r.expect(404);
    assert_eq!(r.code(), "ResourceNotFound");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("Microsoft.Network/virtualNetworks/v1"), "{r:?}");
    arm.vnet("rg1", "v1", "10.0.0.0/16", &[]).expect(201);
    assert_eq!(arm.get(&res("rg1", &format!("{vnet}/subnets/a")), NET).expect(404).code(), "NotFound");
    assert_eq!(arm.delete(&group("nope"), RG_API).expect(404).code(), "ResourceGroupNotFound");
}

#[test]
fn invalid_requests_are_refused_with_arm_errors() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    assert_eq!(arm.put(&group("rg1"), RG_API, json!({"tags": {}})).expect(400).code(), "LocationRequired");
    arm.group("rg1");
    let vnet = res("rg1", "Microsoft.Network/virtualNetworks/v1");
    let no_location = json!({"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
    assert_eq!(arm.put(&vnet, NET, no_location).expect(400).code(), "LocationRequired");
    let r = arm.call("PUT", &vnet, NET, None, &[]).expect(400);
    assert_eq!(r.code(), "InvalidRequestContent");
    let r = arm.put(&vnet, "2023-09-01", json!({"location": "westeurope"})).expect(400);
    assert_eq!(r.code(), "InvalidApiVersionParameter");
    assert_eq!(arm.get(&vnet, "").expect(400).code(), "MissingApiVersionParameter");
    let r = arm.get(&res("rg1", "Microsoft.Compute/virtualMachines/vm"), "2024-07-01").expect(400);
    assert_eq!(r.code(), "InvalidResourceType");
}

#[test]
fn lists_are_paged_with_absolute_next_links() {
    let em = AzureEmulator::start(Options { page_size: 2, ..Options::default() });
    let arm = Arm::new(&em);
    for i in 0..5 {
        arm.group(&format!("rg{i}"));
    }
    let list = format!("/subscriptions/{SUB}/resourcegroups");
    let first = arm.get(&list, RG_API).expect(200);
    assert_eq!(first.body["value"].as_array().unwrap().len(), 2);
    let next = first.body["nextLink"].as_str().unwrap();
    assert!(next.starts_with(&em.url()) && next.contains("$skipToken=2") && next.contains("api-version=2024-03-01"));
    let (items, pages) = arm.list_all(&list, RG_API);
    let names: Vec<&str> = items.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["rg0", "rg1", "rg2", "rg3", "rg4"]);
    assert_eq!(pages, 3);
}

#[test]
fn deleting_a_group_deletes_what_is_in_it() {
    let em = AzureEmulator::start(Options {
        lro_delay: Duration::from_secs(3600),
        retry_after_secs: 7,
        ..Options::default()
    });
    let arm = Arm::new(&em);
    arm.group("rg1");
    arm.group("other");
    arm.vnet("rg1", "v1", "10.0.0.0/16", &[("a", "10.0.0.0/24")]).expect(201);
    let identity = res("rg1", "Microsoft.ManagedIdentity/userAssignedIdentities/id1");
    arm.put(&identity, MSI, json!({"location": "westeurope"})).expect(201);
    arm.put(
        &res("other", "Microsoft.ManagedIdentity/userAssignedIdentities/id2"),
        MSI,
        json!({"location": "westeurope"}),
    )
    .expect(201);

    let r = arm.delete(&group("rg1"), RG_API).expect(202);
    assert_eq!(r.header("Retry-After"), Some("7"));
    let location = r.header("Location").expect("a Location to poll").to_string();
    assert!(location.starts_with(&format!("{}/subscriptions/{SUB}/operationresults/", em.url())), "{location}");
    assert_eq!(arm.get(&location, "").status, 202, "still deleting");
    assert_eq!(arm.get(&group("rg1"), RG_API).expect(200).body["properties"]["provisioningState"], "Deleting");
    assert_eq!(arm.vnet("rg1", "v2", "10.1.0.0/16", &[]).expect(409).code(), "ResourceGroupBeingDeleted");
    let recreate = arm.put(&group("rg1"), RG_API, json!({"location": "westeurope"})).expect(409);
    assert_eq!(recreate.code(), "ResourceGroupBeingDeleted");
    assert_eq!(arm.delete(&group("rg1"), RG_API).expect(202).header("Location"), Some(location.as_str()));

    em.complete_operations();
    assert_eq!(arm.get(&location, "").status, 200);
    assert_eq!(arm.get(&group("rg1"), RG_API).expect(404).code(), "ResourceGroupNotFound");
    assert!(em.resources("Microsoft.Network/virtualNetworks").is_empty());
    assert!(em.resources("microsoft.network/virtualnetworks/subnets").is_empty());
    let left = em.resources("Microsoft.ManagedIdentity/userAssignedIdentities");
    assert_eq!(left.len(), 1, "the other group's identity stays");
    assert_eq!(left[0]["name"], "id2");
}
