//! The audit trail, as far as an admin's scope reaches.

use crate::admin::store::{AuditQuery, Page, PageRequest};
use crate::audit::AuditRecord;
use crate::names::{AccountId, Level};

use super::kernel::*;

impl Admin {
    // ---- audit ----

    /// Audit records, in time order. A scoped admin sees only records of their accounts.
    pub async fn audit_search(
        &self,
        ctx: &AdminContext,
        query: &AuditQuery,
        page: &PageRequest,
        newest_first: bool,
    ) -> Result<Page<AuditRecord>, AdminError> {
        if let AuditQuery::Account(a) = query {
            self.check(
                ctx,
                &format!("account:{a}"),
                "read audit",
                Self::in_scope(ctx, a),
            )
            .await?;
        }
        let mut found = self.search.search(query, page, newest_first).await?;
        if !ctx.scope.is_universal() {
            found
                .items
                .retain(|r| r.account.as_ref().is_some_and(|a| ctx.scope.covers(a)));
        }
        Ok(found)
    }

    /// The level at or above which a grant needs a fresh code, for showing to admins.
    pub async fn top_level(&self, account: &AccountId) -> Result<Option<Level>, AdminError> {
        Ok(self.store.top_level(account).await?)
    }
}
