//! The ports: what the domain needs from the outside world, one capability per trait. Adapters live in cooper-aws.

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::access::UserProfile;
use crate::model::approvals::{ApprovalId, ApprovalRequest};
use crate::model::factors::{AuthFactors, Guard};
use crate::model::requests::{AccessRequest, AccessRequestId};
use crate::model::{Account, AdminGrant, FederationKeys, Grant, Principal, Sealed, Target};
use crate::names::{
    AccountId, ExternalId, FederatedUserName, GroupName, Level, Partition, RoleArn,
    RoleSessionName, SessionPolicy, SourceIdentity, TargetName, UserName,
};
use crate::revocation::SessionRevocations;
use crate::revocation::policy::{PolicyHolder, RevokedSessions};
use crate::session::SessionDuration;
use crate::token::{ApiTokenRecord, EnrollmentCodeRecord, TokenId};
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

    async fn enrollment_code(
        &self,
        id: &TokenId,
    ) -> Result<Option<EnrollmentCodeRecord>, UpstreamError>;

    /// The user's profile, memberships and direct grants.
    async fn user_profile(&self, user: &UserName) -> Result<Option<UserProfile>, UpstreamError>;

    /// The time-bound grants approved access requests gave `user` (also to someone the
    /// directory has no record of, whom an identity provider vouches for). One query of the
    /// user's own grants, expired ones possibly among them.
    async fn temporary_grants(&self, user: &UserName) -> Result<Vec<Grant>, UpstreamError>;

    async fn target(&self, name: &TargetName) -> Result<Option<Target>, UpstreamError>;

    /// The grants of `groups` that could cover the target `target` in `account`: on the target
    /// itself, or on the account. The reads go out side by side, however many groups.
    async fn group_grants_for(
        &self,
        groups: &[GroupName],
        target: &TargetName,
        account: &AccountId,
    ) -> Result<Vec<Grant>, UpstreamError>;

    /// The admin grants of `groups`.
    async fn group_admin_grants(
        &self,
        groups: &[GroupName],
    ) -> Result<Vec<AdminGrant>, UpstreamError>;

    /// Every grant held by `groups`.
    async fn group_grants(&self, groups: &[GroupName]) -> Result<Vec<Grant>, UpstreamError>;

    async fn targets(&self, names: &[TargetName]) -> Result<Vec<Target>, UpstreamError>;

    /// The accounts of `ids` that exist (one batch read, for naming them next to targets).
    async fn accounts_by_id(&self, ids: &[AccountId]) -> Result<Vec<Account>, UpstreamError>;

    /// The targets of `account` whose level is at most `max_level`.
    async fn account_targets(
        &self,
        account: &AccountId,
        max_level: Level,
    ) -> Result<Vec<Target>, UpstreamError>;

    /// What of `user`'s cooper sessions has been ended, and the version of that record (one
    /// key read, read consistently).
    async fn session_revocations(
        &self,
        user: &UserName,
    ) -> Result<Option<(SessionRevocations, u64)>, UpstreamError>;

    /// The revocations of AWS sessions held for one holder (by `PolicyHolder::key`), read
    /// consistently: one per person revoked there.
    async fn revocations_on(&self, holder: &str) -> Result<Vec<RevokedSessions>, UpstreamError>;
}

/// IAM in the target accounts, for the deny that ends a person's sessions there.
#[async_trait]
pub trait RevocationPolicies: Send + Sync {
    /// Writes `document` as the holder's `cooper-revocations` inline policy; `None` removes it.
    async fn write(
        &self,
        holder: &PolicyHolder,
        document: Option<&str>,
    ) -> Result<(), UpstreamError>;
}

/// An AssumeRole call, every input already validated.
#[derive(Debug, Clone)]
pub struct AssumeRoleCall {
    pub role_arn: RoleArn,
    pub session_name: RoleSessionName,
    pub source_identity: SourceIdentity,
    pub external_id: Option<ExternalId>,
    pub duration: SessionDuration,
    /// The session tags, resolved for the person and checked against AWS's limits.
    pub tags: Vec<crate::tags::SessionTag>,
    /// Which of `tags`' keys are transitive (kept through role chaining).
    pub transitive: Vec<crate::tags::TagKey>,
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

/// What a federated-user target's sealed keys are sealed for: they open for this account's
/// target and no other (the KMS encryption context names both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationBinding {
    pub account: AccountId,
    pub target: TargetName,
}

impl FederationBinding {
    pub fn of(target: &Target) -> Self {
        Self {
            account: target.account.clone(),
            target: target.name.clone(),
        }
    }
}

/// KMS, for the federated-user keys a target carries.
#[async_trait]
pub trait KeyVault: Send + Sync {
    /// Opens keys sealed for `binding`; keys sealed for any other account or target do not open.
    async fn open_federation_keys(
        &self,
        sealed: &Sealed,
        binding: &FederationBinding,
    ) -> Result<FederationKeys, UpstreamError>;

    /// Seals new keys for the federated-user target `binding` names (a rotation's), under the
    /// key new secrets are sealed with.
    async fn reseal_federation_keys(
        &self,
        keys: &FederationKeys,
        binding: &FederationBinding,
    ) -> Result<Sealed, UpstreamError>;

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

/// Request counts in fixed windows, shared by every instance.
#[async_trait]
pub trait RequestCounter: Send + Sync {
    /// Counts one for `key` in the window starting at `window_start` (Unix seconds), unless
    /// `limit` are counted there already: the count with this one, or `None` when it was not
    /// counted. The count may be forgotten once `window_end` (Unix seconds) has passed.
    async fn count(
        &self,
        key: &str,
        window_start: i64,
        limit: u32,
        window_end: i64,
    ) -> Result<Option<u32>, UpstreamError>;

    /// How many are counted for `key` in the window starting at `window_start`.
    async fn counted(&self, key: &str, window_start: i64) -> Result<u32, UpstreamError>;
}

/// Where users' authentication factors are read, and failures counted. Everything else about
/// them is written through the [`Ledger`](crate::ledger::Ledger), with its audit record.
#[async_trait]
pub trait FactorStore: Send + Sync {
    async fn factors(&self, user: &UserName) -> Result<AuthFactors, UpstreamError>;

    /// Counts one failure at `now`, forgetting the earlier ones first if the last was longer ago
    /// than the lockout; returns the guard as it stands after this failure. Each call counts
    /// exactly once, whatever runs at the same time; a failure is counted even when no change is
    /// written (that is the point), so it is not part of a ledger commit.
    async fn record_failure(
        &self,
        user: &UserName,
        now: OffsetDateTime,
    ) -> Result<Guard, UpstreamError>;
}

/// Where approval requests are read (they are written through the ledger).
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    async fn approval(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, UpstreamError>;

    /// `requester`'s requests, newest first, at most `limit` (one query of their own).
    async fn approvals_by(
        &self,
        requester: &UserName,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>, UpstreamError>;

    /// The requests made since `since` that asked any of `principals`, newest first, each
    /// once, at most `limit`. One query per principal, whatever else is stored.
    async fn approvals_asking(
        &self,
        principals: &[Principal],
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>, UpstreamError>;
}

/// Where access requests are read (they are written through the ledger).
#[async_trait]
pub trait AccessRequestStore: Send + Sync {
    async fn access_request(
        &self,
        id: &AccessRequestId,
    ) -> Result<Option<AccessRequest>, UpstreamError>;

    /// `requester`'s requests, newest first, at most `limit`.
    async fn requests_by(
        &self,
        requester: &UserName,
        limit: usize,
    ) -> Result<Vec<AccessRequest>, UpstreamError>;

    /// The requests made since `since` that asked any of `principals`, newest first, each
    /// once, at most `limit`. One query per principal, whatever else is stored.
    async fn requests_asking(
        &self,
        principals: &[Principal],
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AccessRequest>, UpstreamError>;
}

/// A cooper session to sign: who, how they signed in, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    /// The session's id, carried in its token (what a sign-out or a revoke ends).
    pub session_id: crate::revocation::SessionId,
    pub user: UserName,
    /// The identity provider that vouched for the user, for a session made from its token.
    pub idp: Option<String>,
    /// Groups the identity provider asserted (cooper checked them when it signed).
    pub groups: Vec<GroupName>,
    /// The user's directory groups at sign-in, if few (`catalog::hint_of`): which grants a
    /// decision reads early, never authority (`Identity::hinted_groups`).
    pub hinted_groups: Vec<GroupName>,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The session could not be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session could not be signed")]
pub struct SigningUnavailable;

/// Signs cooper sessions (bearer tokens the API accepts).
pub trait SessionSigner: Send + Sync {
    fn sign(&self, claims: &SessionClaims) -> Result<SecretString, SigningUnavailable>;
}

/// Holds an answer back, so that refusals take as long whatever their reason (timing must not
/// tell an unknown user from a wrong password or a wrong code).
#[async_trait]
pub trait Pacer: Send + Sync {
    /// A point on a monotonic clock.
    fn mark(&self) -> std::time::Instant;
    /// Returns once `floor` has passed since `since`.
    async fn hold(&self, since: std::time::Instant, floor: std::time::Duration);
}
