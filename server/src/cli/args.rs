//! The client commands' flags and arguments, with the help text and examples
//! that `slipway COMMAND --help` shows.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Subcommand};
use clap_complete::Shell;

use super::output::OutputFormat;

/// Flags every client command takes.
#[derive(Args, Debug, Clone)]
pub struct GlobalOptions {
    /// The Slipway server to talk to: `http://HOST:PORT`, `https://HOST:PORT`
    /// (TLS) or `unix:///PATH` (a server's socket; no token needed there).
    /// Default: the socket ./.slipway/slipway.sock of a server started in this
    /// directory when it exists, else http://127.0.0.1:50051.
    #[arg(long, env = "SLIPWAY_SERVER", global = true)]
    pub server: Option<String>,

    /// TLS: the CA certificate (PEM) the server's certificate must be signed
    /// by (default: the system's roots). The TLS flags apply to https://
    /// servers only.
    #[arg(long, env = "SLIPWAY_TLS_CA", value_name = "PEM", global = true)]
    pub tls_ca: Option<PathBuf>,

    /// Mutual TLS: the client certificate (PEM) presented to the server.
    /// Needs --tls-client-key.
    #[arg(
        long,
        env = "SLIPWAY_TLS_CLIENT_CERT",
        value_name = "PEM",
        global = true
    )]
    pub tls_client_cert: Option<PathBuf>,

    /// Mutual TLS: the client certificate's private key (PEM).
    #[arg(
        long,
        env = "SLIPWAY_TLS_CLIENT_KEY",
        value_name = "PEM",
        global = true
    )]
    pub tls_client_key: Option<PathBuf>,

    /// The token sent to the server (`authorization: Bearer …`).
    #[arg(
        long,
        env = "SLIPWAY_TOKEN",
        hide_env_values = true,
        global = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,

    /// A file holding the token sent to the server.
    #[arg(long, env = "SLIPWAY_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,

    /// Output format: `table` for people, `json` for scripts (one object or an
    /// array; streams print one object per line).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table, global = true)]
    pub output: OutputFormat,
}

/// `slipway token …`: admin tokens only.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; prints it once (the server keeps only its hash).
    #[command(after_help = "Examples:
  slipway token create --name ci --role operator --project web --expires-in 30d
  slipway token create --name dashboard --role viewer")]
    Create {
        /// A name for people (shown in the audit trail).
        #[arg(long)]
        name: String,
        /// viewer (read and stream), operator (also start, stop, create, delete)
        /// or admin (everything, tokens and audit too).
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// A project the token may act on; repeat for more. None: every project.
        #[arg(long = "project")]
        projects: Vec<String>,
        /// Expires after this long (`12h`, `30d`); by default never.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    Ls,
    /// Revoke a token: calls with it are refused from then on.
    Revoke {
        /// The token's id (from `slipway token ls`).
        id: String,
    },
}

/// `slipway audit`: admin tokens only.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only records since a duration ago (`1h`, `2d`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only this actor: a token's name or id, `local`, or a peer address.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action, like StartWorkload.
    #[arg(long)]
    pub action: Option<String>,
    /// Only this target: a deployment, workload or token id.
    #[arg(long)]
    pub target: Option<String>,
    /// At most this many records, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// How a workload's control characters (ANSI escapes, carriage returns) are
/// printed.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct ControlCharArgs {
    /// Print the workload's output as it is, escape sequences included (by
    /// default they are shown as text, like `^[[31m`, on a terminal).
    #[arg(long, conflicts_with = "escape")]
    pub raw: bool,

    /// Show control characters as text even when stdout is not a terminal.
    #[arg(long)]
    pub escape: bool,
}

/// The client commands.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Manage access tokens (admin).
    #[command(subcommand)]
    Token(TokenCommand),

    /// Show the audit trail of mutating calls (admin).
    #[command(after_help = "Examples:
  slipway audit --since 1h
  slipway audit --actor ci --action StartWorkload -o json")]
    Audit(AuditArgs),

    /// Create a deployment and a workload of it, and start it.
    ///
    /// In the foreground it shows each stage as it happens, then follows the logs;
    /// Ctrl-C stops the workload (exit code 130). With -d it returns once the
    /// workload is RUNNING and prints its id.
    #[command(after_help = "Examples:
  slipway run --name ticker -- sh -c 'while :; do date; sleep 1; done'
  slipway run -d --name web --port -- sh -c 'exec python3 -m http.server \"$PORT\"'
  slipway run -d --path services/api -e LOG_LEVEL=debug -l team=core -- ./api
  slipway run -d --name nginx --image nginx:1.27 --port 80")]
    Run(Box<RunArgs>),

    /// Apply a TOML or YAML spec file: create the deployment and start a
    /// workload of it, or update the deployment of that name to match.
    ///
    /// Prints `created`, `updated to revision N` (then follows the rollout to
    /// the running workloads, unless -d) or `unchanged`. Applying the same
    /// file twice changes nothing the second time.
    #[command(after_help = "Examples:
  slipway deploy -f examples/deployment.toml
  slipway deploy -f web.yaml --no-start
  slipway deploy -f web.yaml -d")]
    Deploy(DeployArgs),

    /// Change a deployment: a new revision, rolled out to its running workloads.
    ///
    /// Only what is given changes. The deployment's update strategy (rolling
    /// by default: one workload restarted at a time, each ready before the
    /// next) takes the change to its running workloads; the command follows
    /// that rollout until it ends, unless -d. A removed variable is gone from
    /// the next run. See also `slipway rollout history` and `rollout undo`.
    #[command(after_help = "Examples:
  slipway update web -e LOG_LEVEL=debug --unset-env OLD_FLAG
  slipway update web --image nginx:1.27 --expect-revision 3
  slipway update web --strategy rolling --max-surge 1 -d
  slipway update worker --strategy on-restart")]
    Update(super::changes::UpdateArgs),

    /// List deployments.
    #[command(after_help = "Examples:
  slipway deployments
  slipway deployments -o json")]
    Deployments,

    /// Manage deployments.
    #[command(subcommand)]
    Deployment(DeploymentCommand),

    /// List workloads: by default those running or on their way, -a for all.
    #[command(after_help = "Examples:
  slipway ps
  slipway ps -a --deployment web
  slipway ps --stage failed -o json
  slipway ps -q -l team=core")]
    Ps(PsArgs),

    /// Start pending workloads.
    ///
    /// A deployment name stands for its pending workloads; a deployment with
    /// none pending or running gets a new workload, started.
    #[command(after_help = "Examples:
  slipway start 3f2a9c
  slipway start --deployment web")]
    Start(ControlArgs),

    /// Stop workloads (SIGTERM, the grace period, then SIGKILL).
    ///
    /// A deployment name stands for its workloads that are not stopped yet (or its
    /// most recent one). Selectors pick the workloads not stopped yet.
    #[command(after_help = "Examples:
  slipway stop 3f2a9c 81bd04 web
  slipway stop --deployment web -t 5
  slipway stop --all")]
    Stop(StopArgs),

    /// Restart workloads: stop if running, then run again as the next generation.
    ///
    /// A deployment name stands for its workloads that are not stopped yet (or its
    /// most recent one). Selectors pick every matching workload.
    #[command(after_help = "Examples:
  slipway restart 3f2a9c
  slipway restart -l team=core")]
    Restart(ControlArgs),

    /// Remove workloads (stopped first if needed) with their logs.
    ///
    /// A deployment name stands for all its workloads. As `docker rm` frees a
    /// name, a deployment whose last workload is removed goes with it.
    #[command(after_help = "Examples:
  slipway rm 3f2a9c
  slipway rm web
  slipway rm -f --deployment web")]
    Rm(RmArgs),

    /// Print a workload's log.
    ///
    /// A deployment name stands for its most recent workload.
    #[command(after_help = "Examples:
  slipway logs 3f2a9c
  slipway logs -f --tail 20 web
  slipway logs --since 10m --timestamps web
  slipway logs --since 2025-01-31T12:00:00Z --stderr-only 3f2a9c")]
    Logs(LogsArgs),

    /// Print everything about a workload, with its deployment, as JSON.
    ///
    /// A deployment name stands for its most recent workload.
    #[command(after_help = "Examples:
  slipway inspect 3f2a9c
  slipway inspect web | jq .stage")]
    Inspect(InspectArgs),

    /// Show a workload's liveness checks and its uptime over a window.
    ///
    /// Uptime is the share of the window's checks that passed; checks are kept
    /// for the server's --health-retention. A deployment name stands for its
    /// most recent workload.
    #[command(after_help = "Examples:
  slipway health web
  slipway health 3f2a9c --window 24h -n 50
  slipway health web -o json | jq .uptime")]
    Health(HealthArgs),

    /// Print events (every change, with a revision to resume from).
    #[command(after_help = "Examples:
  slipway events
  slipway events -f --since-revision 42
  slipway events -f --workload 3f2a9c -o json")]
    Events(EventsArgs),

    /// List the nodes: every `slipway serve` sharing the server's database.
    #[command(after_help = "Examples:
  slipway nodes
  slipway nodes --all -o json")]
    Nodes(NodesArgs),

    /// Commands on one node.
    #[command(subcommand)]
    Node(NodeCommand),

    /// Rollouts: rolling restarts (admin), a deployment's revisions and rollback.
    #[command(subcommand)]
    Rollout(RolloutCommand),

    /// List fleet operations (drains, rolling restarts), newest first.
    #[command(after_help = "Examples:
  slipway operations
  slipway operations --running -o json")]
    Operations(OperationsArgs),

    /// Commands on one fleet operation.
    #[command(subcommand)]
    Operation(OperationCommand),

    /// Serve the Model Context Protocol on stdin/stdout, for agent clients.
    ///
    /// Tools: list_deployments, list_workloads, get_workload, run, start, stop,
    /// restart, delete_workload, delete_deployment, read_logs, wait_for_stage.
    /// It talks to --server with --token/--token-file, connecting on the first
    /// tool call. Configure a client to launch `slipway mcp` (see the README).
    #[command(after_help = "Examples:
  slipway mcp --server http://127.0.0.1:50051 --token-file .slipway/admin.token
  SLIPWAY_TOKEN=slw_... slipway mcp --follow-seconds 10")]
    Mcp(McpArgs),

    /// A terminal UI: workloads (live), deployments, nodes, events, and a
    /// workload's detail with its live log; stop, restart, start, delete and
    /// node pause/resume, each confirmed. `?` in the UI lists the keys.
    #[command(after_help = "Examples:
  slipway ui
  slipway ui --server https://slipway.example:50051 --token-file ops.token")]
    Ui,

    /// Print a shell completion script.
    #[command(after_help = "Examples:
  slipway completion bash > /etc/bash_completion.d/slipway
  slipway completion zsh > \"${fpath[1]}/_slipway\"
  slipway completion fish > ~/.config/fish/completions/slipway.fish")]
    Completion(CompletionArgs),
}

/// `slipway mcp`.
#[derive(Args, Debug)]
pub struct McpArgs {
    /// How long start, stop, restart and run follow their operation before
    /// answering with what happened so far (MCP clients time out long calls).
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    pub follow_seconds: u64,
}

/// `slipway run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The deployment's name (generated when not given).
    #[arg(long)]
    pub name: Option<String>,

    /// The service directory, relative to the server's --root.
    #[arg(long, default_value = ".")]
    pub path: String,

    /// Run this Docker image.
    #[arg(long, conflicts_with = "dockerfile")]
    pub image: Option<String>,

    /// Build and run this Dockerfile (relative to --path).
    #[arg(long)]
    pub dockerfile: Option<String>,

    /// An environment variable for the workload, as NAME=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,

    /// Listen on a port from the server's pool: a process gets it in $PORT; a
    /// container gives the port it listens on inside (`--port 80`).
    #[arg(long, value_name = "CONTAINER_PORT", num_args = 0..=1)]
    pub port: Option<Option<u16>>,

    /// Restart policy, as Docker's: no, on-failure[:MAX], always, unless-stopped.
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,

    /// A label on the deployment, as KEY=VALUE (repeatable).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,

    /// Run as this user, as Docker's --user: name, uid, name:group or uid:gid.
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Memory limit, as Docker's --memory: bytes, or with a unit b, k, m, g (256m).
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = parse_memory)]
    pub memory: Option<u64>,

    /// CPU limit in CPUs, as Docker's --cpus (0.5: half a CPU).
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    pub cpus: Option<u32>,

    /// The most files a process may have open (RLIMIT_NOFILE), as Docker's
    /// --ulimit nofile=N.
    #[arg(long, value_name = "N")]
    pub max_open_files: Option<u64>,

    /// Run only on nodes with this label (`slipway serve --node-label`), as
    /// KEY=VALUE (repeatable; a node needs every one).
    #[arg(long = "node-selector", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub node_selector: Vec<(String, String)>,

    #[command(flatten)]
    pub health: HealthCheckArgs,

    /// Environment variables from a file: NAME=VALUE lines (blank lines and
    /// `#` comments skipped; a bare NAME takes this shell's value), as
    /// Docker's --env-file (repeatable; -e wins).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// A secret environment variable, NAME=VALUE: passed to the workload,
    /// never shown (masked in logs and the API) (repeatable).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub secret: Vec<(String, String)>,

    /// A secret environment variable from a file, NAME=PATH (its content, a
    /// final newline dropped) (repeatable).
    #[arg(long, value_name = "NAME=PATH", value_parser = parse_key_value)]
    pub secret_file: Vec<(String, String)>,

    /// The first signal of a stop (default SIGTERM), as Docker's --stop-signal.
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,

    /// Seconds between the stop signal and SIGKILL, as Docker's --stop-timeout.
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,

    /// When the workload counts as RUNNING: `tcp` (its port accepts; the
    /// default with --port), `http:/PATH` (a 2xx/3xx answer) or `none`.
    #[arg(long, value_name = "tcp|http:/PATH|none")]
    pub readiness: Option<String>,

    /// Remove the workload and its deployment once the foreground run ends
    /// (as Docker's --rm); not with -d.
    #[arg(long, conflicts_with = "detach")]
    pub rm: bool,

    /// Return once the workload is RUNNING and print its id.
    #[arg(short = 'd', long)]
    pub detach: bool,

    #[command(flatten)]
    pub control_chars: ControlCharArgs,

    /// The command and its arguments (no shell: use `sh -c '...'` for one).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// A liveness check on `slipway run`, with Docker's flag names. Unlike
/// Docker, a workload unhealthy for --health-retries checks in a row is
/// stopped, and its restart policy (--restart) decides what comes next.
#[derive(Args, Debug, Default)]
pub struct HealthCheckArgs {
    /// A command line, run with `sh -c` (beside the process, or in the
    /// container), checking the workload while it runs: exit status 0 passes.
    /// Every check is kept (`slipway health`).
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,

    /// Time between checks (default 10s, at least 100ms).
    #[arg(long, value_name = "DURATION", requires = "health_cmd", value_parser = humantime::parse_duration)]
    pub health_interval: Option<std::time::Duration>,

    /// How long one check may take (default 1s).
    #[arg(long, value_name = "DURATION", requires = "health_cmd", value_parser = humantime::parse_duration)]
    pub health_timeout: Option<std::time::Duration>,

    /// Failures in a row that make it unhealthy (default 3).
    #[arg(long, value_name = "N", requires = "health_cmd")]
    pub health_retries: Option<u32>,
}

/// `slipway deploy`.
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The spec file: `.toml`, `.yaml` or `.yml` (see examples/deployment.toml).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,

    /// Only create the deployment (start no workload); print its id.
    #[arg(long)]
    pub no_start: bool,

    /// On an update, do not follow the rollout: print its operation id and return.
    #[arg(short = 'd', long)]
    pub detach: bool,
}

/// `slipway deployment …`.
#[derive(Subcommand, Debug)]
pub enum DeploymentCommand {
    /// Remove deployments with all their workloads (stopped first).
    #[command(after_help = "Examples:
  slipway deployment rm web
  slipway deployment rm 9c1e04 api")]
    Rm {
        /// Deployment names, ids or unique id prefixes.
        #[arg(required = true, value_name = "NAME|ID")]
        targets: Vec<String>,
    },
}

/// `slipway ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all workloads, also pending, stopped and failed ones.
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Only workloads of this deployment (name, id or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    pub deployment: Option<String>,

    /// Only workloads in this stage (pending, validate, build, deploy, running,
    /// stopping, stopped, failed); implies -a.
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,

    /// Only workloads whose deployment has this label, as KEY=VALUE (repeatable).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,

    /// Print only the short ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Which workloads a control command acts on.
#[derive(Args, Debug)]
pub struct ControlArgs {
    /// Workload ids, unique id prefixes, or deployment names.
    #[arg(value_name = "ID")]
    pub targets: Vec<String>,

    /// Also every workload of this deployment (name, id or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    pub deployment: Option<String>,

    /// Also every workload whose deployment has this label, as KEY=VALUE (repeatable).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,

    /// Every workload.
    #[arg(long)]
    pub all: bool,

    /// Seconds each operation may take before it is reported as failed (it goes
    /// on on the server).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
}

/// `slipway rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    #[command(flatten)]
    pub control: ControlArgs,

    /// Accepted for Docker's habit: a running workload is always stopped first.
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `slipway stop`.
#[derive(Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    pub control: ControlArgs,

    /// Seconds between SIGTERM and SIGKILL (default: the deployment's grace period).
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub grace_seconds: Option<u32>,
}

/// `slipway logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// A workload id, unique id prefix, or deployment name.
    #[arg(value_name = "ID")]
    pub target: String,

    /// Keep printing new lines; ends when the workload stops.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Only the last N lines (of those the other filters keep).
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<u32>,

    /// Only lines since a duration ago (`30s`, `10m`, `2h`, `1d`, `1h30m`) or a
    /// time (RFC 3339, like `2025-01-31T12:00:00Z`).
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,

    /// Only lines before a duration ago or a time (as --since); the output ends
    /// at the first line after it, -f too.
    #[arg(long, value_name = "DURATION|TIME")]
    pub until: Option<String>,

    /// Prefix each line with its time (RFC 3339).
    #[arg(short = 't', long)]
    pub timestamps: bool,

    /// Only the workload's standard error.
    #[arg(long, conflicts_with_all = ["stdout_only", "no_system"])]
    pub stderr_only: bool,

    /// Only the workload's standard output.
    #[arg(long, conflicts_with = "no_system")]
    pub stdout_only: bool,

    /// Only the workload's own output: not Slipway's lines about it.
    #[arg(long)]
    pub no_system: bool,

    #[command(flatten)]
    pub control_chars: ControlCharArgs,
}

/// A size in bytes, as Docker's `--memory`: a number with an optional unit
/// `b`, `k`, `m` or `g` (powers of 1024).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(index) => lower.split_at(index),
        None => (lower.as_str(), ""),
    };
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{text:?}: expected a size such as 256m or 1g")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?}: expected a size such as 256m or 1g"))
}

/// CPUs as Docker's `--cpus` (`0.5`, `2`), in thousandths.
pub fn parse_cpus(text: &str) -> Result<u32, String> {
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected a number of CPUs such as 0.5"))?;
    if !(0.001..=1024.0).contains(&cpus) {
        return Err(format!("{text:?}: expected between 0.001 and 1024 CPUs"));
    }
    Ok((cpus * 1000.0).round() as u32)
}

/// `slipway inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A workload id, unique id prefix, or deployment name.
    #[arg(value_name = "ID")]
    pub target: String,
}

/// `slipway health`.
#[derive(Args, Debug)]
pub struct HealthArgs {
    /// A workload id, unique id prefix, or deployment name.
    #[arg(value_name = "ID")]
    pub target: String,

    /// How far back: uptime counts every check of the window.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub window: std::time::Duration,

    /// Checks listed, newest first (at most 1000).
    #[arg(short = 'n', long = "limit", default_value_t = 20)]
    pub limit: u32,
}

/// `slipway events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only events after this revision (0: all that are retained).
    #[arg(long, value_name = "R", default_value_t = 0)]
    pub since_revision: u64,

    /// Only events since a duration ago (`10m`, `2h`, `1h30m`) or a time (RFC 3339).
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,

    /// Keep printing new events until interrupted.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Only events of this deployment (name, id or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    pub deployment: Option<String>,

    /// Only events of this workload (id, prefix, or a deployment name for its latest).
    #[arg(long, value_name = "ID")]
    pub workload: Option<String>,
}

/// `slipway completion`.
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell to complete for.
    pub shell: Shell,
}

/// Parses `KEY=VALUE`.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// `slipway nodes`.
#[derive(Args, Debug)]
pub struct NodesArgs {
    /// Also nodes that left cleanly.
    #[arg(short, long)]
    pub all: bool,
}

/// `slipway node …`.
#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Print everything about a node, as JSON.
    #[command(after_help = "Examples:
  slipway node inspect node-a")]
    Inspect {
        /// A node id or name.
        node: String,
    },
    /// Take a node out of placement: it takes no new workloads, what runs
    /// there keeps running.
    #[command(after_help = "Examples:
  slipway node pause node-b
  slipway node pause node-a --force --confirm node-a   # even the last node that takes work")]
    Pause {
        /// A node id or name.
        node: String,
        /// Pause it even where that is refused as unsafe (the last node that
        /// takes work); needs the node's name as confirmation (asked for on a
        /// terminal, or --confirm).
        #[arg(long)]
        force: bool,
        /// With --force: the node's name, typed out.
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
    },
    /// Let a paused (or drained) node take new workloads again; resuming a
    /// node that is draining cancels the drain.
    #[command(after_help = "Examples:
  slipway node resume node-b")]
    Resume {
        /// A node id or name.
        node: String,
    },
    /// Move every workload off a node, then leave it drained: for each, a
    /// replacement starts on another node and, once it has been ready for
    /// --min-healthy, the old one stops. Follows the drain until it ends
    /// (Ctrl-C leaves it running; -d returns at once).
    #[command(after_help = "Examples:
  slipway node drain node-b
  slipway node drain node-b --parallel 2 --deadline 30m -d
  slipway node drain node-a --force --confirm node-a   # even the last node that takes work")]
    Drain(DrainArgs),
}

/// `slipway node drain`.
#[derive(Args, Debug)]
pub struct DrainArgs {
    /// A node id or name.
    pub node: String,
    /// Give up moving after this long; then --force stops what is left.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// Workloads moved at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: u32,
    /// How long a replacement must be ready before the old workload stops.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub min_healthy: Duration,
    /// A replacement not healthy after this long has failed.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub healthy_deadline: Duration,
    /// Drain even where that is refused as unsafe, and stop what cannot move;
    /// needs the node's name as confirmation (asked for on a terminal, or
    /// --confirm).
    #[arg(long)]
    pub force: bool,
    /// With --force: the node's name, typed out.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
    /// Return once the drain began, printing its operation id.
    #[arg(short, long)]
    pub detach: bool,
}

/// `slipway rollout …`.
#[derive(Subcommand, Debug)]
pub enum RolloutCommand {
    /// Restart running workloads in place, --max-unavailable at a time, each
    /// ready for --min-healthy before the next goes down. Follows the
    /// operation until it ends (-d returns at once).
    #[command(after_help = "Examples:
  slipway rollout restart web
  slipway rollout restart --selector tier=api --max-unavailable 25%
  slipway rollout restart --node node-b --max-unavailable 2 --on-failure abort")]
    Restart(RolloutRestartArgs),

    /// A deployment's revisions, newest first: when, by whom, what changed.
    #[command(after_help = "Examples:
  slipway rollout history web
  slipway rollout history web -o json")]
    History(super::changes::HistoryArgs),

    /// Roll a deployment back: a new revision with an earlier one's spec,
    /// rolled out as an update is (secret values are not kept in revisions:
    /// the current secrets stay, and a note says when they differ).
    #[command(after_help = "Examples:
  slipway rollout undo web
  slipway rollout undo web --to-revision 2 -d")]
    Undo(super::changes::UndoArgs),
}

/// `slipway rollout restart`.
#[derive(Args, Debug)]
pub struct RolloutRestartArgs {
    /// A deployment (name or id): its running workloads.
    pub deployment: Option<String>,
    /// Instead: the running workloads of deployments with these labels
    /// (KEY=VALUE; repeat for more).
    #[arg(long, value_parser = parse_key_value)]
    pub selector: Vec<(String, String)>,
    /// Instead: the running workloads on these nodes (repeat for more).
    #[arg(long = "node")]
    pub nodes: Vec<String>,
    /// How many may be down at once: a count ("2") or a share ("25%").
    #[arg(long, default_value = "1")]
    pub max_unavailable: String,
    /// How long each must be ready again before the next restarts.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub min_healthy: Duration,
    /// A workload not ready again after this long has failed.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub healthy_deadline: Duration,
    /// The whole operation gives up after this long.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// On a workload that does not come back ready: pause the operation, or
    /// abort it.
    #[arg(long, default_value = "pause", value_parser = ["pause", "abort"])]
    pub on_failure: String,
    /// Refuse when a deployment would have fewer running workloads than this
    /// while it restarts.
    #[arg(long, default_value_t = 0)]
    pub min_available: u32,
    /// Go on although --min-available would be broken; needs the target as
    /// confirmation (--confirm).
    #[arg(long)]
    pub force: bool,
    /// With --force: the target, typed out (the deployment's name, the
    /// selector as K=V[,K=V], or the nodes joined by commas).
    #[arg(long, value_name = "TARGET")]
    pub confirm: Option<String>,
    /// Return once the operation began, printing its id.
    #[arg(short, long)]
    pub detach: bool,
}

/// `slipway operations`.
#[derive(Args, Debug)]
pub struct OperationsArgs {
    /// Only those under way (running or paused).
    #[arg(long)]
    pub running: bool,
}

/// `slipway operation …`.
#[derive(Subcommand, Debug)]
pub enum OperationCommand {
    /// Print everything about an operation, item by item, as JSON.
    #[command(after_help = "Examples:
  slipway operation inspect op-3f2a9c0d1e2b")]
    Inspect { id: String },
    /// Follow an operation until it ends.
    #[command(after_help = "Examples:
  slipway operation watch op-3f2a9c0d1e2b")]
    Watch { id: String },
    /// Start no more of its items; those under way finish.
    Pause { id: String },
    /// Carry on with a paused operation.
    Resume { id: String },
    /// End it once the items under way are done (a cancelled drain leaves the
    /// node paused).
    Cancel { id: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cpus_read_as_dockers() {
        assert_eq!(parse_memory("256m"), Ok(256 * 1024 * 1024));
        assert_eq!(parse_memory("1G"), Ok(1024 * 1024 * 1024));
        assert_eq!(parse_memory("4096"), Ok(4096));
        for bad in ["", "m", "12x", "-1m", "99999999999999999999g"] {
            assert!(parse_memory(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_cpus("0.5"), Ok(500));
        assert_eq!(parse_cpus("2"), Ok(2000));
        for bad in ["0", "-1", "nan", "inf", "x"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?}");
        }
    }
}
