//! The write side: every change cooper makes is a list of [`Change`]s handed to the [`Ledger`]
//! together with the audit record that describes it, and written all or nothing. A use case
//! decides, builds its record, and commits both in one call; nothing else writes.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::audit::AuditRecord;
use crate::model::approvals::{ApprovalId, ApprovalRequest};
use crate::model::factors::{PendingTotp, TotpEnrollment};
use crate::model::requests::{AccessRequest, AccessRequestId, Settlement};
use crate::model::{Account, AdminGrant, Grant, GrantKey, Group, Target, User};
use crate::names::{AccountId, GroupName, TargetName, UserName};
use crate::password::PasswordHash;
use crate::ports::UpstreamError;
use crate::revocation::SessionRevocations;
use crate::revocation::policy::RevokedSessions;
use crate::token::{ApiTokenRecord, EnrollmentCodeRecord, TokenId};

/// What a change expects of what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// It must not exist yet (created at version 1).
    Absent,
    /// It must be at this version (and becomes the next).
    Version(u64),
    /// It must exist, at whatever version.
    Present,
}

/// Something a change needs to exist, without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Account(AccountId),
    Target(TargetName),
    User(UserName),
    Group(GroupName),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Account(a) => write!(f, "account {a}"),
            Self::Target(t) => write!(f, "target {t}"),
            Self::User(u) => write!(f, "user {u}"),
            Self::Group(g) => write!(f, "group {g}"),
        }
    }
}

/// What a guard on reach watches: an account's targets, an account's grants, a group's grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReachKey {
    AccountTargets(AccountId),
    AccountGrants(AccountId),
    GroupGrants(GroupName),
}

impl std::fmt::Display for ReachKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AccountTargets(a) => write!(f, "the targets of account {a}"),
            Self::AccountGrants(a) => write!(f, "the grants of account {a}"),
            Self::GroupGrants(g) => write!(f, "the grants of group {g}"),
        }
    }
}

/// How a change stands to what a reach key watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReachGuard {
    /// The decision read it at `seen`: refused unless it still is.
    Unchanged { seen: u64 },
    /// The decision read it at `seen`, and the change alters it: refused unless it still is,
    /// then one on (so changes of this kind land one at a time).
    Moves { seen: u64 },
    /// The change alters it, whatever it was: one on (so decisions that read it are refused).
    Bumps,
}

/// One change, with the condition it is written under. A list of them is applied atomically,
/// with its audit record; when a condition fails, nothing is written and [`ChangeError::Conflict`]
/// names the change whose condition failed.
#[derive(Debug, Clone)]
pub enum Change {
    Require(Reference),
    PutAccount(Account, Expect),
    DeleteAccount(AccountId, Expect),
    PutTarget(Target, Expect),
    DeleteTarget(TargetName, Expect),
    PutUser(User, Expect),
    DeleteUser(UserName, Expect),
    PutGroup(Group, Expect),
    DeleteGroup(GroupName, Expect),
    /// Refused if the membership exists.
    AddMember(UserName, GroupName),
    RemoveMember(UserName, GroupName),
    /// A new grant (refused if one with its key exists); `account` is the account it reaches
    /// (the target's, for a target grant).
    PutGrant {
        grant: Grant,
        account: AccountId,
    },
    /// Refused if there is no such grant.
    DeleteGrant(GrantKey),
    PutAdminGrant(AdminGrant),
    DeleteAdminGrant(AdminGrant),
    PutToken(ApiTokenRecord),
    RevokeToken(TokenId),
    DeleteToken(TokenId),
    /// A user's TOTP enrollment, pending enrollment, password and lockout state.
    DeleteFactors(UserName),
    /// A guard on who can reach what (see `ReachGuard`; a version of 0 means never changed):
    /// a decision made on what was read cannot be undone by another change landing in between.
    Reach {
        key: ReachKey,
        guard: ReachGuard,
    },
    /// A new enrollment code (refused if its id is taken).
    PutEnrollmentCode(EnrollmentCodeRecord),
    /// Uses up an enrollment code: refused unless it is `user`'s, unused and unexpired at `now`.
    UseEnrollmentCode {
        id: TokenId,
        user: UserName,
        now: OffsetDateTime,
    },
    /// Refused while `user` is locked out at `now` (the rule of
    /// [`Guard::locked_until`](crate::model::factors::Guard::locked_until)); with
    /// `clear_failures`, the failure count starts again.
    Unlocked {
        user: UserName,
        now: OffsetDateTime,
        clear_failures: bool,
    },
    /// Claims `step` of the user's enrollment: refused if there is none, or if this step or a
    /// later one was claimed already. A code is good once.
    ClaimStep {
        user: UserName,
        step: u64,
    },
    /// An enrollment waiting for its first code (replacing any other waiting one).
    PutPendingTotp {
        user: UserName,
        pending: PendingTotp,
    },
    /// The pending secret becomes the user's authenticator (replacing any earlier one): refused
    /// unless the pending one is still the one sealed in `enrollment`.
    ActivateTotp {
        user: UserName,
        enrollment: TotpEnrollment,
    },
    PutPassword {
        user: UserName,
        hash: PasswordHash,
        at: OffsetDateTime,
    },
    /// A new approval request (refused if its id is taken).
    OpenApproval(ApprovalRequest),
    /// pending -> approved, refused unless pending and unexpired at `now`.
    Approve {
        id: ApprovalId,
        approver: UserName,
        now: OffsetDateTime,
    },
    /// approved -> used, refused unless approved, for `requester` and `target`, and unexpired.
    ConsumeApproval {
        id: ApprovalId,
        requester: UserName,
        target: TargetName,
        now: OffsetDateTime,
    },
    /// A person's record of ended cooper sessions, replacing the one read (or none); it may be
    /// forgotten after `keep_until` (Unix seconds), when every session it ends has expired.
    PutSessionRevocations {
        user: UserName,
        revocations: SessionRevocations,
        expect: Expect,
        keep_until: i64,
    },
    /// A person's AWS sessions on one holder (by `PolicyHolder::key`) end up to `revoked.before`
    /// (replacing an earlier revocation of them there); forgotten after `keep_until`.
    RevokeOn {
        holder: String,
        revoked: RevokedSessions,
        keep_until: OffsetDateTime,
    },
    /// A new access request (refused if its id is taken), and for each principal it asks a
    /// pointer to it (what the approvers' list of waiting requests reads).
    OpenAccessRequest(AccessRequest),
    /// `request` (as read) settled at `now`: refused unless it is still in
    /// `settlement.from_state()` and, pending, unexpired at `now` (approved: its access not over).
    SettleAccessRequest {
        request: AccessRequest,
        settlement: Settlement,
        now: OffsetDateTime,
    },
    /// The time-bound grant an approved access request gives its requester (refused if that
    /// request gave one already). `grant.via` names the request; `grant.expires_at` is set.
    PutTemporaryGrant {
        grant: Grant,
        account: AccountId,
    },
    /// Removes the time-bound grant `request` gave `user` (ended before its time).
    EndTemporaryGrant {
        user: UserName,
        request: AccessRequestId,
    },
    /// A one-time mark (a SAML assertion's id, the id of the sign-in request it answers):
    /// refused if `key` is marked already and that mark has not expired at `now`. Kept until
    /// `until`, after which the thing it marks is refused for its age anyway. A mark with a
    /// `payload` (a sign-in handed to the CLI) is taken once by `Ledger::take_mark`.
    Mark {
        key: String,
        until: OffsetDateTime,
        now: OffsetDateTime,
        payload: Option<String>,
    },
}

/// Why a set of changes was not applied (none of it was).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change at `index` found its item not as it expected; `index == changes.len()` is the
    /// audit record itself (its id was taken).
    #[error("change {index} did not find what it expected")]
    Conflict { index: usize },
    #[error("too many changes for one atomic write")]
    TooLarge,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl ChangeError {
    /// The change whose condition failed, if one did.
    pub fn conflicting<'a>(&self, changes: &'a [Change]) -> Option<&'a Change> {
        match self {
            Self::Conflict { index } => changes.get(*index),
            _ => None,
        }
    }
}

/// Most changes one atomic write can hold, besides its audit record.
pub const MAX_CHANGES: usize = 99;

/// Where changes are written, each list with its audit record, all or nothing.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Applies every change and appends `record`, atomically; returns once both are durable.
    /// With no changes, appends the record alone (a refusal, or an issuance whose effect lives
    /// outside the directory). A record's id is never reused.
    async fn commit(&self, changes: &[Change], record: &AuditRecord) -> Result<(), ChangeError>;

    /// Takes the payload of mark `key` (see `Change::Mark`) if it has one and has not expired
    /// at `now`, removing the mark: a second take, or a take too late, gets `None`.
    async fn take_mark(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>, UpstreamError>;
}

/// Writes a refusal's record. A refusal stands whether or not its record could be written (the
/// caller was told no, and nothing changed); a failure to write it is logged for operators.
pub async fn record_refusal(ledger: &dyn Ledger, record: &AuditRecord) {
    if let Err(error) = ledger.commit(&[], record).await {
        tracing::warn!(%error, request_id = %record.id, event = ?record.event, "could not audit a refusal");
    }
}
