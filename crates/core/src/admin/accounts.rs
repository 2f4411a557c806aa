//! Accounts: listed and read within scope; created and deleted by universal admins only.

use crate::admin::store::{Page, PageRequest, Versioned};
use crate::ledger::{Change, Expect, Reference};
use crate::model::Account;
use crate::names::AccountId;

use super::kernel::*;

/// The approvers an account's request policy names must exist.
fn request_approver_refs(account: &Account) -> Vec<Change> {
    account
        .access_requests
        .iter()
        .flat_map(|p| p.approvers.iter())
        .map(|p| match p {
            crate::model::Principal::User(u) => Change::Require(Reference::User(u.clone())),
            crate::model::Principal::Group(g) => Change::Require(Reference::Group(g.clone())),
        })
        .collect()
}

impl Admin {
    // ---- accounts ----

    pub async fn accounts(
        &self,
        ctx: &AdminContext,
        page: &PageRequest,
    ) -> Result<Page<Versioned<Account>>, AdminError> {
        let mut page = self.store.accounts(page).await?;
        page.items.retain(|a| ctx.scope.covers(&a.value.id));
        Ok(page)
    }

    pub async fn account(
        &self,
        ctx: &AdminContext,
        id: &AccountId,
    ) -> Result<Versioned<Account>, AdminError> {
        let resource = format!("account:{id}");
        self.check(ctx, &resource, "read", Self::in_scope(ctx, id))
            .await?;
        self.store
            .account(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("account {id}")))
    }

    pub async fn create_account(
        &self,
        ctx: &AdminContext,
        account: Account,
    ) -> Result<Versioned<Account>, AdminError> {
        let resource = format!("account:{}", account.id);
        self.check(ctx, &resource, "create", Self::universal(ctx))
            .await?;
        // Made requestable: people not granted its targets may come to hold them.
        if super::reach::widens_requests(None, account.access_requests.as_ref()) {
            self.check(
                ctx,
                &resource,
                "create",
                self.step_up(ctx, Sensitive::WeakenTarget).await,
            )
            .await?;
        }
        let mut changes = request_approver_refs(&account);
        changes.push(Change::PutAccount(account.clone(), Expect::Absent));
        let id = account.id.clone();
        self.commit(
            ctx,
            &resource,
            "create",
            Some(&id),
            None,
            Some(view(&account)),
            changes,
        )
        .await?;
        Ok(Versioned {
            value: account,
            version: 1,
        })
    }

    pub async fn update_account(
        &self,
        ctx: &AdminContext,
        account: Account,
        version: Option<u64>,
    ) -> Result<Versioned<Account>, AdminError> {
        let resource = format!("account:{}", account.id);
        self.check(ctx, &resource, "update", Self::in_scope(ctx, &account.id))
            .await?;
        let version = Self::require_version(version)?;
        let before = self.account(ctx, &account.id).await?;
        if before.value.partition != account.partition {
            return Err(AdminError::Immutable("partition"));
        }
        if super::reach::widens_requests(
            before.value.access_requests.as_ref(),
            account.access_requests.as_ref(),
        ) {
            self.check(
                ctx,
                &resource,
                "update",
                self.step_up(ctx, Sensitive::WeakenTarget).await,
            )
            .await?;
        }
        let mut changes = request_approver_refs(&account);
        changes.push(Change::PutAccount(
            account.clone(),
            Expect::Version(version),
        ));
        self.commit(
            ctx,
            &resource,
            "update",
            Some(&account.id),
            Some(view(&before.value)),
            Some(view(&account)),
            changes,
        )
        .await?;
        Ok(Versioned {
            value: account,
            version: version + 1,
        })
    }

    pub async fn delete_account(
        &self,
        ctx: &AdminContext,
        id: &AccountId,
        version: Option<u64>,
        cascade: bool,
    ) -> Result<Removed, AdminError> {
        let resource = format!("account:{id}");
        self.check(ctx, &resource, "delete", Self::universal(ctx))
            .await?;
        let before = self.account(ctx, id).await?;
        let first = PageRequest::first(crate::admin::store::MAX_PAGE);
        let (targets, grants, admins) = futures_util::future::try_join3(
            self.store.targets_of(id, &first),
            self.store.grants_in(id, &first),
            self.store.admin_grants(Some(id)),
        )
        .await?;
        let mut dependents: Vec<(String, Change)> = Vec::new();
        for g in grants.items {
            dependents.push((grant_name(&g), Change::DeleteGrant(g.key())));
        }
        for a in admins {
            dependents.push((admin_grant_name(&a), Change::DeleteAdminGrant(a)));
        }
        for t in targets.items {
            dependents.push((
                format!("target {}", t.value.name),
                Change::DeleteTarget(t.value.name, Expect::Present),
            ));
        }
        let more = targets.cursor.is_some() || grants.cursor.is_some();
        self.check(
            ctx,
            &resource,
            "delete",
            self.step_up(ctx, Sensitive::DeleteAccount).await,
        )
        .await?;
        self.remove(
            ctx,
            &resource,
            Some(id),
            view(&before.value),
            Change::DeleteAccount(id.clone(), version.map_or(Expect::Present, Expect::Version)),
            dependents,
            more,
            cascade,
        )
        .await
    }
}
