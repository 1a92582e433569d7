//! A Slipway server in its own process, for tests that kill it and start it again.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use slipway_sdk::Client;

/// A server process on `127.0.0.1:0` with the given data and root directories.
pub struct ServerProcess {
    /// A client with the admin token.
    pub client: Client,
    pub address: SocketAddr,
    admin_token: String,
    child: Child,
}

impl ServerProcess {
    /// Starts `binary` (the test's `env!("CARGO_BIN_EXE_slipway-server-process")`).
    pub async fn start(
        binary: &str,
        data_dir: &Path,
        root: &Path,
        port_range: &str,
    ) -> ServerProcess {
        Self::start_with_args(binary, data_dir, root, port_range, &[]).await
    }

    /// As [`ServerProcess::start`], with more flags.
    pub async fn start_with_args(
        binary: &str,
        data_dir: &Path,
        root: &Path,
        port_range: &str,
        extra: &[&str],
    ) -> ServerProcess {
        Self::start_with_env(binary, data_dir, root, port_range, extra, &[]).await
    }

    /// As [`ServerProcess::start_with_args`], with `env` added to the server's
    /// environment (which is otherwise the test's).
    pub async fn start_with_env(
        binary: &str,
        data_dir: &Path,
        root: &Path,
        port_range: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        // A fixed admin token next to the data directory, so that the client
        // has it before the server runs and keeps it across restarts.
        let token_dir = data_dir.parent().unwrap_or(data_dir);
        std::fs::create_dir_all(token_dir).expect("token directory");
        let token_file = crate::write_admin_token(token_dir);
        let token = std::fs::read_to_string(&token_file).expect("read the admin token");
        let mut child = Command::new(binary)
            .envs(env.iter().copied())
            .args(["--listen", "127.0.0.1:0", "--port-range", port_range])
            .arg("--admin-token-file")
            .arg(&token_file)
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--root")
            .arg(root)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server process");
        let stdout = child.stdout.take().expect("stdout");
        let address = tokio::task::spawn_blocking(move || {
            let mut first = String::new();
            BufReader::new(stdout)
                .read_line(&mut first)
                .expect("read the address");
            first
                .trim()
                .strip_prefix("listening on ")
                .and_then(|address| address.parse::<SocketAddr>().ok())
                .unwrap_or_else(|| panic!("unexpected first line from the server: {first:?}"))
        })
        .await
        .expect("address");
        let client = Client::builder(format!("http://{address}"))
            .token(token.trim())
            .connect()
            .await
            .expect("connect");
        ServerProcess {
            client,
            address,
            admin_token: token.trim().to_owned(),
            child,
        }
    }

    /// The admin token the client uses.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A new client of this server presenting `token`.
    pub async fn client_with_token(&self, token: &str) -> Client {
        Client::builder(format!("http://{}", self.address))
            .token(token)
            .connect()
            .await
            .expect("connect")
    }

    /// The peak resident memory of the server process so far, in KiB (VmHWM).
    pub fn peak_memory_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// The server's process id (to stop and continue it).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL: the server gets no chance to clean up.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        self.child.wait().expect("wait")
    }
}

/// How long a dropped server gets to stop its workloads before it is killed.
const STOP_ON_DROP: std::time::Duration = std::time::Duration::from_secs(15);

impl Drop for ServerProcess {
    /// SIGTERM, so that the server stops its workloads (they would outlive a
    /// SIGKILL and hold their ports for the next test), then SIGKILL if it
    /// has not exited within [`STOP_ON_DROP`].
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = std::time::Instant::now() + STOP_ON_DROP;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data directory and a root directory that outlive server processes.
pub struct Dirs {
    _temp: tempfile::TempDir,
    pub data: PathBuf,
    pub root: PathBuf,
}

impl Dirs {
    pub fn new() -> Dirs {
        let temp = tempfile::TempDir::new().expect("tempdir");
        let data = temp.path().join("data");
        let root = temp.path().join("root");
        std::fs::create_dir_all(&root).expect("root");
        Dirs {
            _temp: temp,
            data,
            root,
        }
    }
}

impl Default for Dirs {
    fn default() -> Self {
        Self::new()
    }
}
