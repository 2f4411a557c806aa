//! The audit log in DynamoDB: one item per request, written once (by the ledger), with a stream
//! for notifications.
//!
//! Keyed by `id` (the request id). Secondary indexes answer "what did this user do", "who holds
//! this access key" and "what happened in this account", in time order, without a scan:
//! `by_actor` (actor, at_ms), `by_access_key` (access_key_id, at_ms), `by_account` (account, at_ms).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::admin::store::{AuditQuery, AuditSearch, Page, PageRequest};
use cooper_core::audit::AuditRecord;
use cooper_core::ports::{Service, UpstreamError};

use crate::error::{corrupt, upstream};
use crate::items::{decode_cursor, encode_cursor};

pub const BY_ACTOR: &str = "by_actor";
pub const BY_ACCESS_KEY: &str = "by_access_key";
pub const BY_ACCOUNT: &str = "by_account";

/// The audit item of a record: its fields, and `at_ms` for the time-ordered indexes.
pub(crate) fn record_item(
    record: &AuditRecord,
) -> Result<HashMap<String, AttributeValue>, UpstreamError> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(record).map_err(|e| {
        corrupt(
            Service::DynamoDb,
            format!("could not encode an audit record: {e}"),
        )
    })?;
    let at_ms = record.at.unix_timestamp_nanos() / 1_000_000;
    item.insert("at_ms".into(), AttributeValue::N(at_ms.to_string()));
    Ok(item)
}

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
impl AuditSearch for DynamoAuditLog {
    async fn search(
        &self,
        query: &AuditQuery,
        page: &PageRequest,
        newest_first: bool,
    ) -> Result<Page<AuditRecord>, UpstreamError> {
        let (index, attribute, value) = match query {
            AuditQuery::AccessKey(k) => (BY_ACCESS_KEY, "access_key_id", k.clone()),
            AuditQuery::Actor(a) => (BY_ACTOR, "actor", a.clone()),
            AuditQuery::Account(a) => (BY_ACCOUNT, "account", a.to_string()),
        };
        let start = decode_cursor(
            page.cursor.as_deref(),
            &["id", attribute, "at_ms"],
            (attribute, &value),
        )?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attribute)
            .expression_attribute_values(":v", AttributeValue::S(value))
            .scan_index_forward(!newest_first)
            .limit(i32::from(page.limit))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|e| {
                    corrupt(
                        Service::DynamoDb,
                        format!("an audit record is unreadable: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<AuditRecord>, _>>()?;
        Ok(Page {
            items,
            cursor: encode_cursor(out.last_evaluated_key),
        })
    }
}
