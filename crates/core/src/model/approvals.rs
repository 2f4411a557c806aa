//! Requests for a second person's approval, as they are stored.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::{Entropy, EntropyUnavailable};
use crate::names::{InvalidValue, Reason, TargetName, UserName};

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApprovalId(String);

impl ApprovalId {
    pub fn generate(entropy: &dyn Entropy) -> Result<Self, EntropyUnavailable> {
        let mut bytes = [0u8; 16];
        entropy.fill(&mut bytes)?;
        Ok(Self(hex::encode(bytes)))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        if value.len() == 32
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidValue::new(
                "approval_id",
                "must be 32 lowercase hex digits",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const APPROVAL_ID_PATTERN: &str = "^[0-9a-f]{32}$";
string_schema!(
    ApprovalId,
    APPROVAL_ID_PATTERN,
    (None, None),
    "An approval request's id: 32 lowercase hex digits.",
    Some("0123456789abcdef0123456789abcdef")
);

impl TryFrom<String> for ApprovalId {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ApprovalId> for String {
    fn from(value: ApprovalId) -> String {
        value.0
    }
}

impl fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApprovalId({})", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Used,
}

/// A request for a second person's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: ApprovalId,
    pub requester: UserName,
    pub target: TargetName,
    pub reason: Reason,
    pub status: ApprovalStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<UserName>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub approved_at: Option<OffsetDateTime>,
}
