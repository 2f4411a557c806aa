//! The admin port over DynamoDB: versioned reads, paginated lists, and changes applied together
//! with their audit record in one TransactWriteItems, so a change is never left unaudited nor an
//! audit record left without its change.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::result::SdkError;
use cooper_core::admin::scope::AdminGrant;
use cooper_core::admin::store::{
    ChangeError, DirectoryAdmin, Expect, Mutation, Page, PageRequest, Reference, Versioned,
};
use cooper_core::audit::AuditRecord;
use cooper_core::model::{Account, Grant, Group, Principal, Target, User};
use cooper_core::names::{AccountId, GroupName, Level, TargetName, UserName};
use cooper_core::ports::{Directory, Service, UpstreamError};
use cooper_core::token::{ApiTokenRecord, TokenId};

use crate::audit::record_item;
use crate::directory::DynamoDirectory;
use crate::error::{corrupt, upstream};
use crate::items::{self, GSI1, Item, Keyed, MembershipBody, from_item, key, keys, versioned};

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;
const FACTOR_ITEMS: [&str; 4] = ["TOTP", "TOTP_PENDING", "PASSWORD", "GUARD"];

#[derive(Clone)]
pub struct DynamoAdmin {
    directory: DynamoDirectory,
    audit_table: String,
}

impl DynamoAdmin {
    pub fn new(directory: DynamoDirectory, audit_table: impl Into<String>) -> Self {
        Self {
            directory,
            audit_table: audit_table.into(),
        }
    }

    fn table(&self) -> &str {
        self.directory.table()
    }

    fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> ChangeError {
        corrupt(Service::DynamoDb, e.to_string()).into()
    }

    fn put(
        &self,
        item: Item,
        condition: Option<(&str, Option<u64>)>,
    ) -> Result<TransactWriteItem, ChangeError> {
        let mut put = Put::builder().table_name(self.table()).set_item(Some(item));
        if let Some((expression, version)) = condition {
            put = put.condition_expression(expression);
            if let Some(v) = version {
                put = put.expression_attribute_values(":v", AttributeValue::N(v.to_string()));
            }
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(Self::build_error)?)
            .build())
    }

    fn delete(
        &self,
        k: (String, String),
        condition: Option<(&str, Option<u64>)>,
    ) -> Result<TransactWriteItem, ChangeError> {
        let mut delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key(k)));
        if let Some((expression, version)) = condition {
            delete = delete.condition_expression(expression);
            if let Some(v) = version {
                delete = delete.expression_attribute_values(":v", AttributeValue::N(v.to_string()));
            }
        }
        Ok(TransactWriteItem::builder()
            .delete(delete.build().map_err(Self::build_error)?)
            .build())
    }

    fn exists(&self, k: (String, String)) -> Result<TransactWriteItem, ChangeError> {
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key(k)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(Self::build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A put of a versioned item: new (version 1) or replacing the version it read.
    fn put_versioned(
        &self,
        build: impl Fn(u64) -> Result<Item, UpstreamError>,
        expect: Expect,
    ) -> Result<TransactWriteItem, ChangeError> {
        match expect {
            Expect::Absent => self.put(build(1)?, Some(("attribute_not_exists(PK)", None))),
            Expect::Version(v) => self.put(build(v + 1)?, Some(("version = :v", Some(v)))),
            Expect::Present => Err(corrupt(
                Service::DynamoDb,
                "a replacing put must name the version it read",
            )
            .into()),
        }
    }

    fn delete_versioned(
        &self,
        k: (String, String),
        expect: Expect,
    ) -> Result<TransactWriteItem, ChangeError> {
        match expect {
            Expect::Absent => self.delete(k, None),
            Expect::Version(v) => self.delete(k, Some(("version = :v", Some(v)))),
            Expect::Present => self.delete(k, Some(("attribute_exists(PK)", None))),
        }
    }

    /// The transaction items of one change.
    fn translate(&self, change: &Mutation) -> Result<Vec<TransactWriteItem>, ChangeError> {
        const NEW: Option<(&str, Option<u64>)> = Some(("attribute_not_exists(PK)", None));
        const EXISTING: Option<(&str, Option<u64>)> = Some(("attribute_exists(PK)", None));
        let one = |t: Result<TransactWriteItem, ChangeError>| t.map(|t| vec![t]);
        match change {
            Mutation::Require(r) => one(self.exists(match r {
                Reference::Account(a) => keys::account(a),
                Reference::Target(t) => keys::target(t),
                Reference::User(u) => keys::user(u),
                Reference::Group(g) => keys::group(g),
            })),
            Mutation::PutAccount(a, expect) => {
                one(self.put_versioned(|v| items::account_item(a, v), *expect))
            }
            Mutation::DeleteAccount(id, expect) => {
                one(self.delete_versioned(keys::account(id), *expect))
            }
            Mutation::PutTarget(t, expect) => {
                one(self.put_versioned(|v| items::target_item(t, v), *expect))
            }
            Mutation::DeleteTarget(name, expect) => {
                one(self.delete_versioned(keys::target(name), *expect))
            }
            Mutation::PutUser(u, expect) => {
                one(self.put_versioned(|v| items::user_item(u, v), *expect))
            }
            Mutation::DeleteUser(name, expect) => {
                one(self.delete_versioned(keys::user(name), *expect))
            }
            Mutation::PutGroup(g, expect) => {
                one(self.put_versioned(|v| items::group_item(g, v), *expect))
            }
            Mutation::DeleteGroup(name, expect) => {
                one(self.delete_versioned(keys::group(name), *expect))
            }
            Mutation::AddMember(u, g) => one(self.put(items::membership_item(u, g)?, NEW)),
            Mutation::RemoveMember(u, g) => one(self.delete(keys::membership(u, g), EXISTING)),
            Mutation::PutGrant { grant, account } => {
                one(self.put(items::grant_item(grant, account)?, NEW))
            }
            Mutation::DeleteGrant(g) => {
                one(self.delete(keys::grant(&g.principal, &g.scope), EXISTING))
            }
            Mutation::PutAdminGrant(g) => one(self.put(items::admin_grant_item(g)?, NEW)),
            Mutation::DeleteAdminGrant(g) => one(self.delete(keys::admin_grant(g), EXISTING)),
            Mutation::PutToken(record) => one(self.put(items::token_item(record)?, NEW)),
            Mutation::RevokeToken(id) => {
                let update = Update::builder()
                    .table_name(self.table())
                    .set_key(Some(key(keys::token(id))))
                    .update_expression("SET revoked = :yes")
                    .condition_expression("attribute_exists(PK)")
                    .expression_attribute_values(":yes", AttributeValue::Bool(true))
                    .build()
                    .map_err(Self::build_error)?;
                Ok(vec![TransactWriteItem::builder().update(update).build()])
            }
            Mutation::DeleteToken(id) => one(self.delete(keys::token(id), None)),
            Mutation::DeleteFactors(user) => FACTOR_ITEMS
                .iter()
                .map(|sk| self.delete((format!("AUTH#{user}"), (*sk).to_owned()), None))
                .collect(),
        }
    }

    /// Which transaction item made DynamoDB cancel, from its cancellation reasons.
    fn cancelled_at(
        e: &SdkError<
            TransactWriteItemsError,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    ) -> Option<usize> {
        let TransactWriteItemsError::TransactionCanceledException(cancelled) =
            e.as_service_error()?
        else {
            return None;
        };
        cancelled
            .cancellation_reasons()
            .iter()
            .position(|r| r.code().is_some_and(|c| c != "None"))
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
    async fn apply(&self, changes: &[Mutation], audit: &AuditRecord) -> Result<(), ChangeError> {
        let mut transaction = Vec::new();
        let mut owner = Vec::new();
        for (index, change) in changes.iter().enumerate() {
            for item in self.translate(change)? {
                transaction.push(item);
                owner.push(index);
            }
        }
        let record = Put::builder()
            .table_name(&self.audit_table)
            .set_item(Some(record_item(audit)?))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(Self::build_error)?;
        transaction.push(TransactWriteItem::builder().put(record).build());
        owner.push(changes.len());
        if transaction.len() > MAX_TRANSACTION_ITEMS {
            return Err(ChangeError::TooLarge);
        }
        match self
            .directory
            .client()
            .transact_write_items()
            .set_transact_items(Some(transaction))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match Self::cancelled_at(&e) {
                Some(position) => Err(ChangeError::Conflict {
                    index: owner.get(position).copied().unwrap_or(0),
                }),
                None => Err(upstream(Service::DynamoDb, e).into()),
            },
        }
    }

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
