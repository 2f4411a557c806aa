//! Requests for a second person's approval, as they are stored.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::names::{Reason, TargetName, UserName};

hex_id!(
    /// An approval request's id.
    ApprovalId,
    "approval_id",
    "An approval request's id: 32 lowercase hex digits."
);

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
    /// Who was asked: the target's approvers when the request was made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<crate::model::Principal>,
}
