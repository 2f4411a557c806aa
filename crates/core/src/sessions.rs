//! Sessions: local sign-in (user, password and a fresh code), and a session made from an
//! identity provider's token. Each is committed with its audit record before the session is
//! handed out.
//!
//! A stranger cannot lock a user out: a wrong password (or an unknown, disabled or expired user)
//! is never counted against the user, only against the address it came from. Only someone who
//! gave the right password can spend the user's code failures. Every refusal before the code is
//! checked answers alike and takes as long (a floor every refusal is held to).

use std::sync::Arc;

use futures_util::future::try_join3;
use secrecy::SecretString;
use time::{Duration, OffsetDateTime};

use crate::access::{Caller, Identity};
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::clock::{Entropy, EntropyUnavailable};
use crate::factors::{FactorError, SecondFactor};
use crate::ledger::{Change, Ledger, record_refusal};
use crate::model::UserStatus;
use crate::names::{GroupName, UserName};
use crate::password::PasswordHash;
use crate::ports::{Directory, Pacer, SessionClaims, SessionSigner, SigningUnavailable};
use crate::rate::{RateError, RateLimit, RateLimiter};
use crate::revocation::SessionId;
use crate::totp::TotpCode;

/// Every refused sign-in takes at least this long, whatever the reason.
pub const REFUSAL_FLOOR: std::time::Duration = std::time::Duration::from_millis(400);

/// Failed sign-ins one address may make in a window before its sign-ins are refused unread.
pub const SIGNIN_FAILURES: RateLimit = RateLimit {
    requests: 20,
    window_seconds: 900,
};

/// A session handed out: the bearer token (a secret), whom it names, until when.
pub struct Session {
    pub token: SecretString,
    /// The session's id (what signing out, or a revoke, ends).
    pub id: SessionId,
    pub user: UserName,
    pub groups: Vec<GroupName>,
    pub idp: Option<String>,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Factor(#[from] FactorError),
    /// Too many failed sign-ins from this address.
    #[error(transparent)]
    Rate(#[from] RateError),
    #[error(transparent)]
    Signing(#[from] SigningUnavailable),
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
}

impl SessionError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Factor(e) => e.code(),
            Self::Rate(RateError::Limited { .. }) => "rate_limited",
            Self::Rate(RateError::Upstream(_)) => "upstream",
            Self::Signing(_) | Self::Entropy(_) => "internal",
        }
    }
}

fn sign(
    signer: &dyn SessionSigner,
    entropy: &dyn Entropy,
    user: &UserName,
    (idp, groups): (Option<String>, Vec<GroupName>),
    directory_groups: Vec<GroupName>,
    now: OffsetDateTime,
    lifetime: Duration,
) -> Result<Session, SessionError> {
    let expires_at = now + lifetime;
    let id = SessionId::generate(entropy)?;
    let token = signer.sign(&SessionClaims {
        session_id: id.clone(),
        user: user.clone(),
        idp: idp.clone(),
        groups: groups.clone(),
        hinted_groups: crate::catalog::hint_of(directory_groups),
        issued_at: now,
        expires_at,
    })?;
    Ok(Session {
        token,
        id,
        user: user.clone(),
        groups,
        idp,
        expires_at,
    })
}

/// Local sign-in: an active user, their password and a fresh code.
pub struct LocalLogin {
    pub directory: Arc<dyn Directory>,
    pub verifier: Arc<SecondFactor>,
    pub ledger: Arc<dyn Ledger>,
    pub signer: Arc<dyn SessionSigner>,
    pub entropy: Arc<dyn Entropy>,
    pub lifetime: Duration,
    /// Failed sign-ins per source address.
    pub failures: RateLimiter,
    pub pacer: Arc<dyn Pacer>,
}

/// What `AuditRecord::auth` says of a local sign-in.
pub const LOCAL_SIGNIN: &str = "password+totp";

impl LocalLogin {
    pub async fn login(
        &self,
        user: &UserName,
        password: &SecretString,
        code: &TotpCode,
        meta: &RequestMeta,
    ) -> Result<Session, SessionError> {
        let started = self.pacer.mark();
        let result = self.attempt(user, password, code, meta).await;
        if result.is_err() {
            self.pacer.hold(started, REFUSAL_FLOOR).await;
        }
        result
    }

    async fn attempt(
        &self,
        user: &UserName,
        password: &SecretString,
        code: &TotpCode,
        meta: &RequestMeta,
    ) -> Result<Session, SessionError> {
        let v = &self.verifier;
        let now = v.clock.now();
        let source = meta
            .source_ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let mut record = AuditRecord::new(
            meta,
            now,
            AuditEvent::SessionCreated,
            user.as_str(),
            LOCAL_SIGNIN,
        );
        // An address that failed too often is refused before anything is compared.
        let (profile, factors, ()) = try_join3(
            async { Ok(self.directory.user_profile(user).await?) },
            async { Ok(v.store.factors(user).await?) },
            async { self.failures.check(&source, now).await },
        )
        .await
        .map_err(|e: RateError| match e {
            RateError::Upstream(u) => SessionError::Factor(u.into()),
            limited => SessionError::Rate(limited),
        })?;
        // The password is always hashed (against a decoy when there is none), so an unknown
        // user takes as long as a wrong password.
        let password_ok = PasswordHash::verify(factors.password.as_ref(), password);
        let active = profile
            .as_ref()
            .is_some_and(|p| p.user.status_at(now) == UserStatus::Active);
        if !password_ok || !active {
            self.stranger_failed(&record, &source, now).await;
            return Err(FactorError::InvalidCredentials.into());
        }
        // From here on the caller knows the password: a lock may be told, and a wrong code is
        // one of the user's failures (and audited one by one: it is an alarm).
        let proof = match v.check_with(user, &factors, code).await {
            Ok(proof) => proof,
            Err(e) => {
                let e = match e {
                    FactorError::InvalidCode | FactorError::NotEnrolled => {
                        FactorError::InvalidCredentials
                    }
                    other => other,
                };
                if e.is_refusal() {
                    let refused = record.refused(AuditEvent::SessionRefused, e.code());
                    record_refusal(self.ledger.as_ref(), &refused).await;
                }
                return Err(e.into());
            }
        };
        let session = sign(
            self.signer.as_ref(),
            self.entropy.as_ref(),
            user,
            (None, Vec::new()),
            profile.map(|p| p.groups).unwrap_or_default(),
            now,
            self.lifetime,
        )?;
        record.expiration = Some(session.expires_at);
        record.resource = Some(format!("session:{}", session.id));
        let changes = proof.changes();
        self.ledger
            .commit(&changes, &record)
            .await
            .map_err(|e| FactorError::from_commit(e, &changes, now))?;
        tracing::info!(%user, "session created");
        Ok(session)
    }

    /// A wrong password or an unknown user: counted against the address it came from, never
    /// against the user. The first failure of an address in a window is audited, and the one
    /// that fills the window; the ones between are only counted, so a stranger's guessing costs
    /// the audit trail and the notices two records a window.
    async fn stranger_failed(&self, record: &AuditRecord, source: &str, now: OffsetDateTime) {
        let reason = match self.failures.count(source, now).await {
            Ok(0 | 1) => "invalid_credentials",
            Ok(n) if Some(n) == self.failures.limit().map(|l| l.requests) => {
                "signin_failures_limit"
            }
            Ok(_) | Err(RateError::Limited { .. }) => return,
            Err(RateError::Upstream(error)) => {
                tracing::warn!(%error, "could not count a failed sign-in");
                return;
            }
        };
        let refused = record.clone().refused(AuditEvent::SessionRefused, reason);
        record_refusal(self.ledger.as_ref(), &refused).await;
    }
}

/// A session made from an identity provider's (already verified) token, keeping its groups.
pub struct SessionExchange {
    pub directory: Arc<dyn Directory>,
    pub ledger: Arc<dyn Ledger>,
    pub signer: Arc<dyn SessionSigner>,
    pub entropy: Arc<dyn Entropy>,
    pub clock: Arc<dyn crate::clock::Clock>,
    pub lifetime: Duration,
}

impl SessionExchange {
    pub async fn exchange(
        &self,
        identity: Identity,
        meta: &RequestMeta,
    ) -> Result<Session, SessionError> {
        self.exchange_with(identity, meta, Vec::new()).await
    }

    /// As `exchange`, writing `changes` with the session's audit record, all or nothing (a
    /// SAML sign-in marks its assertion and its request used: a conflict there is `Replayed`).
    pub async fn exchange_with(
        &self,
        identity: Identity,
        meta: &RequestMeta,
        changes: Vec<Change>,
    ) -> Result<Session, SessionError> {
        let now = self.clock.now();
        let mut record = AuditRecord::by(&identity, meta, now, AuditEvent::SessionCreated);
        let profile = self
            .directory
            .user_profile(&identity.user)
            .await
            .map_err(FactorError::from)?;
        // The directory still has its say: a user disabled or expired there is refused.
        let caller = match Caller::admit(identity, profile, now) {
            Ok(caller) => caller,
            Err(denial) => {
                let refused = record.refused(AuditEvent::SessionRefused, denial.code());
                record_refusal(self.ledger.as_ref(), &refused).await;
                return Err(FactorError::Denied(denial).into());
            }
        };
        let idp = caller.identity.method.idp().map(str::to_owned);
        let mut groups = caller.identity.asserted_groups.clone();
        groups.sort();
        groups.dedup();
        let directory_groups = caller
            .groups
            .iter()
            .filter(|g| groups.binary_search(g).is_err())
            .cloned()
            .collect();
        let session = sign(
            self.signer.as_ref(),
            self.entropy.as_ref(),
            &caller.user.name,
            (idp, groups),
            directory_groups,
            now,
            self.lifetime,
        )?;
        record.expiration = Some(session.expires_at);
        record.resource = Some(format!("session:{}", session.id));
        self.ledger
            .commit(&changes, &record)
            .await
            .map_err(|e| FactorError::from_commit(e, &changes, now))?;
        Ok(session)
    }
}
