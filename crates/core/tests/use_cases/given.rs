//! What the tests start from: short names for parsed values, and checks every module uses.

use cooper_core::access::{AuthMethod, Identity};
use cooper_core::audit::{AuditEvent, AuditRecord};
use cooper_core::issue::CredentialRequest;
use cooper_core::memory::{MemoryWorld, State};
use cooper_core::model::Principal;
use cooper_core::names::{GroupName, TargetName, UserName};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const A: &str = "111111111111";
pub const B: &str = "222222222222";

pub fn user(name: &str) -> UserName {
    UserName::parse(name).unwrap()
}

pub fn group(name: &str) -> GroupName {
    GroupName::parse(name).unwrap()
}

pub fn target(name: &str) -> TargetName {
    TargetName::parse(name).unwrap()
}

pub fn as_user(name: &str) -> Principal {
    Principal::User(user(name))
}

pub fn as_group(name: &str) -> Principal {
    Principal::Group(group(name))
}

pub fn ask(target_name: &str) -> CredentialRequest {
    CredentialRequest::new(target(target_name))
}

/// `name`, vouched for by the identity provider `https://idp.example` with `groups`.
pub fn oidc(name: &str, groups: &[&str]) -> Identity {
    let mut identity = Identity::new(
        user(name),
        AuthMethod::IdToken("https://idp.example".into()),
    );
    identity.asserted_groups = groups.iter().map(|g| group(g)).collect();
    identity
}

pub fn last_record(w: &MemoryWorld) -> AuditRecord {
    w.audit().unwrap().pop().expect("an audit record")
}

pub fn records(w: &MemoryWorld, event: AuditEvent) -> Vec<AuditRecord> {
    w.audit()
        .unwrap()
        .into_iter()
        .filter(|r| r.event == event)
        .collect()
}

/// Nothing but the audit trail (and request counts) changed since `before`.
pub fn nothing_changed(w: &MemoryWorld, before: &State) {
    assert_eq!(
        w.state().unwrap().without_trail(),
        before.without_trail(),
        "nothing may change"
    );
}

/// Nothing at all changed since `before`, not even the audit trail.
pub fn nothing_written(w: &MemoryWorld, before: &State) {
    assert_eq!(&w.state().unwrap(), before, "nothing may be written");
}
