//! Second-person approval: POST /v1/approvals, POST /v1/approvals/{id}/approve, GET /v1/approvals/{id}.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cooper_core::approval::ApprovalError;
use cooper_core::model::approvals::{ApprovalId, ApprovalRequest, ApprovalStatus};
use cooper_core::names::{Reason, TargetName};
use cooper_core::totp::TotpCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::Authenticated;
use crate::context::Meta;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::IssueState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenBody {
    pub target: String,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    pub totp: String,
}

#[derive(Serialize)]
pub struct ApprovalView {
    pub id: String,
    pub target: String,
    pub requester: String,
    pub reason: String,
    /// `pending`, `approved`, `used`, or `expired`.
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub approved_at: Option<OffsetDateTime>,
}

impl ApprovalView {
    fn of(r: ApprovalRequest, now: OffsetDateTime) -> Self {
        let status = match r.status {
            ApprovalStatus::Used => "used",
            _ if r.expires_at <= now => "expired",
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
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

/// Opens a request for `target`. Only someone granted the target may ask: approval adds a
/// second person to a grant, it never stands in for one.
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

/// The approver confirms with their own fresh code.
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

/// A request, to its requester and to those who may approve it.
pub async fn view(
    State(state): State<IssueState>,
    Path(id): Path<String>,
    Authenticated(identity): Authenticated,
) -> Result<Json<ApprovalView>, ApiError> {
    let id = approval_id(&id)?;
    let request = state.shared.approvals.view(&id, identity).await?;
    Ok(Json(ApprovalView::of(request, state.shared.clock.now())))
}
