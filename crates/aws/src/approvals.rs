//! Approval requests in the directory table: `APPROVAL#<id>` / `APPROVAL`. Each transition
//! (pending -> approved -> used) is one conditional write, so it happens once.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::approval::{ApprovalId, ApprovalRequest, ApprovalStore, Transition};
use cooper_core::names::{TargetName, UserName};
use cooper_core::ports::{Service, UpstreamError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{code_of, corrupt, upstream};
use crate::items::{Keyed, from_item, key, to_item};

fn approval_key(id: &ApprovalId) -> (String, String) {
    (format!("APPROVAL#{id}"), "APPROVAL".into())
}

#[derive(Serialize, Deserialize)]
struct ApprovalBody {
    #[serde(flatten)]
    request: ApprovalRequest,
    /// For conditions: the expiry as a number.
    expires_epoch: i64,
    /// DynamoDB's TTL removes old requests a day after they expire.
    ttl: i64,
}

#[derive(Clone)]
pub struct DynamoApprovalStore {
    client: Client,
    table: String,
}

impl DynamoApprovalStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn epoch(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::N(at.unix_timestamp().to_string())
}

fn transition<E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static>(
    result: Result<
        impl Sized,
        aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >,
) -> Result<Transition, UpstreamError> {
    match result {
        Ok(_) => Ok(Transition::Done),
        Err(e) if code_of(&e) == Some("ConditionalCheckFailedException") => Ok(Transition::Refused),
        Err(e) => Err(upstream(Service::DynamoDb, e)),
    }
}

#[async_trait]
impl ApprovalStore for DynamoApprovalStore {
    async fn create(&self, request: &ApprovalRequest) -> Result<(), UpstreamError> {
        let body = ApprovalBody {
            request: request.clone(),
            expires_epoch: request.expires_at.unix_timestamp(),
            ttl: request.expires_at.unix_timestamp() + 86_400,
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&Keyed::plain(
                approval_key(&request.id),
                "approval",
                body,
            ))?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        Ok(())
    }

    async fn get(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, UpstreamError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(approval_key(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        out.item
            .map(|item| {
                from_item::<Keyed<ApprovalBody>>(item, "approval request").map(|k| k.body.request)
            })
            .transpose()
    }

    async fn approve(
        &self,
        id: &ApprovalId,
        approver: &UserName,
        now: OffsetDateTime,
    ) -> Result<Transition, UpstreamError> {
        let at = now
            .format(&Rfc3339)
            .map_err(|e| corrupt(Service::DynamoDb, e.to_string()))?;
        transition(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(approval_key(id))))
                .update_expression("SET #status = :approved, approved_by = :by, approved_at = :at")
                .condition_expression("#status = :pending AND expires_epoch > :now")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":approved", AttributeValue::S("approved".into()))
                .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
                .expression_attribute_values(":by", AttributeValue::S(approver.to_string()))
                .expression_attribute_values(":at", AttributeValue::S(at))
                .expression_attribute_values(":now", epoch(now))
                .send()
                .await,
        )
    }

    async fn consume(
        &self,
        id: &ApprovalId,
        requester: &UserName,
        target: &TargetName,
        now: OffsetDateTime,
    ) -> Result<Transition, UpstreamError> {
        transition(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(approval_key(id))))
                .update_expression("SET #status = :used")
                .condition_expression(
                    "#status = :approved AND requester = :requester AND target = :target AND expires_epoch > :now",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":used", AttributeValue::S("used".into()))
                .expression_attribute_values(":approved", AttributeValue::S("approved".into()))
                .expression_attribute_values(":requester", AttributeValue::S(requester.to_string()))
                .expression_attribute_values(":target", AttributeValue::S(target.to_string()))
                .expression_attribute_values(":now", epoch(now))
                .send()
                .await,
        )
    }
}
