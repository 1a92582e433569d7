//! An agent's loop, on the SDK's one-call helpers only: deploy a service, see
//! its first start fail, read the service's last lines to find out why, fix
//! the spec, run it again, check it answers, and clean up.
//!
//! Start a server from the repository root first (service paths resolve under
//! its --root, the current directory by default):
//!
//! ```text
//! cargo run -p slipway-server -- serve
//! cargo run -p slipway-examples --example agent
//! ```
//!
//! `SLIPWAY_SERVER` overrides the server's address (default http://127.0.0.1:50051).
//! The token comes from `SLIPWAY_TOKEN`, else the file `SLIPWAY_TOKEN_FILE`
//! (default `.slipway/admin.token`, where the server's first start writes its
//! admin token).

use std::{
    io::{Read, Write},
    time::Duration,
};

use slipway_sdk::{Client, Condition, DeploymentBuilder, Error, proto::Workload};

const NAME: &str = "agent-hello";

/// The service: the sample in `examples/services/hello`, compiled by a build
/// step from `source_file` (the agent's first guess has a typo).
fn spec(source_file: &str) -> DeploymentBuilder {
    DeploymentBuilder::new(NAME)
        .service_path("examples/services/hello")
        .build_step(["rustc", "--edition", "2021", "-o", "hello", source_file])
        .command(["./hello"])
        .env("GREETING", "ahoy")
        .listen()
        .http_readiness("/")
        .stop_grace_period_seconds(5)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match agent().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("agent: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn agent() -> Result<(), Box<dyn std::error::Error>> {
    let client = connect().await?;
    remove(&client).await?;

    // First try. `run` creates the deployment and a workload, starts it and
    // returns it RUNNING and ready, or a typed failure saying where and why.
    let mut source_file = "mian.rs".to_owned();
    let running: Workload = loop {
        println!("agent: running {NAME} (build step compiles {source_file})");
        match client.run(spec(&source_file)).await {
            Ok(workload) => break workload,
            Err(Error::OperationFailed(failure)) => {
                println!(
                    "agent: the start failed in {}: {}",
                    failure.stage.label(),
                    failure.reason
                );
                // The service's own last lines (not Slipway's) say why.
                let tail = client.logs_tail(&failure.workload_id, 5).await?;
                for line in &tail {
                    println!("agent:   | {}", line.message);
                }
                let missing_source = tail.iter().any(|line| {
                    line.message.contains("couldn't read") && line.message.contains(&source_file)
                });
                if !missing_source || source_file == "main.rs" {
                    return Err(format!("no fix known for: {}", failure.reason).into());
                }
                println!("agent: the build names a file that is not there; fixing it to main.rs");
                source_file = "main.rs".to_owned();
                // The failed deployment was kept for this look; remove it first.
                remove(&client).await?;
            }
            Err(other) => return Err(other.into()),
        }
    };
    println!(
        "agent: {NAME} is {} on port {} (workload {})",
        running.stage().label(),
        running.port,
        running.id
    );

    // Check it: it answers, and asking again finds the same workload running.
    let body = http_get(running.port)?;
    println!("agent: GET / -> {}", body.trim_end());
    let again = client.ensure_running(NAME).await?;
    if again.id != running.id {
        return Err("ensure_running started another workload".into());
    }
    let settled = client
        .wait_for(&running.id, Condition::Settled, Duration::from_secs(10))
        .await?;
    println!("agent: ensure_running finds it {}", settled.stage().label());
    for line in client.logs_tail(&running.id, 2).await? {
        println!("agent:   | {}", line.message);
    }

    remove(&client).await?;
    println!("agent: removed {NAME}; done");
    Ok(())
}

/// A client for `SLIPWAY_SERVER` with the token of `SLIPWAY_TOKEN` or
/// `SLIPWAY_TOKEN_FILE`.
async fn connect() -> Result<Client, Error> {
    let url =
        std::env::var("SLIPWAY_SERVER").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let token = std::env::var("SLIPWAY_TOKEN").unwrap_or_else(|_| {
        let file = std::env::var("SLIPWAY_TOKEN_FILE")
            .unwrap_or_else(|_| ".slipway/admin.token".to_owned());
        std::fs::read_to_string(file).unwrap_or_default()
    });
    Client::builder(url).token(token).connect().await
}

/// Removes the deployment `NAME` with its workloads, if there is one.
async fn remove(client: &Client) -> Result<(), Error> {
    match client.get_deployment_by_name(NAME, None).await {
        Ok(deployment) => client.delete_deployment(&deployment.id).await.map(drop),
        Err(Error::NotFound { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

fn http_get(port: u32) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port as u16))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or(response))
}
