//! End-to-end tests across processes: a real gorpd (in-process on port 0,
//! or the `gorpd` binary, several replicas of it on one Postgres) and
//! clients that are separate programs.
#![allow(missing_docs, unreachable_pub)]

mod browser;
mod chat_gateways;
mod files;
mod gateways;
mod gorpd_process;
mod python_client;
mod replicas;
mod traces;
mod web_chat;
mod web_ui;
