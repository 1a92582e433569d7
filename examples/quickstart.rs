//! Quickstart: deploy the sample service in `examples/services/hello`, start it,
//! print its progress and logs, stop it, restart it, and clean up.
//!
//! Start a server from the repository root first (service paths resolve under
//! its --root, the current directory by default):
//!
//! ```text
//! cargo run -p slipway-server -- serve
//! cargo run -p slipway-examples --example quickstart
//! ```
//!
//! `SLIPWAY_SERVER` overrides the server's address (default http://127.0.0.1:50051).
//! The token comes from `SLIPWAY_TOKEN`, else the file `SLIPWAY_TOKEN_FILE`
//! (default `.slipway/admin.token`, where the server's first start writes its
//! admin token).

use std::io::{Read, Write};

use futures::StreamExt;
use slipway_sdk::{Client, DeploymentBuilder, Error, Progress, ProgressStream};

const NAME: &str = "quickstart-hello";

/// Prints an operation's progress as it happens; returns the final workload.
async fn show(
    operation: &str,
    mut progress: ProgressStream,
) -> Result<slipway_sdk::proto::Workload, Error> {
    let mut last = None;
    while let Some(message) = progress.next().await {
        match message? {
            Progress::Workload(workload) => {
                println!("[{operation}] stage {}", workload.stage().label());
                last = Some(workload);
            }
            Progress::Log(entry) => println!("[{operation}]   | {}", entry.message),
        }
    }
    last.ok_or(Error::StreamEnded("no workload in the progress"))
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quickstart: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("SLIPWAY_SERVER").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let token = match std::env::var("SLIPWAY_TOKEN") {
        Ok(token) => token,
        Err(_) => {
            let file = std::env::var("SLIPWAY_TOKEN_FILE")
                .unwrap_or_else(|_| ".slipway/admin.token".to_owned());
            std::fs::read_to_string(&file).unwrap_or_default()
        }
    };
    let client = Client::builder(url).token(token).connect().await?;

    // A previous run that was interrupted may have left its deployment behind.
    for deployment in client.all_deployments().await? {
        if deployment.name == NAME {
            client.delete_deployment(&deployment.id).await?;
        }
    }

    let deployment = client
        .create_deployment(
            DeploymentBuilder::new(NAME)
                .service_path("examples/services/hello")
                .build_step(["rustc", "--edition", "2021", "-o", "hello", "main.rs"])
                .command(["./hello"])
                .env("GREETING", "ahoy")
                .listen()
                .http_readiness("/")
                .stop_grace_period_seconds(5)
                .build(),
        )
        .await?;
    println!("deployment {} ({})", deployment.name, deployment.id);
    let workload = client.create_workload(&deployment.id).await?;
    println!("workload {}", workload.id);

    // A start that does not reach RUNNING is an error that says why, with the
    // service's last lines.
    let running = match show("start", client.start_workload(&workload.id).await?).await {
        Ok(running) => running,
        Err(Error::OperationFailed(failure)) => {
            for line in &failure.last_lines {
                eprintln!("  | {line}");
            }
            return Err(failure.message.into());
        }
        Err(other) => return Err(other.into()),
    };
    println!(
        "GET http://127.0.0.1:{}/ -> {}",
        running.port,
        http_get(running.port)?.trim_end()
    );

    let logs = client.get_logs(&workload.id, 0, 0).await?;
    println!("{} log lines so far; the service's own:", logs.last_seq);
    for entry in logs
        .entries
        .iter()
        .filter(|entry| entry.message.starts_with("hello:"))
    {
        println!("  {}", entry.message);
    }

    let stopped = show("stop", client.stop_workload(&workload.id, None).await?).await?;
    println!("stopped, exit code {:?}", stopped.exit_code);

    // A second stop is refused with a typed error that names the stage.
    if let Err(Error::InvalidState {
        current_stage,
        message,
        ..
    }) = client.stop_workload(&workload.id, None).await
    {
        println!(
            "second stop refused: {message} (stage {})",
            current_stage.label()
        );
    }

    let restarted = show("restart", client.restart_workload(&workload.id).await?).await?;
    println!(
        "generation {} is {}",
        restarted.generation,
        restarted.stage().label()
    );

    client.delete_deployment(&deployment.id).await?;
    println!("deleted {NAME} and its workload");
    Ok(())
}
