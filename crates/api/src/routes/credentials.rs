//! POST /v1/credentials: temporary AWS credentials for a target.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cooper_core::approval::ApprovalProof;
use cooper_core::issue::{CredentialRequest, Issuance};
use cooper_core::model::approvals::ApprovalId;
use cooper_core::names::{TargetName, UserName};
use cooper_core::totp::TotpCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use crate::auth::Authenticated;
use crate::context::Meta;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::IssueState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    pub target: String,
    #[serde(default)]
    pub duration_seconds: Option<u64>,
    /// The caller's fresh code, for a high-security target.
    #[serde(default)]
    pub totp: Option<String>,
    /// Inline approval: the approver, next to the requester, and their fresh code.
    #[serde(default)]
    pub approver: Option<String>,
    #[serde(default)]
    pub approver_totp: Option<String>,
    /// Asynchronous approval: an approved request, used once.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// A console sign-in link too.
    #[serde(default)]
    pub console: bool,
    /// Where the console opens (an https URL on the target partition's console).
    #[serde(default)]
    pub destination: Option<String>,
}

impl CredentialsBody {
    pub fn parse(self) -> Result<CredentialRequest, ApiError> {
        let approval = match (self.approver, self.approver_totp, self.approval_id) {
            (None, None, None) => None,
            (Some(approver), Some(code), None) => Some(ApprovalProof::Inline {
                approver: UserName::parse(&approver)?,
                code: TotpCode::parse(&code)?,
            }),
            (None, None, Some(id)) => Some(ApprovalProof::Approved(ApprovalId::parse(&id)?)),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "give approver with approver_totp, or approval_id, not parts of both",
                ));
            }
        };
        Ok(CredentialRequest {
            target: TargetName::parse(&self.target)?,
            duration_seconds: self.duration_seconds,
            totp: self.totp.as_deref().map(TotpCode::parse).transpose()?,
            approval,
            console: (self.console || self.destination.is_some()).then_some(self.destination),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsQuery {
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Serialize)]
struct CredentialsResponse<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
    target: &'a str,
    account_id: &'a str,
    principal_arn: &'a str,
    duration_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<&'a str>,
    /// A console sign-in link, when asked for: as secret as the credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    console_url: Option<&'a str>,
    request_id: &'a str,
}

/// The AWS CLI's `credential_process` output (Version 1).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialProcessOutput<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
}

enum Format {
    Cooper,
    CredentialProcess,
}

impl Format {
    fn parse(query: &CredentialsQuery) -> Result<Self, ApiError> {
        match query.format.as_deref() {
            None | Some("json") => Ok(Self::Cooper),
            Some("credential_process") => Ok(Self::CredentialProcess),
            Some(_) => Err(ApiError::bad_request(
                "invalid_format",
                "format must be json or credential_process",
            )),
        }
    }
}

pub async fn issue_credentials(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    query: Result<Query<CredentialsQuery>, axum::extract::rejection::QueryRejection>,
    Authenticated(identity): Authenticated,
    JsonBody(body): JsonBody<CredentialsBody>,
) -> Result<Response, ApiError> {
    let query = query
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?
        .0;
    let format = Format::parse(&query)?;
    let request = body.parse()?;
    let user = identity.user.clone();
    let issuance = state.issuer.issue(identity, &request, &meta).await?;
    tracing::info!(
        %user,
        approved_by = ?issuance.approved_by,
        target = %issuance.target.name,
        account = %issuance.target.account,
        access_key_id = %issuance.credentials.access_key_id,
        duration_seconds = issuance.duration.seconds(),
        "credentials issued"
    );
    render(&issuance, format, &meta.request_id)
}

fn render(issuance: &Issuance, format: Format, request_id: &str) -> Result<Response, ApiError> {
    let c = &issuance.credentials;
    let expiration = c.expiration.format(&Rfc3339).map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "upstream_invalid",
            "STS returned an expiration cooper cannot represent",
        )
    })?;
    let mut response = match format {
        Format::Cooper => axum::Json(CredentialsResponse {
            access_key_id: &c.access_key_id,
            secret_access_key: c.secret_access_key.expose_secret(),
            session_token: c.session_token.expose_secret(),
            expiration,
            target: issuance.target.name.as_str(),
            account_id: issuance.target.account.as_str(),
            principal_arn: &c.principal_arn,
            duration_seconds: issuance.duration.seconds(),
            approved_by: issuance.approved_by.as_ref().map(UserName::as_str),
            console_url: issuance.console_url.as_ref().map(|u| u.expose_secret()),
            request_id,
        })
        .into_response(),
        Format::CredentialProcess => axum::Json(CredentialProcessOutput {
            version: 1,
            access_key_id: &c.access_key_id,
            secret_access_key: c.secret_access_key.expose_secret(),
            session_token: c.session_token.expose_secret(),
            expiration,
        })
        .into_response(),
    };
    // Credentials must not be kept by any cache between cooper and the client.
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleQuery {
    /// Answer `302 Found` to the sign-in URL instead of JSON.
    #[serde(default)]
    pub redirect: bool,
}

#[derive(Serialize)]
struct ConsoleResponse<'a> {
    console_url: &'a str,
    expiration: String,
    target: &'a str,
    account_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<&'a str>,
    request_id: &'a str,
}

/// POST /v1/console: a console sign-in link for a target (the same checks as credentials).
pub async fn console(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    query: Result<Query<ConsoleQuery>, axum::extract::rejection::QueryRejection>,
    Authenticated(identity): Authenticated,
    JsonBody(mut body): JsonBody<CredentialsBody>,
) -> Result<Response, ApiError> {
    let query = query
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?
        .0;
    body.console = true;
    let request = body.parse()?;
    let user = identity.user.clone();
    let issuance = state.issuer.issue(identity, &request, &meta).await?;
    tracing::info!(%user, target = %issuance.target.name, access_key_id = %issuance.credentials.access_key_id, "console link issued");
    let url = issuance
        .console_url
        .as_ref()
        .map(|u| u.expose_secret())
        .unwrap_or_default();
    let mut response = if query.redirect {
        let mut r = StatusCode::FOUND.into_response();
        if let Ok(location) = HeaderValue::from_str(url) {
            r.headers_mut().insert(header::LOCATION, location);
        }
        r
    } else {
        axum::Json(ConsoleResponse {
            console_url: url,
            expiration: issuance
                .credentials
                .expiration
                .format(&Rfc3339)
                .unwrap_or_default(),
            target: issuance.target.name.as_str(),
            account_id: issuance.target.account.as_str(),
            approved_by: issuance.approved_by.as_ref().map(UserName::as_str),
            request_id: &meta.request_id,
        })
        .into_response()
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}
