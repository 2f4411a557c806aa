//! The admin use cases: every call checks the caller's scope per account, asks for a fresh code
//! for sensitive operations, and writes its change and its audit record in one atomic write.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::access::{Caller, Denial, Identity};
use crate::admin::scope::{AdminGrant, AdminGroups, AdminScope, scope_of};
use crate::admin::store::{AuditQuery, AuditSearch, DirectoryAdmin, Page, PageRequest, Versioned};
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::clock::{Clock, Entropy, EntropyUnavailable};
use crate::factors::{FactorError, SecondFactor};
use crate::ledger::{Change, ChangeError, Expect, Ledger, MAX_CHANGES, Reference, record_refusal};
use crate::model::{
    Account, Grant, GrantKey, GrantOn, GrantScope, Group, Principal, Target, TargetKind, User,
};
use crate::names::{AccountId, GroupName, InvalidValue, Level, TargetName, TokenLabel, UserName};
use crate::ports::{Directory, FactorStore, UpstreamError};
use crate::token::{ApiToken, ApiTokenRecord, TokenId};
use crate::totp::TotpCode;

/// Admin operations that need a fresh TOTP code from the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sensitive {
    /// Granting a level at or above the account's top level (or its top target).
    GrantTopLevel,
    /// Creating or removing an admin grant.
    AdminScope,
    /// Setting a federated-user target's keys.
    FederationKeys,
    DeleteAccount,
    DeleteUser,
    ResetTotp,
    IssueToken,
}

impl Sensitive {
    pub const DEFAULT: [Sensitive; 4] = [
        Self::GrantTopLevel,
        Self::AdminScope,
        Self::FederationKeys,
        Self::DeleteAccount,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::GrantTopLevel => "grant_top_level",
            Self::AdminScope => "admin_scope",
            Self::FederationKeys => "federation_keys",
            Self::DeleteAccount => "delete_account",
            Self::DeleteUser => "delete_user",
            Self::ResetTotp => "reset_totp",
            Self::IssueToken => "issue_token",
        }
    }

    /// A comma-separated list of names (`COOPER_ADMIN_TOTP_OPERATIONS`).
    pub fn parse_list(spec: &str) -> Result<BTreeSet<Self>, InvalidValue> {
        let all = [
            Self::GrantTopLevel,
            Self::AdminScope,
            Self::FederationKeys,
            Self::DeleteAccount,
            Self::DeleteUser,
            Self::ResetTotp,
            Self::IssueToken,
        ];
        spec.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| {
                all.into_iter().find(|s| s.name() == name).ok_or_else(|| {
                    InvalidValue::new("admin_totp_operations", format!("unknown operation {name}"))
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub groups: AdminGroups,
    pub sensitive: BTreeSet<Sensitive>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            groups: AdminGroups::default(),
            sensitive: Sensitive::DEFAULT.into_iter().collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("this needs an administrator")]
    NotAnAdmin,
    #[error("outside your admin scope")]
    OutOfScope,
    #[error("only a universal administrator may do this")]
    UniversalOnly,
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} exists already")]
    AlreadyExists(String),
    #[error("{0} was changed by someone else since you read it; read it again")]
    VersionConflict(String),
    #[error("send the version you read in If-Match")]
    VersionRequired,
    #[error("{what} is still used by: {}; remove those first, or delete with cascade", dependents.join(", "))]
    InUse {
        what: String,
        dependents: Vec<String>,
    },
    #[error("too much depends on this to remove it at once (more than {MAX_CHANGES} items)")]
    TooMuch,
    #[error("{0} cannot be changed; create a new one")]
    Immutable(&'static str),
    #[error("an admin cannot make an admin wider than themselves")]
    WiderAdmin,
    #[error("this operation ({0}) needs a fresh TOTP code (X-Cooper-TOTP)")]
    TotpRequired(&'static str),
    #[error(transparent)]
    Factor(#[from] FactorError),
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The change could not be written with its audit record: nothing was done.
    #[error("the change and its audit record could not be written: {0}")]
    AuditUnavailable(UpstreamError),
}

impl AdminError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAnAdmin => "not_an_admin",
            Self::OutOfScope => "out_of_scope",
            Self::UniversalOnly => "universal_admin_required",
            Self::NotFound(_) => "not_found",
            Self::AlreadyExists(_) => "already_exists",
            Self::VersionConflict(_) => "version_conflict",
            Self::VersionRequired => "precondition_required",
            Self::InUse { .. } => "in_use",
            Self::TooMuch => "too_many_dependents",
            Self::Immutable(_) => "immutable_field",
            Self::WiderAdmin => "wider_admin",
            Self::TotpRequired(_) => "totp_required",
            Self::Factor(e) => e.code(),
            Self::Denied(d) => d.code(),
            Self::Invalid(_) => "invalid_request",
            Self::Entropy(_) => "internal",
            Self::Upstream(_) => "upstream",
            Self::AuditUnavailable(_) => "audit_unavailable",
        }
    }

    /// A refusal worth an audit record: the caller was told no.
    fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::NotAnAdmin
                | Self::OutOfScope
                | Self::UniversalOnly
                | Self::WiderAdmin
                | Self::TotpRequired(_)
                | Self::Factor(_)
        )
    }
}

/// One admin request: who, with what code, from where.
pub struct AdminCall {
    pub identity: Identity,
    pub totp: Option<TotpCode>,
    pub meta: RequestMeta,
}

/// Who acts in an admin call.
pub enum Actor {
    /// A user checked against the directory: active, with some admin scope.
    Admin(Caller),
    /// An operator with AWS access to the deployment (`cooper setup`, `cooper token`): they
    /// could write the tables directly, so cooper's scope and step-up rules add nothing for
    /// them, but their changes go through the same use cases and are audited the same way.
    Operator {
        /// The AWS principal the operator's credentials belong to.
        principal: String,
    },
}

/// An admin call, checked: who acts, their scope, the code they sent, and the code claims that
/// step-up checks produced (committed with the change they allowed).
pub struct AdminContext {
    pub actor: Actor,
    pub scope: AdminScope,
    totp: Option<TotpCode>,
    meta: RequestMeta,
    proofs: std::sync::Mutex<Vec<Change>>,
}

/// What audit records name an operator by.
pub const OPERATOR: &str = "operator";

impl AdminContext {
    /// The actor's name, as audit records name them.
    pub fn actor_name(&self) -> &str {
        match &self.actor {
            Actor::Admin(caller) => caller.user.name.as_str(),
            Actor::Operator { .. } => OPERATOR,
        }
    }

    fn auth(&self) -> String {
        match &self.actor {
            Actor::Admin(caller) => caller.identity.method.to_string(),
            Actor::Operator { principal } => format!("aws:{principal}"),
        }
    }

    /// The admin user, for an admin (operators have no user).
    pub fn admin(&self) -> Option<&Caller> {
        match &self.actor {
            Actor::Admin(caller) => Some(caller),
            Actor::Operator { .. } => None,
        }
    }

    fn take_proofs(&self) -> Vec<Change> {
        self.proofs
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }

    fn add_proof(&self, changes: impl IntoIterator<Item = Change>) {
        if let Ok(mut p) = self.proofs.lock() {
            p.extend(changes);
        }
    }
}

/// A user as admins see them.
#[derive(Debug, Clone)]
pub struct UserDetails {
    pub user: Versioned<User>,
    pub groups: Vec<GroupName>,
    pub admin_grants: Vec<AdminGrant>,
    pub totp_enrolled: bool,
    pub has_password: bool,
}

/// What a delete removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub resource: String,
    pub cascaded: Vec<String>,
}

pub struct Admin {
    pub store: Arc<dyn DirectoryAdmin>,
    pub directory: Arc<dyn Directory>,
    pub factors: Arc<dyn FactorStore>,
    pub second_factor: Arc<SecondFactor>,
    pub ledger: Arc<dyn Ledger>,
    pub search: Arc<dyn AuditSearch>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub config: AdminConfig,
}

/// Lifetime of tokens admins issue for users.
pub const ISSUED_TOKEN_DAYS: i64 = 90;

fn target_view(t: &Target) -> Value {
    // The federation keys are ciphertext, but they are still kept out of audit records.
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(keys) = v.get_mut("sealed_keys") {
        *keys = json!("(sealed)");
    }
    v
}

fn view<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

fn grant_view(g: &Grant) -> Value {
    let mut v = json!({ "principal": view(&g.principal) });
    match &g.scope {
        GrantScope::Target(t) => v["target"] = json!(t),
        GrantScope::Account { account, max_level } => {
            v["account"] = json!(account);
            v["max_level"] = json!(max_level);
        }
    }
    if let Some(at) = g.expires_at {
        v["expires_at"] = json!(at.unix_timestamp());
    }
    v
}

fn grant_name(g: &Grant) -> String {
    format!("grant {g}")
}

fn admin_grant_name(g: &AdminGrant) -> String {
    match &g.account {
        Some(a) => format!("admin grant {} -> account {a}", g.principal),
        None => format!("admin grant {} -> universal", g.principal),
    }
}

/// What a failed atomic write means, from the change that failed.
fn conflict_error(change: Option<&Change>, resource: &str) -> AdminError {
    match change {
        Some(Change::Require(r)) => AdminError::NotFound(r.to_string()),
        Some(
            Change::PutAccount(_, Expect::Absent)
            | Change::PutTarget(_, Expect::Absent)
            | Change::PutUser(_, Expect::Absent)
            | Change::PutGroup(_, Expect::Absent)
            | Change::AddMember(..)
            | Change::PutGrant { .. }
            | Change::PutAdminGrant(_),
        ) => AdminError::AlreadyExists(resource.to_owned()),
        Some(
            Change::PutAccount(_, Expect::Version(_))
            | Change::DeleteAccount(_, Expect::Version(_))
            | Change::PutTarget(_, Expect::Version(_))
            | Change::DeleteTarget(_, Expect::Version(_))
            | Change::PutUser(_, Expect::Version(_))
            | Change::DeleteUser(_, Expect::Version(_))
            | Change::PutGroup(_, Expect::Version(_))
            | Change::DeleteGroup(_, Expect::Version(_)),
        ) => AdminError::VersionConflict(resource.to_owned()),
        Some(_) => AdminError::NotFound(resource.to_owned()),
        None => AdminError::Upstream(UpstreamError::new(
            crate::ports::Service::DynamoDb,
            crate::ports::UpstreamKind::Refused,
            "the audit record's id is taken",
        )),
    }
}

impl Admin {
    /// The caller, checked against the directory, and their admin scope (possibly none).
    pub async fn scope(&self, identity: Identity) -> Result<(Caller, AdminScope), AdminError> {
        let profile = self.directory.user_profile(&identity.user).await?;
        let mut grants = profile
            .as_ref()
            .map(|p| p.admin_grants.clone())
            .unwrap_or_default();
        let caller = Caller::admit(identity, profile, self.clock.now())?;
        if !caller.groups.is_empty() {
            grants.extend(self.directory.group_admin_grants(&caller.groups).await?);
        }
        let scope = scope_of(&caller, &self.config.groups, &grants);
        Ok((caller, scope))
    }

    /// Checks the caller is an active user with some admin scope.
    pub async fn context(&self, call: AdminCall) -> Result<AdminContext, AdminError> {
        let (caller, scope) = self.scope(call.identity).await?;
        let ctx = AdminContext {
            actor: Actor::Admin(caller),
            scope,
            totp: call.totp,
            meta: call.meta,
            proofs: std::sync::Mutex::default(),
        };
        if !ctx.scope.is_admin() {
            self.refused(&ctx, "admin", "access", &AdminError::NotAnAdmin)
                .await;
            return Err(AdminError::NotAnAdmin);
        }
        Ok(ctx)
    }

    /// An operator's context: universal, without step-up (see [`Actor::Operator`]).
    pub fn operator(&self, principal: String, meta: RequestMeta) -> AdminContext {
        AdminContext {
            actor: Actor::Operator { principal },
            scope: AdminScope::Universal,
            totp: None,
            meta,
            proofs: std::sync::Mutex::default(),
        }
    }

    fn record(
        &self,
        ctx: &AdminContext,
        event: AuditEvent,
        resource: &str,
        action: &str,
    ) -> AuditRecord {
        let mut r = AuditRecord::new(
            &ctx.meta,
            self.clock.now(),
            event,
            ctx.actor_name(),
            &ctx.auth(),
        );
        r.resource = Some(resource.to_owned());
        r.action = Some(action.to_owned());
        r
    }

    async fn refused(&self, ctx: &AdminContext, resource: &str, action: &str, error: &AdminError) {
        let mut r = self.record(ctx, AuditEvent::AdminRefused, resource, action);
        r.reason = Some(error.code().to_owned());
        record_refusal(self.ledger.as_ref(), &r).await;
    }

    /// Runs a check; a refusal is audited before it is returned.
    async fn check(
        &self,
        ctx: &AdminContext,
        resource: &str,
        action: &str,
        result: Result<(), AdminError>,
    ) -> Result<(), AdminError> {
        if let Err(e) = &result {
            if e.is_refusal() {
                self.refused(ctx, resource, action, e).await;
            }
        }
        result
    }

    fn in_scope(ctx: &AdminContext, account: &AccountId) -> Result<(), AdminError> {
        if ctx.scope.covers(account) {
            Ok(())
        } else {
            Err(AdminError::OutOfScope)
        }
    }

    fn universal(ctx: &AdminContext) -> Result<(), AdminError> {
        if ctx.scope.is_universal() {
            Ok(())
        } else {
            Err(AdminError::UniversalOnly)
        }
    }

    /// A fresh code from the admin, when the configuration calls `op` sensitive. The code's
    /// claim is committed with the change it allows.
    async fn step_up(&self, ctx: &AdminContext, op: Sensitive) -> Result<(), AdminError> {
        if !self.config.sensitive.contains(&op) {
            return Ok(());
        }
        let Actor::Admin(caller) = &ctx.actor else {
            return Ok(());
        };
        let code = ctx
            .totp
            .as_ref()
            .ok_or(AdminError::TotpRequired(op.name()))?;
        let proof = self.second_factor.check(&caller.user.name, code).await?;
        ctx.add_proof(proof.changes());
        Ok(())
    }

    /// Applies `changes` with an audit record of them, atomically (with the claims of the codes
    /// step-up checked).
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        ctx: &AdminContext,
        resource: &str,
        action: &str,
        account: Option<&AccountId>,
        before: Option<Value>,
        after: Option<Value>,
        changes: Vec<Change>,
    ) -> Result<(), AdminError> {
        let mut all = ctx.take_proofs();
        let proofs = all.len();
        all.extend(changes);
        if all.len() > MAX_CHANGES {
            return Err(AdminError::TooMuch);
        }
        let mut record = self.record(ctx, AuditEvent::AdminChange, resource, action);
        record.account = account.cloned();
        record.before = before;
        record.after = after;
        match self.ledger.commit(&all, &record).await {
            Ok(()) => {
                tracing::info!(admin = %ctx.actor_name(), %resource, %action, "admin change");
                Ok(())
            }
            Err(ChangeError::Conflict { index }) if index < proofs => {
                let now = self.clock.now();
                Err(all
                    .get(index)
                    .and_then(|c| crate::factors::explain_conflict(c, now))
                    .map_or(
                        AdminError::VersionConflict(resource.to_owned()),
                        AdminError::Factor,
                    ))
            }
            Err(ChangeError::Conflict { index }) => Err(conflict_error(all.get(index), resource)),
            Err(ChangeError::TooLarge) => Err(AdminError::TooMuch),
            Err(ChangeError::Upstream(e)) => Err(AdminError::AuditUnavailable(e)),
        }
    }

    /// Creates what only a universal admin may create (accounts, users, groups): one put that
    /// fails if the object exists, audited with its new state; the object starts at version 1.
    async fn create_universal<T: serde::Serialize>(
        &self,
        ctx: &AdminContext,
        resource: &str,
        account: Option<&AccountId>,
        value: T,
        put: Change,
    ) -> Result<Versioned<T>, AdminError> {
        self.check(ctx, resource, "create", Self::universal(ctx))
            .await?;
        let after = Some(view(&value));
        self.commit(ctx, resource, "create", account, None, after, vec![put])
            .await?;
        Ok(Versioned { value, version: 1 })
    }

    fn require_version(version: Option<u64>) -> Result<u64, AdminError> {
        version.ok_or(AdminError::VersionRequired)
    }

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

    /// Removes a thing and, with `cascade`, what depends on it; without, refuses while anything does.
    #[allow(clippy::too_many_arguments)]
    async fn remove(
        &self,
        ctx: &AdminContext,
        resource: &str,
        account: Option<&AccountId>,
        before: Value,
        delete: Change,
        dependents: Vec<(String, Change)>,
        more: bool,
        cascade: bool,
    ) -> Result<Removed, AdminError> {
        if more || dependents.len() >= MAX_CHANGES {
            return Err(AdminError::TooMuch);
        }
        if !dependents.is_empty() && !cascade {
            return Err(AdminError::InUse {
                what: resource.to_owned(),
                dependents: dependents
                    .into_iter()
                    .map(|(name, _)| name)
                    .take(20)
                    .collect(),
            });
        }
        let cascaded: Vec<String> = dependents.iter().map(|(name, _)| name.clone()).collect();
        let mut changes: Vec<Change> = dependents.into_iter().map(|(_, m)| m).collect();
        changes.push(delete);
        let after = (!cascaded.is_empty()).then(|| json!({ "cascaded": cascaded }));
        self.commit(
            ctx,
            resource,
            "delete",
            account,
            Some(before),
            after,
            changes,
        )
        .await?;
        Ok(Removed {
            resource: resource.to_owned(),
            cascaded,
        })
    }

    // ---- targets ----

    pub async fn targets(
        &self,
        ctx: &AdminContext,
        account: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<Versioned<Target>>, AdminError> {
        self.check(
            ctx,
            &format!("account:{account}"),
            "list targets",
            Self::in_scope(ctx, account),
        )
        .await?;
        Ok(self.store.targets_of(account, page).await?)
    }

    pub async fn target(
        &self,
        ctx: &AdminContext,
        name: &TargetName,
    ) -> Result<Versioned<Target>, AdminError> {
        let found = self
            .store
            .target(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("target {name}")))?;
        self.check(
            ctx,
            &format!("target:{name}"),
            "read",
            Self::in_scope(ctx, &found.value.account),
        )
        .await?;
        Ok(found)
    }

    fn approver_refs(target: &Target) -> Vec<Change> {
        target
            .approvers
            .iter()
            .map(|p| match p {
                Principal::User(u) => Change::Require(Reference::User(u.clone())),
                Principal::Group(g) => Change::Require(Reference::Group(g.clone())),
            })
            .collect()
    }

    pub async fn create_target(
        &self,
        ctx: &AdminContext,
        target: Target,
    ) -> Result<Versioned<Target>, AdminError> {
        let resource = format!("target:{}", target.name);
        self.check(
            ctx,
            &resource,
            "create",
            Self::in_scope(ctx, &target.account),
        )
        .await?;
        if matches!(target.kind, TargetKind::FederatedUser { .. }) {
            self.check(
                ctx,
                &resource,
                "create",
                self.step_up(ctx, Sensitive::FederationKeys).await,
            )
            .await?;
        }
        let mut changes = vec![Change::Require(Reference::Account(target.account.clone()))];
        changes.extend(Self::approver_refs(&target));
        changes.push(Change::PutTarget(target.clone(), Expect::Absent));
        self.commit(
            ctx,
            &resource,
            "create",
            Some(&target.account),
            None,
            Some(target_view(&target)),
            changes,
        )
        .await?;
        Ok(Versioned {
            value: target,
            version: 1,
        })
    }

    /// Replaces a target. Its account cannot change; federation keys may be left out (`None`
    /// keeps the stored ones) so that an update need not resend them.
    pub async fn update_target(
        &self,
        ctx: &AdminContext,
        mut target: Target,
        keep_keys: bool,
        version: Option<u64>,
    ) -> Result<Versioned<Target>, AdminError> {
        let resource = format!("target:{}", target.name);
        let version = Self::require_version(version)?;
        let before = self.target(ctx, &target.name).await?;
        self.check(
            ctx,
            &resource,
            "update",
            Self::in_scope(ctx, &target.account),
        )
        .await?;
        if before.value.account != target.account {
            return Err(AdminError::Immutable("account_id"));
        }
        let new_keys = match (&mut target.kind, &before.value.kind) {
            (
                TargetKind::FederatedUser { sealed_keys, .. },
                TargetKind::FederatedUser {
                    sealed_keys: old, ..
                },
            ) => {
                if keep_keys {
                    *sealed_keys = old.clone();
                }
                sealed_keys != old
            }
            (TargetKind::FederatedUser { .. }, _) => true,
            _ => false,
        };
        if new_keys {
            self.check(
                ctx,
                &resource,
                "update",
                self.step_up(ctx, Sensitive::FederationKeys).await,
            )
            .await?;
        }
        let mut changes = Self::approver_refs(&target);
        changes.push(Change::PutTarget(target.clone(), Expect::Version(version)));
        self.commit(
            ctx,
            &resource,
            "update",
            Some(&target.account),
            Some(target_view(&before.value)),
            Some(target_view(&target)),
            changes,
        )
        .await?;
        Ok(Versioned {
            value: target,
            version: version + 1,
        })
    }

    pub async fn delete_target(
        &self,
        ctx: &AdminContext,
        name: &TargetName,
        version: Option<u64>,
        cascade: bool,
    ) -> Result<Removed, AdminError> {
        let resource = format!("target:{name}");
        let before = self.target(ctx, name).await?;
        let account = before.value.account.clone();
        self.check(ctx, &resource, "delete", Self::in_scope(ctx, &account))
            .await?;
        let grants = self
            .store
            .grants_in(&account, &PageRequest::first(crate::admin::store::MAX_PAGE))
            .await?;
        let dependents = grants
            .items
            .into_iter()
            .filter(|g| matches!(&g.scope, GrantScope::Target(t) if t == name))
            .map(|g| (grant_name(&g), Change::DeleteGrant(g.key())))
            .collect();
        self.remove(
            ctx,
            &resource,
            Some(&account),
            target_view(&before.value),
            Change::DeleteTarget(
                name.clone(),
                version.map_or(Expect::Present, Expect::Version),
            ),
            dependents,
            grants.cursor.is_some(),
            cascade,
        )
        .await
    }

    // ---- users ----

    pub async fn users(
        &self,
        _ctx: &AdminContext,
        page: &PageRequest,
    ) -> Result<Page<Versioned<User>>, AdminError> {
        Ok(self.store.users(page).await?)
    }

    pub async fn user(
        &self,
        _ctx: &AdminContext,
        name: &UserName,
    ) -> Result<UserDetails, AdminError> {
        let user = self
            .store
            .user(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("user {name}")))?;
        let principal = Principal::User(name.clone());
        let (groups, admin_grants, factors) = futures_util::future::try_join3(
            self.store.memberships(name),
            self.store.admin_grants_of(&principal),
            self.factors.factors(name),
        )
        .await?;
        Ok(UserDetails {
            user,
            groups,
            admin_grants,
            totp_enrolled: factors.totp.is_some(),
            has_password: factors.password.is_some(),
        })
    }

    pub async fn create_user(
        &self,
        ctx: &AdminContext,
        user: User,
    ) -> Result<Versioned<User>, AdminError> {
        let resource = format!("user:{}", user.name);
        let put = Change::PutUser(user.clone(), Expect::Absent);
        self.create_universal(ctx, &resource, None, user, put).await
    }

    pub async fn update_user(
        &self,
        ctx: &AdminContext,
        user: User,
        version: Option<u64>,
    ) -> Result<Versioned<User>, AdminError> {
        let resource = format!("user:{}", user.name);
        self.check(ctx, &resource, "update", Self::universal(ctx))
            .await?;
        let version = Self::require_version(version)?;
        let before = self
            .store
            .user(&user.name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("user {}", user.name)))?;
        self.commit(
            ctx,
            &resource,
            "update",
            None,
            Some(view(&before.value)),
            Some(view(&user)),
            vec![Change::PutUser(user.clone(), Expect::Version(version))],
        )
        .await?;
        Ok(Versioned {
            value: user,
            version: version + 1,
        })
    }

    pub async fn delete_user(
        &self,
        ctx: &AdminContext,
        name: &UserName,
        version: Option<u64>,
        cascade: bool,
    ) -> Result<Removed, AdminError> {
        let resource = format!("user:{name}");
        self.check(ctx, &resource, "delete", Self::universal(ctx))
            .await?;
        let details = self.user(ctx, name).await?;
        let principal = Principal::User(name.clone());
        let (grants, tokens) = futures_util::future::try_join(
            self.store.grants_of(&principal),
            self.store.tokens_of(name),
        )
        .await?;
        let mut dependents: Vec<(String, Change)> = grants
            .into_iter()
            .map(|g| (grant_name(&g), Change::DeleteGrant(g.key())))
            .collect();
        dependents.extend(
            details
                .admin_grants
                .into_iter()
                .map(|a| (admin_grant_name(&a), Change::DeleteAdminGrant(a))),
        );
        dependents.extend(details.groups.into_iter().map(|g| {
            (
                format!("membership of {g}"),
                Change::RemoveMember(name.clone(), g),
            )
        }));
        self.check(
            ctx,
            &resource,
            "delete",
            self.step_up(ctx, Sensitive::DeleteUser).await,
        )
        .await?;
        if !dependents.is_empty() && !cascade {
            return Err(AdminError::InUse {
                what: resource,
                dependents: dependents.into_iter().map(|(n, _)| n).take(20).collect(),
            });
        }
        // What the user owns goes with them: tokens, authenticator, password.
        dependents.extend(
            tokens
                .into_iter()
                .map(|t| (format!("token {}", t.id), Change::DeleteToken(t.id))),
        );
        dependents.push((
            "authentication factors".into(),
            Change::DeleteFactors(name.clone()),
        ));
        self.remove(
            ctx,
            &resource,
            None,
            view(&details.user.value),
            Change::DeleteUser(
                name.clone(),
                version.map_or(Expect::Present, Expect::Version),
            ),
            dependents,
            false,
            true,
        )
        .await
    }

    /// Removes a user's authenticator, so they can enroll again (after losing their phone).
    pub async fn reset_totp(&self, ctx: &AdminContext, name: &UserName) -> Result<(), AdminError> {
        let resource = format!("user:{name}");
        self.check(ctx, &resource, "reset_totp", Self::universal(ctx))
            .await?;
        self.check(
            ctx,
            &resource,
            "reset_totp",
            self.step_up(ctx, Sensitive::ResetTotp).await,
        )
        .await?;
        self.commit(
            ctx,
            &resource,
            "reset_totp",
            None,
            None,
            None,
            vec![
                Change::Require(Reference::User(name.clone())),
                Change::DeleteFactors(name.clone()),
            ],
        )
        .await
    }

    pub async fn tokens(
        &self,
        ctx: &AdminContext,
        user: &UserName,
    ) -> Result<Vec<ApiTokenRecord>, AdminError> {
        self.check(
            ctx,
            &format!("user:{user}"),
            "list tokens",
            Self::universal(ctx),
        )
        .await?;
        Ok(self.store.tokens_of(user).await?)
    }

    /// A new API token for a user; the whole token is returned once, never stored.
    pub async fn issue_token(
        &self,
        ctx: &AdminContext,
        user: &UserName,
        label: Option<TokenLabel>,
        days: Option<i64>,
    ) -> Result<(ApiToken, ApiTokenRecord), AdminError> {
        let resource = format!("user:{user}");
        self.check(ctx, &resource, "issue_token", Self::universal(ctx))
            .await?;
        self.check(
            ctx,
            &resource,
            "issue_token",
            self.step_up(ctx, Sensitive::IssueToken).await,
        )
        .await?;
        let days = days.unwrap_or(ISSUED_TOKEN_DAYS);
        if !(1..=365).contains(&days) {
            return Err(InvalidValue::new("days", "must be 1 to 365").into());
        }
        let token = ApiToken::generate(self.entropy.as_ref())?;
        let mut record = ApiTokenRecord::issue(
            &token,
            user.clone(),
            self.clock.now(),
            time::Duration::days(days),
        );
        record.label = label;
        self.commit(
            ctx,
            &resource,
            "issue_token",
            None,
            None,
            Some(json!({"token_id": record.id, "expires_at": record.expires_at.unix_timestamp(), "label": record.label})),
            vec![Change::Require(Reference::User(user.clone())), Change::PutToken(record.clone())],
        )
        .await?;
        Ok((token, record))
    }

    pub async fn revoke_token(&self, ctx: &AdminContext, id: &TokenId) -> Result<(), AdminError> {
        let resource = format!("token:{id}");
        self.check(ctx, &resource, "revoke", Self::universal(ctx))
            .await?;
        let record = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("token {id}")))?;
        self.commit(
            ctx,
            &resource,
            "revoke",
            None,
            Some(json!({"user": record.user, "revoked": record.revoked})),
            Some(json!({"user": record.user, "revoked": true})),
            vec![Change::RevokeToken(id.clone())],
        )
        .await
    }

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

    // ---- grants ----

    /// The account a grant reaches: its own for a cascade, the target's for a target grant.
    async fn grant_account(
        &self,
        grant: &Grant,
    ) -> Result<(AccountId, Option<Target>), AdminError> {
        match &grant.scope {
            GrantScope::Account { account, .. } => Ok((account.clone(), None)),
            GrantScope::Target(name) => {
                let target = self
                    .store
                    .target(name)
                    .await?
                    .ok_or_else(|| AdminError::NotFound(format!("target {name}")))?;
                Ok((target.value.account.clone(), Some(target.value)))
            }
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
        let (account, target) = self.grant_account(&grant).await?;
        self.check(ctx, &resource, "create", Self::in_scope(ctx, &account))
            .await?;
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
                None => return Err(AdminError::NotFound(resource)),
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
