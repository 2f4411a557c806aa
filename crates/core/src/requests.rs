//! Just-in-time access: someone asks for access they do not hold, for a while; one of the
//! approvers the target (or its account) names, never the requester, approves with their own
//! fresh code, and that gives the requester a time-bound grant which the ordinary decision path
//! enforces and time ends (no sweeper). Requests can be denied, withdrawn, or their access ended
//! early; nobody acting lets them lapse. Every step is committed with its audit record, and
//! refusals are audited too.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::access::{Caller, Denial, Identity};
use crate::approval::{ApprovalError, approver_code};
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::catalog::{AccessError, Catalog};
use crate::clock::{Clock, Entropy, EntropyUnavailable};
use crate::factors::{FactorError, SecondFactor};
use crate::ledger::{Change, ChangeError, Ledger, record_refusal};
use crate::model::requests::{
    AccessRequest, AccessRequestId, RequestPolicy, RequestState, RequestStatus, RequestedAccess,
    Settlement,
};
use crate::model::{Grant, Principal, Target, names_any};
use crate::names::{AccountId, Reason, UserName};
use crate::ports::{AccessRequestStore, Directory, UpstreamError};
use crate::totp::TotpCode;

/// How long a request waits for an approver when the deployment does not say.
pub const DEFAULT_REQUEST_LIFETIME: Duration = Duration::hours(24);
/// How much access a request asks for when it does not say (less, if its policy allows less).
pub const DEFAULT_ACCESS: u32 = 3600;
/// How far back the lists of requests reach, and how many they hold at most.
pub const LISTED_FOR: Duration = Duration::days(14);
pub const LIST_LIMIT: usize = 100;

/// What someone asks for.
#[derive(Debug, Clone)]
pub struct AccessAsk {
    pub access: RequestedAccess,
    /// How long they need it (default: an hour, or what the policy allows if that is less).
    pub duration_seconds: Option<u64>,
    pub reason: Reason,
}

/// Whose list of requests: the ones I made, or the ones asking me.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRole {
    Requester,
    Approver,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Unknown targets and accounts, and ones whose policy allows no such request, answer alike.
    #[error("no such target or account, or access to it cannot be requested")]
    NotRequestable,
    #[error("you have this access already")]
    AlreadyGranted,
    #[error("you asked for this already: request {0} is waiting for an approver")]
    AlreadyRequested(AccessRequestId),
    #[error("duration_seconds must be {min} to {max} for this request, got {requested}")]
    Duration { requested: u64, min: u32, max: u32 },
    #[error("no such access request")]
    NotFound,
    #[error("nobody may approve or deny their own request")]
    SelfApproval,
    #[error("you are not one of the approvers of this request")]
    NotAnApprover,
    #[error("the access request has lapsed: nobody acted on it in time")]
    Expired,
    #[error("the access request is {0} already")]
    Settled(RequestStatus),
    #[error("the approver's code was not accepted: {0}")]
    ApproverFactor(FactorError),
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
    /// Allowed, but the change could not be written with its audit record: nothing was done.
    #[error("the audit record could not be written: {0}")]
    AuditUnavailable(UpstreamError),
}

impl From<AccessError> for RequestError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Denied(d) => Self::Denied(d),
            AccessError::Upstream(u) => Self::Upstream(u),
        }
    }
}

impl From<ApprovalError> for RequestError {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::ApproverFactor(f) => Self::ApproverFactor(f),
            ApprovalError::BootstrappedByRequester => Self::BootstrappedByRequester,
            ApprovalError::Upstream(u) => Self::Upstream(u),
            ApprovalError::Denied(d) => Self::Denied(d),
            // The approver's code check gives nothing else.
            _ => Self::NotAnApprover,
        }
    }
}

impl RequestError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotRequestable => "not_requestable",
            Self::AlreadyGranted => "already_granted",
            Self::AlreadyRequested(_) => "request_pending",
            Self::Duration { .. } => "invalid_duration",
            Self::NotFound => "access_request_not_found",
            Self::SelfApproval => "self_approval",
            Self::NotAnApprover => "not_an_approver",
            Self::Expired => "access_request_expired",
            Self::Settled(_) => "access_request_settled",
            Self::ApproverFactor(e) => match e {
                FactorError::NotEnrolled => "approver_not_enrolled",
                FactorError::InvalidCode => "approver_totp_invalid",
                FactorError::Replayed => "approver_totp_replayed",
                FactorError::LockedOut { .. } => "approver_locked_out",
                other => other.code(),
            },
            Self::BootstrappedByRequester => "approver_bootstrapped_by_requester",
            Self::SessionRequired => "session_required",
            Self::Denied(d) => d.code(),
            Self::Entropy(_) => "internal",
            Self::Upstream(_) => "upstream",
            Self::AuditUnavailable(_) => "audit_unavailable",
        }
    }

    /// A refusal worth an audit record, as opposed to bad input or a failure of ours.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::ApproverFactor(f) => f.is_refusal(),
            Self::Duration { .. }
            | Self::Entropy(_)
            | Self::Upstream(_)
            | Self::AuditUnavailable(_) => false,
            _ => true,
        }
    }

    fn from_commit(error: ChangeError, changes: &[Change], at: OffsetDateTime) -> Self {
        match error.conflicting(changes) {
            Some(Change::SettleAccessRequest { .. } | Change::PutTemporaryGrant { .. }) => {
                // Someone else settled it first (or time did).
                Self::Settled(RequestStatus::Pending)
            }
            Some(other) => crate::factors::explain_conflict(other, at)
                .map_or(Self::Settled(RequestStatus::Pending), Self::ApproverFactor),
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

/// What a request is about, as audit records name it: `user alice -> target prod-admin`.
pub fn describe(requester: &UserName, access: &RequestedAccess) -> String {
    format!("user {requester} -> {access}")
}

/// What allows requests for some access: the policy, the account the access is in, and the
/// target when it is one.
struct Allowed {
    policy: RequestPolicy,
    account: AccountId,
    target: Option<Target>,
}

/// The access request use cases.
pub struct AccessRequests {
    pub store: Arc<dyn AccessRequestStore>,
    pub catalog: Arc<Catalog>,
    pub directory: Arc<dyn Directory>,
    pub verifier: Arc<SecondFactor>,
    pub ledger: Arc<dyn Ledger>,
    pub entropy: Arc<dyn Entropy>,
    pub clock: Arc<dyn Clock>,
    /// How long a request waits for an approver before it lapses.
    pub lifetime: Duration,
}

impl AccessRequests {
    async fn audited<T>(
        &self,
        result: Result<T, RequestError>,
        record: AuditRecord,
    ) -> Result<T, RequestError> {
        if let Err(e) = &result
            && e.is_refusal()
        {
            let record = record.refused(AuditEvent::AccessRefused, e.code());
            record_refusal(self.ledger.as_ref(), &record).await;
        }
        result
    }

    /// What allows requests for `access` now. A target's own policy decides for it; without
    /// one, its account's does, up to the level that policy names.
    async fn allowed(&self, access: &RequestedAccess) -> Result<Allowed, RequestError> {
        let (account_id, target, level) = match access {
            RequestedAccess::Target(name) => {
                let target = self
                    .directory
                    .target(name)
                    .await?
                    .ok_or(RequestError::NotRequestable)?;
                if let Some(policy) = target.access_requests.clone() {
                    return Ok(Allowed {
                        policy,
                        account: target.account.clone(),
                        target: Some(target),
                    });
                }
                (target.account.clone(), Some(target.clone()), target.level)
            }
            RequestedAccess::Account { account, level } => (account.clone(), None, *level),
        };
        let account = self
            .directory
            .accounts_by_id(std::slice::from_ref(&account_id))
            .await?
            .into_iter()
            .find(|a| a.id == account_id);
        let policy = account
            .and_then(|a| a.access_requests)
            .filter(|p| p.reaches(level))
            .ok_or(RequestError::NotRequestable)?;
        Ok(Allowed {
            policy,
            account: account_id,
            target,
        })
    }

    /// Asks for access the caller does not hold, from the approvers its policy names.
    pub async fn open(
        &self,
        identity: Identity,
        ask: &AccessAsk,
        meta: &RequestMeta,
    ) -> Result<AccessRequest, RequestError> {
        let now = self.clock.now();
        let mut record = AuditRecord::by(&identity, meta, now, AuditEvent::AccessRequested);
        record.resource = Some(describe(&identity.user, &ask.access));
        if let RequestedAccess::Target(t) = &ask.access {
            record.target = Some(t.clone());
        }
        let result = self.opened(identity, ask, now, &mut record).await;
        self.audited(result, record).await
    }

    async fn opened(
        &self,
        identity: Identity,
        ask: &AccessAsk,
        now: OffsetDateTime,
        record: &mut AuditRecord,
    ) -> Result<AccessRequest, RequestError> {
        let (caller, allowed) =
            futures_util::future::try_join(async { Ok(self.catalog.caller(identity).await?) }, {
                self.allowed(&ask.access)
            })
            .await?;
        record.account = Some(allowed.account.clone());
        let held = match (&ask.access, &allowed.target) {
            (_, Some(target)) => self.catalog.grant_for(&caller, target).await?.is_some(),
            (RequestedAccess::Account { account, level }, None) => self
                .catalog
                .cascade_level(&caller, account)
                .await?
                .is_some_and(|held| held >= *level),
            (RequestedAccess::Target(_), None) => false,
        };
        if held {
            return Err(RequestError::AlreadyGranted);
        }
        let max = allowed.policy.max_duration_seconds;
        let duration_seconds = match ask.duration_seconds {
            None => DEFAULT_ACCESS.min(max),
            Some(s) if (u64::from(RequestPolicy::SHORTEST)..=u64::from(max)).contains(&s) => {
                u32::try_from(s).unwrap_or(max)
            }
            Some(s) => {
                return Err(RequestError::Duration {
                    requested: s,
                    min: RequestPolicy::SHORTEST,
                    max,
                });
            }
        };
        // One waiting request for the same access is enough (read from the requester's own
        // list: two asked at the same instant may both land, and each is settled on its own).
        let mine = self
            .store
            .requests_by(&caller.user.name, LIST_LIMIT)
            .await?;
        if let Some(waiting) = mine
            .iter()
            .find(|r| r.access == ask.access && r.status_at(now) == RequestStatus::Pending)
        {
            return Err(RequestError::AlreadyRequested(waiting.id.clone()));
        }
        let request = AccessRequest {
            id: AccessRequestId::generate(self.entropy.as_ref())?,
            requester: caller.user.name.clone(),
            access: ask.access.clone(),
            account: allowed.account,
            duration_seconds,
            reason: ask.reason.clone(),
            approvers: allowed.policy.approvers,
            state: RequestState::Pending,
            created_at: now,
            expires_at: now + self.lifetime,
            decided_by: None,
            decided_at: None,
            note: None,
            access_until: None,
        };
        record.access_request_id = Some(request.id.to_string());
        record.duration_seconds = Some(duration_seconds);
        record.reason = Some(request.reason.to_string());
        let changes = [Change::OpenAccessRequest(request.clone())];
        self.ledger
            .commit(&changes, record)
            .await
            .map_err(|e| RequestError::from_commit(e, &changes, now))?;
        tracing::info!(user = %request.requester, access = %request.access, access_request_id = %request.id, "access requested");
        Ok(request)
    }

    /// The request `id`, its audit record filled in with what it is about.
    async fn request(
        &self,
        id: &AccessRequestId,
        record: &mut AuditRecord,
    ) -> Result<AccessRequest, RequestError> {
        let request = self
            .store
            .access_request(id)
            .await?
            .ok_or(RequestError::NotFound)?;
        record.resource = Some(describe(&request.requester, &request.access));
        record.account = Some(request.account.clone());
        if let RequestedAccess::Target(t) = &request.access {
            record.target = Some(t.clone());
        }
        Ok(request)
    }

    /// Still waiting for an approver at `now`, or why not.
    fn pending(request: &AccessRequest, now: OffsetDateTime) -> Result<(), RequestError> {
        match request.status_at(now) {
            RequestStatus::Pending => Ok(()),
            RequestStatus::Expired => Err(RequestError::Expired),
            other => Err(RequestError::Settled(other)),
        }
    }

    /// `identity`, checked against the directory, as an approver of `request` under the policy
    /// that allows such requests now (someone it no longer names approves nothing). To whoever
    /// it neither asked nor names now, the request does not exist (as to `view`): its id tells
    /// a stranger nothing, not even its state.
    async fn approver(
        &self,
        identity: Identity,
        request: &AccessRequest,
    ) -> Result<(Caller, Allowed), RequestError> {
        if identity.user == request.requester {
            return Err(RequestError::SelfApproval);
        }
        let (profile, allowed) = futures_util::future::join(
            self.directory.user_profile(&identity.user),
            self.allowed(&request.access),
        )
        .await;
        // An unknown, disabled or expired user approves nothing, and sees nothing.
        let caller = Caller::admit(identity, profile?, self.clock.now())
            .map_err(|_| RequestError::NotFound)?;
        let asked = names_any(&request.approvers, &caller.user.name, &caller.groups);
        let named_now = allowed
            .as_ref()
            .is_ok_and(|a| a.policy.names(&caller.user.name, &caller.groups));
        if !asked && !named_now {
            return Err(RequestError::NotFound);
        }
        let allowed = allowed?;
        if !named_now {
            return Err(RequestError::NotAnApprover);
        }
        Ok((caller, allowed))
    }

    /// An approver gives the requester the access, for what they asked or less
    /// (`duration_seconds`), with their own fresh code: a time-bound grant from now.
    pub async fn approve(
        &self,
        id: &AccessRequestId,
        approver: Identity,
        code: &TotpCode,
        duration_seconds: Option<u64>,
        meta: &RequestMeta,
    ) -> Result<AccessRequest, RequestError> {
        let now = self.clock.now();
        let mut record = AuditRecord::by(&approver, meta, now, AuditEvent::AccessApproved);
        record.access_request_id = Some(id.to_string());
        let result = self
            .approved(id, approver, code, duration_seconds, now, &mut record)
            .await;
        self.audited(result, record).await
    }

    async fn approved(
        &self,
        id: &AccessRequestId,
        approver: Identity,
        code: &TotpCode,
        duration_seconds: Option<u64>,
        now: OffsetDateTime,
        record: &mut AuditRecord,
    ) -> Result<AccessRequest, RequestError> {
        if !approver.method.is_session() {
            return Err(RequestError::SessionRequired);
        }
        let request = self.request(id, record).await?;
        let (caller, allowed) = self.approver(approver, &request).await?;
        Self::pending(&request, now)?;
        // What was asked, or less; and never more than the policy allows now.
        let asked = request
            .duration_seconds
            .min(allowed.policy.max_duration_seconds);
        let seconds = match duration_seconds {
            None => asked,
            Some(s) if (u64::from(RequestPolicy::SHORTEST)..=u64::from(asked)).contains(&s) => {
                u32::try_from(s).unwrap_or(asked)
            }
            Some(s) => {
                return Err(RequestError::Duration {
                    requested: s,
                    min: RequestPolicy::SHORTEST,
                    max: asked,
                });
            }
        };
        let until = now + Duration::seconds(i64::from(seconds));
        let mut changes = approver_code(
            &self.verifier,
            &caller.user.name,
            &request.requester,
            code,
            &caller.user.name,
        )
        .await?;
        let settlement = Settlement::Approve {
            by: caller.user.name.clone(),
            until,
        };
        let settled = settlement.apply(&request, now);
        changes.push(Change::SettleAccessRequest {
            request: request.clone(),
            settlement,
            now,
        });
        changes.push(Change::PutTemporaryGrant {
            grant: Grant {
                principal: Principal::User(request.requester.clone()),
                scope: request.access.scope(),
                expires_at: Some(until),
                via: Some(request.id.clone()),
            },
            account: request.account.clone(),
        });
        record.approved_by = Some(caller.user.name.to_string());
        record.duration_seconds = Some(seconds);
        record.expiration = Some(until);
        record.reason = Some(request.reason.to_string());
        self.ledger
            .commit(&changes, record)
            .await
            .map_err(|e| RequestError::from_commit(e, &changes, now))?;
        tracing::info!(approver = %caller.user.name, requester = %request.requester, access_request_id = %id, "access approved");
        Ok(settled)
    }

    /// An approver turns a waiting request down, saying why if they like.
    pub async fn deny(
        &self,
        id: &AccessRequestId,
        approver: Identity,
        note: Option<Reason>,
        meta: &RequestMeta,
    ) -> Result<AccessRequest, RequestError> {
        let now = self.clock.now();
        let mut record = AuditRecord::by(&approver, meta, now, AuditEvent::AccessDenied);
        record.access_request_id = Some(id.to_string());
        record.reason = note.as_ref().map(ToString::to_string);
        let result = async {
            let request = self.request(id, &mut record).await?;
            let (caller, _) = self.approver(approver, &request).await?;
            Self::pending(&request, now)?;
            let settlement = Settlement::Deny {
                by: caller.user.name.clone(),
                note,
            };
            self.settle(request, settlement, now, &mut record).await
        }
        .await;
        self.audited(result, record).await
    }

    /// The requester withdraws a waiting request, or gives up access early; an approver of the
    /// request may end access it gave early too. To anyone else the request does not exist.
    pub async fn cancel(
        &self,
        id: &AccessRequestId,
        identity: Identity,
        note: Option<Reason>,
        meta: &RequestMeta,
    ) -> Result<AccessRequest, RequestError> {
        let now = self.clock.now();
        let mut record = AuditRecord::by(&identity, meta, now, AuditEvent::AccessCancelled);
        record.access_request_id = Some(id.to_string());
        record.reason = note.as_ref().map(ToString::to_string);
        let result = self.cancelled(id, identity, note, now, &mut record).await;
        self.audited(result, record).await
    }

    async fn cancelled(
        &self,
        id: &AccessRequestId,
        identity: Identity,
        note: Option<Reason>,
        now: OffsetDateTime,
        record: &mut AuditRecord,
    ) -> Result<AccessRequest, RequestError> {
        let request = self.request(id, record).await?;
        let status = request.status_at(now);
        let by = identity.user.clone();
        if by != request.requester {
            // Someone else: one of the approvers it asked (or its policy names now) may end
            // the access; to anyone else it does not exist.
            let profile = self.directory.user_profile(&by).await?;
            let caller =
                Caller::admit(identity, profile, now).map_err(|_| RequestError::NotFound)?;
            let asked = names_any(&request.approvers, &caller.user.name, &caller.groups);
            let named_now = match self.allowed(&request.access).await {
                Ok(allowed) => allowed.policy.names(&caller.user.name, &caller.groups),
                Err(RequestError::NotRequestable) => false,
                Err(e) => return Err(e),
            };
            if !asked && !named_now {
                return Err(RequestError::NotFound);
            }
            if status == RequestStatus::Pending {
                // An approver turns a waiting request down: that is a denial.
                return Err(RequestError::Settled(status));
            }
        }
        let settlement = match status {
            RequestStatus::Pending => Settlement::Cancel { by },
            RequestStatus::Approved => Settlement::End { by, note },
            RequestStatus::Expired => return Err(RequestError::Expired),
            other => return Err(RequestError::Settled(other)),
        };
        if matches!(settlement, Settlement::End { .. }) {
            record.event = AuditEvent::AccessEnded;
        }
        self.settle(request, settlement, now, record).await
    }

    /// Commits `settlement` of `request` with its record (ending access removes its grant).
    async fn settle(
        &self,
        request: AccessRequest,
        settlement: Settlement,
        now: OffsetDateTime,
        record: &mut AuditRecord,
    ) -> Result<AccessRequest, RequestError> {
        let settled = settlement.apply(&request, now);
        let mut changes = Vec::with_capacity(2);
        if matches!(settlement, Settlement::End { .. }) {
            changes.push(Change::EndTemporaryGrant {
                user: request.requester.clone(),
                request: request.id.clone(),
            });
            record.expiration = Some(now);
        }
        changes.push(Change::SettleAccessRequest {
            request,
            settlement,
            now,
        });
        self.ledger
            .commit(&changes, record)
            .await
            .map_err(|e| RequestError::from_commit(e, &changes, now))?;
        Ok(settled)
    }

    /// A request, for its requester and the approvers it asked; to others it does not exist.
    pub async fn view(
        &self,
        id: &AccessRequestId,
        viewer: Identity,
    ) -> Result<AccessRequest, RequestError> {
        let request = self
            .store
            .access_request(id)
            .await?
            .ok_or(RequestError::NotFound)?;
        if viewer.user == request.requester {
            return Ok(request);
        }
        match self.catalog.caller(viewer).await {
            Ok(caller) if names_any(&request.approvers, &caller.user.name, &caller.groups) => {
                Ok(request)
            }
            Ok(_) | Err(AccessError::Denied(_)) => Err(RequestError::NotFound),
            Err(AccessError::Upstream(e)) => Err(e.into()),
        }
    }

    /// The requests the caller made (the newest [`LIST_LIMIT`]), or the ones asking them (not
    /// their own) from the last [`LISTED_FOR`], at most [`LIST_LIMIT`]; newest first.
    pub async fn list(
        &self,
        identity: Identity,
        role: RequestRole,
    ) -> Result<Vec<AccessRequest>, RequestError> {
        let caller = self.catalog.caller(identity).await?;
        let me = caller.user.name.clone();
        match role {
            RequestRole::Requester => Ok(self.store.requests_by(&me, LIST_LIMIT).await?),
            RequestRole::Approver => {
                let principals: Vec<Principal> = std::iter::once(Principal::User(me.clone()))
                    .chain(caller.groups.iter().cloned().map(Principal::Group))
                    .collect();
                let since = self.clock.now() - LISTED_FOR;
                let mut found = self
                    .store
                    .requests_asking(&principals, since, LIST_LIMIT)
                    .await?;
                found.retain(|r| r.requester != me);
                Ok(found)
            }
        }
    }
}
