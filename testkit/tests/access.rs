//! Access control: who may call what, checked against the one permission table
//! (`slipway_server::access::permission_for`), with refusals that change nothing
//! and are audited.

use std::time::Duration;

use slipway_sdk::{
    Client, DeploymentBuilder, DeploymentUpdate, Error, NewToken,
    proto::{
        DrainNodeRequest, ListAuditRequest, ListDeploymentsRequest, ListOperationsRequest,
        ListWorkloadsRequest, RollingRestartRequest, StreamLogsRequest, WatchEventsRequest,
    },
};
use slipway_server::access::{Role, permission_for};
use slipway_testkit::TestServer;

/// Every RPC of the Slipway services, as `Service/Method`.
const RPCS: &[&str] = &[
    "DeploymentService/CreateDeployment",
    "DeploymentService/GetDeployment",
    "DeploymentService/ListDeployments",
    "DeploymentService/DeleteDeployment",
    "DeploymentService/UpdateDeployment",
    "DeploymentService/ApplyDeployment",
    "DeploymentService/ListRevisions",
    "DeploymentService/RollbackDeployment",
    "WorkloadService/CreateWorkload",
    "WorkloadService/StartWorkload",
    "WorkloadService/StopWorkload",
    "WorkloadService/RestartWorkload",
    "WorkloadService/GetWorkload",
    "WorkloadService/ListWorkloads",
    "WorkloadService/DeleteWorkload",
    "WorkloadService/GetLogs",
    "WorkloadService/StreamLogs",
    "WorkloadService/WatchEvents",
    "WorkloadService/GetHealthHistory",
    "TokenService/CreateToken",
    "TokenService/ListTokens",
    "TokenService/RevokeToken",
    "AuditService/ListAudit",
    "NodeService/ListNodes",
    "NodeService/GetNode",
    "FleetService/PauseNode",
    "FleetService/ResumeNode",
    "FleetService/DrainNode",
    "FleetService/RollingRestart",
    "FleetService/GetOperation",
    "FleetService/ListOperations",
    "FleetService/WatchOperation",
    "FleetService/PauseOperation",
    "FleetService/ResumeOperation",
    "FleetService/CancelOperation",
];

/// Every RPC of the `slipway.v1` services, read from the protocol's
/// descriptors, so that a new RPC cannot be left out of [`RPCS`].
fn rpcs_of_the_protocol() -> Vec<String> {
    use prost::Message;
    let set = slipway_sdk::prost_types::FileDescriptorSet::decode(
        slipway_sdk::proto::FILE_DESCRIPTOR_SET,
    )
    .expect("the descriptor set decodes");
    let mut rpcs = Vec::new();
    for file in set.file {
        for service in file.service {
            for method in &service.method {
                rpcs.push(format!("{}/{}", service.name(), method.name()));
            }
        }
    }
    rpcs.sort();
    rpcs
}

async fn token(server: &TestServer, name: &str, role: &str, projects: &[&str]) -> String {
    server
        .client
        .create_token(NewToken {
            name: name.to_owned(),
            role: role.to_owned(),
            projects: projects.iter().map(|project| project.to_string()).collect(),
            expires_in: None,
        })
        .await
        .expect("create token")
        .1
}

/// A fresh deployment of `project` with a pending workload, made by the admin.
async fn target(server: &TestServer, project: &str) -> (String, String) {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let (deployment, workload) = server
        .deploy(
            DeploymentBuilder::new(name)
                .project(project)
                .service_path(".")
                .command(["sleep", "30"]),
        )
        .await;
    (deployment.id, workload.id)
}

/// Calls `rpc` as `client` on fresh targets of `project`.
async fn call(server: &TestServer, client: &Client, rpc: &str, project: &str) -> Result<(), Error> {
    let (deployment_id, workload_id) = target(server, project).await;
    let method = rpc.split('/').nth(1).expect("method");
    match method {
        "CreateDeployment" => client
            .create_deployment(
                DeploymentBuilder::new(format!("n{}", uuid::Uuid::new_v4().simple()))
                    .project(project)
                    .service_path(".")
                    .command(["true"])
                    .build(),
            )
            .await
            .map(drop),
        "GetDeployment" => client.get_deployment(&deployment_id).await.map(drop),
        "ListDeployments" => client
            .list_deployments(ListDeploymentsRequest::default())
            .await
            .map(drop),
        "DeleteDeployment" => {
            server
                .client
                .delete_workload(&workload_id)
                .await
                .expect("clear");
            client.delete_deployment(&deployment_id).await.map(drop)
        }
        "UpdateDeployment" => client
            .update_deployment(DeploymentUpdate::new(&deployment_id).env("CHANGED", "1"))
            .await
            .map(drop),
        "ApplyDeployment" => client
            .apply(
                DeploymentBuilder::new(format!("n{}", uuid::Uuid::new_v4().simple()))
                    .project(project)
                    .service_path(".")
                    .command(["true"]),
            )
            .await
            .map(drop),
        "ListRevisions" => client.list_revisions(&deployment_id).await.map(drop),
        "RollbackDeployment" => {
            server
                .client
                .update_deployment(DeploymentUpdate::new(&deployment_id).env("CHANGED", "1"))
                .await
                .expect("a second revision");
            client.rollback(&deployment_id, None).await.map(drop)
        }
        "CreateWorkload" => client.create_workload(&deployment_id).await.map(drop),
        "StartWorkload" => client.start_workload(&workload_id).await.map(drop),
        "StopWorkload" => client.stop_workload(&workload_id, None).await.map(drop),
        "RestartWorkload" => client.restart_workload(&workload_id).await.map(drop),
        "GetWorkload" => client.get_workload(&workload_id).await.map(drop),
        "ListWorkloads" => client
            .list_workloads(ListWorkloadsRequest::default())
            .await
            .map(drop),
        "DeleteWorkload" => client.delete_workload(&workload_id).await,
        "GetLogs" => client.get_logs(&workload_id, 0, 10).await.map(drop),
        "StreamLogs" => client
            .stream_logs(StreamLogsRequest {
                workload_id: workload_id.clone(),
                ..StreamLogsRequest::default()
            })
            .await
            .map(drop),
        "WatchEvents" => client
            .watch_events(WatchEventsRequest::default())
            .await
            .map(drop),
        "GetHealthHistory" => client
            .health_history(&workload_id, std::time::Duration::from_secs(60))
            .await
            .map(drop),
        "CreateToken" => client
            .create_token(NewToken {
                name: "made".to_owned(),
                role: "viewer".to_owned(),
                ..NewToken::default()
            })
            .await
            .map(drop),
        "ListTokens" => client.list_tokens().await.map(drop),
        "RevokeToken" => {
            let victim = server
                .client
                .create_token(NewToken {
                    name: "victim".to_owned(),
                    role: "viewer".to_owned(),
                    ..NewToken::default()
                })
                .await
                .expect("token")
                .0;
            client.revoke_token(&victim.id).await.map(drop)
        }
        "ListAudit" => client
            .list_audit(ListAuditRequest::default())
            .await
            .map(drop),
        "ListNodes" => client.list_nodes(true).await.map(drop),
        "GetNode" => {
            let nodes = server.client.list_nodes(false).await.expect("nodes");
            let node = nodes.first().expect("this server is a node");
            client.get_node(&node.id).await.map(drop)
        }
        // Without force: the only node is not paused (FAILED_PRECONDITION).
        "PauseNode" => {
            let nodes = server.client.list_nodes(false).await.expect("nodes");
            let node = nodes.first().expect("this server is a node");
            client.pause_node(&node.id, false, "").await.map(drop)
        }
        "ResumeNode" => {
            let nodes = server.client.list_nodes(false).await.expect("nodes");
            let node = nodes.first().expect("this server is a node");
            client.resume_node(&node.id).await.map(drop)
        }
        // Without force: draining the only node is refused (FAILED_PRECONDITION).
        "DrainNode" => {
            let nodes = server.client.list_nodes(false).await.expect("nodes");
            let node = nodes.first().expect("this server is a node");
            client
                .drain_node(DrainNodeRequest {
                    node: node.id.clone(),
                    ..DrainNodeRequest::default()
                })
                .await
                .map(drop)
        }
        "RollingRestart" => client
            .rolling_restart(RollingRestartRequest {
                deployment: "no-such-deployment".to_owned(),
                ..RollingRestartRequest::default()
            })
            .await
            .map(drop),
        "GetOperation" => client.get_operation("op-none").await.map(drop),
        "ListOperations" => client
            .list_operations(ListOperationsRequest::default())
            .await
            .map(drop),
        "WatchOperation" => client.watch_operation("op-none").await.map(drop),
        "PauseOperation" => client.pause_operation("op-none").await.map(drop),
        "ResumeOperation" => client.resume_operation("op-none").await.map(drop),
        "CancelOperation" => client.cancel_operation("op-none").await.map(drop),
        other => panic!("no call for {other}"),
    }
}

fn is_auth_error(result: &Result<(), Error>) -> bool {
    matches!(
        result,
        Err(Error::Unauthenticated { .. } | Error::PermissionDenied { .. })
    )
}

/// Every RPC × every kind of caller, against the permission table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_and_role_follows_the_permission_table() {
    let server = TestServer::start().await;
    let viewer = server
        .client_with_token(&token(&server, "v", "viewer", &[]).await)
        .await;
    let operator = server
        .client_with_token(&token(&server, "o", "operator", &[]).await)
        .await;
    let admin = server
        .client_with_token(&token(&server, "a", "admin", &[]).await)
        .await;
    let limited = server
        .client_with_token(&token(&server, "lo", "operator", &["alpha"]).await)
        .await;
    let anonymous = server.client_without_token().await;
    let mut covered: Vec<String> = RPCS.iter().map(|rpc| rpc.to_string()).collect();
    covered.sort();
    assert_eq!(covered, rpcs_of_the_protocol(), "RPCS lists every RPC");
    for rpc in RPCS {
        let permission = permission_for(&format!("/slipway.v1.{rpc}"))
            .unwrap_or_else(|| panic!("{rpc} is in the permission table"));
        let cases = [
            ("viewer", &viewer, Role::Viewer),
            ("operator", &operator, Role::Operator),
            ("admin", &admin, Role::Admin),
        ];
        for (who, client, role) in cases {
            let result = call(&server, client, rpc, "alpha").await;
            if role >= permission.role {
                assert!(!is_auth_error(&result), "{who} may call {rpc}: {result:?}");
            } else {
                assert!(
                    matches!(result, Err(Error::PermissionDenied { .. })),
                    "{who} may not call {rpc}: {result:?}"
                );
            }
        }
        // A project-limited operator: as an operator on its own project...
        let own = call(&server, &limited, rpc, "alpha").await;
        if permission.role <= Role::Operator {
            assert!(
                !is_auth_error(&own),
                "limited operator on alpha, {rpc}: {own:?}"
            );
        } else {
            assert!(
                matches!(own, Err(Error::PermissionDenied { .. })),
                "{rpc}: {own:?}"
            );
        }
        // ...and refused on another's, naming it (lists and watches filter instead).
        let other = call(&server, &limited, rpc, "beta").await;
        // Lists and watches filter; nodes belong to no project.
        let filters = [
            "ListDeployments",
            "ListWorkloads",
            "WatchEvents",
            "ListNodes",
            "GetNode",
        ]
        .iter()
        .any(|method| rpc.ends_with(method));
        if filters {
            assert!(other.is_ok(), "{rpc} filters: {other:?}");
        } else if permission.role <= Role::Operator {
            match other {
                Err(Error::PermissionDenied { project, message }) => {
                    assert_eq!(project.as_deref(), Some("beta"), "{rpc}: {message}");
                    assert!(message.contains("beta"), "{message}");
                }
                other => panic!("limited operator on beta, {rpc}: {other:?}"),
            }
        } else {
            assert!(
                matches!(other, Err(Error::PermissionDenied { .. })),
                "{rpc}: {other:?}"
            );
        }
        let none = call(&server, &anonymous, rpc, "alpha").await;
        assert!(
            matches!(none, Err(Error::Unauthenticated { .. })),
            "no token, {rpc}: {none:?}"
        );
    }
    assert_eq!(permission_for("/slipway.v1.WorkloadService/Unknown"), None);
    // A project-limited admin would limit nothing: refused.
    let limited_admin = server
        .client
        .create_token(NewToken {
            name: "half-admin".to_owned(),
            role: "admin".to_owned(),
            projects: vec!["alpha".to_owned()],
            expires_in: None,
        })
        .await;
    assert!(
        matches!(limited_admin, Err(Error::InvalidArgument { .. })),
        "{limited_admin:?}"
    );
    server.stop().await;
}

/// No token, a wrong one, an expired one, a revoked one, a viewer on a control
/// RPC, an operator on another project: refused, nothing changed, audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_change_nothing_and_are_audited() {
    let server = TestServer::start().await;
    let (_, workload_id) = target(&server, "alpha").await;
    let (_, beta_workload) = target(&server, "beta").await;

    let anonymous = server.client_without_token().await;
    let wrong = server
        .client_with_token(&format!("slw_{}_nottherightsecret", "0".repeat(32)))
        .await;
    let garbage = server.client_with_token("hunter2").await;
    let (expiring, expiring_token) = server
        .client
        .create_token(NewToken {
            name: "short".to_owned(),
            role: "admin".to_owned(),
            projects: Vec::new(),
            expires_in: Some(Duration::from_secs(1)),
        })
        .await
        .expect("token");
    let revoked_token = token(&server, "gone", "admin", &[]).await;
    let revoked = server.client_with_token(&revoked_token).await;
    revoked
        .get_workload(&workload_id)
        .await
        .expect("works before revoking");
    let revoked_info = server.client.list_tokens().await.expect("list");
    let gone = revoked_info
        .iter()
        .find(|info| info.name == "gone")
        .expect("gone");
    server.client.revoke_token(&gone.id).await.expect("revoke");
    let viewer = server
        .client_with_token(&token(&server, "watcher", "viewer", &[]).await)
        .await;
    let limited = server
        .client_with_token(&token(&server, "alpha-op", "operator", &["alpha"]).await)
        .await;

    for (who, client) in [
        ("anonymous", &anonymous),
        ("wrong", &wrong),
        ("garbage", &garbage),
        ("revoked", &revoked),
    ] {
        let refused = client.start_workload(&workload_id).await.map(drop);
        assert!(
            matches!(refused, Err(Error::Unauthenticated { .. })),
            "{who}: {refused:?}"
        );
    }
    // The expired token: read with it until the server sees it expired.
    let expired = server.client_with_token(&expiring_token).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match expired.get_workload(&workload_id).await {
            Err(Error::Unauthenticated { message }) => {
                assert!(message.contains("expired"), "{message}");
                break;
            }
            other => {
                assert!(other.is_ok(), "{other:?}");
                assert!(
                    std::time::Instant::now() < deadline,
                    "token {} never expired",
                    expiring.id
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let refused = expired.start_workload(&workload_id).await.map(drop);
    assert!(
        matches!(refused, Err(Error::Unauthenticated { .. })),
        "{refused:?}"
    );
    let unchanged = server.client.get_workload(&workload_id).await.expect("get");
    assert_eq!(
        unchanged.stage(),
        slipway_sdk::proto::Stage::Pending,
        "nothing changed"
    );
    let viewed = viewer.start_workload(&beta_workload).await.map(drop);
    assert!(
        matches!(viewed, Err(Error::PermissionDenied { .. })),
        "{viewed:?}"
    );
    let other_project = limited.start_workload(&beta_workload).await.map(drop);
    assert!(
        matches!(&other_project, Err(Error::PermissionDenied { project: Some(project), .. }) if project == "beta"),
        "{other_project:?}"
    );
    let beta = server
        .client
        .get_workload(&beta_workload)
        .await
        .expect("get");
    assert_eq!(
        beta.stage(),
        slipway_sdk::proto::Stage::Pending,
        "nothing changed"
    );

    // Each refused attempt is in the audit trail.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let records = server
            .client
            .list_audit(ListAuditRequest {
                action: "StartWorkload".to_owned(),
                ..ListAuditRequest::default()
            })
            .await
            .expect("audit");
        let unauthenticated = records
            .iter()
            .filter(|record| record.result == "UNAUTHENTICATED" && record.actor_id.is_empty())
            .count();
        let denied_viewer = records
            .iter()
            .any(|record| record.result == "PERMISSION_DENIED" && record.actor == "watcher");
        let denied_project = records.iter().any(|record| {
            record.result == "PERMISSION_DENIED"
                && record.actor == "alpha-op"
                && record.target == beta_workload
                && record.message.contains("beta")
        });
        if unauthenticated >= 5 && denied_viewer && denied_project {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refusals not audited: {records:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// Lists show a project-limited token only its projects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_show_only_permitted_projects() {
    let server = TestServer::start().await;
    let (alpha_deployment, alpha_workload) = target(&server, "alpha").await;
    let (_, _) = target(&server, "beta").await;
    let limited = server
        .client_with_token(&token(&server, "alpha-viewer", "viewer", &["alpha"]).await)
        .await;
    let deployments = limited.all_deployments().await.expect("list");
    let ids: Vec<_> = deployments
        .iter()
        .map(|deployment| deployment.id.clone())
        .collect();
    assert_eq!(ids, vec![alpha_deployment]);
    let workloads = limited
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect("list")
        .workloads;
    let ids: Vec<_> = workloads
        .iter()
        .map(|workload| workload.id.clone())
        .collect();
    assert_eq!(ids, vec![alpha_workload]);
    let refused = limited
        .list_deployments(ListDeploymentsRequest {
            project: "beta".to_owned(),
            ..ListDeploymentsRequest::default()
        })
        .await;
    assert!(
        matches!(refused, Err(Error::PermissionDenied { .. })),
        "{refused:?}"
    );
    assert_eq!(server.client.all_deployments().await.expect("all").len(), 2);
    server.stop().await;
}

/// `--auth off` is refused unless the server listens on a loopback address;
/// on one, callers without a token are the local administrator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_off_only_on_loopback() {
    let data = tempfile::TempDir::new().expect("data");
    let mut config = slipway_server::config::ServeConfig::new(
        data.path().join("data"),
        data.path().to_path_buf(),
    );
    config.auth = "off".to_owned();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let refused = slipway_server::server::serve(config, listener, async {}).await;
    assert!(
        matches!(
            refused,
            Err(slipway_server::server::ServerError::AuthOffNotLoopback { .. })
        ),
        "{refused:?}"
    );

    let server = TestServer::start_with(|config| config.auth = "off".to_owned()).await;
    let anonymous = server.client_without_token().await;
    anonymous
        .list_tokens()
        .await
        .expect("an anonymous caller is the administrator");
    server.stop().await;
}
