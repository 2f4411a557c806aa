//! The use cases over the in-memory adapters (`cooper_core::memory`): every decision tested in
//! milliseconds, without moto. The end-to-end suite (tests/e2e) covers the same paths through
//! the routers, DynamoDB, KMS and STS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod given;

mod access;
mod admin;
mod approvals;
mod audited;
mod factors;
mod issue;
mod ledger;
mod reach;
mod requests;
mod revocation;
mod rotation;
mod session_tags;
mod sessions;
mod step_up;
