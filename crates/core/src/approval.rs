//! Second-person approval: a target can require that someone on its approver list, not the
//! requester, confirms a request with their own fresh code. Inline (the approver types their code
//! into the requester's request) or asynchronous (a request the approver approves later, used
//! once). Every step is committed with its audit record; refusals are audited too.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::access::{AuthMethod, Caller, Denial, Identity};
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::catalog::{AccessError, Catalog};
use crate::clock::{Clock, Entropy, EntropyUnavailable};
use crate::factors::{FactorError, SecondFactor};
use crate::ledger::{Change, ChangeError, Ledger, record_refusal};
use crate::model::approvals::{ApprovalId, ApprovalRequest, ApprovalStatus};
use crate::model::{Principal, Target};
use crate::names::{Reason, TargetName, UserName};
use crate::ports::{ApprovalStore, Directory, UpstreamError};
use crate::totp::TotpCode;

/// How long an approval request stays open, and then how long an approval stays usable.
pub const APPROVAL_LIFETIME: Duration = Duration::hours(1);

/// How many of a requester's approval requests their list shows.
pub const LISTED: usize = 50;

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
    #[error("the approver's code was not accepted: {0}")]
    ApproverFactor(FactorError),
    /// The approver's authenticator was enrolled with an enrollment code the requester issued:
    /// whoever issued it may hold it, so it is not a second person's.
    #[error(
        "this approver's authenticator was enrolled with a code the requester issued; ask someone else"
    )]
    BootstrappedByRequester,
    #[error("approving needs a signed-in session (cooper login), not a script's token")]
    SessionRequired,
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Allowed, but the audit record could not be written: nothing was done.
    #[error("the audit record could not be written: {0}")]
    AuditUnavailable(UpstreamError),
}

impl From<AccessError> for ApprovalError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Denied(d) => Self::Denied(d),
            AccessError::Upstream(u) => Self::Upstream(u),
        }
    }
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
            Self::ApproverFactor(e) => match e {
                FactorError::NotEnrolled => "approver_not_enrolled",
                FactorError::InvalidCode => "approver_totp_invalid",
                FactorError::Replayed => "approver_totp_replayed",
                FactorError::LockedOut { .. } => "approver_locked_out",
                other => other.code(),
            },
            Self::Denied(d) => d.code(),
            Self::BootstrappedByRequester => "approver_bootstrapped_by_requester",
            Self::SessionRequired => "session_required",
            Self::Entropy(_) => "internal",
            Self::Upstream(_) => "upstream",
            Self::AuditUnavailable(_) => "audit_unavailable",
        }
    }

    /// A refusal worth an audit record, as opposed to a failure of ours.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::ApproverFactor(f) => f.is_refusal(),
            Self::Entropy(_) | Self::Upstream(_) | Self::AuditUnavailable(_) => false,
            _ => true,
        }
    }

    fn from_commit(error: ChangeError, changes: &[Change], at: OffsetDateTime) -> Self {
        match error.conflicting(changes) {
            Some(change) => explain_conflict(change, at).unwrap_or(Self::AlreadyDecided),
            None => match error {
                ChangeError::Upstream(e) => Self::AuditUnavailable(e),
                other => Self::AuditUnavailable(UpstreamError::new(
                    crate::ports::Service::DynamoDb,
                    crate::ports::UpstreamKind::Refused,
                    other.to_string(),
                )),
            },
        }
    }
}

/// What it means that one of an approval's changes was refused when it was written.
pub fn explain_conflict(change: &Change, at: OffsetDateTime) -> Option<ApprovalError> {
    match change {
        Change::Approve { .. } => Some(ApprovalError::AlreadyDecided),
        Change::ConsumeApproval { .. } => Some(ApprovalError::Used),
        Change::OpenApproval(_) => Some(ApprovalError::AlreadyDecided),
        other => crate::factors::explain_conflict(other, at).map(ApprovalError::ApproverFactor),
    }
}

/// A checked approval, ready to be committed with the issuance it allows.
#[derive(Debug, Clone)]
pub struct ApprovalCheck {
    pub approved_by: UserName,
    pub approval_id: Option<ApprovalId>,
    /// The approver's code claim (inline), or using up the approved request.
    pub changes: Vec<Change>,
}

/// Who may approve for `target`: the approver, or a group they are in, is on its list.
pub fn may_approve(target: &Target, approver: &Caller) -> bool {
    crate::model::names_any(&target.approvers, &approver.user.name, &approver.groups)
}

/// Checks an approver's own fresh code: the proof to commit with what they approve. An
/// authenticator the requester could hold (enrolled with an enrollment code they issued) does
/// not make a second person. A wrong code counts against `typed_by`.
pub(crate) async fn approver_code(
    verifier: &SecondFactor,
    approver: &UserName,
    requester: &UserName,
    code: &TotpCode,
    typed_by: &UserName,
) -> Result<Vec<Change>, ApprovalError> {
    let factors = verifier
        .store
        .factors(approver)
        .await
        .map_err(ApprovalError::Upstream)?;
    let bootstrapped_by = factors
        .totp
        .as_ref()
        .and_then(|e| e.bootstrapped_by.as_ref());
    if bootstrapped_by == Some(requester) {
        return Err(ApprovalError::BootstrappedByRequester);
    }
    let proof = verifier
        .check_charging(approver, &factors, code, typed_by)
        .await
        .map_err(ApprovalError::ApproverFactor)?;
    Ok(proof.changes().to_vec())
}

/// The approval use cases.
pub struct Approvals {
    pub store: Arc<dyn ApprovalStore>,
    pub catalog: Arc<Catalog>,
    pub directory: Arc<dyn Directory>,
    pub verifier: Arc<SecondFactor>,
    pub ledger: Arc<dyn Ledger>,
    pub entropy: Arc<dyn Entropy>,
    pub clock: Arc<dyn Clock>,
}

impl Approvals {
    async fn audited<T>(
        &self,
        result: Result<T, ApprovalError>,
        record: AuditRecord,
    ) -> Result<T, ApprovalError> {
        if let Err(e) = &result
            && e.is_refusal()
        {
            let record = record.refused(AuditEvent::ApprovalRefused, e.code());
            record_refusal(self.ledger.as_ref(), &record).await;
        }
        result
    }

    /// Opens a request. Only someone granted the target may ask: approval adds a second person
    /// to a grant, it never stands in for one.
    pub async fn open(
        &self,
        identity: Identity,
        target: &TargetName,
        reason: &Reason,
        meta: &RequestMeta,
    ) -> Result<ApprovalRequest, ApprovalError> {
        let now = self.clock.now();
        let mut record = AuditRecord::by(&identity, meta, now, AuditEvent::ApprovalRequested);
        record.target = Some(target.clone());
        let result = self
            .opened(identity, target, reason, now, &mut record)
            .await;
        self.audited(result, record).await
    }

    async fn opened(
        &self,
        identity: Identity,
        target: &TargetName,
        reason: &Reason,
        now: OffsetDateTime,
        record: &mut AuditRecord,
    ) -> Result<ApprovalRequest, ApprovalError> {
        let (caller, target, _) = self.catalog.authorize(identity, target).await?;
        record.account = Some(target.account.clone());
        if !target.requires_approval() {
            return Err(ApprovalError::NotRequired);
        }
        let request = ApprovalRequest {
            id: ApprovalId::generate(self.entropy.as_ref())?,
            requester: caller.user.name.clone(),
            target: target.name.clone(),
            reason: reason.clone(),
            status: ApprovalStatus::Pending,
            created_at: now,
            expires_at: now + APPROVAL_LIFETIME,
            approved_by: None,
            approved_at: None,
            approvers: target.approvers.clone(),
        };
        record.approval_id = Some(request.id.to_string());
        record.reason = Some(reason.to_string());
        let changes = [Change::OpenApproval(request.clone())];
        self.ledger
            .commit(&changes, record)
            .await
            .map_err(|e| ApprovalError::from_commit(e, &changes, now))?;
        tracing::info!(user = %request.requester, target = %request.target, approval_id = %request.id, "approval requested");
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

    async fn approver_code(
        &self,
        approver: &UserName,
        requester: &UserName,
        code: &TotpCode,
        typed_by: &UserName,
    ) -> Result<Vec<Change>, ApprovalError> {
        approver_code(&self.verifier, approver, requester, code, typed_by).await
    }

    /// The approver confirms a pending request with their own fresh code.
    pub async fn approve(
        &self,
        id: &ApprovalId,
        approver: Identity,
        code: &TotpCode,
        meta: &RequestMeta,
    ) -> Result<ApprovalRequest, ApprovalError> {
        let now = self.clock.now();
        let mut record = AuditRecord::by(&approver, meta, now, AuditEvent::ApprovalApproved);
        record.approval_id = Some(id.to_string());
        let result = self.approved(id, approver, code, now, &mut record).await;
        self.audited(result, record).await
    }

    async fn approved(
        &self,
        id: &ApprovalId,
        approver: Identity,
        code: &TotpCode,
        now: OffsetDateTime,
        record: &mut AuditRecord,
    ) -> Result<ApprovalRequest, ApprovalError> {
        if !approver.method.is_session() {
            return Err(ApprovalError::SessionRequired);
        }
        let request = self
            .store
            .approval(id)
            .await?
            .ok_or(ApprovalError::NotFound)?;
        record.target = Some(request.target.clone());
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
        record.account = Some(target.account.clone());
        let caller = self.approver(approver, &request.requester, &target).await?;
        let mut changes = self
            .approver_code(
                &caller.user.name,
                &request.requester,
                code,
                &caller.user.name,
            )
            .await?;
        changes.push(Change::Approve {
            id: id.clone(),
            approver: caller.user.name.clone(),
            now,
        });
        record.approved_by = Some(caller.user.name.to_string());
        record.reason = Some(format!("approved {}'s request", request.requester));
        self.ledger
            .commit(&changes, record)
            .await
            .map_err(|e| ApprovalError::from_commit(e, &changes, now))?;
        tracing::info!(approver = %caller.user.name, approval_id = %id, requester = %request.requester, "approval given");
        Ok(ApprovalRequest {
            status: ApprovalStatus::Approved,
            approved_by: Some(caller.user.name),
            approved_at: Some(now),
            ..request
        })
    }

    /// The caller's own requests, newest first (the last [`LISTED`] of them).
    pub async fn mine(&self, identity: Identity) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        let caller = self.catalog.caller(identity).await?;
        Ok(self.store.approvals_by(&caller.user.name, LISTED).await?)
    }

    /// The requests that asked the caller (by name or through a group), not their own, made in
    /// the last day, newest first (at most [`LISTED`]): what may be waiting for them.
    pub async fn asking(&self, identity: Identity) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        let caller = self.catalog.caller(identity).await?;
        let me = caller.user.name.clone();
        let principals: Vec<Principal> = std::iter::once(Principal::User(me.clone()))
            .chain(caller.groups.iter().cloned().map(Principal::Group))
            .collect();
        let since = self.clock.now() - Duration::days(1);
        let mut found = self
            .store
            .approvals_asking(&principals, since, LISTED)
            .await?;
        found.retain(|r| r.requester != me);
        Ok(found)
    }

    /// A request, for its requester or anyone who may approve it; to others it does not exist.
    pub async fn view(
        &self,
        id: &ApprovalId,
        viewer: Identity,
    ) -> Result<ApprovalRequest, ApprovalError> {
        let request = self
            .store
            .approval(id)
            .await?
            .ok_or(ApprovalError::NotFound)?;
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

    /// Checks the proof a credential request carries: who approved, and the changes that spend
    /// the approval (to be committed with the issuance, so an approval is good for exactly one).
    pub async fn check_proof(
        &self,
        requester: &UserName,
        target: &Target,
        proof: Option<&ApprovalProof>,
    ) -> Result<ApprovalCheck, ApprovalError> {
        match proof.ok_or(ApprovalError::Required)? {
            ApprovalProof::Inline { approver, code } => {
                let identity = Identity::new(approver.clone(), AuthMethod::ApproverCode);
                let caller = self.approver(identity, requester, target).await?;
                // The code is typed into the requester's request: a wrong one is the
                // requester's failure, so that nobody can lock an approver out by guessing.
                let changes = self
                    .approver_code(&caller.user.name, requester, code, requester)
                    .await?;
                Ok(ApprovalCheck {
                    approved_by: caller.user.name,
                    approval_id: None,
                    changes,
                })
            }
            ApprovalProof::Approved(id) => {
                let now = self.clock.now();
                let request = self
                    .store
                    .approval(id)
                    .await?
                    .filter(|r| r.requester == *requester)
                    .ok_or(ApprovalError::NotFound)?;
                if request.target != target.name {
                    return Err(ApprovalError::Mismatch);
                }
                match request.status {
                    ApprovalStatus::Used => return Err(ApprovalError::Used),
                    _ if request.expires_at <= now => return Err(ApprovalError::Expired),
                    ApprovalStatus::Pending => return Err(ApprovalError::Pending),
                    ApprovalStatus::Approved => {}
                }
                let approved_by = request.approved_by.ok_or(ApprovalError::Pending)?;
                Ok(ApprovalCheck {
                    approved_by,
                    approval_id: Some(id.clone()),
                    changes: vec![Change::ConsumeApproval {
                        id: id.clone(),
                        requester: requester.clone(),
                        target: target.name.clone(),
                        now,
                    }],
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Service, UpstreamKind};

    fn unreachable() -> UpstreamError {
        UpstreamError::new(Service::DynamoDb, UpstreamKind::Unavailable, "timed out")
    }

    #[test]
    fn an_approvers_failing_factor_store_is_our_failure_not_a_refusal() {
        // A refusal is audited as a denial; our own failure is not (nobody was told no).
        assert!(!ApprovalError::ApproverFactor(FactorError::Upstream(unreachable())).is_refusal());
        assert!(
            !ApprovalError::ApproverFactor(FactorError::AuditUnavailable(unreachable()))
                .is_refusal()
        );
        assert!(ApprovalError::ApproverFactor(FactorError::InvalidCode).is_refusal());
        assert!(ApprovalError::NotAnApprover.is_refusal());
        assert!(!ApprovalError::Upstream(unreachable()).is_refusal());
        assert!(!ApprovalError::AuditUnavailable(unreachable()).is_refusal());
    }

    #[test]
    fn a_lost_race_over_an_approval_says_what_was_lost() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let id = ApprovalId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let user = UserName::parse("alice").unwrap();
        let consume = Change::ConsumeApproval {
            id: id.clone(),
            requester: user.clone(),
            target: TargetName::parse("a-read").unwrap(),
            now: at,
        };
        let approve = Change::Approve {
            id,
            approver: user,
            now: at,
        };
        assert!(matches!(
            explain_conflict(&consume, at),
            Some(ApprovalError::Used)
        ));
        assert!(matches!(
            explain_conflict(&approve, at),
            Some(ApprovalError::AlreadyDecided)
        ));
    }
}
