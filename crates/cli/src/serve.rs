//! `cooper serve`: every router on one local listener.

use std::net::SocketAddr;

use clap::Args;
use cooper_api::host::serve_local;
use cooper_api::router;
use cooper_api::state::load_all;

use crate::deployment::DeploymentArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "COOPER_LISTEN")]
    listen: SocketAddr,
    #[command(flatten)]
    deployment: DeploymentArgs,
}

pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let settings = args.deployment.settings()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let app = router::edge(router::all(load_all(&sdk, &settings).await?));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "cooper is serving");
    eprintln!("cooper serving on http://{local} (Ctrl-C stops)");
    serve_local(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
