//! Nodes that serve TLS with mutual TLS reach each other over it: a call one
//! node forwards to another goes over TLS checked against --peer-tls-ca,
//! presenting the node's own certificate; a local administrator's call (on the
//! Unix socket, no token) is forwarded with the node's own token. Skipped
//! without PostgreSQL.

use slipway_sdk::{
    Client, DeploymentBuilder,
    proto::{ListAuditRequest, Stage},
};
use slipway_testkit::{
    TestServer, postgres_test_database,
    tls::{Ca, ServerFiles},
};

async fn node(database_url: &str, name: &str, files: &ServerFiles) -> TestServer {
    let database_url = database_url.to_owned();
    TestServer::start_with(|config| {
        config.database_url = Some(slipway_server::config::DatabaseUrl(database_url));
        config.node.node_name = Some(name.to_owned());
        config.node.node_labels = vec![("name".to_owned(), name.to_owned())];
        files.apply(config, true);
        config.transport.peer_tls_ca = Some(files.ca.clone());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_mutual_tls_forward_calls_to_each_other_over_it() {
    let Some(database_url) = postgres_test_database().await else {
        eprintln!("skipped: several nodes need PostgreSQL (set SLIPWAY_TEST_POSTGRES_URL)");
        return;
    };
    let ca = Ca::new("slipway cluster CA");
    let files = ServerFiles::new(&ca);
    let a = node(&database_url, "tls-a", &files).await;
    let b = node(&database_url, "tls-b", &files).await;
    slipway_testkit::until("both nodes registered", || async {
        (a.client.list_nodes(false).await.ok()?.len() == 2).then_some(())
    })
    .await;

    // Through node A, a workload only node B may run: the start is forwarded
    // to B over mutual TLS, with the caller's token.
    let deployment = a
        .client
        .create_deployment(
            DeploymentBuilder::new("over-tls")
                .command(["sleep", "600"])
                .node_selector("name", "tls-b")
                .build(),
        )
        .await
        .expect("deployment");
    let workload = a
        .client
        .create_workload(&deployment.id)
        .await
        .expect("workload");
    let running = a
        .client
        .start_workload(&workload.id)
        .await
        .expect("forwarded start")
        .finish()
        .await
        .expect("running");
    assert_eq!(running.stage(), Stage::Running);
    let node_b = a.client.get_node("tls-b").await.expect("node B");
    assert_eq!(running.node_id, node_b.id);

    // A local administrator on node A's socket brings no token: the stop is
    // forwarded with node A's own.
    let socket = a.socket_path().expect("node A's socket");
    let local = Client::connect(format!("unix://{}", socket.display()))
        .await
        .expect("the socket");
    let stopped = local
        .stop_workload(&workload.id, None)
        .await
        .expect("forwarded stop")
        .finish()
        .await
        .expect("stopped");
    assert_eq!(stopped.stage(), Stage::Stopped);
    let records = b
        .client
        .list_audit(ListAuditRequest {
            action: "StopWorkload".to_owned(),
            ..ListAuditRequest::default()
        })
        .await
        .expect("audit");
    let node_a = a.client.get_node("tls-a").await.expect("node A");
    assert!(
        records
            .iter()
            .any(|record| record.actor == format!("node:{}", node_a.id) && record.result == "OK"),
        "node B recorded the stop as node A's: {records:#?}"
    );
    b.stop().await;
    a.stop().await;
}
