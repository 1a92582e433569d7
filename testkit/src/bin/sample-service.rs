//! A small service for Slipway's tests, std only.
//!
//! - `sample-service http`: serves HTTP on `$PORT`: `/` answers `hello from
//!   generation $GENERATION`, `/health` answers 200, anything else 404. Prints
//!   `listening on PORT` once it listens and one line per request. `/health`
//!   answers 503 while a file named `unhealthy` exists in the working directory.
//! - `sample-service lines N`: prints `line 1` … `line N` to stdout, then exits 0.
//! - `sample-service env NAME`: prints `NAME=value`, then waits to be stopped.
#![forbid(unsafe_code)]

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
};

fn serve_http() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    println!("listening on {port}");
    let greeting = format!(
        "hello from {}\n",
        std::env::var("GREETING_NAME").unwrap_or_else(|_| "sample-service".to_owned())
    );
    for stream in listener.incoming() {
        // A client that hangs up early costs its request only.
        let Ok(mut stream) = stream else { continue };
        let mut request_line = String::new();
        if BufReader::new(&stream)
            .read_line(&mut request_line)
            .is_err()
        {
            continue;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let (status, body) = match path.as_str() {
            "/" => ("200 OK", greeting.clone()),
            "/health" if std::path::Path::new("unhealthy").exists() => {
                ("503 Service Unavailable", "sick\n".to_owned())
            }
            "/health" => ("200 OK", "ok\n".to_owned()),
            _ => ("404 Not Found", "not found\n".to_owned()),
        };
        println!("GET {path} {}", &status[..3]);
        let _ = write!(
            stream,
            "HTTP/1.0 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        );
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.first().map(String::as_str) {
        Some("http") => serve_http(),
        Some("lines") => {
            let count: u64 = arguments
                .get(1)
                .and_then(|count| count.parse().ok())
                .unwrap_or(10);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for number in 1..=count {
                writeln!(out, "line {number}")?;
            }
            out.flush()
        }
        Some("env") => {
            let name = arguments.get(1).cloned().unwrap_or_default();
            println!("{name}={}", std::env::var(&name).unwrap_or_default());
            loop {
                std::thread::park();
            }
        }
        _ => {
            eprintln!("usage: sample-service http | lines N | env NAME");
            std::process::exit(2);
        }
    }
}
