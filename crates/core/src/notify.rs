//! Audit notices: one readable message per audit record, sent once even when the stream delivers
//! a record twice, and never dropped (a failed send is handed back for retry).

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::{AuditEvent, AuditRecord};
use crate::clock::Clock;
use crate::ports::UpstreamError;

/// SNS allows subjects of at most 100 printable ASCII characters.
pub const SUBJECT_MAX: usize = 100;
/// How long a claim on a notice holds before another delivery may take it over.
pub const CLAIM_LEASE: time::Duration = time::Duration::seconds(60);

/// A message for people: a subject to take in at a glance, and the facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub subject: String,
    pub body: String,
}

fn when(at: &OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

fn duration(seconds: u32) -> String {
    let (h, m) = (seconds / 3600, (seconds % 3600) / 60);
    match (h, m) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// Printable ASCII, one line, at most 100 characters.
fn subject(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.len() <= SUBJECT_MAX {
        clean
    } else {
        format!("{}...", &clean[..SUBJECT_MAX - 3])
    }
}

/// `field: before -> after` for every top-level field an admin change touched.
/// Most bytes a notice's body holds: SNS takes 256 KiB a message, subject and envelope
/// included; an admin change larger than this (a group of thousands) is announced in part.
pub const MAX_BODY: usize = 200 * 1024;
/// Most bytes one line of "What changed" holds.
const MAX_CHANGE_LINE: usize = 2048;

/// `text`, cut to at most `max` bytes at a character boundary (marked when cut).
fn clipped(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(4);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", text.get(..end).unwrap_or_default())
}

fn changes(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or_else(|| "(none)".to_owned(), Value::to_string);
            format!("{k}: {} -> {}", show(b.get(k)), show(a.get(k)))
        })
        .collect()
}

impl Notice {
    /// The notice for one audit record. Audit records hold no secret, so neither does this.
    pub fn of(r: &AuditRecord) -> Self {
        let target = r.target.as_ref().map_or("?", |t| t.as_str());
        let account = r.account.as_ref().map_or("", |a| a.as_str());
        let resource = r.resource.as_deref().unwrap_or("?");
        let headline = match r.event {
            AuditEvent::CredentialsIssued => format!("{} became {target} in {account}", r.actor),
            AuditEvent::CredentialsDenied => format!(
                "{} was refused {target} ({})",
                r.actor,
                r.reason.as_deref().unwrap_or("denied")
            ),
            AuditEvent::ConsoleIssued => {
                format!("{} opened the console as {target} in {account}", r.actor)
            }
            AuditEvent::AdminChange => format!(
                "{} {} {}",
                r.actor,
                r.action.as_deref().unwrap_or("changed"),
                r.resource.as_deref().unwrap_or("?")
            ),
            AuditEvent::AdminRefused => format!(
                "{} was refused {} {} ({})",
                r.actor,
                r.action.as_deref().unwrap_or("?"),
                r.resource.as_deref().unwrap_or("?"),
                r.reason.as_deref().unwrap_or("denied")
            ),
            AuditEvent::ApprovalRequested => {
                format!("{} asks for approval to become {target}", r.actor)
            }
            AuditEvent::ApprovalApproved => format!("{} approved a request for {target}", r.actor),
            AuditEvent::ApprovalRefused => format!("{}'s approval step was refused", r.actor),
            AuditEvent::AccessRequested => format!("{} requests access: {resource}", r.actor),
            AuditEvent::AccessApproved => format!("{} approved access: {resource}", r.actor),
            AuditEvent::AccessDenied => format!("{} denied access: {resource}", r.actor),
            AuditEvent::AccessCancelled => {
                format!("{} withdrew a request for access: {resource}", r.actor)
            }
            AuditEvent::AccessEnded => format!("{} ended access: {resource}", r.actor),
            AuditEvent::AccessRefused => format!(
                "{}'s access request step was refused ({})",
                r.actor,
                r.reason.as_deref().unwrap_or("denied")
            ),
            AuditEvent::TotpEnrollmentStarted => {
                format!("{} started enrolling an authenticator", r.actor)
            }
            AuditEvent::TotpEnrolled => format!("{} enrolled an authenticator", r.actor),
            AuditEvent::TotpEnrollmentRefused => {
                format!("{}'s authenticator enrollment was refused", r.actor)
            }
            AuditEvent::SessionCreated => format!("{} signed in", r.actor),
            AuditEvent::SessionRefused => format!("{}'s sign-in was refused", r.actor),
            AuditEvent::SessionHandedOff => {
                format!("{} signed in at the identity provider for the CLI", r.actor)
            }
            AuditEvent::SessionEnded => format!("{} signed out", r.actor),
            AuditEvent::RevocationIncomplete => format!(
                "{}'s revocation of {} is not yet written everywhere",
                r.actor,
                r.resource.as_deref().unwrap_or("sessions")
            ),
            AuditEvent::PasswordChanged => format!("{} changed their password", r.actor),
            AuditEvent::BrokerKeyRotated | AuditEvent::TargetKeysRotated => {
                format!("{} rotated the key of {resource}", r.actor)
            }
            AuditEvent::PasswordRefused => format!("{}'s password change was refused", r.actor),
        };

        let mut body = String::new();
        let _ = writeln!(body, "{headline}.\n");
        let mut line = |label: &str, value: &str| {
            let _ = writeln!(body, "{label:<15} {value}");
        };
        line("Who", &r.actor);
        line("When", &when(&r.at));
        if let Some(ip) = r.source_ip {
            line("From", &ip.to_string());
        }
        if let Some(t) = &r.target {
            line("Target", t.as_str());
        }
        if let Some(a) = &r.account {
            line("Account", a.as_str());
        }
        if let Some(arn) = &r.principal_arn {
            line("Acting as", arn);
        }
        if let Some(seconds) = r.duration_seconds {
            line("For", &duration(seconds));
        }
        if let Some(key) = &r.access_key_id {
            line("AccessKeyId", key);
        }
        if let Some(at) = &r.expiration {
            line("Expires", &when(at));
        }
        if let Some(by) = &r.approved_by {
            line("Approved by", by);
        }
        if let Some(resource) = &r.resource {
            line("Resource", resource);
        }
        if let Some(reason) = &r.reason {
            line("Why", reason);
        }
        if let Some(id) = &r.approval_id {
            line("Approval", id);
        }
        if let Some(id) = &r.access_request_id {
            line("Access request", id);
        }
        line("Signed in by", &r.auth);
        line("Request", &r.id);
        if let (AuditEvent::ApprovalRequested, Some(id)) = (r.event, &r.approval_id) {
            let _ = writeln!(
                body,
                "\nTo approve: open /approvals/{id} in cooper's web console, or run `cooper approve {id}`."
            );
        }
        if let (AuditEvent::AccessRequested, Some(id)) = (r.event, &r.access_request_id) {
            let _ = writeln!(
                body,
                "\nTo approve or deny: open /access-requests/{id} in cooper's web console, or run `cooper access approve {id}` (or `cooper access deny {id}`)."
            );
        }
        let changed = changes(r.before.as_ref(), r.after.as_ref());
        if !changed.is_empty() {
            let _ = writeln!(body, "\nWhat changed:");
            let total = changed.len();
            let mut cut = false;
            for (shown, c) in changed.into_iter().enumerate() {
                let line = clipped(&c, MAX_CHANGE_LINE);
                cut |= line.len() < c.len();
                if body.len() + line.len() + 3 > MAX_BODY - 200 {
                    let _ = writeln!(body, "  ... and {} more.", total - shown);
                    cut = true;
                    break;
                }
                let _ = writeln!(body, "  {line}");
            }
            if cut {
                let _ = writeln!(
                    body,
                    "\nThis notice shows the change in part: the whole change is in the audit record (request {}).",
                    r.id
                );
            }
        }
        Self {
            subject: subject(&format!("cooper: {headline}")),
            body,
        }
    }

    /// For a stream record whose image cannot be read: still a notice, never silence.
    pub fn unreadable(position: &str, problem: &str) -> Self {
        Self {
            subject: subject("cooper: an audit record could not be read"),
            body: format!(
                "The audit stream delivered a record cooper cannot read.\n\nPosition  {position}\nProblem   {problem}\n\nLook it up in the audit table."
            ),
        }
    }
}

/// Where notices go (an SNS topic with email subscribers).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, notice: &Notice) -> Result<(), UpstreamError>;
}

/// The state of a claim on sending one notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send.
    Claimed,
    /// Sent already: a duplicate delivery.
    Sent,
    /// Another delivery is sending it right now.
    Busy,
}

/// Remembers which notices were sent, so a record delivered twice is announced once.
#[async_trait]
pub trait NoticeLedger: Send + Sync {
    async fn claim(
        &self,
        id: &str,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<Claim, UpstreamError>;
    async fn sent(&self, id: &str) -> Result<(), UpstreamError>;
    async fn release(&self, id: &str) -> Result<(), UpstreamError>;
}

/// One record of the audit stream, as the host read it.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// Where it sits in the stream (DynamoDB's sequence number): what a retry is asked for by.
    pub position: String,
    /// The new audit record (an INSERT), or why it could not be read.
    pub record: Result<AuditRecord, String>,
}

pub struct AuditNotifier {
    pub notifier: Arc<dyn Notifier>,
    pub ledger: Arc<dyn NoticeLedger>,
    pub clock: Arc<dyn Clock>,
}

impl AuditNotifier {
    /// Announces each record once. Returns the positions that failed, to be delivered again.
    pub async fn handle(&self, batch: &[StreamRecord]) -> Vec<String> {
        let mut failed = Vec::new();
        for item in batch {
            let (id, notice) = match &item.record {
                Ok(record) => (record.id.clone(), Notice::of(record)),
                Err(problem) => (
                    format!("unreadable:{}", item.position),
                    Notice::unreadable(&item.position, problem),
                ),
            };
            if let Err(error) = self.announce(&id, &notice).await {
                tracing::warn!(%error, record = %id, "audit notice not sent; will be retried");
                failed.push(item.position.clone());
            }
        }
        failed
    }

    async fn announce(&self, id: &str, notice: &Notice) -> Result<(), UpstreamError> {
        match self.ledger.claim(id, self.clock.now(), CLAIM_LEASE).await? {
            Claim::Sent => return Ok(()),
            Claim::Busy => {
                return Err(UpstreamError::new(
                    crate::ports::Service::DynamoDb,
                    crate::ports::UpstreamKind::Unavailable,
                    "another delivery of this record is being sent",
                ));
            }
            Claim::Claimed => {}
        }
        if let Err(error) = self.notifier.publish(notice).await {
            // Let the retry claim it again at once.
            if let Err(release) = self.ledger.release(id).await {
                tracing::warn!(error = %release, "could not release a notice claim");
            }
            return Err(error);
        }
        self.ledger.sent(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::RequestMeta;
    use crate::names::{AccountId, TargetName};

    fn record(event: AuditEvent) -> AuditRecord {
        let meta = RequestMeta {
            request_id: "req-1".into(),
            source_ip: Some("203.0.113.7".parse().unwrap()),
        };
        let mut r = AuditRecord::new(
            &meta,
            OffsetDateTime::from_unix_timestamp(1_795_305_600).unwrap(),
            event,
            "alice",
            "jwt",
        );
        r.target = Some(TargetName::parse("prod-admin").unwrap());
        r.account = Some(AccountId::parse("111111111111").unwrap());
        r
    }

    #[test]
    fn an_issuance_reads_at_a_glance() {
        let mut r = record(AuditEvent::CredentialsIssued);
        r.access_key_id = Some("ASIAEXAMPLE123456789".into());
        r.duration_seconds = Some(5400);
        let n = Notice::of(&r);
        assert_eq!(n.subject, "cooper: alice became prod-admin in 111111111111");
        assert!(n.body.contains("From            203.0.113.7"), "{}", n.body);
        assert!(n.body.contains("For             1 h 30 min"));
        assert!(n.body.contains("AccessKeyId     ASIAEXAMPLE123456789"));
        assert!(n.body.contains("When            2026-11-22T"));
    }

    #[test]
    fn an_admin_change_lists_what_changed() {
        let mut r = record(AuditEvent::AdminChange);
        r.resource = Some("target:prod-admin".into());
        r.action = Some("update".into());
        r.before = Some(serde_json::json!({"level": 50, "name": "prod-admin"}));
        r.after = Some(serde_json::json!({"level": 100, "name": "prod-admin"}));
        let n = Notice::of(&r);
        assert_eq!(n.subject, "cooper: alice update target:prod-admin");
        assert!(n.body.contains("level: 50 -> 100"), "{}", n.body);
        assert!(!n.body.contains("name:"));
    }

    #[test]
    fn an_approval_request_tells_approvers_where_to_approve() {
        let mut r = record(AuditEvent::ApprovalRequested);
        r.approval_id = Some("0123abcd".into());
        let n = Notice::of(&r);
        assert!(n.body.contains("Approval        0123abcd"), "{}", n.body);
        assert!(n.body.contains("/approvals/0123abcd"), "{}", n.body);
        assert!(n.body.contains("cooper approve 0123abcd"), "{}", n.body);
        let used = Notice::of(&record(AuditEvent::ApprovalApproved));
        assert!(!used.body.contains("To approve"));
    }

    #[test]
    fn an_access_request_tells_approvers_who_what_why_how_long_and_how() {
        let mut r = record(AuditEvent::AccessRequested);
        r.target = None;
        r.resource = Some("user alice -> target prod-admin".into());
        r.access_request_id = Some("feed0123".into());
        r.duration_seconds = Some(4 * 3600);
        r.reason = Some("incident 42".into());
        let n = Notice::of(&r);
        assert_eq!(
            n.subject,
            "cooper: alice requests access: user alice -> target prod-admin"
        );
        assert!(n.body.contains("For             4 h"), "{}", n.body);
        assert!(n.body.contains("Why             incident 42"), "{}", n.body);
        assert!(n.body.contains("Access request  feed0123"), "{}", n.body);
        assert!(n.body.contains("/access-requests/feed0123"), "{}", n.body);
        assert!(
            n.body.contains("cooper access approve feed0123"),
            "{}",
            n.body
        );
        let mut approved = record(AuditEvent::AccessApproved);
        approved.access_request_id = Some("feed0123".into());
        assert!(!Notice::of(&approved).body.contains("To approve"));
    }

    #[test]
    fn a_change_too_large_for_sns_is_announced_in_part() {
        let mut r = record(AuditEvent::AdminChange);
        let members =
            |n: usize| -> Vec<String> { (0..n).map(|i| format!("member-{i:05}")).collect() };
        r.before = Some(serde_json::json!({ "members": members(3), "note": "x".repeat(10_000) }));
        let mut after = serde_json::Map::new();
        for i in 0..20_000 {
            after.insert(
                format!("field-{i:05}"),
                serde_json::json!("a value long enough to count"),
            );
        }
        after.insert("members".into(), serde_json::json!(members(7_000)));
        r.after = Some(serde_json::Value::Object(after));
        let n = Notice::of(&r);
        assert!(n.body.len() <= MAX_BODY, "{}", n.body.len());
        assert!(
            n.body.contains("... and ")
                && n.body.contains("the whole change is in the audit record"),
            "{}",
            &n.body[n.body.len() - 300..]
        );
        assert!(n.body.lines().all(|l| l.len() <= MAX_CHANGE_LINE + 2));
        // A change that fits is shown whole.
        let mut small = record(AuditEvent::AdminChange);
        small.before = Some(serde_json::json!({ "level": 50 }));
        small.after = Some(serde_json::json!({ "level": 100 }));
        assert!(!Notice::of(&small).body.contains("in part"));
    }

    #[test]
    fn subjects_are_short_printable_single_lines() {
        let mut r = record(AuditEvent::CredentialsDenied);
        r.actor = format!("{}\nx\u{e9}", "a".repeat(120));
        let n = Notice::of(&r);
        assert!(n.subject.len() <= SUBJECT_MAX);
        assert!(n.subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
    }
}
