//! The admin-targets function: `/v1/admin/...` over accounts, targets, users, groups, grants,
//! admins, tokens and the audit trail, one file per resource. Every call is scoped per account;
//! updates carry the version they read (If-Match); sensitive operations need a fresh code
//! (`X-Cooper-TOTP`). Handlers only parse (request bodies convert into domain types with
//! `TryFrom`), call the use case, and answer; this module holds what they share.

mod accounts;
mod audit;
mod grants;
mod groups;
mod targets;
mod users;

pub use accounts::*;
pub use audit::*;
pub use grants::*;
pub use groups::*;
pub use targets::*;
pub use users::*;

use axum::Json;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cooper_core::admin::store::{Page, PageRequest};
use cooper_core::admin::{AdminCall, AdminContext, Removed};
use cooper_core::names::InvalidValue;
use cooper_core::totp::TotpCode;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::auth::Authenticated;
use crate::context::Meta;
use crate::error::ApiError;
use crate::state::AdminState;

pub const TOTP_HEADER: &str = "x-cooper-totp";

/// The calling admin, checked: authenticated, active, with an admin scope. A fresh code, when
/// the operation needs one, comes in `X-Cooper-TOTP`.
pub struct Caller(pub AdminContext);

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
pub struct IfMatch(pub Option<u64>);

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

pub(super) fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Sets `key` of a JSON object view (a view is an object; anything else is left as it is).
pub(super) fn set(view: &mut Value, key: &str, value: Value) {
    if let Some(fields) = view.as_object_mut() {
        fields.insert(key.to_owned(), value);
    }
}

/// A resource with its version in the body and in `ETag`.
pub(super) fn versioned_response(status: StatusCode, version: u64, mut body: Value) -> Response {
    set(&mut body, "version", json!(version));
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub(super) limit: Option<u16>,
    #[serde(default)]
    pub(super) cursor: Option<String>,
    #[serde(default)]
    pub(super) account: Option<String>,
}

impl ListQuery {
    pub(super) fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::new(self.limit, self.cursor.clone())?)
    }
}

pub(super) fn query<T: serde::de::DeserializeOwned + Default>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))
}

pub(super) type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

pub(super) fn page_json<T>(page: Page<T>, view: impl Fn(T) -> Value) -> Json<Value> {
    Json(json!({
        "items": page.items.into_iter().map(view).collect::<Vec<_>>(),
        "cursor": page.cursor,
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    pub(super) cascade: bool,
}

pub(super) fn removed(r: Removed) -> Json<Value> {
    Json(json!({ "deleted": r.resource, "cascaded": r.cascaded }))
}

pub(super) fn time_opt(
    v: Option<&str>,
    field: &'static str,
) -> Result<Option<OffsetDateTime>, InvalidValue> {
    v.map(|s| {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| InvalidValue::new(field, "must be an RFC 3339 time"))
    })
    .transpose()
}

pub(super) fn rfc3339(t: &OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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

/// On update the key comes from the path: a body may repeat it but not change it. After this,
/// the body holds the path's key.
pub(super) fn keyed(
    field: &'static str,
    body_key: &mut Option<String>,
    path: &str,
) -> Result<(), ApiError> {
    match body_key {
        Some(given) if given != path => Err(ApiError::bad_request(
            "immutable_field",
            format!("{field} cannot be changed"),
        )),
        _ => {
            *body_key = Some(path.to_owned());
            Ok(())
        }
    }
}

/// A body's key field: required when creating (on update, [`keyed`] filled it from the path).
pub(super) fn key_of(field: &'static str, value: Option<String>) -> Result<String, InvalidValue> {
    value.ok_or_else(|| InvalidValue::new(field, "is required"))
}
