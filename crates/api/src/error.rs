//! Every error a client can see: a stable code, a status and a sentence, decided here and only here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cooper_core::access::Denial;
use cooper_core::catalog::AccessError;
use cooper_core::issue::IssueError;
use cooper_core::names::InvalidValue;
use cooper_core::ports::{UpstreamError, UpstreamKind};
use serde::Serialize;

/// An error on its way to the client. The body is rendered by the request-context middleware,
/// which knows the request id; a handler only says what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this resource does not accept that method",
        )
    }
}

/// The JSON error body of DESIGN section 3.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub request_id: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cooper\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        let code = match e.field {
            "target" => "invalid_target",
            _ => "invalid_request",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<Denial> for ApiError {
    fn from(d: Denial) -> Self {
        Self::new(StatusCode::FORBIDDEN, d.code(), d.to_string())
    }
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        // The client learns which service failed and how; the AWS message (ARNs, account ids) is
        // for the operator's logs only.
        tracing::warn!(service = %e.service, kind = ?e.kind, detail = %e.message, "upstream failure");
        match e.kind {
            UpstreamKind::Throttled => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_throttled",
                format!("{} is throttling requests; retry shortly", e.service),
            ),
            UpstreamKind::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_unavailable",
                format!("{} is unavailable; retry shortly", e.service),
            ),
            UpstreamKind::Refused => Self::new(
                StatusCode::BAD_GATEWAY,
                "upstream_refused",
                format!(
                    "{} refused the request; an administrator should check cooper's configuration",
                    e.service
                ),
            ),
            UpstreamKind::Corrupt => Self::new(
                StatusCode::BAD_GATEWAY,
                "upstream_invalid",
                format!(
                    "{} returned data cooper cannot use; an administrator should check it",
                    e.service
                ),
            ),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Denied(d) => d.into(),
            AccessError::Upstream(u) => u.into(),
        }
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Denied(d) => d.into(),
            IssueError::InvalidDuration(d) => Self::bad_request("invalid_duration", d.to_string()),
            IssueError::Upstream(u) => u.into(),
            IssueError::AuditUnavailable(u) => {
                tracing::error!(service = %u.service, detail = %u.message, "audit write failed; credentials withheld");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_unavailable",
                    "the audit record could not be written, so no credentials were issued; retry shortly",
                )
            }
        }
    }
}
