//! LIST with selectors, deletes and their cascades, and WATCH, through the real kube-rs client.

mod common;

use std::time::Duration;

use common::{api_error, apply, client, dynamic, manifest};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, WatchEvent, WatchParams};
use matih_kube_emulator::{KubeEmulator, NamespaceTermination, Options};
use serde_json::json;

async fn seed_configmaps(em: &KubeEmulator) {
    let c = client(em);
    let ns = dynamic(&c, "v1", "Namespace", "namespaces", None);
    apply(&ns, "matih", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})).await.unwrap();
    for (ns, name, labels) in [
        ("default", "a", json!({"app": "web", "tier": "front"})),
        ("default", "b", json!({"app": "db"})),
        ("team", "c", json!({"app": "web", "tier": "back"})),
        ("team", "d", json!({})),
    ] {
        let api = dynamic(&c, "v1", "ConfigMap", "configmaps", Some(ns));
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}});
        apply(&api, "matih", &obj).await.unwrap();
    }
}

fn names(list: &[ConfigMap]) -> Vec<String> {
    list.iter().map(|c| c.metadata.name.clone().unwrap()).collect()
}

#[tokio::test]
async fn metadata_only_lists_and_gets_carry_metadata_and_other_shapes_are_not_acceptable() {
    use std::io::{Read, Write};
    let em = KubeEmulator::start(Options { flavor: matih_kube_emulator::Flavor::Bare, ..Options::default() });
    seed_configmaps(&em).await;
    let all: Api<ConfigMap> = Api::all(client(&em));
    let listed = all.list_metadata(&ListParams::default().labels("app=web")).await.unwrap();
    let got: Vec<(String, Option<String>, bool)> = listed
        .items
        .iter()
        .map(|o| (o.metadata.name.clone().unwrap(), o.metadata.namespace.clone(), o.metadata.managed_fields.is_some()))
        .collect();
    assert_eq!(
        got,
        [("a".to_string(), Some("default".to_string()), true), ("c".to_string(), Some("team".to_string()), true)]
    );
    let one: Api<ConfigMap> = Api::namespaced(client(&em), "default");
    assert_eq!(one.get_metadata("b").await.unwrap().metadata.labels.unwrap()["app"], "db");

    // Raw: the shape's kind and content type, no data, and 406 for a shape the server does not
    // serve unless the client also takes plain JSON.
    let get = |accept: &str| {
        let addr = em.url().trim_start_matches("http://").to_string();
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET /api/v1/configmaps HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response
    };
    let meta = get("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1");
    assert!(meta.starts_with("HTTP/1.1 200"), "{meta}");
    assert!(meta.contains("as=PartialObjectMetadataList"), "content type: {meta}");
    assert!(meta.contains(r#""kind":"PartialObjectMetadataList""#) && !meta.contains(r#""data""#), "{meta}");
    let table = get("application/json;as=Table;g=meta.k8s.io;v=v1");
    assert!(table.starts_with("HTTP/1.1 406"), "{table}");
    assert!(table.contains("NotAcceptable"), "{table}");
    let fallback = get("application/json;as=Table;g=meta.k8s.io;v=v1, application/json");
    assert!(fallback.starts_with("HTTP/1.1 200") && fallback.contains(r#""kind":"ConfigMapList""#), "{fallback}");
    // A metadata-only list is not served for a single object, nor the reverse.
    assert!(get("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1").starts_with("HTTP/1.1 406"));
}

#[tokio::test]
async fn lists_page_in_order_and_a_change_between_pages_expires_the_token() {
    let em = KubeEmulator::start(Options { flavor: matih_kube_emulator::Flavor::Bare, ..Options::default() });
    seed_configmaps(&em).await;
    let all: Api<ConfigMap> = Api::all(client(&em));
    let whole = names(&all.list(&ListParams::default()).await.unwrap().items);
    assert!(whole.len() >= 4, "{whole:?}");

    // Pages of two, whole and metadata-only, hold the one list in its order; the snapshot's
    // resourceVersion stays the first page's.
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    let mut versions = Vec::new();
    loop {
        let mut lp = ListParams::default().limit(2);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = all.list_metadata(&lp).await.unwrap();
        assert!(page.items.len() <= 2);
        paged.extend(page.items.iter().map(|o| o.metadata.name.clone().unwrap()));
        versions.push(page.metadata.resource_version.clone().unwrap());
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(paged, whole);
    assert!(versions.len() > 1 && versions.iter().all(|v| *v == versions[0]), "{versions:?}");

    // Selectors apply before the limit: a page holds matching objects only.
    let web = all.list(&ListParams::default().labels("app=web").limit(1)).await.unwrap();
    assert_eq!(names(&web.items), ["a"]);
    let rest = all
        .list(
            &ListParams::default()
                .labels("app=web")
                .limit(1)
                .continue_token(web.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(names(&rest.items), ["c"]);
    assert_eq!(rest.metadata.continue_.filter(|t| !t.is_empty()), None);

    // A token is for its own resource, and made by the server.
    let first = all.list(&ListParams::default().limit(1)).await.unwrap();
    let token = first.metadata.continue_.unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client(&em));
    let e = api_error(namespaces.list(&ListParams::default().limit(1).continue_token(&token)).await);
    assert_eq!((e.code, e.message.contains("continue key is not valid")), (400, true), "{e:?}");
    let e = api_error(all.list(&ListParams::default().limit(1).continue_token("bm90IGEgdG9rZW4")).await);
    assert_eq!(e.code, 400, "{e:?}");

    // A change to the kind between pages: 410 Expired, as from a server past compaction.
    let c = client(&em);
    let api = dynamic(&c, "v1", "ConfigMap", "configmaps", Some("default"));
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e", "namespace": "default"}});
    apply(&api, "matih", &obj).await.unwrap();
    let e = api_error(all.list(&ListParams::default().limit(1).continue_token(&token)).await);
    assert_eq!((e.code, e.reason.as_str()), (410, "Expired"), "{e:?}");

    // The server's cap makes pages smaller than asked; lists without a limit stay whole.
    em.cap_pages(1);
    let capped = all.list(&ListParams::default().limit(500)).await.unwrap();
    assert_eq!(capped.items.len(), 1);
    assert!(capped.metadata.continue_.is_some());
    assert_eq!(all.list(&ListParams::default()).await.unwrap().items.len(), whole.len() + 1);

    // A compaction expires tokens given out before it, with nothing of the kind changed; a new
    // list is served.
    em.compact_every_pages(1);
    let first = all.list(&ListParams::default().limit(1)).await.unwrap();
    let e =
        api_error(all.list(&ListParams::default().limit(1).continue_token(&first.metadata.continue_.unwrap())).await);
    assert_eq!((e.code, e.reason.as_str()), (410, "Expired"), "{e:?}");
    em.compact_every_pages(0);
    assert_eq!(all.list(&ListParams::default()).await.unwrap().items.len(), whole.len() + 1);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let em = KubeEmulator::start(Options { flavor: matih_kube_emulator::Flavor::Bare, ..Options::default() });
    seed_configmaps(&em).await;
    let all: Api<ConfigMap> = Api::all(client(&em));
    let q = |sel: &str| ListParams::default().labels(sel);
    let cases = [
        ("app=web", vec!["a", "c"]),
        ("app==web,tier=front", vec!["a"]),
        ("app!=web", vec!["b", "d"]),
        ("app in (db, web)", vec!["a", "b", "c"]),
        ("tier notin (front)", vec!["b", "c", "d"]),
        ("tier", vec!["a", "c"]),
        ("!app", vec!["d"]),
    ];
    for (sel, want) in cases {
        assert_eq!(names(&all.list(&q(sel)).await.unwrap().items), want, "{sel}");
    }
    let team: Api<ConfigMap> = Api::namespaced(client(&em), "team");
    assert_eq!(names(&team.list(&q("app=web")).await.unwrap().items), ["c"]);
    assert_eq!(
        names(
            &all.list(&ListParams::default().fields("metadata.namespace=team,metadata.name!=c")).await.unwrap().items
        ),
        ["d"]
    );
    assert_eq!(api_error(all.list(&q("app in web")).await).code, 400);
}

/// Polls `f` every 20 ms until it returns true; panics after `secs` seconds.
async fn eventually(secs: u64, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(secs), "not within {secs}s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_deleted_namespace_terminates_then_goes_with_its_contents() {
    let termination = NamespaceTermination(Duration::from_millis(400));
    let em = KubeEmulator::start(Options { namespace_termination: termination, ..Options::default() });
    seed_configmaps(&em).await;
    let c = client(&em);
    let ns = dynamic(&c, "v1", "Namespace", "namespaces", None);
    let started = std::time::Instant::now();
    let deleted = ns.delete("team", &DeleteParams::default()).await.unwrap().left().expect("the namespace is returned");
    assert_eq!(deleted.data["status"]["phase"], "Terminating");
    assert!(deleted.metadata.deletion_timestamp.is_some());
    // Still there, with its contents, until the namespace controller gets to it.
    assert_eq!(ns.get("team").await.unwrap().data["status"]["phase"], "Terminating");
    let team: Api<ConfigMap> = Api::namespaced(c.clone(), "team");
    assert!(team.get("c").await.is_ok());
    // No new content meanwhile; existing content may still be changed.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "team"}});
    let err = api_error(apply(&dynamic(&c, "v1", "ConfigMap", "configmaps", Some("team")), "matih", &cm).await);
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"), "{err:?}");
    assert!(err.message.contains("unable to create new content in namespace team because it is being terminated"));
    // Deleting it again changes nothing.
    assert!(ns.delete("team", &DeleteParams::default()).await.is_ok());

    eventually(5, "team gone", async || ns.get("team").await.is_err()).await;
    assert!(started.elapsed() >= Duration::from_millis(400), "gone before the controller's delay");
    assert_eq!(api_error(team.get("c").await).code, 404);
    assert_eq!(
        names(&Api::<ConfigMap>::all(c.clone()).list(&ListParams::default().labels("app")).await.unwrap().items),
        ["a", "b"]
    );
    assert!(!em.delete("v1", "ConfigMap", Some("team"), "d"), "already gone");

    let err = api_error(ns.delete("kube-system", &DeleteParams::default()).await);
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
}

#[tokio::test]
async fn a_finalizer_holds_its_object_and_its_namespace_until_removed() {
    let termination = NamespaceTermination(Duration::from_millis(50));
    let em = KubeEmulator::start(Options { namespace_termination: termination, ..Options::default() });
    seed_configmaps(&em).await;
    let c = client(&em);
    em.update_as("operator", "v1", "ConfigMap", Some("team"), "c", |o| {
        o["metadata"]["finalizers"] = json!(["example.com/hold"]);
    });
    let ns = dynamic(&c, "v1", "Namespace", "namespaces", None);
    ns.delete("team", &DeleteParams::default()).await.unwrap();

    // `d` goes; `c` is marked and stays; the namespace says what holds it.
    let team = dynamic(&c, "v1", "ConfigMap", "configmaps", Some("team"));
    eventually(5, "d deleted", async || team.get("d").await.is_err()).await;
    let held = team.get("c").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let conditions = |o: &kube::api::DynamicObject| -> Vec<(String, String, String)> {
        o.data["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "True")
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap().to_string();
                (s("type"), s("reason"), s("message"))
            })
            .collect()
    };
    eventually(5, "conditions", async || ns.get("team").await.is_ok_and(|n| !conditions(&n).is_empty())).await;
    let live = ns.get("team").await.unwrap();
    assert_eq!(live.data["status"]["phase"], "Terminating");
    assert_eq!(
        conditions(&live),
        [
            (
                "NamespaceContentRemaining".into(),
                "SomeResourcesRemain".into(),
                "Some resources are remaining: configmaps. has 1 resource instances".into()
            ),
            (
                "NamespaceFinalizersRemaining".into(),
                "SomeFinalizersRemain".into(),
                "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
                    .into()
            ),
        ]
    );
    // A deleted object takes no new finalizer.
    let patch = json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}});
    let err = api_error(team.patch("c", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await);
    assert_eq!(err.code, 422, "{err:?}");
    assert!(err.message.contains("no new finalizers can be added if the object is being deleted"), "{}", err.message);
    // The controller has been at it (its conditions say so) and the namespace is still there.
    assert!(ns.get("team").await.is_ok(), "held while the finalizer stays");

    // Its controller is done: the object goes, then the namespace.
    let patch = json!({"metadata": {"finalizers": null}});
    team.patch("c", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    assert_eq!(api_error(team.get("c").await).code, 404);
    eventually(5, "team gone", async || ns.get("team").await.is_err()).await;

    // Outside a namespace being deleted, too: a deleted object with a finalizer waits for it.
    em.update_as("operator", "v1", "ConfigMap", Some("default"), "a", |o| {
        o["metadata"]["finalizers"] = json!(["example.com/hold"]);
    });
    let default = dynamic(&c, "v1", "ConfigMap", "configmaps", Some("default"));
    default.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(default.get("a").await.unwrap().metadata.deletion_timestamp.is_some());
    em.update_as("operator", "v1", "ConfigMap", Some("default"), "a", |o| {
        o["metadata"]["finalizers"] = json!([]);
    });
    assert_eq!(api_error(default.get("a").await).code, 404);
}

#[tokio::test]
async fn deleting_a_crd_deletes_its_custom_resources() {
    let em = KubeEmulator::start(Options::default());
    let c = client(&em);
    let crds = dynamic(&c, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", None);
    apply(&crds, "matih", &manifest("cert-manager/v1.21.1/crds/cert-manager.io_issuers.yaml")).await.unwrap();
    let issuers = dynamic(&c, "cert-manager.io/v1", "Issuer", "issuers", Some("default"));
    let issuer = json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "ss", "namespace": "default"}, "spec": {"selfSigned": {}}});
    apply(&issuers, "matih", &issuer).await.unwrap();
    assert_eq!(em.list("cert-manager.io/v1", "Issuer").len(), 1);
    assert!(em.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "issuers.cert-manager.io"));
    assert_eq!(api_error(issuers.get("ss").await).code, 404);
    apply(&crds, "matih", &manifest("cert-manager/v1.21.1/crds/cert-manager.io_issuers.yaml")).await.unwrap();
    assert!(issuers.list(&ListParams::default()).await.unwrap().items.is_empty(), "a recreated CRD starts empty");
}

#[tokio::test]
async fn watches_see_changes_in_order() {
    let em = KubeEmulator::start(Options::default());
    let api: Api<ConfigMap> = Api::namespaced(client(&em), "default");
    let rv = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut stream = api.watch(&WatchParams::default().labels("app=watched").timeout(30), &rv).await.unwrap().boxed();

    let dynamic_api = dynamic(&client(&em), "v1", "ConfigMap", "configmaps", Some("default"));
    let obj = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "namespace": "default", "labels": {"app": "watched"}}, "data": {"v": v}});
    apply(
        &dynamic_api,
        "matih",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "default"}}),
    )
    .await
    .unwrap();
    apply(&dynamic_api, "matih", &obj("1")).await.unwrap();
    apply(&dynamic_api, "matih", &obj("2")).await.unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        // A deadline, not a sleep: the events are already stored, so they come at once.
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("an event in time");
        match ev.expect("the stream is open").unwrap() {
            WatchEvent::Added(c) => seen.push(format!("ADDED {}", c.data.unwrap()["v"])),
            WatchEvent::Modified(c) => seen.push(format!("MODIFIED {}", c.data.unwrap()["v"])),
            WatchEvent::Deleted(c) => seen.push(format!("DELETED {}", c.data.unwrap()["v"])),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ADDED 1", "MODIFIED 2", "DELETED 2"]);
}

#[tokio::test]
async fn a_watch_from_before_a_compaction_is_told_410_and_a_fresh_list_starts_it_again() {
    let em = KubeEmulator::start(Options::default());
    let api: Api<ConfigMap> = Api::namespaced(client(&em), "default");
    let old = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    em.compact();

    // As the watch cache answers: the stream opens, says 410 Expired once, and ends.
    let mut stream = api.watch(&WatchParams::default().timeout(30), &old).await.unwrap().boxed();
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("an event in time");
    match ev.expect("the stream is open").unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(e.message.starts_with(&format!("too old resource version: {old} (")), "{}", e.message);
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("the end in time").is_none());

    // Listing again gives a resourceVersion to watch from.
    let fresh = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut stream = api.watch(&WatchParams::default().timeout(30), &fresh).await.unwrap().boxed();
    let dynamic_api = dynamic(&client(&em), "v1", "ConfigMap", "configmaps", Some("default"));
    apply(
        &dynamic_api,
        "matih",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after", "namespace": "default"}}),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("an event in time");
    match ev.expect("the stream is open").unwrap() {
        WatchEvent::Added(c) => assert_eq!(c.metadata.name.as_deref(), Some("after")),
        other => panic!("expected ADDED, got {other:?}"),
    }
}
