//! Lambda: saml-signin. SAML sign-in: the SP metadata, the SP-initiated start, the assertion
//! consumer and the CLI's code redemption (`/v1/saml/{provider}/metadata`, `/login`, `/acs`,
//! `POST /v1/sessions/saml`; the routes are `cooper_api::web::saml_routes`). A function of its
//! own: the XML signature stack is linked here and nowhere else, and the SAML responses it
//! reads are handled apart from the console's pages.
#![deny(clippy::indexing_slicing)]

use cooper_api::settings::Settings;
use cooper_api::state::load_all;
use cooper_api::web::WebState;
use cooper_api::{host, router, telemetry, web};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_function("saml-signin");
    let settings = Settings::from_env()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let state = WebState::new(load_all(&sdk, &settings).await?, &settings, false)?;
    host::run_lambda(router::edge_with_pages(web::saml_routes(state))).await
}
