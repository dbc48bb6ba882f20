//! gorpd integration tests: a real gorpd in-process on port 0, driven through
#![allow(unreachable_pub, missing_docs)]
//! the generated gRPC clients.

mod auth;
mod compaction;
mod connection_limits;
mod control;
mod crash;
mod delivery;
mod dispatch;
mod dispatch_scopes;
mod fake_openai;
mod files;
mod fuzz;
mod hooks;
mod limits;
mod metrics;
mod openai;
mod permissions;
mod process;
mod replicas;
mod restart;
mod schedules;
mod storage;
mod support;
mod web;
mod web_sessions;
