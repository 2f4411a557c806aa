//! `/v1/admin/grants` (who may become what) and `/v1/admin/admins` (who may administer what).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cooper_core::admin::store::PageRequest;
use cooper_core::model::{AdminGrant, Grant, GrantKey, GrantOn, GrantScope, Principal};
use cooper_core::names::{AccountId, GroupName, InvalidValue, Level, TargetName, UserName};
use serde::{Deserialize, Serialize};

use super::{Caller, PageView, QueryResult, page_json, query, rfc3339, time_opt};
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::AdminState;
#[cfg(feature = "openapi")]
use input::GrantCreate;

/// The schema of [`GrantBody`]: a grant of a target, or of an account up to a level. Never
/// built: it only describes.
#[cfg(feature = "openapi")]
#[allow(dead_code)]
mod input {
    use cooper_core::model::Principal;
    use cooper_core::names::{AccountId, Level, TargetName};
    use serde::Serialize;
    use utoipa::ToSchema;

    use crate::schema::Null;

    /// When the grant stops covering anything; null for never. An RFC 3339 date-time with a
    /// 4-digit year and an offset (`Z` or `+HH:MM`), e.g. `2026-12-31T23:59:59Z`.
    #[derive(Serialize, ToSchema)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub struct Expiry(Option<String>);

    /// A grant of one target.
    #[derive(Serialize, ToSchema)]
    pub struct TargetGrantCreate {
        principal: Principal,
        target: TargetName,
        #[serde(default)]
        account_id: Null,
        #[serde(default)]
        max_level: Null,
        #[serde(default)]
        expires_at: Expiry,
    }

    /// A grant of an account's targets up to a level (the cascade).
    #[derive(Serialize, ToSchema)]
    pub struct AccountGrantCreate {
        principal: Principal,
        #[serde(default)]
        target: Null,
        account_id: AccountId,
        max_level: Level,
        #[serde(default)]
        expires_at: Expiry,
    }

    /// A grant of a target (`target`), or of an account up to a level (`account_id` and
    /// `max_level`).
    #[derive(Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum GrantCreate {
        Target(TargetGrantCreate),
        Account(AccountGrantCreate),
    }
}

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
            via: None,
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

/// A grant of one target.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetGrant {
    principal: Principal,
    /// When the grant stops covering anything; null for never.
    #[cfg_attr(feature = "openapi", schema(required = true, format = DateTime))]
    expires_at: Option<String>,
    target: TargetName,
}

/// A grant of an account's targets up to a level (the cascade).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountGrant {
    principal: Principal,
    /// When the grant stops covering anything; null for never.
    #[cfg_attr(feature = "openapi", schema(required = true, format = DateTime))]
    expires_at: Option<String>,
    account_id: AccountId,
    max_level: Level,
}

/// A grant: of one target, or of an account's targets up to a level.
#[derive(Serialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Grant))]
pub enum GrantView {
    Target(TargetGrant),
    Account(AccountGrant),
}

fn grant_view(g: &Grant) -> GrantView {
    let principal = g.principal.clone();
    let expires_at = g.expires_at.as_ref().map(rfc3339);
    match &g.scope {
        GrantScope::Target(t) => GrantView::Target(TargetGrant {
            principal,
            expires_at,
            target: t.clone(),
        }),
        GrantScope::Account { account, max_level } => GrantView::Account(AccountGrant {
            principal,
            expires_at,
            account_id: account.clone(),
            max_level: *max_level,
        }),
    }
}

/// List grants: of a user or group, or in an account
///
/// Give `user` or `group` (all their grants the caller's scope reaches), or `account` (a page of
/// the account's grants; `limit` 1 to 200 and `cursor` apply then).
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/grants", operation_id = "listGrants", tag = "admin-grants",
    params(
        Caller,
        ("user" = Option<UserName>, Query, description = "The grant's user (not with `group`)."),
        ("group" = Option<GroupName>, Query, description = "The grant's group (not with `user`)."),
        ("account" = Option<AccountId>, Query, description = "The account (not with `user` or `group`)."),
        ("limit" = Option<u16>, Query, maximum = 65535, description = "Page size, 1 to 200 (default 50); used when listing by account."),
        ("cursor" = Option<String>, Query, description = "The `cursor` of the previous page; used when listing by account."),
    ),
    responses((status = 200, description = "The grants (one page when listed by account).", body = PageView<GrantView>)),
))]
pub async fn list_grants(
    State(s): State<AdminState>,
    q: QueryResult<GrantQuery>,
    Caller(ctx): Caller,
) -> Result<Json<PageView<GrantView>>, ApiError> {
    let q = query(q)?;
    match (q.principal()?, &q.account) {
        (Some(p), None) => {
            let grants = s.shared.admin.grants_of(&ctx, &p).await?;
            Ok(Json(PageView {
                items: grants.iter().map(grant_view).collect(),
                cursor: None,
            }))
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

/// Grant a target, or an account up to a level
///
/// A grant at or above the account's top level is sensitive (X-Cooper-TOTP).
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/grants", operation_id = "createGrant", tag = "admin-grants",
    params(Caller),
    request_body(content = GrantCreate, example = json!({"principal": {"group": "payments-engineers"}, "account_id": "123456789012", "max_level": 10})),
    responses((status = 201, description = "The grant.", body = GrantView)),
))]
pub async fn create_grant(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<GrantBody>,
) -> Result<(StatusCode, Json<GrantView>), ApiError> {
    let grant = Grant::try_from(body)?;
    s.shared.admin.create_grant(&ctx, grant.clone()).await?;
    Ok((StatusCode::CREATED, Json(grant_view(&grant))))
}

/// The grant is removed.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantDeleted {
    /// The grant, named (`user alice -> target prod-admin`).
    deleted: String,
}

/// Remove a grant
///
/// Name the grant's `user` or `group`, and its `target` or `account`.
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, path = "/v1/admin/grants", operation_id = "deleteGrant", tag = "admin-grants",
    params(
        Caller,
        ("user" = Option<UserName>, Query, description = "The grant's user (not with `group`)."),
        ("group" = Option<GroupName>, Query, description = "The grant's group (not with `user`)."),
        ("target" = Option<TargetName>, Query, description = "The grant's target (not with `account`)."),
        ("account" = Option<AccountId>, Query, description = "The cascade grant's account (not with `target`)."),
    ),
    responses((status = 200, description = "Removed.", body = GrantDeleted)),
))]
pub async fn delete_grant(
    State(s): State<AdminState>,
    q: QueryResult<GrantQuery>,
    Caller(ctx): Caller,
) -> Result<Json<GrantDeleted>, ApiError> {
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
    Ok(Json(GrantDeleted {
        deleted: grant.to_string(),
    }))
}

// ---- admins ----

/// An admin grant to make: of one account, or universal.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AdminGrantCreate))]
pub struct AdminBody {
    principal: Principal,
    /// The account administered; absent or null for a universal admin.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<AccountId>))]
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

/// No account: the JSON `null` of a universal admin grant's `account_id`.
#[derive(Serialize)]
pub struct NoAccount;

/// An explicit admin grant: universal (every account) or one account.
#[derive(Serialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AdminGrant))]
pub enum AdminGrantView {
    Universal {
        principal: Principal,
        #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Null))]
        account_id: NoAccount,
    },
    Account {
        principal: Principal,
        account_id: AccountId,
    },
}

fn admin_view(g: &AdminGrant) -> AdminGrantView {
    let principal = g.principal.clone();
    match &g.account {
        None => AdminGrantView::Universal {
            principal,
            account_id: NoAccount,
        },
        Some(account) => AdminGrantView::Account {
            principal,
            account_id: account.clone(),
        },
    }
}

/// Explicit admin grants.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminGrantList {
    items: Vec<AdminGrantView>,
}

/// List explicit admin grants
///
/// Without `account`, universal admins only.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/admins", operation_id = "listAdmins", tag = "admin-admins",
    params(Caller, ("account" = Option<AccountId>, Query, description = "Only the admin grants of this account.")),
    responses((status = 200, description = "The admin grants.", body = AdminGrantList)),
))]
pub async fn list_admins(
    State(s): State<AdminState>,
    q: QueryResult<GrantQuery>,
    Caller(ctx): Caller,
) -> Result<Json<AdminGrantList>, ApiError> {
    let q = query(q)?;
    let account = q.account.as_deref().map(AccountId::parse).transpose()?;
    let grants = s.shared.admin.admin_grants(&ctx, account.as_ref()).await?;
    Ok(Json(AdminGrantList {
        items: grants.iter().map(admin_view).collect(),
    }))
}

/// Make a user or group an admin (sensitive)
///
/// Never wider than the caller's own scope.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/admins", operation_id = "createAdmin", tag = "admin-admins",
    params(Caller),
    request_body(content = AdminBody, example = json!({"principal": {"user": "alice@example.com"}, "account_id": "123456789012"})),
    responses((status = 201, description = "The admin grant.", body = AdminGrantView)),
))]
pub async fn create_admin(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<AdminBody>,
) -> Result<(StatusCode, Json<AdminGrantView>), ApiError> {
    let grant = AdminGrant::try_from(body)?;
    s.shared
        .admin
        .create_admin_grant(&ctx, grant.clone())
        .await?;
    Ok((StatusCode::CREATED, Json(admin_view(&grant))))
}

/// The admin grant is removed.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminGrantDeleted {
    deleted: AdminGrantView,
}

/// Remove an admin grant (sensitive)
///
/// Name the grant's `user` or `group`, and its `account` (none for a universal grant).
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, path = "/v1/admin/admins", operation_id = "deleteAdmin", tag = "admin-admins",
    params(
        Caller,
        ("user" = Option<UserName>, Query, description = "The grant's user (not with `group`)."),
        ("group" = Option<GroupName>, Query, description = "The grant's group (not with `user`)."),
        ("account" = Option<AccountId>, Query, description = "The administered account; absent for a universal grant."),
    ),
    responses((status = 200, description = "Removed.", body = AdminGrantDeleted)),
))]
pub async fn delete_admin(
    State(s): State<AdminState>,
    q: QueryResult<GrantQuery>,
    Caller(ctx): Caller,
) -> Result<Json<AdminGrantDeleted>, ApiError> {
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
    Ok(Json(AdminGrantDeleted {
        deleted: admin_view(&grant),
    }))
}
