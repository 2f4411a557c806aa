//! What a caller may become, and who they are: the read side of access.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::future::try_join_all;

use crate::access::{Caller, Denial, Identity, caller_group_grant, pick_grant};
use crate::clock::Clock;
use crate::model::{Account, Grant, GrantScope, Principal, Target};
use crate::names::{AccountId, Level, TargetName};
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
}

impl Catalog {
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
        let (profile, target, temporary, ended) = futures_util::future::try_join4(
            self.directory.user_profile(&identity.user),
            self.directory.target(target_name),
            self.directory.temporary_grants(&identity.user),
            self.session_ended(&identity),
        )
        .await?;
        if ended {
            return Err(Denial::SessionRevoked.into());
        }
        let caller = Caller::admit(identity, profile, now)?.with_temporary(temporary);
        let target = target.ok_or(Denial::NotGranted)?;
        let grant = self
            .grant_for(&caller, &target)
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
        let now = self.clock.now();
        let direct = caller.direct_grant_for(target, now).cloned();
        if let Some(grant) = direct.clone().filter(|g| g.expires_at.is_none()) {
            return Ok(Some(grant));
        }
        let group = if caller.groups.is_empty() {
            None
        } else {
            let group_grants = self
                .directory
                .group_grants_for(&caller.groups, target)
                .await?;
            caller_group_grant(caller, &group_grants, target, now).cloned()
        };
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
