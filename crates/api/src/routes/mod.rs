//! Route handlers, one module per resource.

pub mod credentials;
pub mod targets;
