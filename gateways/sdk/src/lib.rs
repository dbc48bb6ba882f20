//! gorp-gateway: everything every chat gateway shares.
//!
//! A platform binary (Telegram, Slack, Matrix) implements [`Platform`] for
//! its own I/O and hands it to a [`Runner`], which connects to gorpd with the
//! gateway token, publishes inbound messages with retry until acknowledged,
//! subscribes to final responses (acking each once the platform took it),
//! shows streamed chunks as a message edited in place, paces calls at the
//! platform's documented rates per channel and honours its rate limits,
//! enforces the allow-list, and reconnects with backoff until shut down.
//! [`split_message`] splits long answers without breaking code fences;
//! [`SentMessages`] makes a platform's sends idempotent on the outbound id;
//! [`cli`] is the command line and process life every gateway binary
//! shares. An optional spool ([`SpoolConfig`]) keeps inbound messages on
//! disk while gorpd is away. The `testkit` feature adds an in-memory
//! platform for tests; the `conformance` feature the suite of scenarios
//! every gateway binary passes through its platform's driver.

mod allow;
mod backoff;
mod chunking;
pub mod cli;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod files;
mod health;
mod listen;
mod metrics;
mod pacing;
mod platform;
mod probe;
mod runner;
mod sent;
mod spool;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use allow::{AllowList, NOT_ALLOWED_TEXT};
pub use backoff::{Backoff, BackoffConfig};
pub use chunking::split_message;
pub use config::{GatewayConfig, Secret};
pub use error::GatewayError;
pub use files::UploadError;
pub use listen::{Ack, AckHandle, ListenContext, PlatformHealth, SubmitError};
pub use pacing::Rate;
pub use platform::{
    Delivered, Edit, Inbound, InboundFile, Limits, Outbound, OutboundFile, OutboundKind, PermissionChoice,
    PermissionPrompt, Platform, PlatformError,
};
pub use runner::{ConnectionState, Runner};
pub use sent::SentMessages;
pub use spool::{SpoolConfig, SpoolError, SpoolStats};
