//! `gcp-emulator`: runs the Google Cloud emulator until killed, for scripts and local tries.
//!
//! Prints `GCP_ENDPOINT=http://127.0.0.1:<port>` on stdout once it serves; point every client's
//! endpoint (compute, container, DNS, IAM) at it. Flags: `--port N` (default: a free port),
//! `--token T` (required bearer token; default: any, including none), `--operation-delay-ms N`,
//! `--page-size N`, `--principal-lag-ms N`, `--kube-endpoint HOST[:PORT]` (what clusters answer as
//! their `endpoint`), `--cluster-ca-file PEM` (their CA), `--cluster-version V`.
//! No config file, no persistence: state dies with the process.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use matih_gcp_emulator::{GcpEmulator, Options};

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
            "--operation-delay-ms" => number(&value).map(|n| opts.operation_delay = Duration::from_millis(n)),
            "--principal-lag-ms" => number(&value).map(|n| opts.principal_lag = Duration::from_millis(n)),
            "--page-size" => number(&value).map(|n| opts.page_size = usize::try_from(n).unwrap_or(usize::MAX)),
            "--token" => {
                opts.token = Some(value);
                Ok(())
            }
            "--kube-endpoint" => {
                opts.kube_endpoint = value;
                Ok(())
            }
            "--cluster-version" => {
                opts.default_cluster_version = value;
                Ok(())
            }
            "--cluster-ca-file" => std::fs::read(&value)
                .map(|pem| opts.cluster_ca_certificate = base64::engine::general_purpose::STANDARD.encode(pem))
                .map_err(|e| format!("--cluster-ca-file {value}: {e}")),
            other => Err(format!("unknown flag {other}")),
        };
        if let Err(e) = r {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let em = match GcpEmulator::try_start(opts) {
        Ok(em) => em,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    println!("GCP_ENDPOINT={}", em.url());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
