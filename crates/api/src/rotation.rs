//! Key rotation over a deployment: the broker's key (IAM and SSM, with the key in use) and the
//! federated-user targets' keys (IAM in their accounts, with theirs; sealed onto the targets),
//! each recorded in the audit trail. Run by the rotate-keys function on its schedule, and by
//! `cooper rotate-keys`.

use std::sync::Arc;

use aws_config::SdkConfig;
use cooper_aws::admin::DynamoAdmin;
use cooper_aws::aws_sdk_kms;
use cooper_aws::directory::DynamoDirectory;
use cooper_aws::kms::KmsVault;
use cooper_aws::ledger::DynamoLedger;
use cooper_aws::rotation::{IamBrokerKeys, IamFederationUsers};
use cooper_core::audit::{AuditEvent, RequestMeta};
use cooper_core::clock::Clock;
use cooper_core::ports::UpstreamError;
use cooper_core::rotation::targets::{TargetKeyRotation, TargetKeysReport, TargetOutcome};
use cooper_core::rotation::{KeyRotation, RotationError, RotationReport};
use serde_json::{Map, Value, json};

use crate::settings::Settings;
use crate::state::home_dynamodb;

/// Both rotations of a deployment.
pub struct Rotations {
    pub broker: KeyRotation,
    pub targets: TargetKeyRotation,
}

/// What a run did: the broker's key, and each key the federated-user targets hold.
pub struct RotationRun {
    pub broker: Result<RotationReport, RotationError>,
    pub targets: Result<Vec<TargetKeysReport>, UpstreamError>,
}

impl Rotations {
    /// One run: the broker's key, then the targets' (whatever became of the broker's).
    pub async fn run(
        &self,
        force: bool,
        actor: &str,
        auth: &str,
        meta: &RequestMeta,
    ) -> RotationRun {
        let broker = self.broker.run(force, actor, auth, meta).await;
        let targets = self.targets.run(force, actor, auth, meta).await;
        RotationRun { broker, targets }
    }
}

impl RotationRun {
    /// The failures, for the operator (a target whose account does not allow its rotation is
    /// not one).
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if let Err(e) = &self.broker {
            failures.push(format!("the broker's key: {e}"));
        }
        match &self.targets {
            Err(e) => failures.push(format!("the targets' keys could not be listed: {e}")),
            Ok(reports) => {
                for r in reports {
                    if let TargetOutcome::Failed(why) = &r.outcome {
                        failures.push(format!("{}: {why}", targets_label(r)));
                    }
                }
            }
        }
        failures
    }

    /// What the function answers and `cooper rotate-keys --json` prints: the broker's rotation
    /// at the top, each target key under `targets`.
    pub fn json(&self) -> Value {
        let mut out = match &self.broker {
            Ok(r) => report_fields(r),
            Err(e) => Map::from_iter([("error".to_owned(), json!(e.to_string()))]),
        };
        let targets = match &self.targets {
            Err(e) => json!({ "error": e.to_string() }),
            Ok(reports) => reports.iter().map(target_json).collect(),
        };
        out.insert("targets".into(), targets);
        Value::Object(out)
    }

    /// Logs each failure and counts them as the metric `RotationFailures` (which an alarm
    /// watches; written once the function has named itself to `metrics`).
    pub fn report_failures(&self) -> usize {
        let failures = self.failures();
        for failure in &failures {
            tracing::error!(%failure, "a key rotation failed");
            crate::metrics::count(crate::metrics::Counter::RotationFailures);
        }
        failures.len()
    }
}

fn targets_label(r: &TargetKeysReport) -> String {
    let names: Vec<&str> = r.targets.iter().map(|t| t.as_str()).collect();
    format!("account {} target(s) {}", r.account, names.join(", "))
}

/// The rotations of this deployment: a key younger than a day less than the rotation period
/// is kept (so the scheduled run rotates, and a run again right after does not).
pub fn key_rotation(sdk: &SdkConfig, settings: &Settings, clock: Arc<dyn Clock>) -> Rotations {
    rotations_over(
        IamBrokerKeys::new(sdk, &settings.ssm_prefix, settings.kms_key.clone())
            .with_replicas(&settings.replica_regions),
        IamFederationUsers::new(sdk),
        sdk,
        settings,
        clock,
    )
}

/// As `key_rotation`, over `keys` and `users` (an emulator's, which know a new key at once).
pub fn rotations_over(
    keys: IamBrokerKeys,
    users: IamFederationUsers,
    sdk: &SdkConfig,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Rotations {
    let broker = rotation_over(keys, sdk, settings, clock.clone());
    let mut vault = KmsVault::new(aws_sdk_kms::Client::new(sdk));
    if let Some(key) = &settings.kms_key {
        vault = vault.with_key(key);
    }
    let targets = TargetKeyRotation {
        admin: Arc::new(DynamoAdmin::new(DynamoDirectory::new(
            home_dynamodb(sdk, settings),
            &settings.directory_table,
        ))),
        vault: Arc::new(vault),
        iam: Arc::new(users),
        ledger: broker.ledger.clone(),
        clock,
        min_age: broker.min_age,
    };
    Rotations { broker, targets }
}

/// The broker key's rotation alone, over `keys`.
pub fn rotation_over(
    keys: IamBrokerKeys,
    sdk: &SdkConfig,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> KeyRotation {
    KeyRotation {
        keys: Arc::new(keys),
        ledger: Arc::new(DynamoLedger::new(
            home_dynamodb(sdk, settings),
            &settings.directory_table,
            &settings.audit_table,
        )),
        clock,
        resource: "the broker".into(),
        account: None,
        event: AuditEvent::BrokerKeyRotated,
        min_age: time::Duration::days(i64::from(settings.rotation_days.saturating_sub(1).max(1))),
    }
}

/// One rotation's report, as JSON.
pub fn report(r: &RotationReport) -> Value {
    Value::Object(report_fields(r))
}

fn report_fields(r: &RotationReport) -> Map<String, Value> {
    Map::from_iter([
        (
            "rotated".to_owned(),
            json!(
                r.rotated
                    .as_ref()
                    .map(|(old, new)| json!({"from": old, "to": new}))
            ),
        ),
        ("tidied".to_owned(), json!(r.tidied)),
        ("skipped".to_owned(), json!(r.skipped)),
    ])
}

/// One key the targets held: whose, and what became of it (with the rotation's report when it
/// ran).
fn target_json(r: &TargetKeysReport) -> Value {
    let mut entry = Map::from_iter([
        ("account".to_owned(), json!(r.account.as_str())),
        (
            "targets".to_owned(),
            json!(r.targets.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
        ),
        ("user".to_owned(), json!(r.user)),
    ]);
    match &r.outcome {
        TargetOutcome::Done(done) => {
            entry.insert("outcome".into(), json!("done"));
            entry.extend(report_fields(done));
        }
        TargetOutcome::NotAllowed => {
            entry.insert("outcome".into(), json!("not_allowed"));
        }
        TargetOutcome::Failed(why) => {
            entry.insert("outcome".into(), json!("failed"));
            entry.insert("error".into(), json!(why));
        }
    }
    Value::Object(entry)
}
