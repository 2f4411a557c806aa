//! Users' authentication factors in the directory table, apart from their profiles:
//! partition `AUTH#<user>`, items `TOTP`, `TOTP_PENDING`, `PASSWORD` and `GUARD` (failures and
//! lockout). One Query reads them all; each claim is one conditional write.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use cooper_core::model::Sealed;
use cooper_core::names::UserName;
use cooper_core::password::PasswordHash;
use cooper_core::ports::{
    AuthFactors, FactorStore, PendingTotp, Service, StepClaim, TotpEnrollment, UpstreamError,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{code_of, corrupt, upstream};
use crate::items::{Item, Keyed, from_item, key, sort_key, to_item};

const TOTP: &str = "TOTP";
const PENDING: &str = "TOTP_PENDING";
const PASSWORD: &str = "PASSWORD";
const GUARD: &str = "GUARD";

fn partition(user: &UserName) -> String {
    format!("AUTH#{user}")
}

fn item_key(user: &UserName, sk: &str) -> std::collections::HashMap<String, AttributeValue> {
    key((partition(user), sk.to_owned()))
}

#[derive(Serialize, Deserialize)]
struct TotpBody {
    sealed: Sealed,
    last_step: u64,
    #[serde(with = "time::serde::rfc3339")]
    enrolled_at: OffsetDateTime,
}

#[derive(Serialize, Deserialize)]
struct PendingBody {
    sealed: Sealed,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// DynamoDB's TTL removes forgotten enrollments.
    ttl: i64,
}

#[derive(Serialize, Deserialize)]
struct PasswordBody {
    hash: String,
    #[serde(with = "time::serde::rfc3339")]
    set_at: OffsetDateTime,
}

/// Claiming a step: only a later step than the last one claimed, and only for an enrollment.
const CLAIM: &str = "SET last_step = :step";
const CLAIM_CONDITION: &str = "attribute_exists(PK) AND last_step < :step";

#[derive(Serialize, Deserialize, Default)]
struct GuardBody {
    #[serde(default)]
    failures: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    locked_until: Option<OffsetDateTime>,
}

/// A conditional check failed, alone or inside a transaction.
fn condition_failed<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(
        code_of(e),
        Some("ConditionalCheckFailedException" | "TransactionCanceledException")
    )
}

#[derive(Clone)]
pub struct DynamoFactorStore {
    client: Client,
    table: String,
}

impl DynamoFactorStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn update(
        &self,
        user: &UserName,
        sk: &str,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(item_key(user, sk)))
    }
}

#[async_trait]
impl FactorStore for DynamoFactorStore {
    async fn factors(&self, user: &UserName) -> Result<AuthFactors, UpstreamError> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(partition(user)))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        let mut factors = AuthFactors::default();
        for item in items {
            match sort_key(&item) {
                TOTP => {
                    let b = from_item::<Keyed<TotpBody>>(item, "TOTP enrollment")?.body;
                    factors.totp = Some(TotpEnrollment {
                        sealed: b.sealed,
                        last_step: b.last_step,
                        enrolled_at: b.enrolled_at,
                    });
                }
                PENDING => {
                    let b = from_item::<Keyed<PendingBody>>(item, "pending TOTP enrollment")?.body;
                    factors.pending = Some(PendingTotp {
                        sealed: b.sealed,
                        expires_at: b.expires_at,
                    });
                }
                PASSWORD => {
                    let b = from_item::<Keyed<PasswordBody>>(item, "password")?.body;
                    factors.password = Some(PasswordHash::from_stored(b.hash));
                }
                GUARD => {
                    let b = from_item::<Keyed<GuardBody>>(item, "lockout state")?.body;
                    factors.failures = b.failures;
                    factors.locked_until = b.locked_until;
                }
                _ => {}
            }
        }
        Ok(factors)
    }

    async fn put_pending_totp(
        &self,
        user: &UserName,
        pending: &PendingTotp,
    ) -> Result<(), UpstreamError> {
        let body = PendingBody {
            sealed: pending.sealed.clone(),
            expires_at: pending.expires_at,
            ttl: pending.expires_at.unix_timestamp() + 86_400,
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&Keyed::plain(
                (partition(user), PENDING.into()),
                "totp_pending",
                body,
            ))?))
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(())
    }

    async fn activate_totp(
        &self,
        user: &UserName,
        enrollment: &TotpEnrollment,
    ) -> Result<StepClaim, UpstreamError> {
        let body = TotpBody {
            sealed: enrollment.sealed.clone(),
            last_step: enrollment.last_step,
            enrolled_at: enrollment.enrolled_at,
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&Keyed::plain(
                (partition(user), TOTP.into()),
                "totp",
                body,
            ))?))
            .build()
            .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))?;
        // Only the pending secret that was checked may become active: a second enrollment
        // started meanwhile cancels this one.
        let consume_pending = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(item_key(user, PENDING)))
            .condition_expression("sealed = :sealed")
            .expression_attribute_values(
                ":sealed",
                AttributeValue::S(enrollment.sealed.as_str().to_owned()),
            )
            .build()
            .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().delete(consume_pending).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(StepClaim::Accepted),
            Err(e) if condition_failed(&e) => Ok(StepClaim::Replayed),
            Err(e) => Err(upstream(Service::DynamoDb, e)),
        }
    }

    async fn claim_step(
        &self,
        user: &UserName,
        step: u64,
        clear_failures: bool,
    ) -> Result<StepClaim, UpstreamError> {
        let step = AttributeValue::N(step.to_string());
        if clear_failures {
            let built = |b: aws_sdk_dynamodb::types::builders::UpdateBuilder| {
                b.build()
                    .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))
            };
            let claim = built(
                self.update(user, TOTP)
                    .update_expression(CLAIM)
                    .condition_expression(CLAIM_CONDITION)
                    .expression_attribute_values(":step", step),
            )?;
            let clear = built(
                self.update(user, GUARD)
                    .update_expression("SET failures = :zero")
                    .expression_attribute_values(":zero", AttributeValue::N("0".into())),
            )?;
            match self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(claim).build())
                .transact_items(TransactWriteItem::builder().update(clear).build())
                .send()
                .await
            {
                Ok(_) => Ok(StepClaim::Accepted),
                Err(e) if condition_failed(&e) => Ok(StepClaim::Replayed),
                Err(e) => Err(upstream(Service::DynamoDb, e)),
            }
        } else {
            match self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key(user, TOTP)))
                .update_expression(CLAIM)
                .condition_expression(CLAIM_CONDITION)
                .expression_attribute_values(":step", step)
                .send()
                .await
            {
                Ok(_) => Ok(StepClaim::Accepted),
                Err(e) if condition_failed(&e) => Ok(StepClaim::Replayed),
                Err(e) => Err(upstream(Service::DynamoDb, e)),
            }
        }
    }

    async fn record_failure(
        &self,
        user: &UserName,
        limit: u32,
        until: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, UpstreamError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key(user, GUARD)))
            .update_expression("ADD failures :one SET #item = :item")
            .expression_attribute_names("#item", "item")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":item", AttributeValue::S("guard".into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        let failures = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("failures"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        if failures < limit {
            return Ok(None);
        }
        let locked_until = until
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))?;
        let lock = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key(user, GUARD)))
            .update_expression("SET locked_until = :until, failures = :zero")
            .condition_expression("failures >= :limit")
            .expression_attribute_values(":until", AttributeValue::S(locked_until))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .send()
            .await;
        match lock {
            Ok(_) => Ok(Some(until)),
            // A concurrent failure set the lock first.
            Err(e) if condition_failed(&e) => Ok(Some(until)),
            Err(e) => Err(upstream(Service::DynamoDb, e)),
        }
    }

    async fn set_password(
        &self,
        user: &UserName,
        hash: &PasswordHash,
        at: OffsetDateTime,
    ) -> Result<(), UpstreamError> {
        let body = PasswordBody {
            hash: hash.as_str().to_owned(),
            set_at: at,
        };
        let item = to_item(&Keyed::plain(
            (partition(user), PASSWORD.into()),
            "password",
            body,
        ))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(())
    }

    async fn reset_totp(&self, user: &UserName) -> Result<(), UpstreamError> {
        let delete = |sk: &str| {
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(item_key(user, sk)))
                .build()
                .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))
        };
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete(TOTP)?).build())
            .transact_items(
                TransactWriteItem::builder()
                    .delete(delete(PENDING)?)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(())
    }
}
