//! A tiny HTTP service for the quickstart: answers every GET on $PORT with a
//! greeting, and logs each request to stdout. Standard library only, so one
//! `rustc` call builds it.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
};

fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "hello".to_owned());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    println!("hello: listening on http://127.0.0.1:{port}/");
    for stream in listener.incoming() {
        let mut stream = stream?;
        let mut request_line = String::new();
        BufReader::new(&stream).read_line(&mut request_line)?;
        println!("hello: {}", request_line.trim_end());
        let body = format!("{greeting} from slipway\n");
        write!(
            stream,
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
    }
    Ok(())
}
