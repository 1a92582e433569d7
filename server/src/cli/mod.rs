//! The client side of the `slipway` binary: docker/kubectl-style commands on the SDK.
//!
//! Exit codes: 0 everything asked for was done; 1 a command (or one of several
//! operations) failed; 2 the command line is wrong (also an ambiguous id prefix);
//! 3 a workload or deployment was not found; 130 a foreground `run` ended by Ctrl-C.

mod access;
mod args;
mod changes;
mod control;
mod deploy;
mod error;
mod fleet;
mod health;
mod list;
mod logs;
mod nodes;
pub(crate) mod output;
mod resolve;
mod run;
mod spec_file;
mod ui;
mod view;

use std::process::ExitCode;

pub use args::{ClientCommand, GlobalOptions};
use slipway_sdk::{Client, ClientBuilder};

use self::{
    error::{CliError, EXIT_OK, report},
    output::Printer,
};

/// The help text's section on exit codes and environment.
pub const AFTER_HELP: &str = "Exit codes: 0 ok, 1 failed (or one of several operations failed), \
2 usage (also an ambiguous id prefix), 3 not found, 130 a foreground run ended by Ctrl-C.

IDs: a full workload id, a unique prefix of one (the 12-digit short ID is enough), \
or a deployment name.

Environment: SLIPWAY_SERVER (--server), SLIPWAY_TOKEN (--token), SLIPWAY_TOKEN_FILE (--token-file), \
SLIPWAY_TLS_CA (--tls-ca), SLIPWAY_TLS_CLIENT_CERT (--tls-client-cert), SLIPWAY_TLS_CLIENT_KEY (--tls-client-key), NO_COLOR (no colour even on a terminal).";

/// Runs a client command; `root_command` builds the whole command line (for completions).
pub async fn execute(
    options: GlobalOptions,
    command: ClientCommand,
    root_command: impl FnOnce() -> clap::Command,
) -> ExitCode {
    let printer = Printer::new(options.output);
    let operation = operation_name(&command);
    // Usage errors that need no server come first.
    if let ClientCommand::Run(run_args) = &command {
        if let Err(error) = run::check_args(run_args) {
            return report(&error, operation);
        }
    }
    let result = match command {
        ClientCommand::Completion(completion) => {
            let mut root = root_command();
            clap_complete::generate(
                completion.shell,
                &mut root,
                "slipway",
                &mut std::io::stdout(),
            );
            Ok(EXIT_OK)
        }
        ClientCommand::Mcp(mcp_args) => match client_builder(&options) {
            Ok(builder) => {
                let follow_limit = std::time::Duration::from_secs(mcp_args.follow_seconds);
                crate::mcp::serve(builder, follow_limit)
                    .await
                    .map(|()| EXIT_OK)
                    .map_err(|message| CliError::Failed { message })
            }
            Err(error) => Err(error),
        },
        ClientCommand::Ui => match client_builder(&options) {
            Ok(builder) => {
                let server = options.server.clone().unwrap_or_else(default_server);
                ui::run(builder, server).await
            }
            Err(error) => Err(error),
        },
        command => match connect(&options).await {
            Ok(client) => dispatch(&client, printer, command).await,
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => report(&error, operation),
    }
}

async fn dispatch(
    client: &Client,
    printer: Printer,
    command: ClientCommand,
) -> Result<u8, CliError> {
    match command {
        ClientCommand::Run(run_args) => run::run(client, printer, *run_args).await,
        ClientCommand::Deploy(deploy_args) => deploy::deploy(client, printer, deploy_args).await,
        ClientCommand::Deployments => deploy::list_deployments(client, printer).await,
        ClientCommand::Update(update_args) => changes::update(client, printer, update_args).await,
        ClientCommand::Rollout(args::RolloutCommand::History(history_args)) => {
            changes::history(client, printer, history_args).await
        }
        ClientCommand::Rollout(args::RolloutCommand::Undo(undo_args)) => {
            changes::undo(client, printer, undo_args).await
        }
        ClientCommand::Deployment(args::DeploymentCommand::Rm { targets }) => {
            deploy::remove_deployments(client, printer, targets).await
        }
        ClientCommand::Ps(ps_args) => list::ps(client, printer, ps_args).await,
        ClientCommand::Start(control_args) => {
            control::control(client, printer, control::Operation::Start, control_args).await
        }
        ClientCommand::Stop(stop_args) => {
            let operation = control::Operation::Stop {
                grace_seconds: stop_args.grace_seconds,
            };
            control::control(client, printer, operation, stop_args.control).await
        }
        ClientCommand::Restart(control_args) => {
            control::control(client, printer, control::Operation::Restart, control_args).await
        }
        ClientCommand::Rm(rm_args) => {
            control::control(client, printer, control::Operation::Remove, rm_args.control).await
        }
        ClientCommand::Logs(logs_args) => logs::logs(client, printer, logs_args).await,
        ClientCommand::Inspect(inspect_args) => list::inspect(client, printer, inspect_args).await,
        ClientCommand::Health(health_args) => health::health(client, printer, health_args).await,
        ClientCommand::Events(events_args) => list::events(client, printer, events_args).await,
        ClientCommand::Nodes(nodes_args) => nodes::list(client, printer, nodes_args).await,
        ClientCommand::Node(args::NodeCommand::Inspect { node }) => {
            nodes::inspect(client, printer, &node).await
        }
        ClientCommand::Node(args::NodeCommand::Pause {
            node,
            force,
            confirm,
        }) => nodes::pause(client, printer, &node, force, confirm).await,
        ClientCommand::Node(args::NodeCommand::Resume { node }) => {
            nodes::resume(client, printer, &node).await
        }
        ClientCommand::Node(args::NodeCommand::Drain(drain_args)) => {
            fleet::drain(client, printer, drain_args).await
        }
        ClientCommand::Rollout(args::RolloutCommand::Restart(restart_args)) => {
            fleet::rollout_restart(client, printer, restart_args).await
        }
        ClientCommand::Operations(operations_args) => {
            fleet::list(client, printer, operations_args).await
        }
        ClientCommand::Operation(command) => fleet::operation(client, printer, command).await,
        ClientCommand::Token(token_command) => access::token(client, printer, token_command).await,
        ClientCommand::Audit(audit_args) => access::audit(client, printer, audit_args).await,
        ClientCommand::Completion(_) | ClientCommand::Mcp(_) | ClientCommand::Ui => Ok(EXIT_OK),
    }
}

/// The operation's name, for hints (`stop` on a stopped workload → `restart`).
fn operation_name(command: &ClientCommand) -> Option<&'static str> {
    match command {
        ClientCommand::Start(_) => Some("start"),
        ClientCommand::Stop(_) => Some("stop"),
        ClientCommand::Restart(_) => Some("restart"),
        ClientCommand::Rm(_) => Some("rm"),
        ClientCommand::Run(_) => Some("run"),
        _ => None,
    }
}

async fn connect(options: &GlobalOptions) -> Result<Client, CliError> {
    client_builder(options)?
        .connect()
        .await
        .map_err(|error| CliError::server("cannot reach the server", error))
}

/// A client builder for `--server` (the local socket by default, when there
/// is one) with the token of `--token` or `--token-file` and, for an
/// `https://` server, the TLS settings.
fn client_builder(options: &GlobalOptions) -> Result<ClientBuilder, CliError> {
    let server = options.server.clone().unwrap_or_else(default_server);
    let mut builder = Client::builder(server.clone());
    if let Some(token) = &options.token {
        builder = builder.token(token.clone());
    } else if let Some(path) = &options.token_file {
        builder = builder.token(read_file(path, "token file")?);
    }
    // TLS settings (often from the environment) apply to https:// servers
    // only; a socket or plaintext server is reached without them.
    if !server.starts_with("https://") {
        return Ok(builder);
    }
    if let Some(path) = &options.tls_ca {
        builder = builder.ca_certificate(read_file(path, "CA certificate (--tls-ca)")?);
    }
    match (&options.tls_client_cert, &options.tls_client_key) {
        (Some(certificate), Some(key)) => {
            builder = builder.identity(
                read_file(certificate, "client certificate (--tls-client-cert)")?,
                read_file(key, "client key (--tls-client-key)")?,
            );
        }
        (None, None) => {}
        _ => {
            return Err(CliError::usage(
                "--tls-client-cert and --tls-client-key go together".to_owned(),
            ));
        }
    }
    Ok(builder)
}

/// The local socket of a server started in this directory (`slipway serve`
/// with the default data directory), when it exists; else TCP on loopback.
fn default_server() -> String {
    let socket = std::path::Path::new(".slipway").join(slipway_server::transport::SOCKET_FILE_NAME);
    match std::fs::canonicalize(&socket) {
        Ok(path) => format!("unix://{}", path.display()),
        Err(_) => "http://127.0.0.1:50051".to_owned(),
    }
}

fn read_file(path: &std::path::Path, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|error| {
        CliError::usage(format!(
            "cannot read the {what} {}: {error}",
            path.display()
        ))
    })
}
