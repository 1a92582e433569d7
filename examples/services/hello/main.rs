//! A tiny HTTP service for the quickstart: answers every GET on $PORT with a
//! greeting, and logs each request to stdout. Standard library only, so one
//! `rustc` call builds it.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
};

/// Answers one request. A client that hangs up early (a health probe that reads
/// the status line and goes) costs that request only, never the service.
fn answer(stream: TcpStream, greeting: &str) -> std::io::Result<()> {
    let mut request_line = String::new();
    BufReader::new(&stream).read_line(&mut request_line)?;
    println!("hello: {}", request_line.trim_end());
    let body = format!("{greeting} from slipway\n");
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "hello".to_owned());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    println!("hello: listening on http://127.0.0.1:{port}/");
    for stream in listener.incoming() {
        let result = stream.and_then(|stream| answer(stream, &greeting));
        if let Err(error) = result {
            eprintln!("hello: a request failed: {error}");
        }
    }
    Ok(())
}
