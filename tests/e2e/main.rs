//! End-to-end tests: moto (started per test by the harness), the real routers, and the CLI.

// Test code: a failed unwrap is a failed test, and the wall clock is what the server reads too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod access;
mod access_requests;
mod admin;
mod approvals;
mod architecture;
mod atomic;
mod audit;
mod bad_input;
mod cargo_lambda;
mod cli;
mod concurrency;
mod console;
mod contract;
mod credentials;
mod faults;
mod harness;
mod lambda;
mod leaks;
mod limits;
mod notices;
mod observability;
mod oidc;
mod policies;
mod revocation;
mod rotation;
mod saml;
mod scale;
mod security;
mod session_tags;
mod totp;
mod web;
