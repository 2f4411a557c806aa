//! Audit notices out: SNS for the message, a ledger item per record (in the directory table) so
//! that a record delivered twice is announced once.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::notify::{Claim, Notice, NoticeLedger, Notifier};
use cooper_core::ports::{Service, UpstreamError};
use time::OffsetDateTime;

use crate::error::{code_of, upstream};
use crate::items::key;

/// Publishes notices to an SNS topic (email subscribers read subject and body).
#[derive(Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, notice: &Notice) -> Result<(), UpstreamError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&notice.subject)
            .message(&notice.body)
            .send()
            .await
            .map_err(|e| upstream(Service::Sns, e))?;
        Ok(())
    }
}

/// `NOTICE#<record id>` / `NOTICE` in the directory table: `status` (sending, sent), a lease for
/// the sender, and a TTL so the ledger forgets after a week.
#[derive(Clone)]
pub struct DynamoNoticeLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoNoticeLedger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn key(id: &str) -> std::collections::HashMap<String, AttributeValue> {
        key((format!("NOTICE#{id}"), "NOTICE".to_owned()))
    }
}

const KEEP_SECONDS: i64 = 7 * 86_400;

#[async_trait]
impl NoticeLedger for DynamoNoticeLedger {
    async fn claim(
        &self,
        id: &str,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<Claim, UpstreamError> {
        let mut item = Self::key(id);
        item.insert("item".into(), AttributeValue::S("notice".into()));
        item.insert("status".into(), AttributeValue::S("sending".into()));
        item.insert(
            "lease_until".into(),
            AttributeValue::N((now + lease).unix_timestamp().to_string()),
        );
        item.insert(
            "ttl".into(),
            AttributeValue::N((now.unix_timestamp() + KEEP_SECONDS).to_string()),
        );
        // New, or a sender that never finished (its lease ran out): ours.
        let claimed = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(PK) OR (#status = :sending AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now.unix_timestamp().to_string()),
            )
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) if code_of(&e) == Some("ConditionalCheckFailedException") => {
                let current = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(id)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| upstream(Service::DynamoDb, e))?;
                let sent = current
                    .item
                    .as_ref()
                    .and_then(|i| i.get("status"))
                    .is_some_and(|s| s.as_s().is_ok_and(|s| s == "sent"));
                Ok(if sent { Claim::Sent } else { Claim::Busy })
            }
            Err(e) => Err(upstream(Service::DynamoDb, e)),
        }
    }

    async fn sent(&self, id: &str) -> Result<(), UpstreamError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .update_expression("SET #status = :sent")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", AttributeValue::S("sent".into()))
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), UpstreamError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .condition_expression("#status = :sending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(())
    }
}
