//! What cooper keeps to authenticate one user locally: the authenticator, one waiting for its
//! first code, the password, and the failures that lead to a lockout.

use time::{Duration, OffsetDateTime};

use crate::model::Sealed;
use crate::names::UserName;
use crate::password::PasswordHash;

/// Failed attempts (codes, or passwords given with a right code's user) within a lockout window
/// that lock the user out.
pub const MAX_FAILURES: u32 = 5;
/// How long a lockout lasts after the last failure; failures older than this are forgotten.
pub const LOCKOUT: Duration = Duration::minutes(15);

/// A user's active TOTP enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpEnrollment {
    pub sealed: Sealed,
    /// The last step whose code was accepted: no code of it, or of an earlier step, is accepted again.
    pub last_step: u64,
    pub enrolled_at: OffsetDateTime,
    /// The admin whose one-time enrollment code let this authenticator be enrolled (kept through
    /// re-enrollments): that admin never counts as this user's second person.
    pub bootstrapped_by: Option<UserName>,
}

/// A TOTP secret handed out but not yet confirmed with a first code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTotp {
    pub sealed: Sealed,
    pub expires_at: OffsetDateTime,
    /// Carried to the enrollment it becomes (see [`TotpEnrollment::bootstrapped_by`]).
    pub bootstrapped_by: Option<UserName>,
}

/// Failures since the last success, and when the last one happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Guard {
    pub failures: u32,
    /// The last failure plus [`LOCKOUT`]: until then the failures count, and with
    /// [`MAX_FAILURES`] of them the user is locked out.
    pub until: Option<OffsetDateTime>,
}

impl Guard {
    /// The lock, if the user is locked out at `now`. The same rule is the condition every claim
    /// of a code is written under, so a lock holds against requests already under way.
    pub fn locked_until(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.until
            .filter(|until| self.failures >= MAX_FAILURES && *until > now)
    }
}

/// Everything cooper keeps to authenticate one user locally, read in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFactors {
    pub totp: Option<TotpEnrollment>,
    pub pending: Option<PendingTotp>,
    pub password: Option<PasswordHash>,
    pub guard: Guard,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(minutes)
    }

    #[test]
    fn five_recent_failures_lock_until_the_window_after_the_last() {
        let guard = |failures, until| Guard { failures, until };
        assert_eq!(guard(4, Some(at(15))).locked_until(at(0)), None);
        assert_eq!(guard(5, Some(at(15))).locked_until(at(0)), Some(at(15)));
        assert_eq!(guard(20, Some(at(15))).locked_until(at(14)), Some(at(15)));
        assert_eq!(guard(5, Some(at(15))).locked_until(at(15)), None);
        assert_eq!(guard(5, None).locked_until(at(0)), None);
    }
}
