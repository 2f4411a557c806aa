//! Taking back what cooper handed out: signing out, ending a person's cooper sessions, and
//! writing the deny that ends their AWS sessions where the directory says.

use std::sync::Arc;

use crate::access::Identity;
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::clock::Clock;
use crate::ledger::{Change, ChangeError, Expect, Ledger};
use crate::names::UserName;
use crate::ports::{Directory, UpstreamError};
use crate::revocation::{SessionRef, SessionRevocations, policy};

/// No cooper session lasts longer than this (`COOPER_SESSION_MINUTES` is bounded by it): a
/// record of ended sessions matters for this long after its last revoke.
pub const LONGEST_SESSION: time::Duration = time::Duration::hours(24);

/// Times a revoke is tried again when someone else's revoke of the same person landed first.
const ATTEMPTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum SignoutError {
    /// The caller's credential is not a session (an API token is revoked, not signed out).
    #[error("only a signed-in session can be signed out; revoke an API token instead")]
    NotASession,
    #[error("the sign-out could not be written with its audit record: {0}")]
    AuditUnavailable(UpstreamError),
    #[error("the person's sessions kept changing; try again")]
    Contended,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl SignoutError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotASession => "not_a_session",
            Self::AuditUnavailable(_) => "audit_unavailable",
            Self::Contended => "version_conflict",
            Self::Upstream(_) => "upstream",
        }
    }
}

/// How a person's record of ended sessions changes.
#[derive(Debug, Clone)]
pub enum Ending {
    One(SessionRef),
    All,
}

/// The change that applies `ending` to what `current` holds (read just before), at `now`.
pub fn ending_change(
    user: &UserName,
    current: Option<(SessionRevocations, u64)>,
    ending: &Ending,
    now: time::OffsetDateTime,
) -> Change {
    let (mut revocations, expect) = match current {
        Some((value, version)) => (value, Expect::Version(version)),
        None => (SessionRevocations::default(), Expect::Absent),
    };
    match ending {
        Ending::One(session) => revocations.end(session, now),
        Ending::All => revocations.end_all(now),
    }
    let keep_until = revocations.matters_until(LONGEST_SESSION);
    Change::PutSessionRevocations {
        user: user.clone(),
        revocations,
        expect,
        keep_until,
    }
}

/// Applies `ending` to `user`'s sessions with `record` (and `more` changes), reading again
/// when a concurrent revoke of the same person landed in between.
pub async fn end_sessions(
    directory: &dyn Directory,
    ledger: &dyn Ledger,
    user: &UserName,
    ending: &Ending,
    now: time::OffsetDateTime,
    more: &[Change],
    record: &AuditRecord,
) -> Result<(), SignoutError> {
    for _ in 0..ATTEMPTS {
        let current = directory.session_revocations(user).await?;
        let mut changes = vec![ending_change(user, current, ending, now)];
        changes.extend_from_slice(more);
        match ledger.commit(&changes, record).await {
            Ok(()) => return Ok(()),
            Err(ChangeError::Conflict { index: 0 }) => continue,
            Err(ChangeError::Conflict { .. }) | Err(ChangeError::TooLarge) => {
                return Err(SignoutError::Contended);
            }
            Err(ChangeError::Upstream(e)) => return Err(SignoutError::AuditUnavailable(e)),
        }
    }
    Err(SignoutError::Contended)
}

/// Signing out: the caller's own session ends, from their next request on.
pub struct Signout {
    pub directory: Arc<dyn Directory>,
    pub ledger: Arc<dyn Ledger>,
    pub clock: Arc<dyn Clock>,
}

impl Signout {
    pub async fn sign_out(
        &self,
        identity: &Identity,
        meta: &RequestMeta,
    ) -> Result<(), SignoutError> {
        let session = identity.session.clone().ok_or(SignoutError::NotASession)?;
        let now = self.clock.now();
        let mut record = AuditRecord::by(identity, meta, now, AuditEvent::SessionEnded);
        record.expiration = Some(session.expires_at);
        record.resource = Some(format!("session:{}", session.id));
        end_sessions(
            self.directory.as_ref(),
            self.ledger.as_ref(),
            &identity.user,
            &Ending::One(session),
            now,
            &[],
            &record,
        )
        .await?;
        tracing::info!(user = %identity.user, "signed out");
        Ok(())
    }
}

/// How writing one holder's deny went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Written,
    /// Not written (the revocation stays in the directory: writing again later finishes it).
    Failed {
        code: &'static str,
        message: String,
    },
}

/// Times a holder's write is tried before it is reported as failed.
const WRITE_ATTEMPTS: usize = 3;

/// Writes `holder`'s deny from what the directory holds for it, then reads the directory again:
/// when a revocation landed meanwhile, it writes again, so whichever write comes last holds
/// every revocation stored before it. A failing write is tried again a few times.
pub async fn apply(
    directory: &dyn Directory,
    policies: &dyn crate::ports::RevocationPolicies,
    holder: &policy::PolicyHolder,
    now: time::OffsetDateTime,
) -> Applied {
    let key = holder.key();
    let mut written: Option<Vec<policy::RevokedSessions>> = None;
    let mut failures = 0;
    let mut last = Applied::Failed {
        code: "upstream",
        message: "not tried".into(),
    };
    for _ in 0..2 * WRITE_ATTEMPTS {
        if failures >= WRITE_ATTEMPTS {
            break;
        }
        let mut held = match directory.revocations_on(&key).await {
            Ok(held) => held,
            Err(e) => {
                failures += 1;
                last = Applied::Failed {
                    code: "upstream",
                    message: e.to_string(),
                };
                continue;
            }
        };
        held.sort_by(|a, b| a.person.cmp(&b.person).then(a.before.cmp(&b.before)));
        if written.as_ref() == Some(&held) {
            return Applied::Written;
        }
        let document = match policy::document(holder, &held, now) {
            Ok(d) => d,
            Err(e) => {
                return Applied::Failed {
                    code: "policy_too_large",
                    message: e.to_string(),
                };
            }
        };
        match policies.write(holder, document.as_deref()).await {
            Ok(()) => written = Some(held),
            Err(e) => {
                tracing::warn!(holder = %key, error = %e, "could not write a revocation policy");
                failures += 1;
                written = None;
                last = Applied::Failed {
                    code: "upstream",
                    message: e.to_string(),
                };
            }
        }
    }
    // Revocations kept landing: what was written last is theirs to complete (each revoke
    // writes after storing its own).
    if written.is_some() {
        return Applied::Written;
    }
    last
}
