//! Rotating an IAM user's key: the broker's, which signs every AssumeRole, and those of the
//! federated-user targets whose accounts let their user manage its own keys (`targets`). A new
//! key is made and proven to work before anything depends on it, recorded, stored where it is
//! read, and only then is the old one deactivated (kept one rotation as a way back, then
//! deleted). IAM allows two keys a user, and a run may die between any two steps: every run
//! first tidies what an earlier one left, so running again always ends in the same good state.

pub mod targets;

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::audit::{AuditEvent, AuditRecord, RequestMeta};
use crate::clock::Clock;
use crate::ledger::{Change, ChangeError, Ledger};
use crate::names::AccountId;
use crate::ports::{Service, UpstreamError, UpstreamKind};

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

/// IAM, as one user's key in use signs it: that user's own keys, which it manages itself.
#[async_trait]
pub trait UserKeys: Send + Sync {
    /// The IAM user's name.
    fn user(&self) -> &str;
    async fn list(&self) -> Result<Vec<AccessKeyInfo>, UpstreamError>;
    async fn create(&self) -> Result<NewAccessKey, UpstreamError>;
    /// Whether `key` signs requests as this user (asked again for a while: IAM takes some
    /// seconds to know a new key everywhere).
    async fn works(&self, key: &NewAccessKey) -> Result<bool, UpstreamError>;
    async fn deactivate(&self, id: &str) -> Result<(), UpstreamError>;
    async fn delete(&self, id: &str) -> Result<(), UpstreamError>;
}

/// A user's keys in IAM, and where the key in use is kept for whoever signs with it: SSM for the
/// broker's, the targets' own records (sealed) for a federation user's.
#[async_trait]
pub trait BrokerKeys: Send + Sync {
    /// The id of the key in use now.
    async fn stored(&self) -> Result<Option<String>, UpstreamError>;
    /// IAM, as the key in use signs it.
    async fn iam(&self) -> Result<&dyn UserKeys, UpstreamError>;
    /// What to write with the rotation's audit record, all or nothing (a key kept in the
    /// directory is stored this way, and `store` does nothing).
    async fn recorded(&self, _key: &NewAccessKey) -> Result<Vec<Change>, UpstreamError> {
        Ok(Vec::new())
    }
    /// Stores `key` where it is read, once the rotation is recorded.
    async fn store(&self, key: &NewAccessKey) -> Result<(), UpstreamError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("no key is stored where it is read (for the broker's: run `cooper setup`)")]
    NotStored,
    #[error("the key in use, {0}, is not one of its user's keys in IAM")]
    StoredUnknown(String),
    #[error("the new key {0} does not sign as its user; it was deleted, nothing else changed")]
    NewKeyRefused(String),
    /// What the new key was to be written on changed meanwhile: the new key was deleted.
    #[error("{0} changed while its key was rotated; the new key was deleted, nothing else changed")]
    Changed(String),
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
    /// What the audit record says was rotated (`broker user cooper-broker`, `target ...`).
    pub resource: String,
    /// The account it is in, when it is a target account's (so that account's admins see it).
    pub account: Option<AccountId>,
    pub event: AuditEvent,
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
        let iam = self.keys.iam().await?;
        let listed = iam.list().await?;
        let current = listed
            .iter()
            .find(|k| k.id == stored)
            .cloned()
            .ok_or_else(|| RotationError::StoredUnknown(stored.clone()))?;
        for key in listed.iter().filter(|k| k.id != stored) {
            if key.active && key.created > current.created {
                // Made by a run that died before storing it: its secret is lost.
                iam.deactivate(&key.id).await?;
                iam.delete(&key.id).await?;
                report
                    .tidied
                    .push(format!("deleted {} (made, never stored)", key.id));
            } else if key.active {
                // Replaced by a run that died before deactivating it.
                iam.deactivate(&key.id).await?;
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
        for key in iam.list().await?.iter().filter(|k| k.id != stored) {
            iam.delete(&key.id).await?;
            report
                .tidied
                .push(format!("deleted {} (deactivated before)", key.id));
        }
        let new = iam.create().await?;
        // From here until it is recorded, a failure takes the new key away again (a run that
        // dies here leaves it to the next run's tidying).
        match iam.works(&new).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(
                    discard(iam, &new.id, RotationError::NewKeyRefused(new.id.clone())).await,
                );
            }
            Err(e) => return Err(discard(iam, &new.id, e.into()).await),
        }
        let changes = match self.keys.recorded(&new).await {
            Ok(changes) => changes,
            Err(e) => return Err(discard(iam, &new.id, e.into()).await),
        };
        let mut record = AuditRecord::new(meta, self.clock.now(), self.event, actor, auth);
        // One record a key made, whatever retries share the request id.
        record.id = format!("{}/{}", meta.request_id, new.id);
        record.account = self.account.clone();
        record.resource = Some(self.resource.clone());
        record.action = Some("rotate".into());
        record.before = Some(json!({ "access_key_id": stored }));
        record.after = Some(json!({ "access_key_id": new.id }));
        if let Err(e) = self.ledger.commit(&changes, &record).await {
            return Err(match e {
                // Refused: nothing was written, so the new key goes at once.
                ChangeError::Conflict { index } if index < changes.len() => {
                    discard(iam, &new.id, RotationError::Changed(self.resource.clone())).await
                }
                ChangeError::Conflict { .. } | ChangeError::TooLarge => {
                    let error = RotationError::AuditUnavailable(UpstreamError::new(
                        Service::DynamoDb,
                        UpstreamKind::Refused,
                        e.to_string(),
                    ));
                    discard(iam, &new.id, error).await
                }
                // Perhaps written after all (a timeout): the new key may be in use on the
                // targets already, so it is left to the next run, whose tidying deletes it
                // when it is not the one stored.
                ChangeError::Upstream(u) => RotationError::AuditUnavailable(u),
            });
        }
        self.keys.store(&new).await?;
        iam.deactivate(&stored).await?;
        tracing::info!(old = %stored, new = %new.id, resource = %self.resource, "key rotated");
        report.rotated = Some((stored, new.id));
        Ok(report)
    }
}

/// Takes a key made in a run that then failed away again (best effort: what is left, the next
/// run's tidying deletes), and gives back why the run failed.
async fn discard(iam: &dyn UserKeys, id: &str, error: RotationError) -> RotationError {
    if let Err(e) = iam.deactivate(id).await.and(iam.delete(id).await) {
        tracing::warn!(error = %e, key = id, "a new key could not be deleted; the next run will");
    }
    error
}
