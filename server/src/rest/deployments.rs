//! The deployment endpoints: create (the fields of a spec file, in
//! camelCase), list, get.

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use http::{Extensions, HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway::v1::{
    GetDeploymentRequest, ListDeploymentsRequest, deployment_service_server::DeploymentService,
};

use super::{ApiError, RestState, grpc_request, json, parse_body};

type Result<T> = std::result::Result<T, ApiError>;

/// The body of `POST /api/deployments`: the fields of a spec file, in camelCase.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewDeploymentBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    service_path: String,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    build: Vec<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    secret_env: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// `true` for a port from the pool ($PORT), or `{"containerPort": 80}`.
    listen: Option<ListenBody>,
    /// `"tcp"`, `"none"` or `{"http": "/path"}`.
    readiness: Option<ReadinessBody>,
    image: Option<String>,
    dockerfile: Option<String>,
    stop_grace_period_seconds: Option<u32>,
    startup_timeout_seconds: Option<u32>,
    #[serde(default)]
    node_selector: BTreeMap<String, String>,
    /// `{"memoryBytes": …, "millicpus": …}`.
    resources: Option<ResourcesBody>,
    /// `{"mode": "never" | "on-failure" | "always", "maxRestarts": N}`.
    restart: Option<RestartBody>,
    user: Option<String>,
    max_open_files: Option<u64>,
    stop_signal: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResourcesBody {
    #[serde(default)]
    memory_bytes: u64,
    #[serde(default)]
    millicpus: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RestartBody {
    mode: String,
    #[serde(default)]
    max_restarts: u32,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListenBody {
    Enabled(bool),
    Container {
        #[serde(rename = "containerPort")]
        container_port: u16,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ReadinessBody {
    Named(String),
    Http { http: String },
}

impl NewDeploymentBody {
    fn into_request(self) -> Result<slipway::v1::CreateDeploymentRequest> {
        let mut builder = slipway_sdk::DeploymentBuilder::new(self.name)
            .project(self.project)
            .service_path(self.service_path);
        if !self.command.is_empty() {
            builder = builder.command(self.command);
        }
        for step in self.build {
            builder = builder.build_step(step);
        }
        for (name, value) in self.env {
            builder = builder.env(name, value);
        }
        for (name, value) in self.secret_env {
            builder = builder.secret_env(name, value);
        }
        for (key, value) in self.labels {
            builder = builder.label(key, value);
        }
        for (key, value) in self.node_selector {
            builder = builder.node_selector(key, value);
        }
        builder = match self.listen {
            None | Some(ListenBody::Enabled(false)) => builder,
            Some(ListenBody::Enabled(true)) => builder.listen(),
            Some(ListenBody::Container { container_port }) => {
                builder.container_port(container_port)
            }
        };
        builder = match self.readiness {
            None => builder,
            Some(ReadinessBody::Http { http }) => builder.http_readiness(http),
            Some(ReadinessBody::Named(name)) if name == "tcp" => builder.tcp_readiness(),
            Some(ReadinessBody::Named(name)) if name == "none" => builder.no_readiness(),
            Some(ReadinessBody::Named(_)) => {
                return Err(ApiError::bad_field(
                    "readiness",
                    "expected \"tcp\", \"none\" or {\"http\": \"/path\"}",
                ));
            }
        };
        if let Some(image) = self.image {
            builder = builder.image(image);
        }
        if let Some(dockerfile) = self.dockerfile {
            builder = builder.dockerfile(dockerfile);
        }
        if let Some(seconds) = self.stop_grace_period_seconds {
            builder = builder.stop_grace_period_seconds(seconds);
        }
        if let Some(seconds) = self.startup_timeout_seconds {
            builder = builder.startup_timeout_seconds(seconds);
        }
        if let Some(resources) = self.resources {
            builder = builder.resources(resources.memory_bytes, resources.millicpus);
        }
        if let Some(restart) = self.restart {
            use slipway::v1::restart_policy::Mode;
            let mode = match restart.mode.as_str() {
                "never" | "no" => Mode::Never,
                "on-failure" => Mode::OnFailure,
                "always" => Mode::Always,
                _ => {
                    return Err(ApiError::bad_field(
                        "restart.mode",
                        "expected \"never\", \"on-failure\" or \"always\"",
                    ));
                }
            };
            builder = builder.restart_policy(slipway::v1::RestartPolicy {
                mode: mode.into(),
                max_restarts: restart.max_restarts,
                ..slipway::v1::RestartPolicy::default()
            });
        }
        if let Some(user) = self.user {
            builder = builder.user(user);
        }
        if let Some(files) = self.max_open_files {
            builder = builder.max_open_files(files);
        }
        if let Some(signal) = self.stop_signal {
            builder = builder.stop_signal(signal);
        }
        Ok(builder.build())
    }
}

pub async fn create_deployment(
    State(state): State<RestState>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Result<Response> {
    let request = parse_body::<NewDeploymentBody>(&body)?.into_request()?;
    let created = state
        .deployments
        .create_deployment(grpc_request(&headers, extensions, request))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(json::deployment(&created))).into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    project: Option<String>,
    page_size: Option<u32>,
    page_token: Option<String>,
}

pub async fn list_deployments(
    State(state): State<RestState>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>> {
    let request = ListDeploymentsRequest {
        project: query.project.unwrap_or_default(),
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = state
        .deployments
        .list_deployments(grpc_request(&headers, extensions, request))
        .await?
        .into_inner();
    Ok(Json(json!({
        "deployments": page.deployments.iter().map(json::deployment).collect::<Vec<_>>(),
        "nextPageToken": page.next_page_token,
    })))
}

pub async fn get_deployment(
    State(state): State<RestState>,
    Path(deployment_id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>> {
    let request = GetDeploymentRequest {
        id: deployment_id,
        ..GetDeploymentRequest::default()
    };
    let deployment = state
        .deployments
        .get_deployment(grpc_request(&headers, extensions, request))
        .await?
        .into_inner();
    Ok(Json(json::deployment(&deployment)))
}
