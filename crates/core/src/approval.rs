//! Second-person approval: a target can require that someone on its approver list, not the
//! requester, confirms a request with their own fresh code. Inline (the approver types their code
//! into the requester's request) or asynchronous (a request the approver approves later, used once).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::access::{AuthMethod, Caller, Identity};
use crate::clock::{Clock, Entropy, EntropyUnavailable};
use crate::factors::{FactorError, SecondFactor};
use crate::model::{Principal, Target};
use crate::names::{InvalidValue, TargetName, UserName};
use crate::ports::{Directory, UpstreamError};
use crate::totp::TotpCode;

/// How long an approval request stays open, and then how long an approval stays usable.
pub const APPROVAL_LIFETIME: Duration = Duration::hours(1);
pub const MAX_REASON_CHARS: usize = 500;

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
    pub reason: String,
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

/// How a credential request shows its approval.
#[derive(Debug, Clone)]
pub enum ApprovalProof {
    /// The approver is next to the requester and types their own code.
    Inline { approver: UserName, code: TotpCode },
    /// An approved request, used once.
    Approved(ApprovalId),
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(
        "this target needs a second person's approval (approver and approver_totp, or approval_id)"
    )]
    Required,
    #[error("this target does not need approval")]
    NotRequired,
    #[error("nobody may approve their own request")]
    SelfApproval,
    #[error("this user is not on the target's approver list")]
    NotAnApprover,
    #[error("no such approval request")]
    NotFound,
    #[error("the approval request has expired")]
    Expired,
    #[error("the approval request is still waiting for an approver")]
    Pending,
    #[error("the approval request was already decided")]
    AlreadyDecided,
    #[error("the approval was already used")]
    Used,
    #[error("the approval is for another user or target")]
    Mismatch,
    #[error("the reason must be 1 to {MAX_REASON_CHARS} characters")]
    InvalidReason,
    #[error("the approver's code was not accepted: {0}")]
    ApproverFactor(FactorError),
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl ApprovalError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Required => "approval_required",
            Self::NotRequired => "approval_not_required",
            Self::SelfApproval => "self_approval",
            Self::NotAnApprover => "not_an_approver",
            Self::NotFound => "approval_not_found",
            Self::Expired => "approval_expired",
            Self::Pending => "approval_pending",
            Self::AlreadyDecided => "approval_decided",
            Self::Used => "approval_used",
            Self::Mismatch => "approval_mismatch",
            Self::InvalidReason => "invalid_reason",
            Self::ApproverFactor(e) => match e {
                FactorError::NotEnrolled => "approver_not_enrolled",
                FactorError::InvalidCode => "approver_totp_invalid",
                FactorError::Replayed => "approver_totp_replayed",
                FactorError::LockedOut { .. } => "approver_locked_out",
                other => other.code(),
            },
            Self::Entropy(_) => "internal",
            Self::Upstream(_) => "upstream",
        }
    }
}

/// The outcome of an atomic transition of an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Done,
    /// The request was not in the state the transition needs (read it to learn why).
    Refused,
}

/// Where approval requests live.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    async fn create(&self, request: &ApprovalRequest) -> Result<(), UpstreamError>;
    async fn get(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, UpstreamError>;
    /// pending -> approved, if still pending and unexpired at `now`.
    async fn approve(
        &self,
        id: &ApprovalId,
        approver: &UserName,
        now: OffsetDateTime,
    ) -> Result<Transition, UpstreamError>;
    /// approved -> used, if approved, for `requester` and `target`, and unexpired at `now`.
    async fn consume(
        &self,
        id: &ApprovalId,
        requester: &UserName,
        target: &TargetName,
        now: OffsetDateTime,
    ) -> Result<Transition, UpstreamError>;
}

/// Who may approve for `target`: the approver, or a group they are in, is on its list.
pub fn may_approve(target: &Target, approver: &Caller) -> bool {
    target.approvers.iter().any(|p| match p {
        Principal::User(u) => *u == approver.user.name,
        Principal::Group(g) => approver.groups.binary_search(g).is_ok(),
    })
}

/// The approval use cases.
pub struct Approvals {
    pub store: Arc<dyn ApprovalStore>,
    pub directory: Arc<dyn Directory>,
    pub verifier: Arc<SecondFactor>,
    pub entropy: Arc<dyn Entropy>,
    pub clock: Arc<dyn Clock>,
}

impl Approvals {
    /// Opens a request. The caller must already be granted the target (approval adds to a grant,
    /// never replaces one); that check is the caller's, through the issuer.
    pub async fn open(
        &self,
        requester: &UserName,
        target: &Target,
        reason: &str,
    ) -> Result<ApprovalRequest, ApprovalError> {
        if !target.requires_approval() {
            return Err(ApprovalError::NotRequired);
        }
        let reason = reason.trim();
        if reason.is_empty()
            || reason.chars().count() > MAX_REASON_CHARS
            || reason.chars().any(char::is_control)
        {
            return Err(ApprovalError::InvalidReason);
        }
        let now = self.clock.now();
        let request = ApprovalRequest {
            id: ApprovalId::generate(self.entropy.as_ref())?,
            requester: requester.clone(),
            target: target.name.clone(),
            reason: reason.to_owned(),
            status: ApprovalStatus::Pending,
            created_at: now,
            expires_at: now + APPROVAL_LIFETIME,
            approved_by: None,
            approved_at: None,
        };
        self.store.create(&request).await?;
        Ok(request)
    }

    /// Loads `approver` as a checked caller (active, with groups) allowed to approve `target`.
    async fn approver(
        &self,
        approver: Identity,
        requester: &UserName,
        target: &Target,
    ) -> Result<Caller, ApprovalError> {
        if approver.user == *requester {
            return Err(ApprovalError::SelfApproval);
        }
        let profile = self.directory.user_profile(&approver.user).await?;
        // An unknown, disabled or expired user approves nothing.
        let caller = Caller::admit(approver, profile, self.clock.now())
            .map_err(|_| ApprovalError::NotAnApprover)?;
        if !may_approve(target, &caller) {
            return Err(ApprovalError::NotAnApprover);
        }
        Ok(caller)
    }

    /// The approver confirms a pending request with their own fresh code.
    pub async fn approve(
        &self,
        id: &ApprovalId,
        approver: Identity,
        code: &TotpCode,
    ) -> Result<ApprovalRequest, ApprovalError> {
        let request = self.store.get(id).await?.ok_or(ApprovalError::NotFound)?;
        let now = self.clock.now();
        if request.status != ApprovalStatus::Pending {
            return Err(ApprovalError::AlreadyDecided);
        }
        if request.expires_at <= now {
            return Err(ApprovalError::Expired);
        }
        let target = self
            .directory
            .target(&request.target)
            .await?
            .ok_or(ApprovalError::NotFound)?;
        let caller = self.approver(approver, &request.requester, &target).await?;
        self.verifier
            .verify(&caller.user.name, code)
            .await
            .map_err(ApprovalError::ApproverFactor)?;
        match self.store.approve(id, &caller.user.name, now).await? {
            Transition::Done => Ok(ApprovalRequest {
                status: ApprovalStatus::Approved,
                approved_by: Some(caller.user.name),
                approved_at: Some(now),
                ..request
            }),
            // Someone else decided it between our read and our write.
            Transition::Refused => Err(ApprovalError::AlreadyDecided),
        }
    }

    /// A request, for its requester or anyone who may approve it; to others it does not exist.
    pub async fn view(
        &self,
        id: &ApprovalId,
        viewer: Identity,
    ) -> Result<ApprovalRequest, ApprovalError> {
        let request = self.store.get(id).await?.ok_or(ApprovalError::NotFound)?;
        if viewer.user == request.requester {
            return Ok(request);
        }
        let target = self
            .directory
            .target(&request.target)
            .await?
            .ok_or(ApprovalError::NotFound)?;
        let profile = self.directory.user_profile(&viewer.user).await?;
        match Caller::admit(viewer, profile, self.clock.now()) {
            Ok(caller) if may_approve(&target, &caller) => Ok(request),
            _ => Err(ApprovalError::NotFound),
        }
    }

    /// Checks the proof a credential request carries; returns who approved. An approved request
    /// is consumed here, atomically: it is good for one issuance.
    pub async fn check_proof(
        &self,
        requester: &UserName,
        target: &Target,
        proof: Option<&ApprovalProof>,
    ) -> Result<(UserName, Option<ApprovalId>), ApprovalError> {
        match proof.ok_or(ApprovalError::Required)? {
            ApprovalProof::Inline { approver, code } => {
                let identity = Identity::new(approver.clone(), AuthMethod::ApproverCode);
                let caller = self.approver(identity, requester, target).await?;
                self.verifier
                    .verify(&caller.user.name, code)
                    .await
                    .map_err(ApprovalError::ApproverFactor)?;
                Ok((caller.user.name, None))
            }
            ApprovalProof::Approved(id) => {
                let now = self.clock.now();
                match self.store.consume(id, requester, &target.name, now).await? {
                    Transition::Done => {}
                    Transition::Refused => {
                        return Err(self.why_not_usable(id, requester, &target.name, now).await);
                    }
                }
                let request = self.store.get(id).await?.ok_or(ApprovalError::NotFound)?;
                let approver = request.approved_by.ok_or(ApprovalError::Pending)?;
                Ok((approver, Some(id.clone())))
            }
        }
    }

    async fn why_not_usable(
        &self,
        id: &ApprovalId,
        requester: &UserName,
        target: &TargetName,
        now: OffsetDateTime,
    ) -> ApprovalError {
        match self.store.get(id).await {
            Err(e) => e.into(),
            Ok(None) => ApprovalError::NotFound,
            Ok(Some(r)) if r.requester != *requester => ApprovalError::NotFound,
            Ok(Some(r)) if r.target != *target => ApprovalError::Mismatch,
            Ok(Some(r)) => match r.status {
                ApprovalStatus::Used => ApprovalError::Used,
                ApprovalStatus::Pending if r.expires_at > now => ApprovalError::Pending,
                _ => ApprovalError::Expired,
            },
        }
    }
}
