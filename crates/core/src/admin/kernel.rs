//! The admin kernel: who may act (scope, per account), fresh codes for sensitive operations,
//! and the one way a change is written (with its audit record, atomically). The use cases, one
//! file per resource beside this one, are built from these.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::access::{Caller, Denial, Identity};
use crate::admin::scope::{AdminGrant, AdminGroups, AdminScope, scope_of};
use crate::admin::store::{AuditSearch, DirectoryAdmin, Versioned};
use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::clock::{Clock, Entropy, EntropyUnavailable};
use crate::factors::{FactorError, SecondFactor};
use crate::ledger::{Change, ChangeError, Expect, Ledger, MAX_CHANGES, record_refusal};
use crate::model::{Grant, GrantScope, Target, User};
use crate::names::{AccountId, GroupName, InvalidValue, UserName};
use crate::ports::{Directory, FactorStore, UpstreamError};
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
    /// Issuing a one-time code that enrolls someone's first authenticator.
    EnrollmentCode,
    /// Weakening a target's protection: turning high-security off, changing its approvers
    /// (but for giving it some), pointing it at another role or policy, lengthening its
    /// sessions, changing its session tags; and making a target or an account requestable (or
    /// its requests approvable by anyone new, or for longer).
    WeakenTarget,
}

impl Sensitive {
    pub const DEFAULT: [Sensitive; 6] = [
        Self::GrantTopLevel,
        Self::AdminScope,
        Self::FederationKeys,
        Self::DeleteAccount,
        Self::EnrollmentCode,
        Self::WeakenTarget,
    ];

    /// [`Sensitive::DEFAULT`] as `COOPER_ADMIN_TOTP_OPERATIONS` spells it (a test holds them
    /// equal): what every host defaults to, the functions and `cooper serve` alike.
    pub const DEFAULT_LIST: &'static str =
        "grant_top_level,admin_scope,federation_keys,delete_account,enrollment_code,weaken_target";

    pub fn name(self) -> &'static str {
        match self {
            Self::GrantTopLevel => "grant_top_level",
            Self::AdminScope => "admin_scope",
            Self::FederationKeys => "federation_keys",
            Self::DeleteAccount => "delete_account",
            Self::DeleteUser => "delete_user",
            Self::ResetTotp => "reset_totp",
            Self::IssueToken => "issue_token",
            Self::EnrollmentCode => "enrollment_code",
            Self::WeakenTarget => "weaken_target",
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
            Self::EnrollmentCode,
            Self::WeakenTarget,
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
    /// The partitions cooper has a broker identity in: a role target elsewhere is refused
    /// when it is configured (it could never be assumed, and must not be tried elsewhere).
    pub role_partitions: BTreeSet<crate::names::Partition>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            groups: AdminGroups::default(),
            sensitive: Sensitive::DEFAULT.into_iter().collect(),
            role_partitions: BTreeSet::from([crate::names::Partition::Aws]),
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
    /// Who can reach what in this account changed while the change was being decided: it was
    /// decided on a state that no longer holds.
    #[error("{0} changed meanwhile; try again")]
    ReachChanged(String),
    #[error("{what} is still used by: {}; remove those first, or delete with cascade", dependents.join(", "))]
    InUse {
        what: String,
        dependents: Vec<String>,
    },
    #[error("too much depends on this to remove it at once (more than {MAX_CHANGES} items)")]
    TooMuch,
    /// A person's recent trail is too long to work out where their sessions were issued.
    #[error("too many issuances in the last 36 hours to work out from the trail where they were")]
    TrailTooLong,
    #[error("{0} cannot be changed; create a new one")]
    Immutable(&'static str),
    #[error("an admin cannot make an admin wider than themselves")]
    WiderAdmin,
    #[error("{0} has an authenticator already; reset it first")]
    AlreadyEnrolled(UserName),
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
            Self::ReachChanged(_) => "reach_changed",
            Self::InUse { .. } => "in_use",
            Self::TooMuch => "too_many_dependents",
            Self::TrailTooLong => "trail_too_long",
            Self::Immutable(_) => "immutable_field",
            Self::WiderAdmin => "wider_admin",
            Self::AlreadyEnrolled(_) => "already_enrolled",
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
// One per admin request, never in a collection: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
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
    /// The same caller for a further step of the same request (its own audit record, whose id
    /// is the request's with `-step`); no code comes with it (the first step claimed it).
    pub fn next_step(&self, step: &str) -> Self {
        let mut meta = self.meta.clone();
        meta.request_id = format!("{}-{step}", meta.request_id);
        Self {
            actor: self.actor.clone(),
            scope: self.scope.clone(),
            totp: None,
            meta,
            proofs: std::sync::Mutex::default(),
        }
    }

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

    pub(super) fn take_proofs(&self) -> Vec<Change> {
        self.proofs
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }

    /// Changes that come with the decision rather than the change itself: the claims of the
    /// codes step-up checked, and the guards on what the decision read.
    pub(super) fn add_proof(&self, changes: impl IntoIterator<Item = Change>) {
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
    /// Opens a federated-user target's keys (to know whose sessions a revocation denies).
    pub vault: Arc<dyn crate::ports::KeyVault>,
    /// Writes the deny that ends issued AWS sessions.
    pub policies: Arc<dyn crate::ports::RevocationPolicies>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub config: AdminConfig,
}

/// Lifetime of tokens admins issue for users.
pub const ISSUED_TOKEN_DAYS: i64 = 90;
/// How long an enrollment code stays good by default, and at most.
pub const ENROLLMENT_CODE_HOURS: i64 = 72;
pub const MAX_ENROLLMENT_CODE_HOURS: i64 = 14 * 24;

pub(super) fn target_view(t: &Target) -> Value {
    // The federation keys are ciphertext, but they are still kept out of audit records.
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(keys) = v.get_mut("sealed_keys") {
        *keys = json!("(sealed)");
    }
    v
}

pub(super) fn view<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

pub(super) fn grant_view(g: &Grant) -> Value {
    let mut v = serde_json::Map::new();
    v.insert("principal".into(), view(&g.principal));
    match &g.scope {
        GrantScope::Target(t) => {
            v.insert("target".into(), json!(t));
        }
        GrantScope::Account { account, max_level } => {
            v.insert("account".into(), json!(account));
            v.insert("max_level".into(), json!(max_level));
        }
    }
    if let Some(at) = g.expires_at {
        v.insert("expires_at".into(), json!(at.unix_timestamp()));
    }
    Value::Object(v)
}

pub(super) fn grant_name(g: &Grant) -> String {
    format!("grant {g}")
}

pub(super) fn admin_grant_name(g: &AdminGrant) -> String {
    match &g.account {
        Some(a) => format!("admin grant {} -> account {a}", g.principal),
        None => format!("admin grant {} -> universal", g.principal),
    }
}

/// What a failed atomic write means, from the change that failed.
pub(super) fn conflict_error(change: Option<&Change>, resource: &str) -> AdminError {
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
        Some(Change::Reach { key, .. }) => AdminError::ReachChanged(key.to_string()),
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

    pub(super) fn record(
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

    pub(super) async fn refused(
        &self,
        ctx: &AdminContext,
        resource: &str,
        action: &str,
        error: &AdminError,
    ) {
        let mut r = self.record(ctx, AuditEvent::AdminRefused, resource, action);
        r.reason = Some(error.code().to_owned());
        record_refusal(self.ledger.as_ref(), &r).await;
    }

    /// Runs a check; a refusal is audited before it is returned.
    pub(super) async fn check(
        &self,
        ctx: &AdminContext,
        resource: &str,
        action: &str,
        result: Result<(), AdminError>,
    ) -> Result<(), AdminError> {
        if let Err(e) = &result
            && e.is_refusal()
        {
            self.refused(ctx, resource, action, e).await;
        }
        result
    }

    pub(super) fn in_scope(ctx: &AdminContext, account: &AccountId) -> Result<(), AdminError> {
        if ctx.scope.covers(account) {
            Ok(())
        } else {
            Err(AdminError::OutOfScope)
        }
    }

    pub(super) fn universal(ctx: &AdminContext) -> Result<(), AdminError> {
        if ctx.scope.is_universal() {
            Ok(())
        } else {
            Err(AdminError::UniversalOnly)
        }
    }

    /// A fresh code from the admin, when the configuration calls `op` sensitive. The code's
    /// claim is committed with the change it allows.
    pub(super) async fn step_up(
        &self,
        ctx: &AdminContext,
        op: Sensitive,
    ) -> Result<(), AdminError> {
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
    pub(super) async fn commit(
        &self,
        ctx: &AdminContext,
        resource: &str,
        action: &str,
        account: Option<&AccountId>,
        before: Option<Value>,
        after: Option<Value>,
        changes: Vec<Change>,
    ) -> Result<(), AdminError> {
        // The change first: when it and a guard both fail, what is said is what the change
        // found (a stale version, a duplicate), the more telling of the two.
        let own = changes.len();
        // A code's claim on factors the change deletes (an admin resetting their own
        // authenticator) is moot: the deleted enrollment takes no code again.
        let deleted: Vec<UserName> = changes
            .iter()
            .filter_map(|c| match c {
                Change::DeleteFactors(u) => Some(u.clone()),
                _ => None,
            })
            .collect();
        let mut all = changes;
        all.extend(ctx.take_proofs().into_iter().filter(|c| match c {
            Change::Unlocked { user, .. } | Change::ClaimStep { user, .. } => {
                !deleted.contains(user)
            }
            _ => true,
        }));
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
            Err(ChangeError::Conflict { index }) if index >= own && index < all.len() => {
                let now = self.clock.now();
                let change = all.get(index);
                Err(change
                    .and_then(|c| crate::factors::explain_conflict(c, now))
                    .map_or_else(|| conflict_error(change, resource), AdminError::Factor))
            }
            Err(ChangeError::Conflict { index }) => Err(conflict_error(all.get(index), resource)),
            Err(ChangeError::TooLarge) => Err(AdminError::TooMuch),
            Err(ChangeError::Upstream(e)) => Err(AdminError::AuditUnavailable(e)),
        }
    }

    /// Creates what only a universal admin may create (accounts, users, groups): one put that
    /// fails if the object exists, audited with its new state; the object starts at version 1.
    pub(super) async fn create_universal<T: serde::Serialize>(
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

    pub(super) fn require_version(version: Option<u64>) -> Result<u64, AdminError> {
        version.ok_or(AdminError::VersionRequired)
    }

    /// Removes a thing and, with `cascade`, what depends on it; without, refuses while anything does.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn remove(
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_list_names_the_default_operations() {
        let parsed = Sensitive::parse_list(Sensitive::DEFAULT_LIST).unwrap();
        assert_eq!(parsed, Sensitive::DEFAULT.into_iter().collect());
    }

    #[test]
    fn only_a_no_said_to_the_caller_is_audited_as_a_refusal() {
        let down = || {
            UpstreamError::new(
                crate::ports::Service::DynamoDb,
                crate::ports::UpstreamKind::Unavailable,
                "timed out",
            )
        };
        assert!(AdminError::OutOfScope.is_refusal());
        assert!(AdminError::NotAnAdmin.is_refusal());
        assert!(!AdminError::Upstream(down()).is_refusal());
        assert!(!AdminError::AuditUnavailable(down()).is_refusal());
        assert!(!AdminError::TooMuch.is_refusal());
    }

    /// A change of as many items as one transaction holds (besides its audit record) is
    /// written; one more is refused before anything is.
    #[cfg(feature = "test-util")]
    #[tokio::test]
    async fn a_change_may_be_as_large_as_one_transaction_and_no_larger() {
        use crate::ledger::Reference;
        use crate::memory::MemoryWorld;

        let w = MemoryWorld::new();
        w.user("root").unwrap();
        w.admin_grant(
            crate::model::Principal::User(UserName::parse("root").unwrap()),
            None,
        )
        .unwrap();
        let users: Vec<UserName> = (0..=MAX_CHANGES)
            .map(|i| w.user(&format!("user{i}")).unwrap().name)
            .collect();
        let admin = w.admin(AdminConfig::default());
        let requires = |n: usize| -> Vec<Change> {
            users
                .iter()
                .take(n)
                .map(|u| Change::Require(Reference::User(u.clone())))
                .collect()
        };
        let commit = |n: usize| {
            let (admin, w) = (&admin, &w);
            let changes = requires(n);
            async move {
                let call = AdminCall {
                    identity: w.identity("root").unwrap(),
                    totp: None,
                    meta: w.meta(),
                };
                let ctx = admin.context(call).await.unwrap();
                admin
                    .commit(&ctx, "users", "check", None, None, None, changes)
                    .await
            }
        };
        commit(MAX_CHANGES).await.unwrap();
        let err = commit(MAX_CHANGES + 1).await.unwrap_err();
        assert!(matches!(err, AdminError::TooMuch), "{err}");
    }
}
