//! The audit-notify host: records of the audit table's stream, in from Lambda (or from
//! `cooper serve`'s follower), out as one SNS notice each.

use std::sync::Arc;

use aws_config::SdkConfig;
use cooper_aws::notify::{DynamoNoticeLedger, SnsNotifier};
use cooper_aws::{aws_sdk_dynamodb, aws_sdk_sns};
use cooper_core::clock::{Clock, SystemClock};
use cooper_core::notify::AuditNotifier;

use crate::settings::{ConfigError, Settings, env};

/// Builds the notifier; no network call (the topic is only used when a record arrives).
pub fn notifier(
    sdk: &SdkConfig,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<AuditNotifier, ConfigError> {
    let topic = settings
        .notify_topic_arn
        .as_deref()
        .ok_or(ConfigError::Missing(env::NOTIFY_TOPIC_ARN))?;
    Ok(AuditNotifier {
        notifier: Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(sdk), topic)),
        ledger: Arc::new(DynamoNoticeLedger::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &settings.directory_table,
        )),
        clock,
    })
}

pub fn system_notifier(sdk: &SdkConfig, settings: &Settings) -> Result<AuditNotifier, ConfigError> {
    notifier(sdk, settings, Arc::new(SystemClock))
}

/// DynamoDB stream events as Lambda delivers them.
#[cfg(feature = "lambda")]
pub mod lambda {
    use aws_lambda_events::event::dynamodb::Event;
    use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
    use cooper_core::notify::{AuditNotifier, StreamRecord};

    /// The new audit records of a stream batch (inserts only: audit records are never changed,
    /// and removals are the table's own housekeeping).
    pub fn records(event: Event) -> Vec<StreamRecord> {
        event
            .records
            .into_iter()
            .filter(|r| r.event_name == "INSERT")
            .map(|r| StreamRecord {
                position: r.change.sequence_number.clone().unwrap_or_default(),
                record: serde_dynamo::from_item(r.change.new_image).map_err(|e| e.to_string()),
            })
            .collect()
    }

    /// Lambda's partial batch response: the positions to deliver again.
    pub fn response(failed: Vec<String>) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = failed
            .into_iter()
            .map(|position| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(position);
                failure
            })
            .collect();
        response
    }

    pub async fn handle(notifier: &AuditNotifier, event: Event) -> DynamoDbEventResponse {
        response(notifier.handle(&records(event)).await)
    }
}
