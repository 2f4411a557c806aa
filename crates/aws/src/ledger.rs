//! The ledger over DynamoDB: a list of changes and its audit record in one TransactWriteItems
//! (the record into the audit table, the changes into the directory table), so a change is never
//! left unaudited nor an audit record left without its change. A record alone is one
//! conditional PutItem. Every condition a change is written under is here.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use cooper_core::audit::AuditRecord;
use cooper_core::ledger::{Change, ChangeError, Expect, Ledger, ReachGuard, Reference};
use cooper_core::model::GrantOn;
use cooper_core::model::factors::MAX_FAILURES;
use cooper_core::model::requests::RequestState;
use cooper_core::ports::{Service, UpstreamError, UpstreamKind};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::approvals::{approval_item, approval_key};
use crate::audit::record_item;
use crate::error::{code_of, corrupt, upstream};
use crate::factors::{self, CLAIM, CLAIM_CONDITION, GUARD, NOT_LOCKED, PENDING, TOTP, factor_key};
use crate::items::{self, Item, key, key as key_of, keys};
use crate::requests::{Asking, access_asking_item, asking_item, request_item};

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

const NEW: Option<(&str, Option<u64>)> = Some(("attribute_not_exists(PK)", None));
const EXISTING: Option<(&str, Option<u64>)> = Some(("attribute_exists(PK)", None));

#[derive(Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
    audit_table: String,
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> ChangeError {
    corrupt(Service::DynamoDb, e.to_string()).into()
}

/// A one-time mark's partition key (`ONCE#...`: the web console may write these and no other).
fn mark_key(mark: &str) -> String {
    format!("ONCE#{mark}")
}

fn epoch(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::N(at.unix_timestamp().to_string())
}

fn text(value: &impl std::fmt::Display) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>, audit_table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            audit_table: audit_table.into(),
        }
    }

    fn put(
        &self,
        item: Item,
        condition: Option<(&str, Option<u64>)>,
    ) -> Result<TransactWriteItem, ChangeError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expression, version)) = condition {
            put = put.condition_expression(expression);
            if let Some(v) = version {
                put = put.expression_attribute_values(":v", AttributeValue::N(v.to_string()));
            }
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    fn delete(
        &self,
        k: (String, String),
        condition: Option<(&str, Option<u64>)>,
    ) -> Result<TransactWriteItem, ChangeError> {
        let mut delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(k)));
        if let Some((expression, version)) = condition {
            delete = delete.condition_expression(expression);
            if let Some(v) = version {
                delete = delete.expression_attribute_values(":v", AttributeValue::N(v.to_string()));
            }
        }
        Ok(TransactWriteItem::builder()
            .delete(delete.build().map_err(build_error)?)
            .build())
    }

    fn exists(&self, k: (String, String)) -> Result<TransactWriteItem, ChangeError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(k)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn update(&self, k: (String, String)) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(k)))
    }

    fn updated(
        b: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> Result<Vec<TransactWriteItem>, ChangeError> {
        Ok(vec![
            TransactWriteItem::builder()
                .update(b.build().map_err(build_error)?)
                .build(),
        ])
    }

    /// A put of a versioned item: new (version 1) or replacing the version it read.
    fn put_versioned(
        &self,
        build: impl Fn(u64) -> Result<Item, UpstreamError>,
        expect: Expect,
    ) -> Result<TransactWriteItem, ChangeError> {
        match expect {
            Expect::Absent => self.put(build(1)?, NEW),
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
            Expect::Present => self.delete(k, EXISTING),
        }
    }

    /// The transaction items of one change.
    fn translate(&self, change: &Change) -> Result<Vec<TransactWriteItem>, ChangeError> {
        let one = |t: Result<TransactWriteItem, ChangeError>| t.map(|t| vec![t]);
        match change {
            Change::Require(r) => one(self.exists(match r {
                Reference::Account(a) => keys::account(a),
                Reference::Target(t) => keys::target(t),
                Reference::User(u) => keys::user(u),
                Reference::Group(g) => keys::group(g),
            })),
            Change::PutAccount(a, expect) => {
                one(self.put_versioned(|v| items::account_item(a, v), *expect))
            }
            Change::DeleteAccount(id, expect) => {
                one(self.delete_versioned(keys::account(id), *expect))
            }
            Change::PutTarget(t, expect) => {
                one(self.put_versioned(|v| items::target_item(t, v), *expect))
            }
            Change::DeleteTarget(name, expect) => {
                one(self.delete_versioned(keys::target(name), *expect))
            }
            Change::PutUser(u, expect) => {
                one(self.put_versioned(|v| items::user_item(u, v), *expect))
            }
            Change::DeleteUser(name, expect) => {
                one(self.delete_versioned(keys::user(name), *expect))
            }
            Change::PutGroup(g, expect) => {
                one(self.put_versioned(|v| items::group_item(g, v), *expect))
            }
            Change::DeleteGroup(name, expect) => {
                one(self.delete_versioned(keys::group(name), *expect))
            }
            Change::AddMember(u, g) => one(self.put(items::membership_item(u, g)?, NEW)),
            Change::RemoveMember(u, g) => one(self.delete(keys::membership(u, g), EXISTING)),
            Change::PutGrant { grant, account } => {
                one(self.put(items::grant_item(grant, account)?, NEW))
            }
            Change::DeleteGrant(k) => {
                let scope_key = match &k.on {
                    GrantOn::Target(t) => keys::grant_on_target(&k.principal, t),
                    GrantOn::Account(a) => keys::grant_on_account(&k.principal, a),
                };
                one(self.delete(scope_key, EXISTING))
            }
            Change::PutAdminGrant(g) => one(self.put(items::admin_grant_item(g)?, NEW)),
            Change::DeleteAdminGrant(g) => one(self.delete(keys::admin_grant(g), EXISTING)),
            Change::PutToken(record) => one(self.put(items::token_item(record)?, NEW)),
            Change::RevokeToken(id) => Self::updated(
                self.update(keys::token(id))
                    .update_expression("SET revoked = :yes")
                    .condition_expression("attribute_exists(PK)")
                    .expression_attribute_values(":yes", AttributeValue::Bool(true)),
            ),
            Change::DeleteToken(id) => one(self.delete(keys::token(id), None)),
            Change::DeleteFactors(user) => factors::ITEMS
                .iter()
                .map(|sk| self.delete(factor_key(user, sk), None))
                .collect(),
            Change::Reach { key, guard } => {
                let at = |seen: u64| {
                    if seen == 0 {
                        ("attribute_not_exists(#version)", None)
                    } else {
                        ("#version = :seen", Some(AttributeValue::N(seen.to_string())))
                    }
                };
                match *guard {
                    ReachGuard::Unchanged { seen } => {
                        let (condition, value) = at(seen);
                        let check = ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_of(keys::reach(key))))
                            .condition_expression(condition)
                            .expression_attribute_names("#version", "version")
                            .set_expression_attribute_values(
                                value.map(|v| std::collections::HashMap::from([(":seen".to_owned(), v)])),
                            )
                            .build()
                            .map_err(build_error)?;
                        Ok(vec![
                            TransactWriteItem::builder().condition_check(check).build(),
                        ])
                    }
                    ReachGuard::Moves { seen } => {
                        let (condition, value) = at(seen);
                        let mut update = self
                            .update(keys::reach(key))
                            .update_expression("SET #version = :next")
                            .condition_expression(condition)
                            .expression_attribute_names("#version", "version")
                            .expression_attribute_values(
                                ":next",
                                AttributeValue::N((seen + 1).to_string()),
                            );
                        if let Some(v) = value {
                            update = update.expression_attribute_values(":seen", v);
                        }
                        Self::updated(update)
                    }
                    ReachGuard::Bumps => Self::updated(
                        self.update(keys::reach(key))
                            .update_expression("ADD #version :one")
                            .expression_attribute_names("#version", "version")
                            .expression_attribute_values(":one", AttributeValue::N("1".into())),
                    ),
                }
            }
            Change::PutEnrollmentCode(record) => {
                one(self.put(items::enrollment_code_item(record)?, NEW))
            }
            Change::UseEnrollmentCode { id, user, now } => Self::updated(
                self.update(keys::enrollment_code(id))
                    .update_expression("SET used_at = :at")
                    .condition_expression(
                        "attribute_exists(PK) AND #user = :user AND attribute_not_exists(used_at) AND expires_epoch > :now",
                    )
                    .expression_attribute_names("#user", "user")
                    .expression_attribute_values(":user", text(user))
                    .expression_attribute_values(
                        ":at",
                        AttributeValue::S(
                            now.format(&Rfc3339)
                                .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))?,
                        ),
                    )
                    .expression_attribute_values(":now", epoch(*now)),
            ),
            Change::Unlocked {
                user,
                now,
                clear_failures,
            } => {
                let names = |b: aws_sdk_dynamodb::types::builders::UpdateBuilder| {
                    b.expression_attribute_names("#failures", "failures")
                        .expression_attribute_names("#until", "until")
                        .expression_attribute_values(
                            ":limit",
                            AttributeValue::N(MAX_FAILURES.to_string()),
                        )
                        .expression_attribute_values(":now", epoch(*now))
                };
                if *clear_failures {
                    Self::updated(
                        names(self.update(factor_key(user, GUARD)))
                            .update_expression("SET #failures = :zero")
                            .condition_expression(NOT_LOCKED)
                            .expression_attribute_values(":zero", AttributeValue::N("0".into())),
                    )
                } else {
                    let check = ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(factor_key(user, GUARD))))
                        .condition_expression(NOT_LOCKED)
                        .expression_attribute_names("#failures", "failures")
                        .expression_attribute_names("#until", "until")
                        .expression_attribute_values(
                            ":limit",
                            AttributeValue::N(MAX_FAILURES.to_string()),
                        )
                        .expression_attribute_values(":now", epoch(*now))
                        .build()
                        .map_err(build_error)?;
                    Ok(vec![
                        TransactWriteItem::builder().condition_check(check).build(),
                    ])
                }
            }
            Change::ClaimStep { user, step } => Self::updated(
                self.update(factor_key(user, TOTP))
                    .update_expression(CLAIM)
                    .condition_expression(CLAIM_CONDITION)
                    .expression_attribute_values(":step", AttributeValue::N(step.to_string())),
            ),
            Change::PutPendingTotp { user, pending } => {
                one(self.put(factors::pending_item(user, pending)?, None))
            }
            Change::ActivateTotp { user, enrollment } => {
                // Only the pending secret that was checked may become active: a second
                // enrollment started meanwhile cancels this one.
                let consume = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(factor_key(user, PENDING))))
                    .condition_expression("sealed = :sealed")
                    .expression_attribute_values(
                        ":sealed",
                        AttributeValue::S(enrollment.sealed.as_str().to_owned()),
                    )
                    .build()
                    .map_err(build_error)?;
                Ok(vec![
                    self.put(factors::totp_item(user, enrollment)?, None)?,
                    TransactWriteItem::builder().delete(consume).build(),
                ])
            }
            Change::PutPassword { user, hash, at } => {
                one(self.put(factors::password_item(user, hash, *at)?, None))
            }
            Change::OpenApproval(request) => {
                let mut writes = vec![self.put(approval_item(request)?, NEW)?];
                // A pointer for each approver asked, gone a day after the request expires.
                let ttl = request.expires_at.unix_timestamp() + 86_400;
                for principal in &request.approvers {
                    writes.push(self.put(
                        asking_item(
                            Asking::Approval,
                            principal,
                            request.created_at,
                            &request.id,
                            ttl,
                        )?,
                        None,
                    )?);
                }
                Ok(writes)
            }
            Change::Approve { id, approver, now } => {
                let at = now
                    .format(&Rfc3339)
                    .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))?;
                Self::updated(
                    self.update(approval_key(id))
                        .update_expression(
                            "SET #status = :approved, approved_by = :by, approved_at = :at",
                        )
                        .condition_expression("#status = :pending AND expires_epoch > :now")
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_values(":approved", text(&"approved"))
                        .expression_attribute_values(":pending", text(&"pending"))
                        .expression_attribute_values(":by", text(approver))
                        .expression_attribute_values(":at", AttributeValue::S(at))
                        .expression_attribute_values(":now", epoch(*now)),
                )
            }
            Change::PutSessionRevocations {
                user,
                revocations,
                expect,
                keep_until,
            } => one(self.put_versioned(
                |v| items::session_revocations_item(user, revocations, v, *keep_until),
                *expect,
            )),
            Change::RevokeOn {
                holder,
                revoked,
                keep_until,
            } => one(self.put(items::revoked_item(holder, revoked, *keep_until)?, None)),
            Change::OpenAccessRequest(request) => {
                let mut writes = vec![self.put(request_item(request)?, NEW)?];
                for principal in &request.approvers {
                    writes.push(self.put(access_asking_item(principal, request)?, None)?);
                }
                Ok(writes)
            }
            Change::SettleAccessRequest {
                request,
                settlement,
                now,
            } => {
                let from = settlement.from_state();
                // Pending: not lapsed; approved: its access not over.
                let (condition, state) = match from {
                    RequestState::Approved => (
                        "#state = :from AND until_epoch > :now",
                        "approved",
                    ),
                    _ => ("#state = :from AND expires_epoch > :now", "pending"),
                };
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(request_item(&settlement.apply(request, *now))?))
                    .condition_expression(condition)
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":from", text(&state))
                    .expression_attribute_values(":now", epoch(*now))
                    .build()
                    .map_err(build_error)?;
                one(Ok(TransactWriteItem::builder().put(put).build()))
            }
            Change::PutTemporaryGrant { grant, account } => {
                one(self.put(items::temporary_grant_item(grant, account)?, NEW))
            }
            Change::EndTemporaryGrant { user, request } => {
                one(self.delete(keys::temporary_grant(user, request), None))
            }
            Change::Mark {
                key: mark,
                until,
                now,
                payload,
            } => {
                let mut item = HashMap::from([
                    ("PK".to_owned(), AttributeValue::S(mark_key(mark))),
                    ("SK".to_owned(), AttributeValue::S("MARK".to_owned())),
                    ("item".to_owned(), text(&"mark")),
                    ("until_epoch".to_owned(), epoch(*until)),
                    // DynamoDB's TTL removes a mark a day after it stops mattering.
                    (
                        "ttl".to_owned(),
                        AttributeValue::N((until.unix_timestamp() + 86_400).to_string()),
                    ),
                ]);
                if let Some(payload) = payload {
                    item.insert("payload".to_owned(), AttributeValue::S(payload.clone()));
                }
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(PK) OR until_epoch <= :now")
                    .expression_attribute_values(":now", epoch(*now))
                    .build()
                    .map_err(build_error)?;
                one(Ok(TransactWriteItem::builder().put(put).build()))
            }
            Change::ConsumeApproval {
                id,
                requester,
                target,
                now,
            } => Self::updated(
                self.update(approval_key(id))
                    .update_expression("SET #status = :used")
                    .condition_expression(
                        "#status = :approved AND requester = :requester AND target = :target AND expires_epoch > :now",
                    )
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":used", text(&"used"))
                    .expression_attribute_values(":approved", text(&"approved"))
                    .expression_attribute_values(":requester", text(requester))
                    .expression_attribute_values(":target", text(target))
                    .expression_attribute_values(":now", epoch(*now)),
            ),
        }
    }

    /// Which transaction item's condition failed, from the cancellation reasons; `Err` when the
    /// transaction was cancelled for another reason (a conflict with another transaction,
    /// throttling), which a retry can get past.
    fn cancelled_at(
        e: &SdkError<TransactWriteItemsError, HttpResponse>,
    ) -> Option<Result<usize, UpstreamError>> {
        let TransactWriteItemsError::TransactionCanceledException(cancelled) =
            e.as_service_error()?
        else {
            return None;
        };
        let reasons = cancelled.cancellation_reasons();
        if let Some(position) = reasons
            .iter()
            .position(|r| r.code() == Some("ConditionalCheckFailed"))
        {
            return Some(Ok(position));
        }
        let code = reasons
            .iter()
            .filter_map(|r| r.code())
            .find(|c| *c != "None")
            .unwrap_or("unknown");
        Some(Err(UpstreamError::new(
            Service::DynamoDb,
            UpstreamKind::Throttled,
            format!("the transaction was cancelled ({code}); retry"),
        )))
    }

    async fn append(&self, record: &AuditRecord) -> Result<(), ChangeError> {
        // PutItem returns once the write is durable; the condition makes a record immutable
        // (a replayed request id cannot overwrite what was recorded).
        let result = self
            .client
            .put_item()
            .table_name(&self.audit_table)
            .set_item(Some(record_item(record)?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == Some("ConditionalCheckFailedException") => {
                Err(ChangeError::Conflict { index: 0 })
            }
            Err(e) => Err(upstream(Service::DynamoDb, e).into()),
        }
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn commit(&self, changes: &[Change], record: &AuditRecord) -> Result<(), ChangeError> {
        if changes.is_empty() {
            return self.append(record).await;
        }
        let mut transaction = Vec::new();
        let mut owner = Vec::new();
        for (index, change) in changes.iter().enumerate() {
            for item in self.translate(change)? {
                transaction.push(item);
                owner.push(index);
            }
        }
        let audit = Put::builder()
            .table_name(&self.audit_table)
            .set_item(Some(record_item(record)?))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(build_error)?;
        transaction.push(TransactWriteItem::builder().put(audit).build());
        owner.push(changes.len());
        if transaction.len() > MAX_TRANSACTION_ITEMS {
            return Err(ChangeError::TooLarge);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(transaction))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match Self::cancelled_at(&e) {
                Some(Ok(position)) => Err(ChangeError::Conflict {
                    index: owner.get(position).copied().unwrap_or(changes.len()),
                }),
                Some(Err(retry)) => Err(retry.into()),
                None => Err(upstream(Service::DynamoDb, e).into()),
            },
        }
    }

    async fn take_mark(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>, UpstreamError> {
        // One DeleteItem: its condition makes the take single-use, and it returns what it took.
        let taken = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(mark_key(key)))
            .key("SK", AttributeValue::S("MARK".to_owned()))
            .condition_expression("attribute_exists(payload) AND until_epoch > :now")
            .expression_attribute_values(":now", epoch(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match taken {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|a| a.get("payload"))
                .and_then(|p| p.as_s().ok())
                .cloned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(upstream(Service::DynamoDb, e)),
        }
    }
}
