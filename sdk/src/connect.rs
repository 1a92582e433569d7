//! How a [`Client`](crate::Client) reaches the server: the address (`http://`,
//! `https://` with TLS, or `unix:///path` for the server's local socket), the
//! TLS trust and client certificate, and the credentials it presents on every
//! call.

use std::fmt;

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{Client, Error, Result};

/// The channel every generated client of [`Client`] uses: the connection with
/// the caller's credentials added to each request.
pub(crate) type AuthedChannel = InterceptedService<Channel, Credentials>;

/// Builds a [`Client`]: `Client::builder(url).token(token).connect().await`.
///
/// URLs: `http://HOST:PORT` (or just `HOST:PORT`); `https://HOST:PORT` (TLS: the server's
/// certificate is checked against [`ca_certificate`](Self::ca_certificate), or
/// the system's roots without one); `unix:///PATH` (the server's Unix socket,
/// where a caller without a token is the local administrator).
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    ca_certificate: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    tls_domain: Option<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_certificate", &self.ca_certificate.is_some())
            .field("identity", &self.identity.as_ref().map(|_| "<redacted>"))
            .field("tls_domain", &self.tls_domain)
            .finish()
    }
}

impl ClientBuilder {
    pub(crate) fn new(url: impl Into<String>) -> ClientBuilder {
        let url = url.into();
        // `HOST:PORT` without a scheme, as Docker's `-H` takes it: plaintext HTTP/2.
        let url = if url.contains("://") {
            url
        } else {
            format!("http://{url}")
        };
        ClientBuilder {
            url,
            token: None,
            ca_certificate: None,
            identity: None,
            tls_domain: None,
        }
    }

    /// Trusts the CA certificate(s) in `pem` (instead of the system's roots)
    /// for the server's certificate. Needs an `https://` URL.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> ClientBuilder {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// Presents this client certificate chain and private key (both PEM), for
    /// a server that requires mutual TLS. Needs an `https://` URL.
    pub fn identity(
        mut self,
        certificate_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> ClientBuilder {
        self.identity = Some((certificate_pem.into(), key_pem.into()));
        self
    }

    /// The name the server's certificate must carry, when it is not the URL's
    /// host. Needs an `https://` URL.
    pub fn tls_domain(mut self, name: impl Into<String>) -> ClientBuilder {
        self.tls_domain = Some(name.into());
        self
    }

    /// Sends `token` as `authorization: Bearer TOKEN` on every call. Surrounding
    /// white space (a token file's final newline) is ignored.
    pub fn token(mut self, token: impl Into<String>) -> ClientBuilder {
        let token = token.into().trim().to_owned();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Connects.
    pub async fn connect(self) -> Result<Client> {
        let credentials = Credentials::bearer(self.token.as_deref())?;
        let url = self.url.clone();
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|source| Error::Connect {
                url: url.clone(),
                source,
            })?
            // Log streams move a lot of data: HTTP/2's 64 KiB default windows would
            // make them wait on acknowledgements.
            .initial_connection_window_size(Some(8 * 1024 * 1024))
            .initial_stream_window_size(Some(2 * 1024 * 1024));
        let endpoint = match self.tls_settings(&url)? {
            Some(tls) => endpoint.tls_config(tls).map_err(|source| Error::Connect {
                url: url.clone(),
                source,
            })?,
            None => endpoint,
        };
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| Error::Connect { url, source })?;
        Ok(Client::with_credentials(channel, credentials))
    }

    /// The TLS settings for an `https://` URL; TLS options with another URL
    /// are an error rather than silently unused.
    fn tls_settings(&self, url: &str) -> Result<Option<ClientTlsConfig>> {
        let options_given =
            self.ca_certificate.is_some() || self.identity.is_some() || self.tls_domain.is_some();
        if !url.starts_with("https://") {
            if options_given {
                return Err(Error::InvalidTls(format!(
                    "a CA, client certificate or TLS domain needs an https:// server URL, not {url}"
                )));
            }
            return Ok(None);
        }
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca_certificate {
            Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
            None => tls.with_native_roots(),
        };
        if let Some((certificate, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(certificate, key));
        }
        if let Some(domain) = &self.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        Ok(Some(tls))
    }
}

/// The credentials added to each request.
#[derive(Clone, Default)]
pub struct Credentials {
    authorization: Option<MetadataValue<Ascii>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    fn bearer(token: Option<&str>) -> Result<Credentials> {
        let Some(token) = token else {
            return Ok(Credentials::default());
        };
        let mut value: MetadataValue<Ascii> = format!("Bearer {token}").parse().map_err(|_| {
            Error::InvalidToken("a token is printable ASCII without spaces".to_owned())
        })?;
        value.set_sensitive(true);
        Ok(Credentials {
            authorization: Some(value),
        })
    }
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
