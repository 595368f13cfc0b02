//! Running one command and reading its peak memory from `wait4`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` (program and arguments) with `stdout`, and waits for it: its exit code, wall time
/// and peak resident memory in KiB. Run it from a small process: a child's peak as the kernel
/// reports it starts from its parent's size at the fork.
// The child is reaped by `wait4`, which Child::wait cannot stand in for (it drops the rusage).
#[allow(clippy::zombie_processes)]
pub fn run(cmd: &[String], stdout: Stdio) -> (i32, Duration, i64) {
    let started = Instant::now();
    let child = Command::new(&cmd[0]).args(&cmd[1..]).stdout(stdout).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    (libc::WEXITSTATUS(status), started.elapsed(), usage.ru_maxrss)
}
