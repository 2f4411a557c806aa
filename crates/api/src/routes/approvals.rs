//! Second-person approval: POST /v1/approvals, POST /v1/approvals/{id}/approve, GET /v1/approvals/{id}.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cooper_core::approval::{ApprovalError, ApprovalId, ApprovalRequest, ApprovalStatus};
use cooper_core::audit::{AuditEvent, AuditRecord};
use cooper_core::names::TargetName;
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
            reason: r.reason,
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
    let target_name = TargetName::parse(&body.target)?;
    let shared = &state.shared;
    let now = shared.clock.now();
    let user = identity.user.clone();
    let auth = identity.method.to_string();
    let mut record = AuditRecord::new(
        &meta,
        now,
        AuditEvent::ApprovalRequested,
        user.as_str(),
        &auth,
    );
    record.target = Some(target_name.clone());

    let (target, _) = match state.issuer.authorize(identity, &target_name, now).await {
        Ok(found) => found,
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::FORBIDDEN {
                record.event = AuditEvent::ApprovalRefused;
                record.reason = Some(e.code.to_owned());
                shared.audit_refusal(&record).await;
            }
            return Err(e);
        }
    };
    let request = shared.approvals.open(&user, &target, &body.reason).await?;
    record.account = Some(target.account.clone());
    record.approval_id = Some(request.id.to_string());
    record.reason = Some(request.reason.clone());
    shared.audit(&record).await?;
    tracing::info!(%user, target = %target.name, approval_id = %request.id, "approval requested");
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
    let shared = &state.shared;
    let now = shared.clock.now();
    let approver = identity.user.clone();
    let mut record = AuditRecord::new(
        &meta,
        now,
        AuditEvent::ApprovalApproved,
        approver.as_str(),
        &identity.method.to_string(),
    );
    record.approval_id = Some(id.to_string());

    match shared.approvals.approve(&id, identity, &code).await {
        Ok(request) => {
            record.target = Some(request.target.clone());
            record.approved_by = Some(approver.to_string());
            record.reason = Some(format!("approved {}'s request", request.requester));
            shared.audit(&record).await?;
            tracing::info!(%approver, approval_id = %id, requester = %request.requester, "approval given");
            Ok(Json(ApprovalView::of(request, now)))
        }
        Err(e) => {
            record.event = AuditEvent::ApprovalRefused;
            record.reason = Some(e.code().to_owned());
            if !matches!(e, ApprovalError::Upstream(_)) {
                shared.audit_refusal(&record).await;
            }
            Err(e.into())
        }
    }
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
