//! Targets: what users may become, in the accounts an admin's scope covers.

use crate::admin::store::{Page, PageRequest, Versioned};
use crate::ledger::{Change, Expect, Reference};
use crate::model::{Account, GrantScope, Principal, Sealed, Target, TargetKind};
use crate::names::{
    AccountId, Description, ExternalId, InvalidValue, Level, RoleArn, SessionPolicy, TargetName,
};
use crate::tags::SessionTagSpecs;

use super::kernel::*;
use super::reach::weakens;

/// A target as an admin describes it. What the stored account decides (a federated user's
/// partition) and, on an update, the keys left out (kept as stored) are the use case's to fill
/// in, so nothing stands in for them.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub name: TargetName,
    pub account: AccountId,
    pub level: Level,
    pub kind: KindSpec,
    pub max_duration_seconds: Option<u32>,
    pub high_security: bool,
    pub description: Option<Description>,
    pub approvers: Vec<Principal>,
    /// Who may approve requests for access to it (just-in-time access), if anyone.
    pub access_requests: Option<crate::model::requests::RequestPolicy>,
    /// The session tags its AssumeRole sessions carry (a role target's only).
    pub session_tags: SessionTagSpecs,
}

#[derive(Debug, Clone)]
pub enum KindSpec {
    Role {
        role_arn: RoleArn,
        external_id: Option<ExternalId>,
    },
    FederatedUser {
        /// `None` on an update: keep the stored keys (a create must give them).
        sealed_keys: Option<Sealed>,
        session_policy: SessionPolicy,
    },
}

/// A target as it is, described (keys included): what an update that changes one field sends.
impl From<Target> for TargetSpec {
    fn from(t: Target) -> Self {
        Self {
            name: t.name,
            account: t.account,
            level: t.level,
            kind: match t.kind {
                TargetKind::Role {
                    role_arn,
                    external_id,
                } => KindSpec::Role {
                    role_arn,
                    external_id,
                },
                TargetKind::FederatedUser {
                    sealed_keys,
                    session_policy,
                    ..
                } => KindSpec::FederatedUser {
                    sealed_keys: Some(sealed_keys),
                    session_policy,
                },
            },
            max_duration_seconds: Some(t.max_duration_seconds),
            high_security: t.high_security,
            description: t.description,
            approvers: t.approvers,
            access_requests: t.access_requests,
            session_tags: t.session_tags,
        }
    }
}

impl TargetSpec {
    /// The target this describes, in `account` (read from the directory); `stored` is the
    /// target it replaces, whose keys an update without keys keeps. A role must be in a
    /// partition cooper has a broker identity in.
    fn resolve(
        self,
        account: &Account,
        stored: Option<&Target>,
        brokered: &std::collections::BTreeSet<crate::names::Partition>,
    ) -> Result<Target, InvalidValue> {
        let mut target = match self.kind {
            KindSpec::Role {
                role_arn,
                external_id,
            } => {
                if !brokered.contains(&role_arn.partition()) {
                    return Err(InvalidValue::new(
                        "role_arn",
                        format!(
                            "is in partition {}, where cooper has no broker identity (COOPER_BROKER_PARTITIONS, and its keys in SSM); a federated-user target works there",
                            role_arn.partition()
                        ),
                    ));
                }
                if role_arn.partition() != account.partition {
                    return Err(InvalidValue::new(
                        "role_arn",
                        format!(
                            "is in partition {}, but account {} is in {}",
                            role_arn.partition(),
                            account.id,
                            account.partition
                        ),
                    ));
                }
                Target::role(
                    self.name,
                    account.id.clone(),
                    self.level,
                    role_arn,
                    external_id,
                    self.max_duration_seconds,
                )?
            }
            KindSpec::FederatedUser {
                sealed_keys,
                session_policy,
            } => {
                let kept = stored.and_then(|t| match &t.kind {
                    TargetKind::FederatedUser { sealed_keys, .. } => Some(sealed_keys.clone()),
                    TargetKind::Role { .. } => None,
                });
                let keys = sealed_keys.or(kept).ok_or_else(|| {
                    InvalidValue::new(
                        "sealed_keys",
                        "is required for a federated-user target (see `cooper encrypt`)",
                    )
                })?;
                Target::federated_user(
                    self.name,
                    account,
                    self.level,
                    keys,
                    session_policy,
                    self.max_duration_seconds,
                )?
            }
        };
        target.high_security = self.high_security;
        target.description = self.description;
        // One each: a list that names someone twice means them once.
        let mut approvers = self.approvers;
        let mut seen = std::collections::HashSet::new();
        approvers.retain(|p| seen.insert(p.clone()));
        target.approvers = approvers;
        target.access_requests = self.access_requests;
        target.set_session_tags(self.session_tags)?;
        Ok(target)
    }
}

impl Admin {
    pub async fn targets(
        &self,
        ctx: &AdminContext,
        account: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<Versioned<Target>>, AdminError> {
        self.check(
            ctx,
            &format!("account:{account}"),
            "list targets",
            Self::in_scope(ctx, account),
        )
        .await?;
        Ok(self.store.targets_of(account, page).await?)
    }

    pub async fn target(
        &self,
        ctx: &AdminContext,
        name: &TargetName,
    ) -> Result<Versioned<Target>, AdminError> {
        let found = self
            .store
            .target(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("target {name}")))?;
        self.check(
            ctx,
            &format!("target:{name}"),
            "read",
            Self::in_scope(ctx, &found.value.account),
        )
        .await?;
        Ok(found)
    }

    fn approver_refs(target: &Target) -> Vec<Change> {
        let requests = target
            .access_requests
            .iter()
            .flat_map(|p| p.approvers.iter());
        let mut named: Vec<&Principal> = target.approvers.iter().chain(requests).collect();
        named.sort_by_key(|p| p.to_string());
        named.dedup();
        named
            .into_iter()
            .map(|p| match p {
                Principal::User(u) => Change::Require(Reference::User(u.clone())),
                Principal::Group(g) => Change::Require(Reference::Group(g.clone())),
            })
            .collect()
    }

    /// The account a target is made in, as stored: it decides the target's partition.
    async fn target_account(
        &self,
        ctx: &AdminContext,
        resource: &str,
        action: &str,
        id: &AccountId,
    ) -> Result<Account, AdminError> {
        self.check(ctx, resource, action, Self::in_scope(ctx, id))
            .await?;
        Ok(self
            .store
            .account(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("account {id}")))?
            .value)
    }

    pub async fn create_target(
        &self,
        ctx: &AdminContext,
        spec: TargetSpec,
    ) -> Result<Versioned<Target>, AdminError> {
        let resource = format!("target:{}", spec.name);
        let account = self
            .target_account(ctx, &resource, "create", &spec.account)
            .await?;
        let target = spec.resolve(&account, None, &self.config.role_partitions)?;
        let guards = self.target_guards(&target.account).await?;
        if matches!(target.kind, TargetKind::FederatedUser { .. }) {
            self.check(
                ctx,
                &resource,
                "create",
                self.step_up(ctx, Sensitive::FederationKeys).await,
            )
            .await?;
        }
        // Made requestable: people it was not granted to may come to hold it.
        if super::reach::widens_requests(None, target.access_requests.as_ref()) {
            self.check(
                ctx,
                &resource,
                "create",
                self.step_up(ctx, Sensitive::WeakenTarget).await,
            )
            .await?;
        }
        // A new target at the top that an existing grant reaches is as good as a top grant.
        if self.newly_reached_at_top(&target, None).await? {
            self.check(
                ctx,
                &resource,
                "create",
                self.step_up(ctx, Sensitive::GrantTopLevel).await,
            )
            .await?;
        }
        let mut changes = vec![Change::Require(Reference::Account(target.account.clone()))];
        changes.extend(Self::approver_refs(&target));
        changes.push(Change::PutTarget(target.clone(), Expect::Absent));
        changes.extend(guards);
        self.commit(
            ctx,
            &resource,
            "create",
            Some(&target.account),
            None,
            Some(target_view(&target)),
            changes,
        )
        .await?;
        Ok(Versioned {
            value: target,
            version: 1,
        })
    }

    /// Replaces a target. Its account cannot change; federation keys may be left out (kept as
    /// stored) so that an update need not resend them.
    pub async fn update_target(
        &self,
        ctx: &AdminContext,
        spec: TargetSpec,
        version: Option<u64>,
    ) -> Result<Versioned<Target>, AdminError> {
        let resource = format!("target:{}", spec.name);
        let version = Self::require_version(version)?;
        let before = self.target(ctx, &spec.name).await?;
        if before.value.account != spec.account {
            return Err(AdminError::Immutable("account_id"));
        }
        let account = self
            .target_account(ctx, &resource, "update", &spec.account)
            .await?;
        let target = spec.resolve(&account, Some(&before.value), &self.config.role_partitions)?;
        let guards = self.target_guards(&target.account).await?;
        let new_keys = match (&target.kind, &before.value.kind) {
            (
                TargetKind::FederatedUser { sealed_keys, .. },
                TargetKind::FederatedUser {
                    sealed_keys: old, ..
                },
            ) => sealed_keys != old,
            (TargetKind::FederatedUser { .. }, _) => true,
            _ => false,
        };
        if new_keys {
            self.check(
                ctx,
                &resource,
                "update",
                self.step_up(ctx, Sensitive::FederationKeys).await,
            )
            .await?;
        }
        if weakens(&before.value, &target) {
            self.check(
                ctx,
                &resource,
                "update",
                self.step_up(ctx, Sensitive::WeakenTarget).await,
            )
            .await?;
        }
        // Lowered under a grant that now reaches it at the top: as good as a top grant.
        if self
            .newly_reached_at_top(&target, Some(before.value.level))
            .await?
        {
            self.check(
                ctx,
                &resource,
                "update",
                self.step_up(ctx, Sensitive::GrantTopLevel).await,
            )
            .await?;
        }
        let mut changes = Self::approver_refs(&target);
        changes.push(Change::PutTarget(target.clone(), Expect::Version(version)));
        changes.extend(guards);
        self.commit(
            ctx,
            &resource,
            "update",
            Some(&target.account),
            Some(target_view(&before.value)),
            Some(target_view(&target)),
            changes,
        )
        .await?;
        Ok(Versioned {
            value: target,
            version: version + 1,
        })
    }

    pub async fn delete_target(
        &self,
        ctx: &AdminContext,
        name: &TargetName,
        version: Option<u64>,
        cascade: bool,
    ) -> Result<Removed, AdminError> {
        let resource = format!("target:{name}");
        let before = self.target(ctx, name).await?;
        let account = before.value.account.clone();
        self.check(ctx, &resource, "delete", Self::in_scope(ctx, &account))
            .await?;
        let grants = self
            .store
            .grants_in(&account, &PageRequest::first(crate::admin::store::MAX_PAGE))
            .await?;
        // Gone, it lowers the account's top: decisions made on the old top must not land after.
        ctx.add_proof(self.target_guards(&account).await?);
        let dependents = grants
            .items
            .into_iter()
            .filter(|g| matches!(&g.scope, GrantScope::Target(t) if t == name))
            .map(|g| (grant_name(&g), Change::DeleteGrant(g.key())))
            .collect();
        self.remove(
            ctx,
            &resource,
            Some(&account),
            target_view(&before.value),
            Change::DeleteTarget(
                name.clone(),
                version.map_or(Expect::Present, Expect::Version),
            ),
            dependents,
            grants.cursor.is_some(),
            cascade,
        )
        .await
    }
}
