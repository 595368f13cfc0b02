//! The store across real processes: lock contention, a holder that is killed, and a writer
//! killed in the middle of saving.
//!
//! Child processes are this test binary run again with `MATIH_STATE_CHILD` set, running only
//! the `child_process` entry point. Children report progress as `MATIH-CHILD …` lines on stdout;
//! the parent takes its cues from those lines (and from the lock's own wait notice), never from
//! sleeping.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use matih_state::{LocalStore, LockOptions, State, StateError};

const MODE: &str = "MATIH_STATE_CHILD";
const STATE: &str = "MATIH_STATE_CHILD_PATH";
const PREFIX: &str = "MATIH-CHILD ";

/// The child side. Does nothing unless started by one of the tests below.
#[test]
#[ignore = "entry point of the child processes that the other tests in this file start"]
fn child_process() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let store = LocalStore::new(std::env::var(STATE).unwrap());
    let say = |msg: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{PREFIX}{msg}").unwrap();
        out.flush().unwrap();
    };
    match mode.as_str() {
        "hold-lock" => {
            let lock =
                store.lock(&LockOptions { timeout: Duration::ZERO, command: "child holds the lock".into() }).unwrap();
            say(format!("locked {}", std::process::id()));
            // Hold it until the parent writes a line (or goes away).
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            lock.release().unwrap();
            say("released".into());
        }
        "save-loop" => {
            let lock = store.lock(&LockOptions { timeout: Duration::ZERO, command: "child saves".into() }).unwrap();
            let mut state = store.load().unwrap().unwrap_or_default();
            loop {
                // Each save writes a state whose every resource carries the serial it is saved
                // under, and whose size depends on it, so a mix of two saves is detectable.
                let next = state.serial + 1;
                common::fill(&mut state, resources_for(next), next);
                store.save(&mut state, &lock).unwrap();
                say(format!("committed {}", state.serial));
            }
        }
        "race-lock" => {
            // Ready, then take the lock at the parent's word, as twenty onboarding scripts
            // starting at once would.
            say("ready".into());
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            match store.lock(&LockOptions { timeout: Duration::ZERO, command: "racer".into() }) {
                Ok(lock) => {
                    say("won".into());
                    line.clear();
                    std::io::stdin().read_line(&mut line).unwrap();
                    lock.release().unwrap();
                }
                Err(StateError::Locked { holder: Some(h), .. }) => say(format!("lost to {}", h.pid)),
                Err(e) => say(format!("lost: {e}")),
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn resources_for(serial: u64) -> usize {
    1_500 + (serial as usize % 5) * 400
}

/// A running child, killed when dropped so a failing test leaves no process behind.
struct Kid {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Kid {
    fn start(mode: &str, state: &Path) -> Kid {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_process", "--ignored", "--nocapture", "--test-threads=1", "-q"])
            .env(MODE, mode)
            .env(STATE, state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Kid { child, stdin, stdout }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next `MATIH-CHILD` line, without the prefix.
    fn next(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "child {} exited early: {:?}", self.pid(), self.child.wait());
            if let Some(msg) = line.trim_end().strip_prefix(PREFIX) {
                return msg.to_string();
            }
        }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("state").join("prod-aws.json")
}

fn opts(timeout: Duration) -> LockOptions {
    LockOptions { timeout, command: "parent".into() }
}

#[test]
fn lock_held_by_another_process_fails_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(state_path(dir.path()));
    let mut kid = Kid::start("hold-lock", store.path());
    assert_eq!(kid.next(), format!("locked {}", kid.pid()));

    match store.lock(&opts(Duration::ZERO)) {
        Err(e @ StateError::Locked { .. }) => {
            let StateError::Locked { holder, .. } = &e else { unreachable!() };
            let holder = holder.as_ref().expect("the holder recorded itself");
            assert_eq!(holder.pid, kid.pid());
            assert_eq!(holder.command, "child holds the lock");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("pid {}", kid.pid()))
                    && msg.contains("child holds the lock")
                    && msg.contains(&holder.host),
                "{msg}"
            );
            assert!(e.hint().unwrap().contains("--lock-timeout"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn simultaneous_starts_always_name_the_lock_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(dir.path());
    for round in 0..5 {
        let mut kids: Vec<Kid> = (0..8).map(|_| Kid::start("race-lock", &path)).collect();
        for kid in &mut kids {
            assert_eq!(kid.next(), "ready");
        }
        let mut gos: Vec<ChildStdin> = kids.iter_mut().map(|k| k.stdin.take().unwrap()).collect();
        for go in &mut gos {
            writeln!(go, "go").unwrap();
        }
        let said: Vec<(u32, String)> = kids.iter_mut().map(|k| (k.pid(), k.next())).collect();
        let winners: Vec<u32> = said.iter().filter(|(_, s)| s == "won").map(|(pid, _)| *pid).collect();
        assert_eq!(winners.len(), 1, "round {round}: {said:?}");
        for (pid, s) in &said {
            if *pid != winners[0] {
                assert_eq!(*s, format!("lost to {}", winners[0]), "round {round}: {said:?}");
            }
        }
        for go in &mut gos {
            let _ = writeln!(go, "release");
        }
    }
}

#[test]
fn waiting_lock_succeeds_when_the_other_process_releases() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(state_path(dir.path()));
    let mut kid = Kid::start("hold-lock", store.path());
    assert_eq!(kid.next(), format!("locked {}", kid.pid()));

    let mut stdin = kid.stdin.take().unwrap();
    let mut waited_for = None;
    let started = Instant::now();
    // The child is told to release only once this process is known to be waiting.
    let lock = store
        .lock_with(&opts(Duration::from_secs(120)), |holder| {
            waited_for = holder.map(|h| h.pid);
            writeln!(stdin, "release").unwrap();
        })
        .unwrap();
    assert_eq!(waited_for, Some(kid.pid()));
    assert_eq!(lock.info().pid, std::process::id());
    assert_eq!(store.read_lock_info().unwrap().pid, std::process::id());
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(kid.next(), "released");
}

#[test]
fn lock_of_a_killed_process_is_free_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(state_path(dir.path()));
    let mut kid = Kid::start("hold-lock", store.path());
    assert_eq!(kid.next(), format!("locked {}", kid.pid()));
    assert!(matches!(store.lock(&opts(Duration::ZERO)), Err(StateError::Locked { .. })));

    let pid = kid.pid();
    kid.kill();
    // The dead holder's record is still there, but it is no obstacle.
    assert_eq!(store.read_lock_info().unwrap().pid, pid);
    let lock = store.lock(&opts(Duration::ZERO)).expect("a dead process holds no lock");
    assert_eq!(lock.info().pid, std::process::id());
    assert_eq!(store.read_lock_info().unwrap().pid, std::process::id());
}

/// Spins until `cond` holds or `limit` has passed.
fn spin_until(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

#[test]
fn writer_killed_mid_save_leaves_the_last_good_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(dir.path());
    let store = LocalStore::new(&path);
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let backup_tmp = PathBuf::from(format!("{}.backup.tmp", path.display()));
    let mut last_committed = 0;
    let mut save_time = Duration::from_millis(1);
    let mut killed_mid_write = 0;
    for round in 0..12u32 {
        let mut kid = Kid::start("save-loop", &path);
        // Let it commit a few saves, timing them, then kill it inside the next one.
        let mut at = Instant::now();
        for _ in 0..1 + round % 3 {
            let line = kid.next();
            let serial: u64 = line.strip_prefix("committed ").unwrap().parse().unwrap();
            assert!(serial > last_committed);
            last_committed = serial;
            save_time = at.elapsed();
            at = Instant::now();
        }
        // Where in the save to strike, varied round by round: somewhere while it renders the
        // file; as soon as it starts writing the scratch file; a little later, while it writes
        // or syncs; while the backup is being swapped. (Each wait is bounded and the kill
        // happens regardless, so a missed moment only weakens one round.)
        let scratch_before = stamp(&tmp);
        let writing = || stamp(&tmp) != scratch_before;
        let fraction = f64::from((round * 37) % 100) / 100.0;
        match round % 4 {
            0 => {
                spin_until(save_time.mul_f64(fraction), || false);
            }
            1 => {
                spin_until(save_time * 2, writing);
            }
            2 => {
                spin_until(save_time * 2, writing);
                spin_until(Duration::from_micros(200 + 100 * u64::from(round)), || false);
            }
            _ => {
                spin_until(save_time * 2, || backup_tmp.exists());
            }
        }
        kid.kill();
        let state: State = store.load().unwrap_or_else(|e| panic!("round {round}: {e}")).expect("state exists");
        // The child may have committed again after its last report before the kill landed.
        assert!(state.serial >= last_committed, "round {round}: serial {} after {last_committed}", state.serial);
        last_committed = state.serial;
        // A scratch file that is not a whole state, or is a state newer than the state file,
        // means the kill landed between the start of the write and the commit.
        if let Ok(bytes) = std::fs::read(&tmp) {
            match matih_state::format::decode(&bytes, &tmp) {
                Err(_) => killed_mid_write += 1,
                Ok(s) if s.serial > state.serial => killed_mid_write += 1,
                Ok(_) => {}
            }
        }
        assert_eq!(state.resources.len(), resources_for(state.serial), "round {round}: whole file");
        for r in state.resources.values() {
            assert_eq!(r.attrs["gen"], state.serial, "round {round}: every resource from the same save");
        }
        // The backup, if any, is a whole earlier state.
        if let Ok(bytes) = std::fs::read(store.backup_path()) {
            let backup = matih_state::format::decode(&bytes, store.backup_path()).unwrap();
            assert!(backup.serial <= state.serial);
            assert_eq!(backup.resources.len(), resources_for(backup.serial));
        }
    }
    assert!(
        killed_mid_write > 0,
        "no round struck between the start of a write and its commit; the test lost its point"
    );
    // And the store is still usable: the lock is free and a save goes through.
    let lock = store.lock(&opts(Duration::ZERO)).unwrap();
    let mut state = store.load().unwrap().unwrap();
    let serial = state.serial;
    store.save(&mut state, &lock).unwrap();
    assert_eq!(store.load().unwrap().unwrap().serial, serial + 1);
}

/// When and where the file at `path` was last written, if it exists.
fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.ino(), m.len()))
}

#[test]
fn readers_see_whole_states_while_another_process_saves() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(dir.path());
    let store = LocalStore::new(&path);
    let mut kid = Kid::start("save-loop", &path);
    // Wait for a few saves, so that a backup and a scratch file are in play.
    let mut committed: u64 = 0;
    while committed < 3 {
        committed = kid.next().strip_prefix("committed ").unwrap().parse().unwrap();
    }
    // Loads need no lock: each one sees a whole state, never a refusal, never going back.
    let mut last = 0;
    for _ in 0..40 {
        let state = store.load().unwrap().unwrap();
        assert!(state.serial >= last, "serial went back from {last} to {}", state.serial);
        last = state.serial;
        assert_eq!(state.resources.len(), resources_for(state.serial));
        assert!(state.resources.values().all(|r| r.attrs["gen"] == state.serial));
    }
    assert!(last > 3, "the writer kept saving during the loads");
}
