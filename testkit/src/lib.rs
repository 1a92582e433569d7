//! Test harness: a real Slipway server on `127.0.0.1:0` with its own data and
//! root directories, driven through the SDK.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod docker;
pub mod net;
mod probe;
mod process;
pub mod rest;
pub mod tls;
mod wait;

pub use wait::until;

pub use probe::Probe;
pub use process::{Dirs, ServerProcess};

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU16, Ordering},
    time::Duration,
};

use futures::StreamExt;
use slipway_sdk::{
    Client, DeploymentBuilder, Error,
    proto::{Deployment, Stage, StreamLogsRequest, Workload},
};
use slipway_server::{config::ServeConfig, server};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};

/// How long a test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Each server of a test process gets its own slice of ports for workloads, so
/// that tests running side by side do not race for the same port.
pub fn port_range() -> std::ops::RangeInclusive<u16> {
    static NEXT_SLICE: AtomicU16 = AtomicU16::new(0);
    let slice = NEXT_SLICE.fetch_add(1, Ordering::Relaxed) % 16;
    let process_slot = (std::process::id() % 150) as u16;
    let first = 20_000 + process_slot * 160 + slice * 10;
    first..=first + 9
}

/// A running server and a client connected to it.
pub struct TestServer {
    /// A client with the admin token.
    pub client: Client,
    pub address: SocketAddr,
    admin_token: String,
    data: TempDir,
    root: TempDir,
    config: ServeConfig,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), server::ServerError>>>,
}

impl TestServer {
    /// A server with fresh data and root directories.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose config `adjust` may change first.
    ///
    /// With `SLIPWAY_TEST_POSTGRES_URL` set (a URL of a PostgreSQL server on which
    /// the user may create databases), the server gets a new PostgreSQL database
    /// instead of SQLite: the same tests, on the other backend.
    pub async fn start_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let (data, root, mut config) = Self::fresh_config().await;
        adjust(&mut config);
        Self::launch(data, root, config).await
    }

    /// As [`TestServer::start_with`], listening on `bind` (like `0.0.0.0:0`)
    /// instead of `127.0.0.1:0`.
    pub async fn start_listening(bind: &str, adjust: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let (data, root, mut config) = Self::fresh_config().await;
        adjust(&mut config);
        Self::launch_on(bind, data, root, config).await
    }

    async fn fresh_config() -> (TempDir, TempDir, ServeConfig) {
        let data = TempDir::new().expect("data dir");
        let root = TempDir::new().expect("root dir");
        let mut config = ServeConfig::new(data.path().join("data"), root.path().to_path_buf());
        config.port_range = port_range();
        if let Ok(admin_url) = std::env::var("SLIPWAY_TEST_POSTGRES_URL") {
            config.database_url = Some(postgres_database(&admin_url).await);
        }
        config.admin_token_file = Some(write_admin_token(data.path()));
        (data, root, config)
    }

    async fn launch(data: TempDir, root: TempDir, config: ServeConfig) -> TestServer {
        Self::launch_on("127.0.0.1:0", data, root, config).await
    }

    async fn launch_on(
        bind: &str,
        data: TempDir,
        root: TempDir,
        config: ServeConfig,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind(bind).await.expect("bind");
        let mut address = listener.local_addr().expect("address");
        if address.ip().is_unspecified() {
            // Listening on every address: reach it on loopback.
            address = SocketAddr::from(([127, 0, 0, 1], address.port()));
        }
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(config.clone(), listener, async move {
            let _ = signal.await;
        }));
        let admin_token = match &config.admin_token_file {
            Some(file) => std::fs::read_to_string(file).expect("read the admin token file"),
            // The server writes its bootstrap token at start.
            None => read_when_written(&config.data_dir.join("admin.token")).await,
        };
        if let Some(socket) = socket_path(&config) {
            wait_for_file(&socket).await;
        }
        // With TLS on TCP, the admin client takes the Unix socket (with the
        // admin token, so that it still acts as that token).
        let url = match (&config.transport.tls_cert, socket_path(&config)) {
            (Some(_), Some(socket)) => format!("unix://{}", socket.display()),
            _ => format!("http://{address}"),
        };
        let client = Client::builder(url)
            .token(admin_token.trim())
            .connect()
            .await
            .expect("connect");
        TestServer {
            client,
            address,
            admin_token: admin_token.trim().to_owned(),
            data,
            root,
            config,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The admin token the client uses.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A REST client with the admin token.
    pub fn rest(&self) -> rest::Rest {
        rest::Rest::new(self.address, Some(&self.admin_token))
    }

    /// A new client of this server presenting `token`.
    pub async fn client_with_token(&self, token: &str) -> Client {
        Client::builder(format!("http://{}", self.address))
            .token(token)
            .connect()
            .await
            .expect("connect")
    }

    /// A new client of this server without credentials.
    pub async fn client_without_token(&self) -> Client {
        Client::connect(format!("http://{}", self.address))
            .await
            .expect("connect")
    }

    /// The server's Unix socket, unless it was turned off.
    pub fn socket_path(&self) -> Option<PathBuf> {
        socket_path(&self.config)
    }

    /// The URL of the server's database (to look at it directly in a test).
    pub fn database_url(&self) -> String {
        self.config.database_url()
    }

    /// The server's data directory (the SQLite database, unless the server
    /// uses PostgreSQL).
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The directory service paths resolve under.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Creates `root/name` (and parents) and returns it.
    pub fn service_dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).expect("service dir");
        dir
    }

    /// Shuts the server down cleanly (running workloads are stopped).
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    async fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(PATIENCE, task)
                .await
                .expect("server stops in time");
            result.expect("server task").expect("server ran cleanly");
        }
    }

    /// Shuts down cleanly and starts again on the same data and root directories.
    pub async fn restart(mut self) -> TestServer {
        self.shut_down().await;
        let data = std::mem::replace(&mut self.data, TempDir::new().expect("placeholder"));
        let root = std::mem::replace(&mut self.root, TempDir::new().expect("placeholder"));
        Self::launch(data, root, self.config.clone()).await
    }

    /// Creates a deployment and a workload of it.
    pub async fn deploy(&self, builder: DeploymentBuilder) -> (Deployment, Workload) {
        let deployment = self
            .client
            .create_deployment(builder.build())
            .await
            .expect("create deployment");
        let workload = self
            .client
            .create_workload(&deployment.id)
            .await
            .expect("create workload");
        (deployment, workload)
    }

    /// Creates a deployment and `count` workloads of it, each started and running.
    pub async fn start_many(&self, builder: DeploymentBuilder, count: usize) -> Vec<Workload> {
        let (deployment, first) = self.deploy(builder).await;
        let mut started = vec![self.start_workload(&first.id).await];
        for _ in 1..count {
            let workload = self
                .client
                .create_workload(&deployment.id)
                .await
                .expect("workload");
            started.push(self.start_workload(&workload.id).await);
        }
        started
    }

    /// A deployment of Python's HTTP server on `$PORT` (TCP readiness) that
    /// prints its environment first, in its own service directory `name`.
    pub fn environment_printing_web(&self, name: &str) -> DeploymentBuilder {
        self.service_dir(name);
        DeploymentBuilder::new(name)
            .service_path(name)
            .command([
                "sh",
                "-c",
                "env; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
            ])
            .listen()
            .tcp_readiness()
            .stop_grace_period_seconds(2)
    }

    /// Waits for the fleet operation `id` to end, which must be a success.
    pub async fn operation_succeeds(&self, id: &str) -> slipway_sdk::proto::FleetOperation {
        let operation = self
            .client
            .wait_for_operation(id, PATIENCE * 4)
            .await
            .expect("the operation");
        assert_eq!(
            operation.state(),
            slipway_sdk::proto::OperationState::Succeeded,
            "{operation:#?}"
        );
        operation
    }

    /// Deletes a deployment (and its workloads), which must succeed.
    pub async fn delete_deployment(&self, deployment_id: &str) {
        self.client
            .delete_deployment(deployment_id)
            .await
            .expect("delete deployment");
    }

    /// Starts a workload and waits for the start to end.
    pub async fn start_workload(&self, workload_id: &str) -> Workload {
        let progress = self
            .client
            .start_workload(workload_id)
            .await
            .expect("start accepted");
        tokio::time::timeout(PATIENCE, progress.finish())
            .await
            .expect("start ends in time")
            .expect("start progress")
    }

    /// Starts a workload that is not expected to reach RUNNING and returns the
    /// failure the start ended with ([`Error::OperationFailed`]) and the workload
    /// as it is then.
    pub async fn start_expecting_failure(&self, workload_id: &str) -> (Workload, Error) {
        let progress = self
            .client
            .start_workload(workload_id)
            .await
            .expect("start accepted");
        let outcome = tokio::time::timeout(PATIENCE, progress.finish())
            .await
            .expect("start ends in time");
        let error = match outcome {
            Ok(workload) => panic!("the start succeeded: {workload:?}"),
            Err(error @ Error::OperationFailed(_)) => error,
            Err(other) => panic!("the start ended with another error: {other:?}"),
        };
        let workload = self.client.get_workload(workload_id).await.expect("get");
        (workload, error)
    }

    /// Stops a workload and waits for the stop to end.
    pub async fn stop_workload(&self, workload_id: &str) -> Workload {
        let progress = self
            .client
            .stop_workload(workload_id, None)
            .await
            .expect("stop accepted");
        tokio::time::timeout(PATIENCE, progress.finish())
            .await
            .expect("stop ends in time")
            .expect("stop progress")
    }

    /// Waits for the workload to reach `stage`.
    pub async fn wait_for(&self, workload_id: &str, stage: Stage) -> Result<Workload, Error> {
        self.client.wait_for(workload_id, stage, PATIENCE).await
    }

    /// Waits until the workload reports `health`.
    pub async fn wait_for_health(
        &self,
        workload_id: &str,
        health: slipway_sdk::proto::Health,
    ) -> Workload {
        use slipway_sdk::proto::WatchEventsRequest;
        let current = self.client.get_workload(workload_id).await.expect("get");
        if current.health() == health {
            return current;
        }
        let request = WatchEventsRequest {
            since_revision: current.revision,
            workload_id: workload_id.to_owned(),
            ..WatchEventsRequest::default()
        };
        let mut events = Box::pin(self.client.watch_events(request).await.expect("watch"));
        let waiting = async {
            while let Some(event) = events.next().await {
                if let Some(workload) = event.expect("event").workload {
                    if workload.health() == health {
                        return workload;
                    }
                }
            }
            panic!("the event stream ended");
        };
        tokio::time::timeout(PATIENCE, waiting)
            .await
            .expect("health reached in time")
    }

    /// Every retained event, from the first up to (at least) `revision`, read
    /// through WatchEvents from revision 0.
    pub async fn events_through(&self, revision: u64) -> Vec<slipway_sdk::proto::Event> {
        use slipway_sdk::proto::WatchEventsRequest;
        let request = WatchEventsRequest::default();
        let mut events = Box::pin(self.client.watch_events(request).await.expect("watch"));
        let mut seen = Vec::new();
        let reading = async {
            while let Some(event) = events.next().await {
                let event = event.expect("event");
                let reached = event.revision >= revision;
                seen.push(event);
                if reached {
                    return;
                }
            }
            panic!("the event stream ended before revision {revision}");
        };
        tokio::time::timeout(PATIENCE, reading)
            .await
            .expect("events read in time");
        seen
    }

    /// Every stored log message of a workload, in order.
    pub async fn log_messages(&self, workload_id: &str) -> Vec<String> {
        self.client
            .all_logs(workload_id)
            .await
            .expect("logs")
            .into_iter()
            .map(|entry| entry.message)
            .collect()
    }

    /// Follows the log until `predicate` holds for a line; returns the lines read.
    pub async fn follow_until(
        &self,
        workload_id: &str,
        predicate: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let request = StreamLogsRequest {
            workload_id: workload_id.to_owned(),
            follow: true,
            ..StreamLogsRequest::default()
        };
        let mut lines = Box::pin(self.client.stream_logs(request).await.expect("stream logs"));
        let mut seen = Vec::new();
        let reading = async {
            while let Some(entry) = lines.next().await {
                let message = entry.expect("log entry").message;
                let done = predicate(&message);
                seen.push(message);
                if done {
                    return;
                }
            }
        };
        tokio::time::timeout(PATIENCE, reading)
            .await
            .expect("line seen in time");
        seen
    }
}

fn socket_path(config: &ServeConfig) -> Option<PathBuf> {
    config.transport.socket_path(&config.data_dir)
}

/// Writes a new admin token to `dir/admin.token` (0600) and returns the
/// file's path, for `--admin-token-file`: the server makes it an admin token
/// at start, so the test knows it before the server runs.
pub fn write_admin_token(dir: &Path) -> PathBuf {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let path = dir.join("admin.token");
    if path.exists() {
        return path;
    }
    let token = slipway_server::access::NewToken::generate().expect("random token");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("create the admin token file");
    file.write_all(token.token.as_bytes())
        .expect("write the admin token file");
    path
}

/// The contents of `path` once it exists and is not empty, within [`PATIENCE`].
pub async fn read_when_written(path: &Path) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} was not written in time",
            path.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Returns once `path` exists, within [`PATIENCE`].
pub async fn wait_for_file(path: &Path) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} did not appear in time",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A new, empty database on the PostgreSQL server of `admin_url`.
async fn postgres_database(admin_url: &str) -> slipway_server::config::DatabaseUrl {
    slipway_server::config::DatabaseUrl(new_postgres_database(admin_url).await)
}

/// An empty database for a store test: a new PostgreSQL database when
/// `SLIPWAY_TEST_POSTGRES_URL` is set (as for [`TestServer`]), else a SQLite
/// file in a temporary directory that lives as long as this value.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<TempDir>,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        match std::env::var("SLIPWAY_TEST_POSTGRES_URL") {
            Ok(admin_url) => TestDatabase {
                url: new_postgres_database(&admin_url).await,
                _dir: None,
            },
            Err(_) => {
                let dir = TempDir::new().expect("database dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("store.db").display()
                );
                TestDatabase {
                    url,
                    _dir: Some(dir),
                }
            }
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

/// With `SLIPWAY_TEST_POSTGRES_URL` set, the URL of a new, empty PostgreSQL
/// database (for a [`ServerProcess`] given `--database-url`, so that it runs on
/// the same backend as a [`TestServer`]); `None` otherwise.
pub async fn postgres_test_database() -> Option<String> {
    match std::env::var("SLIPWAY_TEST_POSTGRES_URL") {
        Ok(admin_url) => Some(new_postgres_database(&admin_url).await),
        Err(_) => None,
    }
}

/// The URL of a new, empty database on the PostgreSQL server of `admin_url`.
async fn new_postgres_database(admin_url: &str) -> String {
    use sea_orm::ConnectionTrait;
    let name = format!("slipway_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .expect("connect to PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    let _ = admin.close().await;
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("a database URL ends in /DATABASE");
    format!("{base}/{name}")
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Whether a process with this pid exists (a zombie counts until reaped).
pub fn process_exists(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Whether any process of the process group exists.
pub fn process_group_exists(pgid: i32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
}

/// Whether something accepts connections on 127.0.0.1:port.
pub fn port_answers(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_ok()
}

/// Whether the port can be bound (nobody holds it).
pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Polls `condition` every 20 ms until it holds or `PATIENCE` runs out.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal HTTP GET on 127.0.0.1:port; returns the status code and body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
