//! Lambda: audit-notify. The audit table's stream in, one SNS notice per record out; failed
//! records are reported back (partial batch response) to be delivered again.
#![deny(clippy::indexing_slicing)]

use aws_lambda_events::event::dynamodb::Event;
use cooper_api::notify::{lambda, system_notifier};
use cooper_api::settings::Settings;
use cooper_api::telemetry;
use lambda_http::{LambdaEvent, service_fn};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_function("audit-notify");
    let settings = Settings::from_env()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let notifier = system_notifier(&sdk, &settings)?;
    let notifier = &notifier;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(lambda::handle(notifier, event.payload).await)
    }))
    .await
}
