//! `--cloud eks` end to end: the binary against the moto server (started per test on 127.0.0.1)
//! through the real AWS SDK. What moto holds is checked by listing it with the SDK.
//!
//! moto's gaps, covered honestly rather than faked: EKS clusters, node groups and NAT gateways
//! are ACTIVE/available at once (waits return on the first look), there is no EKS add-on API, and
//! UpdateClusterVersion is not implemented, so version upgrades are not exercised here.
#![cfg(feature = "aws")]

use std::collections::BTreeMap;
use std::process::Stdio;

use aws_sdk_ec2::types::Filter;
use matih_emulators::Moto;
use serde_json::{Value, json};

mod common;
use common::*;

const EKS: &[&str] = &["--cloud", "eks"];

fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
    a.iter().copied().chain(EKS.iter().copied()).collect()
}

fn work(moto: &Moto) -> Work {
    let mut w = Work::new();
    w.env = moto.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    w
}

/// SDK clients pointed at the test's moto, to look at (and tamper with) what it holds.
struct Aws {
    rt: tokio::runtime::Runtime,
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
    eks: aws_sdk_eks::Client,
    r53: aws_sdk_route53::Client,
}

macro_rules! client {
    ($krate:ident, $moto:expr) => {{
        use $krate::config::{BehaviorVersion, Credentials, Region};
        $krate::Client::from_conf(
            $krate::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url($moto.endpoint())
                .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
                .build(),
        )
    }};
}

impl Aws {
    fn new(moto: &Moto) -> Self {
        Aws {
            rt: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            ec2: client!(aws_sdk_ec2, moto),
            iam: client!(aws_sdk_iam, moto),
            eks: client!(aws_sdk_eks, moto),
            r53: client!(aws_sdk_route53, moto),
        }
    }

    fn tag(k: &str, v: &str) -> Filter {
        Filter::builder().name(format!("tag:{k}")).values(v).build()
    }

    /// Everything of the platform in moto, counted by kind.
    fn inventory(&self) -> BTreeMap<&'static str, usize> {
        self.rt.block_on(async {
            let f = || vec![Self::tag("matih:platform", "matih")];
            let mut m = BTreeMap::new();
            m.insert("vpc", self.ec2.describe_vpcs().set_filters(Some(f())).send().await.unwrap().vpcs().len());
            m.insert(
                "subnet",
                self.ec2.describe_subnets().set_filters(Some(f())).send().await.unwrap().subnets().len(),
            );
            m.insert(
                "internet_gateway",
                self.ec2
                    .describe_internet_gateways()
                    .set_filters(Some(f()))
                    .send()
                    .await
                    .unwrap()
                    .internet_gateways()
                    .len(),
            );
            m.insert(
                "eip",
                self.ec2.describe_addresses().set_filters(Some(f())).send().await.unwrap().addresses().len(),
            );
            let nats = self.ec2.describe_nat_gateways().set_filter(Some(f())).send().await.unwrap();
            m.insert(
                "nat_gateway",
                nats.nat_gateways().iter().filter(|n| n.state().is_some_and(|s| s.as_str() != "deleted")).count(),
            );
            m.insert(
                "route_table",
                self.ec2.describe_route_tables().set_filters(Some(f())).send().await.unwrap().route_tables().len(),
            );
            m.insert(
                "security_group",
                self.ec2
                    .describe_security_groups()
                    .set_filters(Some(f()))
                    .send()
                    .await
                    .unwrap()
                    .security_groups()
                    .len(),
            );
            m.insert("iam_role", self.iam.list_roles().path_prefix("/matih/").send().await.unwrap().roles().len());
            m.insert(
                "oidc_provider",
                self.iam.list_open_id_connect_providers().send().await.unwrap().open_id_connect_provider_list().len(),
            );
            m.insert("cluster", self.eks.list_clusters().send().await.unwrap().clusters().len());
            let zones = self.r53.list_hosted_zones().send().await.unwrap();
            m.insert("zone", zones.hosted_zones().iter().filter(|z| z.name() == "matih.ai.").count());
            m
        })
    }

    fn vpcs_at(&self, addr: &str) -> usize {
        self.rt.block_on(async {
            let f = Self::tag("matih:address", addr);
            self.ec2.describe_vpcs().filters(f).send().await.unwrap().vpcs().len()
        })
    }

    /// A records of the platform zone: name → sorted values.
    fn records(&self) -> BTreeMap<String, Vec<String>> {
        self.rt.block_on(async {
            let zones = self.r53.list_hosted_zones_by_name().dns_name("matih.ai").send().await.unwrap();
            let Some(zone) = zones.hosted_zones().iter().find(|z| z.name() == "matih.ai.") else {
                return BTreeMap::new();
            };
            let sets = self.r53.list_resource_record_sets().hosted_zone_id(zone.id()).send().await.unwrap();
            sets.resource_record_sets()
                .iter()
                .filter(|r| r.r#type().as_str() == "A")
                .map(|r| {
                    let mut v: Vec<String> = r.resource_records().iter().map(|x| x.value().to_string()).collect();
                    v.sort();
                    (r.name().trim_end_matches('.').to_string(), v)
                })
                .collect()
        })
    }
}

fn changed(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| (c["address"].as_str().unwrap().to_string(), c["action"].as_str().unwrap().to_string()))
        .collect()
}

fn calls(plan: &Value, key: &str) -> u64 {
    plan["statistics"]["api_calls"].get(key).and_then(Value::as_u64).unwrap_or(0)
}

#[test]
fn apply_converges_then_destroy_leaves_nothing_tagged() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let w = work(&moto);

    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["outcome"], "complete");
    assert_eq!(v["summary"]["create"], 36, "{:#}", v["summary"]);
    let inv = aws.inventory();
    let expected: BTreeMap<&str, usize> = [
        ("vpc", 1),
        ("subnet", 6),
        ("internet_gateway", 1),
        ("eip", 9),
        ("nat_gateway", 3),
        ("route_table", 4),
        ("security_group", 1),
        ("iam_role", 3),
        ("oidc_provider", 1),
        ("cluster", 1),
        ("zone", 1),
    ]
    .into();
    assert_eq!(inv, expected);

    // DNS points at the reserved addresses: api and bigcorp at the platform's, acme at its own.
    let out = &v["outputs"];
    let ips = |ctrl: &str| {
        let mut v: Vec<String> = out["ingress_addresses"][ctrl]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let records = aws.records();
    assert_eq!(records["api.matih.ai"], ips("platform"));
    assert_eq!(records["bigcorp.matih.ai"], ips("platform"));
    assert_eq!(records["acme.matih.ai"], ips("acme"));
    assert_eq!(out["zone_name_servers"].as_array().unwrap().len(), 4);
    assert!(out["cluster_endpoint"].as_str().unwrap().starts_with("https://"));
    assert!(out["cert_manager_role_arn"].as_str().unwrap().contains(":role/matih/matih-prod-cert-manager"));

    // A second plan: no changes, and refresh read each type with one call, never per resource.
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 0, "{:#?}", changed(&p));
    assert_eq!(calls(&p, "EC2:DescribeSubnets") + calls(&p, "ec2:DescribeSubnets"), 1, "{:#}", p["statistics"]);
    assert_eq!(calls(&p, "EC2:DescribeAddresses") + calls(&p, "ec2:DescribeAddresses"), 1, "{:#}", p["statistics"]);
    assert_eq!(
        calls(&p, "Route 53:ListResourceRecordSets") + calls(&p, "route53:ListResourceRecordSets"),
        1,
        "{:#}",
        p["statistics"]
    );

    // Protected resources stop a plain destroy.
    let out = w.run(&args(&["destroy", "--auto-approve"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert_eq!(aws.inventory(), expected, "a blocked destroy deletes nothing");

    let (c, v) = w.json(&args(&["destroy", "--include-protected", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert!(aws.inventory().values().all(|&n| n == 0), "{:?}", aws.inventory());
    assert!(aws.records().is_empty());
    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    assert_eq!(st["resources"], json!([]));
}

#[test]
fn drift_is_reported_and_repaired() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let w = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    // Behind the tool's back: VPC DNS hostnames off, and the api record gone.
    aws.rt.block_on(async {
        let vpc = aws.ec2.describe_vpcs().filters(Aws::tag("matih:address", "eks.vpc.main")).send().await.unwrap();
        let id = vpc.vpcs()[0].vpc_id().unwrap().to_string();
        aws.ec2
            .modify_vpc_attribute()
            .vpc_id(id)
            .enable_dns_hostnames(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(false).build())
            .send()
            .await
            .unwrap();
    });
    let before = aws.records();
    aws.rt.block_on(async {
        use aws_sdk_route53::types::*;
        let zones = aws.r53.list_hosted_zones_by_name().dns_name("matih.ai").send().await.unwrap();
        let zone = zones.hosted_zones()[0].id().to_string();
        // Route 53 deletes a record set only when given exactly as it is.
        let sets = aws.r53.list_resource_record_sets().hosted_zone_id(&zone).send().await.unwrap();
        let set = sets.resource_record_sets().iter().find(|r| r.name() == "api.matih.ai.").unwrap().clone();
        let change = Change::builder().action(ChangeAction::Delete).resource_record_set(set).build().unwrap();
        aws.r53
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
            .send()
            .await
            .unwrap();
    });
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let drift: Vec<(&str, bool)> = p["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["address"].as_str().unwrap(), d["deleted"].as_bool().unwrap()))
        .collect();
    assert_eq!(drift, [("dns.record.api", true), ("eks.vpc.main", false)]);
    assert_eq!(
        changed(&p),
        [("dns.record.api".to_string(), "create".to_string()), ("eks.vpc.main".to_string(), "update".to_string())]
    );
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    assert_eq!(aws.records(), before);
    let out = w.run(&args(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

#[test]
fn a_tenant_added_plans_only_its_addresses_and_record_and_removal_tears_them_down() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let w = work(&moto);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    std::fs::write(w.path("tenants/globex.yaml"), "slug: globex\ndisplay_name: Globex\ndedicated_ingress: true\n")
        .unwrap();
    let (c, p) = w.json(&args(&["plan", "-o", "json", "--detailed-exitcode"]));
    assert_eq!(c, 2);
    let want: Vec<(String, String)> = [
        r#"dns.record.tenant["globex"]"#,
        r#"eks.eip.ingress["globex/us-east-1a"]"#,
        r#"eks.eip.ingress["globex/us-east-1b"]"#,
        r#"eks.eip.ingress["globex/us-east-1c"]"#,
    ]
    .iter()
    .map(|a| (a.to_string(), "create".to_string()))
    .collect();
    assert_eq!(changed(&p), want);
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 0);
    assert_eq!(aws.inventory()["eip"], 12);
    assert_eq!(aws.records()["globex.matih.ai"].len(), 3);

    std::fs::remove_file(w.path("tenants/globex.yaml")).unwrap();
    // Its addresses are protected: removing them is said explicitly.
    assert_eq!(code(&w.run(&args(&["apply", "--auto-approve", "-q"]))), 3);
    let mut a = args(&["apply", "--auto-approve", "-q"]);
    for az in ["a", "b", "c"] {
        a.push("--allow-replace");
        a.push(Box::leak(format!(r#"eks.eip.ingress["globex/us-east-1{az}"]"#).into_boxed_str()));
    }
    let out = w.run(&a);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(aws.inventory()["eip"], 9);
    assert!(!aws.records().contains_key("globex.matih.ai"));
}

#[test]
fn sigkill_right_after_a_create_is_adopted_not_duplicated() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let w = work(&moto);
    let marker = w.path("hung");
    let mut child = w
        .cmd(&args(&["apply", "--auto-approve", "-q"]))
        .env("MATIH_TEST_HANG_AFTER_CREATE", format!("eks.vpc.main={}", marker.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&marker, &mut child);
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert_eq!(aws.vpcs_at("eks.vpc.main"), 1, "the VPC exists in the cloud");
    // Other creates were in flight too; every one of them left an intent.
    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    assert!(st["pending_intents"].as_array().unwrap().contains(&json!("eks.vpc.main")), "{st:#}");

    let out = w.run(&args(&["apply", "--auto-approve"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("eks.vpc.main: adopted"), "{}", text(&out.stderr));
    assert_eq!(aws.vpcs_at("eks.vpc.main"), 1, "adopted, not created twice");
    let inv = aws.inventory();
    assert_eq!(
        (inv["vpc"], inv["eip"], inv["iam_role"], inv["subnet"]),
        (1, 9, 3, 6),
        "nothing created twice: {inv:?}"
    );
    assert_eq!(code(&w.run(&args(&["plan", "--detailed-exitcode"]))), 0);
}

#[test]
fn an_api_error_names_the_resource_and_code_and_state_keeps_earlier_work() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let w = work(&moto);
    // Someone already has a role with the name the cluster role needs.
    aws.rt.block_on(async {
        aws.iam.create_role().role_name("matih-prod-cluster").assume_role_policy_document("{}").send().await.unwrap();
    });
    let out = w.run(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = |a: &str| v["resources"].as_array().unwrap().iter().find(|r| r["address"] == a).cloned().unwrap();
    let failed = by("eks.iam_role.cluster");
    assert_eq!(failed["result"], "failed");
    let msg = failed["error"].as_str().unwrap();
    assert!(
        msg.contains("eks.iam_role.cluster") && msg.contains("EntityAlreadyExists") && msg.contains("CreateRole"),
        "{msg}"
    );
    assert_eq!(by("eks.cluster.main")["result"], "skipped");
    assert!(text(&out.stderr).contains("everything that finished is recorded in state"));
    let (_, st) = w.json(&args(&["state", "list", "-o", "json"]));
    let recorded: Vec<&str> =
        st["resources"].as_array().unwrap().iter().map(|r| r["address"].as_str().unwrap()).collect();
    assert!(recorded.contains(&"eks.vpc.main") && recorded.contains(&"eks.iam_role.node"), "{recorded:?}");

    // Once the name is free, the next apply finishes the job without redoing anything.
    aws.rt.block_on(async { aws.iam.delete_role().role_name("matih-prod-cluster").send().await.unwrap() });
    let (c, v) = w.json(&args(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    assert!(v["summary"]["create"].as_u64().unwrap() < 36);
    assert_eq!(aws.inventory()["vpc"], 1);
}

#[test]
fn a_staging_environment_delegates_its_zone_from_the_parent() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let w = work(&moto);
    let staging = |a: &[&'static str]| {
        let mut v = args(a);
        v.extend(["-c", "staging/matih.yaml"]);
        v
    };
    // Without the parent environment's zone there is nothing to delegate from.
    let out = w.run(&staging(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d =
        v["resources"].as_array().unwrap().iter().find(|r| r["address"] == "dns.delegation.parent").unwrap().clone();
    assert!(d["error"].as_str().unwrap().contains("create the parent environment's zone first"), "{d:#}");

    // The prod environment (another state) owns matih.ai.
    let parent = aws.rt.block_on(async {
        let z =
            aws.r53.create_hosted_zone().name("matih.ai").caller_reference("prod-environment").send().await.unwrap();
        z.hosted_zone().unwrap().id().to_string()
    });
    let (c, v) = w.json(&staging(&["apply", "--auto-approve", "-o", "json"]));
    assert_eq!(c, 0, "{v:#}");
    let mut servers: Vec<String> =
        v["outputs"]["zone_name_servers"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    servers.sort();
    let ns = |parent: &str| {
        aws.rt.block_on(async {
            let sets = aws.r53.list_resource_record_sets().hosted_zone_id(parent).send().await.unwrap();
            let mut v: Vec<String> = sets
                .resource_record_sets()
                .iter()
                .filter(|r| r.name() == "staging.matih.ai." && r.r#type().as_str() == "NS")
                .flat_map(|r| r.resource_records().iter().map(|x| x.value().trim_end_matches('.').to_string()))
                .collect();
            v.sort();
            v
        })
    };
    assert_eq!(ns(&parent), servers, "the parent zone delegates staging.matih.ai to the staging zone's name servers");
    let out = w.run(&staging(&["plan", "--detailed-exitcode"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));

    assert_eq!(code(&w.run(&staging(&["destroy", "--include-protected", "--auto-approve", "-q"]))), 0);
    assert!(ns(&parent).is_empty(), "the delegation went with the environment");
    let zones = aws.rt.block_on(async { aws.r53.list_hosted_zones().send().await.unwrap() });
    let names: Vec<&str> = zones.hosted_zones().iter().map(|z| z.name()).collect();
    assert_eq!(names, ["matih.ai."], "the parent zone is not ours to delete");
}
