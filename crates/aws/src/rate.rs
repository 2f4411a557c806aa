//! Request counts in the directory table: one item per key and window (`RATE#<key>`,
//! `WINDOW#<start>`), counted by one conditional UpdateItem and removed by TTL after the window.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::ports::{RequestCounter, Service, UpstreamError};

use crate::error::{code_of, upstream};
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
    ) -> Result<bool, UpstreamError> {
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key((
                format!("RATE#{counted}"),
                format!("WINDOW#{window_start}"),
            ))))
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
            Ok(_) => Ok(true),
            Err(e) if code_of(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(upstream(Service::DynamoDb, e)),
        }
    }
}
