//! A container adopted after a `kill -9` of Slipway is logged as before: its
//! deployment's secrets are masked in every line. Skips with a printed reason
//! when no engine answers (fails instead with SLIPWAY_REQUIRE_DOCKER=1).

mod needs_docker {
    use futures::StreamExt;
    use slipway_sdk::{Client, DeploymentBuilder, Error, proto::Stage, proto::StreamLogsRequest};
    use slipway_testkit::{
        Dirs, PATIENCE, ServerProcess,
        docker::{Cleanup, container_log_lines, test_image, unique_name as unique},
        eventually, port_range, require_docker,
    };

    const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

    /// Follows the workload's log until a line says `tick N` with N ≥ `target`.
    async fn follow_until_tick(client: &Client, workload_id: &str, target: u64) -> Vec<String> {
        let request = StreamLogsRequest {
            workload_id: workload_id.to_owned(),
            follow: true,
            ..Default::default()
        };
        let mut lines = Box::pin(client.stream_logs(request).await.expect("follow"));
        let mut seen = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            while let Some(entry) = lines.next().await {
                let message = entry.expect("entry").message;
                let reached = message
                    .strip_prefix("tick ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|number| number.parse::<u64>().ok())
                    .is_some_and(|number| number >= target);
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
    async fn an_adopted_containers_output_keeps_its_secrets_masked() {
        require_docker!();
        let image = test_image();
        let dirs = Dirs::new();
        let range = port_range();
        let range = format!("{}-{}", range.start(), range.end());
        let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
        let mut cleanup = Cleanup::new();
        let secret = format!("s3cret-{}", unique("value"));
        let deployment = server
            .client
            .create_deployment(
                DeploymentBuilder::new(unique("secretive"))
                    .image(image)
                    .command([
                        "sh",
                        "-c",
                        "i=0; while :; do i=$((i+1)); echo \"tick $i token=$API_TOKEN\"; sleep 0.1; done",
                    ])
                    .secret_env("API_TOKEN", secret.as_str())
                    .stop_grace_period_seconds(1)
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
        let started = server
            .client
            .start_workload(&workload.id)
            .await
            .expect("start")
            .finish()
            .await
            .expect("start");
        assert_eq!(started.stage(), Stage::Running, "{}", started.error);
        let container = started.runtime_id.clone();
        follow_until_tick(&server.client, &workload.id, 3).await;

        server.kill9();
        let printed_before = container_log_lines(&container);
        eventually("the container prints while slipway is down", || {
            container_log_lines(&container) >= printed_before + 10
        })
        .await;

        let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
        // Lines printed while Slipway was down and after, through the adopted sink.
        let target = printed_before as u64 + 20;
        follow_until_tick(&server.client, &workload.id, target).await;
        let adopted = server.client.get_workload(&workload.id).await.expect("get");
        assert_eq!(adopted.stage(), Stage::Running);
        assert_eq!(adopted.runtime_id, container, "the same container");

        let stored = server.client.all_logs(&workload.id).await.expect("logs");
        let ticks: Vec<&str> = stored
            .iter()
            .map(|entry| entry.message.as_str())
            .filter(|message| message.starts_with("tick "))
            .collect();
        assert!(ticks.len() as u64 >= target, "{} ticks stored", ticks.len());
        for message in stored.iter().map(|entry| entry.message.as_str()) {
            assert!(
                !message.contains(&secret),
                "a stored line shows the secret: {message}"
            );
        }
        assert!(
            ticks.iter().all(|tick| tick.ends_with("token=********")),
            "every tick, before and after the adoption, has the secret masked"
        );

        match server.client.delete_deployment(&deployment.id).await {
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(error) => panic!("delete: {error}"),
        }
        let status = server.terminate();
        assert!(status.success(), "{status:?}");
    }
}
