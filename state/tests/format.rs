//! The on-disk format: round trips, layout, upgrade from version 1, and every refusal.

mod common;

use std::path::Path;
use std::sync::Arc;

use matih_addrs::ResourceAddr;
use matih_state::format::{self, FORMAT_VERSION, TOOL_VERSION};
use matih_state::{Attrs, CorruptKind, State, StateCopy, StateError};
use serde_json::{Value, json};

const PATH: &str = "/nowhere/prod-aws.json";

fn path() -> &'static Path {
    Path::new(PATH)
}

fn decode(bytes: &[u8]) -> Result<State, StateError> {
    format::decode(bytes, path())
}

#[test]
fn round_trips_every_part_of_the_model() {
    let state = common::sample_state();
    let bytes = format::encode(&state);
    assert_eq!(decode(&bytes).unwrap(), state);
}

#[test]
fn round_trips_a_large_state() {
    // Large enough for encode and decode to split the work across threads where there are
    // several cores.
    let state = common::big_state(5_000, 7);
    let bytes = format::encode(&state);
    let back = decode(&bytes).unwrap();
    assert_eq!(back, state);
    // Decoding gives the keys back sorted, so encoding again is byte-identical.
    assert_eq!(format::encode(&back), bytes);
}

#[test]
fn a_copy_brought_up_to_date_encodes_as_the_state_it_follows() {
    let mut live = common::big_state(50, 1);
    live.intents = common::sample_state().intents;
    let mut copy = StateCopy::new(&live);
    // Changed, added and removed resources, named; intents, deposed, outputs and serial changed
    // without naming anything.
    let first = live.resources.keys().next().unwrap().clone();
    let last = live.resources.keys().last().unwrap().clone();
    Arc::make_mut(&mut live.resources.get_mut(&first).unwrap().attrs).insert("gen".into(), json!(2));
    live.resources.remove(&last);
    let vpc = ResourceAddr::must("eks.vpc.main");
    live.resources.insert(vpc.clone(), common::sample_state().resources[&vpc].clone());
    live.intents.clear();
    live.deposed = common::sample_state().deposed;
    live.outputs = common::sample_state().outputs;
    live.serial += 3;
    copy.update(&live, [&first, &last, &vpc]);
    let encoded = copy.encode(Vec::new());
    assert_eq!(String::from_utf8(encoded.to_bytes()).unwrap(), String::from_utf8(format::encode(&live)).unwrap());
    assert_eq!(encoded.serial(), live.serial, "the copy does not number the state");
    // An address named but unchanged, or named twice, is rendered again, harmlessly.
    copy.update(&live, [&first, &first]);
    assert_eq!(copy.encode(Vec::new()).to_bytes(), format::encode(&live));
    // Not naming a change leaves the copy behind: the engine's debug check relies on seeing it.
    Arc::make_mut(&mut live.resources.get_mut(&first).unwrap().attrs).insert("gen".into(), json!(3));
    copy.update(&live, []);
    assert_ne!(copy.encode(Vec::new()).to_bytes(), format::encode(&live));
}

/// The version 3 file the previous release wrote for `common::sample_state()` (plus one attribute
/// that looks like a reference to a shared value), byte for byte.
fn v3_fixture() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v3.json")).unwrap()
}

#[test]
fn layout_is_one_resource_per_line_with_repeated_values_shared() {
    let mut state = common::sample_state();
    // Three add-ons with the same long value, the same owner tags (but their own address tag)
    // and the same dependencies; a fourth that differs from them; a cluster with the same
    // connection and owner tags.
    let conn = json!({"endpoint": "https://cluster.example", "ca_data": "x".repeat(200)});
    let deps: Vec<ResourceAddr> =
        ["eks.vpc.main", "eks.cluster.main", "eks.node_group.system"].into_iter().map(ResourceAddr::must).collect();
    let mut add = |address: &str, attrs: Value, dependencies: &[ResourceAddr]| {
        let addr = ResourceAddr::must(address);
        let owner_tags = [
            ("matih:address".to_string(), addr.to_string()),
            ("matih:environment".to_string(), "production".to_string()),
            ("matih:platform".to_string(), "matih-platform".to_string()),
        ]
        .into();
        let resource = matih_state::ResourceState {
            rtype: addr.rtype.clone(),
            id: attrs["id"].as_str().unwrap().into(),
            attrs: attrs.as_object().unwrap().clone().into(),
            dependencies: dependencies.to_vec(),
            owner_tags,
            protected: false,
        };
        state.resources.insert(addr, resource);
    };
    for name in ["a", "b", "c"] {
        add(&format!("k8s.addon.{name}"), json!({"connection": conn, "id": name, "short": "same"}), &deps);
    }
    add("k8s.addon.d", json!({"connection": conn, "id": "d", "short": "other"}), &[]);
    add("eks.cluster.main", json!({"connection": conn, "id": "matih-prod"}), &deps[..1]);
    let bytes = format::encode(&state);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert_eq!(decode(&bytes).unwrap(), state);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let top: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        top,
        [
            "format_version",
            "tool_version",
            "serial",
            "lineage",
            "shared",
            "defaults",
            "resources",
            "intents",
            "deposed",
            "outputs",
            "schema_versions"
        ]
    );
    assert_eq!(doc["format_version"], json!(FORMAT_VERSION));
    assert_eq!(doc["tool_version"], json!(TOOL_VERSION));
    assert!(text.starts_with("{\n  \"format_version\": 5,\n  \"tool_version\": "), "{text}");
    assert!(text.ends_with("\n}\n"));

    // Written more than once: the connection and the owner tags (the address as `true`), once.
    let tags = json!({"matih:address": true, "matih:environment": "production", "matih:platform": "matih-platform"});
    assert_eq!(doc["shared"], json!([conn, tags]), "{text}");
    // What most lines of a type share, once per type, on a line of its own: the add-ons'
    // connection, `short`, dependencies and owner tags; the subnets' dependencies (the deposed
    // subnet counts). The cluster and the VPC are alone of their types: no defaults.
    let defaults: Vec<&str> = text.lines().skip_while(|l| !l.contains("\"defaults\"")).skip(1).take(3).collect();
    assert_eq!(
        defaults,
        [
            r#"    "eks.subnet": {"dependencies":["eks.vpc.main"]},"#,
            r#"    "k8s.addon": {"attrs":{"connection":{"$shared":0},"short":"same"},"dependencies":["eks.vpc.main","eks.cluster.main","eks.node_group.system"],"owner_tags":{"$shared":1}}"#,
            "  },",
        ]
    );
    // Each resource on a line of its own, compact, sorted by address, defaults left out; where a
    // type's default is not the line's value, the line says so, even when empty.
    let lines: Vec<&str> =
        text.lines().filter(|l| l.starts_with("    {\"address\":")).map(|l| l.trim_end_matches(',')).collect();
    assert_eq!(
        lines,
        [
            r#"    {"address":"eks.cluster.main","attrs":{"connection":{"$shared":0},"id":"matih-prod"},"dependencies":["eks.vpc.main"],"owner_tags":{"$shared":1}}"#,
            r#"    {"address":"eks.subnet.private[\"us-east-1a\"]","id":"subnet-1","attrs":{"name":"quote \" backslash \\ newline \n unicode ü"}}"#,
            // Attribute keys sorted, at every depth; `protected` only when true.
            r#"    {"address":"eks.vpc.main","id":"vpc-0abc","attrs":{"cidr":"10.0.0.0/16","nested":{"x":true,"y":1},"z_last":[1,2,{"a":"x","b":null}]},"owner_tags":{"matih:platform":"prod"},"protected":true}"#,
            r#"    {"address":"k8s.addon.a","attrs":{"id":"a"}}"#,
            r#"    {"address":"k8s.addon.b","attrs":{"id":"b"}}"#,
            r#"    {"address":"k8s.addon.c","attrs":{"id":"c"}}"#,
            r#"    {"address":"k8s.addon.d","attrs":{"id":"d","short":"other"},"dependencies":[]}"#,
            r#"    {"address":"eks.subnet.private[\"us-east-1a\"]","id":"subnet-0-old","attrs":{}}"#,
        ],
        "7 resources and 1 deposed: {text}"
    );

    let i = &doc["intents"][0];
    let keys: Vec<&str> = i.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["address", "type", "name", "client_token", "owner_tags", "dependencies", "protected", "recorded_at"]
    );
    assert_eq!(doc["outputs"]["token"], json!({"value": "s3cr3t", "sensitive": true}));
}

#[test]
fn upgrades_version_3() {
    let bytes = v3_fixture();
    let mut expected = common::sample_state();
    let state = decode(&bytes).unwrap();
    expected.lineage = state.lineage.clone();
    Arc::make_mut(&mut expected.resources.values_mut().next().unwrap().attrs)
        .insert("odd".into(), json!({"$shared": 0}));
    assert_eq!(state, expected, "a value shaped like a reference is only a reference from version 4 on");
    let now = format::encode(&state);
    assert_eq!(decode(&now).unwrap(), state);
    assert!(now.len() < bytes.len(), "{} bytes now, {} before", now.len(), bytes.len());
}

/// The state the version 4 fixture holds: `common::sample_state()` and three add-ons.
fn v4_state() -> State {
    let mut state = common::sample_state();
    let conn = json!({"endpoint": "https://cluster.example", "ca_data": "x".repeat(40)});
    for name in ["a", "b", "c"] {
        let addr = ResourceAddr::must(&format!("k8s.addon.{name}"));
        let resource = matih_state::ResourceState {
            rtype: addr.rtype.clone(),
            id: name.into(),
            attrs: json!({"connection": conn, "id": name, "short": "same"}).as_object().unwrap().clone().into(),
            dependencies: vec![ResourceAddr::must("eks.cluster.main")],
            owner_tags: [
                ("matih:address".to_string(), addr.to_string()),
                ("matih:platform".to_string(), "matih-platform".to_string()),
            ]
            .into(),
            protected: false,
        };
        state.resources.insert(addr, resource);
    }
    state
}

#[test]
fn upgrades_version_4() {
    // Written by the previous release, byte for byte.
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v4.json")).unwrap();
    let state = decode(&bytes).unwrap();
    let mut expected = v4_state();
    expected.lineage = state.lineage.clone();
    assert_eq!(state, expected);
    let now = format::encode(&state);
    assert_eq!(serde_json::from_slice::<Value>(&now).unwrap()["format_version"], json!(5));
    assert_eq!(decode(&now).unwrap(), state);
    assert!(now.len() < bytes.len(), "{} bytes now, {} before", now.len(), bytes.len());
}

#[test]
fn refuses_bad_defaults_at_their_line() {
    let text = String::from_utf8(format::encode(&v4_state())).unwrap();
    let line = text.lines().position(|l| l.contains(r#""k8s.addon": {"#)).unwrap() + 1;
    let cases = [
        (r#""k8s.addon": {"#, r#""k8s": {"#, "defaults: `k8s` is not a resource type"),
        (r#""owner_tags":{"matih:address":true"#, r#""owner_tags":{"matih:address":false"#, "a tag is text"),
        (r#""owner_tags":{"matih:address":true"#, r#""owner_tags":{"matih:address":true,"x":1"#, "a tag is text"),
        (r#""attrs":{"connection":"#, r#""attributes":{"connection":"#, "unknown field `attributes`"),
        (r#""dependencies":["eks.cluster.main"]"#, r#""dependencies":{"$shared":9}"#, "refers to shared value 9"),
        (r#""dependencies":["eks.cluster.main"]"#, r#""dependencies":["not an address"]"#, "dependencies"),
    ];
    for (from, to, says) in cases {
        let bad = text.replacen(from, to, 1);
        assert_ne!(bad, text, "{from}");
        match decode(bad.as_bytes()) {
            Err(e @ StateError::Corrupt { kind: CorruptKind::Invalid, .. }) => {
                let StateError::Corrupt { line: l, .. } = &e else { unreachable!() };
                assert_eq!(*l, line, "{to}: {e}");
                let msg = format!("{e} {:?}", std::error::Error::source(&e));
                assert!(msg.contains(says), "{to}: {msg}");
            }
            other => panic!("{to}: {other:?}"),
        }
    }
    // The defaults must come before the lists that leave values out, and only version 5 has them.
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut reordered = doc.as_object().unwrap().clone();
    let defaults = reordered.remove("defaults").unwrap();
    reordered.insert("defaults".into(), defaults);
    let e = decode(&serde_json::to_vec(&reordered).unwrap()).unwrap_err();
    let msg = format!("{e} {:?}", std::error::Error::source(&e));
    assert!(msg.contains("`defaults` comes after `resources`"), "{msg}");
    let mut v4 = doc.clone();
    v4["format_version"] = json!(4);
    let e = decode(&serde_json::to_vec(&v4).unwrap()).unwrap_err();
    let msg = format!("{e} {:?}", std::error::Error::source(&e));
    assert!(msg.contains("`defaults` is new in format version 5, not 4"), "{msg}");
    // Without the defaults, the lines that left values out mean something else: no quiet guess.
    let mut without = doc;
    without.as_object_mut().unwrap().remove("defaults");
    let back = decode(&serde_json::to_vec(&without).unwrap()).unwrap();
    assert_ne!(back, decode(text.as_bytes()).unwrap());
}

#[test]
fn refuses_bad_references_at_their_line() {
    let bytes = format::encode(&common::sample_state());
    let text = String::from_utf8(bytes).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let line = line_of(r#""address":"eks.vpc.main""#);
    let cases = [
        (r#""cidr":"10.0.0.0/16""#, r#""cidr":{"$shared":7}"#, "refers to shared value 7, but `shared` has 0"),
        (r#""cidr":"10.0.0.0/16""#, r#""cidr":{"$shared":"a"}"#, "a reference is"),
        (r#""owner_tags":{"matih:platform":"prod"}"#, r#""owner_tags":{"matih:platform":7}"#, "a tag is text"),
        (
            r#""owner_tags":{"matih:platform":"prod"}"#,
            r#""owner_tags":{"matih:platform":false}"#,
            "or `true` for the address",
        ),
        (r#""id":"vpc-0abc","#, "", "no `id`, and no `id` attribute"),
    ];
    for (from, to, says) in cases {
        let bad = text.replacen(from, to, 1);
        assert_ne!(bad, text);
        match decode(bad.as_bytes()) {
            Err(e @ StateError::Corrupt { kind: CorruptKind::Invalid, .. }) => {
                let StateError::Corrupt { line: l, .. } = &e else { unreachable!() };
                assert_eq!(*l, line, "{to}: {e}");
                let msg = format!("{e} {:?}", std::error::Error::source(&e));
                assert!(msg.contains(says) && msg.contains("eks.vpc.main"), "{to}: {msg}");
            }
            other => panic!("{to}: {other:?}"),
        }
    }
    // The table must come before the lists that refer to it.
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["resources"][1]["attrs"]["cidr"] = json!({"$shared": 0});
    doc["shared"] = json!(["10.0.0.0/16"]);
    let ordered = serde_json::to_vec(&doc).unwrap();
    assert_eq!(decode(&ordered).unwrap(), decode(text.as_bytes()).unwrap());
    let mut reordered = serde_json::Map::new();
    for key in [
        "format_version",
        "tool_version",
        "serial",
        "lineage",
        "resources",
        "shared",
        "intents",
        "deposed",
        "outputs",
        "schema_versions",
    ] {
        reordered.insert(key.into(), doc[key].clone());
    }
    let e = decode(&serde_json::to_vec(&Value::Object(reordered)).unwrap()).unwrap_err();
    let msg = format!("{e} {:?}", std::error::Error::source(&e));
    assert!(msg.contains("no `shared` list comes before `resources`"), "{msg}");
}

#[test]
fn equal_states_give_equal_bytes_whatever_the_insertion_order() {
    let a = common::sample_state();
    let mut b = a.clone();
    let vpc = ResourceAddr::must("eks.vpc.main");
    let attrs = Arc::make_mut(&mut b.resources.get_mut(&vpc).unwrap().attrs);
    let entries: Vec<(String, Value)> = std::mem::take(attrs).into_iter().rev().collect();
    attrs.extend(entries);
    assert_ne!(
        a.resources[&vpc].attrs.keys().collect::<Vec<_>>(),
        b.resources[&vpc].attrs.keys().collect::<Vec<_>>(),
        "the test needs a different insertion order"
    );
    assert_eq!(format::encode(&a), format::encode(&b));
}

#[test]
fn sorting_keys_leaves_attributes_shared_with_another_copy_unless_they_need_it() {
    let mut recorded = common::sample_state();
    format::sort_objects(&mut recorded);
    // The refreshed copy shares every resource's attributes with the recorded one.
    let mut refreshed = recorded.clone();
    let vpc = ResourceAddr::must("eks.vpc.main");
    let subnet = ResourceAddr::must(r#"eks.subnet.private["us-east-1a"]"#);
    let attrs = Arc::make_mut(&mut refreshed.resources.get_mut(&vpc).unwrap().attrs);
    let entries: Vec<(String, Value)> = std::mem::take(attrs).into_iter().rev().collect();
    attrs.extend(entries);
    assert!(!refreshed.resources[&vpc].attrs.keys().is_sorted(), "the test needs unsorted keys");

    format::sort_objects(&mut refreshed);
    assert!(refreshed.resources[&vpc].attrs.keys().is_sorted());
    assert!(Arc::ptr_eq(&recorded.resources[&subnet].attrs, &refreshed.resources[&subnet].attrs), "still shared");
    assert_eq!(format::encode(&recorded), format::encode(&refreshed));
}

#[test]
fn upgrades_version_1() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.json")).unwrap();
    let state = decode(&bytes).unwrap();
    assert_eq!(state.serial, 14);
    assert_eq!(state.lineage, "5c1f8a52-3b0e-4d6e-9f0a-6b7f3c2d1e90");
    assert_eq!(state.resources.len(), 3);
    assert!(state.intents.is_empty());
    assert!(state.deposed.is_empty());

    let vpc = &state.resources[&ResourceAddr::must("eks.vpc.main")];
    assert_eq!(vpc.id, "vpc-0a1b2c3d4e5f67890");
    assert_eq!(vpc.rtype.to_string(), "eks.vpc");
    assert_eq!(
        Value::Object(Attrs::clone(&vpc.attrs)),
        json!({"cidr_block": "10.0.0.0/16", "enable_dns_hostnames": true, "tags": {"Name": "prod"}})
    );
    assert!(!vpc.protected, "version 1 had no `protected`; it reads as false");

    let subnet = &state.resources[&ResourceAddr::must(r#"eks.subnet.private["us-east-1a"]"#)];
    assert_eq!(subnet.dependencies, vec![ResourceAddr::must("eks.vpc.main")]);
    assert_eq!(subnet.owner_tags["matih:platform"], "prod");
    let pool = &state.resources[&ResourceAddr::must("fake.node_pool.workers[3]")];
    assert_eq!(pool.dependencies.len(), 2);
    assert!(state.outputs["admin_token"].sensitive);

    // The next save writes the current version, which reads back as the same state.
    let now = format::encode(&state);
    assert_eq!(serde_json::from_slice::<Value>(&now).unwrap()["format_version"], json!(FORMAT_VERSION));
    assert_eq!(decode(&now).unwrap(), state);
}

#[test]
fn refuses_an_empty_file() {
    for bytes in [&b""[..], b"  \n\n"] {
        match decode(bytes) {
            Err(StateError::Corrupt { kind: CorruptKind::Empty, backup: None, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn refuses_every_truncation() {
    let bytes = format::encode(&common::sample_state());
    // Dropping the final newline still leaves a whole document; any shorter prefix does not.
    for len in 0..bytes.len() - 1 {
        match decode(&bytes[..len]) {
            Err(StateError::Corrupt { kind: CorruptKind::Truncated | CorruptKind::Empty, line, .. }) => {
                let lines = bytes[..len].iter().filter(|&&b| b == b'\n').count() + 1;
                assert_eq!(line, lines, "at {len}: the error points at the end of the file");
            }
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn reports_line_and_column_of_garbage() {
    let bytes = b"{\n  \"format_version\": 2,\n  \"serial\": oops\n}\n";
    match decode(bytes) {
        Err(e @ StateError::Corrupt { kind: CorruptKind::Syntax, line: 3, column: 13, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(PATH) && msg.contains("line 3, column 13"), "{msg}");
            let hint = e.hint().unwrap();
            assert!(hint.contains("line 3, column 13") && hint.contains("no backup"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    for garbage in [&b"not json"[..], b"\x00\x01\x02", b"[1, 2]", b"\"a string\"", b"null"] {
        assert!(matches!(decode(garbage), Err(StateError::Corrupt { .. })), "{:?}", String::from_utf8_lossy(garbage));
    }
}

#[test]
fn refuses_a_file_that_is_json_but_not_state() {
    let good: Value = serde_json::from_slice(&format::encode(&common::sample_state())).unwrap();
    let mut cases = Vec::new();
    let mut missing = good.clone();
    missing["resources"][0].as_object_mut().unwrap().remove("id");
    cases.push(("missing field", missing));
    let mut unknown = good.clone();
    unknown["resources"][0]["colour"] = json!("blue");
    cases.push(("unknown field", unknown));
    let mut bad_addr = good.clone();
    bad_addr["resources"][0]["address"] = json!("Not An Address");
    cases.push(("bad address", bad_addr));
    let mut bad_type = good.clone();
    bad_type["serial"] = json!("seven");
    cases.push(("wrong type", bad_type));
    for (what, doc) in cases {
        let bytes = serde_json::to_vec_pretty(&doc).unwrap();
        match decode(&bytes) {
            Err(StateError::Corrupt { kind: CorruptKind::Invalid, line, .. }) => assert!(line > 1, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn refuses_a_newer_format_naming_the_version_that_wrote_it() {
    let next = FORMAT_VERSION + 1;
    let bytes = format!(
        r#"{{"format_version": {next}, "tool_version": "0.9.0", "serial": 1, "lineage": "x", "something_new": []}}"#
    );
    match decode(bytes.as_bytes()) {
        Err(e @ StateError::NewerFormat { found, supported: FORMAT_VERSION, .. }) if found == next => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!(
                    "format version {next}; this matih-infra ({}) reads format versions up to {FORMAT_VERSION}",
                    matih_state::format::TOOL_VERSION
                )),
                "{msg}"
            );
            assert!(msg.contains("matih-infra 0.9.0 wrote it"), "{msg}");
            let hint = e.hint().unwrap();
            assert!(hint.contains("0.9.0 or later") && hint.contains(&format!("format version {next}")), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    // A file that claims this very release wrote a format it does not write: say that, not
    // "upgrade to the version you have".
    let this = matih_state::format::TOOL_VERSION;
    let same = format!(r#"{{"format_version": {next}, "tool_version": "{this}", "serial": 1, "lineage": "x"}}"#);
    let e = decode(same.as_bytes()).unwrap_err();
    let hint = e.hint().unwrap();
    assert!(
        !hint.contains("or later") && hint.contains(&format!("writes format version {FORMAT_VERSION}, not {next}")),
        "{hint}"
    );
    assert_eq!(e.to_string().matches(this).count(), 2, "this release, and the file's claim: {e}");
    // Without a tool version it still refuses, and says so.
    assert!(matches!(
        decode(br#"{"format_version": 99}"#),
        Err(StateError::NewerFormat { found: 99, written_by: None, .. })
    ));
}

#[test]
fn refuses_unknown_older_or_missing_versions() {
    assert!(matches!(
        decode(br#"{"format_version": 0, "serial": 1}"#),
        Err(StateError::UnknownFormat { found: Some(0), .. })
    ));
    assert!(matches!(decode(br#"{"serial": 1, "lineage": "x"}"#), Err(StateError::UnknownFormat { found: None, .. })));
}

#[test]
fn refuses_duplicate_addresses() {
    let mut doc: Value = serde_json::from_slice(&format::encode(&common::sample_state())).unwrap();
    let first = doc["resources"][0].clone();
    doc["resources"].as_array_mut().unwrap().push(first);
    match decode(&serde_json::to_vec_pretty(&doc).unwrap()) {
        Err(StateError::DuplicateAddress { address, .. }) => {
            assert_eq!(address.to_string(), r#"eks.subnet.private["us-east-1a"]"#)
        }
        other => panic!("{other:?}"),
    }

    let mut doc: Value = serde_json::from_slice(&format::encode(&common::sample_state())).unwrap();
    let first = doc["intents"][0].clone();
    doc["intents"].as_array_mut().unwrap().push(first);
    assert!(matches!(decode(&serde_json::to_vec_pretty(&doc).unwrap()), Err(StateError::DuplicateAddress { .. })));

    // Version 1 keyed resources by address: a repeated key is a duplicate, not an overwrite.
    let v1 = br#"{"format_version": 1, "serial": 1, "lineage": "x", "outputs": {}, "resources": {
        "eks.vpc.main": {"type": "eks.vpc", "id": "a", "attributes": {}, "dependencies": [], "owner_tags": {}},
        "eks.vpc.main": {"type": "eks.vpc", "id": "b", "attributes": {}, "dependencies": [], "owner_tags": {}}}}"#;
    assert!(matches!(decode(v1), Err(StateError::DuplicateAddress { .. })));
}

#[test]
fn refuses_a_type_that_contradicts_the_address() {
    // Version 3 recorded the type beside the address (version 4 reads it from the address).
    let mut doc: Value = serde_json::from_slice(&v3_fixture()).unwrap();
    doc["resources"][1]["type"] = json!("eks.subnet");
    match decode(&serde_json::to_vec_pretty(&doc).unwrap()) {
        Err(StateError::TypeMismatch { address, rtype, .. }) => {
            assert_eq!(address.to_string(), "eks.vpc.main");
            assert_eq!(rtype, "eks.subnet");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn accepts_any_key_order_and_layout() {
    // A hand-edited file: keys reordered, compact. Not the layout `encode` writes, so it also
    // exercises the one-pass decoder on a large file.
    let state = common::big_state(3_000, 1);
    let doc: Value = serde_json::from_slice(&format::encode(&state)).unwrap();
    let mut reordered = serde_json::Map::new();
    // Any order, as long as the table of shared values comes before the lists referring to it.
    for key in [
        "outputs",
        "shared",
        "schema_versions",
        "defaults",
        "resources",
        "lineage",
        "deposed",
        "intents",
        "serial",
        "tool_version",
        "format_version",
    ] {
        reordered.insert(key.into(), doc[key].clone());
    }
    let compact = serde_json::to_vec(&Value::Object(reordered)).unwrap();
    assert_eq!(decode(&compact).unwrap(), state);
}

#[test]
fn header_is_read_without_the_rest() {
    let state = common::sample_state();
    let bytes = format::encode(&state);
    // Everything after the header may be missing: only the header is looked at.
    let head = &bytes[..bytes.windows(12).position(|w| w == b"\"resources\":").unwrap()];
    let h = format::read_header(head, path()).unwrap();
    assert_eq!(h.format_version, Some(FORMAT_VERSION));
    assert_eq!(h.tool_version.as_deref(), Some(TOOL_VERSION));
    assert_eq!(h.serial, Some(state.serial));
    assert_eq!(h.lineage.as_deref(), Some(state.lineage.as_str()));
}

#[test]
fn reads_version_2_with_every_schema_at_version_0_and_keeps_recorded_versions() {
    let mut state = common::sample_state();
    state.schema_versions.insert("eks.vpc".parse().unwrap(), 2);
    let now = format::encode(&state);
    let doc: Value = serde_json::from_slice(&now).unwrap();
    assert_eq!(doc["schema_versions"], json!({"eks.vpc": 2}));
    assert_eq!(decode(&now).unwrap(), state);

    // A file as version 2 wrote it: version 3's layout without `schema_versions`.
    let mut v2: Value = serde_json::from_slice(&v3_fixture()).unwrap();
    v2["format_version"] = json!(2);
    v2.as_object_mut().unwrap().remove("schema_versions");
    let back = decode(&serde_json::to_vec_pretty(&v2).unwrap()).unwrap();
    assert!(back.schema_versions.is_empty());
    assert_eq!(back.resources.len(), state.resources.len());

    // A key that is no resource type is refused, not dropped.
    let mut bad = doc;
    bad["schema_versions"] = json!({"not a type": 1});
    assert!(matches!(decode(&serde_json::to_vec_pretty(&bad).unwrap()), Err(StateError::Corrupt { .. })));
}
