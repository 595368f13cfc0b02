//! One function per command. Each returns the exit code on success or a classified failure.

pub mod cluster;
pub mod run;
pub mod state;
pub mod tenant;

use std::io::Write;

use crate::cli::{Cli, Command, Format};
use crate::exit::{Failure, code};
use crate::render::Style;

/// What every command gets besides its own arguments.
pub struct Env {
    pub style: Style,
    pub progress: crate::progress::Progress,
    pub stdin_tty: bool,
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

pub fn print_json(v: &impl serde::Serialize) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).map_err(anyhow::Error::from)?;
    writeln!(out).map_err(anyhow::Error::from)?;
    Ok(())
}

pub async fn dispatch(cli: &Cli, env: &Env) -> Result<i32, Failure> {
    let g = &cli.global;
    match &cli.command {
        Command::Validate => validate(cli),
        Command::Plan(a) => run::plan(g, a, env).await,
        Command::Apply(a) => run::apply(g, a, env).await,
        Command::Destroy(a) => run::destroy(g, a, env).await,
        Command::Refresh => run::refresh(g, env).await,
        Command::State(crate::cli::StateCommand::Import { address, id }) => run::import(g, address, id, env).await,
        Command::State(s) => state::run(g, s, env).await,
        Command::Output { name } => state::output(g, name.as_deref()).await,
        Command::Graph => run::graph(g).await,
        Command::Tenant(t) => tenant::run(g, t, env).await,
        Command::Policy(p) => cluster::policy(g, p),
        Command::Kubeconfig => cluster::kubeconfig(g).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "matih-infra", &mut std::io::stdout());
            Ok(code::OK)
        }
    }
}

fn validate(cli: &Cli) -> Result<i32, Failure> {
    let spec = crate::context::load_spec(&cli.global)?;
    let s = &spec.spec;
    let clouds: Vec<String> = s.clouds.configured().iter().map(ToString::to_string).collect();
    match cli.global.format {
        Format::Json => print_json(&serde_json::json!({
            "valid": true,
            "config": spec.config_path,
            "platform": s.platform.name,
            "environment": s.platform.environment,
            "zone": s.zone_name(),
            "clouds": clouds,
            "tenants": s.tenants.iter().map(|t| &t.slug).collect::<Vec<_>>(),
            "spec_hash": spec.hash,
        }))?,
        Format::Text => println!(
            "{} is valid: platform {} ({}), zone {}, clouds {}, {} tenant(s).",
            spec.config_path.display(),
            s.platform.name,
            s.platform.environment,
            s.zone_name(),
            clouds.join(", "),
            s.tenants.len()
        ),
    }
    Ok(code::OK)
}
