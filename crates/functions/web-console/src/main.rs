//! Lambda: web-console. The pages (`/`, `/signin`, `/targets`, `/console`, `/credentials`,
//! `/authenticator`, `/approvals`, `/access-requests`, `/admin`, `/assets/*`; the routes are
//! `cooper_api::web::page_routes`). A function of its own, so that the API functions carry
//! neither the pages nor the union of permissions the pages need. SAML sign-in is the
//! saml-signin function's: the sign-in page only shows its buttons.
#![deny(clippy::indexing_slicing)]

use cooper_api::settings::Settings;
use cooper_api::state::load_all;
use cooper_api::web::WebState;
use cooper_api::{host, router, telemetry, web};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_function("web-console");
    let settings = Settings::from_env()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let state = WebState::pages(load_all(&sdk, &settings).await?, &settings, false)?;
    host::run_lambda(router::edge_with_pages(web::page_routes(state))).await
}
