//! What shared state costs: the EKS platform with 1,000 tenants (every tenth with a dedicated
//! ingress) applied and then planned with no changes, once with state in a local file and once in
//! S3 (moto's, on 127.0.0.1, with versioning on), with the number of state writes the apply made.
//! Work finishing while a write is in flight rides on the next write, so the writes stay far fewer
//! than the resources and a slower store does not serialise the walk.
//!
//! `cargo bench --bench state` (needs moto: `scripts/test` installs it);
//! `MATIH_BENCH_TENANTS=100` picks another size.

mod common;

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use matih_emulators::Moto;
use matih_kube_emulator::KubeEmulator;

const BUCKET: &str = "matih-state";

/// The state bucket, versioned, as a team would set it up.
fn create_bucket(moto: &Moto) {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(moto.endpoint())
            .force_path_style(true)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "bench"))
            .build(),
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
        s3.put_bucket_versioning().bucket(BUCKET).versioning_configuration(conf).send().await.unwrap();
    });
}

fn eks() -> common::Cloud {
    common::eks(|| {
        let moto = Moto::start();
        create_bucket(&moto);
        let env = moto.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        (env, Box::new(moto))
    })
}

struct Figures {
    apply: Duration,
    writes: u64,
    resources: u64,
    plan: Duration,
}

fn measure(n: usize, state: &[&str]) -> Figures {
    let cloud = eks();
    let (env, _guard) = (cloud.start)();
    let kube = KubeEmulator::start((cloud.kube)());
    let dir = tempfile::tempdir().unwrap();
    common::platform(dir.path(), n);
    let mut args = vec!["apply", "--auto-approve", "--parallelism", "20"];
    args.extend_from_slice(state);
    let (apply, applied) = common::run(dir.path(), &cloud, &env, &kube, &args);
    assert_eq!(applied["outcome"], "complete", "{applied:#}");
    let writes = applied["statistics"]["state_writes"].as_u64().unwrap();
    let resources = applied["summary"]["create"].as_u64().unwrap();
    let mut plan = vec!["plan", "--detailed-exitcode"];
    plan.extend_from_slice(state);
    common::run(dir.path(), &cloud, &env, &kube, &plan);
    let mut walls: Vec<Duration> = (0..3)
        .map(|_| {
            let (wall, p) = common::run(dir.path(), &cloud, &env, &kube, &plan);
            assert_eq!(p["summary"]["create"], 0, "converged");
            wall
        })
        .collect();
    walls.sort();
    Figures { apply, writes, resources, plan: walls[1] }
}

fn main() {
    let n: usize = std::env::var("MATIH_BENCH_TENANTS").ok().map(|v| v.parse().expect("a number")).unwrap_or(1000);
    let url = format!("s3://{BUCKET}/bench/prod-eks.json");
    let local = measure(n, &[]);
    let s3 = measure(n, &["--state", &url]);
    println!("EKS on moto, {n} tenants, state local vs S3 (release binary; wall includes process start):");
    println!("{:>6} {:>10} {:>10} {:>14} {:>15}", "state", "resources", "apply", "state writes", "no-op plan");
    for (name, f) in [("local", &local), ("s3", &s3)] {
        println!(
            "{:>6} {:>10} {:>8.1} s {:>14} {:>12.0} ms",
            name,
            f.resources,
            f.apply.as_secs_f64(),
            f.writes,
            f.plan.as_secs_f64() * 1e3
        );
    }
    println!(
        "S3 / local: apply {:.2}×, no-op plan {:.2}×; {:.1} resources per state write in S3",
        s3.apply.as_secs_f64() / local.apply.as_secs_f64(),
        s3.plan.as_secs_f64() / local.plan.as_secs_f64(),
        s3.resources as f64 / s3.writes.max(1) as f64
    );
}
