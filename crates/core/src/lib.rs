//! cooper's domain: validated names, the directory's things, the access decision, and the ports
//! that adapters implement. Nothing here knows AWS, Lambda or HTTP.
#![deny(clippy::indexing_slicing)]

/// Gives a string newtype its schema (with the `openapi` feature): `$pattern` is the same rules as
/// the type's `parse`, which a test checks on samples.
macro_rules! string_schema {
    ($name:ident, $pattern:expr, $lengths:expr, $description:literal, $example:expr) => {
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::schema::string($pattern, $lengths, $description, $example)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

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
pub mod requests;
pub mod revocation;
pub mod rotation;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod session;
pub mod sessions;
pub mod signout;
pub mod tags;
pub mod token;
pub mod totp;
