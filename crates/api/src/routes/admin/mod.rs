//! The admin-targets function: `/v1/admin/...` over accounts, targets, users, groups, grants,
//! admins, tokens and the audit trail, one file per resource. Every call is scoped per account;
//! updates carry the version they read (If-Match); sensitive operations need a fresh code
//! (`X-Cooper-TOTP`). Handlers only parse (request bodies convert into domain types with
//! `TryFrom`), call the use case, and answer; this module holds what they share.

mod accounts;
mod audit;
mod grants;
mod groups;
mod revocations;
mod targets;
mod users;

pub use accounts::*;
pub use audit::*;
pub use grants::*;
pub use groups::*;
pub use revocations::*;
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
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::Authenticated;
use crate::context::Meta;
use crate::error::ApiError;
use crate::state::AdminState;

pub const TOTP_HEADER: &str = "x-cooper-totp";

/// Who may approve requests for access by people not granted it (just-in-time access), and for
/// how long at most. Without one, nothing can be requested.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(Serialize, utoipa::ToSchema), schema(as = AccessRequestPolicyInput))]
pub struct RequestPolicyBody {
    /// 1 to 10 users or groups; never the requester themselves.
    approvers: Vec<cooper_core::model::Principal>,
    /// The longest access one approval gives: 1800 to 604800 seconds (default 28800, 8 hours).
    #[serde(default)]
    max_duration_seconds: Option<u32>,
    /// Accounts only: the highest level that may be requested there (default: any).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<cooper_core::names::Level>))]
    max_level: Option<u32>,
}

impl RequestPolicyBody {
    /// The policy, for an account (which may cap the level) or a target (which may not).
    pub(crate) fn parse(
        self,
        on_account: bool,
    ) -> Result<cooper_core::model::requests::RequestPolicy, InvalidValue> {
        if !on_account && self.max_level.is_some() {
            return Err(InvalidValue::new(
                "access_requests.max_level",
                "is for accounts only: a target is requested whole",
            ));
        }
        let max_level = self
            .max_level
            .map(cooper_core::names::Level::new)
            .transpose()?;
        cooper_core::model::requests::RequestPolicy::new(
            self.approvers,
            self.max_duration_seconds,
            max_level,
        )
    }
}

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

#[cfg(feature = "openapi")]
impl utoipa::IntoParams for Caller {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::ToSchema;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        vec![
            ParameterBuilder::new()
                .name("X-Cooper-TOTP")
                .parameter_in(ParameterIn::Header)
                .required(utoipa::openapi::Required::False)
                .description(Some(
                    "The admin's fresh TOTP code, for operations the deployment calls sensitive \
                     (by default: top-level grants, admin grants, federation keys, deleting an \
                     account; optionally deleting a user, resetting TOTP, issuing tokens). Read \
                     (and checked for shape) on every admin operation.",
                ))
                .schema(Some(utoipa::openapi::Ref::from_schema_name(
                    TotpCode::name(),
                )))
                .example(Some("123456".into()))
                .build(),
        ]
    }
}

/// `If-Match: "3"`: the version an update read.
pub struct IfMatch(pub Option<u64>);

/// What [`IfMatch`] reads: the ETag, quoted or not, weak or not.
pub const IF_MATCH_PATTERN: &str = r#"^[\t ]*(?:W/)?"*\+?[0-9]+"*[\t ]*$"#;

/// The schema of the `If-Match` header's value.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for IfMatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(IF_MATCH_PATTERN))
            .description(Some("The ETag read, e.g. `\"3\"`."))
            .examples(["\"1\""])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for IfMatch {}

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

/// A resource and its version (also in `ETag`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Versioned<T> {
    #[serde(flatten)]
    pub value: T,
    /// The version, as in ETag.
    pub version: u64,
}

/// A resource with its version in the body and in `ETag`.
pub(super) fn versioned_response<T: Serialize>(
    status: StatusCode,
    version: u64,
    value: T,
) -> Response {
    let mut response = (status, Json(Versioned { value, version })).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}

// The cursor's pattern is the adapters' encoding (base64url): anything else is refused.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ListQuery {
    /// Page size (default 50).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub(super) limit: Option<u16>,
    /// The `cursor` of the previous page.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(pattern = "^[A-Za-z0-9_-]+$"))]
    pub(super) cursor: Option<String>,
    /// Documented where it is used (listing targets).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(ignore))]
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

/// A page of a list, and where the next one starts.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageView<T> {
    pub items: Vec<T>,
    /// Where the next page starts; null on the last page.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cursor: Option<String>,
}

pub(super) fn page_json<T, V>(page: Page<T>, view: impl Fn(T) -> V) -> Json<PageView<V>> {
    Json(PageView {
        items: page.items.into_iter().map(view).collect(),
        cursor: page.cursor,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct DeleteQuery {
    /// Also remove what depends on it (grants, admin grants, memberships).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(default = false))]
    pub(super) cascade: bool,
}

/// What a delete removed.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Removed))]
pub struct RemovedView {
    /// What was deleted (`account:ID`, `target:NAME`, ...).
    pub deleted: String,
    /// What went with it.
    pub cascaded: Vec<String>,
}

pub(super) fn removed(r: Removed) -> Json<RemovedView> {
    Json(RemovedView {
        deleted: r.resource,
        cascaded: r.cascaded,
    })
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
