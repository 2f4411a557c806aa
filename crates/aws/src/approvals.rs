//! Approval requests in the directory table: `APPROVAL#<id>` / `APPROVAL`. Each transition
//! (pending -> approved -> used) is one conditional write, made by the ledger with the audit
//! record of it, so it happens once.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::model::Principal;
use cooper_core::model::approvals::{ApprovalId, ApprovalRequest};
use cooper_core::names::UserName;
use time::OffsetDateTime;

use crate::directory::DynamoDirectory;
use crate::requests::{Asking, asking_ids};
use cooper_core::ports::{ApprovalStore, Service, UpstreamError};
use serde::{Deserialize, Serialize};

use crate::error::upstream;
use crate::items::{GSI1, Item, Keyed, from_item, key, to_item};

/// The prefix of every approval item's key (what a function's IAM policy may write).
pub const PARTITION_PREFIX: &str = "APPROVAL#";

pub(crate) fn approval_key(id: &ApprovalId) -> (String, String) {
    (format!("{PARTITION_PREFIX}{id}"), "APPROVAL".into())
}

/// A new request's item.
pub(crate) fn approval_item(request: &ApprovalRequest) -> Result<Item, UpstreamError> {
    let body = ApprovalBody {
        request: request.clone(),
        expires_epoch: request.expires_at.unix_timestamp(),
        ttl: request.expires_at.unix_timestamp() + 86_400,
    };
    let mut item = to_item(&Keyed::plain(approval_key(&request.id), "approval", body))?;
    // Listed for its requester (GSI1), newest last by key.
    item.insert(
        "GSI1PK".into(),
        AttributeValue::S(format!("APPROVALS#{}", request.requester)),
    );
    item.insert(
        "GSI1SK".into(),
        AttributeValue::S(format!(
            "{:012}#{}",
            request.created_at.unix_timestamp().max(0),
            request.id
        )),
    );
    Ok(item)
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

#[async_trait]
impl ApprovalStore for DynamoApprovalStore {
    async fn approvals_by(
        &self,
        requester: &UserName,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>, UpstreamError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("APPROVALS#{requester}")))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                from_item::<Keyed<ApprovalBody>>(item, "approval request").map(|k| k.body.request)
            })
            // The index is eventually consistent: keep only what is the requester's.
            .filter(|r| r.as_ref().map_or(true, |r| r.requester == *requester))
            .collect()
    }

    async fn approvals_asking(
        &self,
        principals: &[Principal],
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>, UpstreamError> {
        let directory = DynamoDirectory::new(self.client.clone(), &self.table);
        let ids = asking_ids(&directory, Asking::Approval, principals, since, limit).await?;
        let keys = ids
            .iter()
            .filter_map(|id| ApprovalId::parse(id).ok())
            .map(|id| key(approval_key(&id)))
            .collect();
        let mut found = directory
            .batch_get_items(keys)
            .await?
            .into_iter()
            .map(|item| {
                from_item::<Keyed<ApprovalBody>>(item, "approval request").map(|k| k.body.request)
            })
            .collect::<Result<Vec<_>, _>>()?;
        found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(found)
    }

    async fn approval(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, UpstreamError> {
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
}
