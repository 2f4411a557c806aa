//! cooper's HTTP edge: the routers, authentication, strict request parsing and the JSON errors,
//! served by a Lambda (with the `lambda` feature) or by `cooper serve`.
#![deny(clippy::indexing_slicing)]

pub mod auth;
pub mod context;
pub mod error;
pub mod host;
pub mod json;
pub mod jwt;
pub mod metrics;
pub mod notify;
pub mod oidc;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod qr;
pub mod rotation;
pub mod router;
pub mod routes;
#[cfg(feature = "web")]
pub mod saml;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod settings;
pub mod state;
mod table;
pub mod telemetry;
#[cfg(feature = "web")]
pub mod web;
