//! Connecting to gorpd: the server URL (TLS for https), and the bearer token
//! from `--token`, `GORP_TOKEN` or the admin token file of a local gorpd.

use crate::cli::Cli;
use crate::error::CliError;
use gorp_proto::v1::control_client::ControlClient;
use std::path::PathBuf;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone, Debug)]
pub(crate) struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// An authenticated Control client.
pub(crate) type Control = ControlClient<InterceptedService<Channel, Bearer>>;

/// Opens a connection to `cli.server`.
pub(crate) async fn channel(cli: &Cli) -> Result<Channel, CliError> {
    let mut endpoint = Endpoint::from_shared(cli.server.clone())
        .map_err(|_| CliError::Usage(format!("--server {:?} is not a URL like http://127.0.0.1:7730", cli.server)))?
        .connect_timeout(Duration::from_secs(5))
        // Small request/response frames must not wait for Nagle's algorithm.
        .tcp_nodelay(true);
    match endpoint.uri().scheme_str() {
        Some("http") => {}
        Some("https") => {
            endpoint = endpoint.tls_config(tls_config(cli)?).map_err(|e| CliError::Usage(e.to_string()))?
        }
        _ => return Err(CliError::Usage(format!("--server {:?} must start with http:// or https://", cli.server))),
    }
    endpoint.connect().await.map_err(|error| {
        let cause = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_else(|| error.to_string());
        CliError::Unreachable(format!("cannot reach gorpd at {}: {cause}", cli.server))
    })
}

fn tls_config(cli: &Cli) -> Result<ClientTlsConfig, CliError> {
    let mut tls = ClientTlsConfig::new().with_native_roots();
    if let Some(path) = &cli.ca_cert {
        let pem = std::fs::read(path).map_err(|e| CliError::Usage(format!("--ca-cert {}: {e}", path.display())))?;
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    Ok(tls)
}

/// A Control client with the resolved token.
pub(crate) async fn control(cli: &Cli) -> Result<Control, CliError> {
    let token = token(cli)?;
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| CliError::Usage("the token contains characters that cannot be sent".to_owned()))?;
    Ok(ControlClient::with_interceptor(channel(cli).await?, Bearer(value)))
}

/// `--token` / `GORP_TOKEN`, else the admin token file of a local gorpd.
fn token(cli: &Cli) -> Result<String, CliError> {
    if let Some(token) = cli.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(token.to_owned());
    }
    let path = cli.data_dir.clone().unwrap_or_else(default_data_dir).join("admin.token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        Ok(_) => Err(CliError::Unauthorized(format!("no token: {} is empty", path.display()))),
        Err(error) => {
            Err(CliError::Unauthorized(format!("no token given and cannot read {}: {error}", path.display())))
        }
    }
}

/// gorpd's default data directory: `$XDG_DATA_HOME/gorp`, else `~/.local/share/gorp`.
fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("gorp");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/gorp"),
        None => PathBuf::from("gorp-data"),
    }
}
