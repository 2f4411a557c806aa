//! The admin reads over DynamoDB: versioned items and paginated lists (changes go through the
//! ledger, `crate::ledger`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::admin::store::{DirectoryAdmin, Page, PageRequest, Versioned};
use cooper_core::ledger::ReachKey;
use cooper_core::model::{Account, AdminGrant, Grant, Group, Principal, Target, User};
use cooper_core::names::{AccountId, GroupName, Level, TargetName, UserName};
use cooper_core::ports::{Directory, Service, UpstreamError};
use cooper_core::token::{ApiTokenRecord, TokenId};

use crate::directory::DynamoDirectory;
use crate::error::upstream;
use crate::items::{self, GSI1, Item, Keyed, MembershipBody, from_item, keys, versioned};

#[derive(Clone)]
pub struct DynamoAdmin {
    directory: DynamoDirectory,
}

impl DynamoAdmin {
    pub fn new(directory: DynamoDirectory) -> Self {
        Self { directory }
    }

    fn table(&self) -> &str {
        self.directory.table()
    }

    fn page<T>(
        found: (Vec<Item>, Option<String>),
        read: impl Fn(Item) -> Result<T, UpstreamError>,
    ) -> Result<Page<T>, UpstreamError> {
        let (found, cursor) = found;
        Ok(Page {
            items: found.into_iter().map(read).collect::<Result<_, _>>()?,
            cursor,
        })
    }
}

fn read_versioned<T: serde::de::DeserializeOwned>(
    what: &'static str,
) -> impl Fn(Item) -> Result<Versioned<T>, UpstreamError> {
    move |item| versioned::<T>(item, what).map(|(value, version)| Versioned { value, version })
}

fn read_group(item: Item) -> Result<Versioned<Group>, UpstreamError> {
    items::read_group(item).map(|(value, version)| Versioned { value, version })
}

#[async_trait]
impl DirectoryAdmin for DynamoAdmin {
    async fn account(&self, id: &AccountId) -> Result<Option<Versioned<Account>>, UpstreamError> {
        self.directory
            .get_item(keys::account(id))
            .await?
            .map(read_versioned("account"))
            .transpose()
    }

    async fn accounts(
        &self,
        page: &PageRequest,
    ) -> Result<Page<Versioned<Account>>, UpstreamError> {
        Self::page(
            self.directory.index_page("ACCOUNTS", None, page).await?,
            read_versioned("account"),
        )
    }

    async fn target(&self, name: &TargetName) -> Result<Option<Versioned<Target>>, UpstreamError> {
        self.directory
            .get_item(keys::target(name))
            .await?
            .map(read_versioned("target"))
            .transpose()
    }

    async fn targets_of(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<Versioned<Target>>, UpstreamError> {
        Self::page(
            self.directory
                .index_page(&format!("ACCOUNT#{account}"), Some("TARGET#"), page)
                .await?,
            read_versioned("target"),
        )
    }

    async fn top_level(&self, account: &AccountId) -> Result<Option<Level>, UpstreamError> {
        // Targets sort by level within their account: the last one is the highest.
        let out = self
            .directory
            .client()
            .query()
            .table_name(self.table())
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ACCOUNT#{account}")))
            .expression_attribute_values(":prefix", AttributeValue::S("TARGET#".into()))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|item| from_item::<Keyed<Target>>(item, "target").map(|t| t.body.level))
            .transpose()
    }

    async fn highest_targets(
        &self,
        account: &AccountId,
        limit: u16,
    ) -> Result<Vec<Target>, UpstreamError> {
        let out = self
            .directory
            .client()
            .query()
            .table_name(self.table())
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ACCOUNT#{account}")))
            .expression_attribute_values(":prefix", AttributeValue::S("TARGET#".into()))
            .scan_index_forward(false)
            .limit(i32::from(limit))
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<Keyed<Target>>(item, "target").map(|t| t.body))
            .collect()
    }

    async fn reach(&self, key: &ReachKey) -> Result<u64, UpstreamError> {
        Ok(self
            .directory
            .get_item(keys::reach(key))
            .await?
            .and_then(|item| item.get("version").and_then(|v| v.as_n().ok()).cloned())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    async fn user(&self, name: &UserName) -> Result<Option<Versioned<User>>, UpstreamError> {
        self.directory
            .get_item(keys::user(name))
            .await?
            .map(read_versioned("user"))
            .transpose()
    }

    async fn users(&self, page: &PageRequest) -> Result<Page<Versioned<User>>, UpstreamError> {
        Self::page(
            self.directory.index_page("USERS", None, page).await?,
            read_versioned("user"),
        )
    }

    async fn group(&self, name: &GroupName) -> Result<Option<Versioned<Group>>, UpstreamError> {
        self.directory
            .get_item(keys::group(name))
            .await?
            .map(read_group)
            .transpose()
    }

    async fn groups(&self, page: &PageRequest) -> Result<Page<Versioned<Group>>, UpstreamError> {
        Self::page(
            self.directory.index_page("GROUPS", None, page).await?,
            read_group,
        )
    }

    async fn members(&self, group: &GroupName) -> Result<Vec<UserName>, UpstreamError> {
        self.directory
            .index_all(&format!("GROUP#{group}"), "MEMBER#")
            .await?
            .into_iter()
            .map(|item| from_item::<Keyed<MembershipBody>>(item, "membership").map(|m| m.body.user))
            .collect()
    }

    async fn memberships(&self, user: &UserName) -> Result<Vec<GroupName>, UpstreamError> {
        self.directory
            .partition_items(keys::user(user).0, Some("MEMBER#"))
            .await?
            .into_iter()
            .map(|item| {
                from_item::<Keyed<MembershipBody>>(item, "membership").map(|m| m.body.group)
            })
            .collect()
    }

    async fn grants_in(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, UpstreamError> {
        Self::page(
            self.directory
                .index_page(&format!("ACCOUNT#{account}"), Some("GRANT#"), page)
                .await?,
            items::read_grant,
        )
    }

    async fn grants_of(&self, principal: &Principal) -> Result<Vec<Grant>, UpstreamError> {
        self.directory
            .partition_items(keys::principal(principal), Some("GRANT#"))
            .await?
            .into_iter()
            .map(items::read_grant)
            .collect()
    }

    async fn admin_grants(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<AdminGrant>, UpstreamError> {
        let partition = account.map_or_else(|| "ADMINS".to_owned(), |a| format!("ACCOUNT#{a}"));
        self.directory
            .index_all(&partition, "ADMIN#")
            .await?
            .into_iter()
            .map(items::read_admin_grant)
            .collect()
    }

    async fn admin_grants_of(
        &self,
        principal: &Principal,
    ) -> Result<Vec<AdminGrant>, UpstreamError> {
        self.directory
            .partition_items(keys::principal(principal), Some("ADMIN#"))
            .await?
            .into_iter()
            .map(items::read_admin_grant)
            .collect()
    }

    async fn tokens_of(&self, user: &UserName) -> Result<Vec<ApiTokenRecord>, UpstreamError> {
        self.directory.api_tokens_of(user).await
    }

    async fn token(&self, id: &TokenId) -> Result<Option<ApiTokenRecord>, UpstreamError> {
        self.directory.api_token(id).await
    }
}
