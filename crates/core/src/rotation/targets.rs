//! Rotating the keys of federated-user targets: the IAM user of a target account whose keys a
//! target carries (sealed) signs GetFederationToken. Where the account lets that user manage
//! its own access keys, the same rotation as the broker's replaces its key, and the new one is
//! sealed onto every target that carried the old one, in the write that records the rotation.
//! Where it does not, the targets are reported and left alone.
//!
//! Every target that holds a key of one IAM user must hold the same key: a rotation leaves the
//! user one active key, so targets holding another would stop working. Such targets are
//! refused, not rotated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use time::Duration;

use super::{BrokerKeys, KeyRotation, NewAccessKey, RotationReport, UserKeys};
use crate::admin::store::{DirectoryAdmin, PageRequest, Versioned};
use crate::audit::{AuditEvent, RequestMeta};
use crate::clock::Clock;
use crate::ledger::{Change, Expect, Ledger};
use crate::model::{FederationKeys, Target, TargetKind};
use crate::names::{AccountId, Partition, TargetName};
use crate::ports::{FederationBinding, KeyVault, Service, UpstreamError, UpstreamKind};

/// IAM in the target accounts, as a federation user's own key signs it.
#[async_trait]
pub trait FederationIam: Send + Sync {
    /// The IAM user `keys` belong to (in `partition`), and its keys as it may manage them.
    async fn user(
        &self,
        keys: &FederationKeys,
        partition: Partition,
    ) -> Result<Box<dyn UserKeys>, UpstreamError>;
}

/// What became of the targets that held one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetKeysReport {
    pub account: AccountId,
    pub targets: Vec<TargetName>,
    /// The IAM user the key belongs to, once known.
    pub user: Option<String>,
    pub outcome: TargetOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOutcome {
    /// Rotated, or kept as young enough (see the report).
    Done(RotationReport),
    /// The account does not let its user manage its own keys: nothing was changed.
    NotAllowed,
    /// Something went wrong; nothing the targets use was changed.
    Failed(String),
}

impl TargetKeysReport {
    pub fn failed(&self) -> bool {
        matches!(self.outcome, TargetOutcome::Failed(_))
    }
}

pub struct TargetKeyRotation {
    pub admin: Arc<dyn DirectoryAdmin>,
    pub vault: Arc<dyn KeyVault>,
    pub iam: Arc<dyn FederationIam>,
    pub ledger: Arc<dyn Ledger>,
    pub clock: Arc<dyn Clock>,
    pub min_age: Duration,
}

/// The targets holding one key, and the key.
struct Holders {
    partition: Partition,
    keys: FederationKeys,
    targets: Vec<Versioned<Target>>,
}

impl TargetKeyRotation {
    /// One run over every federated-user target: each key held is tidied, then rotated when old
    /// enough (or `force`). One target's failure does not stop the others'.
    pub async fn run(
        &self,
        force: bool,
        actor: &str,
        auth: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<TargetKeysReport>, UpstreamError> {
        let mut reports = Vec::new();
        let mut held: BTreeMap<(AccountId, String), Holders> = BTreeMap::new();
        for target in self.federated_targets().await? {
            let TargetKind::FederatedUser {
                partition,
                sealed_keys,
                ..
            } = &target.value.kind
            else {
                continue;
            };
            let binding = FederationBinding::of(&target.value);
            match self.vault.open_federation_keys(sealed_keys, &binding).await {
                Ok(keys) => held
                    .entry((target.value.account.clone(), keys.access_key_id.clone()))
                    .or_insert_with(|| Holders {
                        partition: *partition,
                        keys,
                        targets: Vec::new(),
                    })
                    .targets
                    .push(target),
                Err(e) => reports.push(TargetKeysReport {
                    account: target.value.account.clone(),
                    targets: vec![target.value.name.clone()],
                    user: None,
                    outcome: TargetOutcome::Failed(format!("its keys do not open: {e}")),
                }),
            }
        }

        let mut users = Vec::new();
        for ((account, _), holders) in held {
            let names = names(&holders.targets);
            match self.iam.user(&holders.keys, holders.partition).await {
                Ok(iam) => users.push((account, holders, iam)),
                Err(e) => reports.push(TargetKeysReport {
                    account,
                    targets: names,
                    user: None,
                    outcome: TargetOutcome::Failed(format!("its key does not sign: {e}")),
                }),
            }
        }
        // One user, several keys: rotating one would end the others.
        let mut keys_of_user: BTreeMap<(AccountId, String), usize> = BTreeMap::new();
        for (account, _, iam) in &users {
            *keys_of_user
                .entry((account.clone(), iam.user().to_owned()))
                .or_default() += 1;
        }

        for (account, holders, iam) in users {
            let user = iam.user().to_owned();
            let targets = names(&holders.targets);
            let mut report = TargetKeysReport {
                account: account.clone(),
                targets: targets.clone(),
                user: Some(user.clone()),
                outcome: TargetOutcome::NotAllowed,
            };
            if keys_of_user.get(&(account.clone(), user.clone())) > Some(&1) {
                report.outcome = TargetOutcome::Failed(format!(
                    "other targets hold another key of IAM user {user}: give them all the same \
                     key (or each its own user) to rotate it"
                ));
                reports.push(report);
                continue;
            }
            match iam.list().await {
                Err(e) if e.service == Service::Iam && e.kind == UpstreamKind::Refused => {
                    reports.push(report);
                    continue;
                }
                Err(e) => {
                    report.outcome = TargetOutcome::Failed(e.to_string());
                    reports.push(report);
                    continue;
                }
                Ok(_) => {}
            }
            let rotation = KeyRotation {
                keys: Arc::new(TargetKeys {
                    stored: holders.keys.access_key_id.clone(),
                    iam,
                    vault: self.vault.clone(),
                    targets: holders.targets,
                }),
                ledger: self.ledger.clone(),
                clock: self.clock.clone(),
                resource: format!(
                    "IAM user {user} of {}",
                    targets
                        .iter()
                        .map(|t| format!("target:{t}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                account: Some(account),
                event: AuditEvent::TargetKeysRotated,
                min_age: self.min_age,
            };
            report.outcome = match rotation.run(force, actor, auth, meta).await {
                Ok(done) => TargetOutcome::Done(done),
                Err(e) => TargetOutcome::Failed(e.to_string()),
            };
            reports.push(report);
        }
        Ok(reports)
    }

    /// Every federated-user target, account by account, a page at a time.
    async fn federated_targets(&self) -> Result<Vec<Versioned<Target>>, UpstreamError> {
        let mut accounts = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .admin
                .accounts(&PageRequest {
                    limit: crate::admin::store::MAX_PAGE,
                    cursor,
                })
                .await?;
            accounts.extend(page.items.into_iter().map(|a| a.value.id));
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        let mut targets = Vec::new();
        for account in accounts {
            let mut cursor = None;
            loop {
                let page = self
                    .admin
                    .targets_of(
                        &account,
                        &PageRequest {
                            limit: crate::admin::store::MAX_PAGE,
                            cursor,
                        },
                    )
                    .await?;
                targets.extend(
                    page.items
                        .into_iter()
                        .filter(|t| matches!(t.value.kind, TargetKind::FederatedUser { .. })),
                );
                cursor = page.cursor;
                if cursor.is_none() {
                    break;
                }
            }
        }
        Ok(targets)
    }
}

fn names(targets: &[Versioned<Target>]) -> Vec<TargetName> {
    targets
        .iter()
        .map(|t| t.value.name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A federation user's key, kept sealed on the targets that use it: a new key is sealed for
/// each of them and written, at the version read, with the rotation's audit record.
struct TargetKeys {
    stored: String,
    iam: Box<dyn UserKeys>,
    vault: Arc<dyn KeyVault>,
    targets: Vec<Versioned<Target>>,
}

#[async_trait]
impl BrokerKeys for TargetKeys {
    async fn stored(&self) -> Result<Option<String>, UpstreamError> {
        Ok(Some(self.stored.clone()))
    }

    async fn iam(&self) -> Result<&dyn UserKeys, UpstreamError> {
        Ok(self.iam.as_ref())
    }

    async fn recorded(&self, key: &NewAccessKey) -> Result<Vec<Change>, UpstreamError> {
        let keys = FederationKeys {
            access_key_id: key.id.clone(),
            secret_access_key: key.secret.clone(),
        };
        let mut changes = Vec::with_capacity(self.targets.len());
        for target in &self.targets {
            let binding = FederationBinding::of(&target.value);
            let sealed = self.vault.reseal_federation_keys(&keys, &binding).await?;
            let mut updated = target.value.clone();
            if let TargetKind::FederatedUser { sealed_keys, .. } = &mut updated.kind {
                *sealed_keys = sealed;
            }
            changes.push(Change::PutTarget(updated, Expect::Version(target.version)));
        }
        Ok(changes)
    }

    async fn store(&self, _key: &NewAccessKey) -> Result<(), UpstreamError> {
        // Written with the audit record (`recorded`).
        Ok(())
    }
}
