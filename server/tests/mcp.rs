//! `slipway mcp` as an agent client sees it: the real binary spawned over
//! stdio against a real server, driven by the rmcp client — initialize, list
//! the tools with their hints, run a service, read its logs, stop it, and
//! the errors and long operations in between.

mod cli_support;

use cli_support::{Harness, PATIENCE, counting_service};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::TokioChildProcess,
};
use serde_json::{Value, json};

type Session = RunningService<RoleClient, ()>;

/// `slipway mcp ARGUMENTS` against the harness's server, initialized.
async fn session(harness: &Harness, arguments: &[&str]) -> Session {
    let mut command = harness.command(&[&["mcp"], arguments].concat());
    command.stdin(std::process::Stdio::piped());
    let transport = TokioChildProcess::new(command).expect("spawn slipway mcp");
    tokio::time::timeout(PATIENCE, ().serve(transport))
        .await
        .expect("initialized in time")
        .expect("initialize")
}

/// Calls `tool` with `arguments`; returns whether it was a tool error, and its
/// structured answer.
async fn call(session: &Session, tool: &'static str, arguments: Value) -> (bool, Value) {
    let Value::Object(arguments) = arguments else {
        panic!("arguments are an object");
    };
    let result: CallToolResult = tokio::time::timeout(
        PATIENCE,
        session.call_tool(CallToolRequestParams::new(tool).with_arguments(arguments)),
    )
    .await
    .unwrap_or_else(|_| panic!("{tool} answers in time"))
    .unwrap_or_else(|error| panic!("{tool}: {error}"));
    let answer = result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("{tool} answers structured content: {result:?}"));
    (result.is_error == Some(true), answer)
}

/// Calls `tool`, which must succeed, and returns its answer.
async fn call_ok(session: &Session, tool: &'static str, arguments: Value) -> Value {
    let (is_error, answer) = call(session, tool, arguments).await;
    assert!(!is_error, "{tool} failed: {answer:#}");
    answer
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_runs_a_service_reads_its_logs_and_stops_it() {
    let harness = Harness::start().await;
    let session = session(&harness, &[]).await;

    let info = session.peer_info().expect("the server introduced itself");
    let implementation = info.server_info.clone().expect("server info");
    assert_eq!(implementation.name, "slipway");
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or_default()
            .contains("allowed_actions")
    );

    // Every tool, with hints a client can ask the user by.
    let tools = session.list_all_tools().await.expect("tools");
    let mut names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "delete_deployment",
            "delete_workload",
            "get_workload",
            "list_deployments",
            "list_workloads",
            "read_logs",
            "restart",
            "run",
            "start",
            "stop",
            "wait_for_stage",
        ]
    );
    for tool in &tools {
        let hints = tool.annotations.clone().expect("annotations");
        assert!(hints.title.is_some(), "{} has a title", tool.name);
        let read_only = hints.read_only_hint == Some(true);
        let expected_read_only = matches!(
            tool.name.as_ref(),
            "list_deployments" | "list_workloads" | "get_workload" | "read_logs" | "wait_for_stage"
        );
        assert_eq!(read_only, expected_read_only, "{}", tool.name);
        let destructive = hints.destructive_hint == Some(true);
        let expected_destructive = matches!(
            tool.name.as_ref(),
            "stop" | "restart" | "delete_workload" | "delete_deployment"
        );
        assert_eq!(destructive, expected_destructive, "{}", tool.name);
        assert!(
            tool.description
                .as_deref()
                .is_some_and(|text| !text.is_empty())
        );
    }
    let run = tools.iter().find(|tool| tool.name == "run").expect("run");
    assert_eq!(
        run.annotations
            .clone()
            .and_then(|hints| hints.idempotent_hint),
        Some(false)
    );
    let properties = run.input_schema.get("properties").expect("run's schema");
    for field in ["name", "command", "shell", "dir", "port", "env"] {
        assert!(
            properties.get(field).is_some(),
            "run takes {field}: {properties}"
        );
    }

    // Run a service: it answers once running, with the next actions.
    let ran = call_ok(
        &session,
        "run",
        json!({ "name": "greeter", "shell": counting_service("hello", 3), "env": {"MOOD": "fine"} }),
    )
    .await;
    assert_eq!(ran["outcome"], "done", "{ran:#}");
    assert_eq!(ran["workload"]["stage"], "running");
    assert_eq!(ran["workload"]["deployment_name"], "greeter");
    let id = ran["workload"]["id"].as_str().expect("an id").to_owned();
    let allowed = strings(&ran["allowed_actions"]);
    assert!(
        allowed.contains(&"stop") && allowed.contains(&"restart"),
        "{allowed:?}"
    );
    assert!(!allowed.contains(&"start"), "{allowed:?}");

    let listed = call_ok(&session, "list_workloads", json!({})).await;
    assert_eq!(listed["workloads"][0]["id"], id.as_str());
    let deployments = call_ok(&session, "list_deployments", json!({})).await;
    assert_eq!(deployments["deployments"][0]["name"], "greeter");

    // Its logs, by the deployment's name: the service's lines only.
    let wanted = ["hello 2", "hello 3"];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let logs = loop {
        let logs = call_ok(
            &session,
            "read_logs",
            json!({ "workload": "greeter", "tail": 2 }),
        )
        .await;
        let messages: Vec<&str> = logs["lines"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|line| line["message"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if messages == wanted {
            break logs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lines come: {logs:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(logs["lines"][0]["stream"], "stdout");
    // Paging on from a seq, with Slipway's own lines too.
    let everything = call_ok(
        &session,
        "read_logs",
        json!({ "workload": id, "after_seq": 0, "include_system": true }),
    )
    .await;
    let streams: Vec<&str> = everything["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|line| line["stream"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        streams.contains(&"system") && streams.contains(&"stdout"),
        "{streams:?}"
    );

    // Stop it; a second stop is a tool error an agent can read.
    let stopped = call_ok(
        &session,
        "stop",
        json!({ "workload": id, "grace_seconds": 2 }),
    )
    .await;
    assert_eq!(stopped["outcome"], "done");
    assert_eq!(stopped["workload"]["stage"], "stopped");
    let allowed = strings(&stopped["allowed_actions"]);
    assert!(
        allowed.contains(&"restart") && !allowed.contains(&"stop"),
        "{allowed:?}"
    );
    let (is_error, refused) = call(&session, "stop", json!({ "workload": id })).await;
    assert!(is_error, "{refused:#}");
    assert_eq!(refused["error"]["code"], "FAILED_PRECONDITION");
    assert_eq!(refused["error"]["current_stage"], "stopped");
    assert_eq!(refused["error"]["retryable"], false);
    assert!(
        strings(&refused["allowed_actions"]).contains(&"restart"),
        "{refused:#}"
    );

    let gotten = call_ok(&session, "get_workload", json!({ "workload": id })).await;
    assert_eq!(gotten["deployment"]["name"], "greeter");
    // Stopped, and with no liveness check: nothing up, no checks.
    assert_eq!(
        gotten["deployment_health"]["state"], "unavailable",
        "{gotten:#}"
    );
    assert_eq!(gotten["liveness_last_hour"]["checks"], 0, "{gotten:#}");

    // Restart runs it again as generation 2; start by name then finds it running.
    let restarted = call_ok(&session, "restart", json!({ "workload": "greeter" })).await;
    assert_eq!(restarted["outcome"], "done", "{restarted:#}");
    assert_eq!(restarted["workload"]["generation"], 2);
    assert_eq!(restarted["workload"]["stage"], "running");
    let started = call_ok(&session, "start", json!({ "target": "greeter" })).await;
    assert_eq!(started["outcome"], "already_running", "{started:#}");
    assert_eq!(started["workload"]["id"], id.as_str());
    call_ok(
        &session,
        "stop",
        json!({ "workload": "greeter", "grace_seconds": 2 }),
    )
    .await;
    // Stopped: start by name runs a new workload of the deployment.
    let fresh = call_ok(&session, "start", json!({ "target": "greeter" })).await;
    assert_eq!(fresh["outcome"], "done", "{fresh:#}");
    assert_eq!(fresh["workload"]["stage"], "running");
    assert_ne!(fresh["workload"]["id"], id.as_str());
    let fresh_id = fresh["workload"]["id"].as_str().expect("id").to_owned();

    let deleted = call_ok(
        &session,
        "delete_deployment",
        json!({ "deployment": "greeter" }),
    )
    .await;
    let mut removed = strings(&deleted["deleted_workloads"]);
    removed.sort_unstable();
    let mut expected = [id.as_str(), fresh_id.as_str()];
    expected.sort_unstable();
    assert_eq!(removed, expected);
    let (is_error, gone) = call(&session, "get_workload", json!({ "workload": id })).await;
    assert!(is_error);
    assert_eq!(gone["error"]["code"], "NOT_FOUND");

    session.cancel().await.expect("close the session");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_and_a_long_start_answer_without_blocking() {
    let harness = Harness::start().await;
    let session = session(&harness, &["--follow-seconds", "1"]).await;

    // A start that fails: the error says where, why, and the service's last lines.
    let (is_error, failed) = call(
        &session,
        "run",
        json!({ "name": "broken", "shell": "echo 'missing config.toml' >&2; exit 4" }),
    )
    .await;
    assert!(is_error, "{failed:#}");
    let error = &failed["error"];
    assert_eq!(error["code"], "ABORTED");
    assert_eq!(error["exit_code"], 4);
    assert_eq!(error["current_stage"], "failed");
    assert!(
        strings(&error["last_lines"]).contains(&"missing config.toml"),
        "{error:#}"
    );
    assert!(
        strings(&failed["allowed_actions"]).contains(&"restart"),
        "{failed:#}"
    );

    // Bad input names the field.
    let (is_error, bad) = call(&session, "run", json!({ "name": "nothing" })).await;
    assert!(is_error);
    assert_eq!(bad["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(bad["error"]["field_violations"][0]["field"], "command");

    // A start longer than the follow limit answers in progress, with the way on.
    std::fs::create_dir(harness.root().join("slow")).expect("service dir");
    let started = tokio::time::Instant::now();
    let slow = call_ok(
        &session,
        "run",
        json!({
            "name": "slow",
            "dir": "slow",
            "shell": "sleep 6; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
            "port": true,
        }),
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "{slow:#}"
    );
    assert_eq!(slow["outcome"], "in_progress", "{slow:#}");
    assert_eq!(slow["next"]["tool"], "wait_for_stage");
    let id = slow["workload"]["id"].as_str().expect("id").to_owned();
    assert_eq!(slow["next"]["arguments"]["workload"], id.as_str());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let reached = loop {
        let waited = call_ok(
            &session,
            "wait_for_stage",
            json!({ "workload": id, "stage": "running", "timeout_seconds": 20 }),
        )
        .await;
        if waited["reached"] == true {
            break waited;
        }
        assert_eq!(waited["final"], false, "{waited:#}");
        assert!(tokio::time::Instant::now() < deadline, "{waited:#}");
    };
    assert_eq!(reached["workload"]["stage"], "running");
    assert!(strings(&reached["allowed_actions"]).contains(&"stop"));

    // Waiting for what cannot come any more is said at once.
    let (is_error, _) = call(&session, "delete_workload", json!({ "workload": "slow" })).await;
    assert!(!is_error);
    let (is_error, unknown) = call(
        &session,
        "wait_for_stage",
        json!({ "workload": "broken", "stage": "sideways" }),
    )
    .await;
    assert!(is_error);
    assert_eq!(unknown["error"]["field_violations"][0]["field"], "stage");
    let never = call_ok(
        &session,
        "wait_for_stage",
        json!({ "workload": "broken", "stage": "running", "timeout_seconds": 5 }),
    )
    .await;
    assert_eq!(
        (never["reached"].clone(), never["final"].clone()),
        (json!(false), json!(true))
    );

    session.cancel().await.expect("close the session");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_the_session_starts_and_calls_say_to_retry() {
    // A port nobody listens on: bound, then released.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let mut command = tokio::process::Command::new(cli_support::SLIPWAY);
    command
        .args(["mcp", "--server", &format!("http://{address}")])
        .env_remove("SLIPWAY_TOKEN")
        .env_remove("SLIPWAY_TOKEN_FILE")
        .kill_on_drop(true);
    let transport = TokioChildProcess::new(command).expect("spawn slipway mcp");
    let session = tokio::time::timeout(PATIENCE, ().serve(transport))
        .await
        .expect("initialized in time")
        .expect("initialize without a Slipway server");
    let (is_error, answer) = call(&session, "list_workloads", json!({})).await;
    assert!(is_error, "{answer:#}");
    assert_eq!(answer["error"]["code"], "UNAVAILABLE");
    assert_eq!(answer["error"]["retryable"], true);
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&address.to_string()), "{message}");
    session.cancel().await.expect("close the session");
}
