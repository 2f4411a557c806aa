//! Issuing credentials: decide by grants, check the second factors a target asks for, validate
//! every STS input, call STS, audit durably, then answer.

use std::sync::Arc;

use futures_util::future::{join, try_join};
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::access::{Caller, Denial, Identity, caller_group_grant};
use crate::approval::{ApprovalError, ApprovalId, ApprovalProof, Approvals};
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::clock::Clock;
use crate::console::{ConsoleSignin, Destination, SESSION_MAX, SESSION_MIN};
use crate::factors::{FactorError, SecondFactor};
use crate::model::{Grant, Target, TargetKind};
use crate::names::{
    FederatedUserName, InvalidValue, RoleSessionName, SourceIdentity, TargetName, UserName,
};
use crate::ports::{
    AssumeRoleCall, AuditLog, CredentialBroker, Directory, FederationTokenCall, IssuedCredentials,
    KeyVault, UpstreamError,
};
use crate::rate::{RateError, RateLimiter};
use crate::session::{BrokerSigning, DurationOutOfRange, SessionDuration};
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
    #[error("this target needs a fresh TOTP code (totp)")]
    TotpRequired,
    #[error(transparent)]
    SecondFactor(#[from] FactorError),
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Too many requests from this user in the current window (not audited: a flood must not
    /// become a flood of audit writes).
    #[error(transparent)]
    Rate(#[from] RateError),
    /// STS answered, but the audit record could not be written: the credentials are withheld.
    #[error("the audit record could not be written: {0}")]
    AuditUnavailable(UpstreamError),
}

impl IssueError {
    /// The code of a refusal worth an audit record (the caller was known and said no to), or
    /// `None` for bad input and failures of our own.
    fn refusal_code(&self) -> Option<&'static str> {
        match self {
            Self::Denied(d) => Some(d.code()),
            Self::TotpRequired => Some("totp_required"),
            Self::SecondFactor(FactorError::Upstream(_))
            | Self::Approval(ApprovalError::Upstream(_)) => None,
            Self::SecondFactor(e) => Some(e.code()),
            Self::Approval(e) => Some(e.code()),
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
    pub directory: Arc<dyn Directory>,
    pub broker: Arc<dyn CredentialBroker>,
    pub vault: Arc<dyn KeyVault>,
    pub audit: Arc<dyn AuditLog>,
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
            self.rate.admit(&user, now),
            self.checked(identity, request, now),
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
                    self.audit_refusal(&record).await;
                }
                return Err(error);
            }
        };

        let credentials = self.call_sts(&target, &user, duration).await?;
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
        // Fail closed: the credentials exist in AWS now, but nobody receives them unless the
        // record of who got them is durably stored.
        self.audit
            .append(&record)
            .await
            .map_err(IssueError::AuditUnavailable)?;

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
        now: OffsetDateTime,
    ) -> Result<Checked, IssueError> {
        let user = identity.user.clone();
        let (target, grant) = self.authorize(identity, &request.target, now).await?;
        let duration = SessionDuration::resolve(request.duration_seconds, &target, self.signing)?;
        let destination = match &request.console {
            None => None,
            Some(Some(url)) => Some(Destination::parse(url, target.partition())?),
            Some(None) => Some(Destination::default_for(
                target.partition(),
                self.console_region.as_deref(),
            )),
        };
        if target.high_security {
            let code = request.totp.as_ref().ok_or(IssueError::TotpRequired)?;
            self.second_factor.verify(&user, code).await?;
        }
        let (approved_by, approval_id) = if target.requires_approval() {
            let (by, id) = self
                .approvals
                .check_proof(&user, &target, request.approval.as_ref())
                .await?;
            (Some(by), id)
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
        })
    }

    /// Deny by default: the caller must be an active user, the target must exist, and a grant of
    /// the user or of one of their groups must cover it.
    pub async fn authorize(
        &self,
        identity: Identity,
        target_name: &TargetName,
        now: OffsetDateTime,
    ) -> Result<(Target, Grant), IssueError> {
        let (profile, target) = try_join(
            self.directory.user_profile(&identity.user),
            self.directory.target(target_name),
        )
        .await?;
        let caller = Caller::admit(identity, profile, now)?;
        let target = target.ok_or(Denial::NotGranted)?;

        if let Some(grant) = caller.direct_grant_for(&target, now) {
            let grant = grant.clone();
            return Ok((target, grant));
        }
        if caller.groups.is_empty() {
            return Err(Denial::NotGranted.into());
        }
        let group_grants = self
            .directory
            .group_grants_for(&caller.groups, &target)
            .await?;
        let grant = caller_group_grant(&caller, &group_grants, &target, now)
            .ok_or(Denial::NotGranted)?
            .clone();
        Ok((target, grant))
    }

    async fn call_sts(
        &self,
        target: &Target,
        user: &UserName,
        duration: SessionDuration,
    ) -> Result<IssuedCredentials, UpstreamError> {
        // Every STS input below comes from a type that proves it valid (UserName, RoleArn,
        // ExternalId, SessionPolicy, SessionDuration): nothing unchecked reaches the call.
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
                };
                self.broker.assume_role(&call).await
            }
            TargetKind::FederatedUser {
                partition,
                sealed_keys,
                session_policy,
            } => {
                let keys = self.vault.open_federation_keys(sealed_keys).await?;
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

    /// Refusals are audited too, so that probing shows up; but a refusal stands whether or not
    /// its record could be written.
    async fn audit_refusal(&self, record: &AuditRecord) {
        if let Err(error) = self.audit.append(record).await {
            tracing::warn!(%error, request_id = %record.id, "could not audit a refusal");
        }
    }
}
