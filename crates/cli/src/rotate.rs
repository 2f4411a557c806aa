//! `cooper rotate-keys`: rotates the broker's IAM-user key now, as the rotate-keys function does
//! on its schedule (for operators with AWS access to the deployment; recorded as them).

use std::sync::Arc;

use clap::Args;
use cooper_core::audit::RequestMeta;
use cooper_core::clock::SystemClock;

use crate::deployment::DeploymentArgs;
use crate::error::Error;

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// Rotate even if the key in use is younger than the rotation period.
    #[arg(long)]
    force: bool,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: RotateArgs) -> Result<(), Error> {
    let settings = args.deployment.settings()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let principal = cooper_aws::sts::caller_arn(&sdk).await?;
    let mut keys = cooper_aws::rotation::IamBrokerKeys::new(
        &sdk,
        &settings.ssm_prefix,
        settings.kms_key.clone(),
    );
    // An emulator knows a new key at once: no pauses between tries.
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        keys = keys.without_pauses();
    }
    let rotation =
        cooper_api::rotation::rotation_over(keys, &sdk, &settings, Arc::new(SystemClock));
    let meta = RequestMeta {
        request_id: format!("cli-{}", uuid::Uuid::now_v7()),
        source_ip: None,
    };
    let report = rotation
        .run(args.force, &principal, "operator", &meta)
        .await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&cooper_api::rotation::report(&report))?
        );
        return Ok(());
    }
    for line in &report.tidied {
        println!("tidied: {line}");
    }
    match (&report.rotated, &report.skipped) {
        (Some((old, new)), _) => {
            println!("rotated: {new} is in use now; {old} is inactive until the next rotation")
        }
        (None, Some(why)) => println!("kept the key in use: {why} (--force rotates it now)"),
        (None, None) => {}
    }
    Ok(())
}
