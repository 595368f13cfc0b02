//! plan, apply, destroy, refresh, graph: the commands that talk to providers.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use matih_plans::*;
use matih_spec::LoadedSpec;
use matih_state::State;

use super::{Env, print_json};
use crate::cli::{ApplyArgs, DestroyArgs, Format, Global, GuardArgs, PlanArgs};
use crate::context::{self, Locked, PendingDesired};
use crate::exit::{Class, Failure, code};
use crate::render::{self, ApplyDoc, ResourceResult};
use matih_provider_kit::Cloud;

/// Everything a provider-facing command holds while it runs.
pub(crate) struct Session {
    spec: Arc<LoadedSpec>,
    cloud: Box<dyn Cloud>,
    providers: Providers,
    desired: PendingDesired,
    locked: Locked,
    state: State,
    /// The cloud's view of `state` from the last refresh (same serial and lineage): what apply
    /// hands providers as an update's prior, so that drift is repaired, not hidden by what was
    /// recorded before it.
    current: Option<State>,
}

async fn open(g: &Global, env: &Env, command: &str) -> Result<Session, Failure> {
    open_with(g, env, command, None).await
}

/// A change to the platform spec's files, made while the state lock is held.
pub(crate) type SpecEdit<'a> = &'a mut dyn FnMut(&LoadedSpec) -> Result<(), Failure>;

/// Locks state, then runs `edit` (a change to the platform spec's files) and reads the spec again,
/// so edits from concurrent commands are serialised by the state lock and every plan sees them all.
pub(crate) async fn open_with(
    g: &Global,
    env: &Env,
    command: &str,
    edit: Option<SpecEdit<'_>>,
) -> Result<Session, Failure> {
    // Said at once, before the seconds of work a large platform takes: what is about to be
    // planned or changed, and where its state is. That is known from the platform file, so it is
    // said while the tenant files are still being parsed.
    let mut chosen = None;
    let mut spec = context::load_spec_with(&g.config, &mut |file| {
        let found = context::cloud(g, file).and_then(|cloud| {
            let location = context::state_location(g, file, cloud.as_ref())?;
            Ok((cloud, location))
        });
        if let Ok((cloud, location)) = &found {
            let p = &file.spec.platform;
            // (An edit changes the tenants: their count is left out.)
            let tenants = if edit.is_none() { format!(", {} tenant(s)", file.tenant_files) } else { String::new() };
            env.progress.line(&format!(
                "{command}: {} {} on {}{tenants}; state {location}",
                p.name,
                p.environment,
                cloud.name()
            ));
        }
        chosen = Some(found);
    })?;
    let (cloud, location) = chosen.expect("a valid spec's platform file was read")?;
    let locked = Locked::open(&location, g, Some(&spec), command).await?;
    if let Some(edit) = edit {
        edit(&spec)?;
        spec = context::load_spec(g)?;
    }
    // The desired graph is CPU work: the cloud's part is built on a thread of its own while the
    // cloud's clients are set up and the state is read, and the bootstrap's part goes on past
    // that, beside the refresh (see `PendingDesired`).
    let spec = Arc::new(spec);
    let (desired, providers, state) = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let desired = scope.spawn(|| PendingDesired::start(&spec, cloud.as_ref()));
            let (providers, state) = tokio::runtime::Handle::current()
                .block_on(async { tokio::join!(context::providers(&spec, cloud.as_ref()), locked.load()) });
            (desired.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), providers, state)
        })
    });
    let (desired, providers, mut state) = (desired?, providers?, state?);
    // Attributes recorded by an older provider are brought up to date in memory; the next write
    // records them (and their versions).
    let upgraded = upgrade_state(&mut state, &providers)?;
    if !upgraded.is_empty() && g.verbose > 0 {
        env.progress.line(&format!("upgraded the recorded attributes of {} resource(s)", upgraded.len()));
    }
    if !state.intents.is_empty() {
        env.progress.line(&format!("resolving {} interrupted create(s) from the intent journal", state.intents.len()));
        let report = resolve_intents(&mut state, &providers, &locked, &env.progress).await?;
        for (addr, other) in &report.shared {
            eprintln!(
                "warning: {addr}: the resource its interrupted create found is the one state records for {other}; \
                 not adopted twice (the next plan creates {addr})"
            );
        }
    }
    Ok(Session { spec, cloud, providers, desired, locked, state, current: None })
}

impl Session {
    /// Ends a command that is about to exit: the state lock is released now, and the large
    /// in-memory parts (spec, desired graph, state as recorded and as refreshed) are left to the
    /// process's exit, which reclaims them at once. Freed one allocation at a time, they take
    /// about half a second at 10,000 tenants.
    fn end(self) {
        let Session { spec, cloud: _, providers: _, desired, locked, state, current } = self;
        drop(locked);
        std::mem::forget((spec, desired, state, current));
    }
}

fn parse_allow(guard: &GuardArgs) -> Result<BTreeSet<ResourceAddr>, Failure> {
    guard
        .allow_replace
        .iter()
        .map(|s| s.parse::<ResourceAddr>().map_err(|e| Failure::usage(format!("--allow-replace: {e}"))))
        .collect()
}

/// What follows a plan.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    /// It is shown (or saved) and the command ends: nothing needs the state as recorded once the
    /// refresh has read it, as the plan is made from the refreshed state.
    Show,
    /// It is carried out, from the state as recorded.
    Apply,
}

async fn make_plan(
    s: &mut Session,
    env: &Env,
    g: &Global,
    operation: Operation,
    guard: &GuardArgs,
    include_protected: bool,
    then: Then,
) -> Result<Plan, Failure> {
    let allow = parse_allow(guard)?;
    // Once the platform exists, every type it should have is listed, so that resources carrying
    // its owner tags that state does not know (orphans) show even where state has none of a type.
    let list_types = if s.state.resources.is_empty() { BTreeSet::new() } else { s.desired.types().clone() };
    let opts = RefreshOptions { parallelism: 10, mode: g.refresh.into(), list_types };
    let refreshed = matih_plans::refresh_with(&s.state, &s.providers, &opts, &env.progress).await?;
    for w in &refreshed.warnings {
        eprintln!("warning: {w}");
    }
    if then == Then::Show {
        // The recorded resources go while the plan is made, so that it does not hold both copies
        // of every resource (about 130 MB each at 10,000 tenants); freed on the blocking pool,
        // beside the planning.
        let recorded = std::mem::take(&mut s.state.resources);
        tokio::task::spawn_blocking(move || drop(recorded));
    }
    let desired = s.desired.graph()?;
    let plan = matih_plans::plan(
        PlanInput {
            operation,
            desired,
            state: &refreshed.state,
            recorded_serial: s.state.serial,
            drift: refreshed.drift,
            orphans: refreshed.orphans,
            allow_replace: &allow,
            allow_all_protected: include_protected,
            cloud: s.cloud.name().to_string(),
            environment: s.spec.spec.platform.environment.clone(),
            spec_hash: s.spec.hash.clone(),
            statistics: Statistics {
                refresh_ms: refreshed.elapsed.as_millis() as u64,
                api_calls: refreshed.stats.calls,
                retries: refreshed.stats.retries,
                retry_budget: s.providers.retry_budgets(),
                refresh_ms_by_type: refreshed.by_type_ms.iter().map(|(t, ms)| (t.to_string(), *ms)).collect(),
                ..Statistics::default()
            },
        },
        &s.providers,
    )
    .await?;
    s.current = Some(refreshed.state);
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if g.verbose > 0 {
        let total: u64 = plan.statistics.api_calls.values().sum();
        env.progress.line(&format!(
            "refresh: {total} API call(s) in {} ms; plan: {} ms",
            plan.statistics.refresh_ms, plan.statistics.plan_ms
        ));
        for (k, v) in &plan.statistics.api_calls {
            env.progress.line(&format!("  {k}: {v}"));
        }
        verbose_retries(env, &plan.statistics.retries, &plan.statistics.retry_budget);
    }
    Ok(plan)
}

/// `-v`: the retries made and how each provider retries.
fn verbose_retries(env: &Env, retries: &ApiCalls, budget: &[String]) {
    let total: u64 = retries.values().sum();
    env.progress.line(&format!("retries: {total}"));
    for (k, v) in retries {
        env.progress.line(&format!("  {k}: {v}"));
    }
    for b in budget {
        env.progress.line(&format!("retry budget: {b}"));
    }
}

fn show_plan(plan: &Plan, g: &Global, env: &Env) -> Result<(), Failure> {
    match g.format {
        Format::Json => print_json(plan),
        Format::Text => {
            print!("{}", render::plan_text(plan, env.style));
            Ok(())
        }
    }
}

fn blocked_failure(plan: &Plan) -> Failure {
    crate::exit::classify(EngineError::Blocked(plan.blocked.clone()).into())
}

pub async fn plan(g: &Global, a: &PlanArgs, env: &Env) -> Result<i32, Failure> {
    let mut s = open(g, env, "plan").await?;
    let op = if a.destroy { Operation::Destroy } else { Operation::Apply };
    let plan = make_plan(&mut s, env, g, op, &a.guard, a.include_protected, Then::Show).await?;
    show_plan(&plan, g, env)?;
    if let Some(out) = &a.out {
        write_plan(out, &plan)?;
        env.progress.line(&format!(
            "saved the plan to {}; apply it with `matih-infra apply {}`",
            out.display(),
            out.display()
        ));
    }
    let code = if !plan.blocked.is_empty() {
        // The plan document on stdout already lists what is blocked; say why on stderr.
        eprint!("{}", blocked_failure(&plan).render());
        code::BLOCKED
    } else if a.detailed_exitcode && plan.has_changes() {
        code::CHANGES
    } else {
        code::OK
    };
    s.end();
    std::mem::forget(plan);
    Ok(code)
}

fn write_plan(path: &Path, plan: &Plan) -> Result<(), Failure> {
    let bytes = serde_json::to_vec_pretty(plan).map_err(anyhow::Error::from)?;
    std::fs::write(path, bytes).with_context(|| format!("writing the plan to {}", path.display()))?;
    Ok(())
}

fn read_plan(path: &Path) -> Result<Plan, Failure> {
    let bytes = std::fs::read(path).with_context(|| format!("reading the plan file {}", path.display()))?;
    let version: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::user(anyhow::anyhow!("{} is not a plan file: {e}", path.display()))
            .hint("save a plan with `matih-infra plan --out FILE`")
    })?;
    let found = version.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    if found != PLAN_FORMAT_VERSION {
        return Err(EngineError::PlanFormat { found }.into());
    }
    serde_json::from_value(version)
        .map_err(|e| Failure::user(anyhow::anyhow!("{} is not a valid plan file: {e}", path.display())))
}

fn require_approval(auto_approve: bool, env: &Env, verb: &str) -> Result<(), Failure> {
    if !auto_approve && !env.stdin_tty {
        return Err(Failure::usage(format!(
            "refusing to {verb} without confirmation: standard input is not a terminal"
        ))
        .hint(format!("pass --auto-approve to {verb} non-interactively")));
    }
    Ok(())
}

fn confirm(verb: &str) -> Result<bool, Failure> {
    eprint!("\nDo you want to {verb}? Only 'yes' is accepted: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(anyhow::Error::from)?;
    Ok(line.trim() == "yes")
}

pub async fn apply(g: &Global, a: &ApplyArgs, env: &Env) -> Result<i32, Failure> {
    if a.plan_file.is_none() {
        require_approval(a.auto_approve, env, "apply")?;
    }
    let mut s = open(g, env, "apply").await?;
    let plan = match &a.plan_file {
        Some(path) => {
            let plan = read_plan(path)?;
            if plan.cloud != s.cloud.name() {
                return Err(EngineError::StalePlan {
                    what: format!("it is for cloud {}, not {}", plan.cloud, s.cloud.name()),
                }
                .into());
            }
            if s.state.serial == 0 && plan.state.serial == 0 && s.state.resources.is_empty() {
                // Nothing has been written yet: the plan's lineage becomes the state's.
                s.state.lineage = plan.state.lineage.clone();
            }
            if plan.spec_hash != s.spec.hash {
                return Err(EngineError::StalePlan {
                    what: "the platform spec or a tenant file changed since it was made".into(),
                }
                .into());
            }
            plan
        }
        None => {
            let plan = make_plan(&mut s, env, g, Operation::Apply, &a.guard, false, Then::Apply).await?;
            if g.format == Format::Text {
                show_plan(&plan, g, env)?;
            }
            if !plan.blocked.is_empty() {
                return Err(blocked_failure(&plan));
            }
            if !plan.has_changes() {
                if g.format == Format::Json {
                    print_json(&doc(&plan, "complete", &s.state, Vec::new()))?;
                }
                return Ok(code::OK);
            }
            if !a.auto_approve && !confirm("apply these changes")? {
                return Err(Failure::user(anyhow::anyhow!("apply cancelled; nothing was changed")));
            }
            plan
        }
    };
    execute(s, plan, g, env, a.parallelism as usize).await
}

pub async fn destroy(g: &Global, a: &DestroyArgs, env: &Env) -> Result<i32, Failure> {
    require_approval(a.auto_approve, env, "destroy")?;
    let mut s = open(g, env, "destroy").await?;
    if a.prune_orphans {
        return prune(s, g, a, env).await;
    }
    let plan = make_plan(&mut s, env, g, Operation::Destroy, &a.guard, a.include_protected, Then::Apply).await?;
    if g.format == Format::Text {
        show_plan(&plan, g, env)?;
    }
    if !plan.blocked.is_empty() {
        return Err(blocked_failure(&plan).hint(
            "pass --allow-replace ADDR for each protected resource to delete, or --include-protected to delete them all",
        ));
    }
    if !plan.has_changes() {
        if g.format == Format::Json {
            print_json(&doc(&plan, "complete", &s.state, Vec::new()))?;
        }
        return Ok(code::OK);
    }
    if !a.auto_approve && !confirm("destroy these resources")? {
        return Err(Failure::user(anyhow::anyhow!("destroy cancelled; nothing was changed")));
    }
    execute(s, plan, g, env, a.parallelism as usize).await
}

/// `destroy --prune-orphans`: deletes what the plan reports as orphans, and nothing in state.
async fn prune(mut s: Session, g: &Global, a: &DestroyArgs, env: &Env) -> Result<i32, Failure> {
    let plan = make_plan(&mut s, env, g, Operation::Apply, &a.guard, false, Then::Apply).await?;
    let orphans = plan.orphans.clone();
    if g.format == Format::Text {
        if orphans.is_empty() {
            println!("No orphans: every resource carrying this platform's owner tags is in state.");
        } else {
            println!("matih-infra will delete {} orphan(s) ({}, {}):", orphans.len(), plan.cloud, plan.environment);
            for o in &orphans {
                let at = o.address.as_ref().map(|a| format!(" (tagged {a})")).unwrap_or_default();
                println!("  - {} {}{at}", o.rtype, o.id);
            }
        }
    }
    let mut d = doc(&plan, "complete", &s.state, Vec::new());
    d.operation = Operation::Destroy;
    if orphans.is_empty() {
        if g.format == Format::Json {
            print_json(&d)?;
        }
        return Ok(code::OK);
    }
    if !a.auto_approve && !confirm("delete these orphans")? {
        return Err(Failure::user(anyhow::anyhow!("prune cancelled; nothing was changed")));
    }
    let before = s.providers.stats();
    let results = prune_orphans(&orphans, &s.providers, a.parallelism as usize, &env.progress).await;
    d.api_calls = s.providers.stats().since(&before).calls;
    let mut failed = 0;
    for (o, r) in orphans.iter().zip(results) {
        if r.is_err() {
            failed += 1;
        }
        d.resources.push(ResourceResult {
            address: orphan_addr(o).to_string(),
            action: Action::Delete,
            phase: "destroy",
            result: if r.is_ok() { "done" } else { "failed" },
            error: r.err().map(|e| crate::exit::one_line(&e)),
            because: None,
            started_ms: None,
            elapsed_ms: None,
        });
    }
    d.outcome = if failed > 0 { "failed" } else { "complete" };
    match g.format {
        Format::Json => print_json(&d)?,
        Format::Text => print!("\n{}", render::apply_text(&d)),
    }
    if failed > 0 {
        return Err(Failure::user(anyhow::anyhow!("{failed} orphan(s) could not be deleted"))
            .hint("fix the cause above and run `matih-infra destroy --prune-orphans` again"));
    }
    Ok(code::OK)
}

/// `state import ADDR ID`: records an existing resource of the platform (an orphan the plan
/// reports) at an address the platform spec wants and state does not have.
pub async fn import(g: &Global, address: &str, id: &str, env: &Env) -> Result<i32, Failure> {
    let addr: ResourceAddr = address.parse().map_err(Failure::usage)?;
    let mut s = open(g, env, "state import").await?;
    let Some(desired) = s.desired.graph()?.resources.get(&addr) else {
        return Err(Failure::usage(format!("{addr} is not an address of this platform"))
            .hint("the plan's orphan section names the address to import each orphan at"));
    };
    if let Some(r) = s.state.resources.get(&addr) {
        return Err(Failure::user(anyhow::anyhow!("{addr} is already in state (as {})", r.id))
            .hint("an orphan that duplicates a recorded resource goes with `matih-infra destroy --prune-orphans`"));
    }
    if let Some(other) = holder_of(&s.state, &addr.rtype, id, &addr) {
        return Err(Failure::user(EngineError::SharedId {
            addr: addr.clone(),
            other,
            rtype: addr.rtype.clone(),
            id: id.to_string(),
        }));
    }
    let schema = s
        .providers
        .schema(&addr.rtype)
        .cloned()
        .ok_or_else(|| EngineError::NoProvider { rtype: addr.rtype.clone() })?;
    let provider = s.providers.provider(&addr.rtype).map_err(Failure::from)?;
    let read = provider
        .read(ReadRequest {
            rtype: addr.rtype.clone(),
            items: vec![ReadItem { addr: addr.clone(), id: id.to_string(), attrs: Default::default() }],
        })
        .await
        .map_err(|source| EngineError::Refresh { rtype: addr.rtype.clone(), source })?;
    let Some(found) = read.found.get(&addr) else {
        return Err(Failure::user(anyhow::anyhow!(
            "{} {id} was not found among this platform's resources of that type",
            addr.rtype
        ))
        .hint("it must exist and carry this platform's owner tags; `matih-infra plan` lists such orphans"));
    };
    let mut state = s.state;
    let ownership = context::ownership(&s.spec);
    state.resources.insert(
        addr.clone(),
        matih_state::ResourceState {
            rtype: addr.rtype.clone(),
            id: found.id.clone(),
            attrs: found.attrs.clone().into(),
            dependencies: desired.dependencies(),
            owner_tags: s.providers.owner_tags(&ownership, &addr)?,
            protected: desired.protected.unwrap_or(schema.protected_by_default),
        },
    );
    s.locked.save(&mut state).await?;
    match g.format {
        Format::Json => {
            print_json(&serde_json::json!({"imported": addr, "id": found.id, "state_serial": state.serial}))?
        }
        Format::Text => println!("Imported {addr} ({}). The next plan manages it.", found.id),
    }
    Ok(code::OK)
}

fn doc(plan: &Plan, outcome: &'static str, state: &State, resources: Vec<ResourceResult>) -> ApplyDoc {
    let outputs = state
        .outputs
        .iter()
        .map(|(k, o)| (k.clone(), if o.sensitive { serde_json::json!("(sensitive)") } else { o.value.clone() }))
        .collect();
    ApplyDoc {
        format_version: 1,
        operation: plan.operation,
        outcome,
        state_serial: state.serial,
        summary: plan.summary.clone(),
        resources,
        outputs,
        api_calls: ApiCalls::new(),
        statistics: render::ApplyStatistics::default(),
        tenant: None,
    }
}

/// Plans, narrows the plan to `wanted` resources (and what they depend on), and applies it without
/// asking: `tenant add|remove --apply`. The wanted resources' protection is lifted: the command
/// itself names them. Changes left out are listed on stderr for a later full apply.
pub(crate) async fn apply_targeted(
    mut s: Session,
    g: &Global,
    env: &Env,
    wanted: &dyn Fn(&ResourceAddr) -> bool,
    tenant: serde_json::Value,
    parallelism: usize,
) -> Result<i32, Failure> {
    let guard =
        GuardArgs { allow_replace: s.state.resources.keys().filter(|a| wanted(a)).map(ToString::to_string).collect() };
    let mut plan = make_plan(&mut s, env, g, Operation::Apply, &guard, false, Then::Apply).await?;
    let left = plan.target(wanted);
    plan.blocked.retain(|b| wanted(&b.address));
    if g.format == Format::Text {
        show_plan(&plan, g, env)?;
    }
    if !left.is_empty() {
        let names: Vec<String> = left.iter().map(ToString::to_string).collect();
        eprintln!(
            "note: {} change(s) outside this tenant are left for `matih-infra apply`: {}",
            names.len(),
            names.join(", ")
        );
    }
    if !plan.blocked.is_empty() {
        return Err(blocked_failure(&plan));
    }
    if !plan.has_changes() {
        if g.format == Format::Json {
            let mut d = doc(&plan, "complete", &s.state, Vec::new());
            d.tenant = Some(tenant);
            print_json(&d)?;
        }
        return Ok(code::OK);
    }
    execute_with(s, plan, g, env, parallelism, Some(tenant)).await
}

async fn execute(s: Session, plan: Plan, g: &Global, env: &Env, parallelism: usize) -> Result<i32, Failure> {
    execute_with(s, plan, g, env, parallelism, None).await
}

async fn execute_with(
    mut s: Session,
    plan: Plan,
    g: &Global,
    env: &Env,
    parallelism: usize,
    tenant: Option<serde_json::Value>,
) -> Result<i32, Failure> {
    let opts = ApplyOptions { parallelism, stop: env.stop.clone(), ownership: context::ownership(&s.spec) };
    if plan.changes.iter().any(|c| c.action == Action::Update) {
        // Updates start from what the cloud has now (a saved plan's refresh is older: read again).
        let current = match s.current.take() {
            Some(c) => c,
            None => matih_plans::refresh(&s.state, &s.providers, 10, g.refresh.into(), &env.progress).await?.state,
        };
        for (addr, r) in s.state.resources.iter_mut() {
            if let Some(now) = current.resources.get(addr) {
                r.id.clone_from(&now.id);
                r.attrs.clone_from(&now.attrs);
            }
        }
    }
    let before = s.providers.stats();
    let writes_before = s.locked.writes();
    let report = matih_plans::apply(&plan, s.state, &s.providers, &s.locked, &opts, &env.progress).await?;
    let state_writes = s.locked.writes() - writes_before;
    let stats = s.providers.stats().since(&before);
    let budget = s.providers.retry_budgets();
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if g.verbose > 0 {
        env.progress.line(&format!("apply: {} API call(s)", stats.total_calls()));
        for (k, v) in &stats.calls {
            env.progress.line(&format!("  {k}: {v}"));
        }
        verbose_retries(env, &stats.retries, &budget);
        for (k, v) in &stats.reconciled {
            env.progress.line(&format!("reconciled (found after a lost answer, not created twice): {k}: {v}"));
        }
    }
    let interrupted = env.stop.load(Ordering::SeqCst) && !report.is_complete();
    let mut resources = Vec::with_capacity(report.nodes.len());
    for n in &report.nodes {
        let (result, error, because) = match &n.result {
            NodeResult::Done => ("done", None, None),
            NodeResult::Failed(e) => ("failed", Some(crate::exit::one_line(e)), None),
            NodeResult::Skipped { because } => ("skipped", None, Some(because.to_string())),
            NodeResult::NotStarted => ("not-started", None, None),
        };
        resources.push(ResourceResult {
            address: n.address.to_string(),
            action: n.action,
            phase: if n.phase == Phase::Apply { "apply" } else { "destroy" },
            result,
            error,
            because,
            started_ms: n.timing.map(|(s, _)| s.as_millis() as u64),
            elapsed_ms: n.timing.map(|(_, e)| e.as_millis() as u64),
        });
    }
    let failed = report.failed().count();
    let outcome = if failed > 0 {
        "failed"
    } else if interrupted {
        "interrupted"
    } else {
        "complete"
    };
    let mut d = doc(&plan, outcome, &report.state, resources);
    d.api_calls = stats.calls;
    d.statistics = render::ApplyStatistics {
        retries: stats.retries,
        reconciled: stats.reconciled,
        retry_budget: budget,
        warnings: report.warnings.clone(),
        state_writes,
    };
    d.tenant = tenant;
    match g.format {
        Format::Json => print_json(&d)?,
        Format::Text => print!("\n{}", render::apply_text(&d)),
    }
    if failed > 0 {
        let first = report.failed().next().map(|n| n.address.to_string()).unwrap_or_default();
        let mut f = Failure::user(anyhow::anyhow!(
            "{failed} resource(s) failed, starting with {first}; everything that finished is recorded in state"
        ));
        f.hint = Some("fix the cause above and run apply again: finished resources are not redone".into());
        if g.format == Format::Json {
            // The apply document above already carries every failure.
            eprint!("{}", f.render());
            return Ok(code::USER);
        }
        return Err(f);
    }
    if interrupted {
        return Err(Failure::new(
            Class::Interrupted,
            anyhow::anyhow!(
                "interrupted: in-flight operations finished and were recorded; run apply again to continue"
            ),
        ));
    }
    Ok(code::OK)
}

pub async fn refresh(g: &Global, env: &Env) -> Result<i32, Failure> {
    let s = open(g, env, "refresh").await?;
    let mut refreshed = matih_plans::refresh(&s.state, &s.providers, 10, g.refresh.into(), &env.progress).await?;
    for w in &refreshed.warnings {
        eprintln!("warning: {w}");
    }
    s.locked.save(&mut refreshed.state).await?;
    match g.format {
        Format::Json => print_json(&serde_json::json!({
            "state_serial": refreshed.state.serial,
            "resources": refreshed.state.resources.len(),
            "drift": refreshed.drift,
            "api_calls": refreshed.stats.calls,
            "retries": refreshed.stats.retries,
        }))?,
        Format::Text => {
            for d in &refreshed.drift {
                println!(
                    "{}: {}",
                    d.address,
                    if d.deleted {
                        "deleted outside matih-infra; forgotten".to_string()
                    } else {
                        format!(
                            "changed outside matih-infra ({})",
                            d.attributes.iter().map(|a| a.path.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    }
                );
            }
            println!(
                "Refreshed {} resource(s); {} drifted. State serial {}.",
                refreshed.state.resources.len(),
                refreshed.drift.len(),
                refreshed.state.serial
            );
        }
    }
    Ok(code::OK)
}

pub async fn graph(g: &Global) -> Result<i32, Failure> {
    let spec = Arc::new(context::load_spec(g)?);
    let cloud = context::cloud(g, &*spec)?;
    let desired = context::desired(&spec, cloud.as_ref())?;
    let mut out = String::from("digraph matih {\n  rankdir = \"BT\";\n");
    for (addr, d) in &desired.resources {
        out.push_str(&format!("  {:?};\n", addr.to_string()));
        for dep in d.dependencies() {
            out.push_str(&format!("  {:?} -> {:?};\n", addr.to_string(), dep.to_string()));
        }
    }
    out.push_str("}\n");
    print!("{out}");
    Ok(code::OK)
}
