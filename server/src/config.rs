//! Server settings: flags, each also from a `SLIPWAY_*` environment variable.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    ops::RangeInclusive,
    path::PathBuf,
    str::FromStr,
};

use crate::domain::UserSpec;

/// Settings of `slipway serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address the gRPC server listens on.
    #[arg(long, env = "SLIPWAY_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Directory for Slipway's own data (the SQLite database). It holds secrets:
    /// it is created 0700 (an existing one is tightened to 0700, with a warning)
    /// and the database files are 0600.
    #[arg(long, env = "SLIPWAY_DATA_DIR", default_value = "./.slipway")]
    pub data_dir: PathBuf,

    /// Database URL (`sqlite://PATH?mode=rwc` or `postgres://USER:PASSWORD@HOST/DB`);
    /// overrides --data-dir.
    #[arg(long, env = "SLIPWAY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,

    /// Service paths of deployments resolve under this directory; none may leave it.
    #[arg(long, env = "SLIPWAY_ROOT", default_value = ".")]
    pub root: PathBuf,

    /// Ports handed to workloads that listen, as FIRST-LAST.
    #[arg(long, env = "SLIPWAY_PORT_RANGE", default_value = "3100-3200", value_parser = parse_port_range)]
    pub port_range: RangeInclusive<u16>,

    /// Host address the ports of Docker workloads are published on; `0.0.0.0`
    /// publishes them on every address of the host. (Process workloads bind
    /// 127.0.0.1 themselves.)
    #[arg(long, env = "SLIPWAY_PUBLISH_ADDRESS", default_value = "127.0.0.1")]
    pub publish_address: IpAddr,

    /// At shutdown, running workloads get at most this many seconds to stop.
    #[arg(long, env = "SLIPWAY_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,

    /// What a shutdown does to running process workloads: `stop` them (within
    /// the shutdown grace period) or `leave` them running (the next start of
    /// Slipway stops them and marks them failed, as their output is lost).
    #[arg(long, env = "SLIPWAY_ON_SHUTDOWN", default_value = "stop", value_parser = ["stop", "leave"])]
    pub on_shutdown: String,

    /// Whether each process workload runs in its own cgroup (v2), so that a stop
    /// kills every process of it at once: `auto` (where cgroup v2 is usable; the
    /// server logs at start which applies) or `off` (the process group is
    /// killed, then every process carrying the workload's tag).
    #[arg(long, env = "SLIPWAY_PROCESS_CGROUPS", default_value = "auto", value_parser = ["auto", "off"])]
    pub process_cgroups: String,

    /// The variables of the server's environment that process workloads
    /// inherit, comma-separated (empty: none); everything else of it (a
    /// database password, tokens) stays with the server. A workload always gets
    /// its spec's env and secrets, PORT, SLIPWAY_WORKLOAD_ID, and a standard
    /// PATH when the server has none. Containers inherit nothing of it.
    #[arg(
        long,
        env = "SLIPWAY_PROCESS_ENV_ALLOW",
        value_name = "NAMES",
        default_value = crate::runtime::process::DEFAULT_ENV_ALLOW,
        value_delimiter = ','
    )]
    pub process_env_allow: Vec<String>,

    /// Who process workloads run as when their spec names no `user`: USER[:GROUP]
    /// (names or numeric ids, as Docker's --user). Unset or empty: the server's
    /// own user. Another user than the server's needs a server running as root.
    #[arg(long, env = "SLIPWAY_PROCESS_USER", value_name = "USER[:GROUP]", value_parser = UserSpec::parse)]
    pub process_user: Option<UserSpec>,

    /// Log lines kept per workload; the oldest are dropped first.
    #[arg(long, env = "SLIPWAY_LOG_RETENTION_LINES", default_value_t = 100_000)]
    pub log_retention_lines: u64,

    /// Characters of log message kept per workload; the oldest lines are dropped first.
    #[arg(long, env = "SLIPWAY_LOG_RETENTION_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub log_retention_bytes: u64,

    /// Longest line of output stored as one log line, in bytes; a longer line
    /// is stored as pieces of this size, each but the last ending with
    /// " [slipway: line continues]".
    #[arg(long, env = "SLIPWAY_LOG_MAX_LINE_BYTES", default_value_t = 16 * 1024)]
    pub log_max_line_bytes: usize,

    /// Events kept; a watch from an older revision fails with OUT_OF_RANGE.
    #[arg(long, env = "SLIPWAY_EVENT_RETENTION", default_value_t = 100_000)]
    pub event_retention: u64,

    /// Health checks older than this are deleted from the health history.
    #[arg(long, env = "SLIPWAY_HEALTH_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub health_retention: std::time::Duration,

    /// Health checks kept per workload (the newest).
    #[arg(long, env = "SLIPWAY_HEALTH_RETENTION_CHECKS", default_value_t = 1000)]
    pub health_retention_checks: u64,

    #[command(flatten)]
    pub node: crate::node::NodeConfig,
    /// Whether callers must present a token (`on`), or everyone who reaches
    /// the port is the administrator (`off`, refused unless the server listens
    /// on a loopback address). Health and reflection are always open.
    #[arg(long, env = "SLIPWAY_AUTH", default_value = "on", value_parser = ["on", "off"])]
    pub auth: String,

    /// A file holding the admin token (`slw_…`), made an admin token at start;
    /// without it, the first start writes a new one to DATA_DIR/admin.token.
    #[arg(long, env = "SLIPWAY_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Audit records older than this many days are deleted (checked hourly).
    #[arg(long, env = "SLIPWAY_AUDIT_RETENTION_DAYS", default_value_t = 90)]
    pub audit_retention_days: u64,

    #[command(flatten)]
    pub transport: crate::transport::TransportConfig,

    #[command(flatten)]
    pub limits: crate::limits::LimitsConfig,
}

impl ServeConfig {
    /// Embedded defaults under `data_dir`, services under `root`, listening where
    /// the caller binds (tests).
    pub fn new(data_dir: PathBuf, root: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url: None,
            root,
            port_range: 3100..=3200,
            publish_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            shutdown_grace_seconds: 10,
            on_shutdown: "stop".to_owned(),
            process_cgroups: "auto".to_owned(),
            process_env_allow: crate::runtime::process::DEFAULT_ENV_ALLOW
                .split(',')
                .map(str::to_owned)
                .collect(),
            process_user: None,
            log_retention_lines: 100_000,
            log_retention_bytes: 64 * 1024 * 1024,
            log_max_line_bytes: 16 * 1024,
            event_retention: 100_000,
            health_retention: std::time::Duration::from_secs(24 * 3600),
            health_retention_checks: 1000,
            node: crate::node::NodeConfig::default(),
            auth: "on".to_owned(),
            admin_token_file: None,
            audit_retention_days: 90,
            transport: crate::transport::TransportConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
        }
    }

    /// The database to use: --database-url, else SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.0.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("slipway.db").display()
            ),
        }
    }
}

/// A database URL; its password never shows in `Debug` output.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with("sqlite:")
            || text.starts_with("postgres://")
            || text.starts_with("postgresql://")
        {
            Ok(Self(text.to_owned()))
        } else {
            Err("expected a sqlite: or postgres:// URL".to_owned())
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&redact_password(&self.0))
    }
}

/// `scheme://user:PASSWORD@host/…` with the password replaced.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((user_info, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match user_info.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let (first, last) = text
        .split_once('-')
        .ok_or_else(|| "expected FIRST-LAST, like 3100-3200".to_owned())?;
    let first: u16 = first
        .trim()
        .parse()
        .map_err(|_| format!("{first:?} is not a port"))?;
    let last: u16 = last
        .trim()
        .parse()
        .map_err(|_| format!("{last:?} is not a port"))?;
    if first == 0 || first > last {
        return Err("the range must be FIRST-LAST with 0 < FIRST <= LAST".to_owned());
    }
    Ok(first..=last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse() {
        assert_eq!(parse_port_range("3100-3200"), Ok(3100..=3200));
        assert!(parse_port_range("3200-3100").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("80").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl("postgres://slipway:hunter2@localhost/slipway".to_owned());
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("slipway:***@localhost"));
    }
}
