//! Request counts in the directory table: one item per key and window (`RATE#<key>`,
//! `WINDOW#<start>`), counted by one conditional UpdateItem and removed by TTL after the window.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use cooper_core::ports::{RequestCounter, Service, UpstreamError};

use crate::error::{code_of, upstream};

/// The prefix of every count's key (what a function's IAM policy may write).
pub const PARTITION_PREFIX: &str = "RATE#";

fn window_key(counted: &str, window_start: i64) -> (String, String) {
    (
        format!("{PARTITION_PREFIX}{counted}"),
        format!("WINDOW#{window_start}"),
    )
}
use crate::items::key;

/// Counts requests in the directory table, atomically across every instance.
pub struct DynamoRequestCounter {
    client: Client,
    table: String,
}

impl DynamoRequestCounter {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn requests_in(item: Option<&std::collections::HashMap<String, AttributeValue>>) -> u32 {
    item.and_then(|a| a.get("requests"))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Kept a little past its window, so that TTL's lag never reopens a window early.
const KEEP_AFTER_WINDOW: i64 = 300;

#[async_trait]
impl RequestCounter for DynamoRequestCounter {
    async fn count(
        &self,
        counted: &str,
        window_start: i64,
        limit: u32,
        window_end: i64,
    ) -> Result<Option<u32>, UpstreamError> {
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(window_key(counted, window_start))))
            .return_values(ReturnValue::UpdatedNew)
            .update_expression("ADD #n :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "requests")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N((window_end + KEEP_AFTER_WINDOW).to_string()),
            )
            .send()
            .await;
        match outcome {
            Ok(out) => Ok(Some(requests_in(out.attributes.as_ref()))),
            Err(e) if code_of(&e) == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(upstream(Service::DynamoDb, e)),
        }
    }

    async fn counted(&self, counted: &str, window_start: i64) -> Result<u32, UpstreamError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(window_key(counted, window_start))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(requests_in(out.item.as_ref()))
    }
}
