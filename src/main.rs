//! matih-infra: the command-line interface. Parsing, per-command settings, printing and exit
//! codes live here; the engine, state, platform spec and providers are crates of their own.

mod cli;
mod clouds;
mod commands;
mod context;
mod exit;
mod fault;
mod progress;
mod render;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

use crate::cli::{Cli, Format};
use crate::exit::{Class, Failure, code};

/// A plan allocates and frees millions of small strings and JSON values (at 1,000 tenants perf
/// put about a third of a no-op plan's CPU in glibc's malloc and free).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A run of the tool lasts seconds: transparent huge pages cost it more than they give. Each
/// fault may stall on compaction and then zero 2 MiB at once, however little of it is used. At
/// 1,000 tenants a no-op plan with them now and then spent 0.3 s in the kernel (0.05 s without)
/// and peaked 30 MB higher. The allocator is built not to ask for them (`madvise`, mimalloc's
/// `no_thp`), from its first allocation on; this keeps a kernel that hands them out unasked
/// (`enabled` set to `always`) from doing so for the rest of the run.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE sets a flag of this process; it reads no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() {
    no_huge_pages();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let is_help =
                matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion);
            let _ = e.print();
            std::process::exit(if is_help { code::OK } else { code::USAGE });
        }
    };
    let color = !cli.global.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal();
    let env = commands::Env {
        style: render::Style { color },
        progress: progress::Progress::new(cli.global.quiet, std::io::stderr().is_terminal()),
        stdin_tty: std::io::stdin().is_terminal(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        let stop = env.stop.clone();
        // The handler is in place before any work starts: a Ctrl-C that comes early is not lost
        // (and does not kill the process with the default action).
        let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .expect("installing the SIGINT handler");
        tokio::spawn(async move {
            if interrupts.recv().await.is_some() {
                stop.store(true, Ordering::SeqCst);
                eprintln!(
                    "\ninterrupt: starting nothing new; waiting for in-flight operations (Ctrl-C again to exit now)"
                );
                if interrupts.recv().await.is_some() {
                    // State and the intent journal are written before and after every operation,
                    // so exiting here loses nothing that was recorded.
                    eprintln!("interrupt: exiting now; run the command again to resolve anything in flight");
                    std::process::exit(code::INTERRUPTED);
                }
            }
        });
        commands::dispatch(&cli, &env).await
    });
    let status = match result {
        Ok(c) => c,
        Err(f) => report(&cli, f, color),
    };
    std::process::exit(status);
}

fn report(cli: &Cli, f: Failure, color: bool) -> i32 {
    let code = f.class.code();
    if cli.global.format == Format::Json {
        let _ = commands::print_json(&f.to_json());
    }
    // Platform spec errors carry source snippets; show them the way miette draws them.
    if let Some(spec_err) = f.error.downcast_ref::<matih_spec::SpecError>()
        && let matih_spec::SpecError::Invalid(diags) = spec_err
    {
        if color && std::io::stderr().is_terminal() {
            eprintln!("{:?}", miette::Report::new(diags.summary_report()));
        } else {
            // The headline once, then each problem with its location and help.
            eprintln!("error: {}\n{diags}", diags.summary_report());
        }
        return code;
    }
    if f.class == Class::Unexpected {
        eprintln!("matih-infra hit an internal error; this is a bug.");
    }
    eprint!("{}", f.render());
    code
}
