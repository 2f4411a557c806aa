//! `/v1/admin/accounts`: the AWS accounts cooper brokers into.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cooper_core::model::Account;
use cooper_core::model::requests::RequestPolicy;
use cooper_core::names::{AccountId, AccountName, InvalidValue, Partition};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use super::Versioned;
use super::{
    Caller, DeleteQuery, IfMatch, ListQuery, PageView, QueryResult, RemovedView, RequestPolicyBody,
    key_of, keyed, page_json, query, removed, versioned_response,
};
use crate::error::ApiError;
#[cfg(feature = "openapi")]
use crate::schema::ETag;
use crate::state::AdminState;

/// An account's new state (`id`, if given, is the path's: it cannot change).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AccountUpdate))]
pub struct AccountBody {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<AccountId>))]
    id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = AccountName))]
    name: String,
    /// The account's partition (default `aws`); it cannot change.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Partition>))]
    partition: Option<String>,
    /// Who may approve requests for access to this account's targets (just-in-time access);
    /// left out, nothing here can be requested.
    #[serde(default)]
    access_requests: Option<RequestPolicyBody>,
}

impl TryFrom<AccountBody> for Account {
    type Error = InvalidValue;

    fn try_from(body: AccountBody) -> Result<Self, InvalidValue> {
        Ok(Account {
            id: AccountId::parse(&key_of("id", body.id)?)?,
            name: AccountName::parse(&body.name)?,
            partition: body
                .partition
                .as_deref()
                .map(Partition::parse)
                .transpose()?
                .unwrap_or_default(),
            access_requests: body.access_requests.map(|p| p.parse(true)).transpose()?,
        })
    }
}

/// An AWS account cooper brokers into.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Account))]
pub struct AccountView {
    id: AccountId,
    name: AccountName,
    partition: Partition,
    /// Who may approve requests for access here; absent: nothing can be requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    access_requests: Option<RequestPolicy>,
}

/// An account to create.
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AccountCreate {
    id: AccountId,
    name: AccountName,
    /// The account's partition (default `aws`); it cannot change.
    partition: Option<Partition>,
    /// Who may approve requests for access to this account's targets (just-in-time access).
    access_requests: Option<RequestPolicyBody>,
}

fn account_view(a: &Account) -> AccountView {
    AccountView {
        id: a.id.clone(),
        name: a.name.clone(),
        partition: a.partition,
        access_requests: a.access_requests.clone(),
    }
}

/// An account in a list, with its version.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountEntry {
    /// The version, as in ETag.
    version: u64,
    account: AccountView,
}

/// List accounts (within the caller's scope)
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/accounts", operation_id = "listAccounts", tag = "admin-accounts",
    params(Caller, ListQuery),
    responses((status = 200, description = "A page of accounts.", body = PageView<AccountEntry>)),
))]
pub async fn list_accounts(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<PageView<AccountEntry>>, ApiError> {
    let q = query(q)?;
    let page = s.shared.admin.accounts(&ctx, &q.page()?).await?;
    Ok(page_json(page, |a| AccountEntry {
        version: a.version,
        account: account_view(&a.value),
    }))
}

/// Read an account
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/accounts/{id}", operation_id = "getAccount", tag = "admin-accounts",
    params(("id" = AccountId, Path, description = "The account's id."), Caller),
    responses((status = 200, description = "The account.", body = Versioned<AccountView>, headers(("ETag" = ETag)))),
))]
pub async fn get_account(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    let a = s
        .shared
        .admin
        .account(&ctx, &AccountId::parse(&id)?)
        .await?;
    Ok(versioned_response(
        StatusCode::OK,
        a.version,
        account_view(&a.value),
    ))
}

/// Create an account (universal admins)
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/accounts", operation_id = "createAccount", tag = "admin-accounts",
    params(Caller),
    request_body(content = AccountCreate, example = json!({"id": "123456789012", "name": "Payments (EU)", "partition": "aws"})),
    responses((status = 201, description = "The account, at version 1.", body = Versioned<AccountView>, headers(("ETag" = ETag)))),
))]
pub async fn create_account(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    crate::json::JsonBody(body): crate::json::JsonBody<AccountBody>,
) -> Result<Response, ApiError> {
    let a = s
        .shared
        .admin
        .create_account(&ctx, Account::try_from(body)?)
        .await?;
    Ok(versioned_response(
        StatusCode::CREATED,
        a.version,
        account_view(&a.value),
    ))
}

/// Replace an account (its partition cannot change)
#[cfg_attr(feature = "openapi", utoipa::path(
    put, path = "/v1/admin/accounts/{id}", operation_id = "updateAccount", tag = "admin-accounts",
    params(("id" = AccountId, Path, description = "The account's id."), Caller, ("If-Match" = IfMatch, Header, description = "The ETag read; an update of a stale version is refused (409).")),
    request_body(content = AccountBody, example = json!({"name": "Payments (EU, production)", "partition": "aws"})),
    responses((status = 200, description = "The account, at its new version.", body = Versioned<AccountView>, headers(("ETag" = ETag)))),
))]
pub async fn update_account(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
    crate::json::JsonBody(mut body): crate::json::JsonBody<AccountBody>,
) -> Result<Response, ApiError> {
    keyed("id", &mut body.id, &id)?;
    let a = s
        .shared
        .admin
        .update_account(&ctx, Account::try_from(body)?, version)
        .await?;
    Ok(versioned_response(
        StatusCode::OK,
        a.version,
        account_view(&a.value),
    ))
}

/// Delete an account (universal admins; sensitive)
///
/// Refused (409 `in_use`) while targets, grants or admin grants depend on it, unless `cascade`.
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, path = "/v1/admin/accounts/{id}", operation_id = "deleteAccount", tag = "admin-accounts",
    params(("id" = AccountId, Path, description = "The account's id."), Caller, DeleteQuery, ("If-Match" = Option<IfMatch>, Header, description = "The ETag read: delete only that version.")),
    responses((status = 200, description = "What was deleted.", body = RemovedView)),
))]
pub async fn delete_account(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    q: QueryResult<DeleteQuery>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
) -> Result<Json<RemovedView>, ApiError> {
    let q = query(q)?;
    Ok(removed(
        s.shared
            .admin
            .delete_account(&ctx, &AccountId::parse(&id)?, version, q.cascade)
            .await?,
    ))
}
