//! `/v1/admin/users`: people and machine identities, their authenticators and API tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cooper_core::admin::UserDetails;
use cooper_core::admin::store::Versioned;
use cooper_core::model::User;
use cooper_core::names::{DisplayName, InvalidValue, TokenLabel, UserName};
use cooper_core::token::TokenId;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Caller, DeleteQuery, IfMatch, ListQuery, QueryResult, key_of, keyed, page_json, query, removed,
    rfc3339, set, time_opt, versioned_response,
};
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::AdminState;

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

impl TryFrom<UserBody> for User {
    type Error = InvalidValue;

    fn try_from(body: UserBody) -> Result<Self, InvalidValue> {
        Ok(User {
            name: UserName::parse(&key_of("name", body.name)?)?,
            enabled: body.enabled,
            expires_at: time_opt(body.expires_at.as_deref(), "expires_at")?,
            display_name: body
                .display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()?,
        })
    }
}

fn user_view(u: &User) -> Value {
    json!({
        "name": u.name,
        "enabled": u.enabled,
        "expires_at": u.expires_at.as_ref().map(rfc3339),
        "display_name": u.display_name,
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
    set(&mut v, "groups", json!(d.groups));
    let admin: Vec<String> = d
        .admin_grants
        .iter()
        .map(|g| {
            g.account
                .as_ref()
                .map_or("universal".to_owned(), ToString::to_string)
        })
        .collect();
    set(&mut v, "admin", json!(admin));
    set(&mut v, "totp_enrolled", json!(d.totp_enrolled));
    set(&mut v, "has_password", json!(d.has_password));
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
    let u = s
        .shared
        .admin
        .create_user(&ctx, User::try_from(body)?)
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
    JsonBody(mut body): JsonBody<UserBody>,
) -> Result<Response, ApiError> {
    keyed("name", &mut body.name, &name)?;
    let u = s
        .shared
        .admin
        .update_user(&ctx, User::try_from(body)?, version)
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
    set(&mut view, "token", json!(token.reveal().expose_secret()));
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentCodeBody {
    /// How long the code stays good (1 to 336 hours; 72 by default).
    #[serde(default)]
    hours: Option<i64>,
}

/// A one-time code the person redeems to enroll a first authenticator (and set a first
/// password): shown once, stored only as a hash.
pub async fn issue_enrollment_code(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<EnrollmentCodeBody>,
) -> Result<Response, ApiError> {
    let (code, record) = s
        .shared
        .admin
        .issue_enrollment_code(&ctx, &UserName::parse(&name)?, body.hours)
        .await?;
    let view = json!({
        "id": record.id,
        "user": record.user,
        "code": code.reveal().expose_secret(),
        "expires_at": rfc3339(&record.expires_at),
    });
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
