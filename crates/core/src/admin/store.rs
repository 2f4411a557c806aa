//! The admin ports: versioned reads, paginated lists, and audit searches (changes are written
//! through the ledger).

use async_trait::async_trait;
use serde::Serialize;

use crate::audit::AuditRecord;
use crate::ledger::ReachKey;
use crate::model::{Account, AdminGrant, Grant, Group, Principal, Target, User};
use crate::names::{AccountId, GroupName, InvalidValue, Level, TargetName, UserName};
use crate::ports::UpstreamError;
use crate::token::{ApiTokenRecord, TokenId};

/// A stored value and its version: updates name the version they read (If-Match), and a stale
/// one is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

pub const DEFAULT_PAGE: u16 = 50;
pub const MAX_PAGE: u16 = 200;

/// Which page of a list: how many, and where the last page stopped (an opaque cursor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u16,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn new(limit: Option<u16>, cursor: Option<String>) -> Result<Self, InvalidValue> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(InvalidValue::new(
                "limit",
                format!("must be 1 to {MAX_PAGE}"),
            ));
        }
        Ok(Self { limit, cursor })
    }

    pub fn first(limit: u16) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
}

#[async_trait]
pub trait DirectoryAdmin: Send + Sync {
    async fn account(&self, id: &AccountId) -> Result<Option<Versioned<Account>>, UpstreamError>;
    async fn accounts(&self, page: &PageRequest)
    -> Result<Page<Versioned<Account>>, UpstreamError>;
    async fn target(&self, name: &TargetName) -> Result<Option<Versioned<Target>>, UpstreamError>;
    async fn targets_of(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<Versioned<Target>>, UpstreamError>;
    /// The highest level among an account's targets.
    async fn top_level(&self, account: &AccountId) -> Result<Option<Level>, UpstreamError>;
    /// An account's targets, highest level first, at most `limit`.
    async fn highest_targets(
        &self,
        account: &AccountId,
        limit: u16,
    ) -> Result<Vec<Target>, UpstreamError>;
    /// The version of what `key` watches (0: never changed); see `Change::Reach`.
    async fn reach(&self, key: &ReachKey) -> Result<u64, UpstreamError>;
    async fn user(&self, name: &UserName) -> Result<Option<Versioned<User>>, UpstreamError>;
    async fn users(&self, page: &PageRequest) -> Result<Page<Versioned<User>>, UpstreamError>;
    async fn group(&self, name: &GroupName) -> Result<Option<Versioned<Group>>, UpstreamError>;
    async fn groups(&self, page: &PageRequest) -> Result<Page<Versioned<Group>>, UpstreamError>;
    async fn members(&self, group: &GroupName) -> Result<Vec<UserName>, UpstreamError>;
    async fn memberships(&self, user: &UserName) -> Result<Vec<GroupName>, UpstreamError>;
    /// Grants that reach `account` (cascades on it, and grants of its targets).
    async fn grants_in(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, UpstreamError>;
    async fn grants_of(&self, principal: &Principal) -> Result<Vec<Grant>, UpstreamError>;
    /// Admin grants for `account`, or the universal ones when `None`.
    async fn admin_grants(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<AdminGrant>, UpstreamError>;
    async fn admin_grants_of(
        &self,
        principal: &Principal,
    ) -> Result<Vec<AdminGrant>, UpstreamError>;
    async fn tokens_of(&self, user: &UserName) -> Result<Vec<ApiTokenRecord>, UpstreamError>;
    async fn token(&self, id: &TokenId) -> Result<Option<ApiTokenRecord>, UpstreamError>;
}

/// How to find audit records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditQuery {
    AccessKey(String),
    Actor(String),
    Account(AccountId),
}

#[async_trait]
pub trait AuditSearch: Send + Sync {
    /// Matching records in time order (oldest first, or newest first), a page at a time.
    async fn search(
        &self,
        query: &AuditQuery,
        page: &PageRequest,
        newest_first: bool,
    ) -> Result<Page<AuditRecord>, UpstreamError>;
}
