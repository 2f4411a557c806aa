//! Audit records: who did what, when and from where; never a secret.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::names::{AccountId, TargetName};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditEvent {
    #[serde(rename = "credentials.issued")]
    CredentialsIssued,
    #[serde(rename = "credentials.denied")]
    CredentialsDenied,
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
pub struct AuditRecord {
    /// The request id: one record per request, written at most once.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub event: AuditEvent,
    /// The user who asked.
    pub actor: String,
    /// How they authenticated (`jwt`, `api_token:<id>`).
    pub auth: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
}
