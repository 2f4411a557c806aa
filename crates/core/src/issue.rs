//! Issuing credentials: decide by grants, validate every STS input, call STS, audit durably, then answer.

use std::sync::Arc;

use futures_util::future::try_join;
use time::OffsetDateTime;

use crate::access::{Caller, Denial, Identity, caller_group_grant};
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::clock::Clock;
use crate::model::{Grant, Target, TargetKind};
use crate::names::{FederatedUserName, RoleSessionName, SourceIdentity, TargetName, UserName};
use crate::ports::{
    AssumeRoleCall, AuditLog, CredentialBroker, Directory, FederationTokenCall, IssuedCredentials,
    KeyVault, UpstreamError,
};
use crate::session::{BrokerSigning, DurationOutOfRange, SessionDuration};

/// What a caller asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    pub target: TargetName,
    pub duration_seconds: Option<u64>,
}

/// Credentials handed out, with what they are for.
#[derive(Debug)]
pub struct Issuance {
    pub credentials: IssuedCredentials,
    pub target: Target,
    pub duration: SessionDuration,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    InvalidDuration(#[from] DurationOutOfRange),
    #[error(transparent)]
    Upstream(UpstreamError),
    /// STS answered, but the audit record could not be written: the credentials are withheld.
    #[error("the audit record could not be written: {0}")]
    AuditUnavailable(UpstreamError),
}

/// The credential-issuing use case, over the ports.
pub struct CredentialIssuer {
    pub directory: Arc<dyn Directory>,
    pub broker: Arc<dyn CredentialBroker>,
    pub vault: Arc<dyn KeyVault>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
    pub signing: BrokerSigning,
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
        let actor = user.to_string();

        let (target, grant) = match self.authorize(identity, &request.target, now).await {
            Ok(found) => found,
            Err(IssueError::Denied(denial)) => {
                self.audit_denial(&actor, &auth, request, meta, now, denial)
                    .await;
                return Err(denial.into());
            }
            Err(other) => return Err(other),
        };

        let duration = SessionDuration::resolve(request.duration_seconds, &target, self.signing)?;
        let credentials = self
            .call_sts(&target, &user, duration)
            .await
            .map_err(IssueError::Upstream)?;

        let record = AuditRecord {
            id: meta.request_id.clone(),
            at: now,
            event: AuditEvent::CredentialsIssued,
            actor,
            auth,
            source_ip: meta.source_ip,
            target: Some(target.name.clone()),
            account: Some(target.account.clone()),
            access_key_id: Some(credentials.access_key_id.clone()),
            principal_arn: Some(credentials.principal_arn.clone()),
            expiration: Some(credentials.expiration),
            duration_seconds: Some(duration.seconds()),
            reason: Some(grant.to_string()),
        };
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
        })
    }

    /// Deny by default: the caller must be an active user, the target must exist, and a grant of
    /// the user or of one of their groups must cover it.
    async fn authorize(
        &self,
        identity: Identity,
        target_name: &TargetName,
        now: OffsetDateTime,
    ) -> Result<(Target, Grant), IssueError> {
        let (profile, target) = try_join(
            self.directory.user_profile(&identity.user),
            self.directory.target(target_name),
        )
        .await
        .map_err(IssueError::Upstream)?;
        let caller = Caller::admit(identity, profile, now)?;
        let target = target.ok_or(Denial::NotGranted)?;

        if let Some(grant) = caller.direct_grant_for(&target, now) {
            return Ok((target.clone(), grant.clone()));
        }
        if caller.groups.is_empty() {
            return Err(Denial::NotGranted.into());
        }
        let group_grants = self
            .directory
            .group_grants_for(&caller.groups, &target)
            .await
            .map_err(IssueError::Upstream)?;
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

    /// Refusals are audited too, so that probing shows up; but a refusal stands whether or not its
    /// record could be written.
    async fn audit_denial(
        &self,
        actor: &str,
        auth: &str,
        request: &CredentialRequest,
        meta: &RequestMeta,
        now: OffsetDateTime,
        denial: Denial,
    ) {
        let record = AuditRecord {
            id: meta.request_id.clone(),
            at: now,
            event: AuditEvent::CredentialsDenied,
            actor: actor.to_owned(),
            auth: auth.to_owned(),
            source_ip: meta.source_ip,
            target: Some(request.target.clone()),
            account: None,
            access_key_id: None,
            principal_arn: None,
            expiration: None,
            duration_seconds: None,
            reason: Some(denial.code().to_owned()),
        };
        if let Err(error) = self.audit.append(&record).await {
            tracing::warn!(%error, request_id = %meta.request_id, "could not audit a denial");
        }
    }
}
