//! cooper's domain: validated names, the directory's things, the access decision, and the ports
//! that adapters implement. Nothing here knows AWS, Lambda or HTTP.
#![deny(clippy::indexing_slicing)]

pub mod access;
pub mod admin;
pub mod approval;
pub mod audit;
pub mod catalog;
pub mod clock;
pub mod console;
pub mod factors;
pub mod issue;
pub mod ledger;
pub mod limits;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod model;
pub mod names;
pub mod notify;
pub mod password;
pub mod ports;
pub mod rate;
pub mod session;
pub mod sessions;
pub mod token;
pub mod totp;
