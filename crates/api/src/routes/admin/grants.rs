//! `/v1/admin/grants` (who may become what) and `/v1/admin/admins` (who may administer what).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cooper_core::admin::store::PageRequest;
use cooper_core::model::{AdminGrant, Grant, GrantKey, GrantOn, GrantScope, Principal};
use cooper_core::names::{AccountId, GroupName, InvalidValue, Level, TargetName, UserName};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Caller, QueryResult, page_json, query, rfc3339, set, time_opt};
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::AdminState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    principal: Principal,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    max_level: Option<u32>,
    #[serde(default)]
    expires_at: Option<String>,
}

impl TryFrom<GrantBody> for Grant {
    type Error = InvalidValue;

    fn try_from(body: GrantBody) -> Result<Self, InvalidValue> {
        let scope = match (
            body.target.as_deref(),
            body.account_id.as_deref(),
            body.max_level,
        ) {
            (Some(t), None, None) => GrantScope::Target(TargetName::parse(t)?),
            (None, Some(a), Some(level)) => GrantScope::Account {
                account: AccountId::parse(a)?,
                max_level: Level::new(level)?,
            },
            _ => {
                return Err(InvalidValue::new(
                    "grant",
                    "a grant is of a target (target), or of an account up to a level (account_id and max_level)",
                ));
            }
        };
        Ok(Grant {
            principal: body.principal,
            scope,
            expires_at: time_opt(body.expires_at.as_deref(), "expires_at")?,
        })
    }
}

/// Which grant a DELETE or a list means: `user` or `group`, and `target` or `account`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    limit: Option<u16>,
    #[serde(default)]
    cursor: Option<String>,
}

impl GrantQuery {
    fn principal(&self) -> Result<Option<Principal>, ApiError> {
        match (&self.user, &self.group) {
            (Some(u), None) => Ok(Some(Principal::User(UserName::parse(u)?))),
            (None, Some(g)) => Ok(Some(Principal::Group(GroupName::parse(g)?))),
            (None, None) => Ok(None),
            _ => Err(ApiError::bad_request(
                "invalid_request",
                "give user or group, not both",
            )),
        }
    }
}

fn grant_view(g: &Grant) -> Value {
    let mut v =
        json!({ "principal": g.principal, "expires_at": g.expires_at.as_ref().map(rfc3339) });
    match &g.scope {
        GrantScope::Target(t) => set(&mut v, "target", json!(t)),
        GrantScope::Account { account, max_level } => {
            set(&mut v, "account_id", json!(account));
            set(&mut v, "max_level", json!(max_level));
        }
    }
    v
}

pub async fn list_grants(
    State(s): State<AdminState>,
    q: QueryResult<GrantQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    match (q.principal()?, &q.account) {
        (Some(p), None) => {
            let grants = s.shared.admin.grants_of(&ctx, &p).await?;
            Ok(Json(
                json!({ "items": grants.iter().map(grant_view).collect::<Vec<_>>(), "cursor": null }),
            ))
        }
        (None, Some(a)) => {
            let page = PageRequest::new(q.limit, q.cursor.clone())?;
            let grants = s
                .shared
                .admin
                .grants_in(&ctx, &AccountId::parse(a)?, &page)
                .await?;
            Ok(page_json(grants, |g| grant_view(&g)))
        }
        _ => Err(ApiError::bad_request(
            "invalid_request",
            "list grants by account, or by user or group",
        )),
    }
}

pub async fn create_grant(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<GrantBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = Grant::try_from(body)?;
    s.shared.admin.create_grant(&ctx, grant.clone()).await?;
    Ok((StatusCode::CREATED, Json(grant_view(&grant))))
}

pub async fn delete_grant(
    State(s): State<AdminState>,
    q: QueryResult<GrantQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let principal = q.principal()?.ok_or_else(|| {
        ApiError::bad_request("invalid_request", "name the grant's user or group")
    })?;
    let on = match (&q.target, &q.account) {
        (Some(t), None) => GrantOn::Target(TargetName::parse(t)?),
        (None, Some(a)) => GrantOn::Account(AccountId::parse(a)?),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "name the grant's target or account",
            ));
        }
    };
    let grant = GrantKey { principal, on };
    s.shared.admin.delete_grant(&ctx, grant.clone()).await?;
    Ok(Json(json!({ "deleted": grant.to_string() })))
}

// ---- admins ----

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminBody {
    principal: Principal,
    /// The account administered; absent for a universal admin.
    #[serde(default)]
    account_id: Option<String>,
}

impl TryFrom<AdminBody> for AdminGrant {
    type Error = InvalidValue;

    fn try_from(body: AdminBody) -> Result<Self, InvalidValue> {
        Ok(AdminGrant {
            principal: body.principal,
            account: body
                .account_id
                .as_deref()
                .map(AccountId::parse)
                .transpose()?,
        })
    }
}

fn admin_view(g: &AdminGrant) -> Value {
    json!({ "principal": g.principal, "account_id": g.account, "scope": g.account.as_ref().map_or("universal", |_| "account") })
}

pub async fn list_admins(
    State(s): State<AdminState>,
    q: QueryResult<GrantQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let account = q.account.as_deref().map(AccountId::parse).transpose()?;
    let grants = s.shared.admin.admin_grants(&ctx, account.as_ref()).await?;
    Ok(Json(
        json!({ "items": grants.iter().map(admin_view).collect::<Vec<_>>() }),
    ))
}

pub async fn create_admin(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<AdminBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = AdminGrant::try_from(body)?;
    s.shared
        .admin
        .create_admin_grant(&ctx, grant.clone())
        .await?;
    Ok((StatusCode::CREATED, Json(admin_view(&grant))))
}

pub async fn delete_admin(
    State(s): State<AdminState>,
    q: QueryResult<GrantQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let principal = q.principal()?.ok_or_else(|| {
        ApiError::bad_request("invalid_request", "name the admin's user or group")
    })?;
    let grant = AdminGrant {
        principal,
        account: q.account.as_deref().map(AccountId::parse).transpose()?,
    };
    s.shared
        .admin
        .delete_admin_grant(&ctx, grant.clone())
        .await?;
    Ok(Json(json!({ "deleted": admin_view(&grant) })))
}
