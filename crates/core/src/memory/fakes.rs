//! Fakes of what lies outside the store: a clock tests move, deterministic randomness, KMS, STS,
//! the console sign-in endpoint, the session signer and the pacer. Each records what it was
//! asked, and can be told to fail.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};

use crate::clock::{Clock, Entropy, EntropyUnavailable};
use crate::console::{ConsoleSignin, Destination};
use crate::model::{FederationKeys, Sealed};
use crate::names::{FederatedUserName, Partition, SessionPolicy, UserName};
use crate::ports::FederationBinding;
use crate::ports::{
    AssumeRoleCall, CredentialBroker, FederationTokenCall, IssuedCredentials, KeyVault, Pacer,
    Service, SessionClaims, SessionSigner, SigningUnavailable, UpstreamError, UpstreamKind,
};
use crate::session::SessionDuration;
use crate::totp::TotpSecret;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding a fake's lock has failed already; its data is still
    // what was recorded.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    pub fn at(now: OffsetDateTime) -> Self {
        Self(Mutex::new(now))
    }

    pub fn set(&self, now: OffsetDateTime) {
        *locked(&self.0) = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = locked(&self.0);
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *locked(&self.0)
    }
}

/// Randomness that repeats from its seed (SplitMix64), and can be told to fail.
#[derive(Debug)]
pub struct SeededEntropy {
    state: AtomicU64,
    fail: AtomicBool,
}

impl SeededEntropy {
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
            fail: AtomicBool::new(false),
        }
    }

    pub fn fail(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }

    fn next(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, buf: &mut [u8]) -> Result<(), EntropyUnavailable> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(EntropyUnavailable);
        }
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            for (b, v) in chunk.iter_mut().zip(bytes) {
                *b = v;
            }
        }
        Ok(())
    }
}

/// What a blob was sealed for: KMS's encryption context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedFor {
    FederationKeys(FederationBinding),
    TotpSecret(UserName),
}

/// KMS: a blob is an opaque handle to (encryption context, plaintext); it opens only with the
/// context it was sealed under, as KMS refuses a Decrypt with another context.
#[derive(Debug, Default)]
pub struct MemoryVault {
    blobs: Mutex<HashMap<String, (SealedFor, Vec<u8>)>>,
    next: AtomicU64,
    fail: AtomicBool,
    opened: Mutex<Vec<SealedFor>>,
}

fn kms(kind: UpstreamKind, message: &str) -> UpstreamError {
    UpstreamError::new(Service::Kms, kind, message)
}

impl MemoryVault {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call fails (as KMS unreachable) while `on`.
    pub fn fail(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }

    /// The contexts of every successful open, in order.
    pub fn opened(&self) -> Vec<SealedFor> {
        locked(&self.opened).clone()
    }

    fn check(&self) -> Result<(), UpstreamError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(kms(
                UpstreamKind::Unavailable,
                "the in-memory KMS was told to fail",
            ));
        }
        Ok(())
    }

    /// Seals `plaintext` for `context`.
    pub fn seal(&self, context: SealedFor, plaintext: &[u8]) -> Result<Sealed, UpstreamError> {
        self.check()?;
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let handle = format!("MEMKMS{n:010}");
        let sealed = Sealed::parse(&handle).map_err(|e| kms(UpstreamKind::Corrupt, &e.reason))?;
        locked(&self.blobs).insert(handle, (context, plaintext.to_vec()));
        Ok(sealed)
    }

    /// Seals a target's IAM-user keys for that target, as `cooper encrypt` does.
    pub fn seal_federation_keys(
        &self,
        keys: &FederationKeys,
        binding: &FederationBinding,
    ) -> Result<Sealed, UpstreamError> {
        let text = format!(
            "{}|{}",
            keys.access_key_id,
            keys.secret_access_key.expose_secret()
        );
        self.seal(SealedFor::FederationKeys(binding.clone()), text.as_bytes())
    }

    /// Opens `sealed` for `context`; another context is refused, as KMS refuses it.
    pub fn open(&self, context: &SealedFor, sealed: &Sealed) -> Result<Vec<u8>, UpstreamError> {
        self.check()?;
        let blobs = locked(&self.blobs);
        match blobs.get(sealed.as_str()) {
            Some((made_for, plaintext)) if made_for == context => {
                locked(&self.opened).push(context.clone());
                Ok(plaintext.clone())
            }
            _ => Err(kms(
                UpstreamKind::Refused,
                "InvalidCiphertextException: the ciphertext does not open with this encryption context",
            )),
        }
    }
}

#[async_trait]
impl KeyVault for MemoryVault {
    async fn open_federation_keys(
        &self,
        sealed: &Sealed,
        binding: &FederationBinding,
    ) -> Result<FederationKeys, UpstreamError> {
        let plaintext = self.open(&SealedFor::FederationKeys(binding.clone()), sealed)?;
        let text = std::str::from_utf8(&plaintext)
            .map_err(|_| kms(UpstreamKind::Corrupt, "the target's keys are not text"))?;
        FederationKeys::parse(text).map_err(|e| kms(UpstreamKind::Corrupt, &e.reason))
    }

    async fn reseal_federation_keys(
        &self,
        keys: &FederationKeys,
        binding: &FederationBinding,
    ) -> Result<Sealed, UpstreamError> {
        self.seal_federation_keys(keys, binding)
    }

    async fn seal_totp_secret(
        &self,
        user: &UserName,
        secret: &TotpSecret,
    ) -> Result<Sealed, UpstreamError> {
        self.seal(SealedFor::TotpSecret(user.clone()), secret.expose_bytes())
    }

    async fn open_totp_secret(
        &self,
        user: &UserName,
        sealed: &Sealed,
    ) -> Result<TotpSecret, UpstreamError> {
        let plaintext = self.open(&SealedFor::TotpSecret(user.clone()), sealed)?;
        TotpSecret::from_bytes(plaintext).map_err(|e| kms(UpstreamKind::Corrupt, &e.reason))
    }
}

/// A GetFederationToken call as the broker saw it (the keys' secret is not kept).
#[derive(Debug, Clone)]
pub struct FederationTokenSeen {
    pub access_key_id: String,
    pub partition: Partition,
    pub name: FederatedUserName,
    pub policy: SessionPolicy,
    pub duration: SessionDuration,
}

/// One call STS received.
#[derive(Debug, Clone)]
pub enum BrokerCall {
    AssumeRole(AssumeRoleCall),
    FederationToken(FederationTokenSeen),
}

impl BrokerCall {
    pub fn duration_seconds(&self) -> u32 {
        match self {
            Self::AssumeRole(c) => c.duration.seconds(),
            Self::FederationToken(c) => c.duration.seconds(),
        }
    }
}

/// STS: records every call and answers with credentials whose access key ids are unique.
pub struct MemoryBroker {
    clock: Arc<dyn Clock>,
    calls: Mutex<Vec<BrokerCall>>,
    issued: Mutex<Vec<String>>,
    fail: Mutex<Option<UpstreamKind>>,
    /// Whose IAM-user keys are whose: the account STS names a federated user in.
    key_accounts: Mutex<HashMap<String, String>>,
}

impl MemoryBroker {
    /// Keys of `account`'s IAM user: GetFederationToken with them makes federated users of it.
    pub fn keys_of(&self, access_key_id: &str, account: &str) {
        locked(&self.key_accounts).insert(access_key_id.to_owned(), account.to_owned());
    }

    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            key_accounts: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            issued: Mutex::new(Vec::new()),
            fail: Mutex::new(None),
        }
    }

    /// Every call fails with `kind` while set (the call is still recorded).
    pub fn fail(&self, kind: Option<UpstreamKind>) {
        *locked(&self.fail) = kind;
    }

    pub fn calls(&self) -> Vec<BrokerCall> {
        locked(&self.calls).clone()
    }

    /// The access key ids of every credential STS made, in order.
    pub fn issued(&self) -> Vec<String> {
        locked(&self.issued).clone()
    }

    fn answer(
        &self,
        call: BrokerCall,
        principal_arn: String,
        duration: SessionDuration,
    ) -> Result<IssuedCredentials, UpstreamError> {
        locked(&self.calls).push(call);
        if let Some(kind) = *locked(&self.fail) {
            return Err(UpstreamError::new(
                Service::Sts,
                kind,
                "the in-memory STS was told to fail",
            ));
        }
        let mut issued = locked(&self.issued);
        let n = issued.len();
        let access_key_id = format!("ASIAMEMORY{n:010}");
        issued.push(access_key_id.clone());
        Ok(IssuedCredentials {
            access_key_id,
            secret_access_key: SecretString::from(format!("memory-secret-{n}")),
            session_token: SecretString::from(format!("memory-session-token-{n}")),
            expiration: self.clock.now() + Duration::seconds(i64::from(duration.seconds())),
            principal_arn,
        })
    }
}

#[async_trait]
impl CredentialBroker for MemoryBroker {
    async fn assume_role(&self, call: &AssumeRoleCall) -> Result<IssuedCredentials, UpstreamError> {
        let arn = format!(
            "arn:{}:sts::{}:assumed-role/{}/{}",
            call.role_arn.partition().as_str(),
            call.role_arn.account(),
            call.role_arn.role_name(),
            call.session_name.as_str()
        );
        self.answer(BrokerCall::AssumeRole(call.clone()), arn, call.duration)
    }

    async fn federation_token(
        &self,
        call: &FederationTokenCall,
    ) -> Result<IssuedCredentials, UpstreamError> {
        let account = locked(&self.key_accounts)
            .get(&call.keys.access_key_id)
            .cloned()
            .unwrap_or_else(|| "000000000000".to_owned());
        let arn = format!(
            "arn:{}:sts::{account}:federated-user/{}",
            call.partition.as_str(),
            call.name.as_str()
        );
        let seen = FederationTokenSeen {
            access_key_id: call.keys.access_key_id.clone(),
            partition: call.partition,
            name: call.name.clone(),
            policy: call.policy.clone(),
            duration: call.duration,
        };
        self.answer(BrokerCall::FederationToken(seen), arn, call.duration)
    }
}

/// One sign-in link asked of the federation endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleCall {
    pub partition: Partition,
    pub access_key_id: String,
    pub session_seconds: Option<u32>,
    pub destination: String,
}

/// The console federation endpoint: records each call, answers a login URL.
#[derive(Debug, Default)]
pub struct MemoryConsole {
    calls: Mutex<Vec<ConsoleCall>>,
    fail: AtomicBool,
}

impl MemoryConsole {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }

    pub fn calls(&self) -> Vec<ConsoleCall> {
        locked(&self.calls).clone()
    }
}

#[async_trait]
impl ConsoleSignin for MemoryConsole {
    async fn login_url(
        &self,
        partition: Partition,
        credentials: &IssuedCredentials,
        session_seconds: Option<u32>,
        destination: &Destination,
    ) -> Result<SecretString, UpstreamError> {
        let mut calls = locked(&self.calls);
        calls.push(ConsoleCall {
            partition,
            access_key_id: credentials.access_key_id.clone(),
            session_seconds,
            destination: destination.as_str().to_owned(),
        });
        if self.fail.load(Ordering::SeqCst) {
            return Err(UpstreamError::new(
                Service::Signin,
                UpstreamKind::Unavailable,
                "the in-memory sign-in endpoint was told to fail",
            ));
        }
        Ok(SecretString::from(format!(
            "https://{}/federation?Action=login&SigninToken=memory-{}",
            partition.signin_host(),
            calls.len()
        )))
    }
}

/// Signs sessions as `memory-session.<user>.<n>`, recording the claims.
#[derive(Debug, Default)]
pub struct MemorySigner {
    signed: Mutex<Vec<SessionClaims>>,
    fail: AtomicBool,
}

impl MemorySigner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }

    pub fn signed(&self) -> Vec<SessionClaims> {
        locked(&self.signed).clone()
    }
}

impl SessionSigner for MemorySigner {
    fn sign(&self, claims: &SessionClaims) -> Result<SecretString, SigningUnavailable> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SigningUnavailable);
        }
        let mut signed = locked(&self.signed);
        signed.push(claims.clone());
        Ok(SecretString::from(format!(
            "memory-session.{}.{}",
            claims.user,
            signed.len()
        )))
    }
}

/// A pacer that holds nothing back (tests stay fast) but records every floor it was asked for.
#[derive(Debug, Default)]
pub struct RecordingPacer {
    holds: Mutex<Vec<std::time::Duration>>,
}

impl RecordingPacer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn holds(&self) -> Vec<std::time::Duration> {
        locked(&self.holds).clone()
    }
}

#[async_trait]
impl Pacer for RecordingPacer {
    fn mark(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    async fn hold(&self, _since: std::time::Instant, floor: std::time::Duration) {
        locked(&self.holds).push(floor);
    }
}

/// IAM's inline `cooper-revocations` policies, by holder key; can be told to fail for one holder.
#[derive(Debug, Default)]
pub struct MemoryPolicies {
    documents: Mutex<HashMap<String, String>>,
    writes: AtomicU64,
    failing: Mutex<Option<String>>,
}

impl MemoryPolicies {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes on the holder with this key fail (`None`: none fail).
    pub fn fail_for(&self, holder: Option<&str>) {
        *locked(&self.failing) = holder.map(str::to_owned);
    }

    pub fn document(&self, holder: &str) -> Option<String> {
        locked(&self.documents).get(holder).cloned()
    }

    pub fn holders(&self) -> Vec<String> {
        let mut keys: Vec<String> = locked(&self.documents).keys().cloned().collect();
        keys.sort();
        keys
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl crate::ports::RevocationPolicies for MemoryPolicies {
    async fn write(
        &self,
        holder: &crate::revocation::policy::PolicyHolder,
        document: Option<&str>,
    ) -> Result<(), UpstreamError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let key = holder.key();
        if locked(&self.failing).as_deref() == Some(key.as_str()) {
            return Err(UpstreamError::new(
                Service::Iam,
                UpstreamKind::Unavailable,
                "PutRolePolicy failed (as told)",
            ));
        }
        let mut documents = locked(&self.documents);
        match document {
            Some(d) => documents.insert(key, d.to_owned()),
            None => documents.remove(&key),
        };
        Ok(())
    }
}

/// A step of a key rotation, to make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStep {
    List,
    Create,
    Works,
    Store,
    Deactivate,
    Delete,
}

/// IAM users and their access keys (a key's secret is `secret-<id>`), for key rotations. A step
/// can be made to fail once (a run that dies there); new keys can be made to not work; a user
/// can be kept from managing its own keys.
pub struct MemoryIam {
    clock: Arc<dyn Clock>,
    keys: Mutex<Vec<(String, crate::rotation::AccessKeyInfo)>>,
    fail_at: Mutex<Option<KeyStep>>,
    refuse_new: AtomicBool,
    not_allowed: Mutex<Vec<String>>,
    next: AtomicU64,
}

impl MemoryIam {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            keys: Mutex::new(Vec::new()),
            fail_at: Mutex::new(None),
            refuse_new: AtomicBool::new(false),
            not_allowed: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
        })
    }

    /// A new active key of `user`, made `age` ago.
    pub fn add_key(&self, user: &str, age: Duration) -> FederationKeys {
        let id = format!("AKIAMEMIAM{:010}", self.next.fetch_add(1, Ordering::SeqCst));
        locked(&self.keys).push((
            user.to_owned(),
            crate::rotation::AccessKeyInfo {
                id: id.clone(),
                active: true,
                created: self.clock.now() - age,
            },
        ));
        FederationKeys {
            secret_access_key: SecretString::from(format!("secret-{id}")),
            access_key_id: id,
        }
    }

    /// `user`'s keys, as IAM lists them.
    pub fn keys_of(&self, user: &str) -> Vec<crate::rotation::AccessKeyInfo> {
        locked(&self.keys)
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// The next `step` fails (once).
    pub fn fail_at(&self, step: Option<KeyStep>) {
        *locked(&self.fail_at) = step;
    }

    /// New keys do not sign (as if IAM never learnt of them).
    pub fn refuse_new(&self, on: bool) {
        self.refuse_new.store(on, Ordering::SeqCst);
    }

    /// `user` may not manage its own keys (its account grants it no IAM actions).
    pub fn forbid(&self, user: &str) {
        locked(&self.not_allowed).push(user.to_owned());
    }

    /// A handle on `user`'s keys, as that user's key signs.
    pub fn user(self: &Arc<Self>, user: &str) -> MemoryIamUser {
        MemoryIamUser {
            iam: self.clone(),
            user: user.to_owned(),
        }
    }

    fn step(&self, user: &str, step: KeyStep) -> Result<(), UpstreamError> {
        if step != KeyStep::Store && locked(&self.not_allowed).iter().any(|u| u == user) {
            return Err(UpstreamError::new(
                Service::Iam,
                UpstreamKind::Refused,
                format!("AccessDenied: {user} may not manage its access keys"),
            ));
        }
        let mut fail = locked(&self.fail_at);
        if *fail == Some(step) {
            *fail = None;
            return Err(UpstreamError::new(
                Service::Iam,
                UpstreamKind::Unavailable,
                format!("the run died at {step:?}"),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl crate::rotation::targets::FederationIam for Arc<MemoryIam> {
    async fn user(
        &self,
        keys: &FederationKeys,
        _partition: Partition,
    ) -> Result<Box<dyn crate::rotation::UserKeys>, UpstreamError> {
        let owner = locked(&self.keys)
            .iter()
            .find(|(_, k)| {
                k.id == keys.access_key_id
                    && k.active
                    && keys.secret_access_key.expose_secret() == format!("secret-{}", k.id)
            })
            .map(|(u, _)| u.clone());
        match owner {
            Some(user) => Ok(Box::new(MemoryIam::user(self, &user))),
            None => Err(UpstreamError::new(
                Service::Sts,
                UpstreamKind::Refused,
                "InvalidClientTokenId: the key is not active",
            )),
        }
    }
}

/// One user's keys in [`MemoryIam`].
pub struct MemoryIamUser {
    iam: Arc<MemoryIam>,
    user: String,
}

#[async_trait]
impl crate::rotation::UserKeys for MemoryIamUser {
    fn user(&self) -> &str {
        &self.user
    }

    async fn list(&self) -> Result<Vec<crate::rotation::AccessKeyInfo>, UpstreamError> {
        self.iam.step(&self.user, KeyStep::List)?;
        Ok(self.iam.keys_of(&self.user))
    }

    async fn create(&self) -> Result<crate::rotation::NewAccessKey, UpstreamError> {
        self.iam.step(&self.user, KeyStep::Create)?;
        let mut keys = locked(&self.iam.keys);
        let mine: Vec<_> = keys.iter().filter(|(u, _)| *u == self.user).collect();
        if mine.len() >= 2 {
            return Err(UpstreamError::new(
                Service::Iam,
                UpstreamKind::Refused,
                "LimitExceeded: two access keys already",
            ));
        }
        let id = format!(
            "AKIAMEMIAM{:010}",
            self.iam.next.fetch_add(1, Ordering::SeqCst)
        );
        // Later keys are made later, to the second.
        let created = mine
            .iter()
            .map(|(_, k)| k.created + Duration::seconds(1))
            .max()
            .unwrap_or_else(|| self.iam.clock.now())
            .max(self.iam.clock.now());
        keys.push((
            self.user.clone(),
            crate::rotation::AccessKeyInfo {
                id: id.clone(),
                active: true,
                created,
            },
        ));
        Ok(crate::rotation::NewAccessKey {
            secret: SecretString::from(format!("secret-{id}")),
            id,
        })
    }

    async fn works(&self, key: &crate::rotation::NewAccessKey) -> Result<bool, UpstreamError> {
        self.iam.step(&self.user, KeyStep::Works)?;
        Ok(!self.iam.refuse_new.load(Ordering::SeqCst)
            && key.secret.expose_secret() == format!("secret-{}", key.id)
            && self
                .iam
                .keys_of(&self.user)
                .iter()
                .any(|k| k.id == key.id && k.active))
    }

    async fn deactivate(&self, id: &str) -> Result<(), UpstreamError> {
        self.iam.step(&self.user, KeyStep::Deactivate)?;
        for (_, k) in locked(&self.iam.keys)
            .iter_mut()
            .filter(|(u, k)| *u == self.user && k.id == id)
        {
            k.active = false;
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), UpstreamError> {
        self.iam.step(&self.user, KeyStep::Delete)?;
        locked(&self.iam.keys).retain(|(u, k)| !(*u == self.user && k.id == id));
        Ok(())
    }
}

/// The broker user's keys in [`MemoryIam`] and the one stored in SSM.
pub struct MemoryBrokerKeys {
    pub iam: Arc<MemoryIam>,
    user: MemoryIamUser,
    stored: Mutex<Option<String>>,
}

impl MemoryBrokerKeys {
    pub const USER: &str = "cooper-broker";

    /// One active key, stored, made `age` ago.
    pub fn new(clock: Arc<dyn Clock>, age: Duration) -> Self {
        let iam = MemoryIam::new(clock);
        let first = iam.add_key(Self::USER, age);
        Self {
            user: iam.user(Self::USER),
            iam,
            stored: Mutex::new(Some(first.access_key_id)),
        }
    }

    /// The next `step` fails (once).
    pub fn fail_at(&self, step: Option<KeyStep>) {
        self.iam.fail_at(step);
    }

    /// New keys do not sign (as if IAM never learnt of them).
    pub fn refuse_new(&self, on: bool) {
        self.iam.refuse_new(on);
    }

    pub fn keys(&self) -> Vec<crate::rotation::AccessKeyInfo> {
        self.iam.keys_of(Self::USER)
    }

    pub fn stored_id(&self) -> Option<String> {
        locked(&self.stored).clone()
    }
}

#[async_trait]
impl crate::rotation::BrokerKeys for MemoryBrokerKeys {
    async fn stored(&self) -> Result<Option<String>, UpstreamError> {
        Ok(self.stored_id())
    }

    async fn iam(&self) -> Result<&dyn crate::rotation::UserKeys, UpstreamError> {
        Ok(&self.user)
    }

    async fn store(&self, key: &crate::rotation::NewAccessKey) -> Result<(), UpstreamError> {
        self.iam.step(Self::USER, KeyStep::Store)?;
        *locked(&self.stored) = Some(key.id.clone());
        Ok(())
    }
}
