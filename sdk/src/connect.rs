//! How a [`Client`](crate::Client) reaches the server: the address, and the
//! credentials it presents on every call.

use std::fmt;

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use crate::{Client, Error, Result};

/// The channel every generated client of [`Client`] uses: the connection with
/// the caller's credentials added to each request.
pub(crate) type AuthedChannel = InterceptedService<Channel, Credentials>;

/// Builds a [`Client`]: `Client::builder(url).token(token).connect().await`.
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ClientBuilder {
    pub(crate) fn new(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
        }
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
        let url = self.url;
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|source| Error::Connect {
                url: url.clone(),
                source,
            })?
            // Log streams move a lot of data: HTTP/2's 64 KiB default windows would
            // make them wait on acknowledgements.
            .initial_connection_window_size(Some(8 * 1024 * 1024))
            .initial_stream_window_size(Some(2 * 1024 * 1024));
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| Error::Connect { url, source })?;
        Ok(Client::with_credentials(channel, credentials))
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
