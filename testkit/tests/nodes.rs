//! Nodes: every server registers itself, heartbeats, and sees the others that
//! share its database; a node that stops heartbeating is declared down by the
//! others, one that shuts down cleanly has left.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use slipway_sdk::{
    DeploymentBuilder,
    proto::{Node, NodeState, Stage},
};
use slipway_testkit::{ServerProcess, TestServer, postgres_test_database, until};
use tempfile::TempDir;

const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

fn state(node: &Node) -> NodeState {
    NodeState::try_from(node.state).unwrap_or(NodeState::Unspecified)
}

#[tokio::test]
async fn a_server_is_one_node_that_counts_its_running_workloads() {
    let server = TestServer::start_with(|config| {
        config.node.node_name = Some("solo".to_owned());
        config.node.node_labels = vec![("zone".to_owned(), "a".to_owned())];
    })
    .await;
    let nodes = server.client.list_nodes(false).await.expect("list nodes");
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let node = &nodes[0];
    assert_eq!(node.name, "solo");
    assert_eq!(state(node), NodeState::Active);
    assert!(node.answering);
    assert_eq!(node.labels.get("zone").map(String::as_str), Some("a"));
    assert_eq!(node.runtimes, vec!["process", "docker"]);
    assert_eq!(node.address, server.address.to_string());
    assert_eq!(node.incarnation, 1);
    assert_eq!(node.active_workloads, 0);
    assert_eq!(node.heartbeat_ttl_ms, 30_000);

    let (_, workload) = server
        .deploy(DeploymentBuilder::new("sleeper").command(["sleep", "600"]))
        .await;
    let running = server.start_workload(&workload.id).await;
    assert_eq!(running.stage(), Stage::Running);
    let node = server.client.get_node("solo").await.expect("by name");
    assert_eq!(node.active_workloads, 1);
    let by_id = server.client.get_node(&node.id).await.expect("by id");
    assert_eq!(by_id.name, "solo");
    let missing = server.client.get_node("nowhere").await.unwrap_err();
    assert_eq!(missing.code(), Some(tonic::Code::NotFound), "{missing}");
    let empty = server.client.get_node(" ").await.unwrap_err();
    assert_eq!(empty.code(), Some(tonic::Code::InvalidArgument), "{empty}");
    server.stop_workload(&workload.id).await;
}

#[tokio::test]
async fn a_restarted_server_is_the_same_node_in_a_new_incarnation() {
    let server = TestServer::start().await;
    let first = server.client.list_nodes(false).await.expect("nodes");
    let server = server.restart().await;
    let nodes = server.client.list_nodes(true).await.expect("nodes");
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0].id, first[0].id);
    assert_eq!(nodes[0].incarnation, 2);
    assert_eq!(state(&nodes[0]), NodeState::Active);
}

struct Dirs {
    data: TempDir,
    root: TempDir,
}

fn dirs() -> Dirs {
    Dirs {
        data: TempDir::new().expect("data dir"),
        root: TempDir::new().expect("root dir"),
    }
}

async fn node_process(database_url: &str, name: &str, dirs: &Dirs, ports: &str) -> ServerProcess {
    ServerProcess::start_with_args(
        SERVER_PROCESS,
        // Its own directory around the data directory: the admin token file
        // goes next to it.
        &dirs.data.path().join("data"),
        dirs.root.path(),
        ports,
        &[
            "--database-url",
            database_url,
            "--node-name",
            name,
            "--heartbeat-interval",
            "200ms",
            "--heartbeat-ttl",
            "1s",
        ],
    )
    .await
}

fn named<'a>(nodes: &'a [Node], name: &str) -> Option<&'a Node> {
    nodes.iter().find(|node| node.name == name)
}

// Several threads: `terminate` waits for the process while the client's
// connection still has to answer the server's goodbye.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_one_postgres_see_each_other_and_declare_a_silent_one_down() {
    let Some(database_url) = postgres_test_database().await else {
        eprintln!("skipped: several nodes need PostgreSQL (set SLIPWAY_TEST_POSTGRES_URL)");
        return;
    };
    let (a_dirs, b_dirs, c_dirs) = (dirs(), dirs(), dirs());
    let (a, b, c) = tokio::join!(
        node_process(&database_url, "node-a", &a_dirs, "3600-3619"),
        node_process(&database_url, "node-b", &b_dirs, "3620-3639"),
        node_process(&database_url, "node-c", &c_dirs, "3640-3659"),
    );
    // Every node answers for all three, once all three have registered (a
    // server prints its address before it registers).
    for server in [&a, &b, &c] {
        let client = server.client.clone();
        let nodes = until("three nodes registered", || {
            let client = client.clone();
            async move {
                let nodes = client.list_nodes(false).await.ok()?;
                (nodes.len() == 3).then_some(nodes)
            }
        })
        .await;
        assert!(nodes.iter().all(|node| state(node) == NodeState::Active));
        assert_eq!(nodes.iter().filter(|node| node.answering).count(), 1);
    }
    let b_address = b.address.to_string();
    let b_node = named(&a.client.list_nodes(false).await.expect("nodes"), "node-b")
        .cloned()
        .expect("node-b");
    assert_eq!(b_node.address, b_address);

    // SIGSTOP node-b for longer than its TTL: the others declare it down…
    kill(Pid::from_raw(b.pid()), Signal::SIGSTOP).expect("SIGSTOP");
    let client = a.client.clone();
    let nodes = until("node-b declared down", || {
        let client = client.clone();
        async move {
            let nodes = client.list_nodes(false).await.ok()?;
            (named(&nodes, "node-b").map(state) == Some(NodeState::Down)).then_some(nodes)
        }
    })
    .await;
    let down = named(&nodes, "node-b").expect("node-b");
    assert!(down.reason.contains("heartbeat"), "{down:?}");
    assert_eq!(named(&nodes, "node-a").map(state), Some(NodeState::Active));
    assert_eq!(named(&nodes, "node-c").map(state), Some(NodeState::Active));

    // …and once continued it finds out, and comes back as a new incarnation.
    kill(Pid::from_raw(b.pid()), Signal::SIGCONT).expect("SIGCONT");
    let client = c.client.clone();
    let nodes = until("node-b back", || {
        let client = client.clone();
        async move {
            let nodes = client.list_nodes(false).await.ok()?;
            let back = named(&nodes, "node-b")?;
            (state(back) == NodeState::Active && back.incarnation == b_node.incarnation + 1)
                .then_some(nodes)
        }
    })
    .await;
    assert_eq!(
        named(&nodes, "node-b").map(|node| node.id.clone()),
        Some(b_node.id.clone())
    );

    // kill -9 of node-c: declared down after its TTL.
    c.kill9();
    let client = b.client.clone();
    until("node-c declared down", || {
        let client = client.clone();
        async move {
            let nodes = client.list_nodes(false).await.ok()?;
            (named(&nodes, "node-c").map(state) == Some(NodeState::Down)).then_some(nodes)
        }
    })
    .await;

    // A clean shutdown of node-a: it left (hidden unless asked for), never down.
    assert!(a.terminate().success());
    let shown = b.client.list_nodes(false).await.expect("nodes");
    assert!(named(&shown, "node-a").is_none(), "{shown:?}");
    let all = b.client.list_nodes(true).await.expect("nodes");
    assert_eq!(named(&all, "node-a").map(state), Some(NodeState::Left));
}
