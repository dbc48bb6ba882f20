//! End-to-end tests: the real `gorp-telegram` binary against a real
//! in-process gorpd and the fake Bot API from `gorp-fakes`. The shared
//! conformance suite runs through [`driver::Telegram`]; `gateway` holds the
//! tests that are about Telegram alone.
#![allow(missing_docs)]

mod driver;
mod gateway;

use driver::Telegram;

/// Every gateway's conformance suite, through the Telegram driver.
mod conformance {
    gorp_gateway::conformance_suite!(super::Telegram);
    gorp_gateway::conformance_faults!(super::Telegram);
}
