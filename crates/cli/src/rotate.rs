//! `cooper rotate-keys`: rotates the broker's IAM-user key, and the federated-user targets' keys
//! their accounts let cooper rotate, now, as the rotate-keys function does on its schedule (for
//! operators with AWS access to the deployment; recorded as them).

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
    /// Rotate even if a key in use is younger than the rotation period.
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
    )
    .with_replicas(&settings.replica_regions);
    let mut users = cooper_aws::rotation::IamFederationUsers::new(&sdk);
    // An emulator knows a new key at once: no pauses between tries.
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        keys = keys.without_pauses();
        users = users.without_pauses();
    }
    let rotations =
        cooper_api::rotation::rotations_over(keys, users, &sdk, &settings, Arc::new(SystemClock));
    let meta = RequestMeta {
        request_id: format!("cli-{}", uuid::Uuid::now_v7()),
        source_ip: None,
    };
    let run = rotations
        .run(args.force, &principal, "operator", &meta)
        .await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run.json())?);
    } else {
        print_human(&run);
    }
    let failures = run.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Rotation(failures.join("; ")))
    }
}

fn print_human(run: &cooper_api::rotation::RotationRun) {
    use cooper_core::rotation::targets::TargetOutcome;
    let say = |who: &str, r: &cooper_core::rotation::RotationReport| {
        for line in &r.tidied {
            println!("{who}: tidied: {line}");
        }
        match (&r.rotated, &r.skipped) {
            (Some((old, new)), _) => println!(
                "{who}: rotated: {new} is in use now; {old} is inactive until the next rotation"
            ),
            (None, Some(why)) => {
                println!("{who}: kept the key in use: {why} (--force rotates it now)")
            }
            (None, None) => {}
        }
    };
    match &run.broker {
        Ok(r) => say("broker", r),
        Err(e) => println!("broker: failed: {e}"),
    }
    match &run.targets {
        Err(e) => println!("targets: failed: {e}"),
        Ok(reports) => {
            for r in reports {
                let names: Vec<&str> = r.targets.iter().map(|t| t.as_str()).collect();
                let who = format!("{} ({})", names.join(", "), r.account);
                match &r.outcome {
                    TargetOutcome::Done(done) => say(&who, done),
                    TargetOutcome::NotAllowed => println!(
                        "{who}: not rotated: IAM user {} may not manage its own keys (infra/README.md says what to grant)",
                        r.user.as_deref().unwrap_or("?")
                    ),
                    TargetOutcome::Failed(why) => println!("{who}: failed: {why}"),
                }
            }
        }
    }
}
