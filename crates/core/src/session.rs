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
