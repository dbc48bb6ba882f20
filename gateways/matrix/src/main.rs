//! `gorp-matrix`: the shared gateway command line (flags, env, config file)
//! plus the Matrix settings, then the runner with the Matrix platform until
//! SIGINT/SIGTERM, a refused login or a fatal error.

mod api;
mod config;
mod convert;
mod error;
mod media;
mod platform;
mod state;
mod sync;
mod typing;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    gorp_gateway::cli::run_binary("gorp-matrix", |args: &config::Args| {
        let gateway = args.gateway()?;
        let matrix = platform::Matrix::new(args.matrix()?, gateway.allow.clone())?;
        Ok((gateway, matrix))
    })
    .await
}
