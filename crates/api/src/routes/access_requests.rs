//! Just-in-time access: POST /v1/access-requests, GET /v1/access-requests (mine, or waiting for
//! me), GET /v1/access-requests/{id}, and POST .../approve, .../deny, .../cancel.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use cooper_core::model::Principal;
use cooper_core::model::requests::{
    AccessRequest, AccessRequestId, RequestStatus, RequestedAccess,
};
#[cfg(feature = "openapi")]
use cooper_core::names::UserName;
use cooper_core::names::{AccountId, InvalidValue, Level, Reason, TargetName};
use cooper_core::requests::{AccessAsk, RequestError, RequestRole};
use cooper_core::totp::TotpCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::Authenticated;
use crate::context::Meta;
use crate::error::ApiError;
use crate::json::{JsonBody, SecretJsonBody};
use crate::state::IssueState;

/// What to ask for: a `target`, or an `account_id` with a `level` (its targets up to that level).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AccessRequestInput))]
pub struct OpenBody {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<TargetName>))]
    pub target: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<AccountId>))]
    pub account_id: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Level>))]
    pub level: Option<u32>,
    /// How long the access is needed: 1800 seconds up to what the target's (or account's)
    /// policy allows; default an hour (or less, if the policy allows less).
    #[serde(default)]
    pub duration_seconds: Option<u64>,
    #[cfg_attr(feature = "openapi", schema(value_type = Reason))]
    pub reason: String,
}

impl TryFrom<OpenBody> for AccessAsk {
    type Error = InvalidValue;

    fn try_from(body: OpenBody) -> Result<Self, InvalidValue> {
        let access = match (body.target, body.account_id, body.level) {
            (Some(t), None, None) => RequestedAccess::Target(TargetName::parse(&t)?),
            (None, Some(a), Some(l)) => RequestedAccess::Account {
                account: AccountId::parse(&a)?,
                level: Level::new(l)?,
            },
            _ => {
                return Err(InvalidValue::new(
                    "target",
                    "give either target, or account_id and level",
                ));
            }
        };
        Ok(AccessAsk {
            access,
            duration_seconds: body.duration_seconds,
            reason: Reason::parse(&body.reason)?,
        })
    }
}

/// The approver's own fresh code, and how long to give (at most what was asked).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AccessApproval))]
pub struct ApproveBody {
    #[cfg_attr(feature = "openapi", schema(value_type = TotpCode))]
    pub totp: String,
    /// Shorter than asked, if the approver likes (1800 seconds at least).
    #[serde(default)]
    pub duration_seconds: Option<u64>,
}

/// Why (optional): for a denial, or for ending access early.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AccessRequestNote))]
pub struct NoteBody {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Reason>))]
    pub reason: Option<String>,
}

impl NoteBody {
    fn note(&self) -> Result<Option<Reason>, InvalidValue> {
        self.reason.as_deref().map(Reason::parse).transpose()
    }
}

/// Whose requests to list, and in which state.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ListQuery {
    /// `requester` (default): the ones I made; `approver`: the ones asking me.
    #[serde(default)]
    pub role: Option<Role>,
    /// Only those in this state.
    #[serde(default)]
    pub state: Option<RequestStatus>,
}

/// Whose requests: the ones I made, or the ones asking me.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AccessRequestRole))]
pub enum Role {
    Requester,
    Approver,
}

/// An access request and where it stands.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AccessRequest))]
pub struct AccessRequestView {
    #[cfg_attr(feature = "openapi", schema(value_type = AccessRequestId))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    pub requester: String,
    /// What was asked for: a target ...
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<TargetName>))]
    pub target: Option<String>,
    /// ... or an account's targets up to `level` (for a target, its account).
    #[cfg_attr(feature = "openapi", schema(value_type = AccountId))]
    pub account_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Level>))]
    pub level: Option<u32>,
    /// How long the requester asked to have it.
    pub duration_seconds: u32,
    pub reason: String,
    /// Who was asked.
    pub approvers: Vec<Principal>,
    pub status: RequestStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it lapses if nobody acts.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Who approved, denied or withdrew it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<UserName>))]
    pub decided_by: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub decided_at: Option<OffsetDateTime>,
    /// Why it was denied or ended, if they said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Approved: when the access ends (or ended).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub access_until: Option<OffsetDateTime>,
}

impl AccessRequestView {
    pub fn of(r: AccessRequest, now: OffsetDateTime) -> Self {
        let status = r.status_at(now);
        let (target, level) = match &r.access {
            RequestedAccess::Target(t) => (Some(t.to_string()), None),
            RequestedAccess::Account { level, .. } => (None, Some(u32::from(*level))),
        };
        Self {
            id: r.id.to_string(),
            requester: r.requester.to_string(),
            target,
            account_id: r.account.to_string(),
            level,
            duration_seconds: r.duration_seconds,
            reason: r.reason.to_string(),
            approvers: r.approvers,
            status,
            created_at: r.created_at,
            expires_at: r.expires_at,
            decided_by: r.decided_by.map(|u| u.to_string()),
            decided_at: r.decided_at,
            note: r.note.map(|n| n.to_string()),
            access_until: r.access_until,
        }
    }
}

/// A list of access requests, newest first (the last 14 days, at most 100).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AccessRequestList))]
pub struct ListView {
    pub items: Vec<AccessRequestView>,
}

pub(crate) fn request_id(raw: &str) -> Result<AccessRequestId, ApiError> {
    // A malformed id names no request: the same answer as an unknown one.
    AccessRequestId::parse(raw).map_err(|_| RequestError::NotFound.into())
}

fn optional_note(headers: &axum::http::HeaderMap, body: &[u8]) -> Result<Option<Reason>, ApiError> {
    let body: NoteBody = crate::json::parse_optional(headers, body)?;
    Ok(body.note()?)
}

fn view(state: &IssueState, r: AccessRequest) -> Json<AccessRequestView> {
    Json(AccessRequestView::of(r, state.shared.clock.now()))
}

/// Ask for access you do not hold (just-in-time access)
///
/// For a target, or an account's targets up to a level, whose policy allows requests. The
/// approvers it names are told; one of them (never you) approves with their own fresh code,
/// which gives you a grant for the time approved.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/access-requests", operation_id = "openAccessRequest", tag = "access-requests",
    request_body(content = OpenBody, example = json!({"target": "payments-admin", "duration_seconds": 7200, "reason": "Incident 4711: the payments queue is stuck"})),
    responses((status = 201, description = "The request, waiting for an approver.", body = AccessRequestView)),
))]
pub async fn open(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    Authenticated(identity): Authenticated,
    JsonBody(body): JsonBody<OpenBody>,
) -> Result<(StatusCode, Json<AccessRequestView>), ApiError> {
    let ask = AccessAsk::try_from(body)?;
    let request = state.shared.requests.open(identity, &ask, &meta).await?;
    Ok((StatusCode::CREATED, view(&state, request)))
}

/// List access requests: the ones I made, or the ones waiting for me
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/access-requests", operation_id = "listAccessRequests", tag = "access-requests",
    params(ListQuery),
    responses((status = 200, description = "The requests, newest first.", body = ListView)),
))]
pub async fn list(
    State(state): State<IssueState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
    Authenticated(identity): Authenticated,
) -> Result<Json<ListView>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let role = match q.role.unwrap_or(Role::Requester) {
        Role::Requester => RequestRole::Requester,
        Role::Approver => RequestRole::Approver,
    };
    let now = state.shared.clock.now();
    let found = state.shared.requests.list(identity, role).await?;
    let items = found
        .into_iter()
        .map(|r| AccessRequestView::of(r, now))
        .filter(|v| q.state.is_none_or(|s| s == v.status))
        .collect();
    Ok(Json(ListView { items }))
}

/// An access request
///
/// For its requester and the approvers it asked (404 to anyone else).
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/access-requests/{id}", operation_id = "getAccessRequest", tag = "access-requests",
    params(("id" = AccessRequestId, Path, description = "The access request's id (anything else is a 404).")),
    responses((status = 200, description = "The request.", body = AccessRequestView)),
))]
pub async fn get(
    State(state): State<IssueState>,
    Path(id): Path<String>,
    Authenticated(identity): Authenticated,
) -> Result<Json<AccessRequestView>, ApiError> {
    let id = request_id(&id)?;
    let request = state.shared.requests.view(&id, identity).await?;
    Ok(view(&state, request))
}

/// Approve an access request with one's own fresh code
///
/// By an approver its policy names, never the requester, signed in (not with a script's token).
/// The requester holds the access from now for what they asked, or the shorter
/// `duration_seconds` given here.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/access-requests/{id}/approve", operation_id = "approveAccessRequest", tag = "access-requests",
    params(("id" = AccessRequestId, Path, description = "The access request's id (anything else is a 404).")),
    request_body(content = ApproveBody, example = json!({"totp": "123456", "duration_seconds": 3600})),
    responses((status = 200, description = "The approved request (`access_until` says until when).", body = AccessRequestView)),
))]
pub async fn approve(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Authenticated(identity): Authenticated,
    SecretJsonBody(body): SecretJsonBody<ApproveBody>,
) -> Result<Json<AccessRequestView>, ApiError> {
    let id = request_id(&id)?;
    let code = TotpCode::parse(&body.totp)?;
    let request = state
        .shared
        .requests
        .approve(&id, identity, &code, body.duration_seconds, &meta)
        .await?;
    Ok(view(&state, request))
}

/// Deny an access request
///
/// By an approver its policy names, never the requester.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/access-requests/{id}/deny", operation_id = "denyAccessRequest", tag = "access-requests",
    params(("id" = AccessRequestId, Path, description = "The access request's id (anything else is a 404).")),
    request_body(content = Option<NoteBody>, example = json!({"reason": "Use the read-only role for this"})),
    responses((status = 200, description = "The denied request.", body = AccessRequestView)),
))]
pub async fn deny(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Authenticated(identity): Authenticated,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<AccessRequestView>, ApiError> {
    let id = request_id(&id)?;
    // The body is optional: saying why is.
    let note = optional_note(&headers, &body)?;
    let request = state
        .shared
        .requests
        .deny(&id, identity, note, &meta)
        .await?;
    Ok(view(&state, request))
}

/// Withdraw an access request, or end the access it gave
///
/// The requester withdraws a waiting request, or gives up approved access early; an approver
/// may end approved access early. Ending access removes its grant at once (sessions already
/// issued under it end when they expire, never later than the access would have).
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/access-requests/{id}/cancel", operation_id = "cancelAccessRequest", tag = "access-requests",
    params(("id" = AccessRequestId, Path, description = "The access request's id (anything else is a 404).")),
    request_body(content = Option<NoteBody>, example = json!({"reason": "Fixed; done"})),
    responses((status = 200, description = "The withdrawn request, or the ended access.", body = AccessRequestView)),
))]
pub async fn cancel(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Authenticated(identity): Authenticated,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<AccessRequestView>, ApiError> {
    let id = request_id(&id)?;
    // The body is optional: saying why is.
    let note = optional_note(&headers, &body)?;
    let request = state
        .shared
        .requests
        .cancel(&id, identity, note, &meta)
        .await?;
    Ok(view(&state, request))
}
