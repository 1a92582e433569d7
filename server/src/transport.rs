//! How callers reach the server: the local Unix socket, TCP, and TLS on TCP
//! (optionally mutual), with the rule that plaintext TCP stays on loopback
//! unless `--insecure` says otherwise.
//!
//! Callers on the Unix socket without a token are the local administrator
//! (the socket's file mode decides who that may be, as with Docker's); a
//! caller there that presents a token acts as that token.

use std::{
    io,
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use tokio::net::UnixListener;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The file name of the socket in the data directory, by default.
pub const SOCKET_FILE_NAME: &str = "slipway.sock";

/// The socket's mode without `--socket-group`: only the server's user.
pub const SOCKET_MODE: u32 = 0o600;

/// The socket's mode with `--socket-group`: the server's user and that group.
pub const SOCKET_GROUP_MODE: u32 = 0o660;

/// Transport settings of `slipway serve`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TransportConfig {
    /// The Unix socket the server also listens on, for local callers (who need
    /// no token there); default DATA_DIR/slipway.sock. Mode 0600 unless
    /// --socket-group is given.
    #[arg(long, env = "SLIPWAY_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Do not listen on a Unix socket (TCP only).
    #[arg(long, env = "SLIPWAY_NO_SOCKET", conflicts_with_all = ["socket", "socket_group"])]
    pub no_socket: bool,

    /// Make the socket 0660 and owned by this group (a name or a numeric id), so
    /// that its members are local administrators too. The socket's directory
    /// must let the group in (the data directory is 0700: use --socket).
    #[arg(long, env = "SLIPWAY_SOCKET_GROUP", value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// TLS on TCP: the server's certificate chain (PEM). Needs --tls-key.
    #[arg(
        long,
        env = "SLIPWAY_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// TLS on TCP: the server's private key (PEM). Needs --tls-cert.
    #[arg(
        long,
        env = "SLIPWAY_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Mutual TLS: every TCP client must present a certificate signed by this
    /// CA (PEM); others are refused during the handshake. Needs --tls-cert.
    #[arg(
        long,
        env = "SLIPWAY_TLS_CLIENT_CA",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,

    /// Allow plaintext TCP on a non-loopback --listen address (a warning is
    /// logged at every start). Tokens still apply; prefer TLS.
    #[arg(long, env = "SLIPWAY_INSECURE")]
    pub insecure: bool,

    /// Several nodes with TLS: the CA (PEM) that signed the other nodes'
    /// certificates. Calls forwarded to another node then go over TLS, checked
    /// against it, presenting this node's --tls-cert as the client certificate
    /// (for nodes that require mutual TLS). Without it, nodes call each other
    /// in plaintext.
    #[arg(long, env = "SLIPWAY_PEER_TLS_CA", value_name = "PEM")]
    pub peer_tls_ca: Option<PathBuf>,
}

/// Why the transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Plaintext on an address other machines reach, without `--insecure`.
    #[error(
        "refusing plaintext on {address}, which is not a loopback address: give --tls-cert and --tls-key (TLS), or --insecure to allow plaintext"
    )]
    PlaintextNotLoopback { address: SocketAddr },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Another server answers on the socket.
    #[error("another server is listening on the socket {path}; stop it or give another --socket")]
    SocketInUse { path: String },
    #[error("--socket-group: no group {group:?}")]
    UnknownGroup { group: String },
    #[error("--tls-cert/--tls-key: {0}")]
    Tls(tonic::transport::Error),
}

impl TransportConfig {
    /// The socket to listen on, if any: --socket, else DATA_DIR/slipway.sock.
    pub fn socket_path(&self, data_dir: &Path) -> Option<PathBuf> {
        if self.no_socket {
            return None;
        }
        Some(
            self.socket
                .clone()
                .unwrap_or_else(|| data_dir.join(SOCKET_FILE_NAME)),
        )
    }

    /// Refuses plaintext TCP on a non-loopback address unless `--insecure`;
    /// with it, warns (at every start).
    pub fn check_plaintext(&self, address: SocketAddr) -> Result<(), TransportError> {
        if self.tls_cert.is_some() || address.ip().is_loopback() {
            return Ok(());
        }
        if !self.insecure {
            return Err(TransportError::PlaintextNotLoopback { address });
        }
        tracing::warn!(
            %address,
            "--insecure: serving plaintext gRPC on a non-loopback address; tokens travel unencrypted"
        );
        Ok(())
    }

    /// The TLS settings for TCP, when --tls-cert is given.
    pub fn server_tls(&self) -> Result<Option<ServerTlsConfig>, TransportError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let identity =
            Identity::from_pem(read_pem(cert, "--tls-cert")?, read_pem(key, "--tls-key")?);
        let mut tls = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.tls_client_ca {
            tls = tls
                .client_ca_root(Certificate::from_pem(read_pem(ca, "--tls-client-ca")?))
                .client_auth_optional(false);
        }
        Ok(Some(tls))
    }

    /// How this node reaches the others: TLS against --peer-tls-ca, with its
    /// own certificate as the client's, when --peer-tls-ca is given.
    pub fn peer_tls(&self) -> Result<Option<ClientTlsConfig>, TransportError> {
        let Some(ca) = &self.peer_tls_ca else {
            return Ok(None);
        };
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read_pem(ca, "--peer-tls-ca")?));
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls = tls.identity(Identity::from_pem(
                read_pem(cert, "--tls-cert")?,
                read_pem(key, "--tls-key")?,
            ));
        }
        Ok(Some(tls))
    }

    /// Binds the Unix socket at `path` with its mode (and group). A socket file
    /// left by a server that is gone is replaced; one a server answers on is not.
    pub async fn bind_socket(&self, path: &Path) -> Result<UnixListener, TransportError> {
        let io_error = |context: String| move |source| TransportError::Io { context, source };
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(io_error(format!(
                "creating the socket's directory {}",
                parent.display()
            )))?;
        }
        if std::fs::symlink_metadata(path).is_ok() {
            if tokio::net::UnixStream::connect(path).await.is_ok() {
                return Err(TransportError::SocketInUse {
                    path: path.display().to_string(),
                });
            }
            std::fs::remove_file(path).map_err(io_error(format!(
                "removing the stale socket {}",
                path.display()
            )))?;
        }
        // Bound under a temporary name, given its mode and group, then moved
        // into place: the socket never appears with the umask's mode.
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| SOCKET_FILE_NAME.to_owned());
        let staging = path.with_file_name(format!(".{file_name}.{}", std::process::id()));
        let _ = std::fs::remove_file(&staging);
        let listener = UnixListener::bind(&staging).map_err(io_error(format!(
            "listening on the socket {}",
            path.display()
        )))?;
        let prepared = self.prepare_socket_file(&staging, path).and_then(|()| {
            std::fs::rename(&staging, path).map_err(|source| TransportError::Io {
                context: format!("moving the socket into place at {}", path.display()),
                source,
            })
        });
        if let Err(error) = prepared {
            let _ = std::fs::remove_file(&staging);
            return Err(error);
        }
        Ok(listener)
    }

    /// Gives the socket file at `staging` its mode (and group); `path` is
    /// where it will be, for messages.
    fn prepare_socket_file(&self, staging: &Path, path: &Path) -> Result<(), TransportError> {
        let io_error = |context: String| move |source| TransportError::Io { context, source };
        let mode = match &self.socket_group {
            Some(group) => {
                let gid = group_id(group)?;
                std::os::unix::fs::chown(staging, None, Some(gid.as_raw())).map_err(io_error(
                    format!("giving the socket {} to group {group}", path.display()),
                ))?;
                warn_if_group_cannot_reach(path);
                SOCKET_GROUP_MODE
            }
            None => SOCKET_MODE,
        };
        std::fs::set_permissions(staging, std::fs::Permissions::from_mode(mode)).map_err(io_error(
            format!("setting the mode of the socket {}", path.display()),
        ))
    }
}

fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|source| TransportError::Io {
        context: format!("{flag}: reading {}", path.display()),
        source,
    })
}

fn group_id(group: &str) -> Result<nix::unistd::Gid, TransportError> {
    if let Ok(id) = group.parse::<u32>() {
        return Ok(nix::unistd::Gid::from_raw(id));
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(found)) => Ok(found.gid),
        _ => Err(TransportError::UnknownGroup {
            group: group.to_owned(),
        }),
    }
}

/// The group can use the socket only if it may enter the socket's directory.
fn warn_if_group_cannot_reach(path: &Path) {
    let Some(parent) = path.parent() else { return };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    if let Ok(metadata) = std::fs::metadata(parent)
        && metadata.permissions().mode() & 0o011 == 0
    {
        tracing::warn!(
            directory = %parent.display(),
            "--socket-group: the socket's directory is closed to the group; put the socket elsewhere with --socket"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_refused_off_loopback_unless_insecure() {
        let mut config = TransportConfig::default();
        let public: SocketAddr = "0.0.0.0:50051".parse().expect("address");
        let loopback: SocketAddr = "127.0.0.1:50051".parse().expect("address");
        assert!(config.check_plaintext(loopback).is_ok());
        assert!(matches!(
            config.check_plaintext(public),
            Err(TransportError::PlaintextNotLoopback { .. })
        ));
        config.insecure = true;
        assert!(config.check_plaintext(public).is_ok());
        config.insecure = false;
        config.tls_cert = Some(PathBuf::from("cert.pem"));
        assert!(config.check_plaintext(public).is_ok());
    }

    #[test]
    fn the_socket_defaults_to_the_data_directory() {
        let mut config = TransportConfig::default();
        assert_eq!(
            config.socket_path(Path::new("/data")),
            Some(PathBuf::from("/data/slipway.sock"))
        );
        config.no_socket = true;
        assert_eq!(config.socket_path(Path::new("/data")), None);
    }
}
