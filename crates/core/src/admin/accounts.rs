//! Accounts: listed and read within scope; created and deleted by universal admins only.

use crate::admin::store::{Page, PageRequest, Versioned};
use crate::ledger::{Change, Expect};
use crate::model::Account;
use crate::names::AccountId;

use super::kernel::*;

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
        let put = Change::PutAccount(account.clone(), Expect::Absent);
        let id = account.id.clone();
        self.create_universal(ctx, &resource, Some(&id), account, put)
            .await
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
        self.commit(
            ctx,
            &resource,
            "update",
            Some(&account.id),
            Some(view(&before.value)),
            Some(view(&account)),
            vec![Change::PutAccount(
                account.clone(),
                Expect::Version(version),
            )],
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
