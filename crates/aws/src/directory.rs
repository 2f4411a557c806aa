//! The directory in one DynamoDB table, keyed (see `items`) so that every access decision is a
//! few key lookups: one user's partition holds their profile, memberships and direct grants (one
//! Query); group grants for a target are two known keys per group (one BatchGetItem); an
//! account's targets sorted by level make the cascade a key-range Query. Reads that decide access
//! are strongly consistent, so a revoked grant stops working at once.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use cooper_core::access::UserProfile;
use cooper_core::admin::scope::AdminGrant;
use cooper_core::admin::store::PageRequest;
use cooper_core::model::{Account, Grant, GrantScope, Group, Principal, Target, User};
use cooper_core::names::{AccountId, GroupName, Level, TargetName, UserName};
use cooper_core::ports::{Directory, Service, UpstreamError, UpstreamKind};
use cooper_core::revocation::SessionRevocations;
use cooper_core::revocation::policy::RevokedSessions;
use cooper_core::token::{ApiTokenRecord, EnrollmentCodeRecord, TokenId};
use futures_util::future::try_join_all;

use crate::error::{code_of, corrupt, upstream};
use crate::items::{self, GSI1, Item, Keyed, MembershipBody, from_item, key, keys, sort_key};

/// DynamoDB's BatchGetItem limit.
const BATCH_GET_MAX: usize = 100;
/// DynamoDB's BatchWriteItem limit.
const BATCH_WRITE_MAX: usize = 25;
/// Rounds of retrying unprocessed keys before giving up (each backs off).
const UNPROCESSED_ROUNDS: u32 = 6;

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
        // The chunks go out side by side: a caller in many groups waits no longer.
        let chunks = keys.chunks(BATCH_GET_MAX).map(|chunk| {
            until_processed("BatchGetItem", chunk.to_vec(), |pending| async move {
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
        });
        Ok(try_join_all(chunks).await?.into_iter().flatten().collect())
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

    pub async fn put_account(&self, account: &Account) -> Result<(), UpstreamError> {
        self.put(items::account_item(account, 1)?).await
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
        Ok(self.put(items::target_item(target, 1)?).await?)
    }

    pub async fn put_user(&self, user: &User) -> Result<(), UpstreamError> {
        self.put(items::user_item(user, 1)?).await
    }

    /// Stores many users at once (imports, and tests that need a large directory).
    pub async fn put_users(&self, users: &[User]) -> Result<(), UpstreamError> {
        let items = users
            .iter()
            .map(|u| items::user_item(u, 1))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_put(items).await
    }

    pub async fn put_group(&self, group: &Group) -> Result<(), UpstreamError> {
        self.put(items::group_item(group, 1)?).await
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
        Ok(self.put(items::membership_item(user, group)?).await?)
    }

    /// Stores a grant. A target grant must name an existing target; a cascade an existing account.
    pub async fn put_grant(&self, grant: &Grant) -> Result<(), WriteError> {
        let account = match &grant.scope {
            GrantScope::Target(name) => {
                self.target(name)
                    .await?
                    .ok_or_else(|| WriteError::Missing(format!("target {name}")))?
                    .account
            }
            GrantScope::Account { account, .. } => {
                if self.account(account).await?.is_none() {
                    return Err(WriteError::Missing(format!("account {account}")));
                }
                account.clone()
            }
        };
        Ok(self.put(items::grant_item(grant, &account)?).await?)
    }

    pub async fn put_admin_grant(&self, grant: &AdminGrant) -> Result<(), UpstreamError> {
        self.put(items::admin_grant_item(grant)?).await
    }

    pub async fn put_api_token(&self, record: &ApiTokenRecord) -> Result<(), UpstreamError> {
        self.put(items::token_item(record)?).await
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

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// One page of a GSI1 partition (optionally only sort keys with a prefix).
    pub(crate) async fn index_page(
        &self,
        partition: &str,
        prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<(Vec<Item>, Option<String>), UpstreamError> {
        let start = items::decode_cursor(
            page.cursor.as_deref(),
            &["PK", "SK", "GSI1PK", "GSI1SK"],
            ("GSI1PK", partition),
        )?;
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .limit(i32::from(page.limit))
            .set_exclusive_start_key(start)
            .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()));
        query = match prefix {
            Some(prefix) => query
                .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned())),
            None => query.key_condition_expression("GSI1PK = :pk"),
        };
        let out = query
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok((
            out.items.unwrap_or_default(),
            items::encode_cursor(out.last_evaluated_key),
        ))
    }

    /// Every item of a GSI1 partition with a sort-key prefix (bounded by one entity's items).
    pub(crate) async fn index_all(
        &self,
        partition: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, UpstreamError> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))
    }

    pub(crate) async fn batch_get_items(
        &self,
        keys: Vec<Item>,
    ) -> Result<Vec<Item>, UpstreamError> {
        self.batch_get(keys).await
    }

    pub(crate) async fn get_item(
        &self,
        k: (String, String),
    ) -> Result<Option<Item>, UpstreamError> {
        self.get(k).await
    }

    pub(crate) async fn partition_items(
        &self,
        pk: String,
        prefix: Option<&str>,
    ) -> Result<Vec<Item>, UpstreamError> {
        self.partition(pk, prefix).await
    }

    fn grants_from(items: Vec<Item>) -> Result<Vec<Grant>, UpstreamError> {
        items.into_iter().map(items::read_grant).collect()
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

    async fn enrollment_code(
        &self,
        id: &TokenId,
    ) -> Result<Option<EnrollmentCodeRecord>, UpstreamError> {
        self.get(keys::enrollment_code(id))
            .await?
            .map(|item| {
                from_item::<Keyed<items::EnrollmentCodeBody>>(item, "enrollment code")
                    .map(|k| k.body.record)
            })
            .transpose()
    }

    async fn temporary_grants(&self, user: &UserName) -> Result<Vec<Grant>, UpstreamError> {
        let found = self
            .partition(keys::temporary_grants_of(user), Some("GRANT#"))
            .await?;
        Self::grants_from(found)
    }

    async fn user_profile(&self, user: &UserName) -> Result<Option<UserProfile>, UpstreamError> {
        let found = self.partition(keys::user(user).0, None).await?;
        let mut profile = None;
        let mut groups = Vec::new();
        let mut grants = Vec::new();
        let mut admin_grants = Vec::new();
        for item in found {
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
                grants.push(items::read_grant(item)?);
            } else if sk.starts_with("ADMIN#") {
                admin_grants.push(items::read_admin_grant(item)?);
            }
        }
        let Some(user) = profile else {
            return Ok(None);
        };
        Ok(Some(UserProfile {
            user,
            groups,
            grants,
            admin_grants,
        }))
    }

    async fn group_admin_grants(
        &self,
        groups: &[GroupName],
    ) -> Result<Vec<AdminGrant>, UpstreamError> {
        let per_group = try_join_all(groups.iter().map(|g| {
            self.partition(
                keys::principal(&Principal::Group(g.clone())),
                Some("ADMIN#"),
            )
        }))
        .await?;
        per_group
            .into_iter()
            .flatten()
            .map(items::read_admin_grant)
            .collect()
    }

    async fn session_revocations(
        &self,
        user: &UserName,
    ) -> Result<Option<(SessionRevocations, u64)>, UpstreamError> {
        self.get(keys::session_revocations(user))
            .await?
            .map(|item| items::versioned::<SessionRevocations>(item, "session revocations"))
            .transpose()
    }

    async fn revocations_on(&self, holder: &str) -> Result<Vec<RevokedSessions>, UpstreamError> {
        self.partition(keys::revoked_on(holder), None)
            .await?
            .into_iter()
            .map(|item| {
                from_item::<Keyed<RevokedSessions>>(item, "revoked sessions").map(|k| k.body)
            })
            .collect()
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
        target: &TargetName,
        account: &AccountId,
    ) -> Result<Vec<Grant>, UpstreamError> {
        let wanted = groups
            .iter()
            .flat_map(|g| {
                let p = Principal::Group(g.clone());
                [
                    key(keys::grant_on_target(&p, target)),
                    key(keys::grant_on_account(&p, account)),
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

    async fn accounts_by_id(&self, ids: &[AccountId]) -> Result<Vec<Account>, UpstreamError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = ids.iter().map(|id| key(keys::account(id))).collect();
        self.batch_get(wanted)
            .await?
            .into_iter()
            .map(|item| from_item::<Keyed<Account>>(item, "account").map(|k| k.body))
            .collect()
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
