//! `gorp-telegram`: flags, logging, signals, then the shared runner with the
//! Telegram platform until SIGINT/SIGTERM, a rejected token or a fatal error.

mod api;
mod config;
mod convert;
mod error;
mod platform;

use anyhow::Context as _;
use clap::Parser;
use gorp_gateway::{GatewayError, Runner};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Exit code for a usage or configuration error (EX_USAGE), as gorpd uses.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match config::Args::try_parse() {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            let message = error.to_string();
            let first = message.lines().next().unwrap_or_default().trim_start_matches("error: ");
            eprintln!("gorp-telegram: {first} (see gorp-telegram --help)");
            return std::process::ExitCode::from(EXIT_CONFIG);
        }
    };
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: config::Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let telegram = platform::Telegram::new(&args.telegram_token, args.telegram_api_url.clone(), &args.allowed());
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    match Runner::new(args.gateway(), Arc::new(telegram)).run(shutdown).await {
        Err(GatewayError::Unauthorized(why)) => {
            anyhow::bail!("gorpd rejected the gateway token ({why}); check --token / GORP_TOKEN")
        }
        result => result.context("the telegram gateway stopped"),
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => drop(term.recv().await),
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("stopping");
    shutdown.cancel();
}
