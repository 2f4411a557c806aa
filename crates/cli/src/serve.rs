//! `cooper serve`: every router on one local listener, and the audit-notify handler fed by
//! following the audit table's stream (as Lambda feeds it in AWS).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use cooper_api::host::serve_local;
use cooper_api::notify::system_notifier;
use cooper_api::router;
use cooper_api::settings::Settings;
use cooper_api::state::load_all;
use cooper_api::web::stand_in;
use cooper_aws::aws_sdk_dynamodb;
use cooper_aws::stream::StreamFollower;
use cooper_core::notify::StreamRecord;

use crate::deployment::DeploymentArgs;
use crate::error::Error;
use crate::setup::NOTIFY_TOPIC;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "COOPER_LISTEN")]
    listen: SocketAddr,
    /// Do not follow the audit stream to send notices.
    #[arg(long)]
    no_notices: bool,
    #[command(flatten)]
    deployment: DeploymentArgs,
}

pub async fn run(args: ServeArgs) -> Result<(), Error> {
    let mut settings = args.deployment.settings()?;
    let sdk = cooper_aws::load_sdk_config().await;

    let listen = |source| Error::Listen {
        addr: args.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(listen)?;
    let local = listener.local_addr().map_err(listen)?;

    // No emulator has AWS's console sign-in endpoint: when cooper runs against one
    // (AWS_ENDPOINT_URL) on loopback and no sign-in endpoint is named, console links go to a
    // stand-in page served here (cooper_api::web::stand_in), so the flow can be clicked through.
    // Against real AWS, links go to AWS.
    let emulated = std::env::var_os("AWS_ENDPOINT_URL").is_some_and(|v| !v.is_empty());
    let stand_in = emulated && settings.signin_endpoint.is_none() && local.ip().is_loopback();
    if stand_in {
        let here = format!("http://{local}{}", stand_in::PATH);
        settings.signin_endpoint = Some(here.clone());
        settings.console_login_endpoint.get_or_insert(here);
    }
    // SAML's entity ids and consumer URLs are made from cooper's public URL: here, by default,
    // the address it serves on.
    settings
        .public_url
        .get_or_insert_with(|| format!("http://{local}"));
    let states = load_all(&sdk, &settings).await?;
    let web = cooper_api::web::WebState::new(states.clone(), &settings, local.ip().is_loopback())?;
    let mut routes = router::all(states).merge(cooper_api::web::routes(web));
    if stand_in {
        routes = routes.merge(stand_in::StandIn::new(sdk.clone()).router());
    }
    let app = router::edge_with_pages(routes);

    if !args.no_notices {
        if settings.notify_topic_arn.is_none() {
            settings.notify_topic_arn = setup_topic(&sdk).await;
        }
        if settings.notify_topic_arn.is_some() {
            tokio::spawn(follow_audit_stream(sdk.clone(), settings.clone()));
        }
    }

    // With COOPER_LOG_FORMAT=json, as in Lambda: JSON log lines on stderr and the EMF metric
    // lines on stdout (function `cooper-serve`). In text, no metrics are written.
    if cooper_api::telemetry::Format::from_env() == cooper_api::telemetry::Format::Json {
        cooper_api::metrics::init("cooper-serve");
    }
    tracing::info!(address = %local, "cooper is serving");
    eprintln!(
        "cooper serving on http://{local} (the web console at /, the API under /v1; Ctrl-C stops)"
    );
    serve_local(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(Error::Serve)
}

/// The topic `cooper setup` made (CreateTopic returns an existing topic's ARN).
async fn setup_topic(sdk: &aws_config::SdkConfig) -> Option<String> {
    let sns = cooper_aws::aws_sdk_sns::Client::new(sdk);
    match sns.create_topic().name(NOTIFY_TOPIC).send().await {
        Ok(out) => out.topic_arn,
        Err(e) => {
            tracing::warn!(error = %cooper_aws::aws_sdk_sns::error::DisplayErrorContext(&e), "no notice topic: audit notices are off");
            None
        }
    }
}

/// Polls the audit stream and hands new records to the same notifier the Lambda runs. Records
/// whose notice failed are kept and tried again on the next round.
async fn follow_audit_stream(sdk: aws_config::SdkConfig, settings: Settings) {
    let notifier = match system_notifier(&sdk, &settings) {
        Ok(n) => n,
        Err(e) => return tracing::warn!(error = %e, "audit notices are off"),
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let mut follower = loop {
        match StreamFollower::new(&sdk, &dynamodb, &settings.audit_table).await {
            Ok(f) => break f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the audit stream yet");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    let mut pending: Vec<StreamRecord> = Vec::new();
    loop {
        match follower.poll().await {
            Ok(new) => pending.extend(new),
            Err(e) => tracing::warn!(error = %e, "could not read the audit stream"),
        }
        if !pending.is_empty() {
            let failed = notifier.handle(&pending).await;
            pending.retain(|r| failed.contains(&r.position));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
