//! Logs and events as streams: tail, follow to the end, resume from a revision.

use futures::StreamExt;
use slipway_sdk::{
    DeploymentBuilder,
    proto::{EventType, ListWorkloadsRequest, Stage, StreamLogsRequest, WatchEventsRequest},
};
use slipway_testkit::{PATIENCE, TestServer};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_and_follow_read_exactly_the_lines_asked_for() {
    let server = TestServer::start().await;
    server.service_dir("batch");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("batch")
                .service_path("batch")
                .command([SAMPLE, "lines", "5000"])
                .min_ready_ms(0),
        )
        .await;
    server.start_workload(&workload.id).await;
    server
        .wait_for(&workload.id, Stage::Stopped)
        .await
        .expect("completes");

    // Following a finished workload reads to its last line, then ends.
    let all: Vec<_> = tokio::time::timeout(
        PATIENCE,
        server
            .client
            .stream_logs(StreamLogsRequest {
                workload_id: workload.id.clone(),
                follow: true,
                ..StreamLogsRequest::default()
            })
            .await
            .expect("follow")
            .map(|entry| entry.expect("entry"))
            .collect::<Vec<_>>(),
    )
    .await
    .expect("follow of a finished workload ends");
    let numbered: Vec<_> = all
        .iter()
        .filter(|entry| entry.stream() == slipway_sdk::proto::Stream::Stdout)
        .map(|entry| entry.message.clone())
        .collect();
    assert_eq!(
        numbered,
        (1..=5000).map(|n| format!("line {n}")).collect::<Vec<_>>()
    );
    assert!(all.windows(2).all(|pair| pair[1].seq == pair[0].seq + 1));

    // The last 3 lines, exactly.
    let tail: Vec<u64> = server
        .client
        .stream_logs(StreamLogsRequest {
            workload_id: workload.id.clone(),
            tail: Some(3),
            ..StreamLogsRequest::default()
        })
        .await
        .expect("tail")
        .map(|entry| entry.expect("entry").seq)
        .collect()
        .await;
    let last_three: Vec<u64> = all[all.len() - 3..].iter().map(|entry| entry.seq).collect();
    assert_eq!(tail, last_three);

    // From a seq in the middle: no gap, no duplicate.
    let from: Vec<u64> = server
        .client
        .stream_logs(StreamLogsRequest {
            workload_id: workload.id.clone(),
            from_seq: 100,
            ..StreamLogsRequest::default()
        })
        .await
        .expect("from")
        .map(|entry| entry.expect("entry").seq)
        .collect()
        .await;
    assert_eq!(from.first(), Some(&100));
    assert_eq!(from.last(), all.last().map(|entry| entry.seq).as_ref());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_of_a_running_workload_ends_after_it_is_stopped() {
    let server = TestServer::start().await;
    server.service_dir("web");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("web")
                .service_path("web")
                .command([SAMPLE, "http"])
                .listen(),
        )
        .await;
    server.start_workload(&workload.id).await;
    let mut follower = Box::pin(
        server
            .client
            .stream_logs(StreamLogsRequest {
                workload_id: workload.id.clone(),
                follow: true,
                ..StreamLogsRequest::default()
            })
            .await
            .expect("follow"),
    );
    // It has caught up with what is stored, then waits.
    let first = follower.next().await.expect("a line").expect("entry");
    assert_eq!(first.seq, 1);
    server.stop_workload(&workload.id).await;
    let rest: Vec<_> = tokio::time::timeout(PATIENCE, follower.collect::<Vec<_>>())
        .await
        .expect("the follower ends after the stop");
    let last = rest.last().expect("lines").as_ref().expect("entry");
    assert!(last.message.starts_with("stopped"), "{}", last.message);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_listed_revision_sees_every_later_change_in_order() {
    let server = TestServer::start().await;
    server.service_dir("web");
    let (deployment, workload) = server
        .deploy(
            DeploymentBuilder::new("web")
                .service_path("web")
                .command([SAMPLE, "http"])
                .listen(),
        )
        .await;
    let listed = server
        .client
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.revision, 2, "deployment created, workload created");
    server.start_workload(&workload.id).await;
    server.stop_workload(&workload.id).await;

    let mut events = Box::pin(
        server
            .client
            .watch_events(WatchEventsRequest {
                since_revision: listed.revision,
                deployment_id: deployment.id.clone(),
                ..WatchEventsRequest::default()
            })
            .await
            .expect("watch"),
    );
    let mut stages = Vec::new();
    let mut revision = listed.revision;
    while stages.last() != Some(&Stage::Stopped) {
        let event = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("event in time")
            .expect("event")
            .expect("ok");
        assert_eq!(event.revision, revision + 1, "revisions have no gap");
        revision = event.revision;
        assert_eq!(event.r#type(), EventType::WorkloadUpdated);
        let snapshot = event.workload.expect("snapshot");
        assert_eq!(snapshot.revision, event.revision);
        if stages.last() != Some(&snapshot.stage()) {
            stages.push(snapshot.stage());
        }
    }
    assert_eq!(
        stages,
        [
            Stage::Validate,
            Stage::Build,
            Stage::Deploy,
            Stage::Running,
            Stage::Stopping,
            Stage::Stopped
        ]
    );

    // Live: a delete arrives on the open watch.
    server
        .client
        .delete_deployment(&deployment.id)
        .await
        .expect("delete");
    let mut kinds = Vec::new();
    while kinds.last() != Some(&EventType::DeploymentDeleted) {
        let event = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("event in time")
            .expect("event")
            .expect("ok");
        kinds.push(event.r#type());
    }
    assert_eq!(
        kinds,
        [EventType::WorkloadDeleted, EventType::DeploymentDeleted]
    );
    server.stop().await;
}
