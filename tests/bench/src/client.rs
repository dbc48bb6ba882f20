//! gRPC clients for gorpd's public API: bearer-token channels with
//! TCP_NODELAY, readiness through `grpc.health.v1`, and gateway tokens.

use anyhow::{Context, Result, bail};
use gorp_client::Client;
use gorp_proto::v1 as pb;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Longest wait for the answer to one unary call or for a stream to open.
pub(crate) const CALL_LIMIT: Duration = Duration::from_secs(30);

/// The health service name gorpd reports as SERVING once the Bus is up.
const BUS_SERVICE: &str = "gorp.v1.Bus";

/// An authenticated Control client.
pub(crate) type Control = gorp_client::ControlApi;
/// An authenticated Bus client.
pub(crate) type Bus = gorp_client::BusApi;

/// A gorp-client for `addr` (TCP_NODELAY, bearer `token`), connected: one HTTP/2 connection.
async fn connect(addr: SocketAddr, token: &str) -> Result<Client> {
    let client = Client::builder(format!("http://{addr}")).token(token).keepalive(None).connect().await;
    client.with_context(|| format!("cannot connect to gorpd at {addr}"))
}

/// A Control client on its own connection.
pub(crate) async fn control(addr: SocketAddr, token: &str) -> Result<Control> {
    Ok(connect(addr, token).await?.control_api().max_decoding_message_size(64 * 1024 * 1024))
}

/// A Bus client on its own connection.
pub(crate) async fn bus(addr: SocketAddr, token: &str) -> Result<Bus> {
    Ok(connect(addr, token).await?.bus_api())
}

/// Waits until gorpd answers SERVING for the Bus, polling until `deadline`.
///
/// `alive` is called between attempts so a crashed server fails at once.
pub(crate) async fn wait_serving(
    addr: SocketAddr,
    deadline: Instant,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    loop {
        alive()?;
        if check_once(addr).await.unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("gorpd at {addr} was not SERVING before the deadline");
        }
        // Refused connections come back at once; a short pause keeps this from spinning.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn check_once(addr: SocketAddr) -> Result<bool> {
    let channel = Client::builder(format!("http://{addr}")).keepalive(None).connect_unauthenticated().await?;
    let request = HealthCheckRequest { service: BUS_SERVICE.to_owned() };
    let answer = tokio::time::timeout(Duration::from_secs(10), HealthClient::new(channel).check(request)).await??;
    Ok(answer.into_inner().status == ServingStatus::Serving as i32)
}

/// Creates a gateway token for `platform` and returns its secret.
pub(crate) async fn gateway_token(control: &mut Control, platform: &str) -> Result<String> {
    let request = pb::CreateTokenRequest {
        name: format!("bench-{platform}"),
        kind: pb::TokenKind::Gateway as i32,
        platform: platform.to_owned(),
    };
    let created = bounded(&format!("CreateToken for {platform}"), control.create_token(request)).await?;
    Ok(created.into_inner().secret)
}

/// Awaits a gRPC call for at most `CALL_LIMIT`, naming `what` in the error.
pub(crate) async fn bounded<T>(what: &str, call: impl Future<Output = Result<T, tonic::Status>>) -> Result<T> {
    match tokio::time::timeout(CALL_LIMIT, call).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(status)) => Err(anyhow::Error::new(status).context(what.to_owned())),
        Err(_) => bail!("{what}: no answer within {CALL_LIMIT:?}"),
    }
}

/// A `Channel` message.
pub(crate) fn channel(platform: &str, channel_id: &str) -> pb::Channel {
    pb::Channel { platform: platform.to_owned(), channel_id: channel_id.to_owned() }
}
