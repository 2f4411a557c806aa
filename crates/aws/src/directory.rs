//! The directory in one DynamoDB table, keyed so that every access decision is a few key lookups.
//!
//! | item       | PK               | SK                          | GSI1PK            | GSI1SK                      |
//! |------------|------------------|-----------------------------|-------------------|-----------------------------|
//! | account    | `ACCOUNT#<id>`   | `ACCOUNT`                   | `ACCOUNTS`        | `ACCOUNT#<id>`              |
//! | target     | `TARGET#<name>`  | `TARGET`                    | `ACCOUNT#<id>`    | `TARGET#<level:04>#<name>`  |
//! | user       | `USER#<name>`    | `PROFILE`                   |                   |                             |
//! | membership | `USER#<name>`    | `MEMBER#<group>`            | `GROUP#<group>`   | `MEMBER#<user>`             |
//! | group      | `GROUP#<name>`   | `GROUP`                     |                   |                             |
//! | grant      | `USER#<u>` or `GROUP#<g>` | `GRANT#TARGET#<t>` or `GRANT#ACCOUNT#<a>` | `ACCOUNT#<id>` | `GRANT#<PK>#<SK>` |
//! | API token  | `TOKEN#<id>`     | `TOKEN`                     | `USER#<name>`     | `TOKEN#<id>`                |
//!
//! One user's partition holds their profile, memberships and direct grants: one Query. Group
//! grants for a target are two known keys per group: one BatchGetItem. An account's targets sorted
//! by level make the cascade a key-range Query. Reads that decide access are strongly consistent,
//! so a revoked grant stops working at once.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use cooper_core::access::UserProfile;
use cooper_core::model::{Account, Grant, GrantScope, Principal, Target, User};
use cooper_core::names::{AccountId, GroupName, Level, TargetName, UserName};
use cooper_core::ports::{Directory, Service, UpstreamError, UpstreamKind};
use cooper_core::token::{ApiTokenRecord, TokenId};
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{code_of, corrupt, upstream};
use crate::items::{Item, Keyed, from_item, key, sort_key, to_item};

/// DynamoDB's BatchGetItem limit.
const BATCH_GET_MAX: usize = 100;
/// DynamoDB's BatchWriteItem limit.
const BATCH_WRITE_MAX: usize = 25;
/// Rounds of retrying unprocessed keys before giving up (each backs off).
const UNPROCESSED_ROUNDS: u32 = 6;

pub const GSI1: &str = "GSI1";

/// Partition and sort keys of every directory item.
pub mod keys {
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
    pub fn grant_on_target(p: &Principal, target: &TargetName) -> (String, String) {
        (principal(p), format!("GRANT#TARGET#{target}"))
    }
    pub fn grant_on_account(p: &Principal, account: &AccountId) -> (String, String) {
        (principal(p), format!("GRANT#ACCOUNT#{account}"))
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

#[derive(Serialize, Deserialize)]
struct MembershipBody {
    user: UserName,
    group: GroupName,
}

#[derive(Serialize, Deserialize)]
struct GroupBody {
    group: GroupName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PrincipalKind {
    User,
    Group,
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
}

impl GrantBody {
    fn into_grant(self) -> Result<Grant, UpstreamError> {
        let bad = |what: &str| corrupt(Service::DynamoDb, format!("grant item: {what}"));
        let principal = match self.principal_kind {
            PrincipalKind::User => {
                Principal::User(UserName::parse(&self.principal).map_err(|e| bad(&e.to_string()))?)
            }
            PrincipalKind::Group => Principal::Group(
                GroupName::parse(&self.principal).map_err(|e| bad(&e.to_string()))?,
            ),
        };
        let scope = match (self.target, self.max_level) {
            (Some(target), _) => GrantScope::Target(target),
            (None, Some(max_level)) => GrantScope::Account {
                account: self.account,
                max_level,
            },
            (None, None) => return Err(bad("neither a target nor a level")),
        };
        Ok(Grant {
            principal,
            scope,
            expires_at: self.expires_at,
        })
    }
}

/// Sends `pending` until DynamoDB has processed all of it (batch calls may leave some for later
/// under load), backing off between rounds; gives up, as throttled, after a bounded number.
async fn until_processed<T, F, Fut>(
    operation: &str,
    mut pending: Vec<T>,
    mut send: F,
) -> Result<Vec<Item>, UpstreamError>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Item>, Vec<T>), UpstreamError>>,
{
    let mut done = Vec::new();
    for round in 0..UNPROCESSED_ROUNDS {
        let (items, left) = send(pending).await?;
        done.extend(items);
        if left.is_empty() {
            return Ok(done);
        }
        pending = left;
        tokio::time::sleep(Duration::from_millis(25 << round)).await;
    }
    Err(UpstreamError::new(
        Service::DynamoDb,
        UpstreamKind::Throttled,
        format!("{operation} kept leaving work unprocessed"),
    ))
}

/// A write that names something the directory does not have.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0} does not exist")]
    Missing(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// The directory table.
#[derive(Clone)]
pub struct DynamoDirectory {
    client: Client,
    table: String,
}

impl DynamoDirectory {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, k: (String, String)) -> Result<Option<Item>, UpstreamError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(k)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(out.item)
    }

    async fn put(&self, item: Item) -> Result<(), UpstreamError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(())
    }

    /// All items of one partition (optionally only sort keys with a prefix), every page.
    async fn partition(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
    ) -> Result<Vec<Item>, UpstreamError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_values(":pk", AttributeValue::S(pk));
        query = match sk_prefix {
            Some(prefix) => query
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned())),
            None => query.key_condition_expression("PK = :pk"),
        };
        query
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))
    }

    /// BatchGetItem over any number of keys, in chunks, retrying what DynamoDB leaves unprocessed.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, UpstreamError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let items = until_processed("BatchGetItem", chunk.to_vec(), |pending| async move {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| upstream(Service::DynamoDb, e))?;
                let items = out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default();
                let left = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                Ok((items, left))
            })
            .await?;
            found.extend(items);
        }
        Ok(found)
    }

    /// BatchWriteItem of any number of puts, in chunks, retrying what DynamoDB leaves unprocessed.
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), UpstreamError> {
        for chunk in items.chunks(BATCH_WRITE_MAX) {
            let requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_, UpstreamError>>()?;
            until_processed("BatchWriteItem", requests, |pending| async move {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| upstream(Service::DynamoDb, e))?;
                let left = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                Ok((Vec::new(), left))
            })
            .await?;
        }
        Ok(())
    }

    fn account_item(account: &Account) -> Result<Item, UpstreamError> {
        let (pk, sk) = keys::account(&account.id);
        to_item(&Keyed {
            pk,
            sk,
            gsi1pk: Some("ACCOUNTS".into()),
            gsi1sk: Some(format!("ACCOUNT#{}", account.id)),
            item: "account".into(),
            body: account,
        })
    }

    fn target_item(target: &Target) -> Result<Item, UpstreamError> {
        let (pk, sk) = keys::target(&target.name);
        to_item(&Keyed {
            pk,
            sk,
            gsi1pk: Some(format!("ACCOUNT#{}", target.account)),
            gsi1sk: Some(keys::target_in_account(target.level, &target.name)),
            item: "target".into(),
            body: target,
        })
    }

    fn user_item(user: &User) -> Result<Item, UpstreamError> {
        let (pk, sk) = keys::user(&user.name);
        to_item(&Keyed {
            pk,
            sk,
            gsi1pk: None,
            gsi1sk: None,
            item: "user".into(),
            body: user,
        })
    }

    pub async fn put_account(&self, account: &Account) -> Result<(), UpstreamError> {
        self.put(Self::account_item(account)?).await
    }

    pub async fn account(&self, id: &AccountId) -> Result<Option<Account>, UpstreamError> {
        self.get(keys::account(id))
            .await?
            .map(|item| from_item::<Keyed<Account>>(item, "account").map(|k| k.body))
            .transpose()
    }

    /// Stores a target; its account must already exist.
    pub async fn put_target(&self, target: &Target) -> Result<(), WriteError> {
        if self.account(&target.account).await?.is_none() {
            return Err(WriteError::Missing(format!("account {}", target.account)));
        }
        Ok(self.put(Self::target_item(target)?).await?)
    }

    pub async fn put_user(&self, user: &User) -> Result<(), UpstreamError> {
        self.put(Self::user_item(user)?).await
    }

    /// Stores many users at once (imports, and tests that need a large directory).
    pub async fn put_users(&self, users: &[User]) -> Result<(), UpstreamError> {
        let items = users
            .iter()
            .map(Self::user_item)
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_put(items).await
    }

    pub async fn put_group(
        &self,
        group: &GroupName,
        description: Option<&str>,
    ) -> Result<(), UpstreamError> {
        let (pk, sk) = keys::group(group);
        self.put(to_item(&Keyed {
            pk,
            sk,
            gsi1pk: None,
            gsi1sk: None,
            item: "group".into(),
            body: GroupBody {
                group: group.clone(),
                description: description.map(str::to_owned),
            },
        })?)
        .await
    }

    /// Adds a user to a group; both must exist.
    pub async fn add_member(&self, user: &UserName, group: &GroupName) -> Result<(), WriteError> {
        let (u, g) = futures_util::future::try_join(
            self.get(keys::user(user)),
            self.get(keys::group(group)),
        )
        .await?;
        if u.is_none() {
            return Err(WriteError::Missing(format!("user {user}")));
        }
        if g.is_none() {
            return Err(WriteError::Missing(format!("group {group}")));
        }
        let (pk, sk) = keys::membership(user, group);
        Ok(self
            .put(to_item(&Keyed {
                pk,
                sk,
                gsi1pk: Some(format!("GROUP#{group}")),
                gsi1sk: Some(format!("MEMBER#{user}")),
                item: "membership".into(),
                body: MembershipBody {
                    user: user.clone(),
                    group: group.clone(),
                },
            })?)
            .await?)
    }

    /// Stores a grant. A target grant must name an existing target; a cascade an existing account.
    pub async fn put_grant(&self, grant: &Grant) -> Result<(), WriteError> {
        let (account, target, max_level) = match &grant.scope {
            GrantScope::Target(name) => {
                let target = self
                    .target(name)
                    .await?
                    .ok_or_else(|| WriteError::Missing(format!("target {name}")))?;
                (target.account, Some(name.clone()), None)
            }
            GrantScope::Account { account, max_level } => {
                if self.account(account).await?.is_none() {
                    return Err(WriteError::Missing(format!("account {account}")));
                }
                (account.clone(), None, Some(*max_level))
            }
        };
        let (principal_kind, principal) = match &grant.principal {
            Principal::User(u) => (PrincipalKind::User, u.to_string()),
            Principal::Group(g) => (PrincipalKind::Group, g.to_string()),
        };
        let pk = keys::principal(&grant.principal);
        let sk = keys::grant_sk(&grant.scope);
        let gsi1sk = format!("GRANT#{pk}#{sk}");
        Ok(self
            .put(to_item(&Keyed {
                pk,
                sk,
                gsi1pk: Some(format!("ACCOUNT#{account}")),
                gsi1sk: Some(gsi1sk),
                item: "grant".into(),
                body: GrantBody {
                    principal_kind,
                    principal,
                    target,
                    account,
                    max_level,
                    expires_at: grant.expires_at,
                },
            })?)
            .await?)
    }

    pub async fn put_api_token(&self, record: &ApiTokenRecord) -> Result<(), UpstreamError> {
        let (pk, sk) = keys::token(&record.id);
        self.put(to_item(&Keyed {
            pk,
            sk,
            gsi1pk: Some(format!("USER#{}", record.user)),
            gsi1sk: Some(format!("TOKEN#{}", record.id)),
            item: "api_token".into(),
            body: record,
        })?)
        .await
    }

    /// Revokes a token at once (reads are strongly consistent, so its next use fails).
    pub async fn revoke_api_token(&self, id: &TokenId) -> Result<(), WriteError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::token(id))))
            .update_expression("SET revoked = :yes")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == Some("ConditionalCheckFailedException") => {
                Err(WriteError::Missing(format!("API token {id}")))
            }
            Err(e) => Err(upstream(Service::DynamoDb, e).into()),
        }
    }

    /// A user's API tokens (their records: ids, dates, labels; never a secret).
    pub async fn api_tokens_of(
        &self,
        user: &UserName,
    ) -> Result<Vec<ApiTokenRecord>, UpstreamError> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}")))
            .expression_attribute_values(":prefix", AttributeValue::S("TOKEN#".into()))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        items
            .into_iter()
            .map(|item| from_item::<Keyed<ApiTokenRecord>>(item, "api token").map(|k| k.body))
            .collect()
    }

    fn grants_from(items: Vec<Item>) -> Result<Vec<Grant>, UpstreamError> {
        items
            .into_iter()
            .map(|item| {
                from_item::<Keyed<GrantBody>>(item, "grant")?
                    .body
                    .into_grant()
            })
            .collect()
    }

    fn targets_from(items: Vec<Item>) -> Result<Vec<Target>, UpstreamError> {
        items
            .into_iter()
            .map(|item| from_item::<Keyed<Target>>(item, "target").map(|k| k.body))
            .collect()
    }
}

#[async_trait]
impl Directory for DynamoDirectory {
    async fn api_token(&self, id: &TokenId) -> Result<Option<ApiTokenRecord>, UpstreamError> {
        self.get(keys::token(id))
            .await?
            .map(|item| from_item::<Keyed<ApiTokenRecord>>(item, "api token").map(|k| k.body))
            .transpose()
    }

    async fn user_profile(&self, user: &UserName) -> Result<Option<UserProfile>, UpstreamError> {
        let items = self.partition(keys::user(user).0, None).await?;
        let mut profile = None;
        let mut groups = Vec::new();
        let mut grant_items = Vec::new();
        for item in items {
            let sk = sort_key(&item);
            if sk == "PROFILE" {
                profile = Some(from_item::<Keyed<User>>(item, "user")?.body);
            } else if sk.starts_with("MEMBER#") {
                groups.push(
                    from_item::<Keyed<MembershipBody>>(item, "membership")?
                        .body
                        .group,
                );
            } else if sk.starts_with("GRANT#") {
                grant_items.push(item);
            }
        }
        let Some(user) = profile else {
            return Ok(None);
        };
        Ok(Some(UserProfile {
            user,
            groups,
            grants: Self::grants_from(grant_items)?,
        }))
    }

    async fn target(&self, name: &TargetName) -> Result<Option<Target>, UpstreamError> {
        self.get(keys::target(name))
            .await?
            .map(|item| from_item::<Keyed<Target>>(item, "target").map(|k| k.body))
            .transpose()
    }

    async fn group_grants_for(
        &self,
        groups: &[GroupName],
        target: &Target,
    ) -> Result<Vec<Grant>, UpstreamError> {
        let wanted = groups
            .iter()
            .flat_map(|g| {
                let p = Principal::Group(g.clone());
                [
                    key(keys::grant_on_target(&p, &target.name)),
                    key(keys::grant_on_account(&p, &target.account)),
                ]
            })
            .collect();
        Self::grants_from(self.batch_get(wanted).await?)
    }

    async fn group_grants(&self, groups: &[GroupName]) -> Result<Vec<Grant>, UpstreamError> {
        let per_group = try_join_all(groups.iter().map(|g| {
            self.partition(
                keys::principal(&Principal::Group(g.clone())),
                Some("GRANT#"),
            )
        }))
        .await?;
        Self::grants_from(per_group.into_iter().flatten().collect())
    }

    async fn targets(&self, names: &[TargetName]) -> Result<Vec<Target>, UpstreamError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = names.iter().map(|n| key(keys::target(n))).collect();
        Self::targets_from(self.batch_get(wanted).await?)
    }

    async fn account_targets(
        &self,
        account: &AccountId,
        max_level: Level,
    ) -> Result<Vec<Target>, UpstreamError> {
        let (from, to) = keys::targets_up_to(max_level);
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ACCOUNT#{account}")))
            .expression_attribute_values(":from", AttributeValue::S(from))
            .expression_attribute_values(":to", AttributeValue::S(to))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Self::targets_from(items)
    }
}
