//! Cloud DNS through the official `google-cloud-dns-v1` client: zones, record sets, atomic
//! changes over time, and the zone's IAM policy.

mod common;

use std::time::{Duration, Instant};

use common::*;
use google_cloud_dns_v1::model::{
    Change, GoogleIamV1GetIamPolicyRequest, GoogleIamV1SetIamPolicyRequest, ManagedZone, ResourceRecordSet,
};
use google_cloud_gax::error::rpc::Code;
use google_cloud_lro::Poller;
use matih_gcp_emulator::{GcpEmulator, Options};
use serde_json::{Value, json};

const APEX: &str = "matih.example.com.";

async fn zone(gcp: &Gcp, name: &str, dns: &str) -> ManagedZone {
    gcp.zones
        .create()
        .set_project(P)
        .set_body(model::<ManagedZone>(
            json!({"name": name, "dnsName": dns, "description": "d", "labels": {"matih-owner": "dev"}}),
        ))
        .send()
        .await
        .unwrap()
}

fn rrset(name: &str, ty: &str, ttl: i64, data: &[&str]) -> Value {
    json!({"name": name, "type": ty, "ttl": ttl, "rrdatas": data})
}

async fn change(
    gcp: &Gcp,
    additions: Vec<Value>,
    deletions: Vec<Value>,
) -> Result<Change, google_cloud_gax::error::Error> {
    gcp.changes
        .create()
        .set_project(P)
        .set_managed_zone("z")
        .set_body(model::<Change>(json!({"additions": additions, "deletions": deletions})))
        .send()
        .await
}

async fn records(gcp: &Gcp) -> Vec<(String, String)> {
    let list = gcp.rrsets.list().set_project(P).set_managed_zone("z").send().await.unwrap();
    list.rrsets.iter().map(|r| (r.name.clone().unwrap(), r.r#type.clone().unwrap())).collect()
}

#[test]
fn zones_are_created_with_soa_and_ns_and_deleted_when_empty() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        let z = zone(&gcp, "z", APEX).await;
        assert_eq!(z.name.as_deref(), Some("z"));
        let ns = &z.name_servers;
        assert_eq!(ns.len(), 4);
        assert!(ns.iter().all(|n| n.starts_with("ns-cloud-") && n.ends_with(".googledomains.com.")), "{ns:?}");
        let id = z.id.expect("a numeric id");
        assert_eq!(z.visibility.as_ref().map(json_of), Some(json!("public")));
        // By name or by id.
        let by_id = gcp.zones.get().set_project(P).set_managed_zone(id.to_string()).send().await.unwrap();
        assert_eq!(by_id.name.as_deref(), Some("z"));
        assert_eq!(records(&gcp).await, [(APEX.to_string(), "NS".to_string()), (APEX.to_string(), "SOA".to_string())]);
        let e = gcp
            .zones
            .create()
            .set_project(P)
            .set_body(model::<ManagedZone>(json!({"name": "z", "dnsName": APEX})))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            (e.http_status_code(), code(&e), reason(&e).as_str()),
            (Some(409), Code::AlreadyExists, "alreadyExists")
        );
        let e = gcp
            .zones
            .create()
            .set_project(P)
            .set_body(model::<ManagedZone>(json!({"name": "y", "dnsName": "no-dot.example.com"})))
            .send()
            .await
            .unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(400), "invalid"));

        change(&gcp, vec![rrset(&format!("www.{APEX}"), "A", 300, &["34.0.0.9"])], vec![]).await.unwrap();
        let e = gcp.zones.delete().set_project(P).set_managed_zone("z").send().await.unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(400), "containerNotEmpty"));
        gcp.rrsets
            .delete()
            .set_project(P)
            .set_managed_zone("z")
            .set_name(format!("www.{APEX}"))
            .set_type("A")
            .send()
            .await
            .unwrap();
        gcp.zones.delete().set_project(P).set_managed_zone("z").send().await.unwrap();
        let e = gcp.zones.get().set_project(P).set_managed_zone("z").send().await.unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(404), "notFound"));
        assert!(em.resources("dns.rrsets").is_empty() && em.resources("dns.changes").is_empty());
    })
}

#[test]
fn zones_list_by_dns_name_and_page() {
    run(|| async {
        let em = GcpEmulator::start(Options { page_size: 2, ..Options::default() });
        let gcp = Gcp::new(&em).await;
        for (n, d) in [("a", "a.example.com."), ("b", "b.example.com."), ("c", "c.example.com.")] {
            zone(&gcp, n, d).await;
        }
        let found = gcp.zones.list().set_project(P).set_dns_name("b.example.com.").send().await.unwrap();
        assert_eq!(found.managed_zones.iter().map(|z| z.name.clone().unwrap()).collect::<Vec<_>>(), ["b"]);
        let first = gcp.zones.list().set_project(P).send().await.unwrap();
        assert_eq!(first.managed_zones.len(), 2);
        let second =
            gcp.zones.list().set_project(P).set_page_token(first.next_page_token.unwrap()).send().await.unwrap();
        assert_eq!(second.managed_zones.len(), 1);
        assert!(second.next_page_token.is_none());
        // A patch answers a finished operation; the poller takes it as is.
        let z = gcp
            .zones
            .patch()
            .set_project(P)
            .set_managed_zone("a")
            .set_body(model::<ManagedZone>(json!({"description": "changed", "labels": {"k": "v"}})))
            .poller()
            .until_done()
            .await
            .unwrap();
        assert_eq!(json_of(&z)["zoneContext"]["newValue"]["description"], "changed");
        assert_eq!(
            gcp.zones
                .get()
                .set_project(P)
                .set_managed_zone("a")
                .send()
                .await
                .unwrap()
                .labels
                .get("k")
                .map(String::as_str),
            Some("v")
        );
    })
}

#[test]
fn changes_are_atomic() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        zone(&gcp, "z", APEX).await;
        let www = rrset(&format!("www.{APEX}"), "A", 300, &["34.0.0.9", "34.0.0.10"]);
        let txt = rrset(&format!("_acme.{APEX}"), "TXT", 60, &["\"token\""]);
        let c = change(&gcp, vec![www.clone(), txt.clone()], vec![]).await.unwrap();
        assert_eq!(c.id.as_deref(), Some("1"));
        assert_eq!(json_of(&c)["status"], "pending");
        // Each change bumps the SOA serial and says so.
        assert!(c.additions.iter().any(|r| r.r#type.as_deref() == Some("SOA")), "{c:?}");

        // A deletion that does not match exactly fails the whole change; nothing moves.
        let stale = rrset(&format!("www.{APEX}"), "A", 300, &["34.0.0.9"]);
        let other = rrset(&format!("api.{APEX}"), "A", 300, &["34.0.0.11"]);
        let e = change(&gcp, vec![other.clone()], vec![stale]).await.unwrap_err();
        assert_eq!(
            (e.http_status_code(), code(&e), reason(&e).as_str()),
            (Some(412), Code::FailedPrecondition, "conditionNotMet")
        );
        let ttl = rrset(&format!("www.{APEX}"), "A", 60, &["34.0.0.9", "34.0.0.10"]);
        let e = change(&gcp, vec![other.clone()], vec![ttl]).await.unwrap_err();
        assert_eq!(reason(&e), "conditionNotMet", "the TTL must match too");
        let e = change(&gcp, vec![other.clone()], vec![rrset(&format!("gone.{APEX}"), "A", 300, &["1.1.1.1"])])
            .await
            .unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(404), "notFound"));
        // An addition that exists fails it too.
        let e = change(&gcp, vec![other.clone(), txt.clone()], vec![]).await.unwrap_err();
        assert_eq!(
            (e.http_status_code(), code(&e), reason(&e).as_str()),
            (Some(409), Code::AlreadyExists, "alreadyExists")
        );
        assert!(!records(&gcp).await.contains(&(format!("api.{APEX}"), "A".into())), "all or nothing");

        // Replace = delete the exact set (in any order) and add the new one, in one change.
        let www_reordered = rrset(&format!("www.{APEX}"), "A", 300, &["34.0.0.10", "34.0.0.9"]);
        let new = rrset(&format!("www.{APEX}"), "A", 300, &["34.0.0.12"]);
        change(&gcp, vec![new, other], vec![www_reordered]).await.unwrap();
        let got = gcp
            .rrsets
            .get()
            .set_project(P)
            .set_managed_zone("z")
            .set_name(format!("www.{APEX}"))
            .set_type("A")
            .send()
            .await
            .unwrap();
        assert_eq!(got.rrdatas, ["34.0.0.12"]);
        let soa =
            gcp.rrsets.get().set_project(P).set_managed_zone("z").set_name(APEX).set_type("SOA").send().await.unwrap();
        assert!(soa.rrdatas[0].contains(" 3 21600 "), "two changes after the zone's own: {:?}", soa.rrdatas);

        // Out-of-zone names, bad addresses and CNAME conflicts are refused.
        for bad in [
            rrset("www.other.com.", "A", 300, &["1.2.3.4"]),
            rrset(&format!("x.{APEX}"), "A", 300, &["1.2.3"]),
            rrset(&format!("x.{APEX}"), "CNAME", 300, &["a.example.net.", "b.example.net."]),
        ] {
            let e = change(&gcp, vec![bad.clone()], vec![]).await.unwrap_err();
            assert_eq!(e.http_status_code(), Some(400), "{bad}");
        }
        let e = change(&gcp, vec![rrset(&format!("www.{APEX}"), "CNAME", 300, &["lb.example.net."])], vec![])
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "cnameResourceRecordSetConflict");
    })
}

#[test]
fn changes_go_pending_then_done() {
    run(|| async {
        let em = GcpEmulator::start(Options { operation_delay: Duration::from_millis(200), ..Options::default() });
        let gcp = Gcp::new(&em).await;
        zone(&gcp, "z", APEX).await;
        let c = change(&gcp, vec![rrset(&format!("www.{APEX}"), "A", 300, &["34.0.0.9"])], vec![]).await.unwrap();
        let id = c.id.unwrap();
        // The records are there at once; the change is done once served.
        assert!(records(&gcp).await.contains(&(format!("www.{APEX}"), "A".into())));
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let c = gcp.changes.get().set_project(P).set_managed_zone("z").set_change_id(&id).send().await.unwrap();
            let s = json_of(&c)["status"].as_str().unwrap().to_string();
            if seen.last() != Some(&s) {
                seen.push(s.clone());
            }
            if s == "done" {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(20)).await; // a client's poll interval
        }
        assert_eq!(seen, ["pending", "done"]);
        assert!(start.elapsed() >= Duration::from_millis(150));
        let e = gcp.changes.get().set_project(P).set_managed_zone("z").set_change_id("99").send().await.unwrap_err();
        assert_eq!(reason(&e), "notFound");
        let list = gcp.changes.list().set_project(P).set_managed_zone("z").send().await.unwrap();
        assert_eq!(list.changes.iter().map(|c| c.id.clone().unwrap()).collect::<Vec<_>>(), ["0", "1"]);
    })
}

#[test]
fn record_sets_list_filter_page_and_edit() {
    run(|| async {
        let em = GcpEmulator::start(Options { page_size: 2, ..Options::default() });
        let gcp = Gcp::new(&em).await;
        zone(&gcp, "z", APEX).await;
        let create = |v: Value| {
            gcp.rrsets.create().set_project(P).set_managed_zone("z").set_body(model::<ResourceRecordSet>(v)).send()
        };
        create(rrset(&format!("www.{APEX}"), "A", 300, &["34.0.0.9"])).await.unwrap();
        create(rrset(&format!("www.{APEX}"), "AAAA", 300, &["2001:db8::1"])).await.unwrap();
        let e = create(rrset(&format!("www.{APEX}"), "A", 300, &["34.0.0.10"])).await.unwrap_err();
        assert_eq!(reason(&e), "alreadyExists");
        let by_name = gcp
            .rrsets
            .list()
            .set_project(P)
            .set_managed_zone("z")
            .set_name(format!("www.{APEX}"))
            .send()
            .await
            .unwrap();
        assert_eq!(by_name.rrsets.len(), 2);
        let typed = gcp
            .rrsets
            .list()
            .set_project(P)
            .set_managed_zone("z")
            .set_name(format!("www.{APEX}"))
            .set_type("AAAA")
            .send()
            .await
            .unwrap();
        assert_eq!(typed.rrsets.len(), 1);
        let e = gcp.rrsets.list().set_project(P).set_managed_zone("z").set_type("A").send().await.unwrap_err();
        assert_eq!(e.http_status_code(), Some(400), "a type filter needs a name");
        let page = gcp.rrsets.list().set_project(P).set_managed_zone("z").send().await.unwrap();
        assert_eq!(page.rrsets.len(), 2);
        let rest = gcp
            .rrsets
            .list()
            .set_project(P)
            .set_managed_zone("z")
            .set_page_token(page.next_page_token.unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(rest.rrsets.len(), 2, "4 record sets: SOA, NS, A, AAAA");

        let patched = gcp
            .rrsets
            .patch()
            .set_project(P)
            .set_managed_zone("z")
            .set_name(format!("www.{APEX}"))
            .set_type("A")
            .set_body(model::<ResourceRecordSet>(json!({"ttl": 60, "rrdatas": ["34.0.0.20"]})))
            .send()
            .await
            .unwrap();
        assert_eq!((patched.ttl, patched.rrdatas.clone()), (Some(60), vec!["34.0.0.20".to_string()]));
        let e = gcp
            .rrsets
            .get()
            .set_project(P)
            .set_managed_zone("z")
            .set_name(format!("nope.{APEX}"))
            .set_type("A")
            .send()
            .await
            .unwrap_err();
        assert_eq!((e.http_status_code(), reason(&e).as_str()), (Some(404), "notFound"));
    })
}

#[test]
fn the_zone_iam_policy_checks_etags_and_members() {
    run(|| async {
        let em = GcpEmulator::start(Options::default());
        let gcp = Gcp::new(&em).await;
        zone(&gcp, "z", APEX).await;
        let resource = format!("projects/{P}/managedZones/z");
        let get = || {
            gcp.zones
                .get_iam_policy()
                .set_resource(&resource)
                .set_body(model::<GoogleIamV1GetIamPolicyRequest>(json!({"options": {"requestedPolicyVersion": 3}})))
                .send()
        };
        let empty = json_of(&get().await.unwrap());
        assert_eq!(empty["etag"], "ACAB");
        assert!(empty.get("bindings").is_none_or(|b| b.as_array().unwrap().is_empty()));
        let set = |bindings: Value, etag: &Value| {
            gcp.zones
                .set_iam_policy()
                .set_resource(&resource)
                .set_body(model::<GoogleIamV1SetIamPolicyRequest>(
                    json!({"policy": {"bindings": bindings, "etag": etag, "version": 1}}),
                ))
                .send()
        };
        let e = set(json!([{"role": "roles/dns.admin", "members": [format!("serviceAccount:dns01@{P}.iam.gserviceaccount.com")]}]), &empty["etag"])
            .await
            .unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(400), Code::InvalidArgument));
        assert!(message(&e).contains("does not exist"), "{e:?}");
        gcp.iam
            .create_service_account()
            .set_name(format!("projects/{P}"))
            .set_account_id("dns01-solver")
            .send()
            .await
            .unwrap();
        let member = format!("serviceAccount:dns01-solver@{P}.iam.gserviceaccount.com");
        let bindings = json!([{"role": "roles/dns.admin", "members": [member]}]);
        let p = json_of(&set(bindings.clone(), &empty["etag"]).await.unwrap());
        assert_ne!(p["etag"], "ACAB");
        let e = set(bindings.clone(), &empty["etag"]).await.unwrap_err();
        assert_eq!((e.http_status_code(), code(&e)), (Some(409), Code::Aborted), "a stale etag");
        let now = json_of(&get().await.unwrap());
        assert_eq!(now["bindings"], json!([{"role": "roles/dns.admin", "members": [member]}]));
        assert_eq!(em.iam_policy(&resource).unwrap()["etag"], now["etag"]);
    })
}
