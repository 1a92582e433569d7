//! The Slipway server as a separate process, for tests that kill it (`kill -9`)
//! and start it again. It runs `slipway_server::server::serve` exactly as
//! `slipway serve` does, takes the same flags, and prints `listening on ADDR`
//! on stdout once it listens (so `--listen 127.0.0.1:0` can be used).
#![forbid(unsafe_code)]

use std::{io::Write, process::ExitCode};

use clap::Parser;
use slipway_server::{config::ServeConfig, server};

#[derive(Parser)]
struct Arguments {
    #[command(flatten)]
    config: ServeConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let listener = match tokio::net::TcpListener::bind(arguments.config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen: {error}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(address) => {
            println!("listening on {address}");
            let _ = std::io::stdout().flush();
        }
        Err(error) => {
            eprintln!("no local address: {error}");
            return ExitCode::FAILURE;
        }
    }
    match server::serve(arguments.config, listener, server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
