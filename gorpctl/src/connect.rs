//! Connecting to gorpd through gorp-client: the server URL (TLS for https),
//! and the bearer token from `--token`, `GORP_TOKEN` or the admin token file
//! of a local gorpd; gorp-client's errors become gorpctl's exit codes.

use crate::cli::Cli;
use crate::error::CliError;
use gorp_client::{Client, ClientBuilder, Error};
use tonic::transport::Channel;

/// An authenticated Control client.
pub(crate) type Control = gorp_client::ControlApi;

fn builder(cli: &Cli) -> ClientBuilder {
    let mut builder = Client::builder(cli.server.clone());
    if let Some(token) = cli.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        builder = builder.token(token);
    }
    if let Some(dir) = &cli.data_dir {
        builder = builder.data_dir(dir);
    }
    if let Some(ca) = &cli.ca_cert {
        builder = builder.ca_cert_file(ca);
    }
    // gorpctl's calls are short: no keepalive pings.
    builder.keepalive(None)
}

/// A connection without a token, for the health service.
pub(crate) async fn channel(cli: &Cli) -> Result<Channel, CliError> {
    builder(cli).connect_unauthenticated().await.map_err(|error| cli_error(error, cli))
}

/// A Control client with the resolved token.
pub(crate) async fn control(cli: &Cli) -> Result<Control, CliError> {
    Ok(client(cli).await?.control_api())
}

/// A client with the resolved token (files need the Bus as well as Control).
pub(crate) async fn client(cli: &Cli) -> Result<Client, CliError> {
    builder(cli).connect().await.map_err(|error| cli_error(error, cli))
}

fn cli_error(error: Error, cli: &Cli) -> CliError {
    match error {
        Error::Config(reason) => CliError::Usage(reason),
        Error::NoToken(reason) => CliError::Unauthorized(reason),
        Error::Unreachable { .. } => CliError::Unreachable(error.to_string()),
        Error::Status(status) => CliError::from_status(*status, &cli.server),
        other => CliError::Failed(other.to_string()),
    }
}
