//! Route handlers, one module per resource.

pub mod approvals;
pub mod credentials;
pub mod factors;
pub mod targets;
