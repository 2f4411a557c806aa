//! How often one user may ask for credentials: a fixed window per user, counted in a store every
//! instance shares (a Lambda instance's memory is not shared, so an in-memory limit would let a
//! busy caller through as many times as there are warm instances).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::names::UserName;
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
}

#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error("too many credential requests: at most {limit} per {window} seconds")]
    Limited {
        limit: u32,
        window: u32,
        /// Seconds until the window closes.
        retry_after: i64,
    },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Admits a user's request while their current window has room. Fails closed: when the counter
/// cannot be reached, nothing is admitted.
pub struct RateLimiter {
    counter: Arc<dyn RequestCounter>,
    /// `None`: no limit (an operator's choice, not the default).
    limit: Option<RateLimit>,
}

impl RateLimiter {
    pub fn new(counter: Arc<dyn RequestCounter>, limit: Option<RateLimit>) -> Self {
        Self { counter, limit }
    }

    pub async fn admit(&self, user: &UserName, now: OffsetDateTime) -> Result<(), RateError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let window = i64::from(limit.window_seconds.max(1));
        let start = now.unix_timestamp().div_euclid(window) * window;
        let end = start + window;
        let key = format!("credentials#{user}");
        if self.counter.count(&key, start, limit.requests, end).await? {
            Ok(())
        } else {
            Err(RateError::Limited {
                limit: limit.requests,
                window: limit.window_seconds,
                retry_after: (end - now.unix_timestamp()).max(1),
            })
        }
    }
}
