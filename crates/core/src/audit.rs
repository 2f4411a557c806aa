//! Audit records: who did what, when and from where; never a secret.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::access::Identity;
use crate::names::{AccountId, TargetName};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuditEvent {
    #[serde(rename = "credentials.issued")]
    CredentialsIssued,
    #[serde(rename = "credentials.denied")]
    CredentialsDenied,
    #[serde(rename = "console.issued")]
    ConsoleIssued,
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
    #[serde(rename = "approval.approved")]
    ApprovalApproved,
    #[serde(rename = "approval.refused")]
    ApprovalRefused,
    /// Someone asked for access they do not hold (just-in-time access).
    #[serde(rename = "access.requested")]
    AccessRequested,
    /// An approver gave a requester time-bound access.
    #[serde(rename = "access.approved")]
    AccessApproved,
    #[serde(rename = "access.denied")]
    AccessDenied,
    /// The requester withdrew a pending request.
    #[serde(rename = "access.cancelled")]
    AccessCancelled,
    /// Approved access was ended before its time.
    #[serde(rename = "access.ended")]
    AccessEnded,
    /// A step of an access request was refused.
    #[serde(rename = "access.refused")]
    AccessRefused,
    #[serde(rename = "totp.enrollment_started")]
    TotpEnrollmentStarted,
    #[serde(rename = "totp.enrolled")]
    TotpEnrolled,
    #[serde(rename = "totp.enrollment_refused")]
    TotpEnrollmentRefused,
    #[serde(rename = "session.created")]
    SessionCreated,
    #[serde(rename = "session.refused")]
    SessionRefused,
    /// An identity provider's sign-in, handed to the CLI that started it (by a one-time code).
    #[serde(rename = "session.handed_off")]
    SessionHandedOff,
    /// A person signed out: that one session ends.
    #[serde(rename = "session.ended")]
    SessionEnded,
    /// A revocation of AWS sessions could not be written on every holder (the rest is retried).
    #[serde(rename = "revocation.incomplete")]
    RevocationIncomplete,
    #[serde(rename = "password.changed")]
    PasswordChanged,
    #[serde(rename = "password.refused")]
    PasswordRefused,
    #[serde(rename = "admin.change")]
    AdminChange,
    /// The broker's IAM-user key was replaced by a new one (`before`/`after`: the key ids).
    #[serde(rename = "broker_key.rotated")]
    BrokerKeyRotated,
    /// A federated-user target's IAM-user key was replaced (sealed anew on every target that
    /// held it; `before`/`after`: the key ids).
    #[serde(rename = "target_keys.rotated")]
    TargetKeysRotated,
    #[serde(rename = "admin.refused")]
    AdminRefused,
}

/// Where a request came from, as the HTTP edge saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    pub request_id: String,
    pub source_ip: Option<IpAddr>,
}

/// One audited event. Holds identifiers only: an AccessKeyId (which AWS does not treat as secret,
/// and which is what lets an incident responder ask "who holds this key?"), never a secret key,
/// session token, password or bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// The request id: one record per request, written at most once.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub event: AuditEvent,
    /// The user who asked.
    pub actor: String,
    /// How they authenticated (`jwt`, `api_token:<id>`, ...).
    pub auth: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub source_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_arn: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expiration: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    /// Why access was given (the grant) or refused (the denial code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The second person who approved (for issuances and approvals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// The access request this is about (its steps, and issuances under the access it gave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_request_id: Option<String>,
    /// For admin changes: what was changed (`target:prod-admin`), how, and its state before and
    /// after (secrets redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
}

impl AuditRecord {
    /// A record of `event` by the authenticated `identity`.
    pub fn by(
        identity: &Identity,
        meta: &RequestMeta,
        at: OffsetDateTime,
        event: AuditEvent,
    ) -> Self {
        Self::new(
            meta,
            at,
            event,
            identity.user.as_str(),
            &identity.method.to_string(),
        )
    }

    /// The same record as a refusal: `event`, for the stable code `reason`.
    pub fn refused(mut self, event: AuditEvent, reason: &str) -> Self {
        self.event = event;
        self.reason = Some(reason.to_owned());
        self
    }

    /// A record of `event` by `actor`, for the request `meta`; the details start empty.
    pub fn new(
        meta: &RequestMeta,
        at: OffsetDateTime,
        event: AuditEvent,
        actor: &str,
        auth: &str,
    ) -> Self {
        Self {
            id: meta.request_id.clone(),
            at,
            event,
            actor: actor.to_owned(),
            auth: auth.to_owned(),
            source_ip: meta.source_ip,
            target: None,
            account: None,
            access_key_id: None,
            principal_arn: None,
            expiration: None,
            duration_seconds: None,
            reason: None,
            approved_by: None,
            approval_id: None,
            access_request_id: None,
            resource: None,
            action: None,
            before: None,
            after: None,
        }
    }
}
