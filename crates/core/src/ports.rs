//! The ports: what the domain needs from the outside world, one capability per trait. Adapters live in cooper-aws.

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::access::UserProfile;
use crate::audit::AuditRecord;
use crate::model::{FederationKeys, Grant, Sealed, Target};
use crate::names::{
    AccountId, ExternalId, FederatedUserName, GroupName, Level, Partition, RoleArn,
    RoleSessionName, SessionPolicy, SourceIdentity, TargetName, UserName,
};
use crate::password::PasswordHash;
use crate::session::SessionDuration;
use crate::token::{ApiTokenRecord, TokenId};
use crate::totp::TotpSecret;

/// The AWS service behind a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Sts,
    Kms,
    Ssm,
    Sns,
    Iam,
    /// The AWS federation (console sign-in) endpoint.
    Signin,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DynamoDb => "DynamoDB",
            Self::Sts => "STS",
            Self::Kms => "KMS",
            Self::Ssm => "SSM",
            Self::Sns => "SNS",
            Self::Iam => "IAM",
            Self::Signin => "AWS sign-in",
        })
    }
}

/// How a dependency failed; decides whether a retry later can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// Unreachable, timing out or failing on its side: retry later.
    Unavailable,
    /// Rate-limited: retry later, more slowly.
    Throttled,
    /// The service understood and said no (an IAM trust policy, a KMS key policy, a missing table).
    Refused,
    /// What came back (or what is stored) cannot be made sense of.
    Corrupt,
    /// What the caller handed over cannot be used here (a list cursor from another list).
    BadInput,
}

/// A dependency failed. The message is for operators' logs and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} {kind:?}: {message}")]
pub struct UpstreamError {
    pub service: Service,
    pub kind: UpstreamKind,
    pub message: String,
}

impl UpstreamError {
    pub fn new(service: Service, kind: UpstreamKind, message: impl Into<String>) -> Self {
        Self {
            service,
            kind,
            message: message.into(),
        }
    }
}

/// Reads the directory needs for access decisions. Every method costs a bounded number of
/// store calls, whatever the size of the directory, and none is a scan.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn api_token(&self, id: &TokenId) -> Result<Option<ApiTokenRecord>, UpstreamError>;

    /// The user's profile, memberships and direct grants.
    async fn user_profile(&self, user: &UserName) -> Result<Option<UserProfile>, UpstreamError>;

    async fn target(&self, name: &TargetName) -> Result<Option<Target>, UpstreamError>;

    /// The grants of `groups` that could cover `target`: on the target itself, or on its account.
    async fn group_grants_for(
        &self,
        groups: &[GroupName],
        target: &Target,
    ) -> Result<Vec<Grant>, UpstreamError>;

    /// The admin grants of `groups`.
    async fn group_admin_grants(
        &self,
        groups: &[GroupName],
    ) -> Result<Vec<crate::admin::scope::AdminGrant>, UpstreamError>;

    /// Every grant held by `groups`.
    async fn group_grants(&self, groups: &[GroupName]) -> Result<Vec<Grant>, UpstreamError>;

    async fn targets(&self, names: &[TargetName]) -> Result<Vec<Target>, UpstreamError>;

    /// The targets of `account` whose level is at most `max_level`.
    async fn account_targets(
        &self,
        account: &AccountId,
        max_level: Level,
    ) -> Result<Vec<Target>, UpstreamError>;
}

/// The durable audit trail.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Returns only once the record is durably stored; a record with the same id is never overwritten.
    async fn append(&self, record: &AuditRecord) -> Result<(), UpstreamError>;
}

/// An AssumeRole call, every input already validated.
#[derive(Debug, Clone)]
pub struct AssumeRoleCall {
    pub role_arn: RoleArn,
    pub session_name: RoleSessionName,
    pub source_identity: SourceIdentity,
    pub external_id: Option<ExternalId>,
    pub duration: SessionDuration,
}

/// A GetFederationToken call, every input already validated; signed with the target's own keys.
#[derive(Debug)]
pub struct FederationTokenCall {
    pub keys: FederationKeys,
    pub partition: Partition,
    pub name: FederatedUserName,
    pub policy: SessionPolicy,
    pub duration: SessionDuration,
}

/// Temporary credentials from STS.
#[derive(Debug)]
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    pub expiration: OffsetDateTime,
    /// The assumed-role or federated-user ARN the credentials act as.
    pub principal_arn: String,
}

/// STS.
#[async_trait]
pub trait CredentialBroker: Send + Sync {
    async fn assume_role(&self, call: &AssumeRoleCall) -> Result<IssuedCredentials, UpstreamError>;
    async fn federation_token(
        &self,
        call: &FederationTokenCall,
    ) -> Result<IssuedCredentials, UpstreamError>;
}

/// KMS, for the federated-user keys a target carries.
#[async_trait]
pub trait KeyVault: Send + Sync {
    async fn open_federation_keys(&self, sealed: &Sealed) -> Result<FederationKeys, UpstreamError>;

    /// Seals a TOTP secret under an encryption context naming `user`: it opens for no one else.
    async fn seal_totp_secret(
        &self,
        user: &UserName,
        secret: &TotpSecret,
    ) -> Result<Sealed, UpstreamError>;

    async fn open_totp_secret(
        &self,
        user: &UserName,
        sealed: &Sealed,
    ) -> Result<TotpSecret, UpstreamError>;
}

/// A user's active TOTP enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpEnrollment {
    pub sealed: Sealed,
    /// The last step whose code was accepted: no code of it, or of an earlier step, is accepted again.
    pub last_step: u64,
    pub enrolled_at: OffsetDateTime,
}

/// A TOTP secret handed out but not yet confirmed with a first code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTotp {
    pub sealed: Sealed,
    pub expires_at: OffsetDateTime,
}

/// Everything cooper keeps to authenticate one user locally, read in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFactors {
    pub totp: Option<TotpEnrollment>,
    pub pending: Option<PendingTotp>,
    pub password: Option<PasswordHash>,
    /// Failed attempts (codes, passwords) since the last success.
    pub failures: u32,
    pub locked_until: Option<OffsetDateTime>,
}

/// The result of claiming a TOTP step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepClaim {
    Accepted,
    /// This step, or a later one, was already used.
    Replayed,
}

/// Request counts in fixed windows, shared by every instance.
#[async_trait]
pub trait RequestCounter: Send + Sync {
    /// Counts one request for `key` in the window starting at `window_start` (Unix seconds),
    /// unless `limit` are counted there already: true when this request was counted. The count
    /// may be forgotten once `window_end` (Unix seconds) has passed.
    async fn count(
        &self,
        key: &str,
        window_start: i64,
        limit: u32,
        window_end: i64,
    ) -> Result<bool, UpstreamError>;
}

/// Where users' authentication factors live. Claims are atomic conditional writes, correct
/// under concurrent requests.
#[async_trait]
pub trait FactorStore: Send + Sync {
    async fn factors(&self, user: &UserName) -> Result<AuthFactors, UpstreamError>;

    async fn put_pending_totp(
        &self,
        user: &UserName,
        pending: &PendingTotp,
    ) -> Result<(), UpstreamError>;

    /// Makes the pending secret the active one (replacing any other), with `enrollment.last_step`
    /// claimed; refused (`Replayed`) if the pending secret changed meanwhile.
    async fn activate_totp(
        &self,
        user: &UserName,
        enrollment: &TotpEnrollment,
    ) -> Result<StepClaim, UpstreamError>;

    /// Claims `step` for the user's active enrollment, if no step at or after it was claimed;
    /// clears the failure count when `clear_failures`.
    async fn claim_step(
        &self,
        user: &UserName,
        step: u64,
        clear_failures: bool,
    ) -> Result<StepClaim, UpstreamError>;

    /// Counts one failure. When the count reaches `limit`, the user is locked until `until` and
    /// the count starts again; returns the lock if this failure set one.
    async fn record_failure(
        &self,
        user: &UserName,
        limit: u32,
        until: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, UpstreamError>;

    async fn set_password(
        &self,
        user: &UserName,
        hash: &PasswordHash,
        at: OffsetDateTime,
    ) -> Result<(), UpstreamError>;

    /// Removes the user's TOTP enrollment (an audited administrator's reset).
    async fn reset_totp(&self, user: &UserName) -> Result<(), UpstreamError>;
}
