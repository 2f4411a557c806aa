//! Groups and their members: universal admins only.

use serde_json::json;

use crate::admin::store::{Page, PageRequest, Versioned};
use crate::ledger::{Change, Expect, ReachKey, Reference};
use crate::model::{Group, Principal};
use crate::names::{GroupName, UserName};

use super::kernel::*;

impl Admin {
    // ---- groups ----

    pub async fn groups(
        &self,
        _ctx: &AdminContext,
        page: &PageRequest,
    ) -> Result<Page<Versioned<Group>>, AdminError> {
        Ok(self.store.groups(page).await?)
    }

    pub async fn group(
        &self,
        _ctx: &AdminContext,
        name: &GroupName,
    ) -> Result<(Versioned<Group>, Vec<UserName>), AdminError> {
        let group = self
            .store
            .group(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("group {name}")))?;
        let members = self.store.members(name).await?;
        Ok((group, members))
    }

    pub async fn create_group(
        &self,
        ctx: &AdminContext,
        group: Group,
    ) -> Result<Versioned<Group>, AdminError> {
        let resource = format!("group:{}", group.name);
        let put = Change::PutGroup(group.clone(), Expect::Absent);
        self.create_universal(ctx, &resource, None, group, put)
            .await
    }

    pub async fn update_group(
        &self,
        ctx: &AdminContext,
        group: Group,
        version: Option<u64>,
    ) -> Result<Versioned<Group>, AdminError> {
        let resource = format!("group:{}", group.name);
        self.check(ctx, &resource, "update", Self::universal(ctx))
            .await?;
        let version = Self::require_version(version)?;
        let (before, _) = self.group(ctx, &group.name).await?;
        self.commit(
            ctx,
            &resource,
            "update",
            None,
            Some(view(&before.value)),
            Some(view(&group)),
            vec![Change::PutGroup(group.clone(), Expect::Version(version))],
        )
        .await?;
        Ok(Versioned {
            value: group,
            version: version + 1,
        })
    }

    pub async fn delete_group(
        &self,
        ctx: &AdminContext,
        name: &GroupName,
        version: Option<u64>,
        cascade: bool,
    ) -> Result<Removed, AdminError> {
        let resource = format!("group:{name}");
        self.check(ctx, &resource, "delete", Self::universal(ctx))
            .await?;
        let (before, members) = self.group(ctx, name).await?;
        let principal = Principal::Group(name.clone());
        let (grants, admins) = futures_util::future::try_join(
            self.store.grants_of(&principal),
            self.store.admin_grants_of(&principal),
        )
        .await?;
        let mut dependents: Vec<(String, Change)> = grants
            .into_iter()
            .map(|g| (grant_name(&g), Change::DeleteGrant(g.key())))
            .collect();
        dependents.extend(
            admins
                .into_iter()
                .map(|a| (admin_grant_name(&a), Change::DeleteAdminGrant(a))),
        );
        dependents.extend(
            members
                .into_iter()
                .map(|u| (format!("member {u}"), Change::RemoveMember(u, name.clone()))),
        );
        self.remove(
            ctx,
            &resource,
            None,
            view(&before.value),
            Change::DeleteGroup(
                name.clone(),
                version.map_or(Expect::Present, Expect::Version),
            ),
            dependents,
            false,
            cascade,
        )
        .await
    }

    pub async fn add_member(
        &self,
        ctx: &AdminContext,
        group: &GroupName,
        user: &UserName,
    ) -> Result<(), AdminError> {
        let resource = format!("group:{group}");
        self.check(ctx, &resource, "add_member", Self::universal(ctx))
            .await?;
        // A member gets every grant of the group: one that reaches an account's top makes
        // adding them as good as granting them the top (the code was for the grant, not for
        // whoever joins later). The group's grants, and the accounts they reach, are guarded.
        let mut guards = vec![
            self.reach_guard(ReachKey::GroupGrants(group.clone()), false)
                .await?,
        ];
        let mut at_top = false;
        let mut accounts = std::collections::BTreeSet::new();
        for grant in self
            .store
            .grants_of(&Principal::Group(group.clone()))
            .await?
        {
            let (top, account) = self.reaches_top(&grant).await?;
            at_top |= top;
            accounts.extend(account);
        }
        for account in accounts {
            guards.push(
                self.reach_guard(ReachKey::AccountTargets(account), false)
                    .await?,
            );
        }
        if at_top {
            self.check(
                ctx,
                &resource,
                "add_member",
                self.step_up(ctx, Sensitive::GrantTopLevel).await,
            )
            .await?;
        }
        // A group that administers (by an admin grant, or by configuration) makes its members
        // admins: as good as an admin grant to them.
        let administers = self.config.groups.scope_of_group(group).is_admin()
            || !self
                .store
                .admin_grants_of(&Principal::Group(group.clone()))
                .await?
                .is_empty();
        if administers {
            self.check(
                ctx,
                &resource,
                "add_member",
                self.step_up(ctx, Sensitive::AdminScope).await,
            )
            .await?;
        }
        ctx.add_proof(guards);
        self.commit(
            ctx,
            &resource,
            "add_member",
            None,
            None,
            Some(json!({"member": user})),
            vec![
                Change::Require(Reference::User(user.clone())),
                Change::Require(Reference::Group(group.clone())),
                Change::AddMember(user.clone(), group.clone()),
            ],
        )
        .await
    }

    pub async fn remove_member(
        &self,
        ctx: &AdminContext,
        group: &GroupName,
        user: &UserName,
    ) -> Result<(), AdminError> {
        let resource = format!("group:{group}");
        self.check(ctx, &resource, "remove_member", Self::universal(ctx))
            .await?;
        self.commit(
            ctx,
            &resource,
            "remove_member",
            None,
            Some(json!({"member": user})),
            None,
            vec![Change::RemoveMember(user.clone(), group.clone())],
        )
        .await
    }
}
