//! The tower layer in front of every gRPC service: authenticates the caller,
//! checks the role the method needs ([`super::permission_for`]), hands the
//! [`Caller`] to the handler, and records each call of an audited method —
//! refused ones too — when its response ends.
//!
//! Auditing lives here rather than in the handlers so that no mutating call
//! can miss it, whatever refuses it (no token, the wrong role, invalid input,
//! the orchestrator). Handlers add what only they know — the target and the
//! redacted parameters — through an [`AuditNote`] in the request extensions.
//! For the streaming control calls the record is written when the response
//! stream ends, so its result and duration are the operation's.

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::Frame;
use tonic::{Code, Status, body::Body, transport::server::UdsConnectInfo};

use super::{Caller, Role, is_open, parse_token, permission_for};
use crate::{
    domain::now,
    store::{AuditRow, Store},
};

/// How long a token read from the database is trusted for checking calls: a
/// call costs no database read then. A revocation through this node applies
/// at once; through another node, within this long.
const TOKEN_CACHE_AGE: Duration = Duration::from_secs(5);

/// How often at most a token's `last_used_at` is written: once per token per
/// minute, so that a busy caller does not turn every read into a write.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// See the module documentation. `enforce: false` (`--auth off`) lets every
/// caller in as the local administrator, still audited.
#[derive(Clone)]
pub struct AccessLayer {
    shared: Arc<Shared>,
}

struct Shared {
    store: Store,
    enforce: bool,
    touched: Mutex<HashMap<String, Instant>>,
}

impl AccessLayer {
    pub fn new(store: Store, enforce: bool) -> AccessLayer {
        AccessLayer {
            shared: Arc::new(Shared {
                store,
                enforce,
                touched: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = AccessService<S>;

    fn layer(&self, inner: S) -> AccessService<S> {
        AccessService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AccessService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// What a handler noted about the call for its audit record.
#[derive(Clone, Default)]
pub struct AuditNote(Arc<Mutex<Option<(String, serde_json::Value)>>>);

impl AuditNote {
    pub fn set(&self, target: &str, parameters: serde_json::Value) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((target.to_owned(), parameters));
        }
    }

    fn take(&self) -> (String, String) {
        let noted = self.0.lock().ok().and_then(|mut slot| slot.take());
        match noted {
            Some((target, parameters)) => (target, parameters.to_string()),
            None => (String::new(), "{}".to_owned()),
        }
    }
}

/// An audit record being made: written once, when the call's result is known.
struct Pending {
    store: Store,
    start: Instant,
    row: AuditRow,
    note: AuditNote,
}

impl Pending {
    fn finish(self, code: Code, message: &str) {
        let Pending {
            store,
            start,
            mut row,
            note,
        } = self;
        let (target, parameters) = note.take();
        row.target = target;
        row.parameters = parameters;
        row.result = code_name(code).to_owned();
        row.message = message.to_owned();
        row.duration_micros = i64::try_from(start.elapsed().as_micros()).unwrap_or(i64::MAX);
        // A deletion gives its space back (and checkpoints the SQLite WAL)
        // before it answers; its audit record comes after, so that is done
        // again, or the record would hold the WAL open until the next one.
        let deleted = row.action.starts_with("Delete") && code == Code::Ok;
        tokio::spawn(async move {
            if let Err(error) = store.insert_audit(row).await {
                tracing::error!(%error, "could not store an audit record");
            }
            if deleted {
                store.reclaim_space().await;
            }
        });
    }
}

impl<S> tower::Service<Request<Body>> for AccessService<S>
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

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The ready service goes into the future; its clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            if is_open(&path) {
                return inner.call(request).await;
            }
            // A REST call is checked as the gRPC method it stands for; a path
            // that is none is left to the router (404, 405).
            let rest = crate::rest::is_rest_path(&path);
            let path = if rest {
                match crate::rest::grpc_method(request.method(), &path) {
                    Some(method) => method.to_owned(),
                    None => return inner.call(request).await,
                }
            } else {
                path
            };
            let refuse = |status: Status| {
                if rest {
                    crate::rest::status_response(&status)
                } else {
                    status.into_http()
                }
            };
            let start = Instant::now();
            let permission = permission_for(&path);
            let action = path.rsplit('/').next().unwrap_or_default().to_owned();
            let audited = permission.is_none_or(|permission| permission.audited);
            let peer = crate::limits::peer_address(&request);
            // On the Unix socket, a caller without a token is the local
            // administrator; one with a token acts as that token.
            let local = request.extensions().get::<UdsConnectInfo>().is_some()
                && !request.headers().contains_key(http::header::AUTHORIZATION);
            let caller = if local || !shared.enforce {
                Ok(Caller::local())
            } else {
                shared.authenticate(request.headers()).await
            };
            let pending = |caller: Option<&Caller>, note: AuditNote| Pending {
                store: shared.store.clone(),
                start,
                row: AuditRow {
                    ts: now().0,
                    actor_id: caller.map(|caller| caller.id.clone()).unwrap_or_default(),
                    actor: match caller {
                        Some(caller) => caller.name.clone(),
                        None => peer_name(peer),
                    },
                    action: action.clone(),
                    ..AuditRow::default()
                },
                note,
            };
            let refusal = match (&caller, permission) {
                (Err(status), _) => Some(status.clone()),
                (Ok(caller), None) => Some(Status::permission_denied(format!(
                    "token {:?} may not call the unknown method {path}",
                    caller.name
                ))),
                (Ok(caller), Some(permission)) if caller.role < permission.role => {
                    Some(Status::permission_denied(format!(
                        "token {:?} has the role {}; {action} needs {}",
                        caller.name, caller.role, permission.role
                    )))
                }
                _ => None,
            };
            if let Some(status) = refusal {
                if audited {
                    pending(caller.as_ref().ok(), AuditNote::default())
                        .finish(status.code(), status.message());
                }
                return Ok(refuse(status));
            }
            let Ok(caller) = caller else {
                return Ok(refuse(Status::internal("access check failed")));
            };
            let note = AuditNote::default();
            let pending = audited.then(|| pending(Some(&caller), note.clone()));
            let actor = caller.name.clone();
            request.extensions_mut().insert(caller);
            request.extensions_mut().insert(note);
            // What the call causes (its events) names the caller.
            let response = crate::domain::acting_as(actor, inner.call(request)).await?;
            let Some(pending) = pending else {
                return Ok(response);
            };
            // A REST call has its result when its response starts.
            if rest {
                let (code, message) = crate::rest::outcome(&response);
                pending.finish(code, &message);
                return Ok(response);
            }
            // An error before any message comes as a trailers-only response.
            if let Some(status) = Status::from_header_map(response.headers()) {
                pending.finish(status.code(), status.message());
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(AuditedBody {
                    inner: body,
                    pending: Some(pending),
                })
            }))
        })
    }
}

impl Shared {
    /// The caller the `authorization: Bearer` header names, or UNAUTHENTICATED.
    /// The reasons are told apart in the message, never with the token in it.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Status> {
        let missing = || {
            Status::unauthenticated(
                "no credentials: give a token with --token or SLIPWAY_TOKEN (authorization: Bearer)",
            )
        };
        let value = headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(missing)?
            .to_str()
            .map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
        let presented = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("expected authorization: Bearer TOKEN"))?;
        let invalid = || Status::unauthenticated("invalid token");
        let (id, secret) = parse_token(presented).ok_or_else(invalid)?;
        let row = self
            .store
            .token_for_call(&id, TOKEN_CACHE_AGE)
            .await
            .map_err(|error| {
                tracing::error!(%error, "could not read a token");
                Status::unavailable("could not check the token")
            })?
            .ok_or_else(invalid)?;
        if !secret.matches(&row.secret_hash) {
            return Err(invalid());
        }
        let now = now().0;
        if row.revoked_at.is_some() {
            return Err(Status::unauthenticated(format!(
                "token {:?} was revoked",
                row.name
            )));
        }
        if row.expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Err(Status::unauthenticated(format!(
                "token {:?} has expired",
                row.name
            )));
        }
        let role = Role::parse(&row.role).ok_or_else(|| {
            tracing::error!(token_id = %row.id, role = %row.role, "a stored token has an unknown role");
            invalid()
        })?;
        self.touch(&row.id, now);
        Ok(Caller {
            id: row.id,
            name: row.name,
            role,
            projects: row.projects,
        })
    }

    fn touch(&self, id: &str, now: i64) {
        let due = match self.touched.lock() {
            Ok(mut touched) => {
                let due = touched
                    .get(id)
                    .is_none_or(|last| last.elapsed() >= TOUCH_INTERVAL);
                if due {
                    touched.insert(id.to_owned(), Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if due {
            let store = self.store.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                if let Err(error) = store.touch_token(&id, now).await {
                    tracing::warn!(%error, "could not note a token's use");
                }
            });
        }
    }
}

fn peer_name(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown".to_owned(), |peer| peer.to_string())
}

/// A response body that writes the call's audit record when it ends: with the
/// status of its trailers, or CANCELLED when the caller hung up first.
struct AuditedBody {
    inner: Body,
    pending: Option<Pending>,
}

impl http_body::Body for AuditedBody {
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
                    && let Some(pending) = self.pending.take()
                {
                    match Status::from_header_map(trailers) {
                        Some(status) => pending.finish(status.code(), status.message()),
                        None => pending.finish(Code::Ok, ""),
                    }
                }
            }
            Poll::Ready(Some(Err(status))) => {
                if let Some(pending) = self.pending.take() {
                    pending.finish(status.code(), status.message());
                }
            }
            Poll::Ready(None) => {
                if let Some(pending) = self.pending.take() {
                    pending.finish(Code::Ok, "");
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

impl Drop for AuditedBody {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.finish(Code::Cancelled, "the caller hung up before the end");
        }
    }
}

/// The canonical gRPC name of a code, as grpcurl and the docs spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
