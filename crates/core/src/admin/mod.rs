//! Administration: scopes, the admin ports, and the admin use cases.

pub mod scope;
pub mod service;
pub mod store;
