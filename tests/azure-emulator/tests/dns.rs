//! DNS zones and record sets: name servers, apex records, etag preconditions, `$top` paging, and
//! zone deletes.

mod common;

use std::time::Duration;

use common::*;
use matih_azure_emulator::{AzureEmulator, Options};
use serde_json::json;

fn zone() -> String {
    res("rg1", "Microsoft.Network/dnsZones/matih.ai")
}

fn setup(em: &AzureEmulator) -> Arm {
    let arm = Arm::new(em);
    arm.group("rg1");
    arm.put(&zone(), DNS, json!({"location": "global", "properties": {"zoneType": "Public"}})).expect(201);
    arm
}

#[test]
fn a_zone_gets_name_servers_and_its_apex_records() {
    let em = AzureEmulator::start(Options::default());
    let arm = setup(&em);
    let z = arm.get(&zone(), DNS).expect(200).body;
    assert_eq!(z["type"], "Microsoft.Network/dnszones");
    let ns: Vec<&str> =
        z["properties"]["nameServers"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(ns.len(), 4);
    assert!(ns.iter().all(|n| n.ends_with('.') && n.contains(".azure-dns.")), "{ns:?}");
    assert_eq!(z["properties"]["numberOfRecordSets"], 2);
    let (sets, _) = arm.list_all(&format!("{}/recordsets", zone()), DNS);
    let kinds: Vec<(&str, &str)> =
        sets.iter().map(|s| (s["type"].as_str().unwrap(), s["name"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("Microsoft.Network/dnszones/NS", "@"), ("Microsoft.Network/dnszones/SOA", "@")]);
    assert_eq!(sets[0]["properties"]["NSRecords"].as_array().unwrap().len(), 4);
    assert_eq!(sets[0]["properties"]["fqdn"], "matih.ai.");

    let again = arm.put(&zone(), DNS, json!({"location": "global", "tags": {"t": "1"}})).expect(200);
    assert_eq!(again.body["properties"]["nameServers"], z["properties"]["nameServers"], "name servers are kept");
}

#[test]
fn record_set_writes_honour_if_match_and_if_none_match() {
    let em = AzureEmulator::start(Options::default());
    let arm = setup(&em);
    let api = format!("{}/A/api", zone());
    let body =
        json!({"properties": {"TTL": 300, "ARecords": [{"ipv4Address": "20.0.0.7"}], "metadata": {"owner": "matih"}}});
    let create = |h: &[(&str, &str)]| arm.call("PUT", &api, DNS, Some(&body), h);
    let r = create(&[("If-None-Match", "*")]).expect(201);
    assert_eq!(r.body["type"], "Microsoft.Network/dnszones/A");
    assert_eq!(r.body["properties"]["fqdn"], "api.matih.ai.");
    assert_eq!(r.body["properties"]["metadata"], json!({"owner": "matih"}));
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    let etag = r.body["etag"].as_str().unwrap().to_string();
    assert_eq!(create(&[("If-None-Match", "*")]).expect(412).code(), "PreconditionFailed");
    assert_eq!(create(&[("If-Match", "stale")]).expect(412).code(), "PreconditionFailed");
    let updated = create(&[("If-Match", &etag)]).expect(200);
    let etag2 = updated.body["etag"].as_str().unwrap().to_string();
    assert_ne!(etag2, etag, "a write makes a new etag");
    let absent = format!("{}/A/www", zone());
    assert_eq!(
        arm.call("PUT", &absent, DNS, Some(&body), &[("If-Match", "*")]).expect(412).code(),
        "PreconditionFailed"
    );

    assert_eq!(arm.call("DELETE", &api, DNS, None, &[("If-Match", &etag)]).expect(412).code(), "PreconditionFailed");
    arm.call("DELETE", &api, DNS, None, &[("If-Match", &etag2)]).expect(200);
    assert_eq!(arm.delete(&api, DNS).status, 204);
    assert_eq!(arm.get(&api, DNS).expect(404).code(), "NotFound");
    let orphan = res("rg1", "Microsoft.Network/dnsZones/nope.ai/A/api");
    assert_eq!(arm.put(&orphan, DNS, body).expect(404).code(), "ResourceNotFound");
}

#[test]
fn a_cname_holds_one_name_and_shares_it_with_no_other_record_set() {
    let em = AzureEmulator::start(Options::default());
    let arm = setup(&em);
    let cname = |target: &str| json!({"properties": {"TTL": 300, "CNAMERecord": {"cname": target}}});
    let a = json!({"properties": {"TTL": 300, "ARecords": [{"ipv4Address": "20.0.0.7"}]}});
    let r = arm.put(&format!("{}/CNAME/acme", zone()), DNS, cname("ingress.matih.ai")).expect(201);
    assert_eq!(r.body["type"], "Microsoft.Network/dnszones/CNAME");
    assert_eq!(r.body["properties"]["CNAMERecord"]["cname"], "ingress.matih.ai");
    // A second type under the CNAME's name, in any case, is refused; so is a CNAME beside an A.
    let e = arm.put(&format!("{}/A/ACME", zone()), DNS, a.clone()).expect(409);
    assert_eq!(e.code(), "CannotCreateRecordDueToCNameNamingRestriction");
    arm.put(&format!("{}/A/api", zone()), DNS, a.clone()).expect(201);
    assert_eq!(arm.put(&format!("{}/CNAME/api", zone()), DNS, cname("x.matih.ai")).expect(409).code(), "Conflict");
    // Rewriting the CNAME itself is fine; an empty one, or one at the apex, is not.
    arm.put(&format!("{}/CNAME/acme", zone()), DNS, cname("other.matih.ai")).expect(200);
    arm.put(&format!("{}/CNAME/empty", zone()), DNS, json!({"properties": {"TTL": 300}})).expect(400);
    arm.put(&format!("{}/CNAME/@", zone()), DNS, cname("x.matih.ai")).expect(400);
    // Once the CNAME is gone, the name takes an A record.
    arm.delete(&format!("{}/CNAME/acme", zone()), DNS).expect(200);
    arm.put(&format!("{}/A/acme", zone()), DNS, a).expect(201);
}

#[test]
fn record_set_lists_page_by_top() {
    let em = AzureEmulator::start(Options::default());
    let arm = setup(&em);
    for i in 0..5 {
        let body = json!({"properties": {"TTL": 60, "ARecords": [{"ipv4Address": format!("20.0.0.{i}")}]}});
        arm.put(&format!("{}/A/h{i}", zone()), DNS, body).expect(201);
    }
    let first = arm.get(&format!("{}/A?$top=2", zone()), DNS).expect(200);
    assert_eq!(first.body["value"].as_array().unwrap().len(), 2);
    assert!(first.body["nextLink"].as_str().unwrap().contains("$top=2&"), "{first:?}");
    let (a, pages) = arm.list_all(&format!("{}/A?$top=2", zone()), DNS);
    assert_eq!((a.len(), pages), (5, 3));
    let (all, _) = arm.list_all(&format!("{}/recordsets", zone()), DNS);
    assert_eq!(all.len(), 7, "five A record sets and the apex NS and SOA");
    assert_eq!(arm.get(&zone(), DNS).expect(200).body["properties"]["numberOfRecordSets"], 7);
}

#[test]
fn deleting_a_zone_takes_its_record_sets() {
    let em = AzureEmulator::start(Options::default());
    let arm = setup(&em);
    arm.put(
        &format!("{}/CNAME/www", zone()),
        DNS,
        json!({"properties": {"TTL": 60, "CNAMERecord": {"cname": "matih.ai"}}}),
    )
    .expect(201);
    arm.delete(&zone(), DNS).expect(200);
    assert!(em.resources("Microsoft.Network/dnsZones/CNAME").is_empty());
    assert_eq!(arm.get(&format!("{}/recordsets", zone()), DNS).expect(404).code(), "ResourceNotFound");

    let slow = AzureEmulator::start(Options { lro_delay: Duration::from_secs(3600), ..Options::default() });
    let arm = setup(&slow);
    let r = arm.delete(&zone(), DNS).expect(202);
    let location = r.header("Location").expect("a Location").to_string();
    assert!(r.header("Azure-AsyncOperation").is_none());
    assert_eq!(arm.get(&location, "").status, 202);
    slow.complete_operations();
    assert_eq!(arm.get(&location, "").status, 200);
    assert_eq!(arm.get(&zone(), DNS).expect(404).code(), "ResourceNotFound");
}

#[test]
fn zones_are_listed_across_the_subscription() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    for rg in ["rg-a", "rg-b"] {
        arm.group(rg);
        arm.put(&res(rg, &format!("Microsoft.Network/dnsZones/{rg}.example")), DNS, json!({"location": "global"}))
            .expect(201);
    }
    let (zones, _) = arm.list_all(&format!("/subscriptions/{SUB}/providers/Microsoft.Network/dnszones"), DNS);
    let mut names: Vec<&str> = zones.iter().map(|z| z["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["rg-a.example", "rg-b.example"]);
}
