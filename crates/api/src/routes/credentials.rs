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
#[cfg(feature = "openapi")]
use {
    crate::schema::{Location, NoCache, NoReferrer, NoStore},
    cooper_core::console::Destination,
    cooper_core::names::AccountId,
};

use crate::auth::Deciding;
use crate::context::Meta;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::IssueState;

/// A request for credentials. Give `approver` with `approver_totp`, or `approval_id`, or neither.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CredentialsRequest))]
pub struct CredentialsBody {
    #[cfg_attr(feature = "openapi", schema(value_type = TargetName))]
    pub target: String,
    /// Session length; by default an hour (or the target's maximum, if lower). Must lie within
    /// the target's limits: 900 s to its maximum (at most 43200 s for a role, 129600 s for a
    /// federated user).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 900, maximum = 129600))]
    pub duration_seconds: Option<u64>,
    /// The caller's fresh code, for a high-security target.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<TotpCode>))]
    pub totp: Option<String>,
    /// Inline approval: the approver (with `approver_totp`), next to the requester.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<UserName>))]
    pub approver: Option<String>,
    /// Inline approval: the approver's own fresh code (with `approver`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<TotpCode>))]
    pub approver_totp: Option<String>,
    /// Asynchronous approval: an approved request, used once. Not with `approver`/`approver_totp`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<ApprovalId>))]
    pub approval_id: Option<String>,
    /// Also return a console sign-in link (`console_url`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = false))]
    pub console: bool,
    /// Where the console opens (implies `console`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Destination>))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct CredentialsQuery {
    /// The answer's shape (default `json`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(value_type = Option<CredentialsFormat>))]
    pub format: Option<String>,
}

/// The answer's shape.
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsFormat {
    Json,
    CredentialProcess,
}

/// Temporary AWS credentials (format `json`, the default).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Credentials))]
pub struct CredentialsResponse<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    expiration: String,
    #[cfg_attr(feature = "openapi", schema(value_type = TargetName))]
    target: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = AccountId))]
    account_id: &'a str,
    principal_arn: &'a str,
    duration_seconds: u32,
    /// The approver, for a target that requires approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<&'a str>,
    /// The console sign-in link, when asked for: as secret as the credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    console_url: Option<&'a str>,
    /// The id the issuance was audited under.
    request_id: &'a str,
}

/// The AWS CLI's `credential_process` output, Version 1 (format `credential_process`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialProcessOutput<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = u8, minimum = 1, maximum = 1))]
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    expiration: String,
}

/// The credentials, in the format asked for.
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum CredentialsAnswer<'a> {
    Json(CredentialsResponse<'a>),
    CredentialProcess(CredentialProcessOutput<'a>),
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

/// Temporary AWS credentials for a target
///
/// Deny by default: the caller needs a grant covering the target; a high-security target needs
/// `totp`, a target with approvers a second person's approval. `?format=credential_process`
/// answers in the AWS CLI's Version 1 format.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/credentials", operation_id = "issueCredentials", tag = "credentials",
    params(CredentialsQuery),
    request_body(content = CredentialsBody, example = json!({"target": "payments-readonly", "duration_seconds": 3600})),
    responses((status = 200, description = "The credentials (audited before they are returned).",
        body = CredentialsAnswer, headers(("Cache-Control" = NoStore), ("Pragma" = NoCache)))),
))]
pub async fn issue_credentials(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    query: Result<Query<CredentialsQuery>, axum::extract::rejection::QueryRejection>,
    Deciding(identity): Deciding,
    JsonBody(body): JsonBody<CredentialsBody>,
) -> Result<Response, ApiError> {
    let query = query
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?
        .0;
    let format = Format::parse(&query)?;
    let request = body.parse()?;
    crate::metrics::note_target(&request.target);
    let user = identity.user.clone();
    let issuance = state.issuer.issue(identity, &request, &meta).await?;
    crate::metrics::count(crate::metrics::Counter::Issuances);
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
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ConsoleQuery {
    /// Answer `302 Found` to the sign-in link instead of JSON.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(default = false))]
    pub redirect: bool,
}

/// A console sign-in link; as secret as the credentials.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ConsoleLink))]
pub struct ConsoleResponse<'a> {
    console_url: &'a str,
    expiration: String,
    #[cfg_attr(feature = "openapi", schema(value_type = TargetName))]
    target: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = AccountId))]
    account_id: &'a str,
    /// The approver, for a target that requires approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<&'a str>,
    /// The id the issuance was audited under.
    request_id: &'a str,
}

/// An AWS console sign-in link for a target
///
/// The same checks and body as credentials (plus `destination`); the link is as secret as the
/// credentials.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/console", operation_id = "createConsoleLink", tag = "credentials",
    params(ConsoleQuery),
    request_body(content = CredentialsBody, example = json!({"target": "payments-readonly"})),
    responses(
        (status = 200, description = "The sign-in link.", body = ConsoleResponse,
            headers(("Cache-Control" = NoStore), ("Referrer-Policy" = NoReferrer))),
        (status = 302, description = "With `redirect=true`: a redirect to the sign-in link.",
            headers(("Location" = Location), ("Cache-Control" = NoStore), ("Referrer-Policy" = NoReferrer))),
    ),
))]
pub async fn console(
    State(state): State<IssueState>,
    Meta(meta): Meta,
    query: Result<Query<ConsoleQuery>, axum::extract::rejection::QueryRejection>,
    Deciding(identity): Deciding,
    JsonBody(mut body): JsonBody<CredentialsBody>,
) -> Result<Response, ApiError> {
    let query = query
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?
        .0;
    body.console = true;
    let request = body.parse()?;
    crate::metrics::note_target(&request.target);
    let user = identity.user.clone();
    let issuance = state.issuer.issue(identity, &request, &meta).await?;
    crate::metrics::count(crate::metrics::Counter::Issuances);
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
