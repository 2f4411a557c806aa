//! A world to test use cases in: the store and every fake, the use cases wired over them, and
//! ways to seed the directory.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::access::{AuthMethod, Identity};
use crate::admin::store::Versioned;
use crate::admin::{Admin, AdminConfig};
use crate::approval::Approvals;
use crate::audit::{AuditRecord, RequestMeta};
use crate::catalog::Catalog;
use crate::clock::EntropyUnavailable;
use crate::factors::{Enrollment, PasswordChange, SecondFactor};
use crate::issue::CredentialIssuer;
use crate::model::factors::TotpEnrollment;
use crate::model::{
    Account, AdminGrant, FederationKeys, Grant, GrantScope, Group, Principal, Target, User,
};
use crate::names::{
    AccountId, AccountName, GroupName, InvalidValue, Level, Partition, RoleArn, SessionPolicy,
    TargetName, UserName,
};
use crate::password::{NewPassword, PasswordError, PasswordHash};
use crate::rate::{RateLimit, RateLimiter};
use crate::session::BrokerSigning;
use crate::sessions::{LocalLogin, SIGNIN_FAILURES, SessionExchange};
use crate::token::{ApiToken, ApiTokenRecord};
use crate::totp::{TotpCode, TotpIssuer, TotpSecret, step_of};

use super::fakes::{
    MemoryBroker, MemoryConsole, MemoryPolicies, MemorySigner, MemoryVault, RecordingPacer,
    SealedFor, SeededEntropy, TestClock,
};
use super::store::{MemoryStore, State, StoredFactors, StoredGrant};
use crate::ports::UpstreamError;

/// Where every world's clock starts: the first second of a TOTP step.
pub const START: OffsetDateTime = datetime!(2026-03-02 09:00:00 UTC);

/// How long sessions made in a world last.
pub const SESSION_LIFETIME: time::Duration = time::Duration::hours(1);

/// Seeding could not be done.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
    #[error("the password could not be hashed")]
    Password,
    #[error("{0} is not seeded")]
    Missing(String),
}

impl From<PasswordError> for SeedError {
    fn from(_: PasswordError) -> Self {
        Self::Password
    }
}

/// The store, the fakes and the TOTP secrets of seeded users. Cheap to clone (all shared).
#[derive(Clone)]
pub struct MemoryWorld {
    pub store: Arc<MemoryStore>,
    pub clock: Arc<TestClock>,
    pub entropy: Arc<SeededEntropy>,
    pub vault: Arc<MemoryVault>,
    pub broker: Arc<MemoryBroker>,
    pub console: Arc<MemoryConsole>,
    pub signer: Arc<MemorySigner>,
    pub pacer: Arc<RecordingPacer>,
    pub policies: Arc<MemoryPolicies>,
    secrets: Arc<Mutex<HashMap<UserName, Vec<u8>>>>,
    requests: Arc<AtomicU64>,
}

impl Default for MemoryWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryWorld {
    /// An empty world, its clock at [`START`].
    pub fn new() -> Self {
        Self::at(START)
    }

    pub fn at(now: OffsetDateTime) -> Self {
        let clock = Arc::new(TestClock::at(now));
        Self {
            store: Arc::new(MemoryStore::new()),
            broker: Arc::new(MemoryBroker::new(clock.clone())),
            clock,
            entropy: Arc::new(SeededEntropy::new(7)),
            vault: Arc::new(MemoryVault::new()),
            console: Arc::new(MemoryConsole::new()),
            signer: Arc::new(MemorySigner::new()),
            pacer: Arc::new(RecordingPacer::new()),
            policies: Arc::new(MemoryPolicies::new()),
            secrets: Arc::new(Mutex::new(HashMap::new())),
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        crate::clock::Clock::now(self.clock.as_ref())
    }

    // ---- the use cases, wired over this world ----

    pub fn catalog(&self) -> Arc<Catalog> {
        Arc::new(Catalog::new(self.store.clone(), self.clock.clone()))
    }

    pub fn second_factor(&self) -> Arc<SecondFactor> {
        Arc::new(SecondFactor {
            store: self.store.clone(),
            vault: self.vault.clone(),
            clock: self.clock.clone(),
        })
    }

    pub fn approvals(&self) -> Arc<Approvals> {
        Arc::new(Approvals {
            store: self.store.clone(),
            catalog: self.catalog(),
            directory: self.store.clone(),
            verifier: self.second_factor(),
            ledger: self.store.clone(),
            entropy: self.entropy.clone(),
            clock: self.clock.clone(),
        })
    }

    /// Issuance signed with IAM-user keys, without a rate limit.
    pub fn issuer(&self) -> CredentialIssuer {
        self.issuer_with(BrokerSigning::IamUser, None)
    }

    pub fn issuer_with(&self, signing: BrokerSigning, rate: Option<RateLimit>) -> CredentialIssuer {
        CredentialIssuer {
            catalog: self.catalog(),
            broker: self.broker.clone(),
            vault: self.vault.clone(),
            ledger: self.store.clone(),
            clock: self.clock.clone(),
            signing,
            second_factor: self.second_factor(),
            approvals: self.approvals(),
            console: self.console.clone(),
            console_region: Some("eu-west-1".into()),
            rate: RateLimiter::new(self.store.clone(), "credentials", rate),
        }
    }

    pub fn admin(&self, config: AdminConfig) -> Admin {
        Admin {
            store: self.store.clone(),
            directory: self.store.clone(),
            factors: self.store.clone(),
            second_factor: self.second_factor(),
            ledger: self.store.clone(),
            search: self.store.clone(),
            vault: self.vault.clone(),
            policies: self.policies.clone(),
            clock: self.clock.clone(),
            entropy: self.entropy.clone(),
            config,
        }
    }

    pub fn enrollment(&self) -> Enrollment {
        Enrollment {
            directory: self.store.clone(),
            verifier: self.second_factor(),
            ledger: self.store.clone(),
            entropy: self.entropy.clone(),
            issuer: TotpIssuer::default(),
        }
    }

    pub fn password_change(&self) -> PasswordChange {
        PasswordChange {
            directory: self.store.clone(),
            verifier: self.second_factor(),
            ledger: self.store.clone(),
            entropy: self.entropy.clone(),
        }
    }

    /// Local sign-in, failures per address limited as in production ([`SIGNIN_FAILURES`]).
    pub fn local_login(&self) -> LocalLogin {
        self.local_login_with(Some(SIGNIN_FAILURES))
    }

    pub fn local_login_with(&self, failures: Option<RateLimit>) -> LocalLogin {
        LocalLogin {
            directory: self.store.clone(),
            verifier: self.second_factor(),
            ledger: self.store.clone(),
            signer: self.signer.clone(),
            entropy: self.entropy.clone(),
            lifetime: SESSION_LIFETIME,
            failures: RateLimiter::new(self.store.clone(), "signin-failures", failures),
            pacer: self.pacer.clone(),
        }
    }

    pub fn session_exchange(&self) -> SessionExchange {
        SessionExchange {
            directory: self.store.clone(),
            ledger: self.store.clone(),
            signer: self.signer.clone(),
            entropy: self.entropy.clone(),
            clock: self.clock.clone(),
            lifetime: SESSION_LIFETIME,
        }
    }

    pub fn access_requests(&self) -> crate::requests::AccessRequests {
        crate::requests::AccessRequests {
            store: self.store.clone(),
            catalog: self.catalog(),
            directory: self.store.clone(),
            verifier: self.second_factor(),
            ledger: self.store.clone(),
            entropy: self.entropy.clone(),
            clock: self.clock.clone(),
            lifetime: crate::requests::DEFAULT_REQUEST_LIFETIME,
        }
    }

    pub fn signout(&self) -> crate::signout::Signout {
        crate::signout::Signout {
            directory: self.store.clone(),
            ledger: self.store.clone(),
            clock: self.clock.clone(),
        }
    }

    // ---- requests ----

    /// A request from 192.0.2.10 with a request id never used before in this world.
    pub fn meta(&self) -> RequestMeta {
        self.meta_from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)))
    }

    pub fn meta_from(&self, ip: IpAddr) -> RequestMeta {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        RequestMeta {
            request_id: format!("req-{n:06}"),
            source_ip: Some(ip),
        }
    }

    /// `user`, signed in with a cooper session.
    pub fn identity(&self, user: &str) -> Result<Identity, SeedError> {
        Ok(Identity::new(
            UserName::parse(user)?,
            AuthMethod::Session { idp: None },
        ))
    }

    // ---- reading what happened ----

    /// A copy of everything stored.
    pub fn state(&self) -> Result<State, UpstreamError> {
        self.store.state()
    }

    /// The audit trail, in the order it was written.
    pub fn audit(&self) -> Result<Vec<AuditRecord>, UpstreamError> {
        Ok(self.store.state()?.audit)
    }

    /// The user's factor items as stored.
    pub fn factors_of(&self, user: &str) -> Result<StoredFactors, SeedError> {
        let user = UserName::parse(user)?;
        Ok(self
            .store
            .state()?
            .factors
            .get(&user)
            .cloned()
            .unwrap_or_default())
    }

    // ---- seeding (written straight into the state: test setup, not a use case) ----

    pub fn put_account(&self, account: Account) -> Result<(), SeedError> {
        self.store.seed(|s| {
            s.accounts.insert(
                account.id.clone(),
                Versioned {
                    value: account,
                    version: 1,
                },
            );
        })?;
        Ok(())
    }

    /// An account in the `aws` partition.
    pub fn account(&self, id: &str) -> Result<Account, SeedError> {
        self.account_in(id, Partition::Aws)
    }

    pub fn account_in(&self, id: &str, partition: Partition) -> Result<Account, SeedError> {
        let account = Account {
            id: AccountId::parse(id)?,
            name: AccountName::parse(&format!("account {id}"))?,
            partition,
            access_requests: None,
        };
        self.put_account(account.clone())?;
        Ok(account)
    }

    pub fn put_target(&self, target: Target) -> Result<(), SeedError> {
        self.store.seed(|s| {
            s.targets.insert(
                target.name.clone(),
                Versioned {
                    value: target,
                    version: 1,
                },
            );
        })?;
        Ok(())
    }

    /// A role target `name` of `account` (which must be seeded) at `level`.
    pub fn role_target(&self, name: &str, account: &str, level: u32) -> Result<Target, SeedError> {
        let account = self.seeded_account(account)?;
        let arn = RoleArn::parse(&format!(
            "arn:{}:iam::{}:role/{name}",
            account.partition.as_str(),
            account.id
        ))?;
        let target = Target::role(
            TargetName::parse(name)?,
            account.id,
            Level::new(level)?,
            arn,
            None,
            None,
        )?;
        self.put_target(target.clone())?;
        Ok(target)
    }

    /// A federated-user target `name` of `account`, its keys sealed by this world's vault.
    pub fn federated_target(
        &self,
        name: &str,
        account: &str,
        level: u32,
    ) -> Result<Target, SeedError> {
        let keys = FederationKeys::parse("AKIAFEDERATIONKEYS01|federation-secret")?;
        self.federated_target_with(name, account, level, &keys)
    }

    /// A federated-user target `name` of `account` carrying `keys`, sealed by this world's vault.
    pub fn federated_target_with(
        &self,
        name: &str,
        account: &str,
        level: u32,
        keys: &FederationKeys,
    ) -> Result<Target, SeedError> {
        let account = self.seeded_account(account)?;
        self.broker
            .keys_of(&keys.access_key_id, account.id.as_str());
        let binding = crate::ports::FederationBinding {
            account: account.id.clone(),
            target: TargetName::parse(name)?,
        };
        let sealed = self.vault.seal_federation_keys(keys, &binding)?;
        let policy = SessionPolicy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#,
        )?;
        let target = Target::federated_user(
            TargetName::parse(name)?,
            &account,
            Level::new(level)?,
            sealed,
            policy,
            None,
        )?;
        self.put_target(target.clone())?;
        Ok(target)
    }

    /// Access to target `name` may be requested from `approvers`, for up to `max_seconds`.
    pub fn requestable_target(
        &self,
        name: &str,
        approvers: Vec<Principal>,
        max_seconds: Option<u32>,
    ) -> Result<(), SeedError> {
        let policy = crate::model::requests::RequestPolicy::new(approvers, max_seconds, None)?;
        let name = TargetName::parse(name)?;
        self.store.seed(|s| {
            if let Some(t) = s.targets.get_mut(&name) {
                t.value.access_requests = Some(policy);
            }
        })?;
        Ok(())
    }

    /// Access to `account`'s targets up to `max_level` may be requested from `approvers`.
    pub fn requestable_account(
        &self,
        account: &str,
        approvers: Vec<Principal>,
        max_level: Option<u32>,
    ) -> Result<(), SeedError> {
        let max_level = max_level.map(Level::new).transpose()?;
        let policy = crate::model::requests::RequestPolicy::new(approvers, None, max_level)?;
        let id = AccountId::parse(account)?;
        self.store.seed(|s| {
            if let Some(a) = s.accounts.get_mut(&id) {
                a.value.access_requests = Some(policy);
            }
        })?;
        Ok(())
    }

    fn seeded_account(&self, id: &str) -> Result<Account, SeedError> {
        let id = AccountId::parse(id)?;
        self.store
            .state()?
            .accounts
            .get(&id)
            .map(|a| a.value.clone())
            .ok_or_else(|| SeedError::Missing(format!("account {id}")))
    }

    pub fn put_user(&self, user: User) -> Result<(), SeedError> {
        self.store.seed(|s| {
            s.users.insert(
                user.name.clone(),
                Versioned {
                    value: user,
                    version: 1,
                },
            );
        })?;
        Ok(())
    }

    /// An enabled user without expiry.
    pub fn user(&self, name: &str) -> Result<User, SeedError> {
        let user = User::new(UserName::parse(name)?);
        self.put_user(user.clone())?;
        Ok(user)
    }

    pub fn group(&self, name: &str) -> Result<Group, SeedError> {
        let group = Group {
            name: GroupName::parse(name)?,
            description: None,
        };
        let stored = group.clone();
        self.store.seed(|s| {
            s.groups.insert(
                stored.name.clone(),
                Versioned {
                    value: stored,
                    version: 1,
                },
            );
        })?;
        Ok(group)
    }

    pub fn member(&self, user: &str, group: &str) -> Result<(), SeedError> {
        let (user, group) = (UserName::parse(user)?, GroupName::parse(group)?);
        self.store.seed(|s| s.memberships.insert((user, group)))?;
        Ok(())
    }

    /// Stores `grant`; a target grant's target must be seeded (it decides the account).
    pub fn put_grant(&self, grant: Grant) -> Result<Grant, SeedError> {
        let account = match &grant.scope {
            GrantScope::Account { account, .. } => account.clone(),
            GrantScope::Target(name) => self
                .store
                .state()?
                .targets
                .get(name)
                .map(|t| t.value.account.clone())
                .ok_or_else(|| SeedError::Missing(format!("target {name}")))?,
        };
        let stored = StoredGrant {
            grant: grant.clone(),
            account,
        };
        self.store.seed(|s| s.grants.insert(grant.key(), stored))?;
        Ok(grant)
    }

    /// `principal` may become any target of `account` up to `level`.
    pub fn grant_account(
        &self,
        principal: Principal,
        account: &str,
        level: u32,
    ) -> Result<Grant, SeedError> {
        self.put_grant(Grant {
            principal,
            scope: GrantScope::Account {
                account: AccountId::parse(account)?,
                max_level: Level::new(level)?,
            },
            expires_at: None,
            via: None,
        })
    }

    /// `principal` may become `target`.
    pub fn grant_target(&self, principal: Principal, target: &str) -> Result<Grant, SeedError> {
        self.put_grant(Grant {
            principal,
            scope: GrantScope::Target(TargetName::parse(target)?),
            expires_at: None,
            via: None,
        })
    }

    /// `principal` administers `account`, or every account for `None`.
    pub fn admin_grant(
        &self,
        principal: Principal,
        account: Option<&str>,
    ) -> Result<AdminGrant, SeedError> {
        let grant = AdminGrant {
            principal,
            account: account.map(AccountId::parse).transpose()?,
        };
        let stored = grant.clone();
        self.store.seed(|s| s.admin_grants.insert(stored))?;
        Ok(grant)
    }

    /// A new API token of `user`, valid for a day: the token (shown once) and its record.
    pub fn api_token(&self, user: &str) -> Result<(ApiToken, ApiTokenRecord), SeedError> {
        let token = ApiToken::generate(self.entropy.as_ref())?;
        let record = ApiTokenRecord::issue(
            &token,
            UserName::parse(user)?,
            self.now(),
            time::Duration::days(1),
        );
        let stored = record.clone();
        self.store
            .seed(|s| s.tokens.insert(stored.id.clone(), stored))?;
        Ok((token, record))
    }

    /// An authenticator for `user`, enrolled (no code of the current step used yet); its
    /// codes come from [`MemoryWorld::code`].
    pub fn enroll_totp(&self, user: &str) -> Result<(), SeedError> {
        let name = UserName::parse(user)?;
        let secret = TotpSecret::generate(self.entropy.as_ref())?;
        let sealed = self
            .vault
            .seal(SealedFor::TotpSecret(name.clone()), secret.expose_bytes())?;
        let enrollment = TotpEnrollment {
            sealed,
            last_step: step_of(self.now()).saturating_sub(10),
            enrolled_at: self.now(),
            bootstrapped_by: None,
        };
        self.remember_secret(&name, secret.expose_bytes())?;
        self.store.seed(|s| {
            s.factors.entry(name).or_default().totp = Some(enrollment);
        })?;
        Ok(())
    }

    /// Remembers `user`'s TOTP secret (from an enrollment a use case started), for codes.
    pub fn remember_secret(&self, user: &UserName, secret: &[u8]) -> Result<(), SeedError> {
        self.secrets
            .lock()
            .map_err(|_| super::store::poisoned())?
            .insert(user.clone(), secret.to_vec());
        Ok(())
    }

    /// `user`'s TOTP secret, as seeded (or remembered).
    pub fn totp_secret(&self, user: &str) -> Result<TotpSecret, SeedError> {
        let name = UserName::parse(user)?;
        let bytes = self
            .secrets
            .lock()
            .map_err(|_| super::store::poisoned())?
            .get(&name)
            .cloned()
            .ok_or_else(|| SeedError::Missing(format!("a TOTP secret of {name}")))?;
        Ok(TotpSecret::from_bytes(bytes)?)
    }

    /// `user`'s code for the current time.
    pub fn code(&self, user: &str) -> Result<TotpCode, SeedError> {
        self.code_at(user, self.now())
    }

    pub fn code_at(&self, user: &str, at: OffsetDateTime) -> Result<TotpCode, SeedError> {
        self.totp_secret(user)?
            .code_at(at)
            .ok_or_else(|| SeedError::Missing(format!("a code of {user}")))
    }

    /// A code of `user`'s that is not the right one now (nor within the skew).
    pub fn wrong_code(&self, user: &str) -> Result<TotpCode, SeedError> {
        let secret = self.totp_secret(user)?;
        let now = self.now();
        let near: Vec<String> = (-1..=1)
            .filter_map(|s| secret.code_at(now + time::Duration::seconds(30 * s)))
            .map(|c| c.expose().to_owned())
            .collect();
        (0..1000u32)
            .map(|n| format!("{:06}", (n * 7919) % 1_000_000))
            .find(|c| !near.contains(c))
            .map(|c| TotpCode::parse(&c))
            .transpose()?
            .ok_or_else(|| SeedError::Missing("a wrong code".into()))
    }

    /// Sets `user`'s password (argon2id, as the use case stores it).
    pub fn password(&self, user: &str, password: &str) -> Result<(), SeedError> {
        let name = UserName::parse(user)?;
        let new = NewPassword::parse(SecretString::from(password.to_owned()), &name)?;
        let hash = PasswordHash::create(&new, self.entropy.as_ref())?;
        let at = self.now();
        self.store.seed(|s| {
            s.factors.entry(name).or_default().password = Some((hash, at));
        })?;
        Ok(())
    }
}
