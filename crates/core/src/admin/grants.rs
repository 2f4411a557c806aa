//! Grants (who may become what) and admin grants (who may administer what).

use crate::admin::scope::AdminGrant;
use crate::admin::store::{Page, PageRequest};
use crate::ledger::{Change, ReachGuard, ReachKey, Reference};
use crate::model::{Grant, GrantKey, GrantOn, GrantScope, Principal, Target};
use crate::names::AccountId;

use super::kernel::*;

impl Admin {
    // ---- grants ----

    /// The account a grant reaches: its own for a cascade, the target's for a target grant.
    /// An account admin hears the same of a target that does not exist as of one outside
    /// their scope: which targets other accounts have is not theirs to learn.
    async fn grant_account(
        &self,
        ctx: &AdminContext,
        grant: &Grant,
    ) -> Result<(AccountId, Option<Target>), AdminError> {
        match &grant.scope {
            GrantScope::Account { account, .. } => Ok((account.clone(), None)),
            GrantScope::Target(name) => match self.store.target(name).await? {
                Some(target) => Ok((target.value.account.clone(), Some(target.value))),
                None if ctx.scope.is_universal() => {
                    Err(AdminError::NotFound(format!("target {name}")))
                }
                None => Err(AdminError::OutOfScope),
            },
        }
    }

    pub async fn grants_in(
        &self,
        ctx: &AdminContext,
        account: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, AdminError> {
        self.check(
            ctx,
            &format!("account:{account}"),
            "list grants",
            Self::in_scope(ctx, account),
        )
        .await?;
        Ok(self.store.grants_in(account, page).await?)
    }

    /// A principal's grants, as far as the caller's scope reaches.
    pub async fn grants_of(
        &self,
        ctx: &AdminContext,
        principal: &Principal,
    ) -> Result<Vec<Grant>, AdminError> {
        let grants = self.store.grants_of(principal).await?;
        let mut visible = Vec::new();
        for g in grants {
            let account = match &g.scope {
                GrantScope::Account { account, .. } => Some(account.clone()),
                GrantScope::Target(t) => self.store.target(t).await?.map(|t| t.value.account),
            };
            if account.is_some_and(|a| ctx.scope.covers(&a)) {
                visible.push(g);
            }
        }
        Ok(visible)
    }

    pub async fn create_grant(&self, ctx: &AdminContext, grant: Grant) -> Result<(), AdminError> {
        let resource = grant_name(&grant);
        let (account, target) = match self.grant_account(ctx, &grant).await {
            Err(AdminError::OutOfScope) => {
                let refusal = Err(AdminError::OutOfScope);
                return self.check(ctx, &resource, "create", refusal).await;
            }
            other => other?,
        };
        self.check(ctx, &resource, "create", Self::in_scope(ctx, &account))
            .await?;
        // The check below reads the account's top, and a group's members get the grant:
        // decisions made on what was read must not be undone by a change landing meanwhile.
        // Grants of one account may land side by side (none decides on another), but not
        // with a change to its targets; a group's new grant refuses a member added on the
        // grants the group had.
        let mut guards = vec![
            self.reach_guard(ReachKey::AccountTargets(account.clone()), false)
                .await?,
            Change::Reach {
                key: ReachKey::AccountGrants(account.clone()),
                guard: ReachGuard::Bumps,
            },
        ];
        if let Principal::Group(g) = &grant.principal {
            guards.push(Change::Reach {
                key: ReachKey::GroupGrants(g.clone()),
                guard: ReachGuard::Bumps,
            });
        }
        let level = match (&grant.scope, &target) {
            (GrantScope::Account { max_level, .. }, _) => Some(*max_level),
            (GrantScope::Target(_), Some(t)) => Some(t.level),
            _ => None,
        };
        let top = self.store.top_level(&account).await?;
        // No targets yet: any level is the top one.
        if level.zip(top).is_none_or(|(l, top)| l >= top) {
            self.check(
                ctx,
                &resource,
                "create",
                self.step_up(ctx, Sensitive::GrantTopLevel).await,
            )
            .await?;
        }
        let principal = match &grant.principal {
            Principal::User(u) => Reference::User(u.clone()),
            Principal::Group(g) => Reference::Group(g.clone()),
        };
        ctx.add_proof(guards);
        let mut changes = vec![Change::Require(principal)];
        match &grant.scope {
            GrantScope::Account { account, .. } => {
                changes.push(Change::Require(Reference::Account(account.clone())))
            }
            GrantScope::Target(t) => changes.push(Change::Require(Reference::Target(t.clone()))),
        }
        changes.push(Change::PutGrant {
            grant: grant.clone(),
            account: account.clone(),
        });
        self.commit(
            ctx,
            &resource,
            "create",
            Some(&account),
            None,
            Some(grant_view(&grant)),
            changes,
        )
        .await
    }

    pub async fn delete_grant(&self, ctx: &AdminContext, key: GrantKey) -> Result<(), AdminError> {
        let resource = format!("grant {key}");
        let account = match &key.on {
            GrantOn::Account(account) => account.clone(),
            GrantOn::Target(name) => match self.store.target(name).await? {
                Some(target) => target.value.account,
                None if ctx.scope.is_universal() => return Err(AdminError::NotFound(resource)),
                None => {
                    let refusal = Err(AdminError::OutOfScope);
                    return self.check(ctx, &resource, "delete", refusal).await;
                }
            },
        };
        self.check(ctx, &resource, "delete", Self::in_scope(ctx, &account))
            .await?;
        let before = self
            .store
            .grants_of(&key.principal)
            .await?
            .into_iter()
            .find(|g| g.key() == key)
            .ok_or_else(|| AdminError::NotFound(resource.clone()))?;
        self.commit(
            ctx,
            &resource,
            "delete",
            Some(&account),
            Some(grant_view(&before)),
            None,
            vec![Change::DeleteGrant(key)],
        )
        .await
    }

    // ---- admin grants ----

    pub async fn admin_grants(
        &self,
        ctx: &AdminContext,
        account: Option<&AccountId>,
    ) -> Result<Vec<AdminGrant>, AdminError> {
        match account {
            Some(a) => {
                self.check(
                    ctx,
                    &format!("account:{a}"),
                    "list admins",
                    Self::in_scope(ctx, a),
                )
                .await?;
            }
            None => {
                self.check(ctx, "admins", "list", Self::universal(ctx))
                    .await?
            }
        }
        Ok(self.store.admin_grants(account).await?)
    }

    pub async fn create_admin_grant(
        &self,
        ctx: &AdminContext,
        grant: AdminGrant,
    ) -> Result<(), AdminError> {
        let resource = admin_grant_name(&grant);
        let ok = if ctx.scope.includes(&grant.scope()) {
            Ok(())
        } else {
            Err(AdminError::WiderAdmin)
        };
        self.check(ctx, &resource, "create", ok).await?;
        self.check(
            ctx,
            &resource,
            "create",
            self.step_up(ctx, Sensitive::AdminScope).await,
        )
        .await?;
        let mut changes = vec![Change::Require(match &grant.principal {
            Principal::User(u) => Reference::User(u.clone()),
            Principal::Group(g) => Reference::Group(g.clone()),
        })];
        if let Some(a) = &grant.account {
            changes.push(Change::Require(Reference::Account(a.clone())));
        }
        changes.push(Change::PutAdminGrant(grant.clone()));
        // A group's members become admins with it: a member added meanwhile, on the grants
        // the group had, must not land after.
        if let Principal::Group(g) = &grant.principal {
            changes.push(Change::Reach {
                key: ReachKey::GroupGrants(g.clone()),
                guard: ReachGuard::Bumps,
            });
        }
        self.commit(
            ctx,
            &resource,
            "create",
            grant.account.as_ref(),
            None,
            Some(view(&grant)),
            changes,
        )
        .await
    }

    pub async fn delete_admin_grant(
        &self,
        ctx: &AdminContext,
        grant: AdminGrant,
    ) -> Result<(), AdminError> {
        let resource = admin_grant_name(&grant);
        let ok = if ctx.scope.includes(&grant.scope()) {
            Ok(())
        } else {
            Err(AdminError::WiderAdmin)
        };
        self.check(ctx, &resource, "delete", ok).await?;
        self.check(
            ctx,
            &resource,
            "delete",
            self.step_up(ctx, Sensitive::AdminScope).await,
        )
        .await?;
        let account = grant.account.clone();
        self.commit(
            ctx,
            &resource,
            "delete",
            account.as_ref(),
            Some(view(&grant)),
            None,
            vec![Change::DeleteAdminGrant(grant)],
        )
        .await
    }
}
