//! `gorp-telegram`: the shared gateway command line (flags, env, config
//! file), then the runner with the Telegram platform until SIGINT/SIGTERM, a
//! rejected token or a fatal error.

mod api;
mod config;
mod convert;
mod error;
mod platform;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    gorp_gateway::cli::run_binary("gorp-telegram", |args: &config::Args| {
        let telegram = platform::Telegram::new(&args.telegram_token, args.telegram_api_url.clone(), &args.allowed());
        Ok((args.gateway()?, telegram))
    })
    .await
}
