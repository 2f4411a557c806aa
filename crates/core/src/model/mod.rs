//! What cooper keeps: the directory's accounts, targets, users, groups and grants; users'
//! authentication factors; approval requests.

/// A random id of 128 bits as 32 lowercase hex digits (`$field` names it in errors): made with
/// `generate`, read back with `parse`.
macro_rules! hex_id {
    ($(#[$meta:meta])* $name:ident, $field:literal, $description:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn generate(
                entropy: &dyn crate::clock::Entropy,
            ) -> Result<Self, crate::clock::EntropyUnavailable> {
                let mut bytes = [0u8; 16];
                entropy.fill(&mut bytes)?;
                Ok(Self(hex::encode(bytes)))
            }

            pub fn parse(value: &str) -> Result<Self, crate::names::InvalidValue> {
                if value.len() == 32
                    && value
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(crate::names::InvalidValue::new(
                        $field,
                        "must be 32 lowercase hex digits",
                    ))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        string_schema!(
            $name,
            $crate::model::HEX_ID_PATTERN,
            (None, None),
            $description,
            Some("0123456789abcdef0123456789abcdef")
        );

        impl TryFrom<String> for $name {
            type Error = crate::names::InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

/// What every [`hex_id!`] id looks like.
pub const HEX_ID_PATTERN: &str = "^[0-9a-f]{32}$";

pub mod approvals;
pub mod factors;
pub mod requests;

use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::limits::SessionLimits;
use crate::names::{
    AccountId, AccountName, Description, DisplayName, ExternalId, GroupName, InvalidValue, Level,
    Partition, RoleArn, SessionPolicy, TargetName, UserName,
};
use crate::tags::SessionTagSpecs;

/// An AWS account cooper brokers into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: AccountName,
    pub partition: Partition,
    /// Who may approve requests for access to this account's targets (up to a level), and for
    /// how long; `None`: nothing here can be requested (but what a target allows itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_requests: Option<requests::RequestPolicy>,
}

/// Something a user can become: an IAM role, or a federated user of the account's IAM user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub name: TargetName,
    pub account: AccountId,
    pub level: Level,
    #[serde(flatten)]
    pub kind: TargetKind,
    pub max_duration_seconds: u32,
    #[serde(default)]
    pub high_security: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
    /// Who may approve a request for this target. Not empty: every issuance needs a second
    /// person's approval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<Principal>,
    /// Who may approve requests for access to this target by people not granted it, and for
    /// how long; `None`: only what its account allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_requests: Option<requests::RequestPolicy>,
    /// The session tags AssumeRole sets (ABAC), from the person or fixed; a role target's only
    /// (see `crate::tags`).
    #[serde(default, skip_serializing_if = "SessionTagSpecs::is_empty")]
    pub session_tags: SessionTagSpecs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetKind {
    /// AssumeRole into `role_arn`, passing `external_id` when the role's trust policy asks for one.
    Role {
        role_arn: RoleArn,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<ExternalId>,
    },
    /// GetFederationToken with the account's IAM-user keys (held KMS-encrypted), scoped by `session_policy`.
    FederatedUser {
        partition: Partition,
        sealed_keys: Sealed,
        session_policy: SessionPolicy,
    },
}

impl TargetKind {
    /// The session lengths STS allows for this kind of target.
    pub fn session_limits(&self) -> SessionLimits {
        match self {
            Self::Role { .. } => SessionLimits::ROLE,
            Self::FederatedUser { .. } => SessionLimits::FEDERATED_USER,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Self::Role { .. } => "role",
            Self::FederatedUser { .. } => "federated_user",
        }
    }
}

impl Target {
    /// A role target, checked: the role must live in the target's account, and the maximum
    /// duration must be one AssumeRole can give.
    pub fn role(
        name: TargetName,
        account: AccountId,
        level: Level,
        role_arn: RoleArn,
        external_id: Option<ExternalId>,
        max_duration_seconds: Option<u32>,
    ) -> Result<Self, InvalidValue> {
        if role_arn.account() != account {
            return Err(InvalidValue::new(
                "role_arn",
                format!("belongs to account {}, not {account}", role_arn.account()),
            ));
        }
        let kind = TargetKind::Role {
            role_arn,
            external_id,
        };
        Self::checked(name, account, level, kind, max_duration_seconds)
    }

    /// A federated-user target: `sealed_keys` are the account IAM user's keys, KMS-encrypted.
    pub fn federated_user(
        name: TargetName,
        account: &Account,
        level: Level,
        sealed_keys: Sealed,
        session_policy: SessionPolicy,
        max_duration_seconds: Option<u32>,
    ) -> Result<Self, InvalidValue> {
        let kind = TargetKind::FederatedUser {
            partition: account.partition,
            sealed_keys,
            session_policy,
        };
        Self::checked(name, account.id.clone(), level, kind, max_duration_seconds)
    }

    fn checked(
        name: TargetName,
        account: AccountId,
        level: Level,
        kind: TargetKind,
        max_duration_seconds: Option<u32>,
    ) -> Result<Self, InvalidValue> {
        let limits = kind.session_limits();
        let max = max_duration_seconds.unwrap_or(limits.default_max);
        if max < limits.min || max > limits.max {
            return Err(InvalidValue::new(
                "max_duration_seconds",
                format!(
                    "must be {} to {} for a {} target",
                    limits.min,
                    limits.max,
                    kind.label()
                ),
            ));
        }
        Ok(Self {
            name,
            account,
            level,
            kind,
            max_duration_seconds: max,
            high_security: false,
            description: None,
            approvers: Vec::new(),
            access_requests: None,
            session_tags: SessionTagSpecs::default(),
        })
    }

    /// Sets the session tags its AssumeRole sessions carry. A role target's only: cooper does
    /// not tag federation tokens (GetFederationToken takes no transitive keys, and its tags would
    /// need `sts:TagSession` on the account's IAM user), and refuses rather than drop them.
    pub fn set_session_tags(&mut self, tags: SessionTagSpecs) -> Result<(), InvalidValue> {
        if !tags.is_empty() && !matches!(self.kind, TargetKind::Role { .. }) {
            return Err(InvalidValue::new(
                "session_tags",
                "are for role targets only: cooper does not tag federated-user sessions",
            ));
        }
        self.session_tags = tags;
        Ok(())
    }

    pub fn requires_approval(&self) -> bool {
        !self.approvers.is_empty()
    }

    pub fn partition(&self) -> Partition {
        match &self.kind {
            TargetKind::Role { role_arn, .. } => role_arn.partition(),
            TargetKind::FederatedUser { partition, .. } => *partition,
        }
    }
}

/// KMS ciphertext, base64: a federated-user target's `AKID|SECRET`, or a user's TOTP secret. Not
/// usable without KMS (and the right encryption context), but still kept out of logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sealed(String);

impl Sealed {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let ok = !value.is_empty()
            && value.len() <= 8192
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidValue::new(
                "sealed",
                "must be a base64 KMS ciphertext (for keys: the blob `cooper encrypt` prints)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const SEALED_PATTERN: &str = "^[A-Za-z0-9+/=]{1,8192}$";
string_schema!(
    Sealed,
    SEALED_PATTERN,
    (None, None),
    "A base64 KMS ciphertext: for a federated-user target's keys, the blob `cooper encrypt` prints.",
    None
);

impl TryFrom<String> for Sealed {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Sealed> for String {
    fn from(value: Sealed) -> String {
        value.0
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// A federated-user target's IAM-user keys, decrypted: held in memory only for the STS call.
#[derive(Debug)]
pub struct FederationKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

impl FederationKeys {
    /// Parses the `AKID|SECRET` form `cooper encrypt` seals. The error never repeats the input.
    pub fn parse(plaintext: &str) -> Result<Self, InvalidValue> {
        let bad =
            || InvalidValue::new("federation_keys", "must be ACCESS_KEY_ID|SECRET_ACCESS_KEY");
        let (akid, secret) = plaintext.trim().split_once('|').ok_or_else(bad)?;
        let akid_ok =
            (16..=128).contains(&akid.len()) && akid.bytes().all(|b| b.is_ascii_alphanumeric());
        if !akid_ok || secret.is_empty() || secret.contains('|') || secret.len() > 256 {
            return Err(bad());
        }
        Ok(Self {
            access_key_id: akid.to_owned(),
            secret_access_key: SecretString::from(secret.to_owned()),
        })
    }
}

/// A person or a machine identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: UserName,
    pub enabled: bool,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<DisplayName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Disabled,
    Expired,
}

impl User {
    pub fn new(name: UserName) -> Self {
        Self {
            name,
            enabled: true,
            expires_at: None,
            display_name: None,
        }
    }

    pub fn status_at(&self, now: OffsetDateTime) -> UserStatus {
        if !self.enabled {
            UserStatus::Disabled
        } else if self.expires_at.is_some_and(|at| at <= now) {
            UserStatus::Expired
        } else {
            UserStatus::Active
        }
    }
}

/// A group of users (its members are membership items).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: GroupName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
}

/// Who a grant is given to (or who may approve): `{"user": "alice"}`, `{"group": "ops"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    User(UserName),
    Group(GroupName),
}

/// Exactly one of `{"user": NAME}` or `{"group": NAME}`: serde refuses a second key.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Principal {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::schema::{one_of, single_property};
        use utoipa::ToSchema;
        let named = |name: std::borrow::Cow<'static, str>| {
            utoipa::openapi::schema::Ref::from_schema_name(name)
        };
        one_of(
            "Who a grant (or an admin scope, or an approval) is given to: exactly one of `{\"user\": NAME}` or `{\"group\": NAME}`.",
            [
                single_property("user", named(UserName::name())).into(),
                single_property("group", named(GroupName::name())).into(),
            ],
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Principal {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((UserName::name().into(), UserName::schema()));
        schemas.push((GroupName::name().into(), GroupName::schema()));
    }
}

/// Whether `principals` name `user`, or one of `groups` (sorted).
pub fn names_any(principals: &[Principal], user: &UserName, groups: &[GroupName]) -> bool {
    principals.iter().any(|p| match p {
        Principal::User(u) => u == user,
        Principal::Group(g) => groups.binary_search(g).is_ok(),
    })
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(u) => write!(f, "user {u}"),
            Self::Group(g) => write!(f, "group {g}"),
        }
    }
}

/// An explicit admin grant: `principal` administers `account`, or every account when `None`.
/// (What that scope means is `admin::scope`'s business.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AdminGrant {
    pub principal: Principal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
}

/// What a grant covers: one target, or every target of an account up to a level (the cascade).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GrantScope {
    Target(TargetName),
    Account {
        account: AccountId,
        max_level: Level,
    },
}

impl fmt::Display for GrantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Target(t) => write!(f, "target {t}"),
            Self::Account { account, max_level } => {
                write!(f, "account {account} up to level {max_level}")
            }
        }
    }
}

/// What a grant is on, as far as naming it goes: a cascade's level is a property, not its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GrantOn {
    Target(TargetName),
    Account(AccountId),
}

/// What names a grant: who holds it, and what it is on. At most one grant has a given key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantKey {
    pub principal: Principal,
    pub on: GrantOn,
}

impl fmt::Display for GrantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.on {
            GrantOn::Target(t) => write!(f, "{} -> target {t}", self.principal),
            GrantOn::Account(a) => write!(f, "{} -> account {a}", self.principal),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub principal: Principal,
    pub scope: GrantScope,
    /// A grant may be temporary; past this instant it covers nothing.
    pub expires_at: Option<OffsetDateTime>,
    /// The access request whose approval gave it (a time-bound grant), if one did.
    pub via: Option<requests::AccessRequestId>,
}

impl Grant {
    pub fn key(&self) -> GrantKey {
        GrantKey {
            principal: self.principal.clone(),
            on: match &self.scope {
                GrantScope::Target(t) => GrantOn::Target(t.clone()),
                GrantScope::Account { account, .. } => GrantOn::Account(account.clone()),
            },
        }
    }

    /// Does this grant, at `now`, let its principal become `target`?
    pub fn covers(&self, target: &Target, now: OffsetDateTime) -> bool {
        if self.expires_at.is_some_and(|at| at <= now) {
            return false;
        }
        match &self.scope {
            GrantScope::Target(name) => *name == target.name,
            GrantScope::Account { account, max_level } => {
                *account == target.account && target.level <= *max_level
            }
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.principal, self.scope)?;
        if let Some(at) = self.expires_at {
            let at = at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| at.unix_timestamp().to_string());
            write!(f, " until {at}")?;
        }
        if let Some(id) = &self.via {
            write!(f, " (access request {id})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        AccountId::parse("111111111111").unwrap()
    }

    #[test]
    fn a_role_target_must_live_in_its_account() {
        let arn = RoleArn::parse("arn:aws:iam::222222222222:role/x").unwrap();
        let err = Target::role(
            TargetName::parse("t").unwrap(),
            account(),
            Level::new(10).unwrap(),
            arn,
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(err.field, "role_arn");
    }

    #[test]
    fn max_duration_is_bounded_by_what_sts_allows() {
        let arn = RoleArn::parse("arn:aws:iam::111111111111:role/x").unwrap();
        let make = |max| {
            Target::role(
                TargetName::parse("t").unwrap(),
                account(),
                Level::new(10).unwrap(),
                arn.clone(),
                None,
                max,
            )
        };
        assert_eq!(make(None).unwrap().max_duration_seconds, 3600);
        assert!(make(Some(43_200)).is_ok());
        assert!(make(Some(43_201)).is_err());
        assert!(make(Some(899)).is_err());
    }

    #[test]
    fn federation_keys_parse_without_echoing_the_secret() {
        let keys = FederationKeys::parse("AKIAEXAMPLEEXAMPLE12|s3cr3t/with+chars").unwrap();
        assert_eq!(keys.access_key_id, "AKIAEXAMPLEEXAMPLE12");
        assert!(!format!("{keys:?}").contains("s3cr3t"));
        let err = FederationKeys::parse("s3cr3t-no-separator").unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn user_status_follows_enabled_and_expiry() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(100);
        let mut u = User::new(UserName::parse("alice").unwrap());
        assert_eq!(u.status_at(now), UserStatus::Active);
        u.expires_at = Some(now);
        assert_eq!(u.status_at(now), UserStatus::Expired);
        u.expires_at = Some(now + time::Duration::seconds(1));
        assert_eq!(u.status_at(now), UserStatus::Active);
        u.enabled = false;
        assert_eq!(u.status_at(now), UserStatus::Disabled);
    }
}
