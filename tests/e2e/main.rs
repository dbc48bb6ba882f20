//! End-to-end tests across processes: a real gorpd (in-process on port 0)
//! and clients that are separate programs.
#![allow(missing_docs, unreachable_pub)]

mod browser;
mod chat_gateways;
mod files;
mod gateways;
mod python_client;
mod traces;
mod web_chat;
mod web_ui;
