//! Managed identities, federated credentials, and role assignments with ARM's rules.

mod common;

use std::time::{Duration, Instant};

use common::*;
use matih_azure_emulator::{AzureEmulator, Options};
use serde_json::{Value, json};

const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const DNS_CONTRIBUTOR: &str = "befefa01-2a29-4197-83a8-272ff33ce314";

fn identity(name: &str) -> String {
    res("rg1", &format!("Microsoft.ManagedIdentity/userAssignedIdentities/{name}"))
}

fn role(guid: &str) -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

fn assignment(scope: &str, name: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}")
}

fn grant(role_guid: &str, principal: &Value) -> Value {
    json!({"properties": {"roleDefinitionId": role(role_guid), "principalId": principal, "principalType": "ServicePrincipal"}})
}

/// A group `rg1` and an identity `dns01`; returns the identity's principal id.
fn setup(arm: &Arm) -> Value {
    arm.group("rg1");
    arm.put(&identity("dns01"), MSI, json!({"location": "westeurope"})).expect(201).body["properties"]["principalId"]
        .clone()
}

#[test]
fn identities_get_guids_that_updates_keep() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    arm.group("rg1");
    let r = arm.put(&identity("dns01"), MSI, json!({"location": "westeurope", "tags": {"a": "1"}})).expect(201);
    let p = r.body["properties"].clone();
    for f in ["principalId", "clientId"] {
        assert!(uuid::Uuid::parse_str(p[f].as_str().unwrap()).is_ok(), "{f}: {p}");
    }
    assert_ne!(p["principalId"], p["clientId"]);
    assert_eq!(p["tenantId"], em.tenant_id());
    let r = arm.put(&identity("dns01"), MSI, json!({"location": "westeurope", "tags": {"b": "2"}})).expect(200);
    assert_eq!(r.body["properties"], p, "an update keeps the identity's ids");
    assert_eq!(r.body["tags"], json!({"b": "2"}));

    let fic = format!("{}/federatedIdentityCredentials/cert-manager", identity("dns01"));
    let body = |issuer: &str| {
        json!({"properties": {"issuer": issuer, "subject": "system:serviceaccount:cert-manager:cert-manager",
            "audiences": ["api://AzureADTokenExchange"]}})
    };
    assert_eq!(arm.put(&fic, MSI, body("http://insecure")).expect(400).code(), "InvalidRequestContent");
    let r = arm.put(&fic, MSI, body("https://westeurope.oic.prod-aks.azure.com/t/i/")).expect(201);
    assert_eq!(r.body["type"], "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials");
    assert_eq!(arm.list_all(&format!("{}/federatedIdentityCredentials", identity("dns01")), MSI).0.len(), 1);
    let orphan = format!("{}/federatedIdentityCredentials/x", identity("nope"));
    assert_eq!(arm.put(&orphan, MSI, body("https://issuer/")).expect(404).code(), "ResourceNotFound");

    arm.delete(&identity("dns01"), MSI).expect(200);
    assert_eq!(arm.get(&fic, MSI).expect(404).code(), "NotFound", "credentials go with their identity");
    assert_eq!(arm.delete(&identity("dns01"), MSI).status, 204);
}

#[test]
fn role_assignments_are_idempotent_immutable_and_unique() {
    let em = AzureEmulator::start(Options::default());
    let arm = Arm::new(&em);
    let principal = setup(&arm);
    let scope = group("rg1");
    let first = "1f3a0a3e-0000-4000-8000-000000000001";
    let r = arm.put(&assignment(&scope, first), AUTHZ, grant(DNS_CONTRIBUTOR, &principal)).expect(201);
    assert_eq!(r.body["type"], "Microsoft.Authorization/roleAssignments");
    assert_eq!(r.body["properties"]["scope"], scope);
    assert_eq!(r.body["properties"]["principalId"], principal);
    arm.put(&assignment(&scope, first), AUTHZ, grant(DNS_CONTRIBUTOR, &principal)).expect(201);
    let r = arm.put(&assignment(&scope, first), AUTHZ, grant(READER, &principal)).expect(400);
    assert_eq!(r.code(), "RoleAssignmentUpdateNotPermitted");
    let r =
        arm.put(&assignment(&scope, "1f3a0a3e-0000-4000-8000-000000000002"), AUTHZ, grant(DNS_CONTRIBUTOR, &principal));
    let r = r.expect(409);
    assert_eq!(r.code(), "RoleAssignmentExists");
    assert!(r.body["error"]["message"].as_str().unwrap().contains(first), "{r:?}");
    let stranger = json!("9d2c1b0a-0000-4000-8000-00000000abcd");
    let r = arm.put(&assignment(&scope, "1f3a0a3e-0000-4000-8000-000000000003"), AUTHZ, grant(READER, &stranger));
    assert_eq!(r.expect(400).code(), "PrincipalNotFound");
    em.add_principal(stranger.as_str().unwrap());
    arm.put(&assignment(&scope, "1f3a0a3e-0000-4000-8000-000000000003"), AUTHZ, grant(READER, &stranger)).expect(201);
    let r = arm.put(&assignment(&scope, "not-a-guid"), AUTHZ, grant(READER, &principal)).expect(400);
    assert_eq!(r.code(), "InvalidRoleAssignmentId");

    // On a resource's scope: the zone must exist.
    let zone = res("rg1", "Microsoft.Network/dnsZones/matih.ai");
    let on_zone = "1f3a0a3e-0000-4000-8000-000000000004";
    let r = arm.put(&assignment(&zone, on_zone), AUTHZ, grant(READER, &principal)).expect(404);
    assert_eq!(r.code(), "ResourceNotFound");
    arm.put(&zone, DNS, json!({"location": "global"})).expect(201);
    arm.put(&assignment(&zone, on_zone), AUTHZ, grant(READER, &principal)).expect(201);

    let names = |target: &str| -> Vec<String> {
        let (items, _) = arm.list_all(target, AUTHZ);
        let mut n: Vec<String> = items.iter().map(|i| i["name"].as_str().unwrap().to_string()).collect();
        n.sort();
        n
    };
    let list = |scope: &str, filter: &str| format!("{scope}/providers/Microsoft.Authorization/roleAssignments{filter}");
    assert_eq!(names(&list(&scope, "?$filter=atScope()")).len(), 2, "atScope() leaves out the zone's");
    assert_eq!(names(&list(&scope, "")).len(), 3, "no filter: at, above and below the scope");
    assert_eq!(names(&list(&zone, "?$filter=atScope()")).len(), 3, "the group's apply at the zone");
    assert_eq!(
        names(&list(&scope, &format!("?$filter=principalId%20eq%20%27{}%27", principal.as_str().unwrap()))).len(),
        2
    );

    let r = arm.delete(&assignment(&scope, first), AUTHZ).expect(200);
    assert_eq!(r.body["name"], first);
    assert_eq!(arm.delete(&assignment(&scope, first), AUTHZ).status, 204);
    assert_eq!(arm.get(&assignment(&scope, first), AUTHZ).expect(404).code(), "RoleAssignmentNotFound");
}

#[test]
fn role_assignment_lists_are_paged() {
    let em = AzureEmulator::start(Options { page_size: 2, ..Options::default() });
    let arm = Arm::new(&em);
    let principal = setup(&arm);
    let roles = [READER, DNS_CONTRIBUTOR, "b24988ac-6180-42a0-ab88-20f7382dd24c"];
    for (i, r) in roles.iter().enumerate() {
        arm.put(
            &assignment(&group("rg1"), &format!("1f3a0a3e-0000-4000-8000-00000000000{i}")),
            AUTHZ,
            grant(r, &principal),
        )
        .expect(201);
    }
    let (items, pages) = arm.list_all(
        &format!("{}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()", group("rg1")),
        AUTHZ,
    );
    assert_eq!((items.len(), pages), (3, 2));
}

#[test]
fn a_young_principal_is_not_found_until_it_has_replicated() {
    let lag = Duration::from_millis(500);
    let em = AzureEmulator::start(Options { principal_lag: lag, ..Options::default() });
    let arm = Arm::new(&em);
    let created = Instant::now();
    let principal = setup(&arm);
    let target = assignment(&group("rg1"), "1f3a0a3e-0000-4000-8000-000000000001");
    let mut refusals = 0;
    loop {
        let r = arm.put(&target, AUTHZ, grant(READER, &principal));
        if r.status == 201 {
            break;
        }
        assert_eq!(r.expect(400).code(), "PrincipalNotFound");
        refusals += 1;
        assert!(created.elapsed() < Duration::from_secs(30), "never replicated");
        std::thread::sleep(Duration::from_millis(50)); // the client's retry interval, not a synchronisation
    }
    assert!(refusals >= 1, "the first attempt comes within the lag");
    assert!(created.elapsed() >= lag);

    let slow = AzureEmulator::start(Options { principal_lag: Duration::from_secs(3600), ..Options::default() });
    let arm = Arm::new(&slow);
    let principal = setup(&arm);
    assert_eq!(arm.put(&target, AUTHZ, grant(READER, &principal)).expect(400).code(), "PrincipalNotFound");
}
