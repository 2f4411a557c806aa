//! Taking back what a person was handed: their cooper sessions (universal admins: people are
//! not in any one account), and the AWS sessions cooper issued them (per account, within the
//! admin's scope).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use time::OffsetDateTime;

use crate::admin::store::{AuditQuery, PageRequest};
use crate::audit::{AuditEvent, AuditRecord};
use crate::ledger::{Change, record_refusal};
use crate::model::TargetKind;
use crate::names::{AccountId, Partition, TargetName, UserName};
use crate::ports::FederationBinding;
use crate::revocation::policy::{self, PolicyHolder, RevokedSessions};
use crate::signout::{self, Applied, Ending, SignoutError};

use super::kernel::*;

/// Which of a person's AWS sessions end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOn {
    /// Wherever cooper issued them one (within the admin's scope).
    Everywhere,
    Account(AccountId),
    Target(TargetName),
}

/// One holder's part of a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderReport {
    /// The role's ARN, or the federation key owner's account and key id.
    pub holder: String,
    pub account: AccountId,
    /// The targets whose sessions were issued on it.
    pub targets: Vec<TargetName>,
    pub applied: Applied,
}

/// What a revocation did: every session of `user` issued before `before`, on these holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationReport {
    pub user: UserName,
    pub before: OffsetDateTime,
    pub holders: Vec<HolderReport>,
}

impl RevocationReport {
    pub fn complete(&self) -> bool {
        self.holders.iter().all(|h| h.applied == Applied::Written)
    }
}

/// The longest session STS issues (a federation token's): older issuances are over.
const TRAIL_WINDOW: time::Duration = time::Duration::hours(36);
/// Pages of a person's trail read at most (200 records each) before the revocation is refused
/// as too large to work out from the trail (then revoke by account, which needs no trail).
const TRAIL_PAGES: usize = 25;

impl From<SignoutError> for AdminError {
    fn from(e: SignoutError) -> Self {
        match e {
            SignoutError::AuditUnavailable(u) => Self::AuditUnavailable(u),
            SignoutError::Upstream(u) => Self::Upstream(u),
            SignoutError::NotASession | SignoutError::Contended => {
                Self::VersionConflict("the person's sessions".into())
            }
        }
    }
}

impl Admin {
    /// Ends every cooper session of `user` signed until now (they sign in again).
    pub async fn revoke_user_sessions(
        &self,
        ctx: &AdminContext,
        user: &UserName,
    ) -> Result<(), AdminError> {
        let resource = format!("user:{user}");
        let action = "revoke_sessions";
        self.check(ctx, &resource, action, Self::universal(ctx))
            .await?;
        let mut record = self.record(ctx, AuditEvent::AdminChange, &resource, action);
        record.after = Some(json!({"sessions": "ended"}));
        let proofs = ctx.take_proofs();
        signout::end_sessions(
            self.directory.as_ref(),
            self.ledger.as_ref(),
            user,
            &Ending::All,
            self.clock.now(),
            &proofs,
            &record,
        )
        .await?;
        tracing::info!(admin = %ctx.actor_name(), %user, "cooper sessions revoked");
        Ok(())
    }

    /// Ends the AWS sessions cooper issued `user` before now, on `on`: writes the deny on every
    /// role (or federation IAM user) the audit trail shows a session of, and says per holder
    /// whether it was written.
    pub async fn revoke_aws_sessions(
        &self,
        ctx: &AdminContext,
        user: &UserName,
        on: &RevokeOn,
    ) -> Result<RevocationReport, AdminError> {
        let resource = format!("user:{user}");
        let action = "revoke_aws_sessions";
        let account = match on {
            RevokeOn::Everywhere => None,
            RevokeOn::Account(a) => Some(a.clone()),
            RevokeOn::Target(t) => {
                let target = self.directory.target(t).await?;
                let Some(target) = target else {
                    return Err(AdminError::NotFound(format!("target {t}")));
                };
                Some(target.account)
            }
        };
        if let Some(a) = &account {
            self.check(ctx, &resource, action, Self::in_scope(ctx, a))
                .await?;
        }
        // The line is the next whole second: IAM's issue times are whole seconds, so a session
        // issued earlier in this very second is on the denied side of it too.
        let now = policy::line_at(self.clock.now());
        let holders = self.holders_issued(ctx, user, on, now).await?;
        let changes: Vec<Change> = holders
            .keys()
            .map(|holder| Change::RevokeOn {
                holder: holder.key(),
                revoked: RevokedSessions {
                    person: user.clone(),
                    matcher: holder.matcher(user),
                    before: now,
                },
                keep_until: now + holder.longest_session() + time::Duration::days(1),
            })
            .collect();
        let after = json!({
            "before": now.unix_timestamp(),
            "on": match on {
                RevokeOn::Everywhere => json!("everywhere"),
                RevokeOn::Account(a) => json!({"account": a}),
                RevokeOn::Target(t) => json!({"target": t}),
            },
            "holders": holders.keys().map(PolicyHolder::key).collect::<Vec<_>>(),
        });
        self.commit(
            ctx,
            &resource,
            action,
            account.as_ref(),
            None,
            Some(after),
            changes,
        )
        .await?;
        let applied = futures_util::future::join_all(holders.keys().map(|holder| {
            signout::apply(self.directory.as_ref(), self.policies.as_ref(), holder, now)
        }))
        .await;
        let report = RevocationReport {
            user: user.clone(),
            before: now,
            holders: holders
                .into_iter()
                .zip(applied)
                .map(|((holder, targets), applied)| HolderReport {
                    holder: holder.key(),
                    account: holder.account().clone(),
                    targets: targets.into_iter().collect(),
                    applied,
                })
                .collect(),
        };
        if !report.complete() {
            let failed: Vec<&str> = report
                .holders
                .iter()
                .filter(|h| h.applied != Applied::Written)
                .map(|h| h.holder.as_str())
                .collect();
            tracing::error!(%user, ?failed, "a revocation is not written everywhere");
            let mut r = self.record(ctx, AuditEvent::RevocationIncomplete, &resource, action);
            r.id = format!("{}-incomplete", r.id);
            r.account = account;
            r.reason = Some(format!("not written on {}", failed.join(", ")));
            record_refusal(self.ledger.as_ref(), &r).await;
        }
        Ok(report)
    }

    /// The holders `user` was issued sessions on in the last 36 hours (the longest an STS
    /// session lasts), as the audit trail says, with the targets they were issued through;
    /// only those `on` and the admin's scope cover.
    async fn holders_issued(
        &self,
        ctx: &AdminContext,
        user: &UserName,
        on: &RevokeOn,
        now: OffsetDateTime,
    ) -> Result<BTreeMap<PolicyHolder, BTreeSet<TargetName>>, AdminError> {
        let since = now - TRAIL_WINDOW;
        let query = AuditQuery::Actor(user.to_string());
        let mut issued: Vec<AuditRecord> = Vec::new();
        let mut cursor = None;
        for _ in 0..TRAIL_PAGES {
            let page = PageRequest::new(Some(crate::admin::store::MAX_PAGE), cursor.take())?;
            let found = self.search.search(&query, &page, true).await?;
            let mut older = false;
            for r in found.items {
                if r.at < since {
                    older = true;
                    break;
                }
                if matches!(
                    r.event,
                    AuditEvent::CredentialsIssued | AuditEvent::ConsoleIssued
                ) {
                    issued.push(r);
                }
            }
            if older || found.cursor.is_none() {
                return self.holders_of(ctx, issued, on).await;
            }
            cursor = found.cursor;
        }
        Err(AdminError::TrailTooLong)
    }

    async fn holders_of(
        &self,
        ctx: &AdminContext,
        issued: Vec<AuditRecord>,
        on: &RevokeOn,
    ) -> Result<BTreeMap<PolicyHolder, BTreeSet<TargetName>>, AdminError> {
        let issued: Vec<(TargetName, AccountId, String)> = issued
            .into_iter()
            .filter_map(|r| Some((r.target?, r.account?, r.principal_arn?)))
            .filter(|(target, account, _)| match on {
                RevokeOn::Everywhere => true,
                RevokeOn::Account(a) => a == account,
                RevokeOn::Target(t) => t == target,
            })
            .filter(|(_, account, _)| ctx.scope.covers(account))
            .collect();
        let mut holders: BTreeMap<PolicyHolder, BTreeSet<TargetName>> = BTreeMap::new();
        let mut federated: BTreeSet<TargetName> = BTreeSet::new();
        for (target, account, arn) in issued {
            match role_of_session(&arn, &account) {
                Some(holder) => {
                    holders.entry(holder).or_default().insert(target);
                }
                None => {
                    federated.insert(target);
                }
            }
        }
        if federated.is_empty() {
            return Ok(holders);
        }
        // A federated user's sessions are denied on the IAM user whose keys signed them: the
        // target's (it names no user; IAM tells it from the key's id).
        let names: Vec<TargetName> = federated.into_iter().collect();
        for target in self.directory.targets(&names).await? {
            let TargetKind::FederatedUser {
                partition,
                sealed_keys,
                ..
            } = &target.kind
            else {
                continue;
            };
            let keys = self
                .vault
                .open_federation_keys(sealed_keys, &FederationBinding::of(&target))
                .await?;
            let holder = PolicyHolder::KeyOwner {
                partition: *partition,
                account: target.account.clone(),
                access_key_id: keys.access_key_id.clone(),
            };
            holders.entry(holder).or_default().insert(target.name);
        }
        Ok(holders)
    }
}

/// The role an assumed-role session's ARN names (`arn:P:sts::A:assumed-role/ROLE/SESSION`),
/// when it is in `account`.
fn role_of_session(arn: &str, account: &AccountId) -> Option<PolicyHolder> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("sts"), Some(""), Some(in_account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if in_account != account.as_str() {
        return None;
    }
    let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
    if role.is_empty() {
        return None;
    }
    Some(PolicyHolder::Role {
        partition: Partition::parse(partition).ok()?,
        account: account.clone(),
        name: role.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assumed_role_arn_names_its_role_in_its_account_only() {
        let a = AccountId::parse("111111111111").unwrap();
        let arn = "arn:aws:sts::111111111111:assumed-role/cooper-admin/alice";
        assert_eq!(
            role_of_session(arn, &a).map(|h| h.key()).as_deref(),
            Some("arn:aws:iam::111111111111:role/cooper-admin")
        );
        let other = AccountId::parse("222222222222").unwrap();
        assert_eq!(role_of_session(arn, &other), None);
        let fed = "arn:aws:sts::111111111111:federated-user/alice";
        assert_eq!(role_of_session(fed, &a), None);
        let gov = "arn:aws-us-gov:sts::111111111111:assumed-role/r/alice";
        assert!(matches!(
            role_of_session(gov, &a),
            Some(PolicyHolder::Role {
                partition: Partition::AwsUsGov,
                ..
            })
        ));
    }
}
