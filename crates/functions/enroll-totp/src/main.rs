//! Lambda: enroll-totp. POST /v1/totp/enrollment, POST /v1/totp/enrollment/confirm,
//! POST /v1/sessions, POST /v1/sessions/oidc, PUT /v1/password (the routes are
//! `cooper_api::router::enroll_totp`).
#![deny(clippy::indexing_slicing)]

use cooper_api::settings::Settings;
use cooper_api::state::EnrollState;
use cooper_api::{host, router, telemetry};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_function("enroll-totp");
    let settings = Settings::from_env()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let state = EnrollState::load(&sdk, &settings).await?;
    host::run_lambda(router::edge(router::enroll_totp(state))).await
}
