//! `gorp-slack`: the shared gateway command line (flags, env, config file),
//! then the runner with the Slack platform until SIGINT/SIGTERM, a rejected
//! token or a fatal error.

mod api;
mod config;
mod convert;
mod error;
mod platform;
mod socket;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    gorp_gateway::cli::run_binary("gorp-slack", |args: &config::Args| {
        let slack = platform::Slack::new(&args.slack_bot_token, &args.slack_app_token, &args.slack())
            .map_err(|why| format!("cannot set up the slack client: {why}"))?;
        Ok((args.gateway()?, slack))
    })
    .await
}
