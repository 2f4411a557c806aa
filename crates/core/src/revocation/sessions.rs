//! Ending cooper sessions before they expire: one (sign-out) or all of a person's (an admin's
//! revoke, or disabling them).
//!
//! Every session cooper signs carries an id and its issue time. What has been ended is one small
//! record per person: "every session issued at or before T" and the ids of sessions ended one
//! by one (each kept only until it would have expired anyway). Checking a session is one key
//! read of that record, whatever the number of revocations; the record is bounded because ids
//! of expired sessions are dropped on every write, and when too many are live at once the
//! record ends them all instead (the safe direction: a person signs in again).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::{Entropy, EntropyUnavailable};
use crate::names::InvalidValue;

/// Most sessions ended one by one a record keeps; past that, all of the person's end.
pub const MAX_ENDED: usize = 200;

/// A session's id: 32 lowercase hex digits (128 random bits). An identifier, not a secret.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    pub fn generate(entropy: &dyn Entropy) -> Result<Self, EntropyUnavailable> {
        let mut bytes = [0u8; 16];
        entropy.fill(&mut bytes)?;
        Ok(Self(hex::encode(bytes)))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        if value.len() == 32
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidValue::new("sid", "must be 32 lowercase hex digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SessionId> for String {
    fn from(value: SessionId) -> String {
        value.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

/// The session a request came with, as its signed token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub id: SessionId,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// What of a person's sessions has been ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRevocations {
    /// Every session issued at or before this second is ended (Unix seconds: a token's issue
    /// time has no finer grain, so a session signed in the same second as a revoke ends too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_through: Option<i64>,
    /// Sessions ended one by one: id, and when it would have expired (Unix seconds).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ended: BTreeMap<SessionId, i64>,
}

impl SessionRevocations {
    /// Is `session` ended?
    pub fn ends(&self, session: &SessionRef) -> bool {
        self.ended_through
            .is_some_and(|t| session.issued_at.unix_timestamp() <= t)
            || self.ended.contains_key(&session.id)
    }

    /// Ends `session` (and forgets ids whose sessions have expired at `now`).
    pub fn end(&mut self, session: &SessionRef, now: OffsetDateTime) {
        self.forget_expired(now);
        if self.ends(session) {
            return;
        }
        if self.ended.len() >= MAX_ENDED {
            self.end_all(now);
            return;
        }
        self.ended
            .insert(session.id.clone(), session.expires_at.unix_timestamp());
    }

    /// Ends every session issued at or before `now`.
    pub fn end_all(&mut self, now: OffsetDateTime) {
        let t = now.unix_timestamp();
        self.ended_through = Some(self.ended_through.map_or(t, |old| old.max(t)));
        // Every session ended by id was issued before now: the line covers it.
        self.ended.clear();
    }

    /// When this record stops mattering: every session it ends has expired by then, given that
    /// no session lasts longer than `longest`.
    pub fn matters_until(&self, longest: time::Duration) -> i64 {
        let through = self
            .ended_through
            .map_or(0, |t| t + longest.whole_seconds());
        self.ended.values().copied().fold(through, i64::max)
    }

    fn forget_expired(&mut self, now: OffsetDateTime) {
        let now = now.unix_timestamp();
        self.ended.retain(|_, expires| *expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    fn session(n: u8, issued: i64) -> SessionRef {
        SessionRef {
            id: SessionId::parse(&format!("{n:032x}")).unwrap(),
            issued_at: at(issued),
            expires_at: at(issued + 3600),
        }
    }

    #[test]
    fn ending_one_session_leaves_the_others() {
        let mut r = SessionRevocations::default();
        let (a, b) = (session(1, 0), session(2, 0));
        r.end(&a, at(10));
        assert!(r.ends(&a));
        assert!(!r.ends(&b));
    }

    #[test]
    fn ending_all_ends_those_issued_until_then_and_not_later_ones() {
        let mut r = SessionRevocations::default();
        r.end(&session(1, 0), at(5));
        r.end_all(at(100));
        assert!(r.ends(&session(2, 99)));
        assert!(r.ends(&session(3, 100)), "the same second is ended too");
        assert!(!r.ends(&session(4, 101)));
        assert!(r.ended.is_empty(), "the line covers what was ended by id");
        // An older revoke never moves the line back.
        r.end_all(at(50));
        assert_eq!(r.ended_through, Some(at(100).unix_timestamp()));
    }

    #[test]
    fn ids_of_expired_sessions_are_forgotten_and_the_record_stays_bounded() {
        let mut r = SessionRevocations::default();
        r.end(&session(1, 0), at(10));
        // Session 1 expired at 3600: the next write forgets it.
        r.end(&session(2, 4000), at(4001));
        assert_eq!(r.ended.len(), 1);
        let mut r = SessionRevocations::default();
        for n in 0..MAX_ENDED {
            r.end(
                &session(u8::try_from(n % 250).unwrap(), 1000 + n as i64),
                at(2000),
            );
        }
        assert!(r.ended.len() <= MAX_ENDED);
        let one_more = session(251, 1999);
        r.end(&one_more, at(2000));
        assert!(r.ends(&one_more));
        assert!(r.ended.len() <= MAX_ENDED, "{}", r.ended.len());
        assert!(
            r.ends(&session(252, 1500)),
            "too many: everything until now ends"
        );
    }

    #[test]
    fn a_record_matters_until_the_last_session_it_ends_has_expired() {
        let mut r = SessionRevocations::default();
        r.end(&session(1, 0), at(0));
        assert_eq!(
            r.matters_until(time::Duration::hours(24)),
            at(3600).unix_timestamp()
        );
        r.end_all(at(10));
        assert_eq!(
            r.matters_until(time::Duration::hours(24)),
            at(10 + 86_400).unix_timestamp()
        );
    }
}
