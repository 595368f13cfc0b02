//! VNets, subnets, NSGs and public IPs: address checks, in-use deletes, etags, operations.

mod common;

use std::time::Duration;

use common::*;
use matih_azure_emulator::{AzureEmulator, Options};
use serde_json::{Value, json};

fn subnet_path(rg: &str, vnet: &str, name: &str) -> String {
    res(rg, &format!("Microsoft.Network/virtualNetworks/{vnet}/subnets/{name}"))
}

#[test]
fn a_vnet_put_is_an_operation_that_succeeds_at_the_first_poll_without_delay() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    arm.group("rg1");
    let r = arm.vnet("rg1", "v1", "10.0.0.0/16", &[("nodes", "10.0.0.0/22"), ("pods", "10.0.64.0/18")]).expect(201);
    assert_eq!(r.body["properties"]["provisioningState"], "Updating");
    assert!(r.body["etag"].as_str().unwrap().starts_with("W/\""), "{r:?}");
    let subnets = r.body["properties"]["subnets"].as_array().unwrap();
    assert_eq!(subnets.len(), 2);
    assert_eq!(subnets[0]["id"], subnet_path("rg1", "v1", "nodes"));
    let op = r.header("Azure-AsyncOperation").expect("an operation to poll").to_string();
    assert!(
        op.contains("/providers/Microsoft.Network/locations/westeurope/operations/")
            && op.contains("api-version=2024-05-01")
    );
    assert!(r.header("Location").is_none());
    assert_eq!(arm.wait_async(&op, Duration::from_secs(5)), ["Succeeded"]);
    let v = arm.get(&res("rg1", "Microsoft.Network/virtualNetworks/v1"), NET).expect(200);
    assert_eq!(v.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(v.body["properties"]["subnets"][1]["properties"]["provisioningState"], "Succeeded");
    let (listed, _) = arm.list_all(&res("rg1", "Microsoft.Network/virtualNetworks/v1/subnets"), NET);
    assert_eq!(listed.len(), 2);
    // Updating again: 200, a new etag.
    let again = arm.vnet("rg1", "v1", "10.0.0.0/16", &[("nodes", "10.0.0.0/22"), ("pods", "10.0.64.0/18")]).expect(200);
    assert_ne!(again.body["etag"], r.body["etag"]);
}

#[test]
fn subnet_ranges_must_fit_the_vnet_and_not_overlap() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    arm.group("rg1");
    let r = arm.vnet("rg1", "v1", "10.0.0.0/16", &[("a", "10.0.0.0/22"), ("b", "10.0.2.0/24")]).expect(400);
    assert_eq!(r.code(), "NetcfgSubnetRangesOverlap");
    let r = arm.vnet("rg1", "v1", "10.0.0.0/16", &[("a", "10.1.0.0/24")]).expect(400);
    assert_eq!(r.code(), "NetcfgSubnetRangeOutsideVnet");
    assert_eq!(arm.vnet("rg1", "v1", "10.0.0.1/16", &[]).expect(400).code(), "InvalidCIDRNotation");
    assert!(em.resources("Microsoft.Network/virtualNetworks").is_empty(), "refused PUTs store nothing");

    arm.vnet("rg1", "v1", "10.0.0.0/16", &[("a", "10.0.0.0/24")]).expect(201);
    let put = |name: &str, prefix: &str| {
        arm.put(&subnet_path("rg1", "v1", name), NET, json!({"properties": {"addressPrefix": prefix}}))
    };
    assert_eq!(put("b", "10.0.0.128/25").expect(400).code(), "NetcfgSubnetRangesOverlap");
    assert_eq!(put("b", "192.168.0.0/24").expect(400).code(), "NetcfgSubnetRangeOutsideVnet");
    let b = put("b", "10.0.1.0/24").expect(201);
    assert!(b.header("Azure-AsyncOperation").is_some());
    assert!(b.body.get("location").is_none() && b.body.get("tags").is_none(), "subnets are not tracked: {b:?}");
    let v = arm.get(&res("rg1", "Microsoft.Network/virtualNetworks/v1"), NET).expect(200);
    let names: Vec<&str> =
        v.body["properties"]["subnets"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b"], "a subnet PUT on its own shows in the VNet");

    // A VNet PUT states its subnets: one left out is deleted.
    arm.vnet("rg1", "v1", "10.0.0.0/16", &[("a", "10.0.0.0/24")]).expect(200);
    assert_eq!(arm.get(&subnet_path("rg1", "v1", "b"), NET).expect(404).code(), "NotFound");
}

#[test]
fn an_nsg_associated_with_a_subnet_cannot_be_deleted() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    arm.group("rg1");
    let nsg = res("rg1", "Microsoft.Network/networkSecurityGroups/n1");
    let rule = json!({"name": "https", "properties": {
        "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": "*",
        "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "443"}});
    let r = arm.put(&nsg, NET, json!({"location": "westeurope", "properties": {"securityRules": [rule]}})).expect(201);
    let nsg_id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["properties"]["securityRules"][0]["id"], format!("{nsg}/securityRules/https"));
    arm.vnet("rg1", "v1", "10.0.0.0/16", &[]).expect(201);
    let subnet = subnet_path("rg1", "v1", "a");
    let missing_nsg =
        json!({"properties": {"addressPrefix": "10.0.0.0/24", "networkSecurityGroup": {"id": format!("{nsg}x")}}});
    assert_eq!(arm.put(&subnet, NET, missing_nsg).expect(400).code(), "InvalidResourceReference");
    let with_nsg = json!({"properties": {"addressPrefix": "10.0.0.0/24", "networkSecurityGroup": {"id": nsg_id}}});
    arm.put(&subnet, NET, with_nsg).expect(201);
    assert_eq!(arm.get(&nsg, NET).expect(200).body["properties"]["subnets"], json!([{"id": subnet}]));

    let r = arm.delete(&nsg, NET).expect(400);
    assert_eq!(r.code(), "InUseNetworkSecurityGroupCannotBeDeleted");
    assert!(r.body["error"]["message"].as_str().unwrap().contains(&subnet));

    arm.put(&subnet, NET, json!({"properties": {"addressPrefix": "10.0.0.0/24"}})).expect(200);
    let r = arm.delete(&nsg, NET).expect(202);
    assert!(r.header("Azure-AsyncOperation").is_some());
    let location = r.header("Location").expect("a Location").to_string();
    assert!(location.contains("/providers/Microsoft.Network/locations/westeurope/operationresults/"), "{location}");
    assert_eq!(arm.get(&location, "").status, 200);
    assert_eq!(arm.get(&nsg, NET).expect(404).code(), "ResourceNotFound");
    assert_eq!(arm.delete(&nsg, NET).status, 204, "deleting what is gone");
}

#[test]
fn public_ips_get_a_unique_address_when_created_and_keep_it() {
    let em = AzureEmulator::start(Options { lro_delay: Duration::from_secs(3600), ..Options::default() });
    let arm = Arm::new(&em);
    arm.group("rg1");
    let body = |tags: Value| {
        json!({"location": "westeurope", "tags": tags, "sku": {"name": "Standard", "tier": "Regional"},
               "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}})
    };
    let pip = |n: &str| res("rg1", &format!("Microsoft.Network/publicIPAddresses/{n}"));
    let r = arm.put(&pip("ingress"), NET, body(json!({}))).expect(201);
    assert!(r.body["properties"]["ipAddress"].is_null(), "no address before the create completes");
    assert_eq!(arm.get(&pip("ingress"), NET).expect(200).body["properties"]["provisioningState"], "Updating");
    em.complete_operations();
    let first = arm.get(&pip("ingress"), NET).expect(200).body["properties"]["ipAddress"].as_str().unwrap().to_string();
    assert!(first.starts_with("20."), "{first}");

    arm.put(&pip("egress"), NET, body(json!({}))).expect(201);
    em.complete_operations();
    let second = em.get(&pip("egress")).unwrap()["properties"]["ipAddress"].clone();
    assert_ne!(second, json!(first));

    let r = arm.put(&pip("ingress"), NET, body(json!({"x": "y"}))).expect(200);
    assert_eq!(r.body["properties"]["ipAddress"], json!(first), "an update keeps the address");
    em.complete_operations();
    arm.delete(&pip("ingress"), NET).expect(202);
    em.complete_operations();
    arm.put(&pip("ingress"), NET, body(json!({}))).expect(201);
    em.complete_operations();
    let third = em.get(&pip("ingress")).unwrap()["properties"]["ipAddress"].clone();
    assert!(third != json!(first) && third != second, "addresses are never handed out twice");
}

#[test]
fn etags_guard_puts_and_deletes() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    arm.group("rg1");
    let vnet = res("rg1", "Microsoft.Network/virtualNetworks/v1");
    let body = json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
    let etag = arm.call("PUT", &vnet, NET, Some(&body), &[("If-None-Match", "*")]).expect(201).body["etag"].clone();
    let etag = etag.as_str().unwrap();
    assert_eq!(
        arm.call("PUT", &vnet, NET, Some(&body), &[("If-None-Match", "*")]).expect(412).code(),
        "PreconditionFailed"
    );
    let stale = "W/\"00000000-0000-0000-0000-000000000000\"";
    assert_eq!(
        arm.call("PUT", &vnet, NET, Some(&body), &[("If-Match", stale)]).expect(412).code(),
        "PreconditionFailed"
    );
    let r = arm.call("PUT", &vnet, NET, Some(&body), &[("If-Match", etag)]).expect(200);
    assert_ne!(r.body["etag"], etag);
    assert_eq!(arm.call("DELETE", &vnet, NET, None, &[("If-Match", etag)]).expect(412).code(), "PreconditionFailed");
    let current = r.body["etag"].as_str().unwrap();
    arm.call("DELETE", &vnet, NET, None, &[("If-Match", current)]).expect(202);
}
