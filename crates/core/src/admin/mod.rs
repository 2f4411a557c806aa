//! Administration: scopes, the admin ports, and the admin use cases (one file per resource, on
//! the kernel's checks and its one way to commit).

mod accounts;
mod audit;
mod grants;
mod groups;
pub mod kernel;
mod reach;
mod revocations;
pub mod scope;
pub mod store;
mod targets;
mod users;

pub use revocations::{HolderReport, RevocationReport, RevokeOn};
pub use targets::{KindSpec, TargetSpec};

pub use kernel::{
    Actor, Admin, AdminCall, AdminConfig, AdminContext, AdminError, ENROLLMENT_CODE_HOURS,
    ISSUED_TOKEN_DAYS, MAX_ENROLLMENT_CODE_HOURS, OPERATOR, Removed, Sensitive, UserDetails,
};
