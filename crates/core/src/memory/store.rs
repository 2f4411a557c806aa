//! The in-memory store: one state behind a mutex, read through every read port, written only by
//! the ledger (and by the failure counter and the request counter, as in DynamoDB).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::access::UserProfile;
use crate::admin::store::{AuditQuery, AuditSearch, DirectoryAdmin, Page, PageRequest, Versioned};
use crate::audit::{AuditEvent, AuditRecord};
use crate::model::approvals::{ApprovalId, ApprovalRequest};
use crate::model::factors::{AuthFactors, Guard, LOCKOUT, PendingTotp, TotpEnrollment};
use crate::model::requests::{AccessRequest, AccessRequestId};
use crate::model::{
    Account, AdminGrant, Grant, GrantKey, GrantOn, GrantScope, Group, Principal, Target, User,
};
use crate::names::{AccountId, GroupName, Level, TargetName, UserName};
use crate::password::PasswordHash;
use crate::ports::{
    AccessRequestStore, ApprovalStore, Directory, FactorStore, RequestCounter, Service,
    UpstreamError, UpstreamKind,
};
use crate::token::{ApiTokenRecord, EnrollmentCodeRecord, TokenId};

/// A grant as stored: the grant, and the account it reaches (the target's, for a target grant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrant {
    pub grant: Grant,
    pub account: AccountId,
}

/// One user's factor items (DynamoDB keeps four items in the user's `AUTH#` partition).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredFactors {
    pub totp: Option<TotpEnrollment>,
    pub pending: Option<PendingTotp>,
    pub password: Option<(PasswordHash, OffsetDateTime)>,
    /// The lockout item; `until` is kept in whole seconds, as DynamoDB keeps it.
    pub guard: Option<Guard>,
}

impl StoredFactors {
    /// What [`FactorStore::factors`] answers for these items.
    pub fn read(&self) -> AuthFactors {
        AuthFactors {
            totp: self.totp.clone(),
            pending: self.pending.clone(),
            password: self.password.as_ref().map(|(hash, _)| hash.clone()),
            guard: self.guard.unwrap_or_default(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.totp.is_none()
            && self.pending.is_none()
            && self.password.is_none()
            && self.guard.is_none()
    }
}

/// Everything the store holds. Tests may read it (through [`MemoryStore::state`]) and seed it;
/// the use cases change it only through the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub accounts: BTreeMap<AccountId, Versioned<Account>>,
    pub targets: BTreeMap<TargetName, Versioned<Target>>,
    pub users: BTreeMap<UserName, Versioned<User>>,
    pub groups: BTreeMap<GroupName, Versioned<Group>>,
    pub memberships: BTreeSet<(UserName, GroupName)>,
    pub grants: HashMap<GrantKey, StoredGrant>,
    pub admin_grants: HashSet<AdminGrant>,
    pub tokens: HashMap<TokenId, ApiTokenRecord>,
    pub factors: BTreeMap<UserName, StoredFactors>,
    pub approvals: HashMap<ApprovalId, ApprovalRequest>,
    /// The audit trail, in the order it was committed.
    pub audit: Vec<AuditRecord>,
    /// Request counts by (key, window start).
    pub counters: BTreeMap<(String, i64), u32>,
    pub enrollment_codes: HashMap<TokenId, EnrollmentCodeRecord>,
    /// The versions reach guards watch (`Change::Reach`).
    pub reach: BTreeMap<String, u64>,
    /// One-time marks (`Change::Mark`): the unix time each expires at, and its payload.
    pub marks: BTreeMap<String, (i64, Option<String>)>,
    /// Each person's record of ended cooper sessions.
    pub session_revocations: BTreeMap<UserName, Versioned<crate::revocation::SessionRevocations>>,
    /// Revoked AWS sessions, by holder key and person.
    pub revoked: BTreeMap<(String, UserName), crate::revocation::policy::RevokedSessions>,
    pub access_requests: BTreeMap<AccessRequestId, AccessRequest>,
    /// The time-bound grants approved access requests gave, by user and request.
    pub temporary_grants: BTreeMap<(UserName, AccessRequestId), StoredGrant>,
}

/// What a reach guard's version is kept under.
pub(super) fn reach_slot(key: &crate::ledger::ReachKey) -> String {
    key.to_string()
}

impl State {
    /// The state without the audit trail and the request counters: what a failed commit must
    /// leave exactly as it was.
    pub fn without_trail(&self) -> State {
        State {
            audit: Vec::new(),
            counters: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// The audit records of `event`, in order.
    pub fn records(&self, event: AuditEvent) -> Vec<&AuditRecord> {
        self.audit.iter().filter(|r| r.event == event).collect()
    }

    pub(super) fn grants_of(&self, principal: &Principal) -> Vec<Grant> {
        let mut found: Vec<&StoredGrant> = self
            .grants
            .values()
            .filter(|g| g.grant.principal == *principal)
            .collect();
        found.sort_by_key(|g| grant_sort_key(&g.grant));
        found.into_iter().map(|g| g.grant.clone()).collect()
    }

    pub(super) fn admin_grants_of(&self, principal: &Principal) -> Vec<AdminGrant> {
        let mut found: Vec<AdminGrant> = self
            .admin_grants
            .iter()
            .filter(|g| g.principal == *principal)
            .cloned()
            .collect();
        found.sort_by_key(admin_grant_sort_key);
        found
    }
}

fn principal_key(p: &Principal) -> String {
    match p {
        Principal::User(u) => format!("USER#{u}"),
        Principal::Group(g) => format!("GROUP#{g}"),
    }
}

/// The order DynamoDB keeps a grant in (its key, as the directory table spells it).
fn grant_sort_key(g: &Grant) -> String {
    let sk = match &g.scope {
        GrantScope::Target(t) => format!("GRANT#TARGET#{t}"),
        GrantScope::Account { account, .. } => format!("GRANT#ACCOUNT#{account}"),
    };
    format!("{}#{sk}", principal_key(&g.principal))
}

fn admin_grant_sort_key(g: &AdminGrant) -> String {
    match &g.account {
        Some(a) => format!("{}#ADMIN#ACCOUNT#{a}", principal_key(&g.principal)),
        None => format!("{}#ADMIN#*", principal_key(&g.principal)),
    }
}

fn target_sort_key(t: &Target) -> String {
    format!("TARGET#{:04}#{}", t.level.get(), t.name)
}

/// A grant's key, from the grant.
pub(super) fn grant_key(principal: &Principal, on: &GrantOn) -> GrantKey {
    GrantKey {
        principal: principal.clone(),
        on: on.clone(),
    }
}

/// A hook run inside the next commit, before its conditions are read: another writer that got
/// there first.
pub type Interloper = Box<dyn FnOnce(&mut State) + Send>;

/// Failures and timing a test asks for.
#[derive(Default)]
pub(super) struct Faults {
    /// This many next commits fail (before looking at anything).
    pub(super) fail_next_commits: usize,
    /// Every commit fails while set.
    pub(super) fail_commits: bool,
    /// Every call but the ledger's fails while set (reads, failure counts, request counts).
    pub(super) fail_reads: bool,
    /// Every call yields once to the executor before doing its work, so that two use cases
    /// joined together interleave (both read before either writes).
    pub(super) interleave: bool,
    pub(super) interlopers: Vec<Interloper>,
}

/// The in-memory store: implements every storage port over one [`State`].
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    pub(super) faults: Mutex<Faults>,
    reads: AtomicUsize,
    pub(super) commits: AtomicUsize,
    /// Every call's start and end on one clock of steps, while a test is timing them.
    timeline: Mutex<Option<Vec<(usize, usize)>>>,
    steps: AtomicUsize,
}

/// Yields once to the executor.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

pub(super) fn poisoned() -> UpstreamError {
    UpstreamError::new(
        Service::DynamoDb,
        UpstreamKind::Unavailable,
        "the in-memory state is poisoned (a test panicked while holding it)",
    )
}

fn unreachable_store() -> UpstreamError {
    UpstreamError::new(
        Service::DynamoDb,
        UpstreamKind::Unavailable,
        "the in-memory store was told to fail",
    )
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn lock(&self) -> Result<MutexGuard<'_, State>, UpstreamError> {
        self.state.lock().map_err(|_| poisoned())
    }

    pub(super) fn faults(&self) -> Result<MutexGuard<'_, Faults>, UpstreamError> {
        self.faults.lock().map_err(|_| poisoned())
    }

    /// A copy of everything stored.
    pub fn state(&self) -> Result<State, UpstreamError> {
        Ok(self.lock()?.clone())
    }

    /// Changes the state directly: test setup only (the use cases write through the ledger).
    pub fn seed<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, UpstreamError> {
        let mut state = self.lock()?;
        Ok(f(&mut state))
    }

    /// The next `n` commits fail with an [`UpstreamError`], writing nothing.
    pub fn fail_next_commits(&self, n: usize) -> Result<(), UpstreamError> {
        self.faults()?.fail_next_commits = n;
        Ok(())
    }

    /// Every commit fails while `on`.
    pub fn fail_commits(&self, on: bool) -> Result<(), UpstreamError> {
        self.faults()?.fail_commits = on;
        Ok(())
    }

    /// Every call but the ledger's fails while `on`.
    pub fn fail_reads(&self, on: bool) -> Result<(), UpstreamError> {
        self.faults()?.fail_reads = on;
        Ok(())
    }

    /// Every call yields once before its work while `on` (see [`Faults::interleave`]).
    pub fn interleave(&self, on: bool) -> Result<(), UpstreamError> {
        self.faults()?.interleave = on;
        Ok(())
    }

    /// Runs `change` inside the next commit, before its conditions are evaluated: a concurrent
    /// request whose write landed first.
    pub fn before_next_commit(
        &self,
        change: impl FnOnce(&mut State) + Send + 'static,
    ) -> Result<(), UpstreamError> {
        self.faults()?.interlopers.push(Box::new(change));
        Ok(())
    }

    /// How many calls other than commits were made (reads, counts).
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// How many commits were attempted.
    pub fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }

    /// Runs `f` with every call timed (and made to yield, so that calls made side by side are
    /// seen so): how many calls deep `f` went, each waiting for one before it (a call waits for
    /// another when it started after the other ended). A use case's round trips, in memory.
    pub async fn depth_of<T>(
        &self,
        f: impl Future<Output = T>,
    ) -> Result<(T, usize), UpstreamError> {
        let interleaving = std::mem::replace(&mut self.faults()?.interleave, true);
        *self.timeline.lock().map_err(|_| poisoned())? = Some(Vec::new());
        let out = f.await;
        self.faults()?.interleave = interleaving;
        let mut calls = self
            .timeline
            .lock()
            .map_err(|_| poisoned())?
            .take()
            .unwrap_or_default();
        calls.sort_unstable();
        // Per call (by start): the deepest chain ending with it.
        let mut deepest: Vec<(usize, usize)> = Vec::with_capacity(calls.len());
        for (start, end) in calls {
            let before = deepest
                .iter()
                .filter(|(ended, _)| *ended < start)
                .map(|(_, depth)| *depth)
                .max()
                .unwrap_or(0);
            deepest.push((end, before + 1));
        }
        let depth = deepest.into_iter().map(|(_, d)| d).max().unwrap_or(0);
        Ok((out, depth))
    }

    pub(super) async fn pause(&self) -> Result<(), UpstreamError> {
        if self.faults()?.interleave {
            YieldOnce(false).await;
        }
        Ok(())
    }

    /// One call other than a commit: yields if asked to, fails if asked to, else runs `f` on
    /// the state (the lock is never held across an await).
    async fn call<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, UpstreamError> {
        let start = self.steps.fetch_add(1, Ordering::SeqCst);
        self.pause().await?;
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.faults()?.fail_reads {
            return Err(unreachable_store());
        }
        let out = f(&mut *self.lock()?);
        let end = self.steps.fetch_add(1, Ordering::SeqCst);
        if let Some(timeline) = self.timeline.lock().map_err(|_| poisoned())?.as_mut() {
            timeline.push((start, end));
        }
        Ok(out)
    }
}

/// A page of `items` (each with the key it sorts by), after `page.cursor`. As DynamoDB does, a
/// full page carries a cursor even when nothing follows it.
fn page_of<T>(
    list: &str,
    mut items: Vec<(String, T)>,
    page: &PageRequest,
) -> Result<Page<T>, UpstreamError> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let after = match &page.cursor {
        None => None,
        Some(cursor) => Some(
            cursor
                .strip_prefix(list)
                .and_then(|rest| rest.strip_prefix('|'))
                .ok_or_else(|| {
                    UpstreamError::new(
                        Service::DynamoDb,
                        UpstreamKind::BadInput,
                        "the cursor belongs to another list",
                    )
                })?
                .to_owned(),
        ),
    };
    let limit = usize::from(page.limit);
    let taken: Vec<(String, T)> = items
        .into_iter()
        .filter(|(key, _)| after.as_ref().is_none_or(|a| key > a))
        .take(limit)
        .collect();
    let cursor = (taken.len() == limit && limit > 0)
        .then(|| taken.last().map(|(key, _)| format!("{list}|{key}")))
        .flatten();
    Ok(Page {
        items: taken.into_iter().map(|(_, item)| item).collect(),
        cursor,
    })
}

/// BatchGetItem refuses a list of keys with one twice; the reads made of one are refused alike.
fn distinct<T: Ord>(keys: &[T]) -> Result<(), UpstreamError> {
    let unique: BTreeSet<&T> = keys.iter().collect();
    if unique.len() == keys.len() {
        Ok(())
    } else {
        Err(UpstreamError::new(
            Service::DynamoDb,
            UpstreamKind::Refused,
            "ValidationException: Provided list of item keys contains duplicates",
        ))
    }
}

#[async_trait]
impl Directory for MemoryStore {
    async fn api_token(&self, id: &TokenId) -> Result<Option<ApiTokenRecord>, UpstreamError> {
        self.call(|s| s.tokens.get(id).cloned()).await
    }

    async fn temporary_grants(&self, user: &UserName) -> Result<Vec<Grant>, UpstreamError> {
        self.call(|s| {
            s.temporary_grants
                .iter()
                .filter(|((u, _), _)| u == user)
                .map(|(_, g)| g.grant.clone())
                .collect()
        })
        .await
    }

    async fn enrollment_code(
        &self,
        id: &TokenId,
    ) -> Result<Option<EnrollmentCodeRecord>, UpstreamError> {
        self.call(|s| s.enrollment_codes.get(id).cloned()).await
    }

    async fn user_profile(&self, user: &UserName) -> Result<Option<UserProfile>, UpstreamError> {
        self.call(|s| {
            let profile = s.users.get(user)?.value.clone();
            let groups = s
                .memberships
                .iter()
                .filter(|(u, _)| u == user)
                .map(|(_, g)| g.clone())
                .collect();
            let principal = Principal::User(user.clone());
            Some(UserProfile {
                user: profile,
                groups,
                grants: s.grants_of(&principal),
                admin_grants: s.admin_grants_of(&principal),
            })
        })
        .await
    }

    async fn target(&self, name: &TargetName) -> Result<Option<Target>, UpstreamError> {
        self.call(|s| s.targets.get(name).map(|t| t.value.clone()))
            .await
    }

    async fn group_grants_for(
        &self,
        groups: &[GroupName],
        target: &TargetName,
        account: &AccountId,
    ) -> Result<Vec<Grant>, UpstreamError> {
        distinct(groups)?;
        self.call(|s| {
            groups
                .iter()
                .flat_map(|g| {
                    let p = Principal::Group(g.clone());
                    [
                        grant_key(&p, &GrantOn::Target(target.clone())),
                        grant_key(&p, &GrantOn::Account(account.clone())),
                    ]
                })
                .filter_map(|k| s.grants.get(&k).map(|g| g.grant.clone()))
                .collect()
        })
        .await
    }

    async fn group_admin_grants(
        &self,
        groups: &[GroupName],
    ) -> Result<Vec<AdminGrant>, UpstreamError> {
        self.call(|s| {
            groups
                .iter()
                .flat_map(|g| s.admin_grants_of(&Principal::Group(g.clone())))
                .collect()
        })
        .await
    }

    async fn group_grants(&self, groups: &[GroupName]) -> Result<Vec<Grant>, UpstreamError> {
        self.call(|s| {
            groups
                .iter()
                .flat_map(|g| s.grants_of(&Principal::Group(g.clone())))
                .collect()
        })
        .await
    }

    async fn targets(&self, names: &[TargetName]) -> Result<Vec<Target>, UpstreamError> {
        distinct(names)?;
        self.call(|s| {
            names
                .iter()
                .filter_map(|n| s.targets.get(n).map(|t| t.value.clone()))
                .collect()
        })
        .await
    }

    async fn accounts_by_id(&self, ids: &[AccountId]) -> Result<Vec<Account>, UpstreamError> {
        distinct(ids)?;
        self.call(|s| {
            ids.iter()
                .filter_map(|id| s.accounts.get(id).map(|a| a.value.clone()))
                .collect()
        })
        .await
    }

    async fn account_targets(
        &self,
        account: &AccountId,
        max_level: Level,
    ) -> Result<Vec<Target>, UpstreamError> {
        self.call(|s| {
            let mut found: Vec<Target> = s
                .targets
                .values()
                .map(|t| &t.value)
                .filter(|t| t.account == *account && t.level <= max_level)
                .cloned()
                .collect();
            found.sort_by_key(target_sort_key);
            found
        })
        .await
    }

    async fn session_revocations(
        &self,
        user: &UserName,
    ) -> Result<Option<(crate::revocation::SessionRevocations, u64)>, UpstreamError> {
        self.call(|s| {
            s.session_revocations
                .get(user)
                .map(|v| (v.value.clone(), v.version))
        })
        .await
    }

    async fn revocations_on(
        &self,
        holder: &str,
    ) -> Result<Vec<crate::revocation::policy::RevokedSessions>, UpstreamError> {
        self.call(|s| {
            s.revoked
                .iter()
                .filter(|((h, _), _)| h == holder)
                .map(|(_, r)| r.clone())
                .collect()
        })
        .await
    }
}

#[async_trait]
impl DirectoryAdmin for MemoryStore {
    async fn account(&self, id: &AccountId) -> Result<Option<Versioned<Account>>, UpstreamError> {
        self.call(|s| s.accounts.get(id).cloned()).await
    }

    async fn accounts(
        &self,
        page: &PageRequest,
    ) -> Result<Page<Versioned<Account>>, UpstreamError> {
        let all = self
            .call(|s| {
                s.accounts
                    .values()
                    .map(|a| (format!("ACCOUNT#{}", a.value.id), a.clone()))
                    .collect()
            })
            .await?;
        page_of("accounts", all, page)
    }

    async fn target(&self, name: &TargetName) -> Result<Option<Versioned<Target>>, UpstreamError> {
        self.call(|s| s.targets.get(name).cloned()).await
    }

    async fn targets_of(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<Versioned<Target>>, UpstreamError> {
        let all = self
            .call(|s| {
                s.targets
                    .values()
                    .filter(|t| t.value.account == *account)
                    .map(|t| (target_sort_key(&t.value), t.clone()))
                    .collect()
            })
            .await?;
        page_of(&format!("targets-of-{account}"), all, page)
    }

    async fn top_level(&self, account: &AccountId) -> Result<Option<Level>, UpstreamError> {
        self.call(|s| {
            s.targets
                .values()
                .filter(|t| t.value.account == *account)
                .map(|t| t.value.level)
                .max()
        })
        .await
    }

    async fn highest_targets(
        &self,
        account: &AccountId,
        limit: u16,
    ) -> Result<Vec<Target>, UpstreamError> {
        self.call(|s| {
            let mut found: Vec<Target> = s
                .targets
                .values()
                .filter(|t| t.value.account == *account)
                .map(|t| t.value.clone())
                .collect();
            // As the index sorts them: by level, then name; highest first.
            found.sort_by(|a, b| (b.level, &b.name).cmp(&(a.level, &a.name)));
            found.truncate(usize::from(limit));
            found
        })
        .await
    }

    async fn reach(&self, key: &crate::ledger::ReachKey) -> Result<u64, UpstreamError> {
        self.call(|s| s.reach.get(&reach_slot(key)).copied().unwrap_or(0))
            .await
    }

    async fn user(&self, name: &UserName) -> Result<Option<Versioned<User>>, UpstreamError> {
        self.call(|s| s.users.get(name).cloned()).await
    }

    async fn users(&self, page: &PageRequest) -> Result<Page<Versioned<User>>, UpstreamError> {
        let all = self
            .call(|s| {
                s.users
                    .values()
                    .map(|u| (format!("USER#{}", u.value.name), u.clone()))
                    .collect()
            })
            .await?;
        page_of("users", all, page)
    }

    async fn group(&self, name: &GroupName) -> Result<Option<Versioned<Group>>, UpstreamError> {
        self.call(|s| s.groups.get(name).cloned()).await
    }

    async fn groups(&self, page: &PageRequest) -> Result<Page<Versioned<Group>>, UpstreamError> {
        let all = self
            .call(|s| {
                s.groups
                    .values()
                    .map(|g| (format!("GROUP#{}", g.value.name), g.clone()))
                    .collect()
            })
            .await?;
        page_of("groups", all, page)
    }

    async fn members(&self, group: &GroupName) -> Result<Vec<UserName>, UpstreamError> {
        self.call(|s| {
            s.memberships
                .iter()
                .filter(|(_, g)| g == group)
                .map(|(u, _)| u.clone())
                .collect()
        })
        .await
    }

    async fn memberships(&self, user: &UserName) -> Result<Vec<GroupName>, UpstreamError> {
        self.call(|s| {
            s.memberships
                .iter()
                .filter(|(u, _)| u == user)
                .map(|(_, g)| g.clone())
                .collect()
        })
        .await
    }

    async fn grants_in(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, UpstreamError> {
        let all = self
            .call(|s| {
                s.grants
                    .values()
                    .filter(|g| g.account == *account)
                    .map(|g| (grant_sort_key(&g.grant), g.grant.clone()))
                    .collect()
            })
            .await?;
        page_of(&format!("grants-in-{account}"), all, page)
    }

    async fn grants_of(&self, principal: &Principal) -> Result<Vec<Grant>, UpstreamError> {
        self.call(|s| s.grants_of(principal)).await
    }

    async fn admin_grants(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<AdminGrant>, UpstreamError> {
        self.call(|s| {
            let mut found: Vec<AdminGrant> = s
                .admin_grants
                .iter()
                .filter(|g| g.account.as_ref() == account)
                .cloned()
                .collect();
            found.sort_by_key(admin_grant_sort_key);
            found
        })
        .await
    }

    async fn admin_grants_of(
        &self,
        principal: &Principal,
    ) -> Result<Vec<AdminGrant>, UpstreamError> {
        self.call(|s| s.admin_grants_of(principal)).await
    }

    async fn tokens_of(&self, user: &UserName) -> Result<Vec<ApiTokenRecord>, UpstreamError> {
        self.call(|s| {
            let mut found: Vec<ApiTokenRecord> = s
                .tokens
                .values()
                .filter(|t| t.user == *user)
                .cloned()
                .collect();
            found.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
            found
        })
        .await
    }

    async fn token(&self, id: &TokenId) -> Result<Option<ApiTokenRecord>, UpstreamError> {
        self.call(|s| s.tokens.get(id).cloned()).await
    }
}

#[async_trait]
impl AuditSearch for MemoryStore {
    async fn search(
        &self,
        query: &AuditQuery,
        page: &PageRequest,
        newest_first: bool,
    ) -> Result<Page<AuditRecord>, UpstreamError> {
        let mut found: Vec<AuditRecord> = self
            .call(|s| {
                s.audit
                    .iter()
                    .filter(|r| match query {
                        AuditQuery::AccessKey(k) => r.access_key_id.as_ref() == Some(k),
                        AuditQuery::Actor(a) => r.actor == *a,
                        AuditQuery::Account(a) => r.account.as_ref() == Some(a),
                    })
                    .cloned()
                    .collect()
            })
            .await?;
        // The indexes sort by time; records of one instant stay in the order they were written.
        found.sort_by_key(|r| r.at);
        if newest_first {
            found.reverse();
        }
        let start = match &page.cursor {
            None => 0,
            Some(cursor) => {
                let id = cursor.strip_prefix("audit|").unwrap_or_default();
                found
                    .iter()
                    .position(|r| r.id == id)
                    .map(|i| i + 1)
                    .ok_or_else(|| {
                        UpstreamError::new(
                            Service::DynamoDb,
                            UpstreamKind::BadInput,
                            "the cursor belongs to another search",
                        )
                    })?
            }
        };
        let limit = usize::from(page.limit);
        let items: Vec<AuditRecord> = found.into_iter().skip(start).take(limit).collect();
        let cursor = (items.len() == limit && limit > 0)
            .then(|| items.last().map(|r| format!("audit|{}", r.id)))
            .flatten();
        Ok(Page { items, cursor })
    }
}

/// `at` in whole seconds, as DynamoDB's number attributes keep it.
pub(super) fn seconds(at: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(at.unix_timestamp()).unwrap_or(at)
}

#[async_trait]
impl FactorStore for MemoryStore {
    async fn factors(&self, user: &UserName) -> Result<AuthFactors, UpstreamError> {
        self.call(|s| {
            s.factors
                .get(user)
                .map(StoredFactors::read)
                .unwrap_or_default()
        })
        .await
    }

    async fn record_failure(
        &self,
        user: &UserName,
        now: OffsetDateTime,
    ) -> Result<Guard, UpstreamError> {
        // As the DynamoDB adapter's two conditional updates: within the window of the last
        // failure one more (the window moving to a lockout from now); past it, one again.
        self.call(|s| {
            let factors = s.factors.entry(user.clone()).or_default();
            let guard = factors.guard.get_or_insert_with(Guard::default);
            let within = guard
                .until
                .is_none_or(|until| until.unix_timestamp() > now.unix_timestamp());
            guard.failures = if within {
                guard.failures.saturating_add(1)
            } else {
                1
            };
            guard.until = Some(seconds(now + LOCKOUT));
            *guard
        })
        .await
    }
}

#[async_trait]
impl ApprovalStore for MemoryStore {
    async fn approval(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, UpstreamError> {
        self.call(|s| s.approvals.get(id).cloned()).await
    }

    async fn approvals_by(
        &self,
        requester: &UserName,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>, UpstreamError> {
        self.call(|s| {
            let mut found: Vec<ApprovalRequest> = s
                .approvals
                .values()
                .filter(|r| r.requester == *requester)
                .cloned()
                .collect();
            found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
            found.truncate(limit);
            found
        })
        .await
    }

    async fn approvals_asking(
        &self,
        principals: &[Principal],
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>, UpstreamError> {
        self.call(|s| {
            let mut found: Vec<ApprovalRequest> = s
                .approvals
                .values()
                .filter(|r| {
                    r.created_at >= since && r.approvers.iter().any(|a| principals.contains(a))
                })
                .cloned()
                .collect();
            found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
            found.truncate(limit);
            found
        })
        .await
    }
}

#[async_trait]
impl AccessRequestStore for MemoryStore {
    async fn access_request(
        &self,
        id: &AccessRequestId,
    ) -> Result<Option<AccessRequest>, UpstreamError> {
        self.call(|s| s.access_requests.get(id).cloned()).await
    }

    async fn requests_by(
        &self,
        requester: &UserName,
        limit: usize,
    ) -> Result<Vec<AccessRequest>, UpstreamError> {
        self.call(|s| {
            let mut found: Vec<AccessRequest> = s
                .access_requests
                .values()
                .filter(|r| r.requester == *requester)
                .cloned()
                .collect();
            newest_first(&mut found, limit);
            found
        })
        .await
    }

    async fn requests_asking(
        &self,
        principals: &[Principal],
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AccessRequest>, UpstreamError> {
        self.call(|s| {
            let mut found: Vec<AccessRequest> = s
                .access_requests
                .values()
                .filter(|r| {
                    r.created_at >= since && r.approvers.iter().any(|a| principals.contains(a))
                })
                .cloned()
                .collect();
            newest_first(&mut found, limit);
            found
        })
        .await
    }
}

fn newest_first(requests: &mut Vec<AccessRequest>, limit: usize) {
    requests.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    requests.truncate(limit);
}

#[async_trait]
impl RequestCounter for MemoryStore {
    async fn count(
        &self,
        key: &str,
        window_start: i64,
        limit: u32,
        _window_end: i64,
    ) -> Result<Option<u32>, UpstreamError> {
        self.call(|s| {
            let n = s
                .counters
                .entry((key.to_owned(), window_start))
                .or_insert(0);
            if *n >= limit {
                None
            } else {
                *n += 1;
                Some(*n)
            }
        })
        .await
    }

    async fn counted(&self, key: &str, window_start: i64) -> Result<u32, UpstreamError> {
        self.call(|s| {
            s.counters
                .get(&(key.to_owned(), window_start))
                .copied()
                .unwrap_or(0)
        })
        .await
    }
}
