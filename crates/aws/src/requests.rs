//! Access requests in the directory table: the request at `ACCESSREQ#<id>` (listed for its
//! requester under GSI1 `ACCESSREQS#<requester>`), a pointer to it in the `ASKING#` partition of
//! each principal it asks (what an approver's list reads, one Query per principal), and the
//! time-bound grant approval gives at `JIT#<user>` (see `items`). Each settlement is one
//! conditional write, made by the ledger with its audit record, so it happens once.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::model::Principal;
use cooper_core::model::requests::{AccessRequest, AccessRequestId};
use cooper_core::names::UserName;
use cooper_core::ports::{AccessRequestStore, Service, UpstreamError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::directory::DynamoDirectory;
use crate::error::upstream;
use crate::items::{GSI1, Item, Keyed, from_item, key, keys, to_item};

/// The prefix of every access request's key (what a function's IAM policy may write).
pub const PARTITION_PREFIX: &str = "ACCESSREQ#";
/// The prefix of the partitions that list the requests asking a principal.
pub const ASKING_PREFIX: &str = "ASKING#";
/// How long a settled request (and its pointers) is kept after it stops mattering.
const KEPT_FOR: i64 = 30 * 86_400;

pub(crate) fn request_key(id: &AccessRequestId) -> (String, String) {
    (format!("{PARTITION_PREFIX}{id}"), "ACCESSREQ".into())
}

/// Requests sort by when they were made, then id.
fn sort_key(created_at: OffsetDateTime, id: &impl std::fmt::Display) -> String {
    format!("{:012}#{id}", created_at.unix_timestamp().max(0))
}

/// What asks principals: access requests, and approval requests (each its own lists).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Asking {
    Access,
    Approval,
}

fn asking_partition(kind: Asking, p: &Principal) -> String {
    match kind {
        Asking::Access => format!("{ASKING_PREFIX}{}", keys::principal(p)),
        Asking::Approval => format!("{ASKING_PREFIX}APPROVAL#{}", keys::principal(p)),
    }
}

/// When a request stops mattering: it lapsed, or the access it gave ended.
fn last_useful(request: &AccessRequest) -> i64 {
    request
        .access_until
        .unwrap_or(request.expires_at)
        .max(request.expires_at)
        .unix_timestamp()
}

#[derive(Serialize, Deserialize)]
struct RequestBody {
    #[serde(flatten)]
    request: AccessRequest,
    /// For conditions: when a pending request lapses, and when approved access ends.
    expires_epoch: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until_epoch: Option<i64>,
    /// DynamoDB's TTL removes old requests a month after they stopped mattering (the audit
    /// trail keeps their story).
    ttl: i64,
}

/// A request's item, as it stands.
pub(crate) fn request_item(request: &AccessRequest) -> Result<Item, UpstreamError> {
    let body = RequestBody {
        request: request.clone(),
        expires_epoch: request.expires_at.unix_timestamp(),
        until_epoch: request.access_until.map(OffsetDateTime::unix_timestamp),
        ttl: last_useful(request) + KEPT_FOR,
    };
    let gsi1 = (
        format!("ACCESSREQS#{}", request.requester),
        sort_key(request.created_at, &request.id),
    );
    let mut item = to_item(&Keyed::plain(
        request_key(&request.id),
        "access_request",
        body,
    ))?;
    item.insert("GSI1PK".into(), AttributeValue::S(gsi1.0));
    item.insert("GSI1SK".into(), AttributeValue::S(gsi1.1));
    Ok(item)
}

#[derive(Serialize, Deserialize)]
struct AskingBody {
    /// The id of what asks (an access request's, or an approval request's).
    request: String,
    ttl: i64,
}

/// The pointer, in the list of `principal`, to a request of `kind` that asks them; kept until
/// `ttl` (Unix seconds).
pub(crate) fn asking_item(
    kind: Asking,
    principal: &Principal,
    created_at: OffsetDateTime,
    id: &impl std::fmt::Display,
    ttl: i64,
) -> Result<Item, UpstreamError> {
    let body = AskingBody {
        request: id.to_string(),
        ttl,
    };
    to_item(&Keyed::plain(
        (asking_partition(kind, principal), sort_key(created_at, id)),
        "asking",
        body,
    ))
}

/// The pointer to access request `request` for one of the principals it asks.
pub(crate) fn access_asking_item(
    principal: &Principal,
    request: &AccessRequest,
) -> Result<Item, UpstreamError> {
    asking_item(
        Asking::Access,
        principal,
        request.created_at,
        &request.id,
        last_useful(request) + KEPT_FOR,
    )
}

/// The ids of the requests of `kind` made since `since` that asked any of `principals`,
/// newest first, each once, at most `limit`: one query per principal.
pub(crate) async fn asking_ids(
    directory: &DynamoDirectory,
    kind: Asking,
    principals: &[Principal],
    since: OffsetDateTime,
    limit: usize,
) -> Result<Vec<String>, UpstreamError> {
    let from = format!("{:012}", since.unix_timestamp().max(0));
    let lists = futures_util::future::try_join_all(principals.iter().map(|p| {
        directory
            .client()
            .query()
            .table_name(directory.table())
            .consistent_read(true)
            .key_condition_expression("PK = :pk AND SK >= :from")
            .expression_attribute_values(":pk", AttributeValue::S(asking_partition(kind, p)))
            .expression_attribute_values(":from", AttributeValue::S(from.clone()))
            .scan_index_forward(false)
            .limit(limit_of(limit))
            .send()
    }))
    .await
    .map_err(|e| upstream(Service::DynamoDb, e))?;
    let mut ids: Vec<(String, String)> = Vec::new();
    for out in lists {
        for item in out.items.unwrap_or_default() {
            let sk = crate::items::sort_key(&item).to_owned();
            let body = from_item::<Keyed<AskingBody>>(item, "request pointer")?.body;
            ids.push((sk, body.request));
        }
    }
    ids.sort_by(|a, b| b.cmp(a));
    ids.dedup_by(|a, b| a.1 == b.1);
    ids.truncate(limit);
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

fn read_request(item: Item) -> Result<AccessRequest, UpstreamError> {
    from_item::<Keyed<RequestBody>>(item, "access request").map(|k| k.body.request)
}

fn newest_first(requests: &mut Vec<AccessRequest>, limit: usize) {
    requests.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    requests.dedup_by(|a, b| a.id == b.id);
    requests.truncate(limit);
}

/// The access request store over the directory table.
#[derive(Clone)]
pub struct DynamoAccessRequests {
    directory: DynamoDirectory,
}

impl DynamoAccessRequests {
    pub fn new(directory: DynamoDirectory) -> Self {
        Self { directory }
    }
}

pub(crate) fn limit_of(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

#[async_trait]
impl AccessRequestStore for DynamoAccessRequests {
    async fn access_request(
        &self,
        id: &AccessRequestId,
    ) -> Result<Option<AccessRequest>, UpstreamError> {
        self.directory
            .get_item(request_key(id))
            .await?
            .map(read_request)
            .transpose()
    }

    async fn requests_by(
        &self,
        requester: &UserName,
        limit: usize,
    ) -> Result<Vec<AccessRequest>, UpstreamError> {
        let out = self
            .directory
            .client()
            .query()
            .table_name(self.directory.table())
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("ACCESSREQS#{requester}")),
            )
            .scan_index_forward(false)
            .limit(limit_of(limit))
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        let mut found = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(read_request)
            .collect::<Result<Vec<_>, _>>()?;
        // The index is read eventually consistently: each request is read again as it is now.
        found.retain(|r| r.requester == *requester);
        newest_first(&mut found, limit);
        Ok(found)
    }

    async fn requests_asking(
        &self,
        principals: &[Principal],
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AccessRequest>, UpstreamError> {
        let ids = asking_ids(&self.directory, Asking::Access, principals, since, limit).await?;
        let ids = ids
            .iter()
            .filter_map(|id| AccessRequestId::parse(id).ok())
            .collect::<Vec<_>>();
        let found = self
            .directory
            .batch_get_items(ids.iter().map(|id| key(request_key(id))).collect())
            .await?;
        let mut requests = found
            .into_iter()
            .map(read_request)
            .collect::<Result<Vec<_>, _>>()?;
        newest_first(&mut requests, limit);
        Ok(requests)
    }
}
