//! Running one command and reading its peak memory and CPU time from `wait4`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of a command cost.
pub struct Ran {
    pub code: i32,
    pub wall: Duration,
    pub max_rss_kib: i64,
    /// User and system CPU time of the command (its own, not the emulators' it waited on).
    #[allow(dead_code)] // the validate bench reports wall time and memory only
    pub cpu: Duration,
}

/// Runs `cmd` (program and arguments) with `stdout`, and waits for it. Run it from a small
/// process: a child's peak as the kernel reports it starts from its parent's size at the fork.
// The child is reaped by `wait4`, which Child::wait cannot stand in for (it drops the rusage).
#[allow(clippy::zombie_processes)]
pub fn run(cmd: &[String], stdout: Stdio) -> Ran {
    let started = Instant::now();
    let child = Command::new(&cmd[0]).args(&cmd[1..]).stdout(stdout).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let wall = started.elapsed();
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ran {
        code: libc::WEXITSTATUS(status),
        wall,
        max_rss_kib: usage.ru_maxrss,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
    }
}
