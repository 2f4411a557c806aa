//! Second-person approval: POST /v1/approvals, GET /v1/approvals (mine),
//! POST /v1/approvals/{id}/approve, GET /v1/approvals/{id}.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cooper_core::approval::ApprovalError;
use cooper_core::model::approvals::{ApprovalId, ApprovalRequest, ApprovalStatus};
#[cfg(feature = "openapi")]
use cooper_core::names::UserName;
use cooper_core::names::{Reason, TargetName};
use cooper_core::totp::TotpCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::Authenticated;
use crate::context::Meta;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::IssueState;

/// A request for a second person's approval of access to a target.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApprovalRequest))]
pub struct OpenBody {
    #[cfg_attr(feature = "openapi", schema(value_type = TargetName))]
    pub target: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Reason))]
    pub reason: String,
}

/// The approver's own fresh code.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApproveRequest))]
pub struct ApproveBody {
    #[cfg_attr(feature = "openapi", schema(value_type = TotpCode))]
    pub totp: String,
}

/// Where an approval request stands (`expired` once past `expires_at`, unless used).
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ApprovalState {
    Pending,
    Approved,
    Used,
    Expired,
}

/// An approval request.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Approval))]
pub struct ApprovalView {
    #[cfg_attr(feature = "openapi", schema(value_type = ApprovalId))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = TargetName))]
    pub target: String,
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    pub requester: String,
    pub reason: String,
    pub status: ApprovalState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<UserName>))]
    pub approved_by: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub approved_at: Option<OffsetDateTime>,
}

impl ApprovalView {
    pub fn of(r: ApprovalRequest, now: OffsetDateTime) -> Self {
        let status = match r.status {
            ApprovalStatus::Used => ApprovalState::Used,
            _ if r.expires_at <= now => ApprovalState::Expired,
            ApprovalStatus::Pending => ApprovalState::Pending,
            ApprovalStatus::Approved => ApprovalState::Approved,
        };
        Self {
            id: r.id.to_string(),
            target: r.target.to_string(),
            requester: r.requester.to_string(),
            reason: r.reason.to_string(),
            status,
            created_at: r.created_at,
            expires_at: r.expires_at,
            approved_by: r.approved_by.map(|u| u.to_string()),
            approved_at: r.approved_at,
        }
    }
}

fn approval_id(raw: &str) -> Result<ApprovalId, ApiError> {
    // A malformed id names no request: the same answer as an unknown one.
    ApprovalId::parse(raw).map_err(|_| ApprovalError::NotFound.into())
}

/// Ask a second person to approve access to a target
///
/// Only for a target that requires approval, by someone granted it.
// Only someone granted the target may ask: approval adds a second person to a grant, it never
// stands in for one.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/approvals", operation_id = "openApproval", tag = "approvals",
    request_body(content = OpenBody, example = json!({"target": "payments-admin", "reason": "Rotate the payments database password (CHG-1234)"})),
    responses((status = 201, description = "The request, pending for an hour.", body = ApprovalView)),
))]
pub async fn open(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    Authenticated(identity): Authenticated,
    JsonBody(body): JsonBody<OpenBody>,
) -> Result<(StatusCode, Json<ApprovalView>), ApiError> {
    let target = TargetName::parse(&body.target)?;
    let reason = Reason::parse(&body.reason)?;
    let request = state
        .shared
        .approvals
        .open(identity, &target, &reason, &meta)
        .await?;
    let now = state.shared.clock.now();
    Ok((StatusCode::CREATED, Json(ApprovalView::of(request, now))))
}

/// Approve a request with one's own fresh code
///
/// By an approver on the target's list, never the requester.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/approvals/{id}/approve", operation_id = "approveApproval", tag = "approvals",
    params(("id" = ApprovalId, Path, description = "The approval request's id (anything else is a 404).")),
    request_body(content = ApproveBody, example = json!({"totp": "123456"})),
    responses((status = 200, description = "The approved request.", body = ApprovalView)),
))]
pub async fn approve(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Authenticated(identity): Authenticated,
    JsonBody(body): JsonBody<ApproveBody>,
) -> Result<Json<ApprovalView>, ApiError> {
    let id = approval_id(&id)?;
    let code = TotpCode::parse(&body.totp)?;
    let request = state
        .shared
        .approvals
        .approve(&id, identity, &code, &meta)
        .await?;
    Ok(Json(ApprovalView::of(request, state.shared.clock.now())))
}

/// Approval requests, newest first (at most 50).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApprovalList))]
pub struct ApprovalList {
    pub items: Vec<ApprovalView>,
}

/// Whose approval requests to list, and in which state.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ListQuery {
    /// `requester` (default): the ones I made; `approver`: the ones asking me (of the last day).
    #[serde(default)]
    pub role: Option<crate::routes::access_requests::Role>,
    /// Only those in this state.
    #[serde(default)]
    pub state: Option<ApprovalState>,
}

/// List approval requests: mine, or the ones waiting for me
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/approvals", operation_id = "listApprovals", tag = "approvals",
    params(ListQuery),
    responses((status = 200, description = "The requests, newest first.", body = ApprovalList)),
))]
pub async fn list(
    State(state): State<IssueState>,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
    Authenticated(identity): Authenticated,
) -> Result<Json<ApprovalList>, ApiError> {
    let axum::extract::Query(q) =
        query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let approvals = &state.shared.approvals;
    let found = match q.role {
        Some(crate::routes::access_requests::Role::Approver) => approvals.asking(identity).await?,
        _ => approvals.mine(identity).await?,
    };
    let now = state.shared.clock.now();
    let items = found
        .into_iter()
        .map(|r| ApprovalView::of(r, now))
        .filter(|v| q.state.is_none_or(|s| s == v.status))
        .collect();
    Ok(Json(ApprovalList { items }))
}

/// An approval request
///
/// For its requester and its possible approvers (404 to anyone else).
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/approvals/{id}", operation_id = "getApproval", tag = "approvals",
    params(("id" = ApprovalId, Path, description = "The approval request's id (anything else is a 404).")),
    responses((status = 200, description = "The request.", body = ApprovalView)),
))]
pub async fn view(
    State(state): State<IssueState>,
    Path(id): Path<String>,
    Authenticated(identity): Authenticated,
) -> Result<Json<ApprovalView>, ApiError> {
    let id = approval_id(&id)?;
    let request = state.shared.approvals.view(&id, identity).await?;
    Ok(Json(ApprovalView::of(request, state.shared.clock.now())))
}
