//! How often something may happen: a fixed window per key (a user asking for credentials, an
//! address failing to sign in), counted in a store every instance shares (a Lambda instance's
//! memory is not shared, so an in-memory limit would let a busy caller through as many times as
//! there are warm instances).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::ports::{RequestCounter, UpstreamError};

/// So many requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window_seconds: u32,
}

impl RateLimit {
    pub const fn per_minute(requests: u32) -> Self {
        Self {
            requests,
            window_seconds: 60,
        }
    }

    /// The window `now` falls in: its start and end, Unix seconds.
    fn window(self, now: OffsetDateTime) -> (i64, i64) {
        let window = i64::from(self.window_seconds.max(1));
        let start = now.unix_timestamp().div_euclid(window) * window;
        (start, start + window)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error("too many requests: at most {limit} per {window} seconds")]
    Limited {
        limit: u32,
        window: u32,
        /// Seconds until the window closes.
        retry_after: i64,
    },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Admits what a key's current window has room for. Fails closed: when the counter cannot be
/// reached, nothing is admitted.
pub struct RateLimiter {
    counter: Arc<dyn RequestCounter>,
    /// What is counted: prefixes every key (`credentials`, `signin-failures`).
    what: &'static str,
    /// `None`: no limit (an operator's choice, not the default).
    limit: Option<RateLimit>,
}

impl RateLimiter {
    pub fn new(
        counter: Arc<dyn RequestCounter>,
        what: &'static str,
        limit: Option<RateLimit>,
    ) -> Self {
        Self {
            counter,
            what,
            limit,
        }
    }

    fn limited(limit: RateLimit, end: i64, now: OffsetDateTime) -> RateError {
        RateError::Limited {
            limit: limit.requests,
            window: limit.window_seconds,
            retry_after: (end - now.unix_timestamp()).max(1),
        }
    }

    /// Counts one for `key`; refused, and not counted, when the window is full.
    pub async fn admit(&self, key: &str, now: OffsetDateTime) -> Result<(), RateError> {
        self.count(key, now).await.map(|_| ())
    }

    /// As `admit`, returning how many the window holds with this one (0 without a limit).
    pub async fn count(&self, key: &str, now: OffsetDateTime) -> Result<u32, RateError> {
        let Some(limit) = self.limit else {
            return Ok(0);
        };
        let (start, end) = limit.window(now);
        let key = format!("{}#{key}", self.what);
        match self.counter.count(&key, start, limit.requests, end).await? {
            Some(n) => Ok(n),
            None => Err(Self::limited(limit, end, now)),
        }
    }

    /// Refused when `key`'s window is full, without counting anything.
    pub async fn check(&self, key: &str, now: OffsetDateTime) -> Result<(), RateError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let (start, end) = limit.window(now);
        let key = format!("{}#{key}", self.what);
        if self.counter.counted(&key, start).await? >= limit.requests {
            return Err(Self::limited(limit, end, now));
        }
        Ok(())
    }

    /// The most a window holds, if there is a limit.
    pub fn limit(&self) -> Option<RateLimit> {
        self.limit
    }
}
