//! Three nodes on three "hosts": containers on a private Docker network that
//! reach each other and PostgreSQL only by network address. Killing one
//! container takes its node and its workloads' processes with it, as a lost
//! machine would: its workloads run again on the other nodes, once each.

mod needs_docker {
    use std::{
        collections::HashSet,
        net::IpAddr,
        process::{Command, Output},
        sync::OnceLock,
    };

    use slipway_sdk::{
        Client, DeploymentBuilder,
        proto::{RestartPolicy, Stage, Workload, restart_policy::Mode},
    };
    use slipway_testkit::{
        net::{TcpProxy, postgres_address, postgres_url_via},
        postgres_test_database, require_docker, until, write_admin_token,
    };

    const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");
    const NODE_IMAGE: &str = "slipway-test/node:1";

    fn docker(arguments: &[&str]) -> Output {
        Command::new("docker")
            .args(arguments)
            .output()
            .expect("docker")
    }

    fn docker_ok(arguments: &[&str]) -> String {
        let output = docker(arguments);
        assert!(
            output.status.success(),
            "docker {arguments:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// An image with the server, the shared libraries it links and a static
    /// busybox (the workloads' `sh` and `sleep`), made offline.
    fn node_image() -> &'static str {
        static BUILT: OnceLock<()> = OnceLock::new();
        BUILT.get_or_init(|| {
            let context = tempfile::tempdir().expect("context");
            let root = context.path();
            std::fs::copy(SERVER_PROCESS, root.join("slipway")).expect("copy the server");
            let busybox = slipway_testkit::docker::static_busybox().expect("a static busybox");
            std::fs::copy(busybox, root.join("busybox")).expect("copy busybox");
            let ldd = Command::new("ldd").arg(SERVER_PROCESS).output().expect("ldd");
            let mut copies = String::new();
            for (index, library) in String::from_utf8_lossy(&ldd.stdout)
                .lines()
                .filter_map(|line| {
                    line.split_whitespace()
                        .find(|word| word.starts_with('/'))
                        .map(str::to_owned)
                })
                .enumerate()
            {
                let name = format!("lib{index}");
                std::fs::copy(&library, root.join(&name)).expect("copy a library");
                copies.push_str(&format!("COPY {name} {library}\n"));
            }
            std::fs::write(
                root.join("Dockerfile"),
                format!(
                    "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n{copies}COPY slipway /slipway\nENV PATH=/bin\nENTRYPOINT [\"/slipway\"]\n"
                ),
            )
            .expect("Dockerfile");
            docker_ok(&["build", "-q", "-t", NODE_IMAGE, root.to_str().expect("utf-8")]);
        });
        NODE_IMAGE
    }

    /// A private network and the containers on it, removed when dropped.
    struct Hosts {
        network: String,
        containers: Vec<String>,
    }

    impl Drop for Hosts {
        fn drop(&mut self) {
            if std::thread::panicking() {
                for container in &self.containers {
                    let logs = docker(&["logs", "--tail", "20", container]);
                    eprintln!(
                        "--- {container}:\n{}{}",
                        String::from_utf8_lossy(&logs.stdout),
                        String::from_utf8_lossy(&logs.stderr)
                    );
                }
            }
            for container in &self.containers {
                let _ = docker(&["rm", "-f", container]);
            }
            let _ = docker(&["network", "rm", &self.network]);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_hosts_workloads_run_again_on_the_other_hosts() {
        require_docker!();
        let Some(database_url) = postgres_test_database().await else {
            eprintln!("skipped: several nodes need PostgreSQL (set SLIPWAY_TEST_POSTGRES_URL)");
            return;
        };
        let image = node_image();
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let mut hosts = Hosts {
            network: format!("slipway-test-{suffix}"),
            containers: Vec::new(),
        };
        docker_ok(&["network", "create", &hosts.network]);
        let gateway: IpAddr = docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            &hosts.network,
        ])
        .parse()
        .expect("the network's gateway");
        // PostgreSQL listens on loopback: the containers reach it through a
        // proxy on the network's gateway (the host's side of the network).
        let proxy = TcpProxy::start(gateway, postgres_address(&database_url)).await;
        let container_url = postgres_url_via(&database_url, proxy.address);
        let token_dir = tempfile::tempdir().expect("token dir");
        let token_file = write_admin_token(token_dir.path());
        let token = std::fs::read_to_string(&token_file).expect("token");
        let mount = format!("{}:/token:ro", token_file.display());

        let mut addresses = Vec::new();
        for name in ["node-a", "node-b", "node-c"] {
            let container = format!("{name}-{suffix}");
            docker_ok(&[
                "run",
                "-d",
                "--name",
                &container,
                "--hostname",
                &container,
                "--network",
                &hosts.network,
                "-v",
                &mount,
                "-e",
                "RUST_LOG=warn",
                image,
                "--listen",
                "0.0.0.0:50051",
                "--insecure",
                "--database-url",
                &container_url,
                "--admin-token-file",
                "/token",
                "--data-dir",
                "/data",
                "--root",
                "/",
                "--node-name",
                name,
                "--heartbeat-interval",
                "200ms",
                "--heartbeat-ttl",
                "1s",
            ]);
            hosts.containers.push(container.clone());
            let ip = docker_ok(&[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &container,
            ]);
            addresses.push(format!("http://{ip}:50051"));
        }
        let mut clients = Vec::new();
        for address in &addresses {
            let client = until("a node answers", || async {
                let client = Client::builder(address.clone())
                    .token(token.trim())
                    .connect()
                    .await
                    .ok()?;
                client.list_nodes(false).await.ok()?;
                Some(client)
            })
            .await;
            clients.push(client);
        }
        let a = &clients[0];
        until("three nodes registered", || async {
            (a.list_nodes(false).await.ok()?.len() == 3).then_some(())
        })
        .await;
        let b_node = a.get_node("node-b").await.expect("node-b");
        // The nodes reach each other by name on the network, not by loopback.
        assert!(b_node.address.starts_with("node-b-"), "{b_node:?}");

        let deployment = a
            .create_deployment(
                DeploymentBuilder::new("hosts")
                    .command(["sleep", "600"])
                    .restart_policy(RestartPolicy {
                        mode: Mode::Always.into(),
                        initial_backoff_ms: Some(100),
                        jitter_percent: Some(0),
                        ..RestartPolicy::default()
                    })
                    .build(),
            )
            .await
            .expect("deployment");
        let mut placed: Vec<Workload> = Vec::new();
        for _ in 0..3 {
            let workload = a.create_workload(&deployment.id).await.expect("workload");
            let running = a
                .start_workload(&workload.id)
                .await
                .expect("start")
                .finish()
                .await
                .expect("running");
            placed.push(running);
        }
        let owners: HashSet<&str> = placed.iter().map(|w| w.node_id.as_str()).collect();
        assert_eq!(owners.len(), 3, "one per host: {placed:#?}");
        let on_b = placed
            .iter()
            .find(|w| w.node_id == b_node.id)
            .expect("one on node B")
            .clone();
        // Through node C, a workload node A runs: forwarded over the network.
        let on_a = placed
            .iter()
            .find(|w| w.node_id != b_node.id && w.id != on_b.id)
            .expect("another");
        let c = &clients[2];
        let stopped = c
            .stop_workload(&on_a.id, Some(1))
            .await
            .expect("stop through C")
            .finish()
            .await
            .expect("stopped");
        assert_eq!(stopped.stage(), Stage::Stopped);

        // Host B is lost, with everything on it.
        docker_ok(&["kill", &hosts.containers[1]]);
        let moved = until("running again on another host", || async {
            let now = c.get_workload(&on_b.id).await.ok()?;
            (now.stage() == Stage::Running && now.generation == 2 && now.node_id != b_node.id)
                .then_some(now)
        })
        .await;
        assert_ne!(moved.node_id, b_node.id);
        let lines = c.all_logs(&on_b.id).await.expect("logs");
        for (index, line) in lines.iter().enumerate() {
            assert_eq!(line.seq, index as u64 + 1, "{lines:#?}");
        }
        drop(hosts);
    }
}
