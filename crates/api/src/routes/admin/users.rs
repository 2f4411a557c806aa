//! `/v1/admin/users`: people and machine identities, their authenticators and API tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cooper_core::admin::{RevokeOn, UserDetails};
use cooper_core::model::User;
use cooper_core::names::{DisplayName, GroupName, InvalidValue, TokenLabel, UserName};
use cooper_core::token::{ApiTokenRecord, TokenId};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use super::Versioned;
use super::{
    Caller, DeleteQuery, IfMatch, ListQuery, PageView, QueryResult, RemovedView, key_of, keyed,
    page_json, query, removed, rfc3339, time_opt, versioned_response,
};
use crate::error::ApiError;
use crate::json::JsonBody;
#[cfg(feature = "openapi")]
use crate::schema::{ETag, NoStore};
use crate::state::AdminState;

/// A user's new state (`name`, if given, is the path's: it cannot change).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = UserUpdate))]
pub struct UserBody {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<UserName>))]
    name: Option<String>,
    #[serde(default = "yes")]
    #[cfg_attr(feature = "openapi", schema(default = true))]
    enabled: bool,
    /// When the user stops being let in; null for never. An RFC 3339 date-time with a 4-digit
    /// year and an offset (`Z` or `+HH:MM`), e.g. `2026-12-31T23:59:59Z`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    expires_at: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DisplayName>))]
    display_name: Option<String>,
}

/// A user to create.
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UserCreate {
    name: UserName,
    #[serde(default)]
    #[schema(default = true)]
    enabled: bool,
    /// When the user stops being let in; null for never. An RFC 3339 date-time with a 4-digit
    /// year and an offset (`Z` or `+HH:MM`), e.g. `2026-12-31T23:59:59Z`.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    display_name: Option<DisplayName>,
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

/// A person or a machine identity.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = User))]
pub struct UserView {
    name: UserName,
    enabled: bool,
    #[cfg_attr(feature = "openapi", schema(required = true, format = DateTime))]
    expires_at: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    display_name: Option<DisplayName>,
    /// Only after an update with `revoke_sessions=true`: the revocation of the person's AWS
    /// sessions (their cooper sessions are ended too).
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation: Option<super::revocations::RevocationView>,
}

fn user_view(u: &User) -> UserView {
    UserView {
        name: u.name.clone(),
        enabled: u.enabled,
        expires_at: u.expires_at.as_ref().map(rfc3339),
        display_name: u.display_name.clone(),
        revocation: None,
    }
}

/// How an update goes on.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct UpdateUserQuery {
    /// Also end the person's cooper sessions and every AWS session cooper issued them (what
    /// disabling someone who left should do: one call).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(default = false))]
    revoke_sessions: bool,
}

/// A user in a list, with its version.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEntry {
    /// The version, as in ETag.
    version: u64,
    user: UserView,
}

/// List users
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/users", operation_id = "listUsers", tag = "admin-users",
    params(Caller, ListQuery),
    responses((status = 200, description = "A page of users.", body = PageView<UserEntry>)),
))]
pub async fn list_users(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<PageView<UserEntry>>, ApiError> {
    let q = query(q)?;
    let page = s.shared.admin.users(&ctx, &q.page()?).await?;
    Ok(page_json(page, |u| UserEntry {
        version: u.version,
        user: user_view(&u.value),
    }))
}

/// A user, with their groups, admin grants and factors.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserDetailsView {
    #[serde(flatten)]
    user: UserView,
    groups: Vec<GroupName>,
    /// The user's own admin grants: `universal` or an account id.
    admin: Vec<String>,
    totp_enrolled: bool,
    has_password: bool,
}

fn details_view(d: UserDetails) -> Response {
    let view = UserDetailsView {
        user: user_view(&d.user.value),
        groups: d.groups,
        admin: d
            .admin_grants
            .iter()
            .map(|g| {
                g.account
                    .as_ref()
                    .map_or("universal".to_owned(), ToString::to_string)
            })
            .collect(),
        totp_enrolled: d.totp_enrolled,
        has_password: d.has_password,
    };
    versioned_response(StatusCode::OK, d.user.version, view)
}

/// Read a user, with groups, admin grants and factors
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/users/{name}", operation_id = "getUser", tag = "admin-users",
    params(("name" = UserName, Path, description = "The user's name."), Caller),
    responses((status = 200, description = "The user.", body = Versioned<UserDetailsView>, headers(("ETag" = ETag)))),
))]
pub async fn get_user(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    Ok(details_view(
        s.shared.admin.user(&ctx, &UserName::parse(&name)?).await?,
    ))
}

/// Create a user (universal admins)
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/users", operation_id = "createUser", tag = "admin-users",
    params(Caller),
    request_body(content = UserCreate, example = json!({"name": "alice@example.com", "display_name": "Alice Example", "enabled": true})),
    responses((status = 201, description = "The user, at version 1.", body = Versioned<UserView>, headers(("ETag" = ETag)))),
))]
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

/// Replace a user (universal admins)
#[cfg_attr(feature = "openapi", utoipa::path(
    put, path = "/v1/admin/users/{name}", operation_id = "updateUser", tag = "admin-users",
    params(("name" = UserName, Path, description = "The user's name."), Caller, UpdateUserQuery, ("If-Match" = IfMatch, Header, description = "The ETag read; an update of a stale version is refused (409).")),
    request_body(content = UserBody, example = json!({"display_name": "Alice Example (Payments)"})),
    responses((status = 200, description = "The user, at its new version.", body = Versioned<UserView>, headers(("ETag" = ETag)))),
))]
pub async fn update_user(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    q: QueryResult<UpdateUserQuery>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
    JsonBody(mut body): JsonBody<UserBody>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    keyed("name", &mut body.name, &name)?;
    let admin = &s.shared.admin;
    let u = admin
        .update_user(&ctx, User::try_from(body)?, version)
        .await?;
    let mut view = user_view(&u.value);
    if q.revoke_sessions {
        // The update (a disable) lands first: no session can be issued after the revocation.
        admin
            .revoke_user_sessions(&ctx.next_step("sessions"), &u.value.name)
            .await?;
        let report = admin
            .revoke_aws_sessions(
                &ctx.next_step("revocation"),
                &u.value.name,
                &RevokeOn::Everywhere,
            )
            .await?;
        view.revocation = Some(super::revocations::revocation_view(report));
    }
    Ok(versioned_response(StatusCode::OK, u.version, view))
}

/// Delete a user and what they own
///
/// Refused (409 `in_use`) while grants, admin grants or memberships name the user, unless
/// `cascade`; the user's tokens and factors always go with them.
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, path = "/v1/admin/users/{name}", operation_id = "deleteUser", tag = "admin-users",
    params(("name" = UserName, Path, description = "The user's name."), Caller, DeleteQuery, ("If-Match" = Option<IfMatch>, Header, description = "The ETag read: delete only that version.")),
    responses((status = 200, description = "What was deleted.", body = RemovedView)),
))]
pub async fn delete_user(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    q: QueryResult<DeleteQuery>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
) -> Result<Json<RemovedView>, ApiError> {
    let q = query(q)?;
    Ok(removed(
        s.shared
            .admin
            .delete_user(&ctx, &UserName::parse(&name)?, version, q.cascade)
            .await?,
    ))
}

/// The user's authenticator is removed: they may enroll again.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpReset {
    user: UserName,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::False))]
    totp_enrolled: bool,
}

/// Remove a user's authenticator
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/users/{name}/totp/reset", operation_id = "resetUserTotp", tag = "admin-users",
    params(("name" = UserName, Path, description = "The user's name."), Caller),
    responses((status = 200, description = "The user may enroll again.", body = TotpReset)),
))]
pub async fn reset_totp(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Json<TotpReset>, ApiError> {
    let user = UserName::parse(&name)?;
    s.shared.admin.reset_totp(&ctx, &user).await?;
    Ok(Json(TotpReset {
        user,
        totp_enrolled: false,
    }))
}

/// An API token (never its secret).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApiToken))]
pub struct TokenView {
    id: TokenId,
    user: UserName,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    created_at: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    expires_at: String,
    revoked: bool,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    label: Option<TokenLabel>,
}

fn token_view(t: &ApiTokenRecord) -> TokenView {
    TokenView {
        id: t.id.clone(),
        user: t.user.clone(),
        created_at: rfc3339(&t.created_at),
        expires_at: rfc3339(&t.expires_at),
        revoked: t.revoked,
        label: t.label.clone(),
    }
}

/// A user's API tokens.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApiTokenList))]
pub struct TokenList {
    items: Vec<TokenView>,
}

/// List a user's API tokens
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/users/{name}/tokens", operation_id = "listUserTokens", tag = "admin-tokens",
    params(("name" = UserName, Path, description = "The user's name."), Caller),
    responses((status = 200, description = "The tokens (never their secrets).", body = TokenList)),
))]
pub async fn list_tokens(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = s
        .shared
        .admin
        .tokens(&ctx, &UserName::parse(&name)?)
        .await?;
    Ok(Json(TokenList {
        items: tokens.iter().map(token_view).collect(),
    }))
}

/// A token to issue.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TokenRequest))]
pub struct TokenBody {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<TokenLabel>))]
    label: Option<String>,
    /// Lifetime in days, default 90.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 365))]
    days: Option<i64>,
}

/// An API token, with its bearer secret: shown once.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = IssuedApiToken))]
pub struct IssuedTokenView<'a> {
    #[serde(flatten)]
    token: TokenView,
    /// The bearer token, shown once: cooper_ID_SECRET.
    #[serde(rename = "token")]
    bearer: &'a str,
}

/// Issue an API token for a user
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/users/{name}/tokens", operation_id = "issueUserToken", tag = "admin-tokens",
    params(("name" = UserName, Path, description = "The user's name."), Caller),
    request_body(content = TokenBody, example = json!({"label": "CI deploy (payments)", "days": 30})),
    responses((status = 201, description = "The token, shown once.", body = IssuedTokenView, headers(("Cache-Control" = NoStore)))),
))]
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
    let bearer = token.reveal();
    let view = IssuedTokenView {
        token: token_view(&record),
        bearer: bearer.expose_secret(),
    };
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The token is revoked.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedToken {
    id: TokenId,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::True))]
    revoked: bool,
}

/// Revoke an API token
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, path = "/v1/admin/tokens/{id}", operation_id = "revokeToken", tag = "admin-tokens",
    params(("id" = TokenId, Path, description = "The token's id."), Caller),
    responses((status = 200, description = "Revoked.", body = RevokedToken)),
))]
pub async fn revoke_token(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Caller(ctx): Caller,
) -> Result<Json<RevokedToken>, ApiError> {
    let id = TokenId::parse(&id)?;
    s.shared.admin.revoke_token(&ctx, &id).await?;
    Ok(Json(RevokedToken { id, revoked: true }))
}

/// How long the enrollment code stays good.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EnrollmentCodeRequest))]
pub struct EnrollmentCodeBody {
    /// Lifetime in hours, 1 to 336 (default 72).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 336))]
    hours: Option<i64>,
}

/// A one-time enrollment code: shown once.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = IssuedEnrollmentCode))]
pub struct IssuedEnrollmentCodeView<'a> {
    id: TokenId,
    user: UserName,
    /// The one-time code, shown once: cooper_enroll_ID_SECRET.
    code: &'a str,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    expires_at: String,
}

/// Issue a one-time code that enrolls a user's first authenticator
///
/// Universal admins, with a fresh code (`enrollment_code` is sensitive by default); 409
/// `already_enrolled` when the user has an authenticator (reset it first). The person redeems it
/// as the bearer of `POST /v1/totp/enrollment` and its confirmation (which may also set a first
/// password); it is stored only as a hash, and the authenticator enrolled with it never approves
/// the issuing admin's requests.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/users/{name}/enrollment-code", operation_id = "issueEnrollmentCode", tag = "admin-users",
    params(("name" = UserName, Path, description = "The user's name."), Caller),
    request_body(content = EnrollmentCodeBody, example = json!({"hours": 72})),
    responses((status = 201, description = "The code, shown once.", body = IssuedEnrollmentCodeView, headers(("Cache-Control" = NoStore)))),
))]
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
    let code = code.reveal();
    let view = IssuedEnrollmentCodeView {
        id: record.id,
        user: record.user,
        code: code.expose_secret(),
        expires_at: rfc3339(&record.expires_at),
    };
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
