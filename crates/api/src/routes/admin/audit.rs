//! `/v1/admin/audit`: who holds this key, what did this user do, what happened in this account.

use axum::Json;
use axum::extract::State;
use cooper_core::admin::store::{AuditQuery, PageRequest};
use cooper_core::names::{AccessKeyId, AccountId, UserName};
use serde::Deserialize;
use serde_json::Value;

use super::{Caller, PageView, QueryResult, page_json, query};
use crate::error::ApiError;
use crate::state::AdminState;
#[cfg(feature = "openapi")]
use cooper_core::audit::AuditRecord;

/// Oldest or newest first.
#[cfg(feature = "openapi")]
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum Order {
    Asc,
    Desc,
}

/// Exactly one of `access_key_id`, `user` or `account`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct AuditQueryParams {
    /// An AWS access key id: who holds it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(value_type = Option<AccessKeyId>))]
    access_key_id: Option<String>,
    /// The actor.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(value_type = Option<UserName>))]
    user: Option<String>,
    /// The account.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(value_type = Option<AccountId>))]
    account: Option<String>,
    /// Oldest or newest first (default `asc`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(value_type = Option<Order>))]
    order: Option<String>,
    /// Page size (default 50).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    limit: Option<u16>,
    /// The `cursor` of the previous page.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(pattern = "^[A-Za-z0-9_-]+$"))]
    cursor: Option<String>,
}

/// Search the audit trail
///
/// By exactly one of `access_key_id` (who holds this key), `user` or `account`: in time order.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/audit", operation_id = "searchAudit", tag = "admin-audit",
    params(Caller, AuditQueryParams),
    responses((status = 200, description = "A page of audit records, in time order.", body = PageView<AuditRecord>)),
))]
pub async fn audit(
    State(s): State<AdminState>,
    q: QueryResult<AuditQueryParams>,
    Caller(ctx): Caller,
) -> Result<Json<PageView<Value>>, ApiError> {
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
