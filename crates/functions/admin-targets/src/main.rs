//! Lambda: admin-targets. /v1/admin/{accounts,targets,users,groups,grants,admins,tokens,audit}.
#![deny(clippy::indexing_slicing)]

use cooper_api::settings::Settings;
use cooper_api::state::AdminState;
use cooper_api::{host, router, telemetry};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_function("admin-targets");
    let settings = Settings::from_env()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let state = AdminState::load(&sdk, &settings).await?;
    host::run_lambda(router::edge(router::admin_targets(state))).await
}
