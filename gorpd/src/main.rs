//! The `gorpd` binary: flags and config, logging, signals, serve.

use clap::Parser;
use gorpd::config::{Config, Flags};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Exit code for a configuration error (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let flags = match Flags::try_parse() {
        Ok(flags) => flags,
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            // One line, like every other configuration error.
            let message = error.to_string();
            let first = message.lines().next().unwrap_or_default().trim_start_matches("error: ");
            eprintln!("gorpd: {first} (see gorpd --help)");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match Config::load(&flags) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("gorpd: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let telemetry = match gorp_telemetry::init("gorpd", config.otlp_endpoint.as_deref()) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("gorpd: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(backup) = &flags.restore {
        if config.store_url.is_some() {
            eprintln!(
                "gorpd: --restore puts a SQLite backup in the data directory; to move one into Postgres use --migrate-from"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        return restore(backup, &config.data_dir).await;
    }
    if let Some(source) = &flags.migrate_from {
        let Some(url) = &config.store_url else {
            eprintln!("gorpd: --migrate-from copies into Postgres: set --store-url (or GORP_STORE_URL, store_url) too");
            return ExitCode::from(EXIT_CONFIG);
        };
        return migrate(source, url, &config.data_dir).await;
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let result = async {
        let listeners = gorpd::Listeners::bind(&config).await.map_err(|e| anyhow::anyhow!("cannot listen: {e}"))?;
        gorpd::serve(config, listeners, shutdown).await.map_err(anyhow::Error::from)
    };
    let result = result.await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gorpd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `gorpd --restore FILE`: puts a backup in place as the data directory's database.
async fn restore(backup: &std::path::Path, data_dir: &std::path::Path) -> ExitCode {
    match gorpd::store::restore(backup, data_dir).await {
        Ok(restored) => {
            println!(
                "restored {} ({} bytes, {} sessions) to {}; start gorpd to serve it",
                backup.display(),
                restored.bytes,
                restored.sessions,
                restored.database.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gorpd: cannot restore {}: {error}", backup.display());
            ExitCode::FAILURE
        }
    }
}

/// `gorpd --store-url URL --migrate-from FILE`: copies a SQLite store into Postgres.
async fn migrate(source: &std::path::Path, url: &str, data_dir: &std::path::Path) -> ExitCode {
    if let Err(error) = std::fs::create_dir_all(data_dir) {
        eprintln!("gorpd: cannot create {}: {error}", data_dir.display());
        return ExitCode::FAILURE;
    }
    match gorpd::store::sqlite_into_postgres(source, url, data_dir).await {
        Ok(migrated) => {
            let tables: Vec<String> = migrated.rows.iter().map(|(table, rows)| format!("{table} {rows}")).collect();
            println!(
                "copied {} rows from {} into Postgres ({}); start gorpd with the same store_url to serve them",
                migrated.total(),
                source.display(),
                tables.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gorpd: cannot migrate {}: {error}", source.display());
            ExitCode::FAILURE
        }
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping");
    shutdown.cancel();
}
