//! Route handlers, one module per resource.

pub mod access_requests;
pub mod admin;
pub mod approvals;
pub mod credentials;
pub mod factors;
pub mod targets;
