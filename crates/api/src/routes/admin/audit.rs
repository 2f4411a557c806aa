//! `/v1/admin/audit`: who holds this key, what did this user do, what happened in this account.

use axum::Json;
use axum::extract::State;
use cooper_core::admin::store::{AuditQuery, PageRequest};
use cooper_core::names::{AccessKeyId, AccountId, UserName};
use serde::Deserialize;
use serde_json::Value;

use super::{Caller, QueryResult, page_json, query};
use crate::error::ApiError;
use crate::state::AdminState;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditQueryParams {
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    limit: Option<u16>,
    #[serde(default)]
    cursor: Option<String>,
}

/// Who holds this key, what did this user do, what happened in this account: in time order.
pub async fn audit(
    State(s): State<AdminState>,
    q: QueryResult<AuditQueryParams>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let search = match (&q.access_key_id, &q.user, &q.account) {
        (Some(k), None, None) => AuditQuery::AccessKey(AccessKeyId::parse(k)?.to_string()),
        (None, Some(u), None) => AuditQuery::Actor(UserName::parse(u)?.to_string()),
        (None, None, Some(a)) => AuditQuery::Account(AccountId::parse(a)?),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "search by one of access_key_id, user or account",
            ));
        }
    };
    let newest_first = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "order must be asc or desc",
            ));
        }
    };
    let page = PageRequest::new(q.limit, q.cursor.clone())?;
    let found = s
        .shared
        .admin
        .audit_search(&ctx, &search, &page, newest_first)
        .await?;
    Ok(page_json(found, |r| {
        serde_json::to_value(&r).unwrap_or(Value::Null)
    }))
}
