//! The in-memory ledger: the changes and their record applied all or nothing, under the same
//! conditions the DynamoDB transaction writes them under (crates/aws/src/ledger.rs), each read
//! from the state as it was before any of them is written.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;

use async_trait::async_trait;

use crate::admin::store::Versioned;
use crate::audit::AuditRecord;
use crate::ledger::{Change, ChangeError, Expect, Ledger, ReachGuard, ReachKey, Reference};
use crate::model::approvals::{ApprovalId, ApprovalStatus};
use crate::model::factors::Guard;
use crate::model::requests::{AccessRequestId, RequestState};
use crate::model::{AdminGrant, GrantKey, GrantOn, GrantScope};
use crate::names::{AccountId, GroupName, TargetName, UserName};
use crate::ports::{Service, UpstreamError, UpstreamKind};
use crate::token::TokenId;

use super::store::{MemoryStore, State, StoredGrant, grant_key, reach_slot};

/// DynamoDB's limit on the items of one transaction (the record is one of them).
const MAX_TRANSACTION_ITEMS: usize = 100;

/// One of a user's factor items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FactorItem {
    Totp,
    Pending,
    Password,
    Guard,
}

/// An item of the directory table, as DynamoDB keys it: one transaction may touch each once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Item {
    Account(AccountId),
    Target(TargetName),
    User(UserName),
    Group(GroupName),
    Membership(UserName, GroupName),
    Grant(GrantKey),
    AdminGrant(AdminGrant),
    Token(TokenId),
    Factor(UserName, FactorItem),
    Approval(ApprovalId),
    EnrollmentCode(TokenId),
    /// A reach guard's version item (the targets and the grants of one account are two).
    Reach(String),
    Mark(String),
    SessionRevocations(UserName),
    Revoked(String, UserName),
    AccessRequest(AccessRequestId),
    /// A pointer to a request in the list of one principal it asks.
    Asking(crate::model::Principal, AccessRequestId),
    AskingApproval(crate::model::Principal, ApprovalId),
    TemporaryGrant(UserName, AccessRequestId),
}

/// The items one change is written as (the DynamoDB adapter writes `ActivateTotp` as two, and
/// `DeleteFactors` as four).
fn items_of(change: &Change) -> Vec<Item> {
    let factor = |u: &UserName, f| Item::Factor(u.clone(), f);
    match change {
        Change::Require(r) => vec![match r {
            Reference::Account(a) => Item::Account(a.clone()),
            Reference::Target(t) => Item::Target(t.clone()),
            Reference::User(u) => Item::User(u.clone()),
            Reference::Group(g) => Item::Group(g.clone()),
        }],
        Change::PutAccount(a, _) => vec![Item::Account(a.id.clone())],
        Change::DeleteAccount(id, _) => vec![Item::Account(id.clone())],
        Change::PutTarget(t, _) => vec![Item::Target(t.name.clone())],
        Change::DeleteTarget(name, _) => vec![Item::Target(name.clone())],
        Change::PutUser(u, _) => vec![Item::User(u.name.clone())],
        Change::DeleteUser(name, _) => vec![Item::User(name.clone())],
        Change::PutGroup(g, _) => vec![Item::Group(g.name.clone())],
        Change::DeleteGroup(name, _) => vec![Item::Group(name.clone())],
        Change::AddMember(u, g) | Change::RemoveMember(u, g) => {
            vec![Item::Membership(u.clone(), g.clone())]
        }
        Change::PutGrant { grant, .. } => vec![Item::Grant(grant.key())],
        Change::DeleteGrant(key) => vec![Item::Grant(key.clone())],
        Change::PutAdminGrant(g) | Change::DeleteAdminGrant(g) => vec![Item::AdminGrant(g.clone())],
        Change::PutToken(record) => vec![Item::Token(record.id.clone())],
        Change::RevokeToken(id) | Change::DeleteToken(id) => vec![Item::Token(id.clone())],
        Change::DeleteFactors(u) => vec![
            factor(u, FactorItem::Totp),
            factor(u, FactorItem::Pending),
            factor(u, FactorItem::Password),
            factor(u, FactorItem::Guard),
        ],
        Change::Unlocked { user, .. } => vec![factor(user, FactorItem::Guard)],
        Change::ClaimStep { user, .. } => vec![factor(user, FactorItem::Totp)],
        Change::PutPendingTotp { user, .. } => vec![factor(user, FactorItem::Pending)],
        Change::ActivateTotp { user, .. } => vec![
            factor(user, FactorItem::Totp),
            factor(user, FactorItem::Pending),
        ],
        Change::PutPassword { user, .. } => vec![factor(user, FactorItem::Password)],
        Change::OpenApproval(r) => std::iter::once(Item::Approval(r.id.clone()))
            .chain(
                r.approvers
                    .iter()
                    .map(|p| Item::AskingApproval(p.clone(), r.id.clone())),
            )
            .collect(),
        Change::Approve { id, .. } | Change::ConsumeApproval { id, .. } => {
            vec![Item::Approval(id.clone())]
        }
        Change::Reach { key, .. } => vec![Item::Reach(reach_slot(key))],
        Change::PutEnrollmentCode(r) => vec![Item::EnrollmentCode(r.id.clone())],
        Change::UseEnrollmentCode { id, .. } => vec![Item::EnrollmentCode(id.clone())],
        Change::Mark { key, .. } => vec![Item::Mark(key.clone())],
        Change::PutSessionRevocations { user, .. } => {
            vec![Item::SessionRevocations(user.clone())]
        }
        Change::RevokeOn {
            holder, revoked, ..
        } => {
            vec![Item::Revoked(holder.clone(), revoked.person.clone())]
        }
        Change::OpenAccessRequest(r) => std::iter::once(Item::AccessRequest(r.id.clone()))
            .chain(
                r.approvers
                    .iter()
                    .map(|p| Item::Asking(p.clone(), r.id.clone())),
            )
            .collect(),
        Change::SettleAccessRequest { request, .. } => {
            vec![Item::AccessRequest(request.id.clone())]
        }
        Change::PutTemporaryGrant { grant, .. } => match (&grant.principal, &grant.via) {
            (crate::model::Principal::User(u), Some(id)) => {
                vec![Item::TemporaryGrant(u.clone(), id.clone())]
            }
            _ => Vec::new(),
        },
        Change::EndTemporaryGrant { user, request } => {
            vec![Item::TemporaryGrant(user.clone(), request.clone())]
        }
    }
}

/// A change the DynamoDB adapter cannot even build (it fails before anything is sent).
fn unbuildable(change: &Change) -> bool {
    match change {
        Change::PutAccount(_, Expect::Present)
        | Change::PutTarget(_, Expect::Present)
        | Change::PutUser(_, Expect::Present)
        | Change::PutGroup(_, Expect::Present) => true,
        // A time-bound grant is a user's, from a request, with an end.
        Change::PutTemporaryGrant { grant, .. } => {
            !matches!(grant.principal, crate::model::Principal::User(_))
                || grant.via.is_none()
                || grant.expires_at.is_none()
        }
        _ => false,
    }
}

fn put_holds<K: Ord, T>(map: &BTreeMap<K, Versioned<T>>, key: &K, expect: Expect) -> bool {
    match expect {
        Expect::Absent => !map.contains_key(key),
        Expect::Version(v) => map.get(key).is_some_and(|x| x.version == v),
        // Refused before the transaction is sent (see `unbuildable`).
        Expect::Present => false,
    }
}

fn delete_holds<K: Ord, T>(map: &BTreeMap<K, Versioned<T>>, key: &K, expect: Expect) -> bool {
    match expect {
        // The DynamoDB adapter deletes without a condition here.
        Expect::Absent => true,
        Expect::Version(v) => map.get(key).is_some_and(|x| x.version == v),
        Expect::Present => map.contains_key(key),
    }
}

fn put_versioned<K: Ord, T>(map: &mut BTreeMap<K, Versioned<T>>, key: K, value: T, expect: Expect) {
    let version = match expect {
        Expect::Version(v) => v + 1,
        Expect::Absent | Expect::Present => 1,
    };
    map.insert(key, Versioned { value, version });
}

/// Whether `change`'s condition holds in `s`.
fn holds(s: &State, change: &Change) -> bool {
    let factors = |u: &UserName| s.factors.get(u);
    match change {
        Change::Require(r) => match r {
            Reference::Account(a) => s.accounts.contains_key(a),
            Reference::Target(t) => s.targets.contains_key(t),
            Reference::User(u) => s.users.contains_key(u),
            Reference::Group(g) => s.groups.contains_key(g),
        },
        Change::PutAccount(a, e) => put_holds(&s.accounts, &a.id, *e),
        Change::DeleteAccount(id, e) => delete_holds(&s.accounts, id, *e),
        Change::PutTarget(t, e) => put_holds(&s.targets, &t.name, *e),
        Change::DeleteTarget(name, e) => delete_holds(&s.targets, name, *e),
        Change::PutUser(u, e) => put_holds(&s.users, &u.name, *e),
        Change::DeleteUser(name, e) => delete_holds(&s.users, name, *e),
        Change::PutGroup(g, e) => put_holds(&s.groups, &g.name, *e),
        Change::DeleteGroup(name, e) => delete_holds(&s.groups, name, *e),
        Change::AddMember(u, g) => !s.memberships.contains(&(u.clone(), g.clone())),
        Change::RemoveMember(u, g) => s.memberships.contains(&(u.clone(), g.clone())),
        Change::PutGrant { grant, .. } => !s.grants.contains_key(&grant.key()),
        Change::DeleteGrant(key) => s.grants.contains_key(key),
        Change::PutAdminGrant(g) => !s.admin_grants.contains(g),
        Change::DeleteAdminGrant(g) => s.admin_grants.contains(g),
        Change::PutToken(record) => !s.tokens.contains_key(&record.id),
        Change::RevokeToken(id) => s.tokens.contains_key(id),
        Change::DeleteToken(_) | Change::DeleteFactors(_) => true,
        Change::Unlocked { user, now, .. } => {
            // The rule of `Guard::locked_until`, in whole seconds as the condition reads it.
            let guard = factors(user).and_then(|f| f.guard).unwrap_or_default();
            let locked = guard.failures >= crate::model::factors::MAX_FAILURES
                && guard
                    .until
                    .is_some_and(|until| until.unix_timestamp() > now.unix_timestamp());
            !locked
        }
        Change::ClaimStep { user, step } => factors(user)
            .and_then(|f| f.totp.as_ref())
            .is_some_and(|t| t.last_step < *step),
        Change::PutPendingTotp { .. } | Change::PutPassword { .. } => true,
        Change::ActivateTotp { user, enrollment } => factors(user)
            .and_then(|f| f.pending.as_ref())
            .is_some_and(|p| p.sealed == enrollment.sealed),
        Change::OpenApproval(r) => !s.approvals.contains_key(&r.id),
        Change::PutSessionRevocations { user, expect, .. } => {
            put_holds(&s.session_revocations, user, *expect)
        }
        Change::RevokeOn { .. } => true,
        Change::Mark { key, now, .. } => s
            .marks
            .get(key)
            .is_none_or(|(until, _)| *until <= now.unix_timestamp()),
        Change::Approve { id, now, .. } => s.approvals.get(id).is_some_and(|r| {
            r.status == ApprovalStatus::Pending
                && r.expires_at.unix_timestamp() > now.unix_timestamp()
        }),
        Change::ConsumeApproval {
            id,
            requester,
            target,
            now,
        } => s.approvals.get(id).is_some_and(|r| {
            r.status == ApprovalStatus::Approved
                && r.requester == *requester
                && r.target == *target
                && r.expires_at.unix_timestamp() > now.unix_timestamp()
        }),
        Change::Reach { key, guard } => {
            let version = reach_version(s, key);
            match guard {
                ReachGuard::Unchanged { seen } | ReachGuard::Moves { seen } => version == *seen,
                ReachGuard::Bumps => true,
            }
        }
        Change::OpenAccessRequest(r) => !s.access_requests.contains_key(&r.id),
        Change::SettleAccessRequest {
            request,
            settlement,
            now,
        } => s.access_requests.get(&request.id).is_some_and(|r| {
            let now = now.unix_timestamp();
            r.state == settlement.from_state()
                && match r.state {
                    RequestState::Approved => r
                        .access_until
                        .is_some_and(|until| until.unix_timestamp() > now),
                    _ => r.expires_at.unix_timestamp() > now,
                }
        }),
        Change::PutTemporaryGrant { grant, .. } => match (&grant.principal, &grant.via) {
            (crate::model::Principal::User(u), Some(id)) => {
                !s.temporary_grants.contains_key(&(u.clone(), id.clone()))
            }
            _ => false,
        },
        Change::EndTemporaryGrant { .. } => true,
        Change::PutEnrollmentCode(r) => !s.enrollment_codes.contains_key(&r.id),
        Change::UseEnrollmentCode { id, user, now } => {
            s.enrollment_codes.get(id).is_some_and(|r| {
                r.user == *user
                    && r.used_at.is_none()
                    && r.expires_at.unix_timestamp() > now.unix_timestamp()
            })
        }
    }
}

fn reach_version(s: &State, key: &ReachKey) -> u64 {
    s.reach.get(&reach_slot(key)).copied().unwrap_or(0)
}

/// Writes `change` (its condition held).
fn apply(s: &mut State, change: &Change) {
    match change {
        Change::Require(_) => {}
        Change::PutAccount(a, e) => put_versioned(&mut s.accounts, a.id.clone(), a.clone(), *e),
        Change::DeleteAccount(id, _) => {
            s.accounts.remove(id);
        }
        Change::PutTarget(t, e) => put_versioned(&mut s.targets, t.name.clone(), t.clone(), *e),
        Change::DeleteTarget(name, _) => {
            s.targets.remove(name);
        }
        Change::PutUser(u, e) => put_versioned(&mut s.users, u.name.clone(), u.clone(), *e),
        Change::DeleteUser(name, _) => {
            s.users.remove(name);
        }
        Change::PutGroup(g, e) => put_versioned(&mut s.groups, g.name.clone(), g.clone(), *e),
        Change::DeleteGroup(name, _) => {
            s.groups.remove(name);
        }
        Change::AddMember(u, g) => {
            s.memberships.insert((u.clone(), g.clone()));
        }
        Change::RemoveMember(u, g) => {
            s.memberships.remove(&(u.clone(), g.clone()));
        }
        Change::PutGrant { grant, account } => {
            let on = match &grant.scope {
                GrantScope::Target(t) => GrantOn::Target(t.clone()),
                GrantScope::Account { account, .. } => GrantOn::Account(account.clone()),
            };
            s.grants.insert(
                grant_key(&grant.principal, &on),
                StoredGrant {
                    grant: grant.clone(),
                    account: account.clone(),
                },
            );
        }
        Change::DeleteGrant(key) => {
            s.grants.remove(key);
        }
        Change::PutAdminGrant(g) => {
            s.admin_grants.insert(g.clone());
        }
        Change::DeleteAdminGrant(g) => {
            s.admin_grants.remove(g);
        }
        Change::PutToken(record) => {
            s.tokens.insert(record.id.clone(), record.clone());
        }
        Change::RevokeToken(id) => {
            if let Some(t) = s.tokens.get_mut(id) {
                t.revoked = true;
            }
        }
        Change::DeleteToken(id) => {
            s.tokens.remove(id);
        }
        Change::DeleteFactors(user) => {
            s.factors.remove(user);
        }
        Change::Unlocked {
            user,
            clear_failures,
            ..
        } => {
            if *clear_failures {
                // `SET failures = 0`: the item is made if missing; `until` is kept.
                let f = s.factors.entry(user.clone()).or_default();
                let until = f.guard.and_then(|g| g.until);
                f.guard = Some(Guard { failures: 0, until });
            }
        }
        Change::ClaimStep { user, step } => {
            if let Some(t) = s.factors.get_mut(user).and_then(|f| f.totp.as_mut()) {
                t.last_step = *step;
            }
        }
        Change::PutPendingTotp { user, pending } => {
            s.factors.entry(user.clone()).or_default().pending = Some(pending.clone());
        }
        Change::ActivateTotp { user, enrollment } => {
            let f = s.factors.entry(user.clone()).or_default();
            f.totp = Some(enrollment.clone());
            f.pending = None;
        }
        Change::PutPassword { user, hash, at } => {
            s.factors.entry(user.clone()).or_default().password = Some((hash.clone(), *at));
        }
        Change::OpenApproval(r) => {
            s.approvals.insert(r.id.clone(), r.clone());
        }
        Change::PutSessionRevocations {
            user,
            revocations,
            expect,
            ..
        } => {
            let version = match expect {
                Expect::Version(v) => v + 1,
                _ => 1,
            };
            s.session_revocations.insert(
                user.clone(),
                Versioned {
                    value: revocations.clone(),
                    version,
                },
            );
        }
        Change::RevokeOn {
            holder, revoked, ..
        } => {
            s.revoked
                .insert((holder.clone(), revoked.person.clone()), revoked.clone());
        }
        Change::Mark {
            key,
            until,
            payload,
            ..
        } => {
            s.marks
                .insert(key.clone(), (until.unix_timestamp(), payload.clone()));
        }
        Change::Approve { id, approver, now } => {
            if let Some(r) = s.approvals.get_mut(id) {
                r.status = ApprovalStatus::Approved;
                r.approved_by = Some(approver.clone());
                r.approved_at = Some(*now);
            }
        }
        Change::ConsumeApproval { id, .. } => {
            if let Some(r) = s.approvals.get_mut(id) {
                r.status = ApprovalStatus::Used;
            }
        }
        Change::Reach { key, guard } => match guard {
            ReachGuard::Unchanged { .. } => {}
            ReachGuard::Moves { .. } | ReachGuard::Bumps => {
                *s.reach.entry(reach_slot(key)).or_insert(0) += 1;
            }
        },
        Change::PutEnrollmentCode(r) => {
            s.enrollment_codes.insert(r.id.clone(), r.clone());
        }
        Change::OpenAccessRequest(r) => {
            s.access_requests.insert(r.id.clone(), r.clone());
        }
        Change::SettleAccessRequest {
            request,
            settlement,
            now,
        } => {
            if let Some(r) = s.access_requests.get_mut(&request.id) {
                *r = settlement.apply(r, *now);
            }
        }
        Change::PutTemporaryGrant { grant, account } => {
            if let (crate::model::Principal::User(u), Some(id)) = (&grant.principal, &grant.via) {
                s.temporary_grants.insert(
                    (u.clone(), id.clone()),
                    StoredGrant {
                        grant: grant.clone(),
                        account: account.clone(),
                    },
                );
            }
        }
        Change::EndTemporaryGrant { user, request } => {
            s.temporary_grants.remove(&(user.clone(), request.clone()));
        }
        Change::UseEnrollmentCode { id, now, .. } => {
            if let Some(r) = s.enrollment_codes.get_mut(id) {
                r.used_at = Some(*now);
            }
        }
    }
    s.factors.retain(|_, f| !f.is_empty());
}

fn told_to_fail() -> ChangeError {
    UpstreamError::new(
        Service::DynamoDb,
        UpstreamKind::Unavailable,
        "the in-memory ledger was told to fail",
    )
    .into()
}

#[async_trait]
impl Ledger for MemoryStore {
    async fn commit(&self, changes: &[Change], record: &AuditRecord) -> Result<(), ChangeError> {
        self.pause().await?;
        self.commits.fetch_add(1, Ordering::SeqCst);
        // Another request's write, landing first whatever becomes of this one.
        let interlopers = std::mem::take(&mut self.faults()?.interlopers);
        if !interlopers.is_empty() {
            let mut state = self.lock()?;
            for interloper in interlopers {
                interloper(&mut state);
            }
        }
        {
            let mut faults = self.faults()?;
            if faults.fail_commits || faults.fail_next_commits > 0 {
                faults.fail_next_commits = faults.fail_next_commits.saturating_sub(1);
                return Err(told_to_fail());
            }
        }
        if !changes.is_empty() {
            // What the adapter refuses before sending: a change it cannot build, too many items.
            if changes.iter().any(unbuildable) {
                return Err(UpstreamError::new(
                    Service::DynamoDb,
                    UpstreamKind::Corrupt,
                    "a replacing put must name the version it read",
                )
                .into());
            }
            let items: Vec<Item> = changes.iter().flat_map(items_of).collect();
            if items.len() + 1 > MAX_TRANSACTION_ITEMS {
                return Err(ChangeError::TooLarge);
            }
            // What DynamoDB refuses before reading any condition (a ValidationException).
            let mut seen = HashSet::new();
            if !items.iter().all(|item| seen.insert(item)) {
                return Err(UpstreamError::new(
                    Service::DynamoDb,
                    UpstreamKind::Refused,
                    "ValidationException: Transaction request cannot include multiple operations on one item",
                )
                .into());
            }
        }
        let mut state = self.lock()?;
        // Every condition is read before anything is written (no item appears twice, so this
        // is what one transaction sees); the first that fails names its change.
        if let Some(index) = changes.iter().position(|c| !holds(&state, c)) {
            return Err(ChangeError::Conflict { index });
        }
        if state.audit.iter().any(|r| r.id == record.id) {
            return Err(ChangeError::Conflict {
                index: changes.len(),
            });
        }
        for change in changes {
            apply(&mut state, change);
        }
        state.audit.push(record.clone());
        Ok(())
    }

    async fn take_mark(
        &self,
        key: &str,
        now: time::OffsetDateTime,
    ) -> Result<Option<String>, UpstreamError> {
        self.pause().await?;
        if self.faults()?.fail_commits {
            return Err(UpstreamError::new(
                Service::DynamoDb,
                UpstreamKind::Unavailable,
                "told to fail",
            ));
        }
        let mut state = self.lock()?;
        let live = state
            .marks
            .get(key)
            .is_some_and(|(until, payload)| *until > now.unix_timestamp() && payload.is_some());
        Ok(if live {
            state.marks.remove(key).and_then(|(_, payload)| payload)
        } else {
            None
        })
    }
}
