//! The tower layer in front of everything served: counts calls by method,
//! code and protocol (a REST call as the gRPC method it stands for) with their
//! durations (to the end of the response stream), and holds the count of open
//! log and event streams, gRPC and SSE.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use tonic::{Code, Status, body::Body};

use super::{Metrics, SubscriberGuard};
use crate::access::code_name;

/// See the module documentation.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    metrics: Metrics,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Metrics) -> RpcMetricsLayer {
        RpcMetricsLayer { metrics }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> RpcMetricsService<S> {
        RpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcMetricsService<S> {
    inner: S,
    metrics: Metrics,
}

/// The kind of stream a path opens, for the subscriber count.
fn stream_kind(path: &str, grpc: bool) -> Option<&'static str> {
    if grpc {
        match path {
            "/slipway.v1.WorkloadService/StreamLogs" => Some("logs"),
            "/slipway.v1.WorkloadService/WatchEvents" => Some("events"),
            _ => None,
        }
    } else if path.starts_with("/api/") && path.ends_with("/logs/stream") {
        Some("logs")
    } else if path.starts_with("/api/") && path.ends_with("/deployments/stream") {
        Some("events")
    } else {
        None
    }
}

impl<S> tower::Service<Request<Body>> for RpcMetricsService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/grpc"));
        let path = request.uri().path().to_owned();
        let rest_method = (!grpc && crate::rest::is_rest_path(&path))
            .then(|| crate::rest::grpc_method(request.method(), &path))
            .flatten();
        Box::pin(async move {
            let start = Instant::now();
            let response = inner.call(request).await?;
            let subscriber = stream_kind(&path, grpc)
                .filter(|_| response.status().is_success())
                .map(|kind| metrics.subscribe(kind, if grpc { "grpc" } else { "sse" }));
            let call = if grpc {
                let call = Call {
                    metrics: metrics.clone(),
                    method: path.trim_start_matches('/').to_owned(),
                    protocol: "grpc",
                    code: None,
                    start,
                };
                // An error before any message comes as a trailers-only response.
                match Status::from_header_map(response.headers()) {
                    Some(status) => {
                        call.finish(status.code());
                        None
                    }
                    None => Some(call),
                }
            } else {
                // A REST call's result is known from its response; it is
                // counted when its body (an SSE stream) ends.
                rest_method.map(|method| Call {
                    metrics: metrics.clone(),
                    method: method.trim_start_matches('/').to_owned(),
                    protocol: "rest",
                    code: Some(crate::rest::outcome(&response).0),
                    start,
                })
            };
            if call.is_none() && subscriber.is_none() {
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(CountedBody {
                    inner: body,
                    call,
                    _subscriber: subscriber,
                })
            }))
        })
    }
}

/// A call not counted yet.
struct Call {
    metrics: Metrics,
    method: String,
    protocol: &'static str,
    /// The code, when the response told it already (REST).
    code: Option<Code>,
    start: Instant,
}

impl Call {
    /// Counts the call, with the code it ended with unless it was known before.
    fn finish(self, ended_with: Code) {
        self.metrics.rpc_finished(
            &self.method,
            self.protocol,
            code_name(self.code.unwrap_or(ended_with)),
            self.start.elapsed().as_secs_f64(),
        );
    }
}

/// A response body that counts its call when it ends (CANCELLED when the
/// caller hung up first) and holds a stream's place in the subscriber count.
struct CountedBody {
    inner: Body,
    call: Option<Call>,
    _subscriber: Option<SubscriberGuard>,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = self.call.take()
                {
                    call.finish(
                        Status::from_header_map(trailers).map_or(Code::Ok, |status| status.code()),
                    );
                }
            }
            Poll::Ready(Some(Err(status))) => {
                if let Some(call) = self.call.take() {
                    call.finish(status.code());
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = self.call.take() {
                    call.finish(Code::Ok);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(Code::Cancelled);
        }
    }
}
