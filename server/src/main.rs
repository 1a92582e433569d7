//! `slipway`: the server (`slipway serve`) and the client commands (`run`, `ps`,
//! `logs`, `stop`, …) that drive it.
#![forbid(unsafe_code)]

mod cli;
mod mcp;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use slipway_server::{config::ServeConfig, server};
use tracing_subscriber::EnvFilter;

/// Slipway: start, stop, restart and watch workloads over gRPC.
#[derive(Parser, Debug)]
#[command(name = "slipway", version, after_help = cli::AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    global: cli::GlobalOptions,

    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    ///
    /// Example: slipway serve --listen 127.0.0.1:50051 --root ./services
    Serve(ServeConfig),

    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.command {
        Command::Serve(config) => config,
        Command::Client(command) => {
            return cli::execute(cli.global, command, Cli::command).await;
        }
    };
    serve(config).await
}

/// `slipway serve`.
async fn serve(config: ServeConfig) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("slipway: cannot listen on {}: {error}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    match server::serve(config, listener, server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("slipway: {error}");
            ExitCode::FAILURE
        }
    }
}
