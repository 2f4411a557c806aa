//! Second factors: verifying a fresh TOTP code (once only, with lockout), enrolling an
//! authenticator, local login with password and code, and changing a password.

use std::sync::Arc;

use secrecy::SecretString;
use time::{Duration, OffsetDateTime};

use crate::access::{Denial, Identity};
use crate::clock::{Clock, Entropy, EntropyUnavailable};
use crate::model::{User, UserStatus};
use crate::names::UserName;
use crate::password::{NewPassword, PasswordError, PasswordHash};
use crate::ports::{
    AuthFactors, Directory, FactorStore, KeyVault, PendingTotp, StepClaim, TotpEnrollment,
    UpstreamError,
};
use crate::totp::{TotpCode, TotpIssuer, TotpSecret};

/// Failed attempts in a row that lock a user out.
pub const MAX_FAILURES: u32 = 5;
/// How long a lockout lasts.
pub const LOCKOUT: Duration = Duration::minutes(15);
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
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
    #[error("the password could not be hashed")]
    Hashing,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
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
            Self::Denied(d) => d.code(),
            Self::Entropy(_) | Self::Hashing => "internal",
            Self::Upstream(_) => "upstream",
        }
    }
}

fn locked(until: OffsetDateTime, now: OffsetDateTime) -> FactorError {
    FactorError::LockedOut {
        until,
        retry_after_seconds: (until - now).whole_seconds().max(1),
    }
}

/// Verifies fresh TOTP codes: RFC 6238 with one step of skew, each step accepted once per user
/// (an atomic conditional write), failures counted towards a lockout.
pub struct SecondFactor {
    pub store: Arc<dyn FactorStore>,
    pub vault: Arc<dyn KeyVault>,
    pub clock: Arc<dyn Clock>,
}

impl SecondFactor {
    fn check_lock(factors: &AuthFactors, now: OffsetDateTime) -> Result<(), FactorError> {
        match factors.locked_until {
            Some(until) if until > now => Err(locked(until, now)),
            _ => Ok(()),
        }
    }

    /// Counts a failure; the error is the lockout if this failure started one.
    async fn fail(&self, user: &UserName, now: OffsetDateTime, error: FactorError) -> FactorError {
        match self
            .store
            .record_failure(user, MAX_FAILURES, now + LOCKOUT)
            .await
        {
            Ok(Some(until)) => locked(until, now),
            Ok(None) => error,
            Err(upstream) => upstream.into(),
        }
    }

    /// Accepts `code` for `user` once; returns the step it claimed.
    pub async fn verify(&self, user: &UserName, code: &TotpCode) -> Result<u64, FactorError> {
        let factors = self.store.factors(user).await?;
        self.verify_with(user, &factors, code).await
    }

    /// As `verify`, with the user's factors already read.
    pub async fn verify_with(
        &self,
        user: &UserName,
        factors: &AuthFactors,
        code: &TotpCode,
    ) -> Result<u64, FactorError> {
        let now = self.clock.now();
        Self::check_lock(factors, now)?;
        let enrollment = factors.totp.as_ref().ok_or(FactorError::NotEnrolled)?;
        let secret = self
            .vault
            .open_totp_secret(user, &enrollment.sealed)
            .await?;
        let Some(step) = secret.matching_step(code, now) else {
            return Err(self.fail(user, now, FactorError::InvalidCode).await);
        };
        // A replay is not counted as a failure: it is what a legitimate user gets for typing
        // the same code twice within 30 seconds.
        if step <= enrollment.last_step {
            return Err(FactorError::Replayed);
        }
        match self
            .store
            .claim_step(user, step, factors.failures > 0)
            .await?
        {
            StepClaim::Accepted => Ok(step),
            StepClaim::Replayed => Err(FactorError::Replayed),
        }
    }
}

/// A started enrollment: what the authenticator app needs. Holds the secret; shown once.
pub struct StartedEnrollment {
    pub provisioning_uri: SecretString,
    pub secret_base32: SecretString,
    pub expires_at: OffsetDateTime,
}

/// Enrolling an authenticator app.
pub struct Enrollment {
    pub verifier: Arc<SecondFactor>,
    pub entropy: Arc<dyn Entropy>,
    pub issuer: TotpIssuer,
}

impl Enrollment {
    /// Starts an enrollment for the caller. Someone already enrolled must give a current code:
    /// a stolen bearer token alone cannot move the second factor to the thief's phone.
    pub async fn start(
        &self,
        user: &UserName,
        current_code: Option<&TotpCode>,
    ) -> Result<StartedEnrollment, FactorError> {
        let v = &self.verifier;
        let factors = v.store.factors(user).await?;
        SecondFactor::check_lock(&factors, v.clock.now())?;
        if factors.totp.is_some() {
            let code = current_code.ok_or(FactorError::CodeRequired)?;
            v.verify_with(user, &factors, code).await?;
        }
        let secret = TotpSecret::generate(self.entropy.as_ref())?;
        let provisioning_uri = secret
            .provisioning_uri(&self.issuer, user)
            .ok_or(FactorError::Hashing)?;
        let sealed = v.vault.seal_totp_secret(user, &secret).await?;
        let expires_at = v.clock.now() + PENDING_ENROLLMENT;
        v.store
            .put_pending_totp(user, &PendingTotp { sealed, expires_at })
            .await?;
        Ok(StartedEnrollment {
            provisioning_uri,
            secret_base32: secret.base32(),
            expires_at,
        })
    }

    /// Confirms the pending enrollment with a first code from the app; it then becomes the
    /// user's authenticator (replacing any earlier one).
    pub async fn confirm(&self, user: &UserName, code: &TotpCode) -> Result<(), FactorError> {
        let v = &self.verifier;
        let now = v.clock.now();
        let factors = v.store.factors(user).await?;
        SecondFactor::check_lock(&factors, now)?;
        let pending = factors
            .pending
            .filter(|p| p.expires_at > now)
            .ok_or(FactorError::NoPendingEnrollment)?;
        let secret = v.vault.open_totp_secret(user, &pending.sealed).await?;
        let Some(step) = secret.matching_step(code, now) else {
            return Err(v.fail(user, now, FactorError::InvalidCode).await);
        };
        let enrollment = TotpEnrollment {
            sealed: pending.sealed,
            last_step: step,
            enrolled_at: now,
        };
        match v.store.activate_totp(user, &enrollment).await? {
            StepClaim::Accepted => Ok(()),
            StepClaim::Replayed => Err(FactorError::NoPendingEnrollment),
        }
    }
}

/// Local login: an active user, their password and a fresh code.
pub struct LocalLogin {
    pub directory: Arc<dyn Directory>,
    pub verifier: Arc<SecondFactor>,
}

impl LocalLogin {
    /// Every refusal before the code is checked looks the same (`InvalidCredentials`), and takes
    /// as long: the password is always hashed, against a decoy when there is nothing to compare.
    pub async fn login(
        &self,
        user: &UserName,
        password: &SecretString,
        code: &TotpCode,
    ) -> Result<User, FactorError> {
        let v = &self.verifier;
        let (profile, factors) = futures_util::future::try_join(
            self.directory.user_profile(user),
            v.store.factors(user),
        )
        .await?;
        let now = v.clock.now();
        SecondFactor::check_lock(&factors, now)?;
        let password_ok = PasswordHash::verify(factors.password.as_ref(), password);
        let active = profile
            .as_ref()
            .is_some_and(|p| p.user.status_at(now) == UserStatus::Active);
        if !password_ok || !active {
            if factors.totp.is_some() {
                return Err(v.fail(user, now, FactorError::InvalidCredentials).await);
            }
            return Err(FactorError::InvalidCredentials);
        }
        v.verify_with(user, &factors, code)
            .await
            .map_err(|e| match e {
                FactorError::InvalidCode | FactorError::NotEnrolled => {
                    FactorError::InvalidCredentials
                }
                other => other,
            })?;
        profile
            .map(|p| p.user)
            .ok_or(FactorError::InvalidCredentials)
    }
}

/// Setting or changing a password: the caller, with a fresh code.
pub struct PasswordChange {
    pub verifier: Arc<SecondFactor>,
    pub entropy: Arc<dyn Entropy>,
}

impl PasswordChange {
    pub async fn set(
        &self,
        identity: &Identity,
        password: &NewPassword,
        code: &TotpCode,
    ) -> Result<(), FactorError> {
        self.verifier.verify(&identity.user, code).await?;
        let hash = PasswordHash::create(password, self.entropy.as_ref())?;
        let now = self.verifier.clock.now();
        self.verifier
            .store
            .set_password(&identity.user, &hash, now)
            .await?;
        Ok(())
    }
}
