//! Docker readiness against the real engine: probes reach the container itself
//! (not the engine's port proxy), an image's HEALTHCHECK gates RUNNING, ports are
//! published on the publish address, and `secret_env` reaches the container but
//! no API response, log line or event. Every test skips with a printed reason
//! when no engine answers (fails instead with SLIPWAY_REQUIRE_DOCKER=1).

mod needs_docker {
    use std::{
        net::{IpAddr, Ipv4Addr},
        time::{Duration, Instant},
    };

    use slipway_sdk::{
        DeploymentBuilder,
        proto::{Health, HealthCheck, Stage, TcpProbe, health_check::Probe},
    };
    use slipway_testkit::{
        PATIENCE, TestServer,
        docker::{Cleanup, container_env, health_status, published_ports, test_image, unique_name},
        http_get, require_docker,
    };

    /// A server in the container that starts listening only 5 s after the container starts.
    const LATE_SERVER: &str =
        "sleep 5; mkdir -p /www; echo late > /www/index.html; exec httpd -f -p 8080 -h /www";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_container_that_listens_late_is_running_only_once_it_answers_and_is_published_on_loopback()
     {
        require_docker!();
        let image = test_image();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();
        for readiness in ["tcp", "http"] {
            let builder = DeploymentBuilder::new(unique_name(&format!("late-{readiness}")))
                .image(image)
                .command(["sh", "-c", LATE_SERVER])
                .container_port(8080)
                .startup_timeout_seconds(30)
                .stop_grace_period_seconds(1);
            let builder = match readiness {
                "tcp" => builder.tcp_readiness(),
                _ => builder.http_readiness("/"),
            };
            let (deployment, workload) = server.deploy(builder).await;
            cleanup.track(&deployment.id);

            let began = Instant::now();
            let running = server.start_workload(&workload.id).await;
            let took = began.elapsed();
            assert_eq!(running.stage(), Stage::Running, "{}", running.error);
            let answer = http_get(running.port as u16, "/");
            assert!(
                matches!(&answer, Ok((200, body)) if body == "late\n"),
                "{readiness} readiness: the service answers as soon as the start says RUNNING: {answer:?}"
            );
            assert!(
                took >= Duration::from_millis(4900),
                "{readiness} readiness: RUNNING after {took:?}, before the server could listen"
            );
            assert_eq!(
                published_ports(&running.runtime_id),
                vec![format!("8080/tcp -> 127.0.0.1:{}", running.port)],
                "published on 127.0.0.1 only"
            );
            server.stop_workload(&workload.id).await;
            server.delete_deployment(&deployment.id).await;
        }
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tcp_liveness_check_reaches_the_service_not_the_port_proxy() {
        require_docker!();
        let image = test_image();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();
        let (deployment, workload) = server
            .deploy(
                DeploymentBuilder::new(unique_name("lively"))
                    .image(image)
                    // httpd goes to the background; the container lives on without it.
                    .command(["sh", "-c", "httpd -p 8080 -h /; while :; do sleep 1; done"])
                    .container_port(8080)
                    .liveness(HealthCheck {
                        probe: Some(Probe::Tcp(TcpProbe {})),
                        interval_ms: Some(200),
                        timeout_ms: Some(1000),
                        failure_threshold: Some(2),
                    })
                    .stop_grace_period_seconds(1),
            )
            .await;
        cleanup.track(&deployment.id);
        let running = server.start_workload(&workload.id).await;
        assert_eq!(running.stage(), Stage::Running, "{}", running.error);
        server.wait_for_health(&workload.id, Health::Healthy).await;

        // The server inside stops listening while the engine's proxy still accepts.
        let output = std::process::Command::new("docker")
            .args(["exec", &running.runtime_id, "killall", "httpd"])
            .output()
            .expect("docker exec");
        assert!(output.status.success(), "{output:?}");
        let failed = server
            .wait_for(&workload.id, Stage::Failed)
            .await
            .expect("failed");
        assert!(
            failed.error.contains("liveness check failed"),
            "{}",
            failed.error
        );
        server.delete_deployment(&deployment.id).await;
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_publish_address_is_configurable() {
        require_docker!();
        let image = test_image();
        let server = TestServer::start_with(|config| {
            config.publish_address = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        })
        .await;
        let mut cleanup = Cleanup::new();
        let (deployment, workload) = server
            .deploy(
                DeploymentBuilder::new(unique_name("everywhere"))
                    .image(image)
                    .command(["httpd", "-f", "-p", "8080", "-h", "/"])
                    .container_port(8080)
                    .stop_grace_period_seconds(1),
            )
            .await;
        cleanup.track(&deployment.id);
        let running = server.start_workload(&workload.id).await;
        assert_eq!(running.stage(), Stage::Running, "{}", running.error);
        assert!(
            published_ports(&running.runtime_id)
                .contains(&format!("8080/tcp -> 0.0.0.0:{}", running.port)),
            "{:?}",
            published_ports(&running.runtime_id)
        );
        server.delete_deployment(&deployment.id).await;
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn secret_env_reaches_the_container_and_no_response_log_line_or_event() {
        require_docker!();
        let image = test_image();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();
        let secret = format!("s3cret-{}", unique_name("value"));
        let (deployment, workload) = server
            .deploy(
                DeploymentBuilder::new(unique_name("secretive"))
                    .image(image)
                    .command([
                        "sh",
                        "-c",
                        "echo \"token: $API_TOKEN\"; echo \"port: $PORT\"; exec httpd -f -p 8080 -h /",
                    ])
                    .container_port(8080)
                    .env("GREETING", "hello")
                    .secret_env("API_TOKEN", secret.as_str())
                    .stop_grace_period_seconds(1),
            )
            .await;
        cleanup.track(&deployment.id);
        let running = server.start_workload(&workload.id).await;
        assert_eq!(running.stage(), Stage::Running, "{}", running.error);

        // The engine has it: the container's env holds the secret, the env and PORT.
        let env = container_env(&running.runtime_id);
        for expected in [
            format!("API_TOKEN={secret}"),
            "GREETING=hello".to_owned(),
            "PORT=8080".to_owned(),
        ] {
            assert!(env.contains(&expected), "{expected} in {env:?}");
        }
        let lines = server
            .follow_until(&workload.id, |line| line.starts_with("port: "))
            .await;
        assert!(
            lines.iter().any(|line| line.starts_with("token: ")),
            "{lines:?}"
        );

        // Nothing Slipway answers holds it.
        let stopped = server.stop_workload(&workload.id).await;
        let shown_deployment = server
            .client
            .get_deployment(&deployment.id)
            .await
            .expect("get deployment");
        let shown_workload = server
            .client
            .get_workload(&workload.id)
            .await
            .expect("get workload");
        let logs = server.client.all_logs(&workload.id).await.expect("logs");
        let events = server.events_through(stopped.revision).await;
        let everything = [
            format!("{shown_deployment:?}"),
            format!("{shown_workload:?}"),
            format!("{running:?}"),
            format!("{stopped:?}"),
            format!("{logs:?}"),
            format!("{events:?}"),
        ];
        for (shown, what) in everything.iter().zip([
            "GetDeployment",
            "GetWorkload",
            "the start's final workload",
            "the stop's final workload",
            "GetLogs",
            "WatchEvents",
        ]) {
            assert!(!shown.contains(&secret), "{what} shows the secret: {shown}");
        }
        assert!(
            shown_deployment
                .spec
                .as_ref()
                .is_some_and(|spec| spec.secret_env.contains_key("API_TOKEN")),
            "the secret's name is still shown"
        );
        server.delete_deployment(&deployment.id).await;
        server.stop().await;
    }

    /// A service directory `name` whose Dockerfile has a HEALTHCHECK (with these
    /// options) passing once /ready exists.
    fn healthcheck_image_dir(
        server: &TestServer,
        name: &'static str,
        options: &str,
    ) -> &'static str {
        let directory = server.service_dir(name);
        std::fs::write(
            directory.join("Dockerfile"),
            format!(
                "FROM {}\nHEALTHCHECK {options} CMD test -f /ready\n",
                test_image()
            ),
        )
        .expect("Dockerfile");
        name
    }

    /// Starts a workload expected to fail; returns it once failed.
    async fn start_failing(server: &TestServer, workload_id: &str) -> slipway_sdk::proto::Workload {
        let progress = server
            .client
            .start_workload(workload_id)
            .await
            .expect("start accepted");
        // Whether the SDK ends a failed start with the failed workload or with an
        // error, the workload is what counts.
        let _ = tokio::time::timeout(PATIENCE, progress.finish())
            .await
            .expect("start ends in time");
        server
            .wait_for(workload_id, Stage::Failed)
            .await
            .expect("failed")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_images_healthcheck_gates_running_and_an_unhealthy_verdict_fails_the_start() {
        require_docker!();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();
        // Failures in the start period do not count: healthy once the check passes.
        let patient = healthcheck_image_dir(
            &server,
            "patient",
            "--interval=1s --timeout=2s --start-period=60s --retries=2",
        );
        let strict =
            healthcheck_image_dir(&server, "strict", "--interval=1s --timeout=2s --retries=2");

        let (healthy, workload) = server
            .deploy(
                DeploymentBuilder::new(unique_name("becomes-healthy"))
                    .service_path(patient)
                    .dockerfile("Dockerfile")
                    .command([
                        "sh",
                        "-c",
                        "sleep 3; touch /ready; while :; do sleep 1; done",
                    ])
                    .startup_timeout_seconds(30)
                    .stop_grace_period_seconds(1),
            )
            .await;
        cleanup.track(&healthy.id);
        let began = Instant::now();
        let running = server.start_workload(&workload.id).await;
        let took = began.elapsed();
        assert_eq!(running.stage(), Stage::Running, "{}", running.error);
        assert_eq!(
            health_status(&running.runtime_id),
            "healthy",
            "RUNNING once the engine says healthy"
        );
        assert!(
            took >= Duration::from_millis(2900),
            "RUNNING after {took:?}, before the health check could pass"
        );

        // Never healthy: the engine says unhealthy after two failures, and the start fails.
        let (unhealthy, workload) = server
            .deploy(
                DeploymentBuilder::new(unique_name("never-healthy"))
                    .service_path(strict)
                    .dockerfile("Dockerfile")
                    .command(["sh", "-c", "while :; do sleep 1; done"])
                    .startup_timeout_seconds(30)
                    .stop_grace_period_seconds(1),
            )
            .await;
        cleanup.track(&unhealthy.id);
        let failed = start_failing(&server, &workload.id).await;
        assert_eq!(failed.failed_stage(), Stage::Deploy);
        assert!(failed.error.contains("unhealthy"), "{}", failed.error);

        // Still starting when the startup timeout passes: the start fails too.
        let (slow, workload) = server
            .deploy(
                DeploymentBuilder::new(unique_name("too-slow"))
                    .service_path(patient)
                    .dockerfile("Dockerfile")
                    .command(["sh", "-c", "while :; do sleep 1; done"])
                    .startup_timeout_seconds(3)
                    .stop_grace_period_seconds(1),
            )
            .await;
        cleanup.track(&slow.id);
        let failed = start_failing(&server, &workload.id).await;
        assert_eq!(failed.failed_stage(), Stage::Deploy);
        assert!(
            failed.error.contains("not healthy after 3s"),
            "{}",
            failed.error
        );

        for deployment in [&healthy, &unhealthy, &slow] {
            server.delete_deployment(&deployment.id).await;
        }
        server.stop().await;
    }
}
