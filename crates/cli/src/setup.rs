//! `cooper setup`: everything a deployment needs, created if missing, kept if present; then a demo
//! directory (account, targets, group, cascade grant, user and API token) unless `--no-demo`.

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use cooper_aws::directory::DynamoDirectory;
use cooper_aws::kms::KmsVault;
use cooper_aws::provisioning::{self, Outcome};
use cooper_aws::{aws_sdk_dynamodb, aws_sdk_iam, aws_sdk_kms, aws_sdk_ssm};
use cooper_core::admin::scope::AdminGrant;
use cooper_core::clock::{Clock, Entropy, OsEntropy, SystemClock};
use cooper_core::model::{Account, Grant, GrantScope, Group, Principal, Target, User};
use cooper_core::names::{
    AccountId, AccountName, ExternalId, GroupName, Level, Partition, RoleArn, SessionPolicy,
    TargetName, UserName,
};
use cooper_core::ports::Directory;
use cooper_core::token::{ApiToken, ApiTokenRecord};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::deployment::DeploymentArgs;
use crate::error::Error;

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// The IAM user whose keys sign AssumeRole (created, with a key, if its SSM parameters are missing).
    #[arg(long, default_value = "cooper-broker")]
    broker_user: String,
    /// Do not create the demo directory.
    #[arg(long)]
    no_demo: bool,
    /// Subscribe this address to the audit notices (AWS asks it to confirm).
    #[arg(long)]
    notify_email: Option<String>,
    /// The first universal admin (created if missing; a new API token is printed each run).
    #[arg(long, default_value = "admin")]
    admin_user: String,
    /// The API endpoint, for the example request printed at the end.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    /// Print a JSON report (with the demo user's token) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Step {
    what: &'static str,
    name: String,
    created: bool,
}

#[derive(Serialize)]
struct DemoReport {
    account_id: String,
    user: String,
    group: String,
    /// The demo user's API token: shown once, stored only as a hash.
    token: String,
    token_expires_at: String,
    /// A role target the demo user may become.
    target: String,
    /// A federated-user target the demo user may become.
    federated_target: String,
    /// A role target above the demo grant's level: asking for it is refused.
    denied_target: String,
}

#[derive(Serialize)]
struct SetupReport {
    region: String,
    endpoint: String,
    directory_table: String,
    audit_table: String,
    kms_key: String,
    ssm_prefix: String,
    steps: Vec<Step>,
    /// The SNS topic audit notices go to.
    notify_topic_arn: String,
    /// The first universal admin.
    admin_user: String,
    /// Their API token: shown once, stored only as a hash.
    admin_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    demo: Option<DemoReport>,
}

pub async fn run(args: SetupArgs) -> Result<(), Error> {
    let settings = args.deployment.settings()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let kms = aws_sdk_kms::Client::new(&sdk);
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    let mut steps = Vec::new();
    let mut step = |what, name: &str, outcome: Outcome| {
        steps.push(Step {
            what,
            name: name.to_owned(),
            created: outcome == Outcome::Created,
        })
    };

    let (directory_table, audit_table) = tokio::try_join!(
        provisioning::ensure_directory_table(&dynamodb, &settings.directory_table),
        provisioning::ensure_audit_table(&dynamodb, &settings.audit_table),
    )?;
    step(
        "directory table",
        &settings.directory_table,
        directory_table,
    );
    step("audit table", &settings.audit_table, audit_table);

    let (kms_key, key_outcome) =
        provisioning::ensure_kms_key(&kms, &args.deployment.kms_key).await?;
    step("KMS key", &args.deployment.kms_key, key_outcome);

    let mut fresh_key = [0u8; 32];
    OsEntropy.fill(&mut fresh_key)?;
    let jwt = provisioning::ensure_jwt_key(&ssm, &settings.ssm_prefix, &kms_key, || {
        secrecy::SecretString::from(STANDARD.encode(fresh_key))
    })
    .await?;
    step(
        "JWT signing key",
        &cooper_aws::ssm::Param::JwtSigningKey.name(&settings.ssm_prefix),
        jwt,
    );

    if settings.broker_credentials == cooper_api::settings::BrokerCredentials::Ssm {
        let broker = provisioning::ensure_broker_user(
            &iam,
            &ssm,
            &settings.ssm_prefix,
            &kms_key,
            &args.broker_user,
        )
        .await?;
        step(
            "broker keys",
            &format!(
                "{} ({})",
                args.broker_user,
                cooper_aws::ssm::Param::BrokerAccessKeyId.name(&settings.ssm_prefix)
            ),
            broker,
        );
    }

    let sns = cooper_aws::aws_sdk_sns::Client::new(&sdk);
    let topic =
        provisioning::ensure_topic(&sns, NOTIFY_TOPIC, args.notify_email.as_deref()).await?;

    let directory = DynamoDirectory::new(dynamodb.clone(), &settings.directory_table);
    let (admin_user, admin_token) = first_admin(&directory, &args.admin_user).await?;
    let demo = if args.no_demo {
        None
    } else {
        let vault = KmsVault::new(kms.clone());
        Some(seed_demo(&directory, &vault, &iam, &kms_key).await?)
    };

    let report = SetupReport {
        region: sdk.region().map(ToString::to_string).unwrap_or_default(),
        endpoint: args.endpoint.clone(),
        directory_table: settings.directory_table.clone(),
        audit_table: settings.audit_table.clone(),
        kms_key,
        ssm_prefix: settings.ssm_prefix.clone(),
        steps,
        notify_topic_arn: topic,
        admin_user,
        admin_token,
        demo,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report));
    }
    Ok(())
}

/// A universal admin, so that a fresh deployment can be administered at once.
async fn first_admin(directory: &DynamoDirectory, name: &str) -> Result<(String, String), Error> {
    let user = UserName::parse(name)?;
    if directory.user_profile(&user).await?.is_none() {
        let mut profile = User::new(user.clone());
        profile.display_name = Some("First administrator".into());
        directory.put_user(&profile).await?;
    }
    directory
        .put_admin_grant(&AdminGrant {
            principal: Principal::User(user.clone()),
            account: None,
        })
        .await?;
    let token = ApiToken::generate(&OsEntropy)?;
    let mut record = ApiTokenRecord::issue(
        &token,
        user.clone(),
        SystemClock.now(),
        time::Duration::days(DEMO_TOKEN_DAYS),
    );
    record.label = Some("cooper setup (first admin)".into());
    directory.put_api_token(&record).await?;
    Ok((user.to_string(), token.reveal().expose_secret().to_owned()))
}

/// The topic audit notices go to (`cooper serve` follows the stream into it).
pub const NOTIFY_TOPIC: &str = "cooper-audit";

const DEMO_ACCOUNT: &str = "111111111111";
const DEMO_USER: &str = "demo";
const DEMO_GROUP: &str = "demo-engineers";
const DEMO_GRANT_LEVEL: u32 = 50;
const DEMO_TOKEN_DAYS: i64 = 30;

async fn seed_demo(
    directory: &DynamoDirectory,
    vault: &KmsVault,
    iam: &aws_sdk_iam::Client,
    kms_key: &str,
) -> Result<DemoReport, Error> {
    let clock = SystemClock;
    let account = Account {
        id: AccountId::parse(DEMO_ACCOUNT)?,
        name: AccountName::parse("demo")?,
        partition: Partition::Aws,
    };
    directory.put_account(&account).await?;

    let role = |name: &str,
                level: u32,
                role: &str,
                external_id: Option<&str>,
                description: &str|
     -> Result<Target, Error> {
        let mut target = Target::role(
            TargetName::parse(name)?,
            account.id.clone(),
            Level::new(level)?,
            RoleArn::parse(&format!("arn:aws:iam::{DEMO_ACCOUNT}:role/{role}"))?,
            external_id.map(ExternalId::parse).transpose()?,
            Some(3600),
        )?;
        target.description = Some(description.to_owned());
        Ok(target)
    };
    let readonly = role(
        "demo-readonly",
        10,
        "cooper-demo-readonly",
        Some("cooper-demo-external-id"),
        "Read-only access to the demo account",
    )?;
    let admin = role(
        "demo-admin",
        100,
        "cooper-demo-admin",
        None,
        "Administrator of the demo account",
    )?;
    directory.put_target(&readonly).await?;
    directory.put_target(&admin).await?;

    // The federated-user target needs an IAM user's keys; keep the existing target on a re-run
    // rather than minting another access key each time (IAM allows two per user).
    let federated_name = TargetName::parse("demo-federated")?;
    if directory.target(&federated_name).await?.is_none() {
        let keys = provisioning::create_iam_user_keys(iam, "cooper-demo-federation").await?;
        let fed_keys = cooper_core::model::FederationKeys {
            access_key_id: keys.access_key_id,
            secret_access_key: keys.secret_access_key,
        };
        let sealed = vault.seal_federation_keys(kms_key, &fed_keys).await?;
        let policy = SessionPolicy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListAllMyBuckets","sts:GetCallerIdentity"],"Resource":"*"}]}"#,
        )?;
        let mut federated = Target::federated_user(
            federated_name.clone(),
            &account,
            Level::new(10)?,
            sealed,
            policy,
            Some(3600),
        )?;
        federated.description =
            Some("A federated user of the demo account, scoped by a session policy".into());
        directory.put_target(&federated).await?;
    }

    let group = GroupName::parse(DEMO_GROUP)?;
    directory
        .put_group(&Group {
            name: group.clone(),
            description: Some("Engineers of the demo".into()),
        })
        .await?;
    directory
        .put_grant(&Grant {
            principal: Principal::Group(group.clone()),
            scope: GrantScope::Account {
                account: account.id.clone(),
                max_level: Level::new(DEMO_GRANT_LEVEL)?,
            },
            expires_at: None,
        })
        .await?;

    let user = UserName::parse(DEMO_USER)?;
    let mut profile = User::new(user.clone());
    profile.display_name = Some("Demo User".into());
    directory.put_user(&profile).await?;
    directory.add_member(&user, &group).await?;

    let token = ApiToken::generate(&OsEntropy)?;
    let mut record = ApiTokenRecord::issue(
        &token,
        user.clone(),
        clock.now(),
        time::Duration::days(DEMO_TOKEN_DAYS),
    );
    record.label = Some("cooper setup (demo)".into());
    directory.put_api_token(&record).await?;

    Ok(DemoReport {
        account_id: account.id.to_string(),
        user: user.to_string(),
        group: group.to_string(),
        token: token.reveal().expose_secret().to_owned(),
        token_expires_at: record
            .expires_at
            .format(&time::format_description::well_known::Rfc3339)?,
        target: readonly.name.to_string(),
        federated_target: federated_name.to_string(),
        denied_target: admin.name.to_string(),
    })
}

fn human(report: &SetupReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "cooper setup (region {})", report.region);
    for step in &report.steps {
        let state = if step.created { "created" } else { "kept" };
        let _ = writeln!(out, "  {:<16} {:<40} {state}", step.what, step.name);
    }
    let _ = writeln!(out, "  {:<16} {}", "audit notices", report.notify_topic_arn);
    let _ = writeln!(
        out,
        "\nfirst admin: {} (universal); API token (shown once):\n\n    {}",
        report.admin_user, report.admin_token
    );
    if let Some(demo) = &report.demo {
        let _ = writeln!(out, "\ndemo directory:");
        let _ = writeln!(out, "  account {} (demo)", demo.account_id);
        let _ = writeln!(
            out,
            "  targets {} (role, level 10), {} (federated user, level 10), {} (role, level 100)",
            demo.target, demo.federated_target, demo.denied_target
        );
        let _ = writeln!(
            out,
            "  group {} may become demo targets up to level {DEMO_GRANT_LEVEL}",
            demo.group
        );
        let _ = writeln!(
            out,
            "  user {} is in {}; API token (shown once, expires {}):",
            demo.user, demo.group, demo.token_expires_at
        );
        let _ = writeln!(out, "\n    {}\n", demo.token);
        let _ = writeln!(out, "try:");
        let _ = writeln!(
            out,
            "  curl -s -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{\"target\":\"{}\"}}' {}/v1/credentials",
            demo.token, demo.target, report.endpoint
        );
        let _ = writeln!(
            out,
            "  (and {} for the federated user; {} is refused: level 100 > 50)",
            demo.federated_target, demo.denied_target
        );
    }
    out
}
