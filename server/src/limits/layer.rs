//! The limit layers: [`ConcurrencyLayer`] in front of everything (so an
//! overloaded server sheds calls before spending anything on them), and
//! [`ClientLimitsLayer`] behind the access layer (which names the caller).

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use tokio::sync::Semaphore;
use tonic::{Status, body::Body};

use super::{ClientKey, LimitsConfig, RateLimiter, StreamingMethods};

type BoxFuture<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

/// At most `--max-concurrent-requests` calls in flight; the excess is refused
/// at once with `RESOURCE_EXHAUSTED`. A stream counts until its response
/// starts (open streams are capped per client by [`ClientLimitsLayer`]).
#[derive(Clone)]
pub struct ConcurrencyLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl ConcurrencyLayer {
    pub fn new(limit: usize) -> ConcurrencyLayer {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        ConcurrencyLayer {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> tower::Layer<S> for ConcurrencyLayer {
    type Service = ConcurrencyService<S>;

    fn layer(&self, inner: S) -> ConcurrencyService<S> {
        ConcurrencyService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ConcurrencyService<S> {
    inner: S,
    layer: ConcurrencyLayer,
}

impl<S> tower::Service<Request<Body>> for ConcurrencyService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "the server is busy: {} calls in flight already (--max-concurrent-requests); try again",
                self.layer.limit
            ));
            let refusal = refusal(request.uri().path(), status);
            return Box::pin(async move { Ok(refusal) });
        };
        Box::pin(async move {
            let response = inner.call(request).await;
            drop(permit);
            response
        })
    }
}

/// Per client (see [`ClientKey`]): the request rate (a token bucket), the
/// open streams, and the deadline of unary calls.
#[derive(Clone)]
pub struct ClientLimitsLayer {
    shared: Arc<Shared>,
}

struct Shared {
    rates: RateLimiter<ClientKey>,
    rate_limit: u32,
    rate_burst: u32,
    streams: Mutex<HashMap<ClientKey, usize>>,
    max_streams: usize,
    request_timeout: Duration,
    streaming: StreamingMethods,
}

impl ClientLimitsLayer {
    /// The limits of `config`; `streaming` tells streams from unary calls.
    pub fn new(config: &LimitsConfig, streaming: StreamingMethods) -> ClientLimitsLayer {
        ClientLimitsLayer {
            shared: Arc::new(Shared {
                rates: RateLimiter::new(config.rate_limit, config.rate_burst),
                rate_limit: config.rate_limit.max(1),
                rate_burst: config.rate_burst.max(1),
                streams: Mutex::new(HashMap::new()),
                max_streams: config.max_streams_per_client.max(1),
                request_timeout: config.request_timeout,
                streaming,
            }),
        }
    }
}

impl<S> tower::Layer<S> for ClientLimitsLayer {
    type Service = ClientLimitsService<S>;

    fn layer(&self, inner: S) -> ClientLimitsService<S> {
        ClientLimitsService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ClientLimitsService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> tower::Service<Request<Body>> for ClientLimitsService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let client = ClientKey::of(&request);
        let path = request.uri().path().to_owned();
        if !shared.rates.try_acquire(&client) {
            let status = Status::resource_exhausted(format!(
                "rate limit: this client made more than {} calls per second (burst {}) (--rate-limit, --rate-burst); slow down",
                shared.rate_limit, shared.rate_burst
            ));
            return Box::pin(async move { Ok(refusal(&path, status)) });
        }
        // A REST call is limited as the gRPC method it stands for: SSE and
        // the control calls (streams in gRPC) hold a stream slot, not a deadline.
        let method = if crate::rest::is_rest_path(&path) {
            crate::rest::grpc_method(request.method(), &path).unwrap_or_default()
        } else {
            path.as_str()
        };
        if !shared.streaming.contains(method) {
            return Box::pin(async move {
                match tokio::time::timeout(shared.request_timeout, inner.call(request)).await {
                    Ok(response) => response,
                    Err(_) => Ok(refusal(
                        &path,
                        Status::deadline_exceeded(format!(
                            "the call took longer than {} (--request-timeout)",
                            humantime::format_duration(shared.request_timeout)
                        )),
                    )),
                }
            });
        }
        let Some(slot) = StreamSlot::take(shared.clone(), client) else {
            let status = Status::resource_exhausted(format!(
                "this client has {} streams open already (--max-streams-per-client); close one first",
                shared.max_streams
            ));
            return Box::pin(async move { Ok(refusal(&path, status)) });
        };
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(response.map(|body| {
                Body::new(SlotBody {
                    inner: body,
                    _slot: slot,
                })
            }))
        })
    }
}

/// A refusal as its caller reads it: a gRPC status, or a REST error.
fn refusal(path: &str, status: Status) -> Response<Body> {
    if crate::rest::is_rest_path(path) {
        crate::rest::status_response(&status)
    } else {
        status.into_http()
    }
}

/// One of a client's open streams: given back when dropped.
struct StreamSlot {
    shared: Arc<Shared>,
    client: ClientKey,
}

impl StreamSlot {
    fn take(shared: Arc<Shared>, client: ClientKey) -> Option<StreamSlot> {
        {
            let mut streams = shared.streams.lock().ok()?;
            let open = streams.entry(client.clone()).or_insert(0);
            if *open >= shared.max_streams {
                return None;
            }
            *open += 1;
        }
        Some(StreamSlot { shared, client })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut streams) = self.shared.streams.lock()
            && let Some(open) = streams.get_mut(&self.client)
        {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.client);
            }
        }
    }
}

/// A streaming response that holds its client's stream slot until it ends or
/// the caller hangs up.
struct SlotBody {
    inner: Body,
    _slot: StreamSlot,
}

impl http_body::Body for SlotBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, sync::Arc};

    use tokio::sync::Notify;
    use tonic::Code;
    use tower::{Layer, Service, ServiceExt};

    use super::*;

    fn request(path: &str) -> Request<Body> {
        Request::builder()
            .uri(format!("http://localhost{path}"))
            .body(Body::empty())
            .expect("request")
    }

    fn status_of(response: &Response<Body>) -> Option<Status> {
        Status::from_header_map(response.headers())
    }

    /// A service that answers after `delay`.
    fn answering_after(
        delay: Duration,
    ) -> impl tower::Service<
        Request<Body>,
        Response = Response<Body>,
        Error = Infallible,
        Future = impl Send + 'static,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(move |_request: Request<Body>| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, Infallible>(Response::new(Body::empty()))
        })
    }

    #[tokio::test]
    async fn unary_calls_get_the_deadline_and_streams_do_not() {
        let config = LimitsConfig {
            request_timeout: Duration::from_millis(50),
            ..LimitsConfig::default()
        };
        let streaming = StreamingMethods::from_descriptor_sets(&[slipway::v1::FILE_DESCRIPTOR_SET]);
        let layer = ClientLimitsLayer::new(&config, streaming);

        let mut slow = layer.layer(answering_after(Duration::from_secs(30)));
        let response = slow
            .ready()
            .await
            .expect("ready")
            .call(request("/slipway.v1.WorkloadService/GetWorkload"))
            .await
            .expect("a response");
        let status = status_of(&response).expect("a status");
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert!(status.message().contains("--request-timeout"), "{status:?}");

        let mut streams = layer.layer(answering_after(Duration::from_millis(200)));
        let response = streams
            .ready()
            .await
            .expect("ready")
            .call(request("/slipway.v1.WorkloadService/StreamLogs"))
            .await
            .expect("a response");
        assert!(status_of(&response).is_none(), "a stream is not cut short");

        // REST calls: limited as the gRPC method they stand for, refused as REST.
        let mut slow = layer.layer(answering_after(Duration::from_secs(30)));
        let response = slow
            .ready()
            .await
            .expect("ready")
            .call(request("/api/workloads/w/status"))
            .await
            .expect("a response");
        assert_eq!(response.status(), http::StatusCode::GATEWAY_TIMEOUT);
        let mut control = layer.layer(answering_after(Duration::from_millis(200)));
        let stop = Request::builder()
            .method(http::Method::POST)
            .uri("http://localhost/api/workloads/w/stop")
            .body(Body::empty())
            .expect("request");
        let response = control
            .ready()
            .await
            .expect("ready")
            .call(stop)
            .await
            .expect("a response");
        assert_eq!(
            response.status(),
            http::StatusCode::OK,
            "a stop is not cut short"
        );
    }

    #[tokio::test]
    async fn calls_over_the_concurrency_limit_are_shed() {
        let release = Arc::new(Notify::new());
        let waiting = {
            let release = release.clone();
            tower::service_fn(move |_request: Request<Body>| {
                let release = release.clone();
                async move {
                    release.notified().await;
                    Ok::<_, Infallible>(Response::new(Body::empty()))
                }
            })
        };
        let mut service = ConcurrencyLayer::new(1).layer(waiting);
        let first = service.call(request("/slipway.v1.WorkloadService/GetWorkload"));
        let first = tokio::spawn(first);
        let shed = service
            .call(request("/slipway.v1.WorkloadService/GetWorkload"))
            .await
            .expect("a response");
        let status = status_of(&shed).expect("refused");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("--max-concurrent-requests"),
            "{status:?}"
        );

        release.notify_one();
        let answered = first.await.expect("joined").expect("a response");
        assert!(status_of(&answered).is_none());
        // The permit is back: the next call waits for its answer, not refused.
        let next = tokio::spawn(service.call(request("/slipway.v1.WorkloadService/GetWorkload")));
        release.notify_one();
        let next = next.await.expect("joined").expect("a response");
        assert!(status_of(&next).is_none());
    }
}
