//! The admin ports: versioned reads, paginated lists, atomic changes (audited in the same
//! write), and audit searches.

use async_trait::async_trait;
use serde::Serialize;

use crate::admin::scope::AdminGrant;
use crate::audit::AuditRecord;
use crate::model::{Account, Grant, Group, Principal, Target, User};
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

/// What a change expects of what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// It must not exist yet (created at version 1).
    Absent,
    /// It must be at this version (and becomes the next).
    Version(u64),
    /// It must exist, at whatever version.
    Present,
}

/// Something a change needs to exist, without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Account(AccountId),
    Target(TargetName),
    User(UserName),
    Group(GroupName),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Account(a) => write!(f, "account {a}"),
            Self::Target(t) => write!(f, "target {t}"),
            Self::User(u) => write!(f, "user {u}"),
            Self::Group(g) => write!(f, "group {g}"),
        }
    }
}

/// One change to the directory. A list of them is applied atomically, with its audit record.
#[derive(Debug, Clone)]
pub enum Mutation {
    Require(Reference),
    PutAccount(Account, Expect),
    DeleteAccount(AccountId, Expect),
    PutTarget(Target, Expect),
    DeleteTarget(TargetName, Expect),
    PutUser(User, Expect),
    DeleteUser(UserName, Expect),
    PutGroup(Group, Expect),
    DeleteGroup(GroupName, Expect),
    AddMember(UserName, GroupName),
    RemoveMember(UserName, GroupName),
    /// A new grant; `account` is the account it reaches (the target's, for a target grant).
    PutGrant {
        grant: Grant,
        account: AccountId,
    },
    DeleteGrant(Grant),
    PutAdminGrant(AdminGrant),
    DeleteAdminGrant(AdminGrant),
    PutToken(ApiTokenRecord),
    RevokeToken(TokenId),
    DeleteToken(TokenId),
    /// A user's TOTP enrollment, password and lockout state.
    DeleteFactors(UserName),
}

/// Why a set of changes was not applied (none of it was).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change at `index` found its item not as it expected.
    #[error("change {index} did not find what it expected")]
    Conflict { index: usize },
    #[error("too many changes for one atomic write")]
    TooLarge,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Most changes one atomic write can hold, besides its audit record.
pub const MAX_CHANGES: usize = 99;

#[async_trait]
pub trait DirectoryAdmin: Send + Sync {
    /// Applies every change and appends `audit`, all or nothing.
    async fn apply(&self, changes: &[Mutation], audit: &AuditRecord) -> Result<(), ChangeError>;

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
