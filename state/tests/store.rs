//! The local store in one process: atomic save with backup, refusals that leave files alone,
//! and the lock as seen from a single process.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use matih_state::format::{self, FORMAT_VERSION};
use matih_state::{LocalStore, LockInfo, LockOptions, State, StateError};

fn opts(timeout: Duration) -> LockOptions {
    LockOptions { timeout, command: "matih-infra test".into() }
}

fn store_in(dir: &Path) -> LocalStore {
    LocalStore::new(dir.join(".matih").join("state").join("prod-aws.json"))
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file in the state directory with its content, to prove a refusal changed nothing.
/// (Directories are listed with their own snapshot, flattened.)
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for p in fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if p.is_dir() {
            files.insert(p.clone(), b"<directory>".to_vec());
            files.extend(snapshot(&p));
        } else {
            files.insert(p.clone(), fs::read(&p).unwrap());
        }
    }
    files
}

#[test]
fn paths_sit_next_to_the_state_file() {
    let s = LocalStore::new("/x/.matih/state/prod-aws.json");
    assert_eq!(s.path(), Path::new("/x/.matih/state/prod-aws.json"));
    assert_eq!(s.backup_path(), Path::new("/x/.matih/state/prod-aws.json.backup"));
    assert_eq!(s.lock_path(), Path::new("/x/.matih/state/prod-aws.json.lock"));
}

#[test]
fn nothing_on_disk_loads_as_none() {
    let dir = tempfile::tempdir().unwrap();
    assert!(store_in(dir.path()).load().unwrap().is_none());
}

#[test]
fn save_then_load_round_trips_with_serial_mode_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    let state_dir = store.path().parent().unwrap();
    assert_eq!(mode(state_dir), 0o700, "directories are created private");

    let mut state = common::sample_state();
    assert_eq!(state.serial, 0);
    store.save(&mut state, &lock).unwrap();
    assert_eq!(state.serial, 1);
    assert_eq!(mode(store.path()), 0o600);
    assert!(!store.backup_path().exists(), "no previous version on the first save");
    let first = fs::read(store.path()).unwrap();

    let loaded = store.load().unwrap().unwrap();
    assert_eq!(loaded, state);

    state.outputs.remove("token");
    store.save(&mut state, &lock).unwrap();
    assert_eq!(state.serial, 2);
    assert_eq!(store.load().unwrap().unwrap(), state);
    assert_eq!(fs::read(store.backup_path()).unwrap(), first, "the backup is the previous file, byte for byte");
    assert_eq!(mode(store.backup_path()), 0o600);

    // Only the state, its backup and the lock are left behind.
    assert_eq!(names(state_dir), ["prod-aws.json", "prod-aws.json.backup", "prod-aws.json.lock"]);

    // From the third save on, the outgoing backup is kept as the next save's scratch file.
    let second = fs::read(store.path()).unwrap();
    store.save(&mut state, &lock).unwrap();
    assert_eq!(fs::read(store.backup_path()).unwrap(), second);
    let tmp = PathBuf::from(format!("{}.tmp", store.path().display()));
    assert_eq!(fs::read(&tmp).unwrap(), first, "the scratch file is the outgoing backup");
    // ...and written over in place by the next save, whatever their sizes.
    state.outputs.clear();
    state.resources.clear();
    store.save(&mut state, &lock).unwrap();
    assert_eq!(store.load().unwrap().unwrap(), state);
    store.save(&mut state, &lock).unwrap();
    assert_eq!(store.load().unwrap().unwrap(), state);
    assert_eq!(mode(store.path()), 0o600);
    assert_eq!(mode(&tmp), 0o600);
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn a_scratch_file_with_another_name_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    let mut state = common::sample_state();
    store.save(&mut state, &lock).unwrap();
    // Someone keeps a copy of an old state by hard-linking the scratch file.
    let tmp = PathBuf::from(format!("{}.tmp", store.path().display()));
    let keep = dir.path().join("my-copy.json");
    fs::write(&keep, b"my precious copy").unwrap();
    fs::hard_link(&keep, &tmp).unwrap();
    store.save(&mut state, &lock).unwrap();
    assert_eq!(fs::read(&keep).unwrap(), b"my precious copy");
    assert_eq!(store.load().unwrap().unwrap(), state);
}

#[test]
fn saved_file_is_mode_0600_whatever_the_umask_and_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    // A temporary file left by a crashed save, world-readable.
    let tmp = PathBuf::from(format!("{}.tmp", store.path().display()));
    fs::write(&tmp, b"partial").unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    let mut state = State::new();
    store.save(&mut state, &lock).unwrap();
    assert_eq!(mode(store.path()), 0o600);
    assert!(!tmp.exists());
}

#[test]
fn failed_save_restores_the_serial_and_leaves_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    let mut state = common::sample_state();
    store.save(&mut state, &lock).unwrap();
    store.save(&mut state, &lock).unwrap();
    let state_dir = store.path().parent().unwrap();

    // Something that is not a file where the state file's second name goes: the save fails
    // before the new file is renamed into place.
    let backup_tmp = PathBuf::from(format!("{}.backup.tmp", store.path().display()));
    fs::create_dir(&backup_tmp).unwrap();
    fs::write(backup_tmp.join("keep"), b"x").unwrap();
    let before = snapshot(state_dir);
    let serial = state.serial;
    state.outputs.clear();
    let err = store.save(&mut state, &lock).unwrap_err();
    assert!(matches!(err, StateError::Io { .. }), "{err:?}");
    assert_eq!(state.serial, serial, "serial restored");
    assert_eq!(snapshot(state_dir), before, "state file and backup untouched, no temporary file left");
    assert_eq!(store.load().unwrap().unwrap().serial, serial);
}

#[test]
fn failure_after_the_commit_point_keeps_the_new_serial() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    let mut state = common::sample_state();
    store.save(&mut state, &lock).unwrap();
    store.save(&mut state, &lock).unwrap();

    // A directory where the backup goes: the new state file is in place, but the backup
    // cannot be, and the directory is left alone.
    fs::remove_file(store.backup_path()).unwrap();
    fs::create_dir(store.backup_path()).unwrap();
    fs::write(store.backup_path().join("keep"), b"x").unwrap();
    let err = store.save(&mut state, &lock).unwrap_err();
    assert!(matches!(err, StateError::Io { .. }), "{err:?}");
    assert_eq!(state.serial, 3, "the serial matches the file now in place");
    assert_eq!(store.load().unwrap().unwrap(), state);
    assert_eq!(fs::read(store.backup_path().join("keep")).unwrap(), b"x");
}

#[test]
fn save_refuses_the_lock_of_another_store() {
    let dir = tempfile::tempdir().unwrap();
    let a = LocalStore::new(dir.path().join("a.json"));
    let b = LocalStore::new(dir.path().join("b.json"));
    let lock_a = a.lock(&opts(Duration::ZERO)).unwrap();
    let mut state = State::new();
    assert!(matches!(b.save(&mut state, &lock_a), Err(StateError::WrongLock { .. })));
    assert_eq!(state.serial, 0);
    assert!(!b.path().exists());
}

/// A store holding two saves (so a backup exists), for the refusal tests.
fn saved_twice(dir: &Path) -> (LocalStore, State) {
    let store = store_in(dir);
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    let mut state = common::sample_state();
    store.save(&mut state, &lock).unwrap();
    store.save(&mut state, &lock).unwrap();
    (store, state)
}

fn assert_refusal_changes_nothing(store: &LocalStore, check: impl FnOnce(StateError)) {
    let dir = store.path().parent().unwrap();
    let before = snapshot(dir);
    check(store.load().unwrap_err());
    assert_eq!(snapshot(dir), before, "a refused load must not touch any file");
}

#[test]
fn refuses_a_truncated_file_and_names_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = saved_twice(dir.path());
    let bytes = fs::read(store.path()).unwrap();
    fs::write(store.path(), &bytes[..bytes.len() / 2]).unwrap();
    assert_refusal_changes_nothing(&store, |e| match e {
        StateError::Corrupt { backup: Some(b), .. } => {
            assert_eq!(b, store.backup_path());
        }
        other => panic!("{other:?}"),
    });
    let hint = store.load().unwrap_err().hint().unwrap();
    assert!(hint.contains(&store.backup_path().display().to_string()), "{hint}");
}

#[test]
fn refuses_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = saved_twice(dir.path());
    fs::write(store.path(), b"\x7fELF garbage").unwrap();
    assert_refusal_changes_nothing(&store, |e| assert!(matches!(e, StateError::Corrupt { .. }), "{e:?}"));
}

#[test]
fn refuses_a_newer_format() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = saved_twice(dir.path());
    let text = String::from_utf8(fs::read(store.path()).unwrap()).unwrap();
    let current = format!("\"format_version\": {FORMAT_VERSION}");
    let newer = format!("\"format_version\": {}", FORMAT_VERSION + 1);
    fs::write(store.path(), text.replacen(&current, &newer, 1)).unwrap();
    assert_refusal_changes_nothing(&store, |e| {
        assert!(matches!(e, StateError::NewerFormat { found, .. } if found == FORMAT_VERSION + 1), "{e:?}")
    });
}

#[test]
fn refuses_a_state_file_older_than_its_backup() {
    let dir = tempfile::tempdir().unwrap();
    let (store, state) = saved_twice(dir.path());
    // Someone copies the older backup over the state file, and the state file over the backup.
    let main = fs::read(store.path()).unwrap();
    let backup = fs::read(store.backup_path()).unwrap();
    fs::write(store.path(), &backup).unwrap();
    fs::write(store.backup_path(), &main).unwrap();
    assert_refusal_changes_nothing(&store, |e| match e {
        StateError::OlderThanBackup { serial, backup_serial, .. } => {
            assert_eq!((serial, backup_serial), (state.serial - 1, state.serial));
        }
        other => panic!("{other:?}"),
    });
}

#[test]
fn a_state_file_swapped_for_another_lineage_is_refused_unless_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, state) = saved_twice(dir.path());
    let backup_lineage = state.lineage.clone();
    // Someone copies another environment's state over this one (a newer serial, even).
    let mut other = common::sample_state();
    other.serial = state.serial + 10;
    fs::write(store.path(), format::encode(&other)).unwrap();
    assert_refusal_changes_nothing(&store, |e| match &e {
        StateError::LineageMismatch { lineage, backup_lineage: b, .. } => {
            assert_eq!((lineage, b), (&other.lineage, &backup_lineage));
            assert!(e.to_string().contains(&other.lineage) && e.to_string().contains(&backup_lineage), "{e}");
            assert!(e.hint().unwrap().contains("--force-lineage"), "{:?}", e.hint());
        }
        other => panic!("{other:?}"),
    });

    // Accepted on purpose: loaded with a notice, and the next save makes the backup match.
    let store = store.accept_other_lineage(true);
    let mut notices = Vec::new();
    let mut loaded = store.load_noting(|n| notices.push(n.to_string())).unwrap().unwrap();
    assert_eq!(loaded, other);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("--force-lineage"), "{notices:?}");
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    store.save(&mut loaded, &lock).unwrap();
    let strict = store_in(dir.path());
    assert_eq!(strict.load().unwrap().unwrap(), loaded, "backup and file agree again");
}

#[test]
fn a_state_file_open_to_others_is_set_back_to_0600_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let (store, state) = saved_twice(dir.path());
    // A copy made with the default umask.
    fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(store.backup_path(), fs::Permissions::from_mode(0o664)).unwrap();
    let mut notices = Vec::new();
    assert_eq!(store.load_noting(|n| notices.push(n)).unwrap().unwrap(), state);
    assert_eq!(mode(store.path()), 0o600);
    assert_eq!(mode(store.backup_path()), 0o600);
    let shown: Vec<String> = notices.iter().map(ToString::to_string).collect();
    assert!(
        matches!(
            &notices[..],
            [
                matih_state::StateNotice::ModeTightened { was: 0o644, .. },
                matih_state::StateNotice::ModeTightened { was: 0o664, .. },
            ]
        ),
        "{shown:?}"
    );
    assert!(shown[0].contains("0644") && shown[0].contains("0600"), "{shown:?}");
    // Nothing more to say the next time.
    let mut again = 0;
    store.load_noting(|_| again += 1).unwrap();
    assert_eq!(again, 0);
}

#[test]
fn a_refused_load_does_not_touch_the_mode_either() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = saved_twice(dir.path());
    fs::write(store.path(), b"{").unwrap();
    fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
    assert!(store.load().is_err());
    assert_eq!(mode(store.path()), 0o644);
}

#[test]
fn a_state_path_that_is_a_link_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("shared-drive");
    fs::create_dir(&real_dir).unwrap();
    let target = real_dir.join("prod.json");
    let link = dir.path().join("prod-aws.json");
    std::os::unix::fs::symlink("shared-drive/prod.json", &link).unwrap();

    // A dangling link: the first save creates its target.
    let store = LocalStore::open(&link).unwrap();
    assert_eq!(store.path(), target);
    assert_eq!(store.link(), Some(link.as_path()));
    assert_eq!(store.lock_path(), real_dir.join("prod.json.lock"), "the lock sits beside the target");
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    let mut state = common::sample_state();
    store.save(&mut state, &lock).unwrap();
    store.save(&mut state, &lock).unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
    assert_eq!(fs::read(&link).unwrap(), fs::read(&target).unwrap());
    assert_eq!(LocalStore::open(&link).unwrap().load().unwrap().unwrap(), state);
    assert!(real_dir.join("prod.json.backup").exists());
    // Through the link or not, it is one lock.
    assert!(matches!(LocalStore::open(&target).unwrap().lock(&opts(Duration::ZERO)), Err(StateError::Locked { .. })));
    drop(lock);

    // A store made on the link itself refuses it rather than replace it.
    let raw = LocalStore::new(&link);
    assert!(matches!(raw.load(), Err(StateError::UnexpectedSymlink { .. })));
    let lock = raw.lock(&opts(Duration::ZERO)).unwrap();
    assert!(matches!(raw.save(&mut state, &lock), Err(StateError::UnexpectedSymlink { .. })));
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
}

#[test]
fn a_looping_state_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let e = LocalStore::open(&a).unwrap_err();
    assert!(matches!(&e, StateError::SymlinkLoop { path } if *path == a), "{e:?}");
    assert!(e.to_string().contains("loops") && e.hint().is_some(), "{e}");
}

#[test]
fn refuses_a_missing_state_file_when_a_backup_exists() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = saved_twice(dir.path());
    fs::remove_file(store.path()).unwrap();
    assert_refusal_changes_nothing(&store, |e| {
        assert!(matches!(e, StateError::MissingWithBackup { .. }), "{e:?}");
        assert!(e.hint().unwrap().contains("cp "));
    });
}

#[test]
fn every_error_has_a_message_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = saved_twice(dir.path());
    fs::remove_file(store.path()).unwrap();
    let e = store.load().unwrap_err();
    assert!(e.to_string().contains(&store.path().display().to_string()), "{e}");
}

#[test]
fn lock_records_its_owner_and_empties_on_release() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    assert_eq!(store.read_lock_info(), None);
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    let info = store.read_lock_info().unwrap();
    assert_eq!(&info, lock.info());
    assert_eq!(info.pid, std::process::id());
    assert_eq!(info.command, "matih-infra test");
    assert!(!info.host.is_empty());
    assert!(humantime::parse_rfc3339(&info.started_at).is_ok(), "{}", info.started_at);
    assert_eq!(mode(store.lock_path()), 0o600);
    lock.release().unwrap();
    assert_eq!(store.read_lock_info(), None);
    // Dropping releases too.
    drop(store.lock(&opts(Duration::ZERO)).unwrap());
    assert!(store.lock(&opts(Duration::ZERO)).is_ok());
}

#[test]
fn second_lock_fails_at_once_with_timeout_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let _held = store.lock(&opts(Duration::ZERO)).unwrap();
    match store.lock(&opts(Duration::ZERO)) {
        Err(e @ StateError::Locked { .. }) => {
            let StateError::Locked { holder, waited, .. } = &e else { unreachable!() };
            assert_eq!(holder.as_ref().unwrap().pid, std::process::id());
            assert_eq!(*waited, Duration::ZERO);
            assert!(e.hint().unwrap().contains("--lock-timeout"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn waiting_lock_succeeds_once_the_holder_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let held = store.lock(&opts(Duration::ZERO)).unwrap();
    let mut seen: Option<LockInfo> = None;
    // The holder lets go only once the second `lock` is known to be waiting.
    let lock = store
        .lock_with(&opts(Duration::from_secs(60)), |holder| {
            seen = holder.cloned();
            drop(held);
        })
        .unwrap();
    assert_eq!(seen.unwrap().command, "matih-infra test");
    assert_eq!(lock.info().pid, std::process::id());
}

#[test]
fn force_unlock_clears_a_stale_record_but_not_a_live_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    assert_eq!(store.force_unlock().unwrap(), None);

    let held = store.lock(&opts(Duration::ZERO)).unwrap();
    assert!(matches!(store.force_unlock(), Err(StateError::Locked { .. })));
    assert_eq!(store.read_lock_info().as_ref(), Some(held.info()), "a live lock's record stays");
    drop(held);

    // A record left by a holder that died (the OS lock went with it).
    let stale = LockInfo {
        id: "stale".into(),
        host: "elsewhere".into(),
        pid: 999_999,
        command: "matih-infra apply".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        expires_at: None,
    };
    fs::write(store.lock_path(), serde_json::to_vec(&stale).unwrap()).unwrap();
    assert_eq!(store.read_lock_info(), Some(stale.clone()));
    // It never blocks anyone: a new lock simply replaces it...
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    assert_eq!(store.read_lock_info().unwrap().pid, std::process::id());
    drop(lock);
    // ...and `force_unlock` clears it, saying what it was.
    fs::write(store.lock_path(), serde_json::to_vec(&stale).unwrap()).unwrap();
    assert_eq!(store.force_unlock().unwrap(), Some(stale));
    assert_eq!(store.read_lock_info(), None);
}
