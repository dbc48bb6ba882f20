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

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // A workspace build links two rustls providers; pick ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(*shell, &mut Cli::command(), "gorpctl", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    match commands::run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&cli, &error);
            ExitCode::from(error.exit_code())
        }
    }
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
