//! `arm-emulator`: runs the ARM emulator until killed, for scripts and `try-local`.
//!
//! Prints `ARM_ENDPOINT=http://127.0.0.1:<port>` on stdout once it serves. Flags: `--port N`
//! (default: a free port), `--token T` (required bearer token; default: any), `--kubeconfig-server
//! URL` and `--kubeconfig-token T` (what `listClusterUserCredential` hands out), `--lro-delay-ms N`.
//! No config file, no persistence: state dies with the process.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use matih_azure_emulator::{AzureEmulator, Options};

fn main() -> ExitCode {
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            eprintln!("error: {flag} needs a value");
            return ExitCode::from(2);
        };
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
        let r = match flag.as_str() {
            "--port" => number(&value)
                .and_then(|n| u16::try_from(n).map_err(|_| format!("--port: {n} is not a port")))
                .map(|p| opts.port = p),
            "--lro-delay-ms" => number(&value).map(|n| opts.lro_delay = Duration::from_millis(n)),
            "--token" => {
                opts.token = Some(value);
                Ok(())
            }
            "--kubeconfig-server" => {
                opts.kubeconfig_server = value;
                Ok(())
            }
            "--kubeconfig-token" => {
                opts.kubeconfig_token = value;
                Ok(())
            }
            other => Err(format!("unknown flag {other}")),
        };
        if let Err(e) = r {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let em = match AzureEmulator::try_start(opts) {
        Ok(em) => em,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    println!("ARM_ENDPOINT={}", em.url());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
