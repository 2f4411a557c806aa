//! GET /v1/targets: what the caller may become. GET /v1/whoami: who the caller is.

use axum::Json;
use axum::extract::State;
use cooper_core::access::AuthMethod;
use cooper_core::model::TargetKind;
use serde::Serialize;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::IssueState;

#[derive(Serialize)]
pub struct TargetView {
    pub name: String,
    pub account_id: String,
    pub kind: &'static str,
    pub level: u16,
    pub max_duration_seconds: u32,
    /// A fresh TOTP code is needed with each request.
    pub high_security: bool,
    /// A second person's approval is needed (see `approvers`).
    pub requires_approval: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The grants that let the caller use this target.
    pub granted_by: Vec<String>,
}

#[derive(Serialize)]
pub struct TargetsResponse {
    pub targets: Vec<TargetView>,
}

pub async fn list_targets(
    State(state): State<IssueState>,
    Authenticated(identity): Authenticated,
) -> Result<Json<TargetsResponse>, ApiError> {
    let (_, reachable) = state.catalog.reachable(identity).await?;
    let targets = reachable
        .into_iter()
        .map(|r| {
            let t = r.target;
            TargetView {
                kind: t.kind.label(),
                role_arn: match &t.kind {
                    TargetKind::Role { role_arn, .. } => Some(role_arn.to_string()),
                    TargetKind::FederatedUser { .. } => None,
                },
                name: t.name.to_string(),
                account_id: t.account.to_string(),
                level: t.level.get(),
                max_duration_seconds: t.max_duration_seconds,
                high_security: t.high_security,
                requires_approval: t.requires_approval(),
                approvers: t.approvers.iter().map(ToString::to_string).collect(),
                description: t.description.map(String::from),
                granted_by: r.grants.iter().map(ToString::to_string).collect(),
            }
        })
        .collect();
    Ok(Json(TargetsResponse { targets }))
}

#[derive(Serialize)]
pub struct WhoAmI {
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub groups: Vec<String>,
    pub authenticated_by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<time::OffsetDateTime>,
    /// The caller's admin scope, if they are an admin.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub admin: serde_json::Value,
}

pub async fn whoami(
    State(state): State<IssueState>,
    Authenticated(identity): Authenticated,
) -> Result<Json<WhoAmI>, ApiError> {
    let (caller, scope) = state.shared.admin.scope(identity).await?;
    let (authenticated_by, token_id) = match &caller.identity.method {
        AuthMethod::Session { idp: None } => ("jwt", None),
        AuthMethod::Session { idp: Some(_) } => ("oidc_session", None),
        AuthMethod::ApiToken(id) => ("api_token", Some(id.to_string())),
        AuthMethod::ApproverCode => ("approver_code", None),
        AuthMethod::IdToken(_) => ("oidc", None),
        AuthMethod::EnrollmentCode(id) => ("enrollment_code", Some(id.to_string())),
    };
    Ok(Json(WhoAmI {
        user: caller.user.name.to_string(),
        display_name: caller.user.display_name.map(String::from),
        groups: caller.groups.iter().map(ToString::to_string).collect(),
        authenticated_by,
        token_id,
        expires_at: caller.user.expires_at,
        admin: crate::routes::admin::scope_name(&scope),
    }))
}
