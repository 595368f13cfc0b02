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
    Ran { code: libc::WEXITSTATUS(status), wall, max_rss_kib: usage.ru_maxrss, cpu: cpu_time(&usage) }
}

/// User and system CPU time of a `rusage`.
fn cpu_time(usage: &libc::rusage) -> Duration {
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// CPU time (user and system) so far of the emulators a bench runs: its own process (the
/// emulators that run in it, such as the Kubernetes API emulator) and each child process that is
/// running (an emulator of its own, such as moto), by process id. Only a process present at both
/// ends of a span counts in it (see [`cpu_between`]), so a command the bench runs in between
/// is not the emulators'.
#[allow(dead_code)] // the validate bench reports wall time and memory only
pub fn emulators_cpu() -> Vec<(u32, Duration)> {
    let me = std::process::id();
    let mut out = vec![(me, own_cpu())];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some((ppid, cpu)) = proc_stat(pid)
            && ppid == me
        {
            out.push((pid, cpu));
        }
    }
    out
}

/// The emulators' CPU time from `before` to `after` (two [`emulators_cpu`]).
#[allow(dead_code)] // the validate bench reports wall time and memory only
pub fn cpu_between(before: &[(u32, Duration)], after: &[(u32, Duration)]) -> Duration {
    after.iter().filter_map(|(pid, t)| Some(t.saturating_sub(before.iter().find(|(p, _)| p == pid)?.1))).sum()
}

#[allow(dead_code)] // the validate bench reports wall time and memory only
fn own_cpu() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    cpu_time(&usage)
}

/// A process's parent and CPU time, from `/proc/<pid>/stat` (Linux; none elsewhere).
#[allow(dead_code)] // the validate bench reports wall time and memory only
fn proc_stat(pid: u32) -> Option<(u32, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses, which may hold anything): state, ppid, ...; utime
    // and stime are the 14th and 15th fields of the line, in clock ticks.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some((ppid, Duration::from_micros(ticks * 1_000_000 / per_second)))
}
