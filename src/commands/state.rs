//! state list|show|rm|mv|unlock, and output: commands that read or edit the state file only.

use std::path::PathBuf;

use matih_plans::ResourceAddr;

use super::{Env, print_json};
use crate::cli::{Format, Global, StateCommand};
use crate::context::{self, Locked};
use crate::exit::{Failure, code};

fn path(g: &Global) -> Result<PathBuf, Failure> {
    if let Some(p) = &g.state {
        return Ok(p.clone());
    }
    let spec = context::load_spec(g)?;
    let cloud = context::cloud(g, &spec)?;
    Ok(context::state_path(g, &spec, cloud.as_ref()))
}

fn addr(s: &str) -> Result<ResourceAddr, Failure> {
    s.parse().map_err(Failure::usage)
}

fn not_in_state(a: &ResourceAddr) -> Failure {
    Failure::user(anyhow::anyhow!("{a} is not in state")).hint("`matih-infra state list` shows recorded addresses")
}

pub fn run(g: &Global, cmd: &StateCommand, _env: &Env) -> Result<i32, Failure> {
    let path = path(g)?;
    match cmd {
        StateCommand::List => {
            let state = Locked::read_only(path, g)?;
            match g.format {
                Format::Json => print_json(&serde_json::json!({
                    "serial": state.serial,
                    "lineage": state.lineage,
                    "resources": state.resources.iter().map(|(a, r)| serde_json::json!({
                        "address": a, "type": r.rtype, "id": r.id, "protected": r.protected,
                    })).collect::<Vec<_>>(),
                    "pending_intents": state.intents.keys().collect::<Vec<_>>(),
                }))?,
                Format::Text => {
                    for a in state.resources.keys() {
                        println!("{a}");
                    }
                }
            }
        }
        StateCommand::Show { address } => {
            let a = addr(address)?;
            let state = Locked::read_only(path, g)?;
            let r = state.resources.get(&a).ok_or_else(|| not_in_state(&a))?;
            match g.format {
                Format::Json => print_json(&serde_json::json!({"address": a, "resource": r}))?,
                Format::Text => {
                    println!("{a}  ({}, id {}{})", r.rtype, r.id, if r.protected { ", protected" } else { "" });
                    for (k, v) in &r.attrs {
                        println!("  {k} = {v}");
                    }
                    if !r.dependencies.is_empty() {
                        println!(
                            "  depends on: {}",
                            r.dependencies.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                        );
                    }
                }
            }
        }
        StateCommand::Import { .. } => unreachable!("dispatched to run::import: it talks to the cloud"),
        StateCommand::Rm { addresses } => {
            let addrs = addresses.iter().map(|s| addr(s)).collect::<Result<Vec<_>, _>>()?;
            let locked = Locked::open(path, g, "state rm")?;
            let mut state = locked.load()?;
            for a in &addrs {
                if !state.resources.contains_key(a) {
                    return Err(not_in_state(a));
                }
            }
            for a in &addrs {
                state.resources.remove(a);
            }
            use matih_plans::Persist;
            locked.persist(&mut state)?;
            eprintln!("forgot {} resource(s); they still exist in the cloud", addrs.len());
        }
        StateCommand::Mv { from, to } => {
            let (from, to) = (addr(from)?, addr(to)?);
            if from.rtype != to.rtype {
                return Err(Failure::usage(format!("cannot move {from} to {to}: the resource type differs")));
            }
            let locked = Locked::open(path, g, "state mv")?;
            let mut state = locked.load()?;
            if state.resources.contains_key(&to) {
                return Err(Failure::user(anyhow::anyhow!("{to} is already in state"))
                    .hint("remove it first with `state rm` if it is stale"));
            }
            let r = state.resources.remove(&from).ok_or_else(|| not_in_state(&from))?;
            state.resources.insert(to.clone(), r);
            for other in state.resources.values_mut() {
                for d in other.dependencies.iter_mut().filter(|d| **d == from) {
                    *d = to.clone();
                }
            }
            use matih_plans::Persist;
            locked.persist(&mut state)?;
            eprintln!("moved {from} to {to}");
        }
        StateCommand::Unlock { force: _ } => {
            let store = context::store(path, g)?;
            match store.force_unlock()? {
                Some(info) => eprintln!(
                    "removed the lock record of `{}` (pid {} on {}, since {}); a live holder keeps its OS lock until it exits",
                    info.command, info.pid, info.host, info.started_at
                ),
                None => eprintln!("no lock record found"),
            }
        }
    }
    Ok(code::OK)
}

pub fn output(g: &Global, name: Option<&str>) -> Result<i32, Failure> {
    let state = Locked::read_only(path(g)?, g)?;
    if let Some(name) = name {
        let o = state.outputs.get(name).ok_or_else(|| {
            Failure::user(anyhow::anyhow!("no output named `{name}`"))
                .hint("run `matih-infra output` to list outputs; they are recorded by apply")
        })?;
        match g.format {
            Format::Json => print_json(&o.value)?,
            Format::Text => match &o.value {
                serde_json::Value::String(s) => println!("{s}"),
                v => println!("{v}"),
            },
        }
        return Ok(code::OK);
    }
    let shown: serde_json::Map<String, serde_json::Value> = state
        .outputs
        .iter()
        .map(|(k, o)| (k.clone(), if o.sensitive { serde_json::json!("(sensitive)") } else { o.value.clone() }))
        .collect();
    match g.format {
        Format::Json => print_json(&shown)?,
        Format::Text => {
            for (k, v) in &shown {
                println!("{k} = {v}");
            }
        }
    }
    Ok(code::OK)
}
