//! Reaching gorpd: the URL (TLS for `https://`, with an optional CA), the
//! bearer token (given, `GORP_TOKEN`, or a local gorpd's admin token file),
//! and the transport settings every gorp client wants (`TCP_NODELAY`,
//! HTTP/2 keepalive, a connect timeout).
//!
//! [`ClientBuilder::build`] checks everything without any I/O;
//! [`ClientBuilder::connect`] also opens the connection, so an unreachable
//! gorpd is reported at once.

use crate::error::Error;
use crate::local::{ADMIN_TOKEN_FILE, default_data_dir};
use gorp_proto::v1::bus_client::BusClient;
use gorp_proto::v1::control_client::ControlClient;
use std::path::PathBuf;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The environment variable a token is read from when none is given.
pub const TOKEN_ENV: &str = "GORP_TOKEN";

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    /// An interceptor sending `token`; fails for an empty token or one with
    /// characters a header cannot carry.
    pub fn new(token: &str) -> Result<Self, Error> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Error::NoToken("the token is empty".to_owned()));
        }
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Error::Config("the token contains characters that cannot be sent".to_owned()))?;
        Ok(Self(value))
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel that authenticates every request.
pub type AuthChannel = InterceptedService<Channel, BearerToken>;
/// The generated Control client, authenticated (for calls [`Client`] does not wrap).
pub type ControlApi = ControlClient<AuthChannel>;
/// The generated Bus client, authenticated.
pub type BusApi = BusClient<AuthChannel>;

/// Settings for a [`Client`]; start with [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    data_dir: Option<PathBuf>,
    ca_cert: Option<CaCert>,
    connect_timeout: Duration,
    keepalive: Option<Duration>,
}

#[derive(Debug, Clone)]
enum CaCert {
    File(PathBuf),
    Pem(Vec<u8>),
}

impl ClientBuilder {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            data_dir: None,
            ca_cert: None,
            connect_timeout: Duration::from_secs(5),
            keepalive: Some(Duration::from_secs(20)),
        }
    }

    /// The token to send. Without one, `GORP_TOKEN` is used, else the admin
    /// token file of a local gorpd (see [`ClientBuilder::data_dir`]).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The data directory whose `admin.token` is read when no token is given
    /// [default: gorpd's default, [`crate::default_data_dir`]].
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// A PEM file with the CA that signed gorpd's certificate (for `https://`
    /// with a private CA); the system's roots are trusted as well.
    pub fn ca_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(CaCert::File(path.into()));
        self
    }

    /// The CA certificate as PEM bytes, like [`ClientBuilder::ca_cert_file`].
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_cert = Some(CaCert::Pem(pem.into()));
        self
    }

    /// How long opening a connection may take [default: 5 s].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// HTTP/2 keepalive pings every `interval` so a dead connection is noticed
    /// [default: 20 s]; `None` turns them off.
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.keepalive = interval;
        self
    }

    /// Checks the settings and finds the token, without any I/O on the
    /// network: the connection opens on the first call. Call it inside a
    /// Tokio runtime.
    pub fn build(self) -> Result<Client, Error> {
        let endpoint = self.endpoint()?;
        let bearer = BearerToken::new(&self.resolve_token()?)?;
        let channel = endpoint.connect_lazy();
        Ok(Client { url: self.url, endpoint, bearer, channel })
    }

    /// Like [`ClientBuilder::build`], then opens the connection.
    pub async fn connect(self) -> Result<Client, Error> {
        let mut client = self.build()?;
        client.channel = client.endpoint.connect().await.map_err(|error| unreachable(&client.url, &error))?;
        Ok(client)
    }

    /// Opens a connection that sends no token, for services gorpd serves
    /// without one (`grpc.health.v1`); needs no token to be found.
    pub async fn connect_unauthenticated(self) -> Result<Channel, Error> {
        let endpoint = self.endpoint()?;
        endpoint.connect().await.map_err(|error| unreachable(&self.url, &error))
    }

    fn endpoint(&self) -> Result<Endpoint, Error> {
        let url = &self.url;
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|_| Error::Config(format!("{url:?} is not a URL like http://127.0.0.1:7730")))?
            .connect_timeout(self.connect_timeout)
            // Acks and deliveries are small frames: send them at once, not after Nagle's delay.
            .tcp_nodelay(true);
        if let Some(interval) = self.keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true);
        }
        match endpoint.uri().scheme_str() {
            Some("http") => Ok(endpoint),
            Some("https") => endpoint.tls_config(self.tls()?).map_err(|e| Error::Config(e.to_string())),
            _ => Err(Error::Config(format!("{url:?} must start with http:// or https://"))),
        }
    }

    fn tls(&self) -> Result<ClientTlsConfig, Error> {
        let tls = ClientTlsConfig::new().with_native_roots();
        let pem = match &self.ca_cert {
            None => return Ok(tls),
            Some(CaCert::Pem(pem)) => pem.clone(),
            Some(CaCert::File(path)) => std::fs::read(path)
                .map_err(|e| Error::Config(format!("cannot read the CA certificate {}: {e}", path.display())))?,
        };
        Ok(tls.ca_certificate(Certificate::from_pem(pem)))
    }

    /// The given token, else `GORP_TOKEN`, else `<data dir>/admin.token`.
    fn resolve_token(&self) -> Result<String, Error> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        if let Some(token) = std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty()) {
            return Ok(token);
        }
        let path = self.data_dir.clone().unwrap_or_else(default_data_dir).join(ADMIN_TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(token) if !token.trim().is_empty() => Ok(token),
            Ok(_) => Err(Error::NoToken(format!("no token: {} is empty", path.display()))),
            Err(error) => Err(Error::NoToken(format!(
                "no token given, {TOKEN_ENV} is not set and cannot read {}: {error}",
                path.display()
            ))),
        }
    }
}

fn unreachable(url: &str, error: &tonic::transport::Error) -> Error {
    let cause = std::error::Error::source(error).map(ToString::to_string).unwrap_or_else(|| error.to_string());
    Error::Unreachable { url: url.to_owned(), cause }
}

/// A connection to gorpd with a token: cheap to clone (clones share the
/// connection). Opens publishers, subscriptions and bind feeds, and makes
/// typed Control calls.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    endpoint: Endpoint,
    bearer: BearerToken,
    channel: Channel,
}

impl Client {
    /// Settings for a client of the gorpd at `url` (`http://host:port` or `https://host:port`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// The URL this client talks to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The generated Control client on this connection, for every Control
    /// call (those [`Client`] wraps take plain arguments instead).
    pub fn control_api(&self) -> ControlApi {
        ControlClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// The generated Bus client on this connection.
    pub fn bus_api(&self) -> BusApi {
        BusClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// A Bus client on a connection of its own that opens lazily: what a
    /// long-lived stream uses after its connection broke.
    pub fn fresh_bus_api(&self) -> BusApi {
        BusClient::with_interceptor(self.endpoint.connect_lazy(), self.bearer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_before_any_io() {
        let error = Client::builder("ftp://x").token("t").build().unwrap_err();
        assert!(error.to_string().contains("must start with http:// or https://"), "{error}");
        let error = Client::builder("not a url").token("t").build().unwrap_err();
        assert!(error.to_string().contains("is not a URL"), "{error}");
        let error = Client::builder("http://127.0.0.1:1").token("  ").build().unwrap_err();
        assert!(matches!(error, Error::NoToken(_)), "{error}");
        let error = Client::builder("http://127.0.0.1:1").token("a\nb").build().unwrap_err();
        assert!(error.to_string().contains("cannot be sent"), "{error}");
        let error = Client::builder("https://127.0.0.1:1").token("t").ca_cert_file("/nonexistent.pem").build();
        assert!(error.unwrap_err().to_string().contains("cannot read the CA certificate /nonexistent.pem"));
    }

    #[test]
    fn the_token_comes_from_the_data_directory_when_none_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Client::builder("http://127.0.0.1:1").data_dir(dir.path()).resolve_token_for_test();
        if std::env::var_os(TOKEN_ENV).is_none() {
            assert!(missing.unwrap_err().to_string().contains("admin.token"));
            std::fs::write(dir.path().join(ADMIN_TOKEN_FILE), "gorp_secret\n").unwrap();
            let found = Client::builder("http://127.0.0.1:1").data_dir(dir.path()).resolve_token_for_test();
            assert_eq!(found.unwrap().trim(), "gorp_secret");
        }
        let given = Client::builder("http://127.0.0.1:1").token("mine").data_dir(dir.path()).resolve_token_for_test();
        assert_eq!(given.unwrap(), "mine");
    }

    #[tokio::test]
    async fn the_token_is_not_printed() {
        let client = Client::builder("http://127.0.0.1:1").token("gorp_secret").build().unwrap();
        assert!(!format!("{client:?}").contains("gorp_secret"));
    }

    impl ClientBuilder {
        fn resolve_token_for_test(&self) -> Result<String, Error> {
            self.resolve_token()
        }
    }
}
