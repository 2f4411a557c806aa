//! The access decision: who is asking, what the directory says of them, and whether a grant covers the target.

use std::collections::BTreeSet;
use std::fmt;

use time::OffsetDateTime;

use crate::model::{Grant, GrantScope, Principal, Target, User, UserStatus};
use crate::names::{GroupName, UserName};
use crate::token::TokenId;

/// How a caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A session cooper signed: a person who signed in, locally (`idp: None`: password and a
    /// fresh code) or through an identity provider (its issuer).
    Session { idp: Option<String> },
    /// A per-user API token, for scripts and CI.
    ApiToken(TokenId),
    /// An approver standing next to the requester, proven by their own fresh TOTP code alone.
    ApproverCode,
    /// An identity provider's ID token presented as the bearer, by issuer.
    IdToken(String),
    /// A one-time enrollment code: it enrolls a first authenticator, and nothing else.
    EnrollmentCode(TokenId),
    /// A SAML assertion the console's sign-in verified, by provider (`saml:<name>`).
    SamlAssertion(String),
}

impl AuthMethod {
    /// A person signed in to cooper: what taking over or using one's own factors needs (a
    /// script's token, or a token meant for something else, is not enough).
    pub fn is_session(&self) -> bool {
        matches!(self, Self::Session { .. })
    }

    /// The identity provider that vouched for the caller, if one did.
    pub fn idp(&self) -> Option<&str> {
        match self {
            Self::Session { idp: Some(issuer) }
            | Self::IdToken(issuer)
            | Self::SamlAssertion(issuer) => Some(issuer),
            _ => None,
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session { idp: None } => f.write_str("jwt"),
            Self::Session { idp: Some(idp) } => match idp.strip_prefix("saml:") {
                Some(provider) => write!(f, "saml_session:{provider}"),
                None => write!(f, "oidc_session:{idp}"),
            },
            Self::ApiToken(id) => write!(f, "api_token:{id}"),
            Self::ApproverCode => f.write_str("approver_code"),
            Self::IdToken(issuer) => write!(f, "oidc:{issuer}"),
            Self::EnrollmentCode(id) => write!(f, "enrollment_code:{id}"),
            Self::SamlAssertion(provider) => f.write_str(provider),
        }
    }
}

/// A caller as authentication established them; nothing here is yet checked against the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: UserName,
    pub method: AuthMethod,
    /// Groups vouched for by the authenticator itself (an identity provider's `groups` claim).
    pub asserted_groups: Vec<GroupName>,
    /// Groups the caller's credential says they were in when it was made (an API token's
    /// record, a cooper session's `hint` claim). Never authority: only which groups' grants a decision reads early, so that a
    /// fresh process need not wait for the profile first. A stale hint costs a read, no more.
    pub hinted_groups: Vec<GroupName>,
    /// The cooper session the request came with, when it came with one.
    pub session: Option<crate::revocation::SessionRef>,
}

impl Identity {
    pub fn new(user: UserName, method: AuthMethod) -> Self {
        Self {
            user,
            method,
            asserted_groups: Vec::new(),
            hinted_groups: Vec::new(),
            session: None,
        }
    }
}

/// What the directory holds about one user, read in one go: profile, memberships, direct grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub user: User,
    pub groups: Vec<GroupName>,
    pub grants: Vec<Grant>,
    /// Explicit admin grants of the user (group ones are read separately).
    pub admin_grants: Vec<crate::model::AdminGrant>,
}

/// Why a request was refused. Every variant is a 403: the caller is known, the answer is no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("the caller is not a user in this directory")]
    UnknownUser,
    #[error("the user is disabled")]
    UserDisabled,
    #[error("the user has expired")]
    UserExpired,
    /// Unknown targets and targets without a grant answer alike, so names cannot be probed.
    #[error("no such target, or no grant covers it")]
    NotGranted,
    #[error("an enrollment code only enrolls an authenticator")]
    EnrollmentOnly,
    /// The cooper session the request came with was ended (signed out or revoked).
    #[error("this session was ended; sign in again")]
    SessionRevoked,
}

impl Denial {
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::UserDisabled => "user_disabled",
            Self::UserExpired => "user_expired",
            Self::NotGranted => "not_granted",
            Self::EnrollmentOnly => "enrollment_code_only",
            Self::SessionRevoked => "session_revoked",
        }
    }
}

/// A caller who passed the directory's checks: an active user, with every group they are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub identity: Identity,
    pub user: User,
    pub direct_grants: Vec<Grant>,
    /// Directory memberships and asserted groups, deduplicated and sorted.
    pub groups: Vec<GroupName>,
}

impl Caller {
    /// Deny by default: no profile, a disabled user or an expired user is refused; so is an
    /// enrollment code, which proves only that its holder may enroll (see `admit_enrolling`).
    pub fn admit(
        identity: Identity,
        profile: Option<UserProfile>,
        now: OffsetDateTime,
    ) -> Result<Self, Denial> {
        if matches!(identity.method, AuthMethod::EnrollmentCode(_)) {
            return Err(Denial::EnrollmentOnly);
        }
        Self::admit_enrolling(identity, profile, now)
    }

    /// As `admit`, accepting an enrollment code too (for enrolling, and nothing else).
    pub fn admit_enrolling(
        identity: Identity,
        profile: Option<UserProfile>,
        now: OffsetDateTime,
    ) -> Result<Self, Denial> {
        // The identity provider vouches for people cooper has no record of: they are users with
        // only their asserted groups (and so, by default, no access). A record in the directory
        // still governs them: disabled or expired there, they are refused.
        let vouched = identity.method.idp().is_some();
        let profile = match profile {
            Some(p) => p,
            None if vouched => UserProfile {
                user: User::new(identity.user.clone()),
                groups: Vec::new(),
                grants: Vec::new(),
                admin_grants: Vec::new(),
            },
            None => return Err(Denial::UnknownUser),
        };
        match profile.user.status_at(now) {
            UserStatus::Active => {}
            UserStatus::Disabled => return Err(Denial::UserDisabled),
            UserStatus::Expired => return Err(Denial::UserExpired),
        }
        let groups: BTreeSet<GroupName> = profile
            .groups
            .into_iter()
            .chain(identity.asserted_groups.iter().cloned())
            .collect();
        // A grant read from the user's partition is the user's by construction; keep only those
        // that say so, so a stray item can never widen access.
        let direct_grants = profile
            .grants
            .into_iter()
            .filter(|g| g.principal == Principal::User(identity.user.clone()))
            .collect();
        Ok(Self {
            identity,
            user: profile.user,
            direct_grants,
            groups: groups.into_iter().collect(),
        })
    }

    /// The caller with the time-bound grants approved access requests gave them (only those
    /// that say they are the caller's, and say which request gave them and until when).
    pub fn with_temporary(mut self, grants: Vec<Grant>) -> Self {
        let me = Principal::User(self.user.name.clone());
        self.direct_grants.extend(
            grants
                .into_iter()
                .filter(|g| g.principal == me && g.via.is_some() && g.expires_at.is_some()),
        );
        self
    }

    /// The best of the caller's direct grants that covers `target` (see [`pick_grant`]).
    pub fn direct_grant_for(&self, target: &Target, now: OffsetDateTime) -> Option<&Grant> {
        pick_grant(&self.direct_grants, target, now)
    }
}

/// The grant that lets a caller become `target`: the one that lasts longest (a standing grant
/// before a time-bound one, which would cut the session short), and of those a grant of that
/// very target over an account-wide cascade (it says more precisely why access was given).
pub fn pick_grant<'a>(
    grants: &'a [Grant],
    target: &Target,
    now: OffsetDateTime,
) -> Option<&'a Grant> {
    best_grant(grants.iter(), target, now)
}

/// Group grants count only for groups the caller is in; anything else a store hands back is ignored.
pub fn caller_group_grant<'a>(
    caller: &Caller,
    grants: &'a [Grant],
    target: &Target,
    now: OffsetDateTime,
) -> Option<&'a Grant> {
    let mine = grants.iter().filter(|g| {
        matches!(&g.principal, Principal::Group(name) if caller.groups.binary_search(name).is_ok())
    });
    best_grant(mine, target, now)
}

fn best_grant<'a>(
    candidates: impl Iterator<Item = &'a Grant> + Clone,
    target: &Target,
    now: OffsetDateTime,
) -> Option<&'a Grant> {
    // Later is better: no end at all, then the latest end, then a grant of the target itself,
    // then the caller's own over a group's, then the group first by name: the same grants give
    // the same answer (and audit record) whatever order a store hands them back in.
    let rank = |g: &'a Grant| {
        (
            g.expires_at.is_none(),
            g.expires_at,
            matches!(g.scope, GrantScope::Target(_)),
            std::cmp::Reverse(match &g.principal {
                Principal::User(_) => None,
                Principal::Group(name) => Some(name),
            }),
        )
    };
    let mut best: Option<&'a Grant> = None;
    for grant in candidates.filter(|g| g.covers(target, now)) {
        if best.is_none_or(|b| rank(grant) > rank(b)) {
            best = Some(grant);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{AccountId, Level, RoleArn, TargetName};

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
    }

    fn target(name: &str, account: &str, level: u32) -> Target {
        Target::role(
            TargetName::parse(name).unwrap(),
            AccountId::parse(account).unwrap(),
            Level::new(level).unwrap(),
            RoleArn::parse(&format!("arn:aws:iam::{account}:role/{name}")).unwrap(),
            None,
            None,
        )
        .unwrap()
    }

    fn user(name: &str) -> UserName {
        UserName::parse(name).unwrap()
    }

    fn group(name: &str) -> GroupName {
        GroupName::parse(name).unwrap()
    }

    fn account_grant(p: Principal, account: &str, level: u32) -> Grant {
        Grant {
            principal: p,
            scope: GrantScope::Account {
                account: AccountId::parse(account).unwrap(),
                max_level: Level::new(level).unwrap(),
            },
            expires_at: None,
            via: None,
        }
    }

    fn target_grant(p: Principal, target: &str) -> Grant {
        Grant {
            principal: p,
            scope: GrantScope::Target(TargetName::parse(target).unwrap()),
            expires_at: None,
            via: None,
        }
    }

    #[test]
    fn of_equal_grants_the_same_one_is_picked_whatever_the_order() {
        let t = target("a-read", "111111111111", 10);
        let alpha = target_grant(Principal::Group(group("alpha")), "a-read");
        let zeta = target_grant(Principal::Group(group("zeta")), "a-read");
        let mine = target_grant(Principal::User(user("alice")), "a-read");
        for grants in [
            vec![alpha.clone(), zeta.clone()],
            vec![zeta.clone(), alpha.clone()],
        ] {
            assert_eq!(pick_grant(&grants, &t, now()), Some(&alpha));
        }
        for grants in [
            vec![zeta.clone(), mine.clone(), alpha.clone()],
            vec![mine.clone(), alpha.clone(), zeta.clone()],
        ] {
            assert_eq!(pick_grant(&grants, &t, now()), Some(&mine));
        }
    }

    fn profile(name: &str, groups: &[&str], grants: Vec<Grant>) -> UserProfile {
        UserProfile {
            user: User::new(user(name)),
            groups: groups.iter().map(|g| group(g)).collect(),
            grants,
            admin_grants: vec![],
        }
    }

    fn identity(name: &str) -> Identity {
        Identity::new(user(name), AuthMethod::Session { idp: None })
    }

    #[test]
    fn a_level_50_account_grant_covers_level_10_and_50_but_not_100() {
        let g = account_grant(Principal::User(user("alice")), "111111111111", 50);
        assert!(g.covers(&target("ro", "111111111111", 10), now()));
        assert!(g.covers(&target("pu", "111111111111", 50), now()));
        assert!(!g.covers(&target("admin", "111111111111", 100), now()));
        assert!(!g.covers(&target("ro", "222222222222", 10), now()));
    }

    #[test]
    fn expired_grants_cover_nothing() {
        let mut g = account_grant(Principal::User(user("alice")), "111111111111", 50);
        g.expires_at = Some(now());
        assert!(!g.covers(&target("ro", "111111111111", 10), now()));
    }

    #[test]
    fn target_grants_cover_only_their_target_whatever_its_level() {
        let g = Grant {
            principal: Principal::User(user("alice")),
            scope: GrantScope::Target(TargetName::parse("admin").unwrap()),
            expires_at: None,
            via: None,
        };
        assert!(g.covers(&target("admin", "111111111111", 1000), now()));
        assert!(!g.covers(&target("ro", "111111111111", 0), now()));
    }

    #[test]
    fn unknown_disabled_and_expired_users_are_refused() {
        assert_eq!(
            Caller::admit(identity("alice"), None, now()).unwrap_err(),
            Denial::UnknownUser
        );
        let mut p = profile("alice", &[], vec![]);
        p.user.enabled = false;
        assert_eq!(
            Caller::admit(identity("alice"), Some(p), now()).unwrap_err(),
            Denial::UserDisabled
        );
        let mut p = profile("alice", &[], vec![]);
        p.user.expires_at = Some(now() - time::Duration::seconds(1));
        assert_eq!(
            Caller::admit(identity("alice"), Some(p), now()).unwrap_err(),
            Denial::UserExpired
        );
    }

    #[test]
    fn groups_merge_directory_and_asserted_ones() {
        let mut id = identity("alice");
        id.asserted_groups = vec![group("idp-ops"), group("eng")];
        let caller =
            Caller::admit(id, Some(profile("alice", &["eng", "db"], vec![])), now()).unwrap();
        assert_eq!(
            caller.groups,
            vec![group("db"), group("eng"), group("idp-ops")]
        );
    }

    #[test]
    fn grants_of_other_principals_are_ignored() {
        let stray = account_grant(Principal::User(user("mallory")), "111111111111", 1000);
        let caller = Caller::admit(
            identity("alice"),
            Some(profile("alice", &[], vec![stray])),
            now(),
        )
        .unwrap();
        assert!(
            caller
                .direct_grant_for(&target("admin", "111111111111", 100), now())
                .is_none()
        );

        let other_group = account_grant(Principal::Group(group("admins")), "111111111111", 1000);
        let grants = [other_group];
        assert!(
            caller_group_grant(
                &caller,
                &grants,
                &target("admin", "111111111111", 100),
                now()
            )
            .is_none()
        );
    }

    #[test]
    fn a_group_grant_counts_for_members() {
        let caller = Caller::admit(
            identity("alice"),
            Some(profile("alice", &["eng"], vec![])),
            now(),
        )
        .unwrap();
        let grants = [account_grant(
            Principal::Group(group("eng")),
            "111111111111",
            50,
        )];
        let t = target("ro", "111111111111", 10);
        assert!(caller_group_grant(&caller, &grants, &t, now()).is_some());
    }

    #[test]
    fn a_standing_grant_is_preferred_to_a_time_bound_one_and_later_ends_to_sooner() {
        let t = target("ro", "111111111111", 10);
        let id = crate::model::requests::AccessRequestId::parse(&"a".repeat(32)).unwrap();
        let until = |minutes| Some(now() + time::Duration::minutes(minutes));
        let temporary = |scope: GrantScope, minutes| Grant {
            principal: Principal::User(user("alice")),
            scope,
            expires_at: until(minutes),
            via: Some(id.clone()),
        };
        let on_target = GrantScope::Target(t.name.clone());
        let soon = temporary(on_target.clone(), 10);
        let later = account_grant(Principal::User(user("alice")), "111111111111", 50);
        let later = Grant {
            expires_at: until(60),
            ..later
        };
        let grants = [soon.clone(), later.clone()];
        assert_eq!(pick_grant(&grants, &t, now()), Some(&later));
        let standing = account_grant(Principal::User(user("alice")), "111111111111", 10);
        let grants = [soon.clone(), standing.clone(), later];
        assert_eq!(pick_grant(&grants, &t, now()), Some(&standing));
        // Ended: it covers nothing, whatever it was.
        let grants = [soon];
        assert_eq!(
            pick_grant(&grants, &t, now() + time::Duration::minutes(10)),
            None
        );
    }

    #[test]
    fn only_the_callers_own_time_bound_grants_from_a_request_count() {
        let t = target("ro", "111111111111", 10);
        let id = crate::model::requests::AccessRequestId::parse(&"b".repeat(32)).unwrap();
        let mine = Grant {
            principal: Principal::User(user("alice")),
            scope: GrantScope::Target(t.name.clone()),
            expires_at: Some(now() + time::Duration::hours(1)),
            via: Some(id.clone()),
        };
        let theirs = Grant {
            principal: Principal::User(user("mallory")),
            ..mine.clone()
        };
        let unbounded = Grant {
            expires_at: None,
            ..mine.clone()
        };
        let caller = Caller::admit(
            identity("alice"),
            Some(profile("alice", &[], vec![])),
            now(),
        )
        .unwrap();
        let stray = caller.clone().with_temporary(vec![theirs, unbounded]);
        assert!(stray.direct_grant_for(&t, now()).is_none());
        let given = caller.with_temporary(vec![mine.clone()]);
        assert_eq!(given.direct_grant_for(&t, now()), Some(&mine));
    }

    #[test]
    fn a_target_grant_is_preferred_as_the_reason() {
        let t = target("ro", "111111111111", 10);
        let grants = [
            account_grant(Principal::User(user("alice")), "111111111111", 50),
            Grant {
                principal: Principal::User(user("alice")),
                scope: GrantScope::Target(t.name.clone()),
                expires_at: None,
                via: None,
            },
        ];
        let chosen = pick_grant(&grants, &t, now()).unwrap();
        assert!(matches!(chosen.scope, GrantScope::Target(_)));
    }
}
