//! Lambda: issue-credentials. POST /v1/credentials, POST /v1/console, GET /v1/targets,
//! GET /v1/whoami, POST /v1/approvals, GET /v1/approvals/{id}, POST /v1/approvals/{id}/approve,
//! POST and GET /v1/access-requests, GET /v1/access-requests/{id}, POST
//! /v1/access-requests/{id}/approve, /deny and /cancel, and GET /v1/openapi.json (the routes
//! are `cooper_api::router::issue_credentials`).
#![deny(clippy::indexing_slicing)]

use cooper_api::settings::Settings;
use cooper_api::state::IssueState;
use cooper_api::{host, router, telemetry};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_function("issue-credentials");
    // Configuration and secrets are read once, here: a missing one stops the function at init,
    // with its name, instead of failing the first request.
    let settings = Settings::from_env()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let state = IssueState::load(&sdk, &settings).await?;
    host::run_lambda(router::edge(router::issue_credentials(state))).await
}
