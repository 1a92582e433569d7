//! A typed liveness check, so no caller writes the probe `oneof` by hand.

use std::time::Duration;

use slipway::v1::{ExecProbe, HealthCheck, HttpProbe, TcpProbe, health_check::Probe};

/// A liveness check: how a running workload is checked, how often, and how
/// many failures in a row make it unhealthy (it is then stopped and its
/// restart policy decides what comes next). Every check is kept in the
/// workload's health history ([`Client::health_history`](crate::Client::health_history)).
///
/// ```
/// use std::time::Duration;
/// use slipway_sdk::{DeploymentBuilder, Liveness};
/// let request = DeploymentBuilder::new("web")
///     .command(["sh", "-c", "exec python3 -m http.server \"$PORT\""])
///     .listen()
///     .liveness(
///         Liveness::http("/")
///             .interval(Duration::from_secs(5))
///             .timeout(Duration::from_secs(1))
///             .failure_threshold(3),
///     )
///     .build();
/// let check = request.spec.unwrap().liveness.unwrap();
/// assert_eq!(check.interval_ms, Some(5000));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Liveness {
    check: HealthCheck,
}

impl Liveness {
    fn probe(probe: Probe) -> Self {
        Liveness {
            check: HealthCheck {
                probe: Some(probe),
                ..HealthCheck::default()
            },
        }
    }

    /// Runs `argv` (in the container for Docker, beside the process otherwise);
    /// exit status 0 passes.
    pub fn exec<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::probe(Probe::Exec(ExecProbe {
            command: argv.into_iter().map(Into::into).collect(),
        }))
    }

    /// Runs a shell command line with `sh -c`, as Docker's `--health-cmd`.
    pub fn shell(command: impl Into<String>) -> Self {
        Self::exec(["sh".to_owned(), "-c".to_owned(), command.into()])
    }

    /// A GET of `path` on the workload's port; 2xx and 3xx pass.
    pub fn http(path: impl Into<String>) -> Self {
        Self::probe(Probe::Http(HttpProbe { path: path.into() }))
    }

    /// A TCP connect to the workload's port.
    pub fn tcp() -> Self {
        Self::probe(Probe::Tcp(TcpProbe {}))
    }

    /// How long between checks (at least 100 ms; the server's default otherwise).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.check.interval_ms = Some(millis(interval));
        self
    }

    /// How long one check may take before it counts as failed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.check.timeout_ms = Some(millis(timeout));
        self
    }

    /// Failures in a row that make the workload unhealthy.
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.check.failure_threshold = Some(failures);
        self
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

impl From<Liveness> for HealthCheck {
    fn from(liveness: Liveness) -> Self {
        liveness.check
    }
}
