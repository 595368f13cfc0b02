//! Sample states shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;

use matih_addrs::{ResourceAddr, ResourceType};
use matih_state::{Deposed, Intent, Output, ResourceState, State};
use serde_json::json;

/// A small state using every part of the model.
pub fn sample_state() -> State {
    let mut s = State::new();
    let vpc = ResourceAddr::must("eks.vpc.main");
    let subnet = ResourceAddr::must(r#"eks.subnet.private["us-east-1a"]"#);
    s.resources.insert(
        vpc.clone(),
        ResourceState {
            rtype: vpc.rtype.clone(),
            id: "vpc-0abc".into(),
            // Inserted out of order on purpose: the file sorts keys.
            attrs:
                json!({ "z_last": [1, 2, {"b": null, "a": "x"}], "cidr": "10.0.0.0/16", "nested": {"y": 1, "x": true} })
                    .as_object()
                    .unwrap()
                    .clone()
                    .into(),
            dependencies: vec![],
            owner_tags: BTreeMap::from([("matih:platform".into(), "prod".into())]),
            protected: true,
        },
    );
    s.resources.insert(
        subnet.clone(),
        ResourceState {
            rtype: subnet.rtype.clone(),
            id: "subnet-1".into(),
            attrs: json!({ "name": "quote \" backslash \\ newline \n unicode ü" }).as_object().unwrap().clone().into(),
            dependencies: vec![vpc.clone()],
            owner_tags: BTreeMap::new(),
            protected: false,
        },
    );
    let pool = ResourceAddr::must("fake.node_pool.workers[3]");
    s.intents.insert(
        pool.clone(),
        Intent {
            rtype: pool.rtype.clone(),
            name: "prod-workers-3".into(),
            client_token: "tok-123".into(),
            owner_tags: BTreeMap::from([("matih:address".into(), pool.to_string())]),
            dependencies: vec![vpc.clone(), subnet.clone()],
            protected: false,
            recorded_at: "2026-05-01T10:00:00Z".into(),
        },
    );
    s.deposed.push(Deposed {
        addr: subnet.clone(),
        resource: ResourceState {
            rtype: subnet.rtype.clone(),
            id: "subnet-0-old".into(),
            attrs: Default::default(),
            dependencies: vec![vpc],
            owner_tags: BTreeMap::new(),
            protected: false,
        },
    });
    s.outputs.insert("endpoint".into(), Output { value: json!({"url": "https://x", "port": 443}), sensitive: false });
    s.outputs.insert("token".into(), Output { value: json!("s3cr3t"), sensitive: true });
    s
}

/// A state with `n` resources of a typical shape; every resource carries `gen` = `generation`.
pub fn big_state(n: usize, generation: u64) -> State {
    let mut state = State::new();
    fill(&mut state, n, generation);
    state
}

/// Replaces the resources of `state` by `n` typical ones carrying `gen` = `generation`.
pub fn fill(state: &mut State, n: usize, generation: u64) {
    let subnet = ResourceType::new("eks", "subnet").unwrap();
    let vpc = ResourceAddr::must("eks.vpc.main");
    state.resources.clear();
    for i in 0..n {
        let addr = ResourceAddr::keyed(&subnet, "tenant", format!("tenant-{i:05}")).unwrap();
        let attrs = json!({
            "gen": generation,
            "name": format!("prod-tenant-{i:05}"),
            "cidr_block": format!("10.{}.{}.0/24", i / 256 % 256, i % 256),
            "availability_zone": "us-east-1a",
            "arn": format!("arn:aws:ec2:us-east-1:123456789012:subnet/subnet-{i:017x}"),
            "route_tables": [{"id": "rtb-1", "main": true}, {"id": "rtb-2", "main": false}],
        });
        state.resources.insert(
            addr.clone(),
            ResourceState {
                rtype: subnet.clone(),
                id: format!("subnet-{i:017x}"),
                attrs: attrs.as_object().unwrap().clone().into(),
                dependencies: vec![vpc.clone()],
                owner_tags: BTreeMap::from([("matih:address".to_string(), addr.to_string())]),
                protected: false,
            },
        );
    }
}
