//! Reaching gorpd: the URL (TLS for `https://`, with an optional CA), the
//! bearer token (given, `GORP_TOKEN`, or a local gorpd's admin token file),
//! and the transport settings every gorp client wants (`TCP_NODELAY`,
//! HTTP/2 keepalive, a connect timeout).
//!
//! [`ClientBuilder::build`] checks everything without any I/O;
//! [`ClientBuilder::connect`] also opens the connection, so an unreachable
//! gorpd is reported at once.
//!
//! Several gorpd replicas are given as one comma-separated list of URLs.
//! `connect` takes the first that answers, in order; every fresh connection
//! a long-lived stream opens after a break ([`Client::fresh_bus_api`]) goes
//! to the next URL in turn, so a publisher or subscription moves on to
//! another replica when its replica goes away.

use crate::error::Error;
use crate::local::{ADMIN_TOKEN_FILE, default_data_dir};
use gorp_proto::v1::bus_client::BusClient;
use gorp_proto::v1::control_client::ControlClient;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The environment variable a token is read from when none is given.
pub const TOKEN_ENV: &str = "GORP_TOKEN";

/// Adds `authorization: Bearer <token>` to every request, and the calling
/// span's W3C `traceparent` when the caller exports traces, so gorpd's spans
/// for the call join the caller's trace.
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
        if let Some(value) = gorp_telemetry::current_traceparent().and_then(|traceparent| traceparent.parse().ok()) {
            request.metadata_mut().insert(gorp_telemetry::TRACEPARENT, value);
        }
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
    /// network: the connection (to the first URL) opens on the first call.
    /// Call it inside a Tokio runtime.
    pub fn build(self) -> Result<Client, Error> {
        let endpoints = Endpoints::new(self.endpoints()?);
        let bearer = BearerToken::new(&self.resolve_token()?)?;
        let (url, endpoint) = endpoints.first();
        let channel = endpoint.connect_lazy();
        Ok(Client { url: url.to_owned(), endpoints, bearer, channel })
    }

    /// Like [`ClientBuilder::build`], then opens the connection: to the
    /// first URL that answers, in the order given.
    pub async fn connect(self) -> Result<Client, Error> {
        let mut client = self.build()?;
        let (index, url, channel) = client.endpoints.connect_first().await?;
        client.endpoints.start_turns_at(index);
        (client.url, client.channel) = (url, channel);
        Ok(client)
    }

    /// Opens a connection that sends no token, for services gorpd serves
    /// without one (`grpc.health.v1`), to the first URL that answers; needs
    /// no token to be found.
    pub async fn connect_unauthenticated(self) -> Result<Channel, Error> {
        let (_, _, channel) = Endpoints::new(self.endpoints()?).connect_first().await?;
        Ok(channel)
    }

    /// One endpoint per URL of the comma-separated list.
    fn endpoints(&self) -> Result<Vec<(String, Endpoint)>, Error> {
        let urls: Vec<&str> = self.url.split(',').map(str::trim).filter(|url| !url.is_empty()).collect();
        if urls.is_empty() {
            return Err(Error::Config("no gorpd URL given (e.g. http://127.0.0.1:7730)".to_owned()));
        }
        urls.into_iter().map(|url| Ok((url.to_owned(), self.endpoint(url)?))).collect()
    }

    fn endpoint(&self, url: &str) -> Result<Endpoint, Error> {
        let mut endpoint = Endpoint::from_shared(url.to_owned())
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

/// The transport's reason a connection failed.
fn cause_of(error: &tonic::transport::Error) -> String {
    std::error::Error::source(error).map(ToString::to_string).unwrap_or_else(|| error.to_string())
}

/// gorpd's URLs (one, or one per replica) and which one the next fresh
/// connection goes to; shared by a client's clones.
#[derive(Debug, Clone)]
struct Endpoints {
    all: Arc<[(String, Endpoint)]>,
    turn: Arc<AtomicUsize>,
}

impl Endpoints {
    fn new(all: Vec<(String, Endpoint)>) -> Self {
        Self { all: all.into(), turn: Arc::new(AtomicUsize::new(0)) }
    }

    fn first(&self) -> (&str, &Endpoint) {
        let (url, endpoint) = &self.all[0];
        (url, endpoint)
    }

    /// Makes `index` the URL the next fresh connection goes to.
    fn start_turns_at(&self, index: usize) {
        self.turn.store(index, Ordering::Relaxed);
    }

    /// The URL whose turn it is (each call moves the turn on).
    fn next(&self) -> &Endpoint {
        let index = self.turn.fetch_add(1, Ordering::Relaxed) % self.all.len();
        &self.all[index].1
    }

    /// Connects to the first URL that answers, in order: its index, URL and
    /// connection; when none does, every URL with its reason.
    async fn connect_first(&self) -> Result<(usize, String, Channel), Error> {
        let mut causes = Vec::with_capacity(self.all.len());
        for (index, (url, endpoint)) in self.all.iter().enumerate() {
            match endpoint.connect().await {
                Ok(channel) => return Ok((index, url.clone(), channel)),
                Err(error) => causes.push((url.as_str(), cause_of(&error))),
            }
        }
        Err(match causes.as_slice() {
            [(url, cause)] => Error::Unreachable { url: (*url).to_owned(), cause: cause.clone() },
            _ => Error::Unreachable {
                url: causes.iter().map(|(url, _)| *url).collect::<Vec<_>>().join(", "),
                cause: causes.iter().map(|(url, cause)| format!("{url}: {cause}")).collect::<Vec<_>>().join("; "),
            },
        })
    }
}

/// A connection to gorpd with a token: cheap to clone (clones share the
/// connection). Opens publishers, subscriptions and bind feeds, and makes
/// typed Control calls.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    endpoints: Endpoints,
    bearer: BearerToken,
    channel: Channel,
}

impl Client {
    /// Settings for a client of the gorpd at `url` (`http://host:port` or
    /// `https://host:port`), or of several replicas: their URLs separated by
    /// commas (`http://a:7730,http://b:7730`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// The URL of the connection this client holds (with several, the one
    /// `connect` reached).
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
    /// long-lived stream uses, and opens again after its connection broke.
    /// With several URLs each one goes to the next URL in turn, starting
    /// with the one `connect` reached.
    pub fn fresh_bus_api(&self) -> BusApi {
        BusClient::with_interceptor(self.endpoints.next().connect_lazy(), self.bearer.clone())
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
        let error = Client::builder("http://127.0.0.1:1, ftp://x").token("t").build().unwrap_err();
        assert!(error.to_string().contains("\"ftp://x\" must start with http://"), "{error}");
        let error = Client::builder(" , ").token("t").build().unwrap_err();
        assert!(error.to_string().contains("no gorpd URL given"), "{error}");
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
