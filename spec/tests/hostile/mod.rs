//! Hostile platform specs, shared by the spec loader's tests (`spec/tests/hostile.rs`) and the
//! validate benchmark (`benches/validate.rs`): the fuzz corpus committed under
//! `spec/tests/corpus/`, and inputs too large to commit, made by code.
//!
//! Every corpus file starts with `# expect: <text>`: the text `validate` must print for it
//! (`valid` for a spec that loads). A case is written out as `matih.yaml` in a directory of its
//! own, with its tenant files, if any, under `tenants/`.
#![allow(dead_code)] // each user takes a part

use std::fs;
use std::path::{Path, PathBuf};

/// A small valid platform file to grow hostile inputs from.
pub const BASE: &str = "\
platform: { name: matih, domain: matih.ai, environment: prod, acme_email: platform-team@matih.ai }
clouds:
  eks:
    region: us-east-1
    kubernetes_version: \"1.33\"
    network: { vpc_cidr: 10.0.0.0/16, service_cidr: 172.20.0.0/16 }
    node_pools:
      - { name: system, machine_type: m6i.large, min: 2, max: 4 }
";

/// One hostile input.
pub struct Case {
    pub name: String,
    /// The platform file's bytes.
    pub platform: Vec<u8>,
    /// Tenant files: (file name, bytes).
    pub tenants: Vec<(String, Vec<u8>)>,
    /// Text the outcome must contain (`valid` for a spec that loads).
    pub expect: String,
}

impl Case {
    /// Writes the case into `dir` (as `matih.yaml` and `tenants/`) and returns the platform
    /// file's path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        let config = dir.join("matih.yaml");
        fs::write(&config, &self.platform).unwrap();
        if !self.tenants.is_empty() {
            fs::create_dir_all(dir.join("tenants")).unwrap();
            for (name, bytes) in &self.tenants {
                fs::write(dir.join("tenants").join(name), bytes).unwrap();
            }
        }
        config
    }
}

/// The committed corpus, by file name.
pub fn corpus(dir: &Path) -> Vec<Case> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
            let expect = String::from_utf8_lossy(first)
                .strip_prefix("# expect: ")
                .unwrap_or_else(|| panic!("{}: the first line must be `# expect: <text>`", p.display()))
                .to_string();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            Case { name, platform: bytes, tenants: Vec::new(), expect }
        })
        .collect()
}

fn pool_lines(n: usize) -> String {
    (0..n).map(|i| format!("      - {{ name: p{i}, machine_type: m6i.large, min: 1, max: 2 }}\n")).collect()
}

/// Inputs too large to commit: the ones the fuzzing found, and their like.
pub fn giants() -> Vec<Case> {
    let case = |name: &str, platform: String, expect: &str| Case {
        name: name.into(),
        platform: platform.into_bytes(),
        tenants: Vec::new(),
        expect: expect.into(),
    };
    let mut laughs = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        laughs.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); 10].join(", ")));
    }
    let mut out = vec![
        // A billion laughs: 10^10 values from 500 bytes.
        case("billion-laughs", laughs, "this alias makes the file hold more than 100000 values"),
        // A 10 MB node-pool list, and 200,000 pools in 13 MB: never read.
        case("node-pools-10mb", format!("{BASE}{}", pool_lines(150_000)), "is read up to 1048576 bytes"),
        case("node-pools-200k", format!("{BASE}{}", pool_lines(200_000)), "is read up to 1048576 bytes"),
        // Under the size limit: 10,000 pools (90,000 values) are counted, not compared pairwise.
        case("node-pools-10k", format!("{BASE}{}", pool_lines(10_000)), "lists 10001 node pools"),
        // Just under 1 MiB of values in one flow list.
        case(
            "flow-values-1mib",
            format!("x: [{}]\n", vec!["1"; 500_000].join(",")),
            "the file holds more than 100000 values",
        ),
        // 100,000 levels of brackets.
        case("deep-brackets", format!("x: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)), "YAML syntax error"),
        // 30,000 distinct unknown keys in one mapping.
        case(
            "unknown-keys-30k",
            format!("{BASE}{}", (0..30_000).map(|i| format!("extra_{i}: 1\n")).collect::<String>()),
            "more problems, not listed",
        ),
        // The same key 40,000 times.
        case(
            "duplicate-keys-40k",
            format!("platform:\n{}", "  name: matih\n".repeat(40_000)),
            "more problems, not listed",
        ),
    ];
    // 10,000 tenants, all valid: the large valid case.
    let tenants = (0..10_000)
        .map(|i| (format!("t{i:05}.yaml"), format!("slug: t{i:05}\ndisplay_name: Tenant {i}\n").into_bytes()))
        .collect();
    out.push(Case { name: "tenants-10k".into(), platform: BASE.as_bytes().to_vec(), tenants, expect: "valid".into() });
    // 2,000 tenants that all claim one slug.
    let dupes = (0..2_000).map(|i| (format!("t{i:05}.yaml"), b"slug: acme\ndisplay_name: Acme\n".to_vec())).collect();
    out.push(Case {
        name: "tenants-2k-one-slug".into(),
        platform: BASE.as_bytes().to_vec(),
        tenants: dupes,
        expect: "more problems, not listed".into(),
    });
    out
}
