//! Reaching gorpd through gorp-client's connection settings (TLS for
//! `https://`, the bearer token), and which gRPC statuses end the runner
//! instead of a retry.

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use gorp_client::{Client, Error};
use tonic::{Code, Status};

/// An authenticated Bus client.
pub(crate) type Bus = gorp_client::BusApi;

/// Everything needed to open connections, checked once up front.
#[derive(Clone)]
pub(crate) struct Connector {
    client: Client,
}

impl Connector {
    /// Validates the URL, TLS settings and token (through gorp-client, which
    /// also sets TCP_NODELAY and HTTP/2 keepalive).
    pub(crate) fn new(config: &GatewayConfig) -> Result<Self, GatewayError> {
        let token = config.token.expose().trim();
        if token.is_empty() {
            // A gateway never falls back to a local admin token.
            return Err(GatewayError::Config("the gateway token is empty".to_owned()));
        }
        let mut builder = Client::builder(config.gorpd.clone()).token(token);
        if let Some(pem) = &config.ca_cert {
            builder = builder.ca_cert_pem(pem.clone());
        }
        let client = builder.build().map_err(|error| match error {
            Error::Config(reason) if reason.starts_with("the token") => {
                GatewayError::Config(reason.replacen("the token", "the gateway token", 1))
            }
            Error::Config(reason) => GatewayError::Config(format!("gorpd URL {reason}")),
            other => GatewayError::Config(other.to_string()),
        })?;
        Ok(Self { client })
    }

    /// The client, for calls beside the streams (file uploads and downloads).
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// A client on a fresh, lazily connecting channel.
    pub(crate) fn bus(&self) -> Bus {
        self.client.fresh_bus_api()
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
pub(crate) use gorp_client::describe;
