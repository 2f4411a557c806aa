//! Lambda: rotate-keys. On its EventBridge schedule, rotates the broker's IAM-user key
//! (`cooper_core::rotation`): tidies what an earlier run left, then, once the key in use is old
//! enough, makes a new one, proves it, records it, stores it, and deactivates the old one.
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
        match rotation.run(false, "rotate-keys", "schedule", &meta).await {
            Ok(report) => Ok::<_, Error>(rotation::report(&report)),
            Err(error) => {
                rotation::failed(&error);
                Err(error.into())
            }
        }
    }))
    .await
}
