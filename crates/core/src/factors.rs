//! Second factors: checking a fresh TOTP code (it is claimed in the same write as what it
//! allows, and a wrong one is counted towards a lockout), enrolling an authenticator, and setting
//! a password with a fresh code.

use std::sync::Arc;

use secrecy::SecretString;
use time::{Duration, OffsetDateTime};

use crate::access::{AuthMethod, Caller, Denial, Identity};
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::clock::{Clock, Entropy, EntropyUnavailable};
use crate::ledger::{Change, ChangeError, Ledger, record_refusal};
use crate::model::factors::{AuthFactors, LOCKOUT, PendingTotp, TotpEnrollment};
use crate::names::UserName;
use crate::password::{NewPassword, PasswordError, PasswordHash};
use crate::ports::{Directory, FactorStore, KeyVault, UpstreamError};
use crate::totp::{TotpCode, TotpIssuer, TotpSecret};

pub use crate::model::factors::MAX_FAILURES;

/// How long an enrollment may wait for its first code.
pub const PENDING_ENROLLMENT: Duration = Duration::minutes(10);

/// Why a code (or a login) was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("no authenticator is enrolled for this user")]
    NotEnrolled,
    #[error("the code is wrong or too old")]
    InvalidCode,
    #[error("this code was already used; wait for the next one")]
    Replayed,
    #[error("too many failed attempts; try again in {retry_after_seconds} seconds")]
    LockedOut {
        until: OffsetDateTime,
        retry_after_seconds: i64,
    },
    #[error("the user name, password or code is wrong")]
    InvalidCredentials,
    #[error("a current code is needed to enroll again")]
    CodeRequired,
    #[error("there is no enrollment waiting for confirmation (start again)")]
    NoPendingEnrollment,
    /// A script's API token, or an identity provider's token used as a bearer, cannot enroll,
    /// set a password or approve: those take a person signed in to cooper.
    #[error("this needs a signed-in session (cooper login), not a script's token")]
    SessionRequired,
    #[error("an authenticator is enrolled already: an enrollment code enrolls only a first one")]
    AlreadyEnrolled,
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
    #[error("the password could not be hashed")]
    Hashing,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The change was allowed but its audit record could not be written: nothing was done.
    #[error("the audit record could not be written: {0}")]
    AuditUnavailable(UpstreamError),
}

impl From<PasswordError> for FactorError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Entropy(e) => Self::Entropy(e),
            PasswordError::Hashing => Self::Hashing,
        }
    }
}

impl FactorError {
    /// A stable code naming the refusal (for audit records and, through the API, clients).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotEnrolled => "totp_not_enrolled",
            Self::InvalidCode => "totp_invalid",
            Self::Replayed => "totp_replayed",
            Self::LockedOut { .. } => "locked_out",
            Self::InvalidCredentials => "invalid_credentials",
            Self::CodeRequired => "totp_required",
            Self::NoPendingEnrollment => "no_pending_enrollment",
            Self::SessionRequired => "session_required",
            Self::AlreadyEnrolled => "already_enrolled",
            Self::Denied(d) => d.code(),
            Self::Entropy(_) | Self::Hashing => "internal",
            Self::Upstream(_) => "upstream",
            Self::AuditUnavailable(_) => "audit_unavailable",
        }
    }

    /// A refusal worth an audit record (the caller was told no), as opposed to a failure of ours.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            Self::Upstream(_) | Self::Entropy(_) | Self::Hashing | Self::AuditUnavailable(_)
        )
    }

    /// What a failed commit means, for the changes a use case built.
    pub fn from_commit(error: ChangeError, changes: &[Change], at: OffsetDateTime) -> Self {
        match error.conflicting(changes) {
            Some(change) => explain_conflict(change, at).unwrap_or(Self::NoPendingEnrollment),
            None => match error {
                ChangeError::Upstream(e) => Self::AuditUnavailable(e),
                ChangeError::Conflict { .. } | ChangeError::TooLarge => {
                    Self::AuditUnavailable(UpstreamError::new(
                        crate::ports::Service::DynamoDb,
                        crate::ports::UpstreamKind::Refused,
                        "the audit record could not be written",
                    ))
                }
            },
        }
    }
}

pub(crate) fn locked(until: OffsetDateTime, now: OffsetDateTime) -> FactorError {
    FactorError::LockedOut {
        until,
        retry_after_seconds: (until - now).whole_seconds().max(1),
    }
}

/// What it means that a code's claim was refused when the commit was written: the code was
/// used meanwhile, or the user was locked out meanwhile.
pub fn explain_conflict(change: &Change, at: OffsetDateTime) -> Option<FactorError> {
    match change {
        Change::ClaimStep { .. } | Change::Mark { .. } => Some(FactorError::Replayed),
        // The lock was set by failures that landed after our read: it runs a full window from
        // about now.
        Change::Unlocked { .. } => Some(locked(at + LOCKOUT, at)),
        Change::UseEnrollmentCode { .. } => Some(FactorError::InvalidCredentials),
        _ => None,
    }
}

/// A fresh code that matched the user's authenticator: the changes that claim it, to be
/// committed together with what the code allows (so a code that is used is claimed, and a code
/// that is claimed was used for exactly that).
#[derive(Debug, Clone)]
pub struct CodeProof {
    pub user: UserName,
    pub step: u64,
    at: OffsetDateTime,
    clear_failures: bool,
}

impl CodeProof {
    /// The claim: not locked out when written (failures landing meanwhile count), and the step
    /// not used before.
    pub fn changes(&self) -> [Change; 2] {
        [
            Change::Unlocked {
                user: self.user.clone(),
                now: self.at,
                clear_failures: self.clear_failures,
            },
            Change::ClaimStep {
                user: self.user.clone(),
                step: self.step,
            },
        ]
    }
}

/// Checks fresh TOTP codes: RFC 6238 with one step of skew; each step good once per user (the
/// claim is a conditional write), failures counted towards a lockout.
pub struct SecondFactor {
    pub store: Arc<dyn FactorStore>,
    pub vault: Arc<dyn KeyVault>,
    pub clock: Arc<dyn Clock>,
}

impl SecondFactor {
    pub(crate) fn check_lock(
        factors: &AuthFactors,
        now: OffsetDateTime,
    ) -> Result<(), FactorError> {
        match factors.guard.locked_until(now) {
            Some(until) => Err(locked(until, now)),
            None => Ok(()),
        }
    }

    /// Counts a failure; the error is the lockout if the user is now locked out.
    pub(crate) async fn fail(
        &self,
        user: &UserName,
        now: OffsetDateTime,
        error: FactorError,
    ) -> FactorError {
        match self.store.record_failure(user, now).await {
            Ok(guard) => match guard.locked_until(now) {
                Some(until) => locked(until, now),
                None => error,
            },
            Err(upstream) => upstream.into(),
        }
    }

    /// Checks `code` for `user`: the proof to commit with what it allows.
    pub async fn check(&self, user: &UserName, code: &TotpCode) -> Result<CodeProof, FactorError> {
        let factors = self.store.factors(user).await?;
        self.check_with(user, &factors, code).await
    }

    /// As `check`, with the user's factors already read.
    pub async fn check_with(
        &self,
        user: &UserName,
        factors: &AuthFactors,
        code: &TotpCode,
    ) -> Result<CodeProof, FactorError> {
        self.check_charging(user, factors, code, user).await
    }

    /// As `check_with`, counting a wrong code against `charged` (who typed it) rather than
    /// `user`: someone who names another person's code must not spend that person's failures,
    /// or anyone could lock them out. The lock of `user` still holds.
    pub async fn check_charging(
        &self,
        user: &UserName,
        factors: &AuthFactors,
        code: &TotpCode,
        charged: &UserName,
    ) -> Result<CodeProof, FactorError> {
        let now = self.clock.now();
        Self::check_lock(factors, now)?;
        let enrollment = factors.totp.as_ref().ok_or(FactorError::NotEnrolled)?;
        let secret = self
            .vault
            .open_totp_secret(user, &enrollment.sealed)
            .await?;
        let Some(step) = secret.matching_step(code, now) else {
            let error = self.fail(charged, now, FactorError::InvalidCode).await;
            return Err(match error {
                // The one charged is locked out, not the code's owner: no lock to tell of hers.
                FactorError::LockedOut { .. } if charged != user => FactorError::InvalidCode,
                other => other,
            });
        };
        // A replay is not counted as a failure: it is what a legitimate user gets for typing
        // the same code twice within 30 seconds.
        if step <= enrollment.last_step {
            return Err(FactorError::Replayed);
        }
        Ok(CodeProof {
            user: user.clone(),
            step,
            at: now,
            clear_failures: factors.guard.failures > 0,
        })
    }
}

/// A started enrollment: what the authenticator app needs. Holds the secret; shown once.
pub struct StartedEnrollment {
    pub provisioning_uri: SecretString,
    pub secret_base32: SecretString,
    pub expires_at: OffsetDateTime,
}

/// Enrolling an authenticator app: start (a new secret, sealed, waiting), then confirm with the
/// app's first code. Each step is committed with its audit record.
///
/// Only a person may enroll: someone signed in to cooper, or the holder of a one-time
/// enrollment code an admin issued (for a first authenticator). A script's API token or an
/// identity provider's token alone cannot: a stolen one must not move a person's second factor
/// to the thief's phone.
pub struct Enrollment {
    pub directory: Arc<dyn Directory>,
    pub verifier: Arc<SecondFactor>,
    pub ledger: Arc<dyn Ledger>,
    pub entropy: Arc<dyn Entropy>,
    pub issuer: TotpIssuer,
}

impl Enrollment {
    /// Starts an enrollment for the caller. Someone already enrolled must give a current code:
    /// a stolen bearer token alone cannot move the second factor to the thief's phone.
    pub async fn start(
        &self,
        identity: &Identity,
        current_code: Option<&TotpCode>,
        meta: &RequestMeta,
    ) -> Result<StartedEnrollment, FactorError> {
        let now = self.verifier.clock.now();
        let record = AuditRecord::by(identity, meta, now, AuditEvent::TotpEnrollmentStarted);
        let result = self.started(identity, current_code, now, &record).await;
        self.refused(result, record).await
    }

    /// Who may enroll, and the admin whose enrollment code they use (if they use one): an
    /// active user, signed in or holding their own unused code.
    async fn enroller(
        &self,
        identity: &Identity,
        now: OffsetDateTime,
    ) -> Result<Option<Option<UserName>>, FactorError> {
        let code = match &identity.method {
            AuthMethod::Session { .. } => None,
            AuthMethod::EnrollmentCode(id) => {
                let record = self
                    .directory
                    .enrollment_code(id)
                    .await?
                    .filter(|r| {
                        r.user == identity.user && r.used_at.is_none() && r.expires_at > now
                    })
                    .ok_or(FactorError::InvalidCredentials)?;
                Some(record.issued_by)
            }
            _ => return Err(FactorError::SessionRequired),
        };
        let profile = self.directory.user_profile(&identity.user).await?;
        Caller::admit_enrolling(identity.clone(), profile, now)?;
        Ok(code)
    }

    async fn started(
        &self,
        identity: &Identity,
        current_code: Option<&TotpCode>,
        now: OffsetDateTime,
        record: &AuditRecord,
    ) -> Result<StartedEnrollment, FactorError> {
        let v = &self.verifier;
        let user = &identity.user;
        let by_code = self.enroller(identity, now).await?;
        let factors = v.store.factors(user).await?;
        SecondFactor::check_lock(&factors, now)?;
        let mut changes = Vec::new();
        let bootstrapped_by = match (&factors.totp, by_code) {
            (Some(_), Some(_)) => return Err(FactorError::AlreadyEnrolled),
            // Enrolling again keeps the mark of how the first one was enrolled: whoever held
            // the first secret could have made this one too.
            (Some(enrollment), None) => {
                let code = current_code.ok_or(FactorError::CodeRequired)?;
                changes.extend(v.check_with(user, &factors, code).await?.changes());
                enrollment.bootstrapped_by.clone()
            }
            (None, Some(issuer)) => issuer,
            (None, None) => None,
        };
        let secret = TotpSecret::generate(self.entropy.as_ref())?;
        let provisioning_uri = secret
            .provisioning_uri(&self.issuer, user)
            .ok_or(FactorError::Hashing)?;
        let sealed = v.vault.seal_totp_secret(user, &secret).await?;
        let expires_at = now + PENDING_ENROLLMENT;
        changes.push(Change::PutPendingTotp {
            user: user.clone(),
            pending: PendingTotp {
                sealed,
                expires_at,
                bootstrapped_by,
            },
        });
        self.ledger
            .commit(&changes, record)
            .await
            .map_err(|e| FactorError::from_commit(e, &changes, now))?;
        Ok(StartedEnrollment {
            provisioning_uri,
            secret_base32: secret.base32(),
            expires_at,
        })
    }

    /// Confirms the pending enrollment with a first code from the app; it then becomes the
    /// user's authenticator (replacing any earlier one). A first password may be set with it
    /// (someone enrolling with a code has no other way to get one). An enrollment code is used
    /// up by this, in the same write.
    pub async fn confirm(
        &self,
        identity: &Identity,
        code: &TotpCode,
        password: Option<&NewPassword>,
        meta: &RequestMeta,
    ) -> Result<(), FactorError> {
        let now = self.verifier.clock.now();
        let record = AuditRecord::by(identity, meta, now, AuditEvent::TotpEnrolled);
        let result = self.confirmed(identity, code, password, now, &record).await;
        self.refused(result, record).await
    }

    async fn confirmed(
        &self,
        identity: &Identity,
        code: &TotpCode,
        password: Option<&NewPassword>,
        now: OffsetDateTime,
        record: &AuditRecord,
    ) -> Result<(), FactorError> {
        let v = &self.verifier;
        let user = &identity.user;
        let by_code = self.enroller(identity, now).await?;
        let factors = v.store.factors(user).await?;
        if by_code.is_some() && factors.totp.is_some() {
            return Err(FactorError::AlreadyEnrolled);
        }
        SecondFactor::check_lock(&factors, now)?;
        let pending = factors
            .pending
            .filter(|p| p.expires_at > now)
            .ok_or(FactorError::NoPendingEnrollment)?;
        let secret = v.vault.open_totp_secret(user, &pending.sealed).await?;
        let Some(step) = secret.matching_step(code, now) else {
            return Err(v.fail(user, now, FactorError::InvalidCode).await);
        };
        let mut changes = vec![
            Change::Unlocked {
                user: user.clone(),
                now,
                clear_failures: factors.guard.failures > 0,
            },
            Change::ActivateTotp {
                user: user.clone(),
                enrollment: TotpEnrollment {
                    sealed: pending.sealed,
                    last_step: step,
                    enrolled_at: now,
                    bootstrapped_by: pending.bootstrapped_by,
                },
            },
        ];
        if let Some(password) = password {
            changes.push(Change::PutPassword {
                user: user.clone(),
                hash: PasswordHash::create(password, self.entropy.as_ref())?,
                at: now,
            });
        }
        if let AuthMethod::EnrollmentCode(id) = &identity.method {
            changes.push(Change::UseEnrollmentCode {
                id: id.clone(),
                user: user.clone(),
                now,
            });
        }
        self.ledger
            .commit(&changes, record)
            .await
            .map_err(|e| FactorError::from_commit(e, &changes, now))?;
        tracing::info!(%user, "authenticator enrolled");
        Ok(())
    }

    async fn refused<T>(
        &self,
        result: Result<T, FactorError>,
        record: AuditRecord,
    ) -> Result<T, FactorError> {
        if let Err(e) = &result
            && e.is_refusal()
        {
            let record = record.refused(AuditEvent::TotpEnrollmentRefused, e.code());
            record_refusal(self.ledger.as_ref(), &record).await;
        }
        result
    }
}

/// Setting or changing a password: the caller, signed in, active, with a fresh code.
pub struct PasswordChange {
    pub directory: Arc<dyn Directory>,
    pub verifier: Arc<SecondFactor>,
    pub ledger: Arc<dyn Ledger>,
    pub entropy: Arc<dyn Entropy>,
}

impl PasswordChange {
    pub async fn set(
        &self,
        identity: &Identity,
        password: &NewPassword,
        code: &TotpCode,
        meta: &RequestMeta,
    ) -> Result<(), FactorError> {
        let now = self.verifier.clock.now();
        let record = AuditRecord::by(identity, meta, now, AuditEvent::PasswordChanged);
        let result = if identity.method.is_session() {
            self.changed(&identity.user, password, code, now, &record)
                .await
        } else {
            Err(FactorError::SessionRequired)
        };
        if let Err(e) = &result
            && e.is_refusal()
        {
            let record = record.refused(AuditEvent::PasswordRefused, e.code());
            record_refusal(self.ledger.as_ref(), &record).await;
        }
        result
    }

    async fn changed(
        &self,
        user: &UserName,
        password: &NewPassword,
        code: &TotpCode,
        now: OffsetDateTime,
        record: &AuditRecord,
    ) -> Result<(), FactorError> {
        // A session outlives a user's disabling: the directory still has its say.
        let profile = self.directory.user_profile(user).await?;
        Caller::admit(
            Identity::new(user.clone(), AuthMethod::Session { idp: None }),
            profile,
            now,
        )?;
        let proof = self.verifier.check(user, code).await?;
        let hash = PasswordHash::create(password, self.entropy.as_ref())?;
        let mut changes = proof.changes().to_vec();
        changes.push(Change::PutPassword {
            user: user.clone(),
            hash,
            at: now,
        });
        self.ledger
            .commit(&changes, record)
            .await
            .map_err(|e| FactorError::from_commit(e, &changes, now))?;
        tracing::info!(%user, "password set");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::TokenId;

    #[test]
    fn a_lost_race_over_a_code_or_a_lock_says_what_was_lost() {
        let at = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let user = UserName::parse("alice").unwrap();
        let unlocked = Change::Unlocked {
            user: user.clone(),
            now: at,
            clear_failures: false,
        };
        // A lock set by failures that landed meanwhile: a full window from about now.
        assert!(matches!(
            explain_conflict(&unlocked, at),
            Some(FactorError::LockedOut { until, retry_after_seconds })
                if until == at + LOCKOUT && retry_after_seconds == LOCKOUT.whole_seconds()
        ));
        let code = Change::UseEnrollmentCode {
            id: TokenId::parse("0123456789abcdef").unwrap(),
            user,
            now: at,
        };
        assert!(matches!(
            explain_conflict(&code, at),
            Some(FactorError::InvalidCredentials)
        ));
    }
}
