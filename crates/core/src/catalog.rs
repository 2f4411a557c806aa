//! What a caller may become, and who they are: the read side of access.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures_util::future::try_join_all;

use crate::access::{Caller, Denial, Identity, caller_group_grant, pick_grant};
use crate::clock::Clock;
use crate::model::{Account, Grant, GrantScope, Principal, Target};
use crate::names::{AccountId, GroupName, Level, TargetName, UserName};
use crate::ports::{Directory, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// A target the caller may become, and every grant that lets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachableTarget {
    pub target: Target,
    pub grants: Vec<Grant>,
}

pub struct Catalog {
    pub directory: Arc<dyn Directory>,
    pub clock: Arc<dyn Clock>,
    hints: Hints,
}

/// What earlier decisions learnt (a user's groups, a target's account), so the next decision can
/// read the groups' grants beside the profile and the target instead of after them. A hint only
/// chooses what to read early: every decision is still made on what the directory answered in
/// that request, and a wrong or missing hint costs one more round of reads, never a wrong
/// answer. Nothing secret is kept; both maps are bounded.
#[derive(Default)]
struct Hints {
    groups: Mutex<HashMap<UserName, Vec<GroupName>>>,
    accounts: Mutex<HashMap<TargetName, AccountId>>,
}

/// More entries than this and a map starts over (a cold start's worth of extra reads).
const HINTS_MAX: usize = 4096;

fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if map.len() >= HINTS_MAX && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

fn recall<K: std::hash::Hash + Eq, V: Clone>(map: &Mutex<HashMap<K, V>>, key: &K) -> Option<V> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(key)
        .cloned()
}

/// Before a process has seen a target, the groups' grants are read ahead without its account:
/// every grant of each group (a Query per group), up to this many groups. Past it, they wait
/// for the target (one BatchGetItem then): the read stays bounded whatever the caller's groups.
pub const READ_AHEAD_QUERIES: usize = 8;

/// `groups` as a credential's hint (`Identity::hinted_groups`): all of them when few enough to
/// be read one by one, else none (a hint past the bound would not be read, only carried).
pub fn hint_of(groups: Vec<GroupName>) -> Vec<GroupName> {
    if groups.len() <= READ_AHEAD_QUERIES {
        groups
    } else {
        Vec::new()
    }
}

/// Group grants read ahead of the decision: which groups, on which account (every account when
/// none: all the groups' grants were read), and what was found.
struct ReadAhead {
    groups: Vec<GroupName>,
    account: Option<AccountId>,
    grants: Vec<Grant>,
}

impl Catalog {
    pub fn new(directory: Arc<dyn Directory>, clock: Arc<dyn Clock>) -> Self {
        Self {
            directory,
            clock,
            hints: Hints::default(),
        }
    }

    /// The caller, checked against the directory (active user, with all their groups, and the
    /// time-bound grants approved access requests gave them).
    pub async fn caller(&self, identity: Identity) -> Result<Caller, AccessError> {
        let (profile, temporary) = futures_util::future::try_join(
            self.directory.user_profile(&identity.user),
            self.directory.temporary_grants(&identity.user),
        )
        .await?;
        Ok(Caller::admit(identity, profile, self.clock.now())?.with_temporary(temporary))
    }

    /// Deny by default: the caller must be an active user, the target must exist, and a grant
    /// of the user or of one of their groups must cover it. Unknown targets and ungranted ones
    /// are refused alike.
    pub async fn authorize(
        &self,
        identity: Identity,
        target_name: &TargetName,
    ) -> Result<(Caller, Target, Grant), AccessError> {
        let now = self.clock.now();
        // The groups the caller is likely in (what the identity provider asserts, what their
        // credential was made with, and what the directory said last time) and the target's
        // account, if an earlier decision saw it.
        let groups: Vec<GroupName> = identity
            .asserted_groups
            .iter()
            .chain(&identity.hinted_groups)
            .cloned()
            .chain(recall(&self.hints.groups, &identity.user).unwrap_or_default())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let account = recall(&self.hints.accounts, target_name);
        let read_ahead = async {
            let grants = match &account {
                _ if groups.is_empty() => return Ok(None),
                Some(account) => {
                    self.directory
                        .group_grants_for(&groups, target_name, account)
                        .await?
                }
                None if groups.len() <= READ_AHEAD_QUERIES => {
                    self.directory.group_grants(&groups).await?
                }
                None => return Ok(None),
            };
            Ok(Some(ReadAhead {
                groups,
                account,
                grants,
            }))
        };
        let (profile, target, temporary, ended, read_ahead) = futures_util::future::try_join5(
            self.directory.user_profile(&identity.user),
            self.directory.target(target_name),
            self.directory.temporary_grants(&identity.user),
            self.session_ended(&identity),
            read_ahead,
        )
        .await?;
        if ended {
            return Err(Denial::SessionRevoked.into());
        }
        let caller = Caller::admit(identity, profile, now)?.with_temporary(temporary);
        let target = target.ok_or(Denial::NotGranted)?;
        remember(
            &self.hints.groups,
            caller.user.name.clone(),
            caller.groups.clone(),
        );
        remember(
            &self.hints.accounts,
            target.name.clone(),
            target.account.clone(),
        );
        let grant = self
            .decide(&caller, &target, read_ahead)
            .await?
            .ok_or(Denial::NotGranted)?;
        Ok((caller, target, grant))
    }

    /// Whether the cooper session `identity` came with was ended (read beside the decision's
    /// other reads: the API's authentication leaves it to this for the routes that decide here).
    async fn session_ended(&self, identity: &Identity) -> Result<bool, UpstreamError> {
        let Some(session) = &identity.session else {
            return Ok(false);
        };
        Ok(self
            .directory
            .session_revocations(&identity.user)
            .await?
            .is_some_and(|(ended, _)| ended.ends(session)))
    }

    /// The grant that lets `caller` become `target` now, if one does. The groups' grants are
    /// read only when the caller's own leave it open (none, or only a time-bound one).
    pub async fn grant_for(
        &self,
        caller: &Caller,
        target: &Target,
    ) -> Result<Option<Grant>, UpstreamError> {
        self.decide(caller, target, None).await
    }

    /// As `grant_for`, with what was read ahead: it counts only if it was read on the target's
    /// own account, and only for groups the caller is in; groups it missed are read now.
    async fn decide(
        &self,
        caller: &Caller,
        target: &Target,
        read_ahead: Option<ReadAhead>,
    ) -> Result<Option<Grant>, UpstreamError> {
        let now = self.clock.now();
        let direct = caller.direct_grant_for(target, now).cloned();
        if let Some(grant) = direct.clone().filter(|g| g.expires_at.is_none()) {
            return Ok(Some(grant));
        }
        let (mut group_grants, read) = match read_ahead {
            Some(ahead) if ahead.account.as_ref().is_none_or(|a| *a == target.account) => {
                (ahead.grants, ahead.groups)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let missing: Vec<GroupName> = caller
            .groups
            .iter()
            .filter(|g| !read.contains(g))
            .cloned()
            .collect();
        if !missing.is_empty() {
            group_grants.extend(
                self.directory
                    .group_grants_for(&missing, &target.name, &target.account)
                    .await?,
            );
        }
        let group = caller_group_grant(caller, &group_grants, target, now).cloned();
        let candidates: Vec<Grant> = direct.into_iter().chain(group).collect();
        Ok(pick_grant(&candidates, target, now).cloned())
    }

    /// The highest level of `account` the caller's live cascade grants reach (direct, time-bound
    /// or through a group), if any does.
    pub async fn cascade_level(
        &self,
        caller: &Caller,
        account: &AccountId,
    ) -> Result<Option<Level>, AccessError> {
        let now = self.clock.now();
        let mut grants = caller.direct_grants.clone();
        if !caller.groups.is_empty() {
            grants.extend(
                self.directory
                    .group_grants(&caller.groups)
                    .await?
                    .into_iter()
                    .filter(|g| {
                        matches!(&g.principal, Principal::Group(name) if caller.groups.binary_search(name).is_ok())
                    }),
            );
        }
        Ok(grants
            .iter()
            .filter(|g| g.expires_at.is_none_or(|at| at > now))
            .filter_map(|g| match &g.scope {
                GrantScope::Account {
                    account: a,
                    max_level,
                } if a == account => Some(*max_level),
                _ => None,
            })
            .max())
    }

    /// Every target some live grant of the caller (direct or through a group) covers, by name.
    pub async fn reachable(
        &self,
        identity: Identity,
    ) -> Result<(Caller, Vec<ReachableTarget>), AccessError> {
        let caller = self.caller(identity).await?;
        let now = self.clock.now();

        let mut grants = caller.direct_grants.clone();
        if !caller.groups.is_empty() {
            let group_grants = self.directory.group_grants(&caller.groups).await?;
            grants.extend(group_grants.into_iter().filter(|g| {
                matches!(&g.principal, Principal::Group(name) if caller.groups.binary_search(name).is_ok())
            }));
        }
        grants.retain(|g| g.expires_at.is_none_or(|at| at > now));

        let mut named: Vec<TargetName> = Vec::new();
        let mut cascades: HashMap<AccountId, Level> = HashMap::new();
        for grant in &grants {
            match &grant.scope {
                GrantScope::Target(name) => named.push(name.clone()),
                GrantScope::Account { account, max_level } => {
                    let level = cascades.entry(account.clone()).or_insert(*max_level);
                    *level = (*level).max(*max_level);
                }
            }
        }
        named.sort();
        named.dedup();

        let by_account = try_join_all(
            cascades
                .iter()
                .map(|(account, level)| self.directory.account_targets(account, *level)),
        );
        let (named_targets, account_targets) =
            futures_util::future::try_join(self.directory.targets(&named), by_account).await?;

        let mut reachable: BTreeMap<TargetName, ReachableTarget> = BTreeMap::new();
        for target in named_targets
            .into_iter()
            .chain(account_targets.into_iter().flatten())
        {
            let covering: Vec<Grant> = grants
                .iter()
                .filter(|g| g.covers(&target, now))
                .cloned()
                .collect();
            if covering.is_empty() {
                continue;
            }
            reachable.insert(
                target.name.clone(),
                ReachableTarget {
                    target,
                    grants: covering,
                },
            );
        }
        Ok((caller, reachable.into_values().collect()))
    }

    /// The accounts `reachable` lies in, by id (one batch read), to name them next to targets.
    pub async fn accounts_of(
        &self,
        reachable: &[ReachableTarget],
    ) -> Result<HashMap<AccountId, Account>, AccessError> {
        let mut ids: Vec<AccountId> = reachable.iter().map(|r| r.target.account.clone()).collect();
        ids.sort();
        ids.dedup();
        let accounts = self.directory.accounts_by_id(&ids).await?;
        Ok(accounts.into_iter().map(|a| (a.id.clone(), a)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_remembered_stays_bounded_and_current() {
        let map: Mutex<HashMap<usize, usize>> = Mutex::default();
        for key in 0..HINTS_MAX {
            remember(&map, key, key);
        }
        // Full: a known key is updated in place, nothing forgotten.
        remember(&map, 7, 70);
        assert_eq!(recall(&map, &7), Some(70));
        assert_eq!(recall(&map, &8), Some(8));
        assert_eq!(map.lock().unwrap().len(), HINTS_MAX);
        // One more starts over, with only the newcomer.
        remember(&map, HINTS_MAX, 1);
        assert_eq!(map.lock().unwrap().len(), 1);
        assert_eq!(recall(&map, &HINTS_MAX), Some(1));
        assert_eq!(recall(&map, &8), None);
    }
}
