//! Admin scope: universal (every account) or a set of accounts; from configured admin groups and
//! from explicit admin grants. Checked on every admin call, per account.

use std::collections::BTreeSet;
use std::fmt;

use crate::access::Caller;
pub use crate::model::AdminGrant;
use crate::model::Principal;
use crate::names::{AccountId, GroupName, InvalidValue};

/// What an admin may administer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AdminScope {
    #[default]
    None,
    Accounts(BTreeSet<AccountId>),
    Universal,
}

impl AdminScope {
    pub fn is_admin(&self) -> bool {
        !matches!(self, Self::None)
    }

    pub fn is_universal(&self) -> bool {
        matches!(self, Self::Universal)
    }

    pub fn covers(&self, account: &AccountId) -> bool {
        match self {
            Self::None => false,
            Self::Accounts(accounts) => accounts.contains(account),
            Self::Universal => true,
        }
    }

    /// Whether everything `other` may administer, this may too ("no admin wider than oneself").
    pub fn includes(&self, other: &AdminScope) -> bool {
        match (self, other) {
            (Self::Universal, _) | (_, Self::None) => true,
            (Self::Accounts(mine), Self::Accounts(theirs)) => theirs.is_subset(mine),
            _ => false,
        }
    }

    fn widen(self, other: AdminScope) -> AdminScope {
        match (self, other) {
            (Self::Universal, _) | (_, Self::Universal) => Self::Universal,
            (Self::None, x) | (x, Self::None) => x,
            (Self::Accounts(mut a), Self::Accounts(b)) => {
                a.extend(b);
                Self::Accounts(a)
            }
        }
    }

    fn of_account(account: Option<&AccountId>) -> AdminScope {
        match account {
            None => Self::Universal,
            Some(a) => Self::Accounts(BTreeSet::from([a.clone()])),
        }
    }
}

impl fmt::Display for AdminScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Universal => f.write_str("universal"),
            Self::Accounts(a) => {
                let list: Vec<&str> = a.iter().map(AccountId::as_str).collect();
                write!(f, "accounts {}", list.join(","))
            }
        }
    }
}

impl AdminGrant {
    pub fn scope(&self) -> AdminScope {
        AdminScope::of_account(self.account.as_ref())
    }
}

/// Admin groups from configuration (`COOPER_ADMIN_GROUPS`): `platform-admins` makes its members
/// universal admins; `payments-admins=111111111111+222222222222` account admins of those accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminGroups(Vec<(GroupName, AdminScope)>);

impl AdminGroups {
    pub fn parse(spec: &str) -> Result<Self, InvalidValue> {
        let mut groups = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (group, scope) = match entry.split_once('=') {
                None => (entry, AdminScope::Universal),
                Some((group, accounts)) => {
                    let accounts = accounts
                        .split('+')
                        .map(|a| AccountId::parse(a.trim()))
                        .collect::<Result<BTreeSet<_>, _>>()?;
                    if accounts.is_empty() {
                        return Err(InvalidValue::new(
                            "admin_groups",
                            "an account list is empty",
                        ));
                    }
                    (group, AdminScope::Accounts(accounts))
                }
            };
            groups.push((GroupName::parse(group.trim())?, scope));
        }
        Ok(Self(groups))
    }
}

impl AdminGroups {
    /// What membership of `group` makes someone administer, by configuration.
    pub fn scope_of_group(&self, group: &GroupName) -> AdminScope {
        self.0
            .iter()
            .filter(|(g, _)| g == group)
            .map(|(_, s)| s.clone())
            .fold(AdminScope::None, AdminScope::widen)
    }
}

/// The caller's scope: their configured admin groups and explicit admin grants, together.
pub fn scope_of(caller: &Caller, configured: &AdminGroups, grants: &[AdminGrant]) -> AdminScope {
    let mine = |p: &Principal| match p {
        Principal::User(u) => *u == caller.user.name,
        Principal::Group(g) => caller.groups.binary_search(g).is_ok(),
    };
    let from_config = configured
        .0
        .iter()
        .filter(|(g, _)| caller.groups.binary_search(g).is_ok())
        .map(|(_, s)| s.clone());
    let from_grants = grants
        .iter()
        .filter(|g| mine(&g.principal))
        .map(AdminGrant::scope);
    from_config
        .chain(from_grants)
        .fold(AdminScope::None, AdminScope::widen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AuthMethod, Identity, UserProfile};
    use crate::model::User;
    use crate::names::UserName;

    fn caller(name: &str, groups: &[&str]) -> Caller {
        let user = UserName::parse(name).unwrap();
        let profile = UserProfile {
            user: User::new(user.clone()),
            groups: groups
                .iter()
                .map(|g| GroupName::parse(g).unwrap())
                .collect(),
            grants: vec![],
            admin_grants: vec![],
        };
        Caller::admit(
            Identity::new(user, AuthMethod::Session { idp: None }),
            Some(profile),
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap()
    }

    fn account(id: &str) -> AccountId {
        AccountId::parse(id).unwrap()
    }

    #[test]
    fn configured_groups_and_grants_combine() {
        let config = AdminGroups::parse("platform, payments=111111111111+222222222222").unwrap();
        assert_eq!(
            scope_of(&caller("ann", &["platform"]), &config, &[]),
            AdminScope::Universal
        );
        let payments = scope_of(&caller("bob", &["payments"]), &config, &[]);
        assert!(payments.covers(&account("111111111111")));
        assert!(!payments.covers(&account("333333333333")));
        let grant = AdminGrant {
            principal: Principal::User(UserName::parse("bob").unwrap()),
            account: Some(account("333333333333")),
        };
        let wider = scope_of(&caller("bob", &["payments"]), &config, &[grant]);
        assert!(wider.covers(&account("333333333333")) && wider.covers(&account("111111111111")));
        assert_eq!(
            scope_of(&caller("cat", &["others"]), &config, &[]),
            AdminScope::None
        );
    }

    #[test]
    fn a_scope_reads_as_words() {
        assert_eq!(AdminScope::None.to_string(), "none");
        assert_eq!(AdminScope::Universal.to_string(), "universal");
        let two = AdminScope::Accounts([account("222222222222"), account("111111111111")].into());
        assert_eq!(two.to_string(), "accounts 111111111111,222222222222");
    }

    #[test]
    fn what_a_configured_group_administers() {
        let config =
            AdminGroups::parse("platform, payments=111111111111, payments=222222222222").unwrap();
        let group = |g: &str| GroupName::parse(g).unwrap();
        assert_eq!(
            config.scope_of_group(&group("platform")),
            AdminScope::Universal
        );
        let payments = config.scope_of_group(&group("payments"));
        assert!(
            payments.covers(&account("111111111111")) && payments.covers(&account("222222222222"))
        );
        assert!(!payments.covers(&account("333333333333")));
        assert_eq!(config.scope_of_group(&group("others")), AdminScope::None);
    }

    #[test]
    fn grants_of_others_do_not_count() {
        let grant = AdminGrant {
            principal: Principal::User(UserName::parse("mallory").unwrap()),
            account: None,
        };
        assert_eq!(
            scope_of(&caller("bob", &[]), &AdminGroups::default(), &[grant]),
            AdminScope::None
        );
    }

    #[test]
    fn no_admin_is_wider_than_the_one_who_makes_it() {
        let a = AdminScope::Accounts(BTreeSet::from([account("111111111111")]));
        let ab = AdminScope::Accounts(BTreeSet::from([
            account("111111111111"),
            account("222222222222"),
        ]));
        assert!(AdminScope::Universal.includes(&ab));
        assert!(ab.includes(&a));
        assert!(!a.includes(&ab));
        assert!(!ab.includes(&AdminScope::Universal));
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(AdminGroups::parse("ops=12345").is_err());
        assert!(AdminGroups::parse("ops#1").is_err());
        assert_eq!(AdminGroups::parse("").unwrap(), AdminGroups::default());
    }
}
