//! Output lines get the level they name for themselves; stderr is not an error
//! by itself; the stream is recorded as it came.

use slipway_sdk::{
    DeploymentBuilder,
    proto::{Level, Stage, Stream},
};
use slipway_testkit::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_lines_get_the_level_they_name() {
    let server = TestServer::start().await;
    server.service_dir("levels");
    let script = r#"
        echo 'plain stdout'
        echo 'plain stderr' >&2
        echo '127.0.0.1 - - [03/Dec/2026 08:00:00] "GET / HTTP/1.1" 200 -' >&2
        echo 'WARNING:root:careful' >&2
        echo '[error] upstream timed out' >&2
        echo 'level=debug msg=detail'
        echo '{"level":"error","msg":"json error"}'
        exit 3
    "#;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("levels")
                .service_path("levels")
                .build_step(["sh", "-c", script])
                .command(["sh", "-c", "sleep 30"]),
        )
        .await;
    let (failed, _) = server.start_expecting_failure(&workload.id).await;
    assert_eq!(failed.stage(), Stage::Failed);
    let entries = server.client.all_logs(&workload.id).await.expect("logs");
    let level_of = |message: &str| {
        let entry = entries
            .iter()
            .find(|entry| entry.message == message)
            .unwrap_or_else(|| panic!("{message:?} is in the log"));
        (entry.stream(), entry.level())
    };
    assert_eq!(level_of("plain stdout"), (Stream::Stdout, Level::Info));
    assert_eq!(level_of("plain stderr"), (Stream::Stderr, Level::Info));
    assert_eq!(
        level_of(r#"127.0.0.1 - - [03/Dec/2026 08:00:00] "GET / HTTP/1.1" 200 -"#),
        (Stream::Stderr, Level::Info)
    );
    assert_eq!(
        level_of("WARNING:root:careful"),
        (Stream::Stderr, Level::Warn)
    );
    assert_eq!(
        level_of("[error] upstream timed out"),
        (Stream::Stderr, Level::Error)
    );
    assert_eq!(
        level_of("level=debug msg=detail"),
        (Stream::Stdout, Level::Debug)
    );
    assert_eq!(
        level_of(r#"{"level":"error","msg":"json error"}"#),
        (Stream::Stdout, Level::Error)
    );
    server.stop().await;
}
