//! state list|show|rm|mv|unlock|lock status|migrate, and output: commands that read or edit
//! state only.

use matih_plans::ResourceAddr;
use matih_spec::LoadedSpec;
use matih_state::{LockInfo, LockOptions, Snapshot};

use super::{Env, print_json};
use crate::cli::{Format, Global, LockCommand, StateCommand};
use crate::context::{self, Locked, StateLocation};
use crate::exit::{Failure, code};

/// Where state is, and the platform spec when it was needed to find out (or, for a remote
/// `--state`, is there to fill in what the URL leaves out).
fn location(g: &Global) -> Result<(StateLocation, Option<LoadedSpec>), Failure> {
    if let Some(p) = &g.state {
        let loc = StateLocation::parse(p)?;
        let spec = match &loc {
            StateLocation::Remote(_) if g.config.is_file() => context::load_spec(g).ok(),
            _ => None,
        };
        return Ok((loc, spec));
    }
    let spec = context::load_spec(g)?;
    let cloud = context::cloud(g, &spec)?;
    Ok((context::spec_location(&spec, cloud.name()), Some(spec)))
}

fn addr(s: &str) -> Result<ResourceAddr, Failure> {
    s.parse().map_err(Failure::usage)
}

fn not_in_state(a: &ResourceAddr) -> Failure {
    Failure::user(anyhow::anyhow!("{a} is not in state")).hint("`matih-infra state list` shows recorded addresses")
}

pub async fn run(g: &Global, cmd: &StateCommand, _env: &Env) -> Result<i32, Failure> {
    if let StateCommand::Migrate { to } = cmd {
        return migrate(g, to).await;
    }
    let (loc, spec) = location(g)?;
    let spec = spec.as_ref();
    match cmd {
        StateCommand::List => {
            let state = Locked::read_only(&loc, g, spec).await?;
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
            let state = Locked::read_only(&loc, g, spec).await?;
            let r = state.resources.get(&a).ok_or_else(|| not_in_state(&a))?;
            match g.format {
                Format::Json => print_json(&serde_json::json!({"address": a, "resource": r}))?,
                Format::Text => {
                    println!("{a}  ({}, id {}{})", r.rtype, r.id, if r.protected { ", protected" } else { "" });
                    for (k, v) in r.attrs.iter() {
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
            let locked = Locked::open(&loc, g, spec, "state rm").await?;
            let mut state = locked.load().await?;
            for a in &addrs {
                if !state.resources.contains_key(a) {
                    return Err(not_in_state(a));
                }
            }
            for a in &addrs {
                state.resources.remove(a);
            }
            locked.save(&mut state).await?;
            eprintln!("forgot {} resource(s); they still exist in the cloud", addrs.len());
        }
        StateCommand::Mv { from, to } => {
            let (from, to) = (addr(from)?, addr(to)?);
            if from.rtype != to.rtype {
                return Err(Failure::usage(format!("cannot move {from} to {to}: the resource type differs")));
            }
            let locked = Locked::open(&loc, g, spec, "state mv").await?;
            let mut state = locked.load().await?;
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
            locked.save(&mut state).await?;
            eprintln!("moved {from} to {to}");
        }
        StateCommand::Unlock { force: _, lock_id } => {
            let store = context::store(&loc, g, spec).await?;
            match store.force_unlock(lock_id).await? {
                Some(info) => eprintln!("broke the state lock {} ({})", info.id, holder_text(&info)),
                None => eprintln!("the state at {loc} is not locked"),
            }
        }
        StateCommand::Lock(LockCommand::Status) => {
            let store = context::store(&loc, g, spec).await?;
            let holder = store.lock_status().await?;
            match g.format {
                Format::Json => print_json(&serde_json::json!({
                    "location": loc.to_string(),
                    "locked": holder.is_some(),
                    "holder": holder,
                }))?,
                Format::Text => match &holder {
                    Some(h) => println!("locked: {} (id {})", holder_text(h), h.id),
                    None => println!("not locked"),
                },
            }
        }
        StateCommand::Migrate { .. } => unreachable!("handled above"),
    }
    Ok(code::OK)
}

/// `` `apply` (pid 42 on host, since …, lease until …) ``
fn holder_text(h: &LockInfo) -> String {
    let lease = h.expires_at.as_deref().map(|e| format!(", lease until {e}")).unwrap_or_default();
    format!("`{}` (pid {} on {}, since {}{lease})", h.command, h.pid, h.host, h.started_at)
}

/// Where `--to` points: a backend name (`local`, or the store the spec's `state:` names), a
/// URL or a path.
fn target(
    g: &Global,
    to: &std::path::Path,
    spec: Option<&LoadedSpec>,
    cloud: Option<&str>,
) -> Result<StateLocation, Failure> {
    let name = to.to_str().unwrap_or_default();
    if !matches!(name, "local" | "s3" | "gcs" | "azblob") {
        return StateLocation::parse(to);
    }
    let (Some(spec), Some(cloud)) = (spec, cloud) else {
        return Err(Failure::usage(format!("--to {name} needs the platform spec (-c {})", g.config.display()))
            .hint("or give the target as a path or URL"));
    };
    if name == "local" {
        return Ok(StateLocation::Local(context::local_state_path(spec, cloud)));
    }
    match context::spec_location(spec, cloud) {
        StateLocation::Remote(r) if r.service.name() == name => Ok(StateLocation::Remote(r)),
        _ => Err(Failure::usage(format!(
            "--to {name}: the platform spec's `state:` section does not name a {name} store"
        ))
        .hint(format!(
            "add `state: {{ backend: {name}, ... }}` to {} (see README: Shared state), or give a URL",
            spec.config_path.display()
        ))),
    }
}

/// Copies state to another store with its lineage and serial, both stores locked.
async fn migrate(g: &Global, to: &std::path::Path) -> Result<i32, Failure> {
    let spec = if g.config.is_file() || g.state.is_none() { Some(context::load_spec(g)?) } else { None };
    let cloud = match &spec {
        Some(s) => Some(context::cloud(g, s)?),
        None => None,
    };
    let cloud_name = cloud.as_ref().map(|c| c.name());
    let target = target(g, to, spec.as_ref(), cloud_name)?;
    let source = match (&g.state, &target, &spec, cloud_name) {
        (Some(p), _, _, _) => StateLocation::parse(p)?,
        // To the spec's remote store: from the local file; to a file: from the spec's store.
        (None, StateLocation::Remote(_), Some(s), Some(c)) => StateLocation::Local(context::local_state_path(s, c)),
        (None, StateLocation::Local(_), Some(s), Some(c)) => context::spec_location(s, c),
        _ => unreachable!("without --state the spec was loaded"),
    };
    if source == target {
        return Err(Failure::usage(format!("state is already at {target}"))
            .hint("name the other place with --state (from) or --to (to)"));
    }
    let spec = spec.as_ref();
    let from = Locked::open(&source, g, spec, "state migrate").await?;
    let opts = LockOptions { timeout: g.lock_timeout, command: "state migrate".to_string() };
    let to_store = context::store(&target, g, spec).await?;
    let to_lock = to_store.lock(&opts, &|_| {}).await?;
    let result = async {
        let Some(mut state) = from.store.load(&|n| eprintln!("warning: {n}")).await? else {
            return Err(Failure::user(anyhow::anyhow!("there is no state at {source} to migrate"))
                .hint("--state names the state to move (default: the local file when moving to a store)"));
        };
        let existing = to_store.load(&|n| eprintln!("warning: {n}")).await?;
        let outcome = match existing {
            Some(t) if t.lineage != state.lineage => {
                return Err(Failure::user(anyhow::anyhow!(
                    "{target} holds another state (lineage {}, serial {}); {source} is lineage {}",
                    t.lineage,
                    t.serial,
                    state.lineage
                ))
                .hint("they are different environments' or clouds' states: choose another target, or remove that one if it is truly unused"));
            }
            Some(t) if t.serial > state.serial => {
                return Err(Failure::user(anyhow::anyhow!(
                    "{target} holds a newer copy of this state (serial {} > {})",
                    t.serial,
                    state.serial
                ))
                .hint("the target moved on after an earlier migration: use it, or migrate in the other direction"));
            }
            Some(t) if t.serial == state.serial => "already-there",
            _ => {
                let snapshot = Snapshot::exact(&mut state);
                to_store.write(snapshot, to_lock.as_ref()).await?;
                "migrated"
            }
        };
        Ok((state, outcome))
    }
    .await;
    let released = to_store.unlock(to_lock).await;
    let (state, outcome) = result?;
    released?;
    drop(from);
    match g.format {
        Format::Json => print_json(&serde_json::json!({
            "from": source.to_string(),
            "to": target.to_string(),
            "result": outcome,
            "lineage": state.lineage,
            "serial": state.serial,
            "resources": state.resources.len(),
            "pending_intents": state.intents.len(),
        }))?,
        Format::Text if !g.quiet => {
            let what = if outcome == "migrated" { "copied" } else { "found already at" };
            eprintln!(
                "{what} {target}: state {} serial {} ({} resources) from {source}; {source} is left as it was",
                state.lineage,
                state.serial,
                state.resources.len()
            );
            if matches!(target, StateLocation::Remote(_)) && g.state.is_none() {
                eprintln!("hint: commands now use {target}; keep or delete the old file once the team has switched");
            }
        }
        Format::Text => {}
    }
    Ok(code::OK)
}

pub async fn output(g: &Global, name: Option<&str>) -> Result<i32, Failure> {
    let (loc, spec) = location(g)?;
    let state = Locked::read_only(&loc, g, spec.as_ref()).await?;
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
