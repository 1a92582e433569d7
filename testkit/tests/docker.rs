//! The Docker runtime against the real engine. Every test skips with a printed
//! reason when no engine answers (fails instead with SLIPWAY_REQUIRE_DOCKER=1),
//! uses its own deployments, and removes its containers.

mod needs_docker {
    use std::{path::Path, time::Instant};

    use slipway_sdk::{DeploymentBuilder, Error, Progress, proto::Stage};
    use slipway_testkit::{
        Dirs, PATIENCE, ServerProcess, TestServer,
        docker::{
            Cleanup, container_log_lines, containers_with_label, example_base_image,
            remove_container, test_image, unique_name as unique,
        },
        eventually, http_get, port_range, require_docker,
    };

    const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }

    fn workload_label(id: &str) -> String {
        format!("slipway.workload={id}")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dockerfile_deployment_builds_serves_stops_restarts_and_leaves_nothing_after_delete()
    {
        require_docker!();
        example_base_image();
        let server = TestServer::start().await;
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/services/hello-docker");
        copy_dir(&example, &server.service_dir("hello-docker"));
        let mut cleanup = Cleanup::new();
        let deployment = server
            .client
            .create_deployment(
                DeploymentBuilder::new(unique("hello-docker"))
                    .service_path("hello-docker")
                    .dockerfile("Dockerfile")
                    .container_port(8080)
                    .http_readiness("/")
                    .stop_grace_period_seconds(5)
                    .build(),
            )
            .await
            .expect("deployment");
        cleanup.track(&deployment.id);
        let workload = server
            .client
            .create_workload(&deployment.id)
            .await
            .expect("workload");

        let progress = server
            .client
            .start_workload(&workload.id)
            .await
            .expect("start")
            .collect_all()
            .await
            .expect("progress");
        let build_output: Vec<&str> = progress
            .iter()
            .filter_map(|message| match message {
                Progress::Log(entry) if entry.stage() == Stage::Build => {
                    Some(entry.message.as_str())
                }
                _ => None,
            })
            .collect();
        assert!(
            build_output
                .iter()
                .any(|line| line.contains("COPY index.html")),
            "the builder's output is in the build stage's logs: {build_output:?}"
        );
        let running = server.client.get_workload(&workload.id).await.expect("get");
        assert_eq!(running.stage(), Stage::Running, "{}", running.error);
        let (status, body) = http_get(running.port as u16, "/").expect("http");
        assert_eq!(
            (status, body.as_str()),
            (200, "hello from a slipway container\n")
        );
        assert_eq!(
            containers_with_label(&workload_label(&workload.id), false),
            std::slice::from_ref(&running.runtime_id)
        );

        let stopped = server.stop_workload(&workload.id).await;
        assert_eq!(stopped.stage(), Stage::Stopped);
        assert!(containers_with_label(&workload_label(&workload.id), false).is_empty());

        let restarted = server
            .client
            .restart_workload(&workload.id)
            .await
            .expect("restart")
            .finish()
            .await
            .expect("progress");
        assert_eq!(
            (restarted.stage(), restarted.generation),
            (Stage::Running, 2)
        );
        assert_ne!(
            restarted.runtime_id, running.runtime_id,
            "a new container for generation 2"
        );
        assert_eq!(http_get(restarted.port as u16, "/").expect("http").0, 200);
        assert_eq!(
            containers_with_label(&workload_label(&workload.id), false),
            std::slice::from_ref(&restarted.runtime_id)
        );

        server
            .client
            .delete_workload(&workload.id)
            .await
            .expect("delete");
        assert!(containers_with_label(&workload_label(&workload.id), true).is_empty());
        server
            .client
            .delete_deployment(&deployment.id)
            .await
            .expect("delete deployment");
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn images_run_and_a_missing_image_or_a_broken_dockerfile_fails_in_build() {
        require_docker!();
        let image = test_image();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();

        let (local, workload) = server
            .deploy(
                DeploymentBuilder::new(unique("local-image"))
                    .image(image)
                    .command(["sh", "-c", "echo serving; exec httpd -f -p 8080 -h /"])
                    .container_port(8080)
                    .stop_grace_period_seconds(5),
            )
            .await;
        cleanup.track(&local.id);
        let running = server.start_workload(&workload.id).await;
        assert_eq!(running.stage(), Stage::Running, "{}", running.error);
        assert!(slipway_testkit::port_answers(running.port as u16));
        let messages = server.log_messages(&workload.id).await;
        assert!(
            messages
                .iter()
                .any(|line| line == &format!("image {image} is present"))
        );

        let (missing, workload) = server
            .deploy(
                DeploymentBuilder::new(unique("missing-image"))
                    .image("slipway-test/does-not-exist:none"),
            )
            .await;
        cleanup.track(&missing.id);
        let (failed, _) = server.start_expecting_failure(&workload.id).await;
        assert_eq!(
            (failed.stage(), failed.failed_stage()),
            (Stage::Failed, Stage::Build)
        );
        assert!(
            failed.error.contains("could not be pulled"),
            "{}",
            failed.error
        );

        let dir = server.service_dir("broken");
        std::fs::write(
            dir.join("Dockerfile"),
            format!(
                "FROM {image}\nRUN sh -c 'echo \"compile error: missing semicolon\" >&2; exit 3'\n"
            ),
        )
        .expect("Dockerfile");
        let (broken, workload) = server
            .deploy(
                DeploymentBuilder::new(unique("broken"))
                    .service_path("broken")
                    .dockerfile("Dockerfile"),
            )
            .await;
        cleanup.track(&broken.id);
        let (failed, _) = server.start_expecting_failure(&workload.id).await;
        assert_eq!(
            (failed.stage(), failed.failed_stage()),
            (Stage::Failed, Stage::Build)
        );
        let messages = server.log_messages(&workload.id).await;
        assert!(
            messages
                .iter()
                .any(|line| line.contains("compile error: missing semicolon")),
            "{messages:?}"
        );

        for deployment in [&local, &missing, &broken] {
            server
                .client
                .delete_deployment(&deployment.id)
                .await
                .expect("delete");
        }
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_stops_a_shell_entrypoint_at_once_and_an_ignoring_one_is_killed_after_its_grace_period()
     {
        require_docker!();
        let image = test_image();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();

        let (polite, workload) = server
            .deploy(
                DeploymentBuilder::new(unique("polite"))
                    .image(image)
                    .command(["sh", "-c", "echo up; while :; do sleep 1; done"])
                    .stop_grace_period_seconds(30),
            )
            .await;
        cleanup.track(&polite.id);
        server.start_workload(&workload.id).await;
        server.follow_until(&workload.id, |line| line == "up").await;
        let began = Instant::now();
        let stopped = server.stop_workload(&workload.id).await;
        let took = began.elapsed();
        assert_eq!(stopped.stage(), Stage::Stopped);
        assert!(
            took.as_secs() < 15,
            "a shell that honours SIGTERM waited for its grace period: {took:?}"
        );

        let (stubborn, workload) = server
            .deploy(
                DeploymentBuilder::new(unique("stubborn"))
                    .image(image)
                    .command([
                        "sh",
                        "-c",
                        "trap '' TERM; echo up; while :; do sleep 1; done",
                    ])
                    .stop_grace_period_seconds(2),
            )
            .await;
        cleanup.track(&stubborn.id);
        server.start_workload(&workload.id).await;
        server.follow_until(&workload.id, |line| line == "up").await;
        let began = Instant::now();
        let stopped = server.stop_workload(&workload.id).await;
        let took = began.elapsed();
        assert_eq!(stopped.stage(), Stage::Stopped);
        assert!(
            took.as_secs_f64() >= 2.0,
            "killed before its grace period ended: {took:?}"
        );
        assert_eq!(stopped.exit_code, Some(137), "killed by SIGKILL");

        for deployment in [&polite, &stubborn] {
            server
                .client
                .delete_deployment(&deployment.id)
                .await
                .expect("delete");
        }
        server.stop().await;
    }

    fn ticks(messages: &[String]) -> Vec<u64> {
        messages
            .iter()
            .filter_map(|line| line.strip_prefix("tick ")?.parse().ok())
            .collect()
    }

    /// Follows the log from its start until `tick N` with N >= `target`; returns the lines.
    async fn follow_until_tick(
        client: &slipway_sdk::Client,
        workload_id: &str,
        target: u64,
    ) -> Vec<String> {
        use futures::StreamExt;
        let request = slipway_sdk::proto::StreamLogsRequest {
            workload_id: workload_id.to_owned(),
            follow: true,
            ..Default::default()
        };
        let mut lines = Box::pin(client.stream_logs(request).await.expect("follow"));
        let mut seen = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            while let Some(entry) = lines.next().await {
                let message = entry.expect("entry").message;
                let reached = ticks(std::slice::from_ref(&message))
                    .first()
                    .is_some_and(|n| *n >= target);
                seen.push(message);
                if reached {
                    return;
                }
            }
        })
        .await
        .expect("ticks in time");
        seen
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_slipway_adopts_its_running_containers_and_their_output_on_restart() {
        require_docker!();
        let image = test_image();
        let dirs = Dirs::new();
        let range = port_range();
        let range = format!("{}-{}", range.start(), range.end());
        let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
        let mut cleanup = Cleanup::new();

        let ticker = server
            .client
            .create_deployment(
                DeploymentBuilder::new(unique("ticker"))
                    .image(image)
                    .command([
                        "sh",
                        "-c",
                        "httpd -p 8080 -h /; i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.1; done",
                    ])
                    .container_port(8080)
                    .stop_grace_period_seconds(5)
                    .build(),
            )
            .await
            .expect("deployment");
        cleanup.track(&ticker.id);
        let doomed = server
            .client
            .create_deployment(
                DeploymentBuilder::new(unique("doomed"))
                    .image(image)
                    .command(["sh", "-c", "while :; do sleep 1; done"])
                    .stop_grace_period_seconds(1)
                    .build(),
            )
            .await
            .expect("deployment");
        cleanup.track(&doomed.id);
        let ticking = server
            .client
            .create_workload(&ticker.id)
            .await
            .expect("workload");
        let vanishing = server
            .client
            .create_workload(&doomed.id)
            .await
            .expect("workload");
        let started = server
            .client
            .start_workload(&ticking.id)
            .await
            .expect("start")
            .finish()
            .await
            .expect("start");
        assert_eq!(started.stage(), Stage::Running, "{}", started.error);
        let gone = server
            .client
            .start_workload(&vanishing.id)
            .await
            .expect("start")
            .finish()
            .await
            .expect("start");
        assert_eq!(gone.stage(), Stage::Running, "{}", gone.error);
        let container = started.runtime_id.clone();

        // Some ticks are stored, then Slipway dies and the container goes on ticking.
        follow_until_tick(&server.client, &ticking.id, 5).await;
        server.kill9();
        let printed_before = container_log_lines(&container);
        eventually("the container prints while slipway is down", || {
            container_log_lines(&container) >= printed_before + 10
        })
        .await;
        remove_container(&gone.runtime_id);

        let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
        let adopted = server.client.get_workload(&ticking.id).await.expect("get");
        assert_eq!(adopted.stage(), Stage::Running);
        assert_eq!(adopted.runtime_id, container, "the same container");
        assert_eq!(adopted.port, started.port);
        assert!(slipway_testkit::port_answers(adopted.port as u16));

        // Its port stays claimed: a new listening workload gets another one.
        let other = server
            .client
            .create_deployment(
                DeploymentBuilder::new(unique("neighbour"))
                    .image(image)
                    .command(["httpd", "-f", "-p", "8080", "-h", "/"])
                    .container_port(8080)
                    .stop_grace_period_seconds(1)
                    .build(),
            )
            .await
            .expect("deployment");
        cleanup.track(&other.id);
        let neighbour = server
            .client
            .create_workload(&other.id)
            .await
            .expect("workload");
        let neighbour = server
            .client
            .start_workload(&neighbour.id)
            .await
            .expect("start")
            .finish()
            .await
            .expect("start");
        assert_eq!(neighbour.stage(), Stage::Running, "{}", neighbour.error);
        assert_ne!(neighbour.port, adopted.port);

        // Every tick exactly once, in order, across the time Slipway was down.
        let target = printed_before as u64 + 20;
        let seen = follow_until_tick(&server.client, &ticking.id, target).await;
        let numbers = ticks(&seen);
        assert_eq!(
            numbers,
            (1..=numbers.len() as u64).collect::<Vec<_>>(),
            "no tick lost or repeated"
        );

        // The container that vanished meanwhile failed its workload, with that reason.
        // (Reconcile runs while the server serves: wait for its outcome.)
        let failed = server
            .client
            .wait_for(&vanishing.id, Stage::Failed, slipway_testkit::PATIENCE)
            .await
            .expect("failed by reconcile");
        assert_eq!(failed.stage(), Stage::Failed);
        assert!(failed.error.contains("vanished"), "{}", failed.error);

        for deployment in [&ticker, &doomed, &other] {
            match server.client.delete_deployment(&deployment.id).await {
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(error) => panic!("delete: {error}"),
            }
        }
        assert!(
            containers_with_label(&format!("slipway.deployment={}", ticker.id), true).is_empty()
        );
        let status = server.terminate();
        assert!(status.success(), "{status:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clean_shutdown_leaves_containers_running_and_the_next_start_adopts_them() {
        require_docker!();
        let image = test_image();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();
        let (deployment, workload) = server
            .deploy(
                DeploymentBuilder::new(unique("steady"))
                    .image(image)
                    .command(["sh", "-c", "echo up; while :; do sleep 1; done"])
                    .stop_grace_period_seconds(1),
            )
            .await;
        cleanup.track(&deployment.id);
        let running = server.start_workload(&workload.id).await;
        assert_eq!(running.stage(), Stage::Running, "{}", running.error);
        let server = server.restart().await;
        let after = server.client.get_workload(&workload.id).await.expect("get");
        assert_eq!(after.stage(), Stage::Running);
        assert_eq!(after.runtime_id, running.runtime_id);
        assert_eq!(
            containers_with_label(&workload_label(&workload.id), false),
            std::slice::from_ref(&running.runtime_id)
        );
        let stopped = server.stop_workload(&workload.id).await;
        assert_eq!(
            stopped.stage(),
            Stage::Stopped,
            "the adopted container is controlled as before"
        );
        server
            .client
            .delete_deployment(&deployment.id)
            .await
            .expect("delete");
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exec_liveness_check_runs_inside_the_container() {
        require_docker!();
        let image = test_image();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();
        let (deployment, workload) = server
            .deploy(
                DeploymentBuilder::new(unique("probed"))
                    .image(image)
                    .command([
                        "sh",
                        "-c",
                        "touch /alive; echo up; while :; do sleep 1; done",
                    ])
                    .liveness(slipway_sdk::proto::HealthCheck {
                        probe: Some(slipway_sdk::proto::health_check::Probe::Exec(
                            slipway_sdk::proto::ExecProbe {
                                command: vec!["test".into(), "-f".into(), "/alive".into()],
                            },
                        )),
                        interval_ms: Some(200),
                        timeout_ms: Some(5000),
                        failure_threshold: Some(2),
                    })
                    .stop_grace_period_seconds(1),
            )
            .await;
        cleanup.track(&deployment.id);
        let running = server.start_workload(&workload.id).await;
        assert_eq!(running.stage(), Stage::Running, "{}", running.error);
        let healthy = server
            .wait_for_health(&workload.id, slipway_sdk::proto::Health::Healthy)
            .await;
        assert_eq!(healthy.generation, 1);
        let output = std::process::Command::new("docker")
            .args(["exec", &running.runtime_id, "rm", "/alive"])
            .output()
            .expect("docker exec");
        assert!(output.status.success());
        let failed = server
            .wait_for(&workload.id, Stage::Failed)
            .await
            .expect("failed");
        assert!(
            failed.error.contains("liveness check failed"),
            "{}",
            failed.error
        );
        server
            .client
            .delete_deployment(&deployment.id)
            .await
            .expect("delete");
        server.stop().await;
    }
}
