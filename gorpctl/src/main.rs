//! gorpctl: a thin gRPC client over gorpd's Control API for people and
//! scripts. Tables by default, `--json` for scripts, documented exit codes.

mod automation;
mod backup;
mod certs;
mod cli;
mod commands;
mod connect;
mod doctor;
mod error;
mod files;
mod output;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use error::CliError;
use std::process::ExitCode;
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // A workspace build links two rustls providers; pick ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(*shell, &mut Cli::command(), "gorpctl", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    // With OTEL_EXPORTER_OTLP_ENDPOINT set, the command's calls join gorpd's traces.
    let telemetry = match gorp_telemetry::init_traces_only("gorpctl") {
        Ok(telemetry) => telemetry,
        Err(error) => {
            let error = CliError::Usage(error.to_string());
            report(&cli, &error);
            return ExitCode::from(error.exit_code());
        }
    };
    let span = tracing::info_span!("gorpctl", command = command_name(&cli.command));
    let result = commands::run(&cli).instrument(span).await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&cli, &error);
            ExitCode::from(error.exit_code())
        }
    }
}

/// The subcommand's name (`Session`, `Tell`, ...), for the trace; never its arguments.
fn command_name(command: &Command) -> String {
    let debug = format!("{command:?}");
    debug.split([' ', '(', '{']).next().unwrap_or_default().to_owned()
}

fn report(cli: &Cli, error: &CliError) {
    if cli.json {
        let body = serde_json::json!({ "error": { "kind": error.kind(), "message": error.to_string(), "hint": error.hint() } });
        eprintln!("{body}");
        return;
    }
    eprintln!("gorpctl: {error}");
    if let Some(hint) = error.hint() {
        eprintln!("hint: {hint}");
    }
}
