//! What taking back what cooper handed out is made of: the record of a person's ended cooper
//! sessions (`sessions`), and the deny that ends the AWS sessions issued to them (`policy`).
//! The use cases that write them are in `crate::signout` and `crate::admin`.

pub mod policy;
pub mod sessions;

pub use sessions::{SessionId, SessionRef, SessionRevocations};
