//! Following the audit table's DynamoDB stream outside Lambda (`cooper serve`): the records come
//! to the same notifier the audit-notify function runs.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{OperationType, ShardIteratorType};
use cooper_core::notify::StreamRecord;
use cooper_core::ports::{Service, UpstreamError, UpstreamKind};

use crate::error::upstream;

/// Reads new records from every shard of a table's stream, from where it last stopped.
pub struct StreamFollower {
    client: Client,
    stream_arn: String,
    iterators: HashMap<String, Option<String>>,
}

impl StreamFollower {
    /// Follows `table`'s stream, starting from the oldest record it still holds.
    pub async fn new(
        sdk: &aws_config::SdkConfig,
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> Result<Self, UpstreamError> {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        let stream_arn = described
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| {
                UpstreamError::new(
                    Service::DynamoDb,
                    UpstreamKind::Refused,
                    format!("table {table} has no stream"),
                )
            })?;
        Ok(Self {
            client: Client::new(sdk),
            stream_arn,
            iterators: HashMap::new(),
        })
    }

    async fn shards(&self) -> Result<Vec<String>, UpstreamError> {
        let out = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(out
            .stream_description
            .and_then(|d| d.shards)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.shard_id)
            .collect())
    }

    /// The records added since the last call (the first call starts at the stream's start:
    /// nothing written while no one followed is lost).
    pub async fn poll(&mut self) -> Result<Vec<StreamRecord>, UpstreamError> {
        let mut out = Vec::new();
        for shard in self.shards().await? {
            let iterator = match self.iterators.get(&shard) {
                Some(Some(it)) => it.clone(),
                Some(None) => continue, // closed shard, read to its end
                None => self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&shard)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .map_err(|e| upstream(Service::DynamoDb, e))?
                    .shard_iterator
                    .unwrap_or_default(),
            };
            let got = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .map_err(|e| upstream(Service::DynamoDb, e))?;
            self.iterators.insert(shard, got.next_shard_iterator);
            for record in got.records.unwrap_or_default() {
                if record.event_name != Some(OperationType::Insert) {
                    continue;
                }
                let Some(change) = record.dynamodb else {
                    continue;
                };
                let position = change.sequence_number.clone().unwrap_or_default();
                let image = change.new_image.unwrap_or_default();
                let parsed = serde_dynamo::from_item(image).map_err(|e| e.to_string());
                out.push(StreamRecord {
                    position,
                    record: parsed,
                });
            }
        }
        Ok(out)
    }
}
