//! gorp-fakes: the one place tests model the chat platforms that cannot run
//! here. Each module is a faithful fake server on 127.0.0.1:0 speaking the
//! platform's documented protocol (including its errors and 429s), with
//! handles for tests to inject user messages and read what a bot sent.
#![allow(missing_docs)]

pub mod multipart;
pub mod process;
pub mod slack;
pub mod telegram;

pub use process::{GatewayProcess, Log, profile_binary};
pub use slack::FakeSlack;
pub use telegram::FakeTelegram;
