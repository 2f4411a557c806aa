//! Rotating the broker's IAM-user key, which signs every AssumeRole: a new key is made and
//! proven to work before anything depends on it, recorded, stored where the functions read it,
//! and only then is the old one deactivated (kept one rotation as a way back, then deleted).
//! IAM allows two keys a user, and a run may die between any two steps: every run first tidies
//! what an earlier one left, so running again always ends in the same good state.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::clock::Clock;
use crate::ledger::{ChangeError, Ledger};
use crate::ports::UpstreamError;

/// An access key of the broker user, as IAM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub id: String,
    pub active: bool,
    pub created: OffsetDateTime,
}

/// A key just made: its secret exists only here until it is stored.
pub struct NewAccessKey {
    pub id: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for NewAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewAccessKey({}, ..)", self.id)
    }
}

/// The broker user's keys in IAM, and where the functions read the one in use (SSM). IAM is
/// asked with the key in use: the broker manages its own keys, nobody else's.
#[async_trait]
pub trait BrokerKeys: Send + Sync {
    /// The id of the key the functions read now.
    async fn stored(&self) -> Result<Option<String>, UpstreamError>;
    async fn list(&self) -> Result<Vec<AccessKeyInfo>, UpstreamError>;
    async fn create(&self) -> Result<NewAccessKey, UpstreamError>;
    /// Whether `key` signs requests as the broker (asked again for a while: IAM takes some
    /// seconds to know a new key everywhere).
    async fn works(&self, key: &NewAccessKey) -> Result<bool, UpstreamError>;
    /// Stores `key` where the functions read it (its secret first, then its id).
    async fn store(&self, key: &NewAccessKey) -> Result<(), UpstreamError>;
    async fn deactivate(&self, id: &str) -> Result<(), UpstreamError>;
    async fn delete(&self, id: &str) -> Result<(), UpstreamError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("no broker key is stored where the functions read it (run `cooper setup`)")]
    NotStored,
    #[error("the stored broker key {0} is not one of the broker user's keys in IAM")]
    StoredUnknown(String),
    #[error("the new key {0} does not sign as the broker; it was deleted, nothing else changed")]
    NewKeyRefused(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The rotation could not be recorded: nothing was stored (the new key goes next run).
    #[error("the audit record could not be written: {0}")]
    AuditUnavailable(UpstreamError),
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// What was left by an earlier run and put right (`deleted AKIA...`, ...).
    pub tidied: Vec<String>,
    /// The key replaced, and the one in use now.
    pub rotated: Option<(String, String)>,
    /// Why no new key was made (the one in use is young enough).
    pub skipped: Option<String>,
}

pub struct KeyRotation {
    pub keys: Arc<dyn BrokerKeys>,
    pub ledger: Arc<dyn Ledger>,
    pub clock: Arc<dyn Clock>,
    /// The broker user, as records name it.
    pub holder: String,
    /// A key younger than this is kept (unless forced): a run again right after one changes
    /// nothing.
    pub min_age: Duration,
}

impl KeyRotation {
    /// One run: tidy, then (when the key in use is old enough, or `force`) rotate.
    pub async fn run(
        &self,
        force: bool,
        actor: &str,
        auth: &str,
        meta: &RequestMeta,
    ) -> Result<RotationReport, RotationError> {
        let mut report = RotationReport::default();
        let stored = self.keys.stored().await?.ok_or(RotationError::NotStored)?;
        let listed = self.keys.list().await?;
        let current = listed
            .iter()
            .find(|k| k.id == stored)
            .cloned()
            .ok_or_else(|| RotationError::StoredUnknown(stored.clone()))?;
        for key in listed.iter().filter(|k| k.id != stored) {
            if key.active && key.created > current.created {
                // Made by a run that died before storing it: its secret is lost.
                self.keys.deactivate(&key.id).await?;
                self.keys.delete(&key.id).await?;
                report
                    .tidied
                    .push(format!("deleted {} (made, never stored)", key.id));
            } else if key.active {
                // Replaced by a run that died before deactivating it.
                self.keys.deactivate(&key.id).await?;
                report
                    .tidied
                    .push(format!("deactivated {} (replaced)", key.id));
            }
        }
        let age = self.clock.now() - current.created;
        if !force && age < self.min_age {
            report.skipped = Some(format!(
                "the key in use is {} days old (rotated at {} days)",
                age.whole_days(),
                self.min_age.whole_days()
            ));
            return Ok(report);
        }
        // The slot for the new key: the key deactivated last time goes now.
        for key in self.keys.list().await?.iter().filter(|k| k.id != stored) {
            self.keys.delete(&key.id).await?;
            report
                .tidied
                .push(format!("deleted {} (deactivated before)", key.id));
        }
        let new = self.keys.create().await?;
        if !self.keys.works(&new).await? {
            self.keys.deactivate(&new.id).await?;
            self.keys.delete(&new.id).await?;
            return Err(RotationError::NewKeyRefused(new.id));
        }
        let mut record = AuditRecord::new(
            meta,
            self.clock.now(),
            AuditEvent::BrokerKeyRotated,
            actor,
            auth,
        );
        record.resource = Some(format!("broker user {}", self.holder));
        record.action = Some("rotate".into());
        record.before = Some(json!({ "access_key_id": stored }));
        record.after = Some(json!({ "access_key_id": new.id }));
        self.ledger
            .commit(&[], &record)
            .await
            .map_err(|e| match e {
                ChangeError::Upstream(u) => RotationError::AuditUnavailable(u),
                other => RotationError::AuditUnavailable(UpstreamError::new(
                    crate::ports::Service::DynamoDb,
                    crate::ports::UpstreamKind::Refused,
                    other.to_string(),
                )),
            })?;
        self.keys.store(&new).await?;
        self.keys.deactivate(&stored).await?;
        tracing::info!(old = %stored, new = %new.id, "broker key rotated");
        report.rotated = Some((stored, new.id));
        Ok(report)
    }
}
