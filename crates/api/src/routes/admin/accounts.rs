//! `/v1/admin/accounts`: the AWS accounts cooper brokers into.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cooper_core::model::Account;
use cooper_core::names::{AccountId, AccountName, InvalidValue, Partition};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Caller, DeleteQuery, IfMatch, ListQuery, QueryResult, key_of, keyed, page_json, query, removed,
    versioned_response,
};
use crate::error::ApiError;
use crate::state::AdminState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountBody {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    partition: Option<String>,
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
        })
    }
}

fn account_view(a: &Account) -> Value {
    json!({ "id": a.id, "name": a.name, "partition": a.partition })
}

pub async fn list_accounts(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let page = s.shared.admin.accounts(&ctx, &q.page()?).await?;
    Ok(page_json(
        page,
        |a| json!({ "version": a.version, "account": account_view(&a.value) }),
    ))
}

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

pub async fn delete_account(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    q: QueryResult<DeleteQuery>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    Ok(removed(
        s.shared
            .admin
            .delete_account(&ctx, &AccountId::parse(&id)?, version, q.cascade)
            .await?,
    ))
}
