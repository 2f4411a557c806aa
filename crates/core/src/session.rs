//! The session length a request resolves to, within what its target and STS allow.

use crate::limits::DEFAULT_SESSION_SECONDS;
use crate::limits::ROLE_CHAINING_MAX_SECONDS;
use crate::model::{Target, TargetKind};

/// How the broker signs AssumeRole: with IAM-user keys (the normal case), or with role credentials,
/// which makes every AssumeRole a role chain and caps it at one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrokerSigning {
    #[default]
    IamUser,
    RoleChain,
}

/// A requested duration outside what the target allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("duration_seconds must be between {min} and {max} for this target, got {requested}")]
pub struct DurationOutOfRange {
    pub requested: u64,
    pub min: u32,
    pub max: u32,
}

/// The grant that allows a session ends sooner than the shortest session STS gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "access to this target ends in {left} seconds, sooner than the shortest session AWS gives ({min} seconds); request access again"
)]
pub struct AccessEnding {
    pub left: i64,
    pub min: u32,
}

/// A session length that STS will accept for the target it was resolved against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionDuration(u32);

impl SessionDuration {
    /// The allowed range for `target`: its own maximum, never beyond what STS gives its kind, and
    /// at most an hour when AssumeRole would be a role chain.
    pub fn bounds(target: &Target, signing: BrokerSigning) -> (u32, u32) {
        let limits = target.kind.session_limits();
        let mut max = target.max_duration_seconds.clamp(limits.min, limits.max);
        if matches!(target.kind, TargetKind::Role { .. }) && signing == BrokerSigning::RoleChain {
            max = max.min(ROLE_CHAINING_MAX_SECONDS);
        }
        (limits.min, max)
    }

    pub fn resolve(
        requested: Option<u64>,
        target: &Target,
        signing: BrokerSigning,
    ) -> Result<Self, DurationOutOfRange> {
        let (min, max) = Self::bounds(target, signing);
        match requested {
            None => Ok(Self(DEFAULT_SESSION_SECONDS.clamp(min, max))),
            Some(r) if r >= u64::from(min) && r <= u64::from(max) => {
                Ok(Self(u32::try_from(r).unwrap_or(max)))
            }
            Some(r) => Err(DurationOutOfRange {
                requested: r,
                min,
                max,
            }),
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }

    /// This duration, cut so that the session ends when the grant allowing it does (`until`):
    /// access never outlives what gave it. Refused when less than `target`'s shortest session
    /// is left.
    pub fn within(
        self,
        until: Option<time::OffsetDateTime>,
        now: time::OffsetDateTime,
        target: &Target,
    ) -> Result<Self, AccessEnding> {
        let Some(until) = until else {
            return Ok(self);
        };
        let min = target.kind.session_limits().min;
        let left = (until - now).whole_seconds();
        if left < i64::from(min) {
            return Err(AccessEnding { left, min });
        }
        Ok(Self(
            u32::try_from(left).map_or(self.0, |left| self.0.min(left)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::ROLE_MAX_SECONDS;
    use crate::names::{AccountId, Level, RoleArn, TargetName};

    fn role_target(max: u32) -> Target {
        Target::role(
            TargetName::parse("t").unwrap(),
            AccountId::parse("111111111111").unwrap(),
            Level::new(10).unwrap(),
            RoleArn::parse("arn:aws:iam::111111111111:role/r").unwrap(),
            None,
            Some(max),
        )
        .unwrap()
    }

    #[test]
    fn default_is_an_hour_or_the_targets_maximum() {
        let t = role_target(7200);
        let d = SessionDuration::resolve(None, &t, BrokerSigning::IamUser).unwrap();
        assert_eq!(d.seconds(), 3600);
        let t = role_target(900);
        let d = SessionDuration::resolve(None, &t, BrokerSigning::IamUser).unwrap();
        assert_eq!(d.seconds(), 900);
    }

    #[test]
    fn requests_outside_the_targets_range_are_refused() {
        let t = role_target(7200);
        for bad in [0, 899, 7201, u64::MAX] {
            let err = SessionDuration::resolve(Some(bad), &t, BrokerSigning::IamUser).unwrap_err();
            assert_eq!((err.min, err.max), (900, 7200));
        }
        for good in [900, 3600, 7200] {
            let d = SessionDuration::resolve(Some(good), &t, BrokerSigning::IamUser).unwrap();
            assert_eq!(u64::from(d.seconds()), good);
        }
    }

    #[test]
    fn a_session_ends_when_its_grant_does() {
        let t = role_target(7200);
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let d = SessionDuration::resolve(Some(7200), &t, BrokerSigning::IamUser).unwrap();
        assert_eq!(d.within(None, now, &t).unwrap().seconds(), 7200);
        let in_an_hour = Some(now + time::Duration::hours(1));
        assert_eq!(d.within(in_an_hour, now, &t).unwrap().seconds(), 3600);
        let in_three = Some(now + time::Duration::hours(3));
        assert_eq!(d.within(in_three, now, &t).unwrap().seconds(), 7200);
        let at_the_floor = Some(now + time::Duration::seconds(900));
        assert_eq!(d.within(at_the_floor, now, &t).unwrap().seconds(), 900);
        let too_soon = Some(now + time::Duration::seconds(899));
        assert_eq!(
            d.within(too_soon, now, &t).unwrap_err(),
            AccessEnding {
                left: 899,
                min: 900
            }
        );
    }

    #[test]
    fn role_chaining_caps_at_an_hour() {
        let t = role_target(43_200);
        assert_eq!(
            SessionDuration::bounds(&t, BrokerSigning::RoleChain),
            (900, 3600)
        );
        assert!(SessionDuration::resolve(Some(7200), &t, BrokerSigning::RoleChain).is_err());
    }

    #[test]
    fn a_stored_maximum_beyond_sts_limits_is_clamped() {
        let mut t = role_target(3600);
        t.max_duration_seconds = 999_999;
        assert_eq!(
            SessionDuration::bounds(&t, BrokerSigning::IamUser),
            (900, ROLE_MAX_SECONDS)
        );
    }
}
