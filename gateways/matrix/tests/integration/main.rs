//! End-to-end tests: the real `gorp-matrix` binary against a real Synapse
//! and a real in-process gorpd, with real matrix-sdk clients as the users
//! in end-to-end encrypted rooms. The shared conformance suite runs through
//! [`driver::Matrix`]; the other modules hold what is Matrix's alone.
#![allow(missing_docs)]
#![recursion_limit = "256"]

mod driver;
mod fanout;
mod gateway;
mod measure;
mod media;
mod resilience;
mod synapse;
mod user;

use driver::Matrix;
use gorp_gateway::conformance::World;
use std::path::Path;

/// Every gateway's conformance suite, through the Matrix driver.
mod conformance {
    gorp_gateway::conformance_suite!(super::Matrix);
}

/// The device id saved in a gateway state directory.
pub fn saved_device(state: &Path) -> String {
    let session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("session.json")).expect("session.json")).unwrap();
    session["device_id"].as_str().expect("a device id").to_owned()
}
