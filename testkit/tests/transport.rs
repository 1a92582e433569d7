//! Transport: TLS and mutual TLS on TCP (certificates made here with rcgen),
//! plaintext refused off loopback unless `--insecure`, and the Unix socket
//! for local callers.

use std::{
    os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    path::Path,
};

use slipway_sdk::{
    Client, ClientBuilder, DeploymentBuilder, Error, NewToken, proto::ListDeploymentsRequest,
};
use slipway_server::{
    config::ServeConfig,
    server::{self, ServerError},
    transport::TransportError,
};
use slipway_testkit::{
    TestServer,
    tls::{Ca, ServerFiles, Validity},
    write_admin_token,
};
use tempfile::TempDir;

/// Connects with `builder` and makes one call.
async fn try_call(builder: ClientBuilder) -> Result<(), Error> {
    builder
        .connect()
        .await?
        .list_deployments(ListDeploymentsRequest::default())
        .await
        .map(drop)
}

fn https(server: &TestServer) -> String {
    format!("https://{}", server.address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_its_ca() {
    let ca = Ca::new("slipway test CA");
    let files = ServerFiles::new(&ca);
    let server = TestServer::start_with(|config| files.apply(config, false)).await;
    let token = server.admin_token().to_owned();

    try_call(
        Client::builder(https(&server))
            .ca_certificate(ca.pem.clone())
            .token(&token),
    )
    .await
    .expect("a call over TLS, trusting the server's CA");
    let stranger = Ca::new("another CA");
    let distrusted = try_call(
        Client::builder(https(&server))
            .ca_certificate(stranger.pem.clone())
            .token(&token),
    )
    .await;
    assert!(
        distrusted.is_err(),
        "a server certificate of an unknown CA: {distrusted:?}"
    );
    let plaintext =
        try_call(Client::builder(format!("http://{}", server.address)).token(&token)).await;
    assert!(plaintext.is_err(), "plaintext on a TLS port: {plaintext:?}");
    // TLS options with a plaintext URL are a mistake, said so.
    let mixed = try_call(
        Client::builder(format!("http://{}", server.address)).ca_certificate(ca.pem.clone()),
    )
    .await;
    assert!(matches!(mixed, Err(Error::InvalidTls(_))), "{mixed:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_clients_without_a_valid_certificate() {
    let ca = Ca::new("slipway test CA");
    let files = ServerFiles::new(&ca);
    let server = TestServer::start_with(|config| files.apply(config, true)).await;
    let token = server.admin_token().to_owned();
    let builder = || {
        Client::builder(https(&server))
            .ca_certificate(ca.pem.clone())
            .token(&token)
    };

    let (certificate, key) = ca.client(Validity::Current);
    try_call(builder().identity(certificate, key))
        .await
        .expect("a client certificate of the CA is accepted");

    let without = try_call(builder()).await;
    assert!(without.is_err(), "no client certificate: {without:?}");
    let (certificate, key) = Ca::new("another CA").client(Validity::Current);
    let foreign = try_call(builder().identity(certificate, key)).await;
    assert!(foreign.is_err(), "a certificate of another CA: {foreign:?}");
    let (certificate, key) = ca.client(Validity::Expired);
    let expired = try_call(builder().identity(certificate, key)).await;
    assert!(expired.is_err(), "an expired certificate: {expired:?}");

    // The certificate proves the connection, the token the caller: both are needed.
    let (certificate, key) = ca.client(Validity::Current);
    let tokenless = Client::builder(https(&server))
        .ca_certificate(ca.pem.clone())
        .identity(certificate, key)
        .connect()
        .await
        .expect("connect")
        .list_tokens()
        .await;
    assert!(
        matches!(tokenless, Err(Error::Unauthenticated { .. })),
        "{tokenless:?}"
    );
    server.stop().await;
}

/// Plaintext on an address other machines reach is refused at start, naming
/// the ways out; `--insecure` allows it (with tokens still required), TLS
/// needs no such flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_off_loopback_needs_insecure() {
    let data = TempDir::new().expect("data");
    let mut config = ServeConfig::new(data.path().join("data"), data.path().to_path_buf());
    config.admin_token_file = Some(write_admin_token(data.path()));
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let refused = server::serve(config, listener, async {}).await;
    match refused {
        Err(error @ ServerError::Listen(TransportError::PlaintextNotLoopback { .. })) => {
            let message = error.to_string();
            assert!(
                message.contains("--insecure") && message.contains("--tls-cert"),
                "{message}"
            );
        }
        other => panic!("plaintext on 0.0.0.0 without --insecure: {other:?}"),
    }

    let insecure =
        TestServer::start_listening("0.0.0.0:0", |config| config.transport.insecure = true).await;
    insecure
        .client
        .list_deployments(ListDeploymentsRequest::default())
        .await
        .expect("--insecure serves");
    let anonymous = insecure.client_without_token().await.list_tokens().await;
    assert!(
        matches!(anonymous, Err(Error::Unauthenticated { .. })),
        "{anonymous:?}"
    );
    insecure.stop().await;

    let ca = Ca::new("slipway test CA");
    let files = ServerFiles::new(&ca);
    let secure =
        TestServer::start_listening("0.0.0.0:0", |config| files.apply(config, false)).await;
    try_call(
        Client::builder(https(&secure))
            .ca_certificate(ca.pem.clone())
            .token(secure.admin_token()),
    )
    .await
    .expect("TLS on 0.0.0.0 needs no --insecure");
    secure.stop().await;
}

fn unix_url(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// The socket is 0600 in the data directory; a caller there without a token
/// is the local administrator, one with a token acts as that token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unix_socket_serves_local_callers_without_a_token() {
    let server = TestServer::start().await;
    let socket = server.socket_path().expect("a socket by default");
    assert_eq!(socket, server.data_dir().join("slipway.sock"));
    let metadata = std::fs::metadata(&socket).expect("the socket exists");
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);

    let local = Client::connect(unix_url(&socket)).await.expect("connect");
    local.list_tokens().await.expect("the local administrator");
    let viewer_token = server
        .client
        .create_token(NewToken {
            name: "viewer".to_owned(),
            role: "viewer".to_owned(),
            ..NewToken::default()
        })
        .await
        .expect("token")
        .1;
    let viewer = Client::builder(unix_url(&socket))
        .token(viewer_token)
        .connect()
        .await
        .expect("connect");
    let refused = viewer
        .create_deployment(
            DeploymentBuilder::new("nope")
                .service_path(".")
                .command(["true"])
                .build(),
        )
        .await;
    assert!(
        matches!(refused, Err(Error::PermissionDenied { .. })),
        "{refused:?}"
    );
    // On TCP, no token is still no entry.
    let anonymous = server.client_without_token().await.list_tokens().await;
    assert!(
        matches!(anonymous, Err(Error::Unauthenticated { .. })),
        "{anonymous:?}"
    );

    // A second server may not take a socket a server answers on.
    let data = TempDir::new().expect("data");
    let mut config = ServeConfig::new(data.path().join("data"), data.path().to_path_buf());
    config.admin_token_file = Some(write_admin_token(data.path()));
    config.transport.socket = Some(socket.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let taken = server::serve(config, listener, async {}).await;
    assert!(
        matches!(
            taken,
            Err(ServerError::Listen(TransportError::SocketInUse { .. }))
        ),
        "{taken:?}"
    );
    server.stop().await;
    assert!(!socket.exists(), "the socket is removed at shutdown");
}

/// `--socket-group` makes the socket 0660 and gives it to the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_group_opens_the_socket_to_the_group() {
    let dir = TempDir::new().expect("socket dir");
    let socket = dir.path().join("group.sock");
    let group = nix::unistd::getgid();
    let server = TestServer::start_with(|config| {
        config.transport.socket = Some(socket.clone());
        config.transport.socket_group = Some(group.as_raw().to_string());
    })
    .await;
    let metadata = std::fs::metadata(&socket).expect("the socket exists");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o660);
    assert_eq!(metadata.gid(), group.as_raw());
    Client::connect(unix_url(&socket))
        .await
        .expect("connect")
        .list_nodes(false)
        .await
        .expect("a call on the socket");
    server.stop().await;
}
