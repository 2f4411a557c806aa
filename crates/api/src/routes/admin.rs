//! The admin-targets function: `/v1/admin/...` over accounts, targets, users, groups, grants,
//! admins, tokens and the audit trail. Every call is scoped per account; updates carry the
//! version they read (If-Match); sensitive operations need a fresh code (`X-Cooper-TOTP`).

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cooper_core::admin::scope::AdminGrant;
use cooper_core::admin::service::{AdminCall, AdminContext, Removed, UserDetails};
use cooper_core::admin::store::{AuditQuery, Page, PageRequest, Versioned};
use cooper_core::model::{
    Account, Grant, GrantKey, GrantOn, GrantScope, Group, Principal, Sealed, Target, TargetKind,
    User,
};
use cooper_core::names::{
    AccountId, AccountName, Description, DisplayName, ExternalId, GroupName, InvalidValue, Level,
    Partition, RoleArn, SessionPolicy, TargetName, TokenLabel, UserName,
};
use cooper_core::token::TokenId;
use cooper_core::totp::TotpCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::auth::Authenticated;
use crate::context::Meta;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::AdminState;

pub const TOTP_HEADER: &str = "x-cooper-totp";

/// The calling admin, checked: authenticated, active, with an admin scope. A fresh code, when
/// the operation needs one, comes in `X-Cooper-TOTP`.
pub struct Caller(AdminContext);

impl FromRequestParts<AdminState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(identity) = Authenticated::from_request_parts(parts, state).await?;
        let Ok(Meta(meta)) = Meta::from_request_parts(parts, state).await;
        let totp = match parts.headers.get(TOTP_HEADER) {
            None => None,
            Some(v) => Some(TotpCode::parse(v.to_str().unwrap_or_default())?),
        };
        let ctx = state
            .shared
            .admin
            .context(AdminCall {
                identity,
                totp,
                meta,
            })
            .await?;
        Ok(Self(ctx))
    }
}

/// `If-Match: "3"`: the version an update read.
pub struct IfMatch(Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        text.parse::<u64>().map(|v| Self(Some(v))).map_err(|_| {
            ApiError::bad_request(
                "invalid_request",
                "If-Match must be the ETag you read, like \"3\"",
            )
        })
    }
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A resource with its version in the body and in `ETag`.
fn versioned_response(status: StatusCode, version: u64, mut body: Value) -> Response {
    body["version"] = json!(version);
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<u16>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    account: Option<String>,
}

impl ListQuery {
    fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::new(self.limit, self.cursor.clone())?)
    }
}

fn query<T: serde::de::DeserializeOwned + Default>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn page_json<T>(page: Page<T>, view: impl Fn(T) -> Value) -> Json<Value> {
    Json(json!({
        "items": page.items.into_iter().map(view).collect::<Vec<_>>(),
        "cursor": page.cursor,
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    cascade: bool,
}

fn removed(r: Removed) -> Json<Value> {
    Json(json!({ "deleted": r.resource, "cascaded": r.cascaded }))
}

fn time_opt(v: Option<&str>, field: &'static str) -> Result<Option<OffsetDateTime>, ApiError> {
    v.map(|s| {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| ApiError::from(InvalidValue::new(field, "must be an RFC 3339 time")))
    })
    .transpose()
}

fn rfc3339(t: &OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

// ---- accounts ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountBody {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    partition: Option<String>,
}

fn account_view(a: &Account) -> Value {
    json!({ "id": a.id, "name": a.name, "partition": a.partition })
}

fn parse_account(id: &str, body: &AccountBody) -> Result<Account, ApiError> {
    Ok(Account {
        id: AccountId::parse(id)?,
        name: AccountName::parse(&body.name)?,
        partition: body
            .partition
            .as_deref()
            .map(Partition::parse)
            .transpose()?
            .unwrap_or_default(),
    })
}

/// A body's key field, required when creating.
fn required(field: &'static str, value: &Option<String>) -> Result<String, ApiError> {
    value
        .clone()
        .ok_or_else(|| InvalidValue::new(field, "is required").into())
}

/// On update the key comes from the path; a body may repeat it but not change it.
fn unchanged(field: &'static str, body: Option<&str>, path: &str) -> Result<(), ApiError> {
    match body {
        Some(given) if given != path => Err(ApiError::bad_request(
            "immutable_field",
            format!("{field} cannot be changed"),
        )),
        _ => Ok(()),
    }
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
    JsonBody(body): JsonBody<AccountBody>,
) -> Result<Response, ApiError> {
    let id = required("id", &body.id)?;
    let a = s
        .shared
        .admin
        .create_account(&ctx, parse_account(&id, &body)?)
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
    JsonBody(body): JsonBody<AccountBody>,
) -> Result<Response, ApiError> {
    unchanged("id", body.id.as_deref(), &id)?;
    let a = s
        .shared
        .admin
        .update_account(&ctx, parse_account(&id, &body)?, version)
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

// ---- targets ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    #[serde(default)]
    name: Option<String>,
    account_id: String,
    level: u32,
    kind: String,
    #[serde(default)]
    role_arn: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    sealed_keys: Option<String>,
    #[serde(default)]
    session_policy: Option<Value>,
    #[serde(default)]
    max_duration_seconds: Option<u32>,
    #[serde(default)]
    high_security: bool,
    #[serde(default)]
    approvers: Vec<Principal>,
    #[serde(default)]
    description: Option<String>,
}

fn target_view(t: &Target) -> Value {
    let mut v = json!({
        "name": t.name,
        "account_id": t.account,
        "kind": t.kind.label(),
        "level": t.level,
        "max_duration_seconds": t.max_duration_seconds,
        "high_security": t.high_security,
        "approvers": t.approvers,
        "description": t.description,
    });
    match &t.kind {
        TargetKind::Role {
            role_arn,
            external_id,
        } => {
            v["role_arn"] = json!(role_arn);
            v["external_id"] = json!(external_id);
        }
        TargetKind::FederatedUser {
            partition,
            session_policy,
            ..
        } => {
            v["partition"] = json!(partition);
            v["session_policy"] =
                serde_json::from_str(session_policy.as_str()).unwrap_or(Value::Null);
            // The sealed keys are never sent back: it is enough to know they are set.
            v["federation_keys"] = json!("sealed");
        }
    }
    v
}

/// Parses a target body; for a federated-user target without `sealed_keys`, returns a
/// placeholder and `true` (keep the stored keys).
fn parse_target(
    name: &str,
    body: TargetBody,
    account: Option<&Account>,
) -> Result<(Target, bool), ApiError> {
    let name = TargetName::parse(name)?;
    let account_id = AccountId::parse(&body.account_id)?;
    let level = Level::new(body.level)?;
    let (mut target, keep_keys) = match body.kind.as_str() {
        "role" => {
            let arn = body
                .role_arn
                .as_deref()
                .ok_or_else(|| InvalidValue::new("role_arn", "is required for a role target"))?;
            let external_id = body
                .external_id
                .as_deref()
                .map(ExternalId::parse)
                .transpose()?;
            (
                Target::role(
                    name,
                    account_id,
                    level,
                    RoleArn::parse(arn)?,
                    external_id,
                    body.max_duration_seconds,
                )?,
                false,
            )
        }
        "federated_user" => {
            let policy = match body.session_policy {
                Some(Value::String(s)) => SessionPolicy::parse(&s)?,
                Some(other @ Value::Object(_)) => SessionPolicy::parse(&other.to_string())?,
                _ => {
                    return Err(InvalidValue::new(
                        "session_policy",
                        "is required for a federated-user target",
                    )
                    .into());
                }
            };
            let (sealed, keep) = match body.sealed_keys.as_deref() {
                Some(s) => (Sealed::parse(s)?, false),
                None => (Sealed::parse("AA==")?, true),
            };
            let fallback;
            let account = match account {
                Some(a) => a,
                None => {
                    fallback = Account {
                        id: account_id.clone(),
                        name: AccountName::parse("unknown")?,
                        partition: Partition::Aws,
                    };
                    &fallback
                }
            };
            (
                Target::federated_user(
                    name,
                    account,
                    level,
                    sealed,
                    policy,
                    body.max_duration_seconds,
                )?,
                keep,
            )
        }
        _ => return Err(InvalidValue::new("kind", "must be role or federated_user").into()),
    };
    target.high_security = body.high_security;
    target.approvers = body.approvers;
    target.description = body
        .description
        .as_deref()
        .map(Description::parse)
        .transpose()?;
    Ok((target, keep_keys))
}

pub async fn list_targets(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let account = q
        .account
        .as_deref()
        .ok_or_else(|| InvalidValue::new("account", "is required"))?;
    let page = s
        .shared
        .admin
        .targets(&ctx, &AccountId::parse(account)?, &q.page()?)
        .await?;
    Ok(page_json(
        page,
        |t| json!({ "version": t.version, "target": target_view(&t.value) }),
    ))
}

pub async fn get_target(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    let t = s
        .shared
        .admin
        .target(&ctx, &TargetName::parse(&name)?)
        .await?;
    Ok(versioned_response(
        StatusCode::OK,
        t.version,
        target_view(&t.value),
    ))
}

pub async fn create_target(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<TargetBody>,
) -> Result<Response, ApiError> {
    let name = required("name", &body.name)?;
    let account = match AccountId::parse(&body.account_id) {
        Ok(id) => s
            .shared
            .admin
            .account(&ctx, &id)
            .await
            .ok()
            .map(|a| a.value),
        Err(e) => return Err(e.into()),
    };
    let (target, keep_keys) = parse_target(&name, body, account.as_ref())?;
    if keep_keys {
        return Err(InvalidValue::new(
            "sealed_keys",
            "is required for a federated-user target (see `cooper encrypt`)",
        )
        .into());
    }
    let t = s.shared.admin.create_target(&ctx, target).await?;
    Ok(versioned_response(
        StatusCode::CREATED,
        t.version,
        target_view(&t.value),
    ))
}

pub async fn update_target(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
    JsonBody(body): JsonBody<TargetBody>,
) -> Result<Response, ApiError> {
    unchanged("name", body.name.as_deref(), &name)?;
    let account = match AccountId::parse(&body.account_id) {
        Ok(id) => s
            .shared
            .admin
            .account(&ctx, &id)
            .await
            .ok()
            .map(|a| a.value),
        Err(e) => return Err(e.into()),
    };
    let (target, keep_keys) = parse_target(&name, body, account.as_ref())?;
    let t = s
        .shared
        .admin
        .update_target(&ctx, target, keep_keys, version)
        .await?;
    Ok(versioned_response(
        StatusCode::OK,
        t.version,
        target_view(&t.value),
    ))
}

pub async fn delete_target(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    q: QueryResult<DeleteQuery>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    Ok(removed(
        s.shared
            .admin
            .delete_target(&ctx, &TargetName::parse(&name)?, version, q.cascade)
            .await?,
    ))
}

// ---- users ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

fn yes() -> bool {
    true
}

fn user_view(u: &User) -> Value {
    json!({
        "name": u.name,
        "enabled": u.enabled,
        "expires_at": u.expires_at.as_ref().map(rfc3339),
        "display_name": u.display_name,
    })
}

fn parse_user(name: &str, body: &UserBody) -> Result<User, ApiError> {
    Ok(User {
        name: UserName::parse(name)?,
        enabled: body.enabled,
        expires_at: time_opt(body.expires_at.as_deref(), "expires_at")?,
        display_name: body
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()?,
    })
}

pub async fn list_users(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let page = s.shared.admin.users(&ctx, &q.page()?).await?;
    Ok(page_json(
        page,
        |u: Versioned<User>| json!({ "version": u.version, "user": user_view(&u.value) }),
    ))
}

fn details_view(d: UserDetails) -> Response {
    let mut v = user_view(&d.user.value);
    v["groups"] = json!(d.groups);
    v["admin"] = json!(
        d.admin_grants
            .iter()
            .map(|g| g
                .account
                .as_ref()
                .map_or("universal".to_owned(), ToString::to_string))
            .collect::<Vec<_>>()
    );
    v["totp_enrolled"] = json!(d.totp_enrolled);
    v["has_password"] = json!(d.has_password);
    versioned_response(StatusCode::OK, d.user.version, v)
}

pub async fn get_user(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(details_view(
        s.shared.admin.user(&ctx, &UserName::parse(&name)?).await?,
    ))
}

pub async fn create_user(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<UserBody>,
) -> Result<Response, ApiError> {
    let name = required("name", &body.name)?;
    let u = s
        .shared
        .admin
        .create_user(&ctx, parse_user(&name, &body)?)
        .await?;
    Ok(versioned_response(
        StatusCode::CREATED,
        u.version,
        user_view(&u.value),
    ))
}

pub async fn update_user(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
    JsonBody(body): JsonBody<UserBody>,
) -> Result<Response, ApiError> {
    unchanged("name", body.name.as_deref(), &name)?;
    let u = s
        .shared
        .admin
        .update_user(&ctx, parse_user(&name, &body)?, version)
        .await?;
    Ok(versioned_response(
        StatusCode::OK,
        u.version,
        user_view(&u.value),
    ))
}

pub async fn delete_user(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    q: QueryResult<DeleteQuery>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    Ok(removed(
        s.shared
            .admin
            .delete_user(&ctx, &UserName::parse(&name)?, version, q.cascade)
            .await?,
    ))
}

pub async fn reset_totp(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let user = UserName::parse(&name)?;
    s.shared.admin.reset_totp(&ctx, &user).await?;
    Ok(Json(json!({ "user": user, "totp_enrolled": false })))
}

fn token_view(t: &cooper_core::token::ApiTokenRecord) -> Value {
    json!({
        "id": t.id,
        "user": t.user,
        "created_at": rfc3339(&t.created_at),
        "expires_at": rfc3339(&t.expires_at),
        "revoked": t.revoked,
        "label": t.label,
    })
}

pub async fn list_tokens(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let tokens = s
        .shared
        .admin
        .tokens(&ctx, &UserName::parse(&name)?)
        .await?;
    Ok(Json(
        json!({ "items": tokens.iter().map(token_view).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    days: Option<i64>,
}

pub async fn issue_token(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<Response, ApiError> {
    let label = body.label.as_deref().map(TokenLabel::parse).transpose()?;
    let (token, record) = s
        .shared
        .admin
        .issue_token(&ctx, &UserName::parse(&name)?, label, body.days)
        .await?;
    let mut view = token_view(&record);
    view["token"] = json!(token.reveal().expose_secret());
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub async fn revoke_token(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let id = TokenId::parse(&id)?;
    s.shared.admin.revoke_token(&ctx, &id).await?;
    Ok(Json(json!({ "id": id, "revoked": true })))
}

// ---- groups ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

fn group_view(g: &Group) -> Value {
    json!({ "name": g.name, "description": g.description })
}

fn parse_group(name: &str, body: &GroupBody) -> Result<Group, ApiError> {
    Ok(Group {
        name: GroupName::parse(name)?,
        description: body
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()?,
    })
}

pub async fn list_groups(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let page = s.shared.admin.groups(&ctx, &q.page()?).await?;
    Ok(page_json(
        page,
        |g| json!({ "version": g.version, "group": group_view(&g.value) }),
    ))
}

pub async fn get_group(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    let (g, members) = s
        .shared
        .admin
        .group(&ctx, &GroupName::parse(&name)?)
        .await?;
    let mut v = group_view(&g.value);
    v["members"] = json!(members);
    Ok(versioned_response(StatusCode::OK, g.version, v))
}

pub async fn create_group(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<GroupBody>,
) -> Result<Response, ApiError> {
    let name = required("name", &body.name)?;
    let g = s
        .shared
        .admin
        .create_group(&ctx, parse_group(&name, &body)?)
        .await?;
    Ok(versioned_response(
        StatusCode::CREATED,
        g.version,
        group_view(&g.value),
    ))
}

pub async fn update_group(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
    JsonBody(body): JsonBody<GroupBody>,
) -> Result<Response, ApiError> {
    unchanged("name", body.name.as_deref(), &name)?;
    let g = s
        .shared
        .admin
        .update_group(&ctx, parse_group(&name, &body)?, version)
        .await?;
    Ok(versioned_response(
        StatusCode::OK,
        g.version,
        group_view(&g.value),
    ))
}

pub async fn delete_group(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    q: QueryResult<DeleteQuery>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    Ok(removed(
        s.shared
            .admin
            .delete_group(&ctx, &GroupName::parse(&name)?, version, q.cascade)
            .await?,
    ))
}

pub async fn add_member(
    State(s): State<AdminState>,
    Path((group, user)): Path<(String, String)>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let (group, user) = (GroupName::parse(&group)?, UserName::parse(&user)?);
    s.shared.admin.add_member(&ctx, &group, &user).await?;
    Ok(Json(json!({ "group": group, "member": user })))
}

pub async fn remove_member(
    State(s): State<AdminState>,
    Path((group, user)): Path<(String, String)>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let (group, user) = (GroupName::parse(&group)?, UserName::parse(&user)?);
    s.shared.admin.remove_member(&ctx, &group, &user).await?;
    Ok(Json(json!({ "group": group, "removed": user })))
}

// ---- grants ----

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
        GrantScope::Target(t) => v["target"] = json!(t),
        GrantScope::Account { account, max_level } => {
            v["account_id"] = json!(account);
            v["max_level"] = json!(max_level);
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
            return Err(ApiError::bad_request(
                "invalid_request",
                "a grant is of a target (target), or of an account up to a level (account_id and max_level)",
            ));
        }
    };
    let grant = Grant {
        principal: body.principal,
        scope,
        expires_at: time_opt(body.expires_at.as_deref(), "expires_at")?,
    };
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
    let grant = AdminGrant {
        principal: body.principal,
        account: body
            .account_id
            .as_deref()
            .map(AccountId::parse)
            .transpose()?,
    };
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

// ---- audit ----

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
        (Some(k), None, None) => {
            if k.len() < 16 || k.len() > 128 || !k.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(
                    InvalidValue::new("access_key_id", "must be an AWS access key id").into(),
                );
            }
            AuditQuery::AccessKey(k.clone())
        }
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

/// For `whoami`: the caller's admin scope, named.
pub fn scope_name(scope: &cooper_core::admin::scope::AdminScope) -> Value {
    use cooper_core::admin::scope::AdminScope;
    match scope {
        AdminScope::None => Value::Null,
        AdminScope::Universal => json!({ "scope": "universal" }),
        AdminScope::Accounts(a) => json!({ "scope": "accounts", "accounts": a }),
    }
}
