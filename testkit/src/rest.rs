//! A client for the REST and SSE endpoints: JSON calls, and SSE streams read
//! event by event.

use std::{net::SocketAddr, pin::Pin};

use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::PATIENCE;

/// Calls the REST endpoints of a server, with a token or without.
#[derive(Clone)]
pub struct Rest {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Rest {
    pub fn new(address: SocketAddr, token: Option<&str>) -> Rest {
        Rest {
            client: reqwest::Client::new(),
            base: format!("http://{address}"),
            token: token.map(str::to_owned),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the server answers in time")
            .expect("an HTTP response");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a response body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"))
        };
        (status, body)
    }

    /// `GET path`: the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        Self::send(self.request(reqwest::Method::GET, path)).await
    }

    /// `POST path` with `body` as JSON (none when `Null`): the status and the JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let request = self.request(reqwest::Method::POST, path);
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        Self::send(request).await
    }

    /// `GET path`: the status, the content type and the body as text.
    pub async fn text(&self, path: &str) -> (u16, String, String) {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("an HTTP response");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, content_type, response.text().await.expect("a body"))
    }

    /// Opens the SSE stream at `path`, resuming after `last_event_id` if given.
    pub async fn sse(&self, path: &str, last_event_id: Option<&str>) -> SseStream {
        let mut request = self
            .request(reqwest::Method::GET, path)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("an HTTP response");
        let status = response.status().as_u16();
        SseStream {
            status,
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }
}

/// One event of an SSE stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent).
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|error| panic!("{error}: {}", self.data))
    }

    /// The id as a number.
    pub fn number(&self) -> u64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("an event with a numeric id: {self:?}"))
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open SSE stream; dropping it disconnects.
pub struct SseStream {
    pub status: u16,
    body: Body,
    buffer: String,
}

impl SseStream {
    /// The next event (comments, such as keep-alives, are skipped), or `None`
    /// when the stream ended. Fails the test after [`PATIENCE`] without one.
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(PATIENCE, self.next_event())
            .await
            .expect("an SSE event in time")
    }

    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Some(Err(error)) => panic!("reading the SSE stream: {error}"),
                None => return None,
            }
        }
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut id = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if event.is_none() && id.is_none() && data.is_empty() {
        return None;
    }
    Some(SseEvent {
        event: event.unwrap_or_else(|| "message".to_owned()),
        id,
        data: data.join("\n"),
    })
}
