//! For tests that need a Docker engine: they skip with a printed reason when none
//! answers, and fail instead when `SLIPWAY_REQUIRE_DOCKER=1` (CI sets it). The
//! test image is built here, offline, from the static busybox of Debian's
//! `busybox-static` package.

use std::{
    path::Path,
    process::{Command, Output},
    sync::OnceLock,
};

/// The image the Docker tests run: busybox on `scratch`.
pub const TEST_IMAGE: &str = "slipway-test/busybox:1";

fn docker(arguments: &[&str]) -> std::io::Result<Output> {
    Command::new("docker").args(arguments).output()
}

/// Where the static busybox the test image is made of is, if installed.
pub fn static_busybox() -> Option<&'static Path> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|path| path.exists())
}

/// Whether an engine answers and the test image can be made (a static
/// busybox is installed). Without them, this panics when
/// `SLIPWAY_REQUIRE_DOCKER=1`, and otherwise prints why the test is skipped.
pub fn engine_available() -> bool {
    let problem = match docker(&["version", "--format", "{{.Server.Version}}"]) {
        Ok(output) if output.status.success() && static_busybox().is_some() => return true,
        Ok(output) if output.status.success() => {
            "the test image needs a static busybox (apt-get install busybox-static)".to_owned()
        }
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        Err(error) => format!("the docker command is not available: {error}"),
    };
    if std::env::var("SLIPWAY_REQUIRE_DOCKER").is_ok_and(|value| value == "1") {
        panic!("SLIPWAY_REQUIRE_DOCKER=1 but the Docker tests cannot run: {problem}");
    }
    eprintln!(
        "skipping: the Docker tests cannot run ({problem}); set SLIPWAY_REQUIRE_DOCKER=1 to fail instead"
    );
    false
}

/// Returns from the test (skipping it) when no engine answers.
#[macro_export]
macro_rules! require_docker {
    () => {
        if !$crate::docker::engine_available() {
            return;
        }
    };
}

/// Builds [`TEST_IMAGE`] once per test process.
pub fn test_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let context = tempfile::tempdir().expect("context dir");
        let busybox = static_busybox()
            .expect("the Docker tests need a static busybox: apt-get install busybox-static");
        std::fs::copy(busybox, context.path().join("busybox")).expect("copy busybox");
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )
        .expect("Dockerfile");
        let directory = context.path().to_str().expect("utf-8 path");
        let output = docker(&["build", "-q", "-t", TEST_IMAGE, directory]).expect("docker build");
        assert!(
            output.status.success(),
            "building {TEST_IMAGE} failed (is busybox static? apt-get install busybox-static): {}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    TEST_IMAGE
}

/// Ids of the containers with `label` (`key=value`); all of them, or running ones.
pub fn containers_with_label(label: &str, all: bool) -> Vec<String> {
    let filter = format!("label={label}");
    let mut arguments = vec!["ps", "-q", "--no-trunc", "--filter", filter.as_str()];
    if all {
        arguments.push("-a");
    }
    let output = docker(&arguments).expect("docker ps");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Removes, when dropped, every container of the deployments it was told about,
/// so a failed test leaves nothing behind.
#[derive(Default)]
pub struct Cleanup {
    deployment_ids: Vec<String>,
}

impl Cleanup {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn track(&mut self, deployment_id: &str) {
        self.deployment_ids.push(deployment_id.to_owned());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for deployment_id in &self.deployment_ids {
            for id in containers_with_label(&format!("slipway.deployment={deployment_id}"), true) {
                let _ = docker(&["rm", "-f", &id]);
            }
        }
    }
}

/// The base image of `examples/services/hello-docker`: made from [`TEST_IMAGE`]
/// when the engine does not have it (there is no registry to pull it from).
pub const EXAMPLE_BASE_IMAGE: &str = "busybox:1.36";

/// Makes sure [`EXAMPLE_BASE_IMAGE`] exists locally.
pub fn example_base_image() {
    static TAGGED: OnceLock<()> = OnceLock::new();
    TAGGED.get_or_init(|| {
        let present = docker(&["image", "inspect", EXAMPLE_BASE_IMAGE])
            .is_ok_and(|output| output.status.success());
        if !present {
            let output = docker(&["tag", test_image(), EXAMPLE_BASE_IMAGE]).expect("docker tag");
            assert!(
                output.status.success(),
                "tagging {EXAMPLE_BASE_IMAGE} failed"
            );
        }
    });
}

/// The output lines of a container (`docker logs`), stdout and stderr together.
pub fn container_log_lines(id: &str) -> usize {
    let output = docker(&["logs", id]).expect("docker logs");
    String::from_utf8_lossy(&output.stdout).lines().count()
        + String::from_utf8_lossy(&output.stderr).lines().count()
}

/// Removes a container at once (to make it vanish behind Slipway's back).
pub fn remove_container(id: &str) {
    let output = docker(&["rm", "-f", id]).expect("docker rm");
    assert!(output.status.success(), "docker rm -f {id} failed");
}

/// A name (of a deployment, say) that no other test of any run uses.
pub fn unique_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `docker inspect --format FORMAT id`, trimmed.
pub fn inspect(id: &str, format: &str) -> String {
    let output = docker(&["inspect", "--format", format, id]).expect("docker inspect");
    assert!(
        output.status.success(),
        "docker inspect {id} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The environment the engine gives the container (`Config.Env`), as `NAME=value` lines.
pub fn container_env(id: &str) -> Vec<String> {
    inspect(id, "{{range .Config.Env}}{{println .}}{{end}}")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The host addresses the container's ports are published on, as `docker port`
/// shows them: `8080/tcp -> 127.0.0.1:3101`.
pub fn published_ports(id: &str) -> Vec<String> {
    let output = docker(&["port", id]).expect("docker port");
    assert!(output.status.success(), "docker port {id} failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The state of the container's own health check (`State.Health.Status`:
/// `starting`, `healthy`, `unhealthy`), empty when it has none.
pub fn health_status(id: &str) -> String {
    inspect(id, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")
}
