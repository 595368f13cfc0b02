//! The broken specs under `tests/specs/<case>/` render exactly as `expected.txt` says, and the
//! examples under `examples/` load clean.
//!
//! Paths in `expected.txt` are relative to the case directory. To accept new output after a
//! deliberate change, run with `UPDATE_EXPECT=1` and review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use matih_spec::{CloudKind, SpecError, load};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("spec/ has a parent").to_path_buf()
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(workspace().join("tests/specs"))
        .expect("tests/specs exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// The plain rendering of a case's problems, with the case directory stripped from paths.
fn render(case: &Path) -> String {
    match load(&case.join("matih.yaml")) {
        Ok(_) => "(loaded without problems)\n".to_string(),
        Err(e) if !matches!(e, SpecError::Invalid(_)) => panic!("{}: {e}", case.display()),
        Err(e) => {
            let SpecError::Invalid(d) = e else { unreachable!() };
            let prefix = format!("{}/", case.display());
            format!("{}\n", d.to_string().replace(&prefix, ""))
        }
    }
}

#[test]
fn broken_specs_render_as_expected() {
    let cases = cases();
    assert!(cases.len() >= 8, "expected the broken-spec fixtures, found {}", cases.len());
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let actual = render(case);
        let expected_path = case.join("expected.txt");
        if update {
            fs::write(&expected_path, &actual).expect("write expected.txt");
            continue;
        }
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_EXPECT=1 to create it)", expected_path.display()));
        if actual != expected {
            failures.push(format!(
                "== {}\n-- expected\n{expected}-- actual\n{actual}",
                case.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "{} case(s) differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_broken_spec_is_rejected_with_a_located_problem() {
    for case in cases() {
        let Err(SpecError::Invalid(d)) = load(&case.join("matih.yaml")) else {
            panic!("{} should be invalid", case.display());
        };
        for item in d.items() {
            assert!(item.line() >= 1 && item.column() >= 1);
            assert!(item.help().is_some(), "{}: `{}` has no help", case.display(), item.message());
        }
    }
}

#[test]
fn the_examples_load_clean() {
    let examples = workspace().join("examples");
    let loaded = load(&examples.join("matih.yaml")).unwrap_or_else(|e| panic!("examples/matih.yaml: {e}"));
    let spec = &loaded.spec;
    assert_eq!(spec.clouds.configured(), CloudKind::ALL);
    assert_eq!(spec.zone_name(), "matih.ai");
    assert_eq!(spec.parent_zone(), None);
    let tenants: Vec<(&str, bool)> = spec.tenants.iter().map(|t| (t.slug.as_str(), t.dedicated_ingress)).collect();
    assert_eq!(tenants, [("acme", true), ("bigcorp", false)]);
    for cloud in CloudKind::ALL {
        let cluster = spec.cluster(cloud).expect("every cloud is configured");
        assert_eq!(cluster.kubernetes_version, "1.33");
        assert!(!cluster.node_pools.is_empty());
    }

    let staging = load(&examples.join("staging/matih.yaml")).unwrap_or_else(|e| panic!("examples/staging: {e}"));
    assert_eq!(staging.spec.clouds.configured(), [CloudKind::Eks]);
    assert_eq!(staging.spec.zone_name(), "staging.matih.ai");
    assert_eq!(staging.spec.parent_zone().as_deref(), Some("matih.ai"));
    assert!(staging.spec.tenants.is_empty());
    assert_ne!(staging.hash, loaded.hash);
}
