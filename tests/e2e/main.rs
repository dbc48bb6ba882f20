//! End-to-end tests across processes: a real gorpd (in-process on port 0)
//! and clients that are separate programs.
#![allow(missing_docs)]

mod python_client;
