//! For the CLI tests: a real server in-process on `127.0.0.1:0`, and the real
//! `slipway` binary run against it as a subprocess.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    path::Path,
    process::{Output, Stdio},
    sync::atomic::{AtomicU16, Ordering},
    time::Duration,
};

use slipway_sdk::{Client, proto::Workload};
use slipway_server::{config::ServeConfig, server};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};

/// How long a test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The `slipway` binary under test.
pub const SLIPWAY: &str = env!("CARGO_BIN_EXE_slipway");

/// Each server of a test process gets its own slice of workload ports.
fn port_range() -> std::ops::RangeInclusive<u16> {
    static NEXT_SLICE: AtomicU16 = AtomicU16::new(0);
    let slice = NEXT_SLICE.fetch_add(1, Ordering::Relaxed) % 10;
    let process_slot = (std::process::id() % 200) as u16;
    let first = 40_000 + process_slot * 100 + slice * 10;
    first..=first + 9
}

/// A running server, a client on it, and a way to run the CLI against it.
pub struct Harness {
    pub client: Client,
    /// The admin token, in a file: `SLIPWAY_TOKEN_FILE` of the CLI runs.
    pub token_file: std::path::PathBuf,
    pub address: SocketAddr,
    _data: TempDir,
    root: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), server::ServerError>>>,
}

impl Harness {
    /// A server with fresh data and root directories.
    pub async fn start() -> Harness {
        let data = TempDir::new().expect("data dir");
        let root = TempDir::new().expect("root dir");
        let mut config = ServeConfig::new(data.path().join("data"), root.path().to_path_buf());
        config.port_range = port_range();
        let token_file = data.path().join("admin.token");
        let token = slipway_server::access::NewToken::generate().expect("random token");
        std::fs::write(&token_file, &token.token).expect("write the admin token");
        config.admin_token_file = Some(token_file.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(config, listener, async move {
            let _ = signal.await;
        }));
        let client = Client::builder(format!("http://{address}"))
            .token(token.token)
            .connect()
            .await
            .expect("connect");
        Harness {
            client,
            token_file,
            address,
            _data: data,
            root,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The server's URL, for `--server`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The server's data directory (its Unix socket is `slipway.sock` in it).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._data.path().join("data")
    }

    /// The directory service paths resolve under.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A `slipway` command aimed at this server (`--server` set, no colour).
    pub fn command(&self, arguments: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(SLIPWAY);
        command
            .args(arguments)
            .env("SLIPWAY_SERVER", self.url())
            .env("SLIPWAY_TOKEN_FILE", &self.token_file)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `slipway ARGUMENTS` to its end.
    pub async fn cli(&self, arguments: &[&str]) -> CliOutput {
        let output = tokio::time::timeout(PATIENCE, self.command(arguments).output())
            .await
            .unwrap_or_else(|_| panic!("slipway {arguments:?} ends in time"))
            .expect("slipway runs");
        CliOutput::from(output)
    }

    /// Runs `slipway ARGUMENTS`, expecting exit code 0, and returns its stdout.
    pub async fn cli_ok(&self, arguments: &[&str]) -> String {
        let output = self.cli(arguments).await;
        assert_eq!(output.code, 0, "slipway {arguments:?}: {output:?}");
        output.stdout
    }

    /// The workload with this id, from the server.
    pub async fn workload(&self, id: &str) -> Workload {
        self.client.get_workload(id).await.expect("get workload")
    }

    /// Shuts the server down cleanly (running workloads are stopped).
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server ran cleanly");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// What a `slipway` run printed and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for CliOutput {
    fn from(output: Output) -> Self {
        CliOutput {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Polls `condition` every 20 ms until it holds or `PATIENCE` runs out.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A POSIX sh service that prints `lines` numbered lines, then idles.
pub fn counting_service(prefix: &str, lines: u32) -> String {
    format!(
        "i=1; while [ $i -le {lines} ]; do echo \"{prefix} $i\"; i=$((i+1)); done; while :; do sleep 1; done"
    )
}
