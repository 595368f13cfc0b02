//! The platform's network policies, judged by the evaluator: the properties the platform
//! document and the tenancy model promise (Kafka TLS only, tenant isolation, what the ingress
//! controllers may reach), the objects' shape, and the report's text and JSON.

use Protocol::{Tcp, Udp};
use matih_provider_kubernetes::layout::{
    CONTROL_PLANE, DATA_PLANE, FRONTEND, INGRESS, KAFKA_PLAINTEXT_PORT, KAFKA_TLS_PORT, KUBE_SYSTEM, Layout,
    PLATFORM_NAMESPACES, PolicySettings, Protocol, SERVICE_PORTS, TENANT_APP_PORT, TenantLayout, tenant_namespace,
};
use matih_provider_kubernetes::netpol::{
    INSTANCE_METADATA, INTERNET, PortRange, Reachability, all_policies, namespace_labels, platform_policies, report,
    tenant_policies,
};

fn tenant(slug: &str, dedicated_ingress: bool) -> TenantLayout {
    TenantLayout { slug: slug.into(), namespace: tenant_namespace(slug), dedicated_ingress }
}

/// Three tenants; `bigcorp` runs its own ingress controller. The spec's default policy settings.
fn three_tenants() -> Layout {
    with_tenants(vec![tenant("acme", false), tenant("bigcorp", true), tenant("initech", false)])
}

fn with_tenants(tenants: Vec<TenantLayout>) -> Layout {
    Layout { tenants, ..Layout::default() }
}

/// `(port, end_port)` of each TCP range `from` reaches in `to`.
fn tcp_ranges(r: &Reachability, from: &str, to: &str) -> Vec<(u16, Option<u16>)> {
    r.ports(from, to).iter().filter(|p| p.protocol == Tcp).map(|p| (p.port, p.end_port)).collect()
}

fn managed(layout: &Layout) -> Vec<String> {
    layout.namespaces()
}

fn tenants(layout: &Layout) -> Vec<String> {
    layout.tenants.iter().map(|t| t.namespace.clone()).collect()
}

#[test]
fn kafka_plaintext_is_unreachable_between_any_pair_the_platform_polices() {
    let layout = three_tenants();
    let r = report(&layout);
    let managed = managed(&layout);
    let mut checked = 0;
    for from in &r.namespaces {
        for to in &r.namespaces {
            // Traffic with neither end in a managed namespace (kube-system to itself, the outside
            // to kube-system) is not the platform's to police.
            if !managed.contains(from) && !managed.contains(to) {
                continue;
            }
            assert!(
                !r.allows(from, to, Tcp, KAFKA_PLAINTEXT_PORT),
                "{from} -> {to} allows 9092: {:?}",
                r.ports(from, to)
            );
            checked += 1;
        }
    }
    // 7 managed namespaces plus kube-system and the outside: 9 * 9 - 4 unpoliced pairs.
    assert_eq!(checked, 77);
}

#[test]
fn kafka_tls_reaches_the_data_plane_from_every_managed_namespace() {
    let layout = three_tenants();
    let r = report(&layout);
    for from in managed(&layout) {
        assert!(r.allows(&from, DATA_PLANE, Tcp, KAFKA_TLS_PORT), "{from} -> Kafka TLS");
    }
    assert!(!r.allows(INTERNET, DATA_PLANE, Tcp, KAFKA_TLS_PORT));
    assert!(!r.allows(KUBE_SYSTEM, DATA_PLANE, Tcp, KAFKA_TLS_PORT));
}

/// The platform document writes its Kafka rule toward every namespace, which opened 9093 toward
/// kube-system (and any namespace without policies); only Kafka's namespace may get it.
#[test]
fn kafka_tls_is_opened_toward_kafkas_namespace_only() {
    for kafka_ns in [DATA_PLANE, CONTROL_PLANE] {
        let mut layout = three_tenants();
        layout.policy.kafka_namespace = kafka_ns;
        let r = report(&layout);
        let managed = managed(&layout);
        for from in &managed {
            assert!(r.allows(from, kafka_ns, Tcp, KAFKA_TLS_PORT), "{from} -> Kafka in {kafka_ns}");
            for to in r.namespaces.iter().filter(|t| *t != kafka_ns && *t != from && *t != INTERNET) {
                assert!(!r.allows(from, to, Tcp, KAFKA_TLS_PORT), "{from} -> {to} allows 9093 (Kafka in {kafka_ns})");
            }
        }
        // kube-system: DNS and nothing else, from every managed namespace.
        for from in &managed {
            assert_eq!(tcp_ranges(&r, from, KUBE_SYSTEM), [(53, None)], "{from} -> kube-system");
        }
    }
    // Kafka moved to the control plane: the data plane no longer serves 9093 to tenants.
    let mut layout = three_tenants();
    layout.policy.kafka_namespace = CONTROL_PLANE;
    let r = report(&layout);
    assert!(r.ports(&tenant_namespace("acme"), DATA_PLANE).is_empty());
}

#[test]
fn the_namespaces_the_spec_names_reach_the_internet_and_no_others() {
    let all_but_9092 = vec![(1, Some(KAFKA_PLAINTEXT_PORT - 1)), (KAFKA_PLAINTEXT_PORT + 1, Some(65535))];
    // The defaults: the control and data planes.
    let r = report(&three_tenants());
    for ns in [CONTROL_PLANE, DATA_PLANE] {
        assert_eq!(tcp_ranges(&r, ns, INTERNET), all_but_9092, "{ns} -> internet");
        assert!(r.allows(ns, INTERNET, Udp, 443), "{ns} -> internet over UDP (QUIC)");
    }
    assert!(r.ports(FRONTEND, INTERNET).is_empty());
    for t in tenants(&three_tenants()) {
        assert!(!r.allows(&t, INTERNET, Tcp, 80), "{t} reaches the internet");
    }
    // The internet rule reaches no namespace: it is an ipBlock, and it excepts the cluster.
    assert!(!r.allows(DATA_PLANE, FRONTEND, Tcp, 5432));

    // The spec gives it to the front end alone.
    let mut layout = three_tenants();
    layout.policy.internet_egress = vec![FRONTEND];
    let r = report(&layout);
    assert_eq!(tcp_ranges(&r, FRONTEND, INTERNET), all_but_9092);
    assert!(r.ports(CONTROL_PLANE, INTERNET).is_empty() && r.ports(DATA_PLANE, INTERNET).is_empty());
    // And to nobody.
    layout.policy.internet_egress = vec![];
    let r = report(&layout);
    for ns in [CONTROL_PLANE, DATA_PLANE, FRONTEND] {
        assert!(r.ports(ns, INTERNET).is_empty(), "{ns} -> internet");
    }
}

#[test]
fn the_internet_excepts_the_clusters_ranges_and_instance_metadata() {
    let settings = PolicySettings {
        cluster_ranges: vec!["10.0.0.0/16".parse().unwrap(), "172.20.0.0/16".parse().unwrap()],
        ..PolicySettings::default()
    };
    let layout = Layout { policy: settings, ..three_tenants() };
    let policies = platform_policies(&layout);
    let internet: Vec<_> =
        policies.iter().filter(|p| p.metadata.name.as_deref() == Some("allow-to-internet")).collect();
    let namespaces: Vec<&str> = internet.iter().map(|p| p.metadata.namespace.as_deref().unwrap()).collect();
    assert_eq!(namespaces, [CONTROL_PLANE, DATA_PLANE]);
    for p in internet {
        let rule = &p.spec.as_ref().unwrap().egress.as_ref().unwrap()[0];
        let block = rule.to.as_ref().unwrap()[0].ip_block.as_ref().unwrap();
        assert_eq!(block.cidr, "0.0.0.0/0");
        assert_eq!(block.except.as_deref().unwrap(), ["10.0.0.0/16", INSTANCE_METADATA, "172.20.0.0/16"]);
    }
    // Ranges inside one another are excepted once (an AKS pod subnet inside its VNet).
    let nested = PolicySettings {
        cluster_ranges: vec!["10.30.0.0/16".parse().unwrap(), "10.30.16.0/20".parse().unwrap()],
        ..PolicySettings::default()
    };
    let layout = Layout { policy: nested, ..Layout::default() };
    let p = platform_policies(&layout).into_iter().find(|p| p.metadata.name.as_deref() == Some("allow-to-internet"));
    let block = p.unwrap().spec.unwrap().egress.unwrap()[0].to.as_ref().unwrap()[0].ip_block.clone().unwrap();
    assert_eq!(block.except.unwrap(), ["10.30.0.0/16", INSTANCE_METADATA]);
}

#[test]
fn no_tenant_reaches_another_tenant_on_any_port() {
    let layout = three_tenants();
    let r = report(&layout);
    let tenants = tenants(&layout);
    for from in &tenants {
        for to in tenants.iter().filter(|t| *t != from) {
            // The whole port set, not a sample of ports.
            assert_eq!(r.ports(from, to), &[], "{from} -> {to}");
            for port in [1, 80, 443, 8080, 8443, KAFKA_TLS_PORT, 65535] {
                assert!(!r.allows(from, to, Tcp, port) && !r.allows(from, to, Udp, port));
            }
        }
        // But a tenant's pods reach each other.
        assert!(r.allows(from, from, Tcp, TENANT_APP_PORT));
    }
}

#[test]
fn the_ingress_controller_reaches_only_the_ports_served_through_it() {
    let r = report(&three_tenants());
    for port in 8080..=8089 {
        assert!(r.allows(INGRESS, CONTROL_PLANE, Tcp, port), "matih-ingress -> control plane {port}");
    }
    assert!(!r.allows(INGRESS, CONTROL_PLANE, Tcp, 8090));
    assert!(!r.allows(INGRESS, CONTROL_PLANE, Tcp, 8079));
    // The data plane: AI service and Trino, not the databases.
    assert!(r.allows(INGRESS, DATA_PLANE, Tcp, 8000) && r.allows(INGRESS, DATA_PLANE, Tcp, 8080));
    for port in [5432, 6379, 6333, 7687, 15002] {
        assert!(!r.allows(INGRESS, DATA_PLANE, Tcp, port), "matih-ingress -> data plane {port}");
    }
    // Shared-ingress tenants on their app port only; the dedicated tenant not at all.
    let acme = tenant_namespace("acme");
    assert_eq!(r.ports(INGRESS, &acme).len(), 1);
    assert!(r.allows(INGRESS, &acme, Tcp, TENANT_APP_PORT));
    assert!(r.ports(INGRESS, &tenant_namespace("bigcorp")).is_empty());
    // To the API server (outside the pod network) on 443 alone.
    assert!(r.allows(INGRESS, INTERNET, Tcp, 443) && !r.allows(INGRESS, INTERNET, Tcp, 80));
}

#[test]
fn service_namespaces_reach_every_row_of_each_others_port_table() {
    let r = report(&three_tenants());
    let services = [CONTROL_PLANE, DATA_PLANE, FRONTEND];
    for row in SERVICE_PORTS {
        for from in services.iter().filter(|n| **n != row.namespace) {
            for port in [row.port, row.end_port.unwrap_or(row.port)] {
                assert!(
                    r.allows(from, row.namespace, Tcp, port),
                    "{from} -> {} {port} ({})",
                    row.namespace,
                    row.service
                );
            }
        }
    }
    // The ai-service's calls from the platform document.
    assert!(r.allows(DATA_PLANE, CONTROL_PLANE, Tcp, 8081));
    // Nothing off the table.
    assert!(!r.allows(CONTROL_PLANE, DATA_PLANE, Tcp, 3306));
    assert!(!r.allows(CONTROL_PLANE, FRONTEND, Tcp, 8081));
}

#[test]
fn tenants_reach_the_control_plane_apis_and_kafka_and_nothing_else_of_the_platform() {
    let layout = three_tenants();
    let r = report(&layout);
    for t in tenants(&layout) {
        assert!(r.allows(&t, CONTROL_PLANE, Tcp, 8080) && r.allows(&t, CONTROL_PLANE, Tcp, 8089));
        assert!(!r.allows(&t, CONTROL_PLANE, Tcp, 8090));
        let data: Vec<(u16, Option<u16>)> = r.ports(&t, DATA_PLANE).iter().map(|p| (p.port, p.end_port)).collect();
        assert_eq!(data, vec![(KAFKA_TLS_PORT, None)], "{t} -> data plane");
        assert!(r.ports(&t, FRONTEND).is_empty() && r.ports(&t, INGRESS).is_empty());
        // And nothing of the platform reaches into a tenant but the platform's ingress controller.
        for p in [CONTROL_PLANE, DATA_PLANE, FRONTEND] {
            assert!(r.ports(p, &t).is_empty(), "{p} -> {t}");
        }
    }
}

#[test]
fn dns_is_reachable_from_every_managed_namespace() {
    let layout = three_tenants();
    let r = report(&layout);
    for from in managed(&layout) {
        assert!(r.allows(&from, KUBE_SYSTEM, Udp, 53) && r.allows(&from, KUBE_SYSTEM, Tcp, 53), "{from}");
        assert!(!r.allows(&from, KUBE_SYSTEM, Tcp, 443), "{from} -> kube-system beyond DNS");
    }
}

#[test]
fn the_internet_reaches_the_ingress_controllers_only() {
    let layout = three_tenants();
    let r = report(&layout);
    for port in [80, 443, 8443] {
        assert!(r.allows(INTERNET, INGRESS, Tcp, port), "internet -> matih-ingress {port}");
        assert!(r.allows(INTERNET, &tenant_namespace("bigcorp"), Tcp, port), "internet -> bigcorp {port}");
    }
    assert!(!r.allows(INTERNET, INGRESS, Tcp, 8080));
    for ns in managed(&layout).iter().filter(|n| **n != INGRESS && **n != tenant_namespace("bigcorp")) {
        assert!(r.ports(INTERNET, ns).is_empty(), "internet -> {ns}: {:?}", r.ports(INTERNET, ns));
    }
    // Namespaces not given the internet reach nothing outside, but for the controllers' API
    // server access.
    for ns in managed(&layout).iter().filter(|n| *n != CONTROL_PLANE && *n != DATA_PLANE) {
        let expected: &[PortRange] = if ns == INGRESS || *ns == tenant_namespace("bigcorp") {
            &[PortRange { protocol: Tcp, port: 443, end_port: None }]
        } else {
            &[]
        };
        assert_eq!(r.ports(ns, INTERNET), expected, "{ns} -> internet");
    }
}

#[test]
fn generated_objects_round_trip_and_are_named_and_labelled() {
    let layout = three_tenants();
    let policies = all_policies(&layout);
    let mut seen = std::collections::BTreeSet::new();
    for p in &policies {
        let json = serde_json::to_string(p).unwrap();
        let back: k8s_openapi::api::networking::v1::NetworkPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, p, "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["apiVersion"], "networking.k8s.io/v1");
        assert_eq!(value["kind"], "NetworkPolicy");

        let name = p.metadata.name.as_deref().unwrap();
        let ns = p.metadata.namespace.as_deref().unwrap();
        assert!(is_dns1123_label(name), "{name}");
        assert!(managed(&layout).iter().any(|m| m == ns), "{ns}");
        assert!(seen.insert((ns, name)), "{ns}/{name} twice");
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("matih-infra"));
        assert_eq!(labels.get("app.kubernetes.io/part-of").map(String::as_str), Some("matih"));
        // Nothing anywhere names the plaintext port.
        assert!(!json.contains(&format!("\"port\":{KAFKA_PLAINTEXT_PORT}")), "{json}");
    }
    // Every managed namespace starts from default deny, in both directions.
    for ns in managed(&layout) {
        let deny = policies
            .iter()
            .find(|p| {
                p.metadata.namespace.as_deref() == Some(&ns) && p.metadata.name.as_deref() == Some("default-deny")
            })
            .unwrap_or_else(|| panic!("{ns} has no default-deny"));
        let spec = deny.spec.as_ref().unwrap();
        assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".to_string(), "Egress".to_string()][..]));
        assert!(spec.ingress.is_none() && spec.egress.is_none());
    }
    // Deterministic, and the split functions add up to the whole.
    assert_eq!(all_policies(&layout), policies);
    let mut parts = platform_policies(&layout);
    for t in &layout.tenants {
        parts.extend(tenant_policies(&layout, t));
    }
    assert_eq!(parts, policies);
    // Reordering tenants in the spec moves only the tenants' own policies.
    let mut reordered = layout.clone();
    reordered.tenants.reverse();
    assert_eq!(platform_policies(&reordered), platform_policies(&layout));
}

/// RFC 1123 label: what Kubernetes requires of these names.
fn is_dns1123_label(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| ok(c) || c == '-') && s.starts_with(ok) && s.ends_with(ok)
}

#[test]
fn namespace_labels_mark_role_and_tenant() {
    let platform = namespace_labels(CONTROL_PLANE, None);
    assert_eq!(
        platform.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        ["app.kubernetes.io/managed-by=matih-infra", "matih.ai/role=platform"]
    );
    let acme = namespace_labels(&tenant_namespace("acme"), Some("acme"));
    assert_eq!(
        acme.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        ["app.kubernetes.io/managed-by=matih-infra", "matih.ai/role=tenant", "matih.ai/tenant=acme"]
    );
}

#[test]
fn a_platform_without_tenants_still_isolates_and_serves() {
    let r = report(&Layout::default());
    assert_eq!(r.namespaces.len(), PLATFORM_NAMESPACES.len() + 2);
    assert!(r.allows(INGRESS, CONTROL_PLANE, Tcp, 8080));
    assert!(r.allows(INTERNET, INGRESS, Tcp, 443));
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn json_document_is_versioned_and_stable() {
    let r = report(&with_tenants(vec![tenant("acme", false)]));
    let value = serde_json::to_value(&r).unwrap();
    assert_eq!(value["version"], 2);
    assert_eq!(value["namespaces"][0], CONTROL_PLANE);
    assert_eq!(value["namespaces"].as_array().unwrap().last().unwrap(), INTERNET);
    let entry = value["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == INGRESS && e["to"] == CONTROL_PLANE)
        .expect("matih-ingress -> control plane");
    assert_eq!(entry["ports"], serde_json::json!([{ "protocol": "TCP", "port": 8080, "end_port": 8089 }]));
    let dns = value["entries"].as_array().unwrap().iter().find(|e| e["from"] == FRONTEND && e["to"] == KUBE_SYSTEM);
    // A single port has no `end_port`; TCP before UDP.
    assert_eq!(
        dns.unwrap()["ports"],
        serde_json::json!([{ "protocol": "TCP", "port": 53 }, { "protocol": "UDP", "port": 53 }])
    );
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        serde_json::to_string(&report(&with_tenants(vec![tenant("acme", false)]))).unwrap()
    );
}

#[test]
fn text_report_for_one_tenant() {
    let r: Reachability = report(&with_tenants(vec![tenant("acme", false)]));
    let expected = r#"Ports allowed by network policy, from each namespace to each (-: none).

FROM                 TO                   ALLOWED
matih-control-plane  matih-control-plane  TCP 1-9091, 9093-65535; UDP all
                     matih-data-plane     TCP 5432, 6333, 6379, 7687, 8000, 8080, 9093, 15002
                     matih-frontend       TCP 8080
                     matih-ingress        -
                     matih-tenant-acme    -
                     kube-system          TCP 53; UDP 53
                     (internet)           TCP 1-9091, 9093-65535; UDP all

matih-data-plane     matih-control-plane  TCP 8080-8089
                     matih-data-plane     TCP 1-9091, 9093-65535; UDP all
                     matih-frontend       TCP 8080
                     matih-ingress        -
                     matih-tenant-acme    -
                     kube-system          TCP 53; UDP 53
                     (internet)           TCP 1-9091, 9093-65535; UDP all

matih-frontend       matih-control-plane  TCP 8080-8089
                     matih-data-plane     TCP 5432, 6333, 6379, 7687, 8000, 8080, 9093, 15002
                     matih-frontend       TCP 1-9091, 9093-65535; UDP all
                     matih-ingress        -
                     matih-tenant-acme    -
                     kube-system          TCP 53; UDP 53
                     (internet)           -

matih-ingress        matih-control-plane  TCP 8080-8089
                     matih-data-plane     TCP 8000, 8080, 9093
                     matih-frontend       TCP 8080
                     matih-ingress        TCP 1-9091, 9093-65535; UDP all
                     matih-tenant-acme    TCP 8080
                     kube-system          TCP 53; UDP 53
                     (internet)           TCP 443

matih-tenant-acme    matih-control-plane  TCP 8080-8089
                     matih-data-plane     TCP 9093
                     matih-frontend       -
                     matih-ingress        -
                     matih-tenant-acme    TCP 1-9091, 9093-65535; UDP all
                     kube-system          TCP 53; UDP 53
                     (internet)           -

kube-system          matih-control-plane  -
                     matih-data-plane     -
                     matih-frontend       -
                     matih-ingress        -
                     matih-tenant-acme    -
                     kube-system          TCP all; UDP all
                     (internet)           TCP all; UDP all

(internet)           matih-control-plane  -
                     matih-data-plane     -
                     matih-frontend       -
                     matih-ingress        TCP 80, 443, 8443
                     matih-tenant-acme    -
                     kube-system          TCP all; UDP all
"#;
    assert_eq!(r.render_text(), expected, "\n{}", r.render_text());
}
