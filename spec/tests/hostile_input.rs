//! Hostile input: the fuzz corpus (`corpus/`, one expectation per file), the inputs too large to
//! commit (`hostile/mod.rs`), and a property test that mutates valid specs the way the fuzzing
//! did and checks that every outcome is a clean, located answer: no panic, no abort, every
//! problem with a position inside its file and a fix, at most `MAX_LISTED` listed.
//!
//! How long and how much memory `validate` takes on each of these is measured by
//! `cargo bench --bench validate`, not here.

mod hostile;

use std::path::{Path, PathBuf};

use matih_spec::{MAX_LISTED, SpecError, load, parse_tenant};
use proptest::prelude::*;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Checks that every listed problem points inside its file and says how to fix it.
fn assert_located(d: &matih_spec::Diagnostics, files: &[(PathBuf, &[u8])]) {
    assert!(!d.items().is_empty() && d.items().len() <= MAX_LISTED && d.len() >= d.items().len());
    for item in d.items() {
        let lines = files
            .iter()
            .find(|(p, _)| p == item.path())
            .map(|(_, b)| b.split(|c| *c == b'\n').count())
            .unwrap_or_else(|| panic!("a problem in a file that was not loaded: {}", item.path().display()));
        assert!(
            item.line() >= 1 && item.line() <= lines && item.column() >= 1,
            "{}:{}:{} outside the file's {lines} lines: {}",
            item.path().display(),
            item.line(),
            item.column(),
            item.message()
        );
        assert!(!item.message().is_empty());
        assert!(item.help().is_some_and(|h| !h.is_empty()), "`{}` has no help", item.message());
    }
}

/// What loading the case says: `valid`, or the problems (or the path error and its hint).
fn outcome(case: &hostile::Case, dir: &Path) -> String {
    let config = case.write(dir);
    let mut files: Vec<(PathBuf, &[u8])> = vec![(config.clone(), case.platform.as_slice())];
    files.extend(case.tenants.iter().map(|(n, b)| (dir.join("tenants").join(n), b.as_slice())));
    match load(&config) {
        Ok(_) => "valid".to_string(),
        Err(SpecError::Invalid(d)) => {
            assert_located(&d, &files);
            d.to_string()
        }
        Err(e) => format!("{e}\nhint: {}", e.hint().unwrap_or_default()),
    }
}

fn check(cases: Vec<hostile::Case>) {
    let mut wrong = Vec::new();
    for case in &cases {
        let dir = tempfile::tempdir().unwrap();
        let got = outcome(case, dir.path());
        if !got.contains(&case.expect) {
            let shown: String = got.chars().take(600).collect();
            wrong.push(format!("== {}: expected `{}`, got:\n{shown}", case.name, case.expect));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn the_corpus_gets_its_expected_answers() {
    let cases = hostile::corpus(&corpus_dir());
    assert!(cases.len() >= 30, "the corpus is there: {}", cases.len());
    check(cases);
}

#[test]
fn inputs_too_large_to_commit_get_their_expected_answers() {
    check(hostile::giants());
}

// ---------------------------------------------------------------------------------------------
// Mutations, after the fuzzing that found the cases above.

/// Values the fuzzing put where a field's value was: wrong types, huge and negative numbers,
/// YAML specials, aliases, tags, odd text.
const HOSTILE_VALUES: &[&str] = &[
    "-1",
    "-1000000000000000000000000000000",
    "18446744073709551616",
    "4294967296",
    "1e309",
    ".inf",
    ".nan",
    "0x10",
    "0o777",
    "true",
    "~",
    "null",
    "\"\"",
    "''",
    "[]",
    "{}",
    "[1, [2, [3, [4]]]]",
    "{ a: { b: { c: d } } }",
    "*undefined",
    "&a x",
    "!!binary aGVsbG8=",
    "!!int 3",
    "!!str 3",
    "\"\\u0000\"",
    "\"\\t\\r\"",
    "中文",
    "mätïh",
    "1.3",
    "1.33",
    "\"1.33\"",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "10.0.0.1/16",
    "::1",
    "v3.32.1/../..",
    "Standard_D4s_v5",
    "e2-standard-4",
    "m6i.large",
    "controller-v1.15.1",
    "|\n  block\n  text",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

/// Fragments spliced in anywhere.
const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "*x",
    "&x ",
    "!!binary ",
    ": ",
    "- ",
    "\t",
    "\u{feff}",
    "---\n",
    "<<: ",
    "'",
    "\"",
    "#",
    "\n  ",
    "? ",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value of the n-th `key: value` line.
    Value(usize, usize),
    DeleteLine(usize),
    /// Repeat a line up to 50 times.
    RepeatLine(usize, usize),
    SwapLines(usize, usize),
    /// Change a line's indentation by -4..=4 spaces.
    Indent(usize, i8),
    /// Put an anchor on one value and its alias in place of another.
    AnchorAlias(usize, usize),
    /// Splice a fragment in at a byte position.
    Splice(usize, usize),
    /// Overwrite a byte.
    Byte(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = 0usize..10_000;
    prop_oneof![
        4 => (n.clone(), 0..HOSTILE_VALUES.len()).prop_map(|(a, b)| Mutation::Value(a, b)),
        1 => n.clone().prop_map(Mutation::DeleteLine),
        1 => (n.clone(), 1usize..50).prop_map(|(a, b)| Mutation::RepeatLine(a, b)),
        1 => (n.clone(), n.clone()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (n.clone(), -4i8..=4).prop_map(|(a, b)| Mutation::Indent(a, b)),
        2 => (n.clone(), n.clone()).prop_map(|(a, b)| Mutation::AnchorAlias(a, b)),
        2 => (n.clone(), 0..FRAGMENTS.len()).prop_map(|(a, b)| Mutation::Splice(a, b)),
        1 => (n.clone(), any::<u8>()).prop_map(|(a, b)| Mutation::Byte(a, b)),
        1 => n.prop_map(Mutation::Truncate),
    ]
}

/// Lines that hold `key: value` (after an optional `- `), as (line index, byte offset of value).
fn value_lines(lines: &[String]) -> Vec<(usize, usize)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let at = l.find(": ")?;
            (at + 2 < l.len() && !l.trim_start().starts_with('#')).then_some((i, at + 2))
        })
        .collect()
}

fn apply(text: &[u8], m: &Mutation) -> Vec<u8> {
    let mut lines: Vec<String> = String::from_utf8_lossy(text).lines().map(str::to_string).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let len = lines.len();
    match *m {
        Mutation::Value(i, v) => {
            let vals = value_lines(&lines);
            if let Some(&(line, at)) = vals.get(i % vals.len().max(1)) {
                lines[line].replace_range(at.., HOSTILE_VALUES[v]);
            }
        }
        Mutation::DeleteLine(i) => {
            lines.remove(i % len);
        }
        Mutation::RepeatLine(i, n) => {
            let l = lines[i % len].clone();
            for _ in 0..n {
                lines.insert(i % len, l.clone());
            }
        }
        Mutation::SwapLines(a, b) => lines.swap(a % len, b % len),
        Mutation::Indent(i, d) => {
            let l = &mut lines[i % len];
            if d > 0 {
                l.insert_str(0, &" ".repeat(d as usize));
            } else {
                let strip = l.len() - l.trim_start_matches(' ').len();
                l.replace_range(..strip.min((-d) as usize), "");
            }
        }
        Mutation::AnchorAlias(a, b) => {
            let vals = value_lines(&lines);
            if !vals.is_empty() {
                let (la, at_a) = vals[a % vals.len()];
                let (lb, at_b) = vals[b % vals.len()];
                if la != lb {
                    lines[lb].replace_range(at_b.., "*fz");
                    lines[la].insert_str(at_a, "&fz ");
                }
            }
        }
        Mutation::Splice(..) | Mutation::Byte(..) | Mutation::Truncate(_) => {
            let mut bytes = lines.join("\n").into_bytes();
            let at = |p: usize| p % (bytes.len() + 1);
            match *m {
                Mutation::Splice(p, f) => {
                    let p = at(p);
                    bytes.splice(p..p, FRAGMENTS[f].bytes());
                }
                Mutation::Byte(p, b) if !bytes.is_empty() => {
                    let p = p % bytes.len();
                    bytes[p] = b;
                }
                Mutation::Truncate(p) => bytes.truncate(at(p)),
                _ => {}
            }
            return bytes;
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

fn seeds() -> Vec<Vec<u8>> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/matih.yaml");
    vec![hostile::BASE.as_bytes().to_vec(), std::fs::read(examples).unwrap()]
}

proptest! {
    // Failures shrink to a minimal file, which is printed; add it to `corpus/` with its expected
    // answer rather than keep a seed file nobody reads.
    // A fixed seed keeps CI repeatable; PROPTEST_RNG_SEED=<n> PROPTEST_CASES=<n> explore further.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(
            std::env::var("PROPTEST_RNG_SEED").ok().and_then(|c| c.parse().ok()).unwrap_or(12),
        ),
        ..ProptestConfig::default()
    })]

    /// Any mutation of a valid platform file loads, or fails with located problems; a spec that
    /// loads keeps the bounds the checks promise.
    #[test]
    fn mutated_platform_files_get_clean_answers(
        seed in 0usize..2,
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        let mut text = seeds()[seed].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("matih.yaml");
        std::fs::write(&config, &text).unwrap();
        match load(&config) {
            Ok(loaded) => {
                for cloud in loaded.spec.clouds.configured() {
                    let view = loaded.spec.cluster(cloud).unwrap();
                    prop_assert!(!view.node_pools.is_empty() && view.node_pools.len() <= 100);
                    prop_assert!(view.node_pools.iter().all(|p| p.max <= 1000 && !p.machine_type.is_empty()));
                }
                let a = &loaded.spec.addons;
                prop_assert!(a.calico.version.starts_with('v') && a.cert_manager.version.starts_with('v'));
                prop_assert!(a.ingress_nginx.version.starts_with("controller-v"));
                for v in [&a.calico.version, &a.cert_manager.version, &a.ingress_nginx.version] {
                    prop_assert!(!v.contains('/') && !v.contains(".."), "{v}");
                }
            }
            Err(SpecError::Invalid(d)) => assert_located(&d, &[(config.clone(), text.as_slice())]),
            Err(e) => prop_assert!(false, "a readable file must not give a path error: {e}"),
        }
    }

    /// The same for tenant files, through the per-file check `tenant add` uses.
    #[test]
    fn mutated_tenant_files_get_clean_answers(
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let mut text = b"slug: acme\ndisplay_name: Acme Corp\ndedicated_ingress: true\n".to_vec();
        for m in &mutations {
            text = apply(&text, m);
        }
        let source = String::from_utf8_lossy(&text).into_owned();
        match parse_tenant(Path::new("tenants/acme.yaml"), &source) {
            Ok(t) => {
                prop_assert_eq!(t.slug.as_str(), "acme");
                prop_assert!(!t.display_name.trim().is_empty() && !t.display_name.chars().any(char::is_control));
            }
            Err(d) => assert_located(&d, &[(PathBuf::from("tenants/acme.yaml"), source.as_bytes())]),
        }
    }
}
