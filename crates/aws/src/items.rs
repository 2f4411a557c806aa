//! How cooper's values become directory items: keys, the common envelope, one builder and one
//! reader per kind of item, and list cursors.
//!
//! | item       | PK               | SK                          | GSI1PK            | GSI1SK                      |
//! |------------|------------------|-----------------------------|-------------------|-----------------------------|
//! | account    | `ACCOUNT#<id>`   | `ACCOUNT`                   | `ACCOUNTS`        | `ACCOUNT#<id>`              |
//! | target     | `TARGET#<name>`  | `TARGET`                    | `ACCOUNT#<id>`    | `TARGET#<level:04>#<name>`  |
//! | user       | `USER#<name>`    | `PROFILE`                   | `USERS`           | `USER#<name>`               |
//! | membership | `USER#<name>`    | `MEMBER#<group>`            | `GROUP#<group>`   | `MEMBER#<user>`             |
//! | group      | `GROUP#<name>`   | `GROUP`                     | `GROUPS`          | `GROUP#<name>`              |
//! | grant      | `USER#<u>` or `GROUP#<g>` | `GRANT#TARGET#<t>` or `GRANT#ACCOUNT#<a>` | `ACCOUNT#<id>` | `GRANT#<PK>#<SK>` |
//! | admin grant| `USER#<u>` or `GROUP#<g>` | `ADMIN#*` or `ADMIN#ACCOUNT#<a>` | `ADMINS` or `ACCOUNT#<a>` | `ADMIN#<PK>` |
//! | API token  | `TOKEN#<id>`     | `TOKEN`                     | `USER#<name>`     | `TOKEN#<id>`                |
//! | enrollment code | `ENROLLCODE#<id>` | `ENROLLCODE`         |                   |                             |
//! | ended sessions | `SESSIONS#<user>` | `SESSIONS`             |                   |                             |
//! | revoked AWS sessions | `REVOKED#<holder>` | `<user>`         |                   |                             |
//! | access request | `ACCESSREQ#<id>` | `ACCESSREQ`             | `ACCESSREQS#<requester>` | `<created:012>#<id>` |
//! | request asking | `ASKING#USER#<u>` or `ASKING#GROUP#<g>` | `<created:012>#<id>` |  |                      |
//! | time-bound grant | `JIT#<user>`   | `GRANT#<request id>`        |                   |                             |
//!
//! Accounts, targets, users and groups carry a `version` for optimistic concurrency.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cooper_core::admin::scope::AdminGrant;
use cooper_core::model::requests::AccessRequestId;
use cooper_core::model::{Account, Grant, GrantScope, Group, Principal, Target, User};
use cooper_core::names::{AccountId, GroupName, Level, TargetName, UserName};
use cooper_core::ports::{Service, UpstreamError, UpstreamKind};
use cooper_core::token::ApiTokenRecord;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::corrupt;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub const GSI1: &str = "GSI1";

/// The prefix of every enrollment code's key (what a function's IAM policy may write).
pub const ENROLLMENT_CODE_PREFIX: &str = "ENROLLCODE#";
/// The prefix of every time-bound grant's key (what a function's IAM policy may write).
pub const TEMPORARY_GRANT_PREFIX: &str = "JIT#";

/// Partition and sort keys of every directory item.
pub mod keys {
    use cooper_core::admin::scope::AdminGrant;
    use cooper_core::model::{GrantScope, Principal};
    use cooper_core::names::{AccountId, GroupName, Level, TargetName, UserName};
    use cooper_core::token::TokenId;

    pub fn account(id: &AccountId) -> (String, String) {
        (format!("ACCOUNT#{id}"), "ACCOUNT".into())
    }
    pub fn target(name: &TargetName) -> (String, String) {
        (format!("TARGET#{name}"), "TARGET".into())
    }
    pub fn user(name: &UserName) -> (String, String) {
        (format!("USER#{name}"), "PROFILE".into())
    }
    pub fn group(name: &GroupName) -> (String, String) {
        (format!("GROUP#{name}"), "GROUP".into())
    }
    pub fn membership(user: &UserName, group: &GroupName) -> (String, String) {
        (format!("USER#{user}"), format!("MEMBER#{group}"))
    }
    pub fn token(id: &TokenId) -> (String, String) {
        (format!("TOKEN#{id}"), "TOKEN".into())
    }
    /// The version item of what a reach guard watches.
    pub fn reach(key: &cooper_core::ledger::ReachKey) -> (String, String) {
        use cooper_core::ledger::ReachKey;
        let pk = match key {
            ReachKey::AccountTargets(a) | ReachKey::AccountGrants(a) => {
                format!("REACH#ACCOUNT#{a}")
            }
            ReachKey::GroupGrants(g) => format!("REACH#GROUP#{g}"),
        };
        let sk = match key {
            ReachKey::AccountTargets(_) => "TARGETS",
            ReachKey::AccountGrants(_) | ReachKey::GroupGrants(_) => "GRANTS",
        };
        (pk, sk.into())
    }
    /// A person's record of ended cooper sessions.
    pub fn session_revocations(user: &UserName) -> (String, String) {
        (format!("SESSIONS#{user}"), "SESSIONS".into())
    }
    /// The time-bound grant access request `request` gave `user`.
    pub fn temporary_grant(
        user: &UserName,
        request: &cooper_core::model::requests::AccessRequestId,
    ) -> (String, String) {
        (temporary_grants_of(user), format!("GRANT#{request}"))
    }
    /// The partition of a user's time-bound grants.
    pub fn temporary_grants_of(user: &UserName) -> String {
        format!("{}{user}", super::TEMPORARY_GRANT_PREFIX)
    }
    /// The partition of one holder's revoked AWS sessions (one item per person).
    pub fn revoked_on(holder: &str) -> String {
        format!("REVOKED#{holder}")
    }
    pub fn enrollment_code(id: &TokenId) -> (String, String) {
        (
            format!("{}{id}", super::ENROLLMENT_CODE_PREFIX),
            "ENROLLCODE".into(),
        )
    }
    pub fn principal(p: &Principal) -> String {
        match p {
            Principal::User(u) => format!("USER#{u}"),
            Principal::Group(g) => format!("GROUP#{g}"),
        }
    }
    pub fn grant_sk(scope: &GrantScope) -> String {
        match scope {
            GrantScope::Target(t) => format!("GRANT#TARGET#{t}"),
            GrantScope::Account { account, .. } => format!("GRANT#ACCOUNT#{account}"),
        }
    }
    pub fn grant(p: &Principal, scope: &GrantScope) -> (String, String) {
        (principal(p), grant_sk(scope))
    }
    pub fn grant_on_target(p: &Principal, target: &TargetName) -> (String, String) {
        (principal(p), format!("GRANT#TARGET#{target}"))
    }
    pub fn grant_on_account(p: &Principal, account: &AccountId) -> (String, String) {
        (principal(p), format!("GRANT#ACCOUNT#{account}"))
    }
    pub fn admin_grant(g: &AdminGrant) -> (String, String) {
        let sk = match &g.account {
            Some(a) => format!("ADMIN#ACCOUNT#{a}"),
            None => "ADMIN#*".to_owned(),
        };
        (principal(&g.principal), sk)
    }
    /// Targets of an account sort by level, so "level <= N" is a key range.
    pub fn target_in_account(level: Level, name: &TargetName) -> String {
        format!("TARGET#{:04}#{name}", level.get())
    }
    pub fn targets_up_to(level: Level) -> (String, String) {
        // '~' sorts after every character a target name may hold.
        ("TARGET#".into(), format!("TARGET#{:04}#~", level.get()))
    }
}

/// Every directory item: its keys, its kind, its version, and its body's fields beside them.
#[derive(Serialize, Deserialize)]
pub(crate) struct Keyed<T> {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    #[serde(default)]
    pub item: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Keyed<T> {
    /// An item without secondary-index keys or version.
    pub fn plain((pk, sk): (String, String), item: &str, body: T) -> Self {
        Self::new((pk, sk), None, item, body)
    }

    fn new(
        (pk, sk): (String, String),
        gsi1: Option<(String, String)>,
        item: &str,
        body: T,
    ) -> Self {
        let (gsi1pk, gsi1sk) = gsi1.map_or((None, None), |(p, s)| (Some(p), Some(s)));
        Self {
            pk,
            sk,
            gsi1pk,
            gsi1sk,
            item: item.to_owned(),
            version: None,
            body,
        }
    }

    fn versioned(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }
}

pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, UpstreamError> {
    serde_dynamo::to_item(value)
        .map_err(|e| corrupt(Service::DynamoDb, format!("could not encode an item: {e}")))
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item, what: &str) -> Result<T, UpstreamError> {
    serde_dynamo::from_item(item).map_err(|e| {
        corrupt(
            Service::DynamoDb,
            format!("stored {what} is unreadable: {e}"),
        )
    })
}

pub(crate) fn key((pk, sk): (String, String)) -> Item {
    HashMap::from([
        ("PK".to_owned(), AttributeValue::S(pk)),
        ("SK".to_owned(), AttributeValue::S(sk)),
    ])
}

pub(crate) fn sort_key(item: &Item) -> &str {
    match item.get("SK") {
        Some(AttributeValue::S(sk)) => sk,
        _ => "",
    }
}

/// A value and the version its item holds (items written before versions count as 1).
pub(crate) fn versioned<T: DeserializeOwned>(
    item: Item,
    what: &str,
) -> Result<(T, u64), UpstreamError> {
    let k = from_item::<Keyed<T>>(item, what)?;
    Ok((k.body, k.version.unwrap_or(1)))
}

#[derive(Serialize, Deserialize)]
pub(crate) struct MembershipBody {
    pub user: UserName,
    pub group: GroupName,
}

#[derive(Serialize, Deserialize)]
struct GroupBody {
    group: GroupName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<cooper_core::names::Description>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PrincipalKind {
    User,
    Group,
}

fn principal_parts(p: &Principal) -> (PrincipalKind, String) {
    match p {
        Principal::User(u) => (PrincipalKind::User, u.to_string()),
        Principal::Group(g) => (PrincipalKind::Group, g.to_string()),
    }
}

fn principal_from(kind: PrincipalKind, name: &str, what: &str) -> Result<Principal, UpstreamError> {
    let bad = |e: cooper_core::names::InvalidValue| {
        corrupt(Service::DynamoDb, format!("{what} item: {e}"))
    };
    Ok(match kind {
        PrincipalKind::User => Principal::User(UserName::parse(name).map_err(bad)?),
        PrincipalKind::Group => Principal::Group(GroupName::parse(name).map_err(bad)?),
    })
}

#[derive(Serialize, Deserialize)]
struct GrantBody {
    principal_kind: PrincipalKind,
    principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<TargetName>,
    /// The account the grant reaches: its own for a cascade, the target's for a target grant.
    account: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_level: Option<Level>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    expires_at: Option<OffsetDateTime>,
    /// The access request that gave a time-bound grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    via: Option<AccessRequestId>,
}

#[derive(Serialize, Deserialize)]
struct AdminGrantBody {
    principal_kind: PrincipalKind,
    principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<AccountId>,
}

pub(crate) fn account_item(account: &Account, version: u64) -> Result<Item, UpstreamError> {
    let gsi1 = ("ACCOUNTS".to_owned(), format!("ACCOUNT#{}", account.id));
    to_item(
        &Keyed::new(keys::account(&account.id), Some(gsi1), "account", account).versioned(version),
    )
}

pub(crate) fn target_item(target: &Target, version: u64) -> Result<Item, UpstreamError> {
    let gsi1 = (
        format!("ACCOUNT#{}", target.account),
        keys::target_in_account(target.level, &target.name),
    );
    to_item(
        &Keyed::new(keys::target(&target.name), Some(gsi1), "target", target).versioned(version),
    )
}

pub(crate) fn user_item(user: &User, version: u64) -> Result<Item, UpstreamError> {
    let gsi1 = ("USERS".to_owned(), format!("USER#{}", user.name));
    to_item(&Keyed::new(keys::user(&user.name), Some(gsi1), "user", user).versioned(version))
}

pub(crate) fn group_item(group: &Group, version: u64) -> Result<Item, UpstreamError> {
    let gsi1 = ("GROUPS".to_owned(), format!("GROUP#{}", group.name));
    let body = GroupBody {
        group: group.name.clone(),
        description: group.description.clone(),
    };
    to_item(&Keyed::new(keys::group(&group.name), Some(gsi1), "group", body).versioned(version))
}

pub(crate) fn read_group(item: Item) -> Result<(Group, u64), UpstreamError> {
    let (body, version) = versioned::<GroupBody>(item, "group")?;
    Ok((
        Group {
            name: body.group,
            description: body.description,
        },
        version,
    ))
}

pub(crate) fn membership_item(user: &UserName, group: &GroupName) -> Result<Item, UpstreamError> {
    let gsi1 = (format!("GROUP#{group}"), format!("MEMBER#{user}"));
    let body = MembershipBody {
        user: user.clone(),
        group: group.clone(),
    };
    to_item(&Keyed::new(
        keys::membership(user, group),
        Some(gsi1),
        "membership",
        body,
    ))
}

/// A grant item; `account` is the account it reaches (the target's, for a target grant).
pub(crate) fn grant_item(grant: &Grant, account: &AccountId) -> Result<Item, UpstreamError> {
    let (principal_kind, principal) = principal_parts(&grant.principal);
    let (target, max_level) = match &grant.scope {
        GrantScope::Target(t) => (Some(t.clone()), None),
        GrantScope::Account { max_level, .. } => (None, Some(*max_level)),
    };
    let (pk, sk) = keys::grant(&grant.principal, &grant.scope);
    let gsi1 = (format!("ACCOUNT#{account}"), format!("GRANT#{pk}#{sk}"));
    let body = GrantBody {
        principal_kind,
        principal,
        target,
        account: account.clone(),
        max_level,
        expires_at: grant.expires_at,
        via: None,
    };
    to_item(&Keyed::new((pk, sk), Some(gsi1), "grant", body))
}

/// The time-bound grant an approved access request gives (a user's, from a request, with an
/// end): in the user's `JIT#` partition, which DynamoDB's TTL clears a day after it ends.
pub(crate) fn temporary_grant_item(
    grant: &Grant,
    account: &AccountId,
) -> Result<Item, UpstreamError> {
    let (Principal::User(user), Some(via), Some(until)) =
        (&grant.principal, &grant.via, grant.expires_at)
    else {
        return Err(corrupt(
            Service::DynamoDb,
            "a time-bound grant is a user's, from an access request, with an end",
        ));
    };
    let (target, max_level) = match &grant.scope {
        GrantScope::Target(t) => (Some(t.clone()), None),
        GrantScope::Account { max_level, .. } => (None, Some(*max_level)),
    };
    let body = GrantBody {
        principal_kind: PrincipalKind::User,
        principal: user.to_string(),
        target,
        account: account.clone(),
        max_level,
        expires_at: Some(until),
        via: Some(via.clone()),
    };
    let mut item = to_item(&Keyed::plain(
        keys::temporary_grant(user, via),
        "temporary_grant",
        body,
    ))?;
    item.insert(
        "ttl".to_owned(),
        AttributeValue::N((until.unix_timestamp() + 86_400).to_string()),
    );
    Ok(item)
}

pub(crate) fn read_grant(item: Item) -> Result<Grant, UpstreamError> {
    let body = from_item::<Keyed<GrantBody>>(item, "grant")?.body;
    let principal = principal_from(body.principal_kind, &body.principal, "grant")?;
    let scope = match (body.target, body.max_level) {
        (Some(target), _) => GrantScope::Target(target),
        (None, Some(max_level)) => GrantScope::Account {
            account: body.account,
            max_level,
        },
        (None, None) => {
            return Err(corrupt(
                Service::DynamoDb,
                "grant item: neither a target nor a level",
            ));
        }
    };
    Ok(Grant {
        principal,
        scope,
        expires_at: body.expires_at,
        via: body.via,
    })
}

pub(crate) fn admin_grant_item(grant: &AdminGrant) -> Result<Item, UpstreamError> {
    let (principal_kind, principal) = principal_parts(&grant.principal);
    let (pk, sk) = keys::admin_grant(grant);
    let gsi1pk = match &grant.account {
        Some(a) => format!("ACCOUNT#{a}"),
        None => "ADMINS".to_owned(),
    };
    let gsi1 = (gsi1pk, format!("ADMIN#{pk}"));
    let body = AdminGrantBody {
        principal_kind,
        principal,
        account: grant.account.clone(),
    };
    to_item(&Keyed::new((pk, sk), Some(gsi1), "admin_grant", body))
}

pub(crate) fn read_admin_grant(item: Item) -> Result<AdminGrant, UpstreamError> {
    let body = from_item::<Keyed<AdminGrantBody>>(item, "admin grant")?.body;
    Ok(AdminGrant {
        principal: principal_from(body.principal_kind, &body.principal, "admin grant")?,
        account: body.account,
    })
}

pub(crate) fn token_item(record: &ApiTokenRecord) -> Result<Item, UpstreamError> {
    let gsi1 = (
        format!("USER#{}", record.user),
        format!("TOKEN#{}", record.id),
    );
    to_item(&Keyed::new(
        keys::token(&record.id),
        Some(gsi1),
        "api_token",
        record,
    ))
}

#[derive(Serialize, Deserialize)]
pub(crate) struct EnrollmentCodeBody {
    #[serde(flatten)]
    pub record: cooper_core::token::EnrollmentCodeRecord,
    /// For conditions: the expiry as a number.
    expires_epoch: i64,
    /// DynamoDB's TTL removes codes a day after they expire.
    ttl: i64,
}

pub(crate) fn enrollment_code_item(
    record: &cooper_core::token::EnrollmentCodeRecord,
) -> Result<Item, UpstreamError> {
    let expires = record.expires_at.unix_timestamp();
    to_item(&Keyed::plain(
        keys::enrollment_code(&record.id),
        "enrollment_code",
        EnrollmentCodeBody {
            record: record.clone(),
            expires_epoch: expires,
            ttl: expires + 86_400,
        },
    ))
}

/// List cursors: DynamoDB's LastEvaluatedKey, as base64url JSON of `name -> "S:value"` or
/// `"N:value"`. A cursor is checked against the attributes the list's key has, so one made for
/// another list is refused rather than sent to DynamoDB.
pub(crate) fn encode_cursor(last: Option<Item>) -> Option<String> {
    let last = last?;
    let map: std::collections::BTreeMap<String, String> = last
        .into_iter()
        .filter_map(|(k, v)| match v {
            AttributeValue::S(s) => Some((k, format!("S:{s}"))),
            AttributeValue::N(n) => Some((k, format!("N:{n}"))),
            _ => None,
        })
        .collect();
    serde_json::to_vec(&map)
        .ok()
        .map(|json| URL_SAFE_NO_PAD.encode(json))
}

pub(crate) fn decode_cursor(
    cursor: Option<&str>,
    attributes: &[&str],
    partition: (&str, &str),
) -> Result<Option<Item>, UpstreamError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let invalid = || {
        UpstreamError::new(
            Service::DynamoDb,
            UpstreamKind::BadInput,
            "the cursor does not belong to this list",
        )
    };
    let json = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|_| invalid())?;
    let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
    let mut expected = attributes.to_vec();
    names.sort_unstable();
    expected.sort_unstable();
    if names != expected {
        return Err(invalid());
    }
    let mut item = Item::new();
    for (k, v) in map {
        let value = match v.split_once(':') {
            Some(("S", s)) => AttributeValue::S(s.to_owned()),
            Some(("N", n)) if n.parse::<i128>().is_ok() => AttributeValue::N(n.to_owned()),
            _ => return Err(invalid()),
        };
        item.insert(k, value);
    }
    if item.get(partition.0) != Some(&AttributeValue::S(partition.1.to_owned())) {
        return Err(invalid());
    }
    Ok(Some(item))
}

/// A person's record of ended cooper sessions, at `version`, kept until `keep_until`.
pub(crate) fn session_revocations_item(
    user: &UserName,
    revocations: &cooper_core::revocation::SessionRevocations,
    version: u64,
    keep_until: i64,
) -> Result<Item, UpstreamError> {
    let mut item = to_item(
        &Keyed::plain(
            keys::session_revocations(user),
            "session_revocations",
            revocations,
        )
        .versioned(version),
    )?;
    // DynamoDB's TTL removes the record a day after every session it ends has expired.
    item.insert(
        "ttl".to_owned(),
        AttributeValue::N((keep_until + 86_400).to_string()),
    );
    Ok(item)
}

/// One person's revoked AWS sessions on one holder.
pub(crate) fn revoked_item(
    holder: &str,
    revoked: &cooper_core::revocation::policy::RevokedSessions,
    keep_until: OffsetDateTime,
) -> Result<Item, UpstreamError> {
    let mut item = to_item(&Keyed::plain(
        (keys::revoked_on(holder), revoked.person.to_string()),
        "revoked_sessions",
        revoked,
    ))?;
    item.insert(
        "ttl".to_owned(),
        AttributeValue::N(keep_until.unix_timestamp().to_string()),
    );
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_lists() {
        let last = HashMap::from([
            ("PK".to_owned(), AttributeValue::S("ACCOUNT#1".into())),
            ("SK".to_owned(), AttributeValue::S("ACCOUNT".into())),
            ("GSI1PK".to_owned(), AttributeValue::S("ACCOUNTS".into())),
            ("GSI1SK".to_owned(), AttributeValue::S("ACCOUNT#1".into())),
        ]);
        let cursor = encode_cursor(Some(last.clone())).unwrap();
        let attrs = ["PK", "SK", "GSI1PK", "GSI1SK"];
        assert_eq!(
            decode_cursor(Some(&cursor), &attrs, ("GSI1PK", "ACCOUNTS")).unwrap(),
            Some(last)
        );
        assert!(decode_cursor(Some(&cursor), &attrs, ("GSI1PK", "USERS")).is_err());
        assert!(decode_cursor(Some(&cursor), &["id"], ("id", "x")).is_err());
        assert!(decode_cursor(Some("not a cursor"), &attrs, ("GSI1PK", "ACCOUNTS")).is_err());
        assert_eq!(
            decode_cursor(None, &attrs, ("GSI1PK", "ACCOUNTS")).unwrap(),
            None
        );
    }
}
