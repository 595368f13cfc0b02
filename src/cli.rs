//! Command-line types (clap). No behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "matih-infra",
    version,
    about = "Stands up the MATIH platform's Kubernetes infrastructure on EKS, GKE and AKS",
    long_about = None,
    after_help = "Exit codes: 0 ok, 1 error, 2 changes present (plan --detailed-exitcode), \
3 blocked by the replacement guard, 64 bad arguments, 70 internal error, 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The platform spec; tenants are read from `tenants/*.yaml` beside it.
    #[arg(short = 'c', long = "config", global = true, default_value = "matih.yaml", env = "MATIH_CONFIG")]
    pub config: PathBuf,
    /// Where state is: a file, or s3://<bucket>/<key>, gs://<bucket>/<key>,
    /// azblob://<account>/<container>/<key> [default: the platform spec's `state:` section, or
    /// .matih/state/<environment>-<cloud>.json beside the spec].
    #[arg(long, global = true, env = "MATIH_STATE")]
    pub state: Option<PathBuf>,
    /// Which cloud to work on.
    #[arg(long, global = true, env = "MATIH_CLOUD", value_parser = crate::clouds::parser())]
    pub cloud: Option<String>,
    /// Output format on stdout.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// More detail on stderr (API call counts, timings).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// No colour (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// How to refresh state: one list call per resource type, or one read per resource.
    #[arg(long, global = true, value_enum, default_value_t = RefreshArg::Batched)]
    pub refresh: RefreshArg,
    /// Wait this long for the state lock held by another process [e.g. 30s, 5m; 0 = fail at once].
    #[arg(long, global = true, default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Use the state file even though its backup is of another lineage (you put another copy of
    /// the state there on purpose); the next save makes the backup match.
    #[arg(long, global = true)]
    pub force_lineage: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RefreshArg {
    Batched,
    PerResource,
}

impl From<RefreshArg> for matih_plans::RefreshMode {
    fn from(r: RefreshArg) -> Self {
        match r {
            RefreshArg::Batched => matih_plans::RefreshMode::Batched,
            RefreshArg::PerResource => matih_plans::RefreshMode::PerResource,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the platform spec and its tenants.
    Validate,
    /// Refresh state against the cloud and show what apply would change.
    Plan(PlanArgs),
    /// Plan and apply, or apply a saved plan exactly.
    Apply(ApplyArgs),
    /// Delete everything in state, dependents first.
    Destroy(DestroyArgs),
    /// Refresh state against the cloud and record what is there, changing nothing in the cloud.
    Refresh,
    /// Inspect or edit the state file.
    #[command(subcommand)]
    State(StateCommand),
    /// Print outputs recorded by the last apply.
    Output {
        /// One output; sensitive outputs are printed only when named.
        name: Option<String>,
    },
    /// Print the resource dependency graph in Graphviz DOT.
    Graph,
    /// Add, remove or list tenants (their files beside the platform spec).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// What the platform's network policies allow.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print a kubeconfig for the cluster in state; it runs the cloud's own credential plugin.
    Kubeconfig,
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args, Clone, Default)]
pub struct GuardArgs {
    /// Allow replacing or deleting this protected resource (repeatable).
    #[arg(long = "allow-replace", value_name = "ADDR")]
    pub allow_replace: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Save the plan for `apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 for no changes, 2 for changes, 1 for errors, 3 when the replacement guard blocks.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan a destroy instead.
    #[arg(long)]
    pub destroy: bool,
    #[arg(long, requires = "destroy")]
    pub include_protected: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `plan --out`; applied exactly, refused if state or spec moved on.
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// How many resources to work on at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Also delete protected resources (clusters, networks, DNS zones, reserved addresses).
    #[arg(long, conflicts_with = "prune_orphans")]
    pub include_protected: bool,
    /// Delete only the orphans the plan reports (resources carrying this platform's owner tags
    /// that state does not know), and nothing in state.
    #[arg(long)]
    pub prune_orphans: bool,
    #[arg(long)]
    pub auto_approve: bool,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List recorded resources.
    List,
    /// Show one resource's recorded attributes.
    Show { address: String },
    /// Forget resources without deleting them in the cloud.
    Rm {
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Move a resource to another address.
    Mv { from: String, to: String },
    /// Record an existing cloud resource (an orphan the plan reports) at an address of the
    /// platform, so the next plan manages it instead of creating another.
    Import {
        /// The address, as the plan shows it (quote it: `'eks.eip.nat["us-east-1a"]'`).
        address: String,
        /// The cloud's id of the resource (`vpc-0abc…`, a zone id).
        id: String,
    },
    /// Break a lock left behind, naming it by the id `state lock status` shows. Remote locks
    /// also run out on their own when their holder stops renewing them; local locks are released
    /// by the OS when their holder exits, and a live holder's lock is never broken.
    Unlock {
        #[arg(long, required = true)]
        force: bool,
        /// The lock's id, as `state lock status` shows it.
        lock_id: String,
    },
    /// The state lock.
    #[command(subcommand)]
    Lock(LockCommand),
    /// Copy state to another store, keeping its lineage and serial: `--to s3` (or gcs, azblob)
    /// moves the local file to the store the platform spec's `state:` section names; `--to
    /// local` brings it back; a URL or path names any other place. Refuses to overwrite another
    /// lineage or a newer state, and leaves the source as it was.
    Migrate {
        /// `local`, `s3`, `gcs`, `azblob`, a path, or s3://<bucket>/<key>, gs://<bucket>/<key>,
        /// azblob://<account>/<container>/<key>.
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Who holds the state lock: id, host, pid, command, since when and, for a remote store,
    /// until when its lease runs.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add `tenants/<slug>.yaml` (validated with the whole platform spec). Adding a tenant that
    /// exists with the same settings changes nothing.
    Add(TenantAddArgs),
    /// Remove `tenants/<slug>.yaml`; with --apply, tear down everything the tenant had.
    Remove(TenantRemoveArgs),
    /// List the tenants of the platform spec.
    List,
}

#[derive(Debug, Args)]
pub struct TenantAddArgs {
    /// The tenant's DNS label: it serves on <slug>.<zone>.
    pub slug: String,
    /// The name people see [default: the slug].
    #[arg(long)]
    pub name: Option<String>,
    /// Give the tenant its own ingress controller and load balancer.
    #[arg(long)]
    pub dedicated_ingress: bool,
    #[command(flatten)]
    pub apply: TenantApplyArgs,
}

#[derive(Debug, Args)]
pub struct TenantRemoveArgs {
    pub slug: String,
    #[command(flatten)]
    pub apply: TenantApplyArgs,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct TenantApplyArgs {
    /// Also plan and apply what the tenant changes (and nothing else), without asking: the flag
    /// is the confirmation. Waits for the state lock per --lock-timeout.
    #[arg(long)]
    pub apply: bool,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Which namespace may reach which namespace on which ports, from the generated policies.
    Report,
}
