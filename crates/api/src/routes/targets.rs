//! GET /v1/targets: what the caller may become. GET /v1/whoami: who the caller is.

use axum::Json;
use axum::extract::State;
use cooper_core::access::AuthMethod;
use cooper_core::model::TargetKind;
#[cfg(feature = "openapi")]
use cooper_core::{
    names::{AccountId, Level, TargetName, UserName},
    token::TokenId,
};
use serde::Serialize;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::IssueState;

/// What a target is: an IAM role (AssumeRole) or a federated user (GetFederationToken).
#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum KindName {
    Role,
    FederatedUser,
}

impl From<&TargetKind> for KindName {
    fn from(kind: &TargetKind) -> Self {
        match kind {
            TargetKind::Role { .. } => Self::Role,
            TargetKind::FederatedUser { .. } => Self::FederatedUser,
        }
    }
}

/// A target the caller may become.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MyTarget))]
pub struct TargetView {
    #[cfg_attr(feature = "openapi", schema(value_type = TargetName))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = AccountId))]
    pub account_id: String,
    /// The account's name, as the directory has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// The AWS partition the target lies in (`aws`, `aws-us-gov`, `aws-cn`).
    pub partition: String,
    pub kind: KindName,
    #[cfg_attr(feature = "openapi", schema(value_type = Level))]
    pub level: u16,
    pub max_duration_seconds: u32,
    /// A fresh TOTP code is needed with each request.
    pub high_security: bool,
    /// A second person's approval is needed (see `approvers`).
    pub requires_approval: bool,
    /// Who may approve (`user NAME`, `group NAME`); omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The grants that let the caller use this target.
    pub granted_by: Vec<String>,
}

/// The targets the caller may become.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MyTargets))]
pub struct TargetsResponse {
    pub targets: Vec<TargetView>,
}

/// The targets the caller may become
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/targets", operation_id = "listMyTargets", tag = "targets",
    responses((status = 200, description = "The targets, with the grants that allow each.", body = TargetsResponse)),
))]
pub async fn list_targets(
    State(state): State<IssueState>,
    Authenticated(identity): Authenticated,
) -> Result<Json<TargetsResponse>, ApiError> {
    let (_, reachable) = state.catalog.reachable(identity).await?;
    let accounts = state.catalog.accounts_of(&reachable).await?;
    let targets = reachable
        .into_iter()
        .map(|r| TargetView::of(r, &accounts))
        .collect();
    Ok(Json(TargetsResponse { targets }))
}

impl TargetView {
    /// A reachable target, its account named from `accounts`.
    pub fn of(
        r: cooper_core::catalog::ReachableTarget,
        accounts: &std::collections::HashMap<
            cooper_core::names::AccountId,
            cooper_core::model::Account,
        >,
    ) -> Self {
        let t = r.target;
        {
            TargetView {
                account_name: accounts.get(&t.account).map(|a| a.name.to_string()),
                partition: t.partition().to_string(),
                kind: KindName::from(&t.kind),
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
        }
    }
}

/// How the caller authenticated.
#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuthenticatedBy {
    /// A cooper session from `POST /v1/sessions`.
    Jwt,
    /// A cooper session exchanged for an identity provider's ID token.
    OidcSession,
    /// An API token.
    ApiToken,
    /// An approver's own code.
    ApproverCode,
    /// An identity provider's ID token, presented directly.
    Oidc,
    /// A one-time enrollment code (it opens only enrollment).
    EnrollmentCode,
    /// A cooper session made from a SAML identity provider's assertion.
    SamlSession,
}

/// The caller's admin scope.
#[derive(Serialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AdminScope {
    /// Every account.
    Universal,
    /// The listed accounts only.
    Accounts {
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<AccountId>))]
        accounts: Vec<String>,
    },
}

/// The caller, their groups and how they authenticated.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub groups: Vec<String>,
    pub authenticated_by: AuthenticatedBy,
    /// The API token used, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<TokenId>))]
    pub token_id: Option<String>,
    /// When the caller's user record expires, if it does.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<time::OffsetDateTime>,
    /// The caller's admin scope, if they are an admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminScope>,
}

/// The caller, their groups and how they authenticated
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/whoami", operation_id = "whoami", tag = "identity",
    responses((status = 200, description = "The caller.", body = WhoAmI)),
))]
pub async fn whoami(
    State(state): State<IssueState>,
    Authenticated(identity): Authenticated,
) -> Result<Json<WhoAmI>, ApiError> {
    let (caller, scope) = state.shared.admin.scope(identity).await?;
    let (authenticated_by, token_id) = match &caller.identity.method {
        AuthMethod::Session { idp: None } => (AuthenticatedBy::Jwt, None),
        AuthMethod::Session { idp: Some(idp) } if idp.starts_with("saml:") => {
            (AuthenticatedBy::SamlSession, None)
        }
        AuthMethod::Session { idp: Some(_) } => (AuthenticatedBy::OidcSession, None),
        AuthMethod::ApiToken(id) => (AuthenticatedBy::ApiToken, Some(id.to_string())),
        AuthMethod::ApproverCode => (AuthenticatedBy::ApproverCode, None),
        AuthMethod::IdToken(_) => (AuthenticatedBy::Oidc, None),
        AuthMethod::EnrollmentCode(id) => (AuthenticatedBy::EnrollmentCode, Some(id.to_string())),
        AuthMethod::SamlAssertion(_) => (AuthenticatedBy::SamlSession, None),
    };
    Ok(Json(WhoAmI {
        user: caller.user.name.to_string(),
        display_name: caller.user.display_name.map(String::from),
        groups: caller.groups.iter().map(ToString::to_string).collect(),
        authenticated_by,
        token_id,
        expires_at: caller.user.expires_at,
        admin: AdminScope::of(&scope),
    }))
}

impl AdminScope {
    /// The caller's admin scope, named; none when they are not an admin.
    fn of(scope: &cooper_core::admin::scope::AdminScope) -> Option<Self> {
        use cooper_core::admin::scope::AdminScope as Scope;
        match scope {
            Scope::None => None,
            Scope::Universal => Some(Self::Universal),
            Scope::Accounts(a) => Some(Self::Accounts {
                accounts: a.iter().map(ToString::to_string).collect(),
            }),
        }
    }
}
