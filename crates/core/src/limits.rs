//! What STS allows: the session lengths each kind of credential can have.

/// AssumeRole and GetFederationToken both refuse sessions shorter than 15 minutes.
pub const MIN_SESSION_SECONDS: u32 = 900;
/// AssumeRole's ceiling (a role's MaxSessionDuration can be at most 12 hours).
pub const ROLE_MAX_SECONDS: u32 = 43_200;
/// GetFederationToken's ceiling with IAM-user keys (36 hours).
pub const FEDERATION_MAX_SECONDS: u32 = 129_600;
/// AssumeRole called with role credentials (role chaining) is capped at one hour.
pub const ROLE_CHAINING_MAX_SECONDS: u32 = 3_600;
/// What a request gets when it does not ask: one hour, or less if the target allows less.
pub const DEFAULT_SESSION_SECONDS: u32 = 3_600;

/// The bounds STS puts on one kind of target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub min: u32,
    pub max: u32,
    /// A new target's maximum when none is given.
    pub default_max: u32,
}

impl SessionLimits {
    /// AssumeRole (with IAM-user keys).
    pub const ROLE: Self = Self {
        min: MIN_SESSION_SECONDS,
        max: ROLE_MAX_SECONDS,
        default_max: DEFAULT_SESSION_SECONDS,
    };
    /// GetFederationToken (with IAM-user keys).
    pub const FEDERATED_USER: Self = Self {
        min: MIN_SESSION_SECONDS,
        max: FEDERATION_MAX_SECONDS,
        default_max: 43_200,
    };
}
