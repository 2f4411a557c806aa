//! Lambda: rotate-keys. On its EventBridge schedule, rotates the broker's IAM-user key, then
//! the federated-user targets' where their accounts allow it (`cooper_core::rotation`): tidies
//! what an earlier run left, then, once a key in use is old enough, makes a new one, proves it,
//! records it, stores it, and deactivates the old one. A failed rotation fails the invocation
//! (the schedule retries; a run again is safe) and counts as `RotationFailures`.
#![deny(clippy::indexing_slicing)]

use std::sync::Arc;

use cooper_api::settings::Settings;
use cooper_api::{rotation, telemetry};
use cooper_core::audit::RequestMeta;
use cooper_core::clock::SystemClock;
use lambda_http::{LambdaEvent, service_fn};
use serde_json::Value;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_function("rotate-keys");
    let settings = Settings::from_env()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let rotation = rotation::key_rotation(&sdk, &settings, Arc::new(SystemClock));
    let rotation = &rotation;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let meta = RequestMeta {
            request_id: event.context.request_id.clone(),
            source_ip: None,
        };
        let run = rotation.run(false, "rotate-keys", "schedule", &meta).await;
        let report = run.json();
        tracing::info!(%report, "keys rotated");
        match run.report_failures() {
            0 => Ok::<_, Error>(report),
            n => Err(format!("{n} key rotation(s) failed: {}", run.failures().join("; ")).into()),
        }
    }))
    .await
}
