//! The audit log in DynamoDB: one item per request, written once, with a stream for notifications.
//!
//! Keyed by `id` (the request id). Secondary indexes answer "what did this user do", "who holds
//! this access key" and "what happened in this account", newest first, without a scan:
//! `by_actor` (actor, at_ms), `by_access_key` (access_key_id, at_ms), `by_account` (account, at_ms).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::audit::AuditRecord;
use cooper_core::ports::{AuditLog, Service, UpstreamError, UpstreamKind};

use crate::error::{code_of, corrupt, upstream};

pub const BY_ACTOR: &str = "by_actor";
pub const BY_ACCESS_KEY: &str = "by_access_key";
pub const BY_ACCOUNT: &str = "by_account";

#[derive(Clone)]
pub struct DynamoAuditLog {
    client: Client,
    table: String,
}

impl DynamoAuditLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl AuditLog for DynamoAuditLog {
    async fn append(&self, record: &AuditRecord) -> Result<(), UpstreamError> {
        let mut item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(record).map_err(|e| {
                corrupt(
                    Service::DynamoDb,
                    format!("could not encode an audit record: {e}"),
                )
            })?;
        let at_ms = record.at.unix_timestamp_nanos() / 1_000_000;
        item.insert("at_ms".into(), AttributeValue::N(at_ms.to_string()));
        // PutItem returns once the write is durable; the condition makes a record immutable
        // (a replayed request id cannot overwrite what was recorded).
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(|e| {
                if code_of(&e) == Some("ConditionalCheckFailedException") {
                    UpstreamError::new(
                        Service::DynamoDb,
                        UpstreamKind::Refused,
                        format!("an audit record with id {} already exists", record.id),
                    )
                } else {
                    upstream(Service::DynamoDb, e)
                }
            })?;
        Ok(())
    }
}
