//! Every error a client can see: a stable code, a status and a sentence, decided here and only here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cooper_core::access::Denial;
use cooper_core::admin::AdminError;
use cooper_core::approval::ApprovalError;
use cooper_core::catalog::AccessError;
use cooper_core::factors::FactorError;
use cooper_core::issue::IssueError;
use cooper_core::names::InvalidValue;
use cooper_core::ports::{Service, UpstreamError, UpstreamKind};
use cooper_core::rate::RateError;
use cooper_core::requests::RequestError;
use cooper_core::sessions::SessionError;
use serde::Serialize;

use crate::metrics::{self, Counter};

/// An error on its way to the client. The body is rendered by the request-context middleware,
/// which knows the request id; a handler only says what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (lockouts, throttling).
    pub retry_after: Option<i64>,
}

/// Every error code a client can see, by status (with what the status adds): the one list. The
/// OpenAPI document's error response is written from it, and a debug build (so every test)
/// panics on a code that is not in it: a new code cannot reach a client undocumented.
#[rustfmt::skip]
pub const CODES: &[(u16, &str, &[&str])] = &[
    (400, "", &[
        "invalid_request", "malformed_json", "invalid_target", "invalid_duration",
        "invalid_format", "invalid_reason", "immutable_field", "not_a_session",
    ]),
    (401, " (with `WWW-Authenticate: Bearer realm=\"cooper\"`)", &[
        "unauthenticated", "invalid_authorization", "invalid_token", "token_expired",
        "token_not_yet_valid", "token_revoked", "session_revoked", "enrollment_code_only", "invalid_credentials",
        "unknown_issuer", "invalid_algorithm", "unknown_key", "invalid_signature",
        "invalid_audience", "missing_claim", "email_not_verified", "email_domain_not_allowed",
        "invalid_user", "invalid_grant", "saml_too_large", "saml_malformed", "saml_doctype",
        "saml_unsigned", "saml_bad_signature", "saml_weak_algorithm", "saml_wrapped",
        "saml_wrong_issuer", "saml_wrong_audience", "saml_wrong_recipient",
        "saml_wrong_destination", "saml_expired", "saml_not_yet_valid", "saml_unsolicited",
        "saml_unknown_request", "saml_replayed", "saml_wrong_browser", "saml_status",
        "saml_no_user",
    ]),
    (403, "", &[
        "unknown_user", "user_disabled", "user_expired", "not_granted", "enrollment_code_only",
        "session_required", "totp_not_enrolled", "totp_invalid", "self_approval",
        "not_an_approver", "approval_mismatch", "approver_bootstrapped_by_requester",
        "approver_not_enrolled", "approver_totp_invalid", "not_an_admin", "out_of_scope",
        "universal_admin_required", "wider_admin", "not_requestable", "access_ending",
        "session_tag_too_long", "session_tag_invalid_characters", "session_tag_unresolved",
        "session_tags_too_large",
    ]),
    (404, "", &[
        "not_found", "approval_not_found", "access_request_not_found", "oidc_not_configured",
        "saml_not_configured",
    ]),
    (405, "", &["method_not_allowed"]),
    (409, "", &[
        "totp_replayed", "approver_totp_replayed", "no_pending_enrollment", "already_enrolled",
        "approval_not_required", "approval_expired", "approval_pending", "approval_decided",
        "approval_used", "already_exists", "version_conflict", "reach_changed", "in_use",
        "too_many_dependents", "trail_too_long", "already_granted", "request_pending",
        "access_request_expired", "access_request_settled",
    ]),
    (413, " (bodies are limited to 16384 bytes)", &["body_too_large"]),
    (415, "", &["unsupported_media_type"]),
    (422, "", &["totp_required", "approval_required"]),
    (428, " (send If-Match)", &["precondition_required"]),
    (429, " (with `Retry-After`)", &["locked_out", "approver_locked_out", "rate_limited"]),
    (431, " (the request line and headers are limited to 10240 bytes)", &["headers_too_large"]),
    (502, " (e.g. the console sign-in endpoint failed)", &[
        "upstream_refused", "upstream_invalid", "federation_keys_wrong_account",
    ]),
    (503, " (with `Retry-After`)", &[
        "upstream_throttled", "upstream_unavailable", "audit_unavailable",
        "identity_provider_unavailable", "unavailable", "internal",
    ]),
];

/// Whether `code` is documented for `status`.
pub fn documented(status: StatusCode, code: &str) -> bool {
    CODES
        .iter()
        .any(|(s, _, codes)| *s == status.as_u16() && codes.contains(&code))
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(
            documented(status, code),
            "error code {code} ({status}) is not in cooper_api::error::CODES"
        );
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds);
        self
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

/// The one error body of every refusal and failure.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Error))]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail<'a> {
    /// A stable snake_case code (see the Error response).
    pub code: &'a str,
    /// A human sentence.
    pub message: &'a str,
    /// The request's id (also in X-Request-Id).
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
        let retry_after = match (self.retry_after, self.status) {
            (Some(seconds), _) => Some(seconds),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(1),
            _ => None,
        };
        if let Some(value) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// A change that was allowed, but could not be written with its audit record: nothing was done,
/// and the answer says so (the change did not happen, so a retry is safe).
fn audit_unavailable(e: &UpstreamError, what: &str) -> ApiError {
    tracing::error!(service = %e.service, detail = %e.message, "audit write failed; {what}");
    metrics::count(Counter::AuditWriteFailures);
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "audit_unavailable",
        format!("the audit record could not be written, so {what}; retry shortly"),
    )
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        let code = match e.field {
            "target" => "invalid_target",
            "reason" => "invalid_reason",
            _ => "invalid_request",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<Denial> for ApiError {
    fn from(d: Denial) -> Self {
        // An ended session is not who the caller says they are any more: sign in again.
        let status = match d {
            Denial::SessionRevoked => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        };
        Self::new(status, d.code(), d.to_string())
    }
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        // The client learns which service failed and how; the AWS message (ARNs, account ids) is
        // for the operator's logs only.
        tracing::warn!(service = %e.service, kind = ?e.kind, detail = %e.message, "upstream failure");
        if e.kind == UpstreamKind::Throttled && e.service == Service::Sts {
            metrics::count(Counter::StsThrottles);
        }
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
            UpstreamKind::BadInput => Self::bad_request("invalid_request", e.message),
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

impl From<FactorError> for ApiError {
    fn from(e: FactorError) -> Self {
        let message = e.to_string();
        let code = e.code();
        match e {
            FactorError::Upstream(u) => u.into(),
            FactorError::Denied(d) => d.into(),
            FactorError::LockedOut {
                retry_after_seconds,
                ..
            } => Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
                .retry_after(retry_after_seconds),
            FactorError::InvalidCredentials => Self::new(StatusCode::UNAUTHORIZED, code, message),
            FactorError::Replayed
            | FactorError::NoPendingEnrollment
            | FactorError::AlreadyEnrolled => Self::new(StatusCode::CONFLICT, code, message),
            FactorError::SessionRequired => Self::new(StatusCode::FORBIDDEN, code, message),
            FactorError::CodeRequired => Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message),
            FactorError::NotEnrolled | FactorError::InvalidCode => {
                Self::new(StatusCode::FORBIDDEN, code, message)
            }
            FactorError::AuditUnavailable(u) => audit_unavailable(&u, "nothing was done"),
            FactorError::Entropy(_) | FactorError::Hashing => {
                tracing::error!(error = %message, "cannot produce a secret");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "cooper cannot do this right now; retry shortly",
                )
            }
        }
    }
}

impl From<ApprovalError> for ApiError {
    fn from(e: ApprovalError) -> Self {
        let message = e.to_string();
        let code = e.code();
        let status = match e {
            ApprovalError::Upstream(u) => return u.into(),
            ApprovalError::Denied(d) => return d.into(),
            ApprovalError::AuditUnavailable(u) => {
                return audit_unavailable(&u, "nothing was done");
            }
            ApprovalError::ApproverFactor(FactorError::Upstream(u)) => return u.into(),
            ApprovalError::ApproverFactor(FactorError::LockedOut {
                retry_after_seconds,
                ..
            }) => {
                return Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
                    .retry_after(retry_after_seconds);
            }
            ApprovalError::ApproverFactor(FactorError::Replayed) => StatusCode::CONFLICT,
            ApprovalError::ApproverFactor(_) => StatusCode::FORBIDDEN,
            ApprovalError::Required => StatusCode::UNPROCESSABLE_ENTITY,
            ApprovalError::SelfApproval
            | ApprovalError::NotAnApprover
            | ApprovalError::Mismatch
            | ApprovalError::BootstrappedByRequester
            | ApprovalError::SessionRequired => StatusCode::FORBIDDEN,
            ApprovalError::NotFound => StatusCode::NOT_FOUND,
            ApprovalError::NotRequired
            | ApprovalError::Expired
            | ApprovalError::Pending
            | ApprovalError::AlreadyDecided
            | ApprovalError::Used => StatusCode::CONFLICT,
            ApprovalError::Entropy(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, code, message)
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        let message = e.to_string();
        let code = e.code();
        let status = match e {
            RequestError::Upstream(u) => return u.into(),
            RequestError::Denied(d) => return d.into(),
            RequestError::AuditUnavailable(u) => {
                return audit_unavailable(&u, "nothing was done");
            }
            RequestError::ApproverFactor(FactorError::Upstream(u)) => return u.into(),
            RequestError::ApproverFactor(FactorError::LockedOut {
                retry_after_seconds,
                ..
            }) => {
                return Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
                    .retry_after(retry_after_seconds);
            }
            RequestError::ApproverFactor(FactorError::Replayed) => StatusCode::CONFLICT,
            RequestError::ApproverFactor(_) => StatusCode::FORBIDDEN,
            RequestError::Duration { .. } => StatusCode::BAD_REQUEST,
            RequestError::NotRequestable
            | RequestError::SelfApproval
            | RequestError::NotAnApprover
            | RequestError::BootstrappedByRequester
            | RequestError::SessionRequired => StatusCode::FORBIDDEN,
            RequestError::NotFound => StatusCode::NOT_FOUND,
            RequestError::AlreadyGranted
            | RequestError::AlreadyRequested(_)
            | RequestError::Expired
            | RequestError::Settled(_) => StatusCode::CONFLICT,
            RequestError::Entropy(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, code, message)
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let message = e.to_string();
        let code = e.code();
        let status = match e {
            AdminError::Factor(f) => return f.into(),
            AdminError::Denied(d) => return d.into(),
            AdminError::Invalid(v) => return v.into(),
            AdminError::Upstream(u) => return u.into(),
            AdminError::AuditUnavailable(u) => {
                return audit_unavailable(&u, "nothing was changed");
            }
            AdminError::NotAnAdmin
            | AdminError::OutOfScope
            | AdminError::UniversalOnly
            | AdminError::WiderAdmin => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::AlreadyExists(_)
            | AdminError::AlreadyEnrolled(_)
            | AdminError::VersionConflict(_)
            | AdminError::ReachChanged(_)
            | AdminError::InUse { .. }
            | AdminError::TooMuch
            | AdminError::TrailTooLong => StatusCode::CONFLICT,
            AdminError::VersionRequired => StatusCode::PRECONDITION_REQUIRED,
            AdminError::Immutable(_) => StatusCode::BAD_REQUEST,
            AdminError::TotpRequired(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::Entropy(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, code, message)
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Denied(d) => d.into(),
            IssueError::InvalidDuration(d) => Self::bad_request("invalid_duration", d.to_string()),
            IssueError::TotpRequired => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "totp_required",
                e.to_string(),
            ),
            IssueError::AccessEnding(_) => {
                Self::new(StatusCode::FORBIDDEN, "access_ending", e.to_string())
            }
            IssueError::SessionTags(t) => Self::new(StatusCode::FORBIDDEN, t.code(), t.to_string()),
            IssueError::SecondFactor(f) => f.into(),
            IssueError::Approval(a) => a.into(),
            IssueError::Invalid(v) => v.into(),
            IssueError::Upstream(u) => u.into(),
            IssueError::Rate(r) => r.into(),
            IssueError::AuditUnavailable(u) => audit_unavailable(&u, "no credentials were issued"),
            IssueError::FederationAccountMismatch { .. } => {
                tracing::error!(error = %e, "federation keys of the wrong account");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "federation_keys_wrong_account",
                    "the target's keys belong to another account, so no credentials were issued; an administrator must seal the target's own keys (cooper encrypt --account --target)",
                )
            }
        }
    }
}

impl From<RateError> for ApiError {
    fn from(e: RateError) -> Self {
        match e {
            RateError::Upstream(u) => u.into(),
            RateError::Limited { retry_after, .. } => {
                tracing::warn!(retry_after, "requests rate-limited");
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
                    .retry_after(retry_after)
            }
        }
    }
}

#[cfg(feature = "web")]
impl From<crate::saml::SamlError> for ApiError {
    fn from(e: crate::saml::SamlError) -> Self {
        let status = match e {
            crate::saml::SamlError::NotConfigured => StatusCode::NOT_FOUND,
            _ => StatusCode::UNAUTHORIZED,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Factor(f) => f.into(),
            SessionError::Rate(r) => r.into(),
            SessionError::Signing(_) | SessionError::Entropy(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the session could not be signed; retry shortly",
            ),
        }
    }
}

impl From<cooper_core::signout::SignoutError> for ApiError {
    fn from(e: cooper_core::signout::SignoutError) -> Self {
        use cooper_core::signout::SignoutError;
        let status = match e {
            SignoutError::NotASession => StatusCode::BAD_REQUEST,
            SignoutError::Contended => StatusCode::CONFLICT,
            SignoutError::AuditUnavailable(ref u) => {
                tracing::warn!(error = %u, "a sign-out could not be written");
                metrics::count(Counter::AuditWriteFailures);
                StatusCode::SERVICE_UNAVAILABLE
            }
            SignoutError::Upstream(u) => return u.into(),
        };
        Self::new(status, e.code(), e.to_string())
    }
}
