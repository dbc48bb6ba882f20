//! Reaching gorpd: the endpoint (TLS for `https://`), the bearer token, and
//! which gRPC statuses end the runner instead of a retry.

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use gorp_proto::v1::bus_client::BusClient;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub(crate) struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// An authenticated Bus client.
pub(crate) type Bus = BusClient<InterceptedService<Channel, Bearer>>;

/// Everything needed to open connections, checked once up front.
#[derive(Clone)]
pub(crate) struct Connector {
    endpoint: Endpoint,
    bearer: Bearer,
}

impl Connector {
    /// Validates the URL, TLS settings and token.
    pub(crate) fn new(config: &GatewayConfig) -> Result<Self, GatewayError> {
        let url = &config.gorpd;
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|_| GatewayError::Config(format!("gorpd URL {url:?} is not a URL like http://127.0.0.1:7730")))?
            .connect_timeout(Duration::from_secs(5))
            // Acks and deliveries are small frames: send them at once, not after Nagle's delay.
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        match endpoint.uri().scheme_str() {
            Some("http") => {}
            Some("https") => {
                let mut tls = ClientTlsConfig::new().with_native_roots();
                if let Some(pem) = &config.ca_cert {
                    tls = tls.ca_certificate(Certificate::from_pem(pem));
                }
                endpoint = endpoint.tls_config(tls).map_err(|e| GatewayError::Config(e.to_string()))?;
            }
            _ => return Err(GatewayError::Config(format!("gorpd URL {url:?} must start with http:// or https://"))),
        }
        let token = config.token.expose().trim();
        if token.is_empty() {
            return Err(GatewayError::Config("the gateway token is empty".to_owned()));
        }
        let value = format!("Bearer {token}").parse().map_err(|_| {
            GatewayError::Config("the gateway token contains characters that cannot be sent".to_owned())
        })?;
        Ok(Self { endpoint, bearer: Bearer(value) })
    }

    /// A client on a fresh, lazily connecting channel.
    pub(crate) fn bus(&self) -> Bus {
        BusClient::with_interceptor(self.endpoint.connect_lazy(), self.bearer.clone())
    }
}

/// A status that retrying cannot fix, as the error that ends the runner.
pub(crate) fn fatal(status: &Status) -> Option<GatewayError> {
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => Some(GatewayError::Unauthorized(status.message().to_owned())),
        Code::InvalidArgument => Some(GatewayError::Refused(status.message().to_owned())),
        _ => None,
    }
}

/// A readable reason for a lost connection, with the transport's cause.
pub(crate) fn describe(status: &Status) -> String {
    let mut reason = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
}
