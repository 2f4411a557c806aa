//! Access requests (just-in-time access), as they are stored: someone asks for access they do
//! not hold, for a while, from the people a target or an account names; approval gives them a
//! grant that ends by itself.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{GrantScope, Principal};
use crate::names::{AccountId, GroupName, InvalidValue, Level, Reason, TargetName, UserName};

hex_id!(
    /// An access request's id.
    AccessRequestId,
    "access_request_id",
    "An access request's id: 32 lowercase hex digits."
);

/// Who may approve requests for access to a target (or to an account's targets), and for how
/// long at most. Where there is none, nothing can be requested: the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AccessRequestPolicy))]
pub struct RequestPolicy {
    /// Users and groups who may approve (never the requester themselves).
    pub approvers: Vec<Principal>,
    /// The longest access one approval gives.
    pub max_duration_seconds: u32,
    /// On an account: the highest level that may be requested there (`None`: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_level: Option<Level>,
}

impl RequestPolicy {
    /// The shortest access a request may ask for (or an approver give): half an hour. A session
    /// never outlives the access that allowed it and AWS's shortest session is 15 minutes, so
    /// anything shorter could hardly be used.
    pub const SHORTEST: u32 = 1800;
    /// How long access lasts at most when the policy does not say.
    pub const DEFAULT_MAX: u32 = 8 * 3600;
    /// No policy may allow more than a week at once.
    pub const LONGEST: u32 = 7 * 24 * 3600;
    /// Approvers one policy may name (each is asked, and each gets a notice).
    pub const MAX_APPROVERS: usize = 10;

    /// A checked policy: one to ten approvers (each named once), and a maximum from half an hour
    /// to a week.
    pub fn new(
        approvers: Vec<Principal>,
        max_duration_seconds: Option<u32>,
        max_level: Option<Level>,
    ) -> Result<Self, InvalidValue> {
        let mut seen = std::collections::HashSet::new();
        let approvers: Vec<Principal> = approvers
            .into_iter()
            .filter(|p| seen.insert(p.clone()))
            .collect();
        if approvers.is_empty() || approvers.len() > Self::MAX_APPROVERS {
            return Err(InvalidValue::new(
                "access_requests.approvers",
                format!(
                    "must name 1 to {} users or groups who may approve",
                    Self::MAX_APPROVERS
                ),
            ));
        }
        let max = max_duration_seconds.unwrap_or(Self::DEFAULT_MAX);
        if !(Self::SHORTEST..=Self::LONGEST).contains(&max) {
            return Err(InvalidValue::new(
                "access_requests.max_duration_seconds",
                format!("must be {} to {} seconds", Self::SHORTEST, Self::LONGEST),
            ));
        }
        Ok(Self {
            approvers,
            max_duration_seconds: max,
            max_level,
        })
    }

    /// Whether `user`, in `groups` (sorted), is one of the approvers.
    pub fn names(&self, user: &UserName, groups: &[GroupName]) -> bool {
        super::names_any(&self.approvers, user, groups)
    }

    /// Whether this policy, on an account, covers a request up to `level`.
    pub fn reaches(&self, level: Level) -> bool {
        self.max_level.is_none_or(|max| level <= max)
    }
}

/// What a request asks for: one target, or an account's targets up to a level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestedAccess {
    Target(TargetName),
    Account { account: AccountId, level: Level },
}

impl RequestedAccess {
    /// What the grant an approval gives covers.
    pub fn scope(&self) -> GrantScope {
        match self {
            Self::Target(t) => GrantScope::Target(t.clone()),
            Self::Account { account, level } => GrantScope::Account {
                account: account.clone(),
                max_level: *level,
            },
        }
    }
}

impl fmt::Display for RequestedAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Target(t) => write!(f, "target {t}"),
            Self::Account { account, level } => {
                write!(f, "account {account} up to level {level}")
            }
        }
    }
}

/// Where a request stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Approved,
    Denied,
    Cancelled,
    /// Approved, then ended before its time by the requester or an approver.
    Ended,
}

/// Where a request stands at a moment: its state, and what time has done to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RequestStatus {
    /// Waiting for an approver.
    Pending,
    /// Approved, and the access it gave is live.
    Approved,
    Denied,
    Cancelled,
    /// Nobody acted before it lapsed.
    Expired,
    /// The access it gave is over (its time ran out, or it was ended early).
    Ended,
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Ended => "ended",
        })
    }
}

/// A request for access, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    pub id: AccessRequestId,
    pub requester: UserName,
    pub access: RequestedAccess,
    /// The account the access is in (the target's, for a target).
    pub account: AccountId,
    /// How long the requester asked to have it.
    pub duration_seconds: u32,
    pub reason: Reason,
    /// Who was asked: the approvers of the policy that allowed the request, when it was made.
    pub approvers: Vec<Principal>,
    pub state: RequestState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a request nobody acted on lapses.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<UserName>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub decided_at: Option<OffsetDateTime>,
    /// Why it was denied or ended, when the one who did it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Reason>,
    /// Approved: when the access ends (moved earlier when it is ended early).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub access_until: Option<OffsetDateTime>,
}

impl AccessRequest {
    pub fn status_at(&self, now: OffsetDateTime) -> RequestStatus {
        match self.state {
            RequestState::Pending if self.expires_at <= now => RequestStatus::Expired,
            RequestState::Pending => RequestStatus::Pending,
            RequestState::Approved if self.access_until.is_some_and(|at| at > now) => {
                RequestStatus::Approved
            }
            RequestState::Approved | RequestState::Ended => RequestStatus::Ended,
            RequestState::Denied => RequestStatus::Denied,
            RequestState::Cancelled => RequestStatus::Cancelled,
        }
    }
}

/// How a request is settled: each is one conditional write, so it happens once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// pending -> approved, access until `until`.
    Approve { by: UserName, until: OffsetDateTime },
    /// pending -> denied.
    Deny { by: UserName, note: Option<Reason> },
    /// pending -> cancelled, by the requester.
    Cancel { by: UserName },
    /// approved (and live) -> ended: the access ends now.
    End { by: UserName, note: Option<Reason> },
}

impl Settlement {
    /// The state the request must be in (and not yet lapsed) for this to land.
    pub fn from_state(&self) -> RequestState {
        match self {
            Self::End { .. } => RequestState::Approved,
            _ => RequestState::Pending,
        }
    }

    pub fn to_state(&self) -> RequestState {
        match self {
            Self::Approve { .. } => RequestState::Approved,
            Self::Deny { .. } => RequestState::Denied,
            Self::Cancel { .. } => RequestState::Cancelled,
            Self::End { .. } => RequestState::Ended,
        }
    }

    pub fn by(&self) -> &UserName {
        match self {
            Self::Approve { by, .. }
            | Self::Deny { by, .. }
            | Self::Cancel { by }
            | Self::End { by, .. } => by,
        }
    }

    /// The request as this leaves it, settled at `now`.
    pub fn apply(&self, request: &AccessRequest, now: OffsetDateTime) -> AccessRequest {
        let mut settled = request.clone();
        settled.state = self.to_state();
        match self {
            Self::Approve { by, until } => {
                settled.decided_by = Some(by.clone());
                settled.decided_at = Some(now);
                settled.access_until = Some(*until);
            }
            Self::Deny { by, note } => {
                settled.decided_by = Some(by.clone());
                settled.decided_at = Some(now);
                settled.note = note.clone();
            }
            Self::Cancel { by } => {
                settled.decided_by = Some(by.clone());
                settled.decided_at = Some(now);
            }
            Self::End { note, .. } => {
                settled.access_until = Some(now);
                settled.note = note.clone();
            }
        }
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn at(minutes: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(minutes)
    }

    fn user(name: &str) -> UserName {
        UserName::parse(name).unwrap()
    }

    fn request() -> AccessRequest {
        AccessRequest {
            id: AccessRequestId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            requester: user("alice"),
            access: RequestedAccess::Target(TargetName::parse("prod").unwrap()),
            account: AccountId::parse("111111111111").unwrap(),
            duration_seconds: 3600,
            reason: Reason::parse("incident 42").unwrap(),
            approvers: vec![Principal::User(user("bob"))],
            state: RequestState::Pending,
            created_at: at(0),
            expires_at: at(60),
            decided_by: None,
            decided_at: None,
            note: None,
            access_until: None,
        }
    }

    #[test]
    fn a_pending_request_lapses_at_its_expiry() {
        let r = request();
        assert_eq!(r.status_at(at(59)), RequestStatus::Pending);
        assert_eq!(r.status_at(at(60)), RequestStatus::Expired);
    }

    #[test]
    fn approved_access_ends_at_its_time_or_when_ended() {
        let approve = Settlement::Approve {
            by: user("bob"),
            until: at(30),
        };
        let approved = approve.apply(&request(), at(10));
        assert_eq!(approved.status_at(at(29)), RequestStatus::Approved);
        assert_eq!(approved.status_at(at(30)), RequestStatus::Ended);
        // Approved requests do not lapse with the request's own expiry.
        assert_eq!(approved.decided_at, Some(at(10)));
        let ended = Settlement::End {
            by: user("alice"),
            note: None,
        }
        .apply(&approved, at(20));
        assert_eq!(ended.status_at(at(20)), RequestStatus::Ended);
        assert_eq!(ended.access_until, Some(at(20)));
        assert_eq!(ended.decided_by, Some(user("bob")), "the approver stays");
    }

    #[test]
    fn a_policy_names_one_to_ten_approvers_for_15_minutes_to_a_week() {
        let bob = Principal::User(user("bob"));
        let p = RequestPolicy::new(vec![bob.clone(), bob.clone()], None, None).unwrap();
        assert_eq!(p.approvers, vec![bob.clone()]);
        assert_eq!(p.max_duration_seconds, RequestPolicy::DEFAULT_MAX);
        assert!(RequestPolicy::new(vec![], None, None).is_err());
        let eleven = (0..11)
            .map(|i| Principal::User(user(&format!("u{i}"))))
            .collect();
        assert!(RequestPolicy::new(eleven, None, None).is_err());
        assert!(RequestPolicy::new(vec![bob.clone()], Some(1799), None).is_err());
        assert!(RequestPolicy::new(vec![bob.clone()], Some(7 * 86_400), None).is_ok());
        assert!(RequestPolicy::new(vec![bob], Some(7 * 86_400 + 1), None).is_err());
    }

    #[test]
    fn a_policy_names_its_users_and_members_of_its_groups() {
        let ops = GroupName::parse("ops").unwrap();
        let p = RequestPolicy::new(
            vec![Principal::User(user("bob")), Principal::Group(ops.clone())],
            None,
            Some(Level::new(50).unwrap()),
        )
        .unwrap();
        assert!(p.names(&user("bob"), &[]));
        assert!(p.names(&user("carol"), std::slice::from_ref(&ops)));
        assert!(!p.names(&user("carol"), &[]));
        assert!(p.reaches(Level::new(50).unwrap()));
        assert!(!p.reaches(Level::new(51).unwrap()));
    }
}
