//! Taking back what a person was handed: `POST /v1/admin/revocations` (the AWS sessions cooper
//! issued them) and `POST /v1/admin/users/{name}/sessions/revoke` (their cooper sessions).

use axum::Json;
use axum::extract::{Path, State};
use cooper_core::admin::{RevocationReport, RevokeOn};
use cooper_core::names::{AccountId, InvalidValue, TargetName, UserName};
use cooper_core::signout::Applied;
use serde::{Deserialize, Serialize};

use super::{Caller, rfc3339};
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::AdminState;

/// Whose AWS sessions end, and where (everywhere they were issued one, by default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RevocationRequest))]
pub struct RevocationBody {
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    user: String,
    /// Only this account's sessions (not with `target`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<AccountId>))]
    account: Option<String>,
    /// Only this target's sessions (not with `account`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<TargetName>))]
    target: Option<String>,
}

impl RevocationBody {
    fn parse(self) -> Result<(UserName, RevokeOn), InvalidValue> {
        let user = UserName::parse(&self.user)?;
        let on = match (self.account, self.target) {
            (None, None) => RevokeOn::Everywhere,
            (Some(a), None) => RevokeOn::Account(AccountId::parse(&a)?),
            (None, Some(t)) => RevokeOn::Target(TargetName::parse(&t)?),
            (Some(_), Some(_)) => {
                return Err(InvalidValue::new(
                    "account",
                    "give an account or a target, not both",
                ));
            }
        };
        Ok((user, on))
    }
}

/// Why a holder's deny was not written (it is retried by sending the revocation again).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HolderFailure {
    /// `upstream` (IAM or the revoker role could not be reached or refused) or
    /// `policy_too_large` (too many people revoked on one holder at once).
    code: &'static str,
    message: String,
}

/// One role (or federation IAM user) the person was issued sessions on.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HolderView {
    /// The role's ARN, or the federation user's account and access key id.
    holder: String,
    #[cfg_attr(feature = "openapi", schema(value_type = AccountId))]
    account: AccountId,
    /// The targets whose sessions were issued on it.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<TargetName>))]
    targets: Vec<TargetName>,
    /// Whether the `cooper-revocations` policy now denies the person's older sessions there.
    written: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<HolderFailure>,
}

/// What a revocation did.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Revocation))]
pub struct RevocationView {
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    user: UserName,
    /// Every AWS session cooper issued the person before this instant, on these holders, is denied.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    before: String,
    /// False when some holder's policy could not be written: send the same revocation again
    /// (the rest is kept and written then).
    complete: bool,
    holders: Vec<HolderView>,
}

pub(super) fn revocation_view(report: RevocationReport) -> RevocationView {
    RevocationView {
        complete: report.complete(),
        user: report.user,
        before: rfc3339(&report.before),
        holders: report
            .holders
            .into_iter()
            .map(|h| {
                let error = match h.applied {
                    Applied::Written => None,
                    Applied::Failed { code, message } => Some(HolderFailure { code, message }),
                };
                HolderView {
                    holder: h.holder,
                    account: h.account,
                    targets: h.targets,
                    written: error.is_none(),
                    error,
                }
            })
            .collect(),
    }
}

/// End a person's issued AWS sessions
///
/// Every AWS session cooper issued the person before now (on the targets the audit trail shows,
/// within your scope; or only on `account` or `target`) stops working: cooper writes an inline
/// policy, `cooper-revocations`, on each role (or federation IAM user) denying everything to the
/// person's sessions issued before now, through the account's `cooper-revoker` role. The answer
/// says per holder whether it was written; `complete: false` means some were not (send it again).
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/revocations", operation_id = "revokeAwsSessions", tag = "admin-users",
    params(Caller),
    request_body(content = RevocationBody, example = json!({"user": "alice@example.com"})),
    responses((status = 200, description = "What was revoked, per holder.", body = RevocationView)),
))]
pub async fn revoke_aws_sessions(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<RevocationBody>,
) -> Result<Json<RevocationView>, ApiError> {
    let (user, on) = body.parse()?;
    let report = s.shared.admin.revoke_aws_sessions(&ctx, &user, &on).await?;
    Ok(Json(revocation_view(report)))
}

/// A person's cooper sessions, ended.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsRevoked {
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    user: UserName,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::True))]
    sessions_ended: bool,
}

/// End a person's cooper sessions (universal admins)
///
/// Every cooper session the person holds (local, OIDC or SAML sign-in; API and console) is
/// refused from its next request (401 `session_revoked`); they may sign in again. API tokens
/// are revoked on their own (`DELETE /v1/admin/tokens/{id}`), AWS sessions with
/// `POST /v1/admin/revocations`.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/users/{name}/sessions/revoke", operation_id = "revokeUserSessions", tag = "admin-users",
    params(("name" = UserName, Path, description = "The user's name."), Caller),
    responses((status = 200, description = "The person's sessions are ended.", body = SessionsRevoked)),
))]
pub async fn revoke_user_sessions(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Json<SessionsRevoked>, ApiError> {
    let user = UserName::parse(&name)?;
    s.shared.admin.revoke_user_sessions(&ctx, &user).await?;
    Ok(Json(SessionsRevoked {
        user,
        sessions_ended: true,
    }))
}
