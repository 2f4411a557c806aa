//! Issuing credentials: decide by grants, check the second factors a target asks for, validate
//! every STS input (the session tags resolved for the person among them), call STS, then commit
//! the record of who got what together with spending the codes and the approval that allowed
//! it; only then answer.

use std::sync::Arc;

use futures_util::future::join;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::access::{Denial, Identity};
use crate::approval::{ApprovalError, ApprovalProof, Approvals};
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::catalog::{AccessError, Catalog};
use crate::clock::Clock;
use crate::console::{ConsoleSignin, Destination, SESSION_MAX, SESSION_MIN};
use crate::factors::{FactorError, SecondFactor};
use crate::ledger::{Change, ChangeError, Ledger, record_refusal};
use crate::model::approvals::ApprovalId;
use crate::model::{Grant, Target, TargetKind};
use crate::names::{
    AccountId, FederatedUserName, InvalidValue, RoleSessionName, SourceIdentity, TargetName,
    UserName,
};
use crate::ports::{
    AssumeRoleCall, CredentialBroker, FederationBinding, FederationTokenCall, IssuedCredentials,
    KeyVault, UpstreamError,
};
use crate::rate::{RateError, RateLimiter};
use crate::session::{AccessEnding, BrokerSigning, DurationOutOfRange, SessionDuration};
use crate::tags::{ResolvedTags, SessionTagError};
use crate::totp::TotpCode;

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct CredentialRequest {
    pub target: TargetName,
    pub duration_seconds: Option<u64>,
    /// The caller's fresh code, for a high-security target.
    pub totp: Option<TotpCode>,
    /// A second person's approval, for a target that requires one.
    pub approval: Option<ApprovalProof>,
    /// A console sign-in link too, opening at this destination (`Some(None)`: the default).
    pub console: Option<Option<String>>,
}

impl CredentialRequest {
    pub fn new(target: TargetName) -> Self {
        Self {
            target,
            duration_seconds: None,
            totp: None,
            approval: None,
            console: None,
        }
    }
}

/// Credentials handed out, with what they are for.
#[derive(Debug)]
pub struct Issuance {
    pub credentials: IssuedCredentials,
    pub target: Target,
    pub duration: SessionDuration,
    pub approved_by: Option<UserName>,
    /// The console sign-in URL, when one was asked for. A secret, like the credentials.
    pub console_url: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    InvalidDuration(#[from] DurationOutOfRange),
    /// The grant allowing it ends before the shortest session could.
    #[error(transparent)]
    AccessEnding(#[from] AccessEnding),
    #[error("this target needs a fresh TOTP code (totp)")]
    TotpRequired,
    #[error(transparent)]
    SecondFactor(#[from] FactorError),
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// The target's session tags cannot be set for this person within AWS's limits.
    #[error(transparent)]
    SessionTags(#[from] SessionTagError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Too many requests from this user in the current window (not audited: a flood must not
    /// become a flood of audit writes).
    #[error(transparent)]
    Rate(#[from] RateError),
    /// The federated user STS returned belongs to another account than the target's: the
    /// target's keys are another account's, and its credentials are withheld.
    #[error(
        "the target's federation keys belong to account {actual}, not {expected}; an administrator must seal the right keys"
    )]
    FederationAccountMismatch { expected: AccountId, actual: String },
    /// STS answered, but the audit record could not be written: the credentials are withheld.
    #[error("the audit record could not be written: {0}")]
    AuditUnavailable(UpstreamError),
}

impl From<AccessError> for IssueError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Denied(d) => Self::Denied(d),
            AccessError::Upstream(u) => Self::Upstream(u),
        }
    }
}

impl IssueError {
    /// The code of a refusal worth an audit record (the caller was known and said no to), or
    /// `None` for bad input and failures of our own.
    fn refusal_code(&self) -> Option<&'static str> {
        match self {
            Self::Denied(d) => Some(d.code()),
            Self::TotpRequired => Some("totp_required"),
            Self::SecondFactor(e) => e.is_refusal().then(|| e.code()),
            Self::Approval(e) => e.is_refusal().then(|| e.code()),
            Self::FederationAccountMismatch { .. } => Some("federation_keys_wrong_account"),
            Self::AccessEnding(_) => Some("access_ending"),
            Self::SessionTags(e) => Some(e.code()),
            Self::InvalidDuration(_)
            | Self::Invalid(_)
            | Self::Upstream(_)
            | Self::Rate(_)
            | Self::AuditUnavailable(_) => None,
        }
    }
}

/// The credential-issuing use case, over the ports.
pub struct CredentialIssuer {
    pub catalog: Arc<Catalog>,
    pub broker: Arc<dyn CredentialBroker>,
    pub vault: Arc<dyn KeyVault>,
    pub ledger: Arc<dyn Ledger>,
    pub clock: Arc<dyn Clock>,
    pub signing: BrokerSigning,
    pub second_factor: Arc<SecondFactor>,
    pub approvals: Arc<Approvals>,
    pub console: Arc<dyn ConsoleSignin>,
    /// The region default console destinations open in (when the target's partition has it).
    pub console_region: Option<String>,
    /// How often each user may ask, counted before anything else is looked at.
    pub rate: RateLimiter,
}

/// Everything checked before STS is called.
struct Checked {
    target: Target,
    grant: Grant,
    duration: SessionDuration,
    approved_by: Option<UserName>,
    approval_id: Option<ApprovalId>,
    destination: Option<Destination>,
    tags: ResolvedTags,
    /// Spending the codes and the approval: committed with the record, after STS.
    changes: Vec<Change>,
}

impl CredentialIssuer {
    pub async fn issue(
        &self,
        identity: Identity,
        request: &CredentialRequest,
        meta: &RequestMeta,
    ) -> Result<Issuance, IssueError> {
        let now = self.clock.now();
        let auth = identity.method.to_string();
        let user = identity.user.clone();
        // The count and the checks run side by side: the count costs the caller no extra latency.
        let (admitted, checked) = join(
            self.rate.admit(user.as_str(), now),
            self.checked(identity, request),
        )
        .await;
        admitted?;
        let Checked {
            target,
            grant,
            duration,
            approved_by,
            approval_id,
            destination,
            tags,
            changes,
        } = match checked {
            Ok(found) => found,
            Err(error) => {
                if let Some(code) = error.refusal_code() {
                    let mut record = AuditRecord::new(
                        meta,
                        now,
                        AuditEvent::CredentialsDenied,
                        user.as_str(),
                        &auth,
                    );
                    record.target = Some(request.target.clone());
                    record.reason = Some(code.to_owned());
                    record_refusal(self.ledger.as_ref(), &record).await;
                }
                return Err(error);
            }
        };

        let credentials = self.call_sts(&target, &user, duration, tags).await?;
        // A federated user is of the account whose keys made it: keys of another account,
        // even sealed for this target, give nothing.
        if matches!(target.kind, TargetKind::FederatedUser { .. }) {
            let actual = AccountId::of_arn(&credentials.principal_arn);
            if actual.as_ref() != Some(&target.account) {
                let error = IssueError::FederationAccountMismatch {
                    expected: target.account.clone(),
                    actual: actual.map_or_else(|| "unknown".to_owned(), |a| a.to_string()),
                };
                let mut record = AuditRecord::new(
                    meta,
                    now,
                    AuditEvent::CredentialsDenied,
                    user.as_str(),
                    &auth,
                );
                record.target = Some(target.name.clone());
                record.account = Some(target.account.clone());
                record.access_key_id = Some(credentials.access_key_id.clone());
                record.principal_arn = Some(credentials.principal_arn.clone());
                record.reason = error.refusal_code().map(str::to_owned);
                record_refusal(self.ledger.as_ref(), &record).await;
                return Err(error);
            }
        }
        let console_url = match &destination {
            None => None,
            Some(destination) => {
                // A console session as long as the credentials, for AssumeRole only: AWS
                // refuses SessionDuration with federation tokens, which carry their own.
                let session = matches!(target.kind, TargetKind::Role { .. })
                    .then(|| duration.seconds().clamp(SESSION_MIN, SESSION_MAX));
                Some(
                    self.console
                        .login_url(target.partition(), &credentials, session, destination)
                        .await?,
                )
            }
        };

        let event = if console_url.is_some() {
            AuditEvent::ConsoleIssued
        } else {
            AuditEvent::CredentialsIssued
        };
        let mut record = AuditRecord::new(meta, now, event, user.as_str(), &auth);
        record.target = Some(target.name.clone());
        record.account = Some(target.account.clone());
        record.access_key_id = Some(credentials.access_key_id.clone());
        record.principal_arn = Some(credentials.principal_arn.clone());
        record.expiration = Some(credentials.expiration);
        record.duration_seconds = Some(duration.seconds());
        record.reason = Some(grant.to_string());
        record.approved_by = approved_by.as_ref().map(ToString::to_string);
        record.approval_id = approval_id.as_ref().map(ToString::to_string);
        record.access_request_id = grant.via.as_ref().map(ToString::to_string);
        // Fail closed: the credentials exist in AWS now, but nobody receives them unless the
        // record of who got them is durably stored, and with it the codes and the approval that
        // allowed them are spent (a code or an approval raced by another request is refused
        // here, and its credentials are never handed out).
        if let Err(e) = self.ledger.commit(&changes, &record).await {
            let error = Self::refused_commit(e, &changes, &user, now);
            if let Some(code) = error.refusal_code() {
                // The credentials STS made are never handed out; the record says so, under
                // their key id, for whoever later asks who holds it.
                let mut denied = record.refused(AuditEvent::CredentialsDenied, code);
                denied.expiration = None;
                record_refusal(self.ledger.as_ref(), &denied).await;
            }
            return Err(error);
        }

        Ok(Issuance {
            credentials,
            target,
            duration,
            approved_by,
            console_url,
        })
    }

    /// Everything before STS: the grant, the duration, the caller's fresh code for a
    /// high-security target, and a second person's approval for a target that requires one.
    async fn checked(
        &self,
        identity: Identity,
        request: &CredentialRequest,
    ) -> Result<Checked, IssueError> {
        let user = identity.user.clone();
        let (caller, target, grant) = self.catalog.authorize(identity, &request.target).await?;
        let duration = SessionDuration::resolve(request.duration_seconds, &target, self.signing)?
            .within(grant.expires_at, self.clock.now(), &target)?;
        // From the person as the decision saw them (their directory and asserted groups), and
        // refused here, before STS, when AWS would refuse them. A federated-user target never
        // carries tags (the admin refuses them); should one, it is refused, never sent untagged.
        if !target.session_tags.is_empty() && !matches!(target.kind, TargetKind::Role { .. }) {
            return Err(InvalidValue::new(
                "session_tags",
                "are set on role targets only; an administrator must remove them from this target",
            )
            .into());
        }
        let tags = target.session_tags.resolve(&user, &caller.groups)?;
        let destination = match &request.console {
            None => None,
            Some(Some(url)) => Some(Destination::parse(url, target.partition())?),
            Some(None) => Some(Destination::default_for(
                target.partition(),
                self.console_region.as_deref(),
            )),
        };
        let mut changes = Vec::new();
        if target.high_security {
            let code = request.totp.as_ref().ok_or(IssueError::TotpRequired)?;
            changes.extend(self.second_factor.check(&user, code).await?.changes());
        }
        let (approved_by, approval_id) = if target.requires_approval() {
            let check = self
                .approvals
                .check_proof(&user, &target, request.approval.as_ref())
                .await?;
            changes.extend(check.changes);
            (Some(check.approved_by), check.approval_id)
        } else {
            (None, None)
        };
        Ok(Checked {
            target,
            grant,
            duration,
            approved_by,
            approval_id,
            destination,
            tags,
            changes,
        })
    }

    /// What a refused commit means: one of the caller's codes, the approver's code or the
    /// approval was spent (or a lock set) by a request that got there first.
    fn refused_commit(
        error: ChangeError,
        changes: &[Change],
        requester: &UserName,
        at: OffsetDateTime,
    ) -> IssueError {
        let Some(change) = error.conflicting(changes) else {
            return match error {
                ChangeError::Upstream(e) => IssueError::AuditUnavailable(e),
                other => IssueError::AuditUnavailable(UpstreamError::new(
                    crate::ports::Service::DynamoDb,
                    crate::ports::UpstreamKind::Refused,
                    other.to_string(),
                )),
            };
        };
        let mine = match change {
            Change::ClaimStep { user, .. } | Change::Unlocked { user, .. } => user == requester,
            _ => false,
        };
        if mine && let Some(e) = crate::factors::explain_conflict(change, at) {
            return IssueError::SecondFactor(e);
        }
        match crate::approval::explain_conflict(change, at) {
            Some(e) => IssueError::Approval(e),
            None => IssueError::Approval(ApprovalError::Used),
        }
    }

    async fn call_sts(
        &self,
        target: &Target,
        user: &UserName,
        duration: SessionDuration,
        tags: ResolvedTags,
    ) -> Result<IssuedCredentials, UpstreamError> {
        // Every STS input below comes from a type that proves it valid (UserName, RoleArn,
        // ExternalId, SessionPolicy, SessionDuration, ResolvedTags): nothing unchecked reaches
        // the call.
        match &target.kind {
            TargetKind::Role {
                role_arn,
                external_id,
            } => {
                let call = AssumeRoleCall {
                    role_arn: role_arn.clone(),
                    session_name: RoleSessionName::for_user(user),
                    source_identity: SourceIdentity::for_user(user),
                    external_id: external_id.clone(),
                    duration,
                    tags: tags.tags,
                    transitive: tags.transitive,
                };
                self.broker.assume_role(&call).await
            }
            TargetKind::FederatedUser {
                partition,
                sealed_keys,
                session_policy,
            } => {
                let keys = self
                    .vault
                    .open_federation_keys(sealed_keys, &FederationBinding::of(target))
                    .await?;
                let call = FederationTokenCall {
                    keys,
                    partition: *partition,
                    name: FederatedUserName::for_user(user),
                    policy: session_policy.clone(),
                    duration,
                };
                self.broker.federation_token(&call).await
            }
        }
    }
}
