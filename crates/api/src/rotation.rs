//! The broker key's rotation over a deployment: IAM and SSM with the key in use, its record in
//! the audit trail. Run by the rotate-keys function on its schedule, and by `cooper rotate-keys`.

use std::sync::Arc;

use aws_config::SdkConfig;
use cooper_aws::aws_sdk_dynamodb;
use cooper_aws::ledger::DynamoLedger;
use cooper_aws::rotation::IamBrokerKeys;
use cooper_core::clock::Clock;
use cooper_core::rotation::{KeyRotation, RotationReport};
use serde_json::{Value, json};

use crate::settings::Settings;

/// The rotation of this deployment's broker key: a key younger than a day less than the
/// rotation period is kept (so the scheduled run rotates, and a run again right after does not).
pub fn key_rotation(sdk: &SdkConfig, settings: &Settings, clock: Arc<dyn Clock>) -> KeyRotation {
    rotation_over(
        IamBrokerKeys::new(sdk, &settings.ssm_prefix, settings.kms_key.clone())
            .with_replicas(&settings.replica_regions),
        sdk,
        settings,
        clock,
    )
}

/// As `key_rotation`, over `keys` (an emulator's, which know a new key at once).
pub fn rotation_over(
    keys: IamBrokerKeys,
    sdk: &SdkConfig,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> KeyRotation {
    KeyRotation {
        keys: Arc::new(keys),
        ledger: Arc::new(DynamoLedger::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &settings.directory_table,
            &settings.audit_table,
        )),
        clock,
        holder: "the broker".into(),
        min_age: time::Duration::days(i64::from(settings.rotation_days.saturating_sub(1).max(1))),
    }
}

/// What a run did, as the function answers and the command prints it.
pub fn report(r: &RotationReport) -> Value {
    json!({
        "rotated": r.rotated.as_ref().map(|(old, new)| json!({"from": old, "to": new})),
        "tidied": r.tidied,
        "skipped": r.skipped,
    })
}

/// A failed run, for the operator: logged, and counted as the metric `RotationFailures`
/// (which an alarm watches; written once the function has named itself to `metrics`).
pub fn failed(error: &cooper_core::rotation::RotationError) {
    tracing::error!(%error, "the broker key's rotation failed");
    crate::metrics::count(crate::metrics::Counter::RotationFailures);
}
