//! A TCP proxy the tests put between a server and its PostgreSQL: to reach a
//! database that listens on loopback from a Docker network, or to cut a
//! server off from its database and let it back.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::AbortHandle,
};

/// Forwards the connections made to [`TcpProxy::address`] to an upstream
/// address, until it is cut.
pub struct TcpProxy {
    pub address: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl TcpProxy {
    /// A proxy listening on `bind` (any port) to `upstream`.
    pub async fn start(bind: IpAddr, upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind((bind, 0)).await.expect("bind the proxy");
        let address = listener.local_addr().expect("address");
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (is_cut, tracked) = (cut.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked
                    .lock()
                    .expect("connections")
                    .push(task.abort_handle());
            }
        });
        TcpProxy {
            address,
            cut,
            connections,
        }
    }

    /// Cuts every connection and refuses new ones (`true`), or lets them
    /// through again (`false`).
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            for connection in self.connections.lock().expect("connections").drain(..) {
                connection.abort();
            }
        }
    }
}

/// The address of the PostgreSQL server of `url` (`postgres://user:pw@IP[:PORT]/db`).
pub fn postgres_address(url: &str) -> SocketAddr {
    let (_, rest) = url.rsplit_once('@').expect("user@host in the URL");
    let (host, _) = rest.split_once('/').expect("a database in the URL");
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    host.parse()
        .unwrap_or_else(|_| panic!("PostgreSQL's address must be IP[:PORT] here: {host}"))
}

/// `url` with its host and port replaced by `via`.
pub fn postgres_url_via(url: &str, via: SocketAddr) -> String {
    let (user, rest) = url.rsplit_once('@').expect("user@host in the URL");
    let (_, database) = rest.split_once('/').expect("a database in the URL");
    format!("{user}@{via}/{database}")
}
