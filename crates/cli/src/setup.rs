//! `cooper setup`: everything a deployment needs, created if missing, kept if present; then a demo
//! directory (account, targets, group, cascade grant, user and API token) unless `--no-demo`.
//! The directory is seeded through the admin use cases, as the operator running the command:
//! each item is created only if absent, with its audit record, and a re-run changes nothing.

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use cooper_aws::kms::KmsVault;
use cooper_aws::provisioning::{self, Outcome};
use cooper_aws::{aws_sdk_dynamodb, aws_sdk_iam, aws_sdk_kms, aws_sdk_ssm};
use cooper_core::admin::AdminError;
use cooper_core::clock::{Entropy, OsEntropy};
use cooper_core::model::{Account, AdminGrant, Grant, GrantScope, Group, Principal, Target, User};
use cooper_core::names::{
    AccountId, AccountName, Description, DisplayName, ExternalId, GroupName, Level, Partition,
    RoleArn, SessionPolicy, TargetName, TokenLabel, UserName,
};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::deployment::DeploymentArgs;
use crate::operator::Operator;

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
    /// The first universal admin (created if missing, with an API token printed once).
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
    /// The demo user's API token: shown once, when the user is created; stored only as a hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// The demo user's one-time enrollment code (`cooper enroll --code`), shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    enrollment_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_expires_at: Option<String>,
    /// A role target the demo user may become.
    target: String,
    /// A federated-user target the demo user may become.
    federated_target: String,
    /// A role target above the demo grant's level: asking for its credentials is refused, but
    /// access to it may be requested (the first admin approves).
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
    /// Their API token: shown once, when the admin is created; stored only as a hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_token: Option<String>,
    /// Their one-time enrollment code (`cooper enroll --code`), shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_enrollment_code: Option<String>,
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

    let operator = Operator::new(&sdk, &settings).await?;
    let mut seeded = Seeded(Vec::new());
    let (admin_user, admin_token, admin_enrollment_code) =
        first_admin(&operator, &mut seeded, &args.admin_user).await?;
    let demo = if args.no_demo {
        None
    } else {
        let vault = KmsVault::new(kms.clone());
        Some(seed_demo(&operator, &mut seeded, &vault, &sdk, &kms_key, &admin_user).await?)
    };
    steps.extend(seeded.0);

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
        admin_enrollment_code,
        demo,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report));
    }
    Ok(())
}

/// What seeding created and kept, for the report.
struct Seeded(Vec<Step>);

impl Seeded {
    /// Notes the outcome of creating `name`: created, or kept because it was there; true if
    /// created.
    fn note<T>(
        &mut self,
        what: &'static str,
        name: impl std::fmt::Display,
        result: Result<T, AdminError>,
    ) -> Result<bool, Error> {
        let created = match result {
            Ok(_) => true,
            Err(AdminError::AlreadyExists(_)) => false,
            Err(e) => return Err(e.into()),
        };
        self.0.push(Step {
            what,
            name: name.to_string(),
            created,
        });
        Ok(created)
    }
}

/// An API token for a user just created (a kept user keeps the tokens they have).
async fn first_token(
    operator: &Operator,
    user: &UserName,
    label: &str,
) -> Result<(String, String), Error> {
    let (token, record) = operator
        .admin
        .issue_token(
            &operator.context(),
            user,
            Some(TokenLabel::parse(label)?),
            Some(DEMO_TOKEN_DAYS),
        )
        .await?;
    Ok((
        token.reveal().expose_secret().to_owned(),
        record
            .expires_at
            .format(&time::format_description::well_known::Rfc3339)?,
    ))
}

/// A one-time code with which a user just created enrolls their first authenticator.
async fn enrollment_code(operator: &Operator, user: &UserName) -> Result<String, Error> {
    let (code, _) = operator
        .admin
        .issue_enrollment_code(&operator.context(), user, None)
        .await?;
    Ok(code.reveal().expose_secret().to_owned())
}

/// A universal admin, so that a fresh deployment can be administered at once.
async fn first_admin(
    operator: &Operator,
    seeded: &mut Seeded,
    name: &str,
) -> Result<(String, Option<String>, Option<String>), Error> {
    let user = UserName::parse(name)?;
    let mut profile = User::new(user.clone());
    profile.display_name = Some(DisplayName::parse("First administrator")?);
    let admin = &operator.admin;
    let created = seeded.note(
        "admin user",
        &user,
        admin.create_user(&operator.context(), profile).await,
    )?;
    let grant = AdminGrant {
        principal: Principal::User(user.clone()),
        account: None,
    };
    seeded.note(
        "admin grant",
        format!("{user} (universal)"),
        admin.create_admin_grant(&operator.context(), grant).await,
    )?;
    let (token, code) = if created {
        (
            Some(
                first_token(operator, &user, "cooper setup (first admin)")
                    .await?
                    .0,
            ),
            Some(enrollment_code(operator, &user).await?),
        )
    } else {
        (None, None)
    };
    Ok((user.to_string(), token, code))
}

/// The topic audit notices go to (`cooper serve` follows the stream into it).
pub const NOTIFY_TOPIC: &str = "cooper-audit";

const DEMO_ACCOUNT: &str = "111111111111";
const DEMO_USER: &str = "demo";
const DEMO_GROUP: &str = "demo-engineers";
const DEMO_GRANT_LEVEL: u32 = 50;
const DEMO_TOKEN_DAYS: i64 = 30;

async fn seed_demo(
    operator: &Operator,
    seeded: &mut Seeded,
    vault: &KmsVault,
    sdk: &aws_config::SdkConfig,
    kms_key: &str,
    approver: &str,
) -> Result<DemoReport, Error> {
    let admin = &operator.admin;
    let account = Account {
        id: AccountId::parse(DEMO_ACCOUNT)?,
        name: AccountName::parse("demo")?,
        partition: Partition::Aws,
        access_requests: None,
    };
    seeded.note(
        "account",
        &account.id,
        admin
            .create_account(&operator.context(), account.clone())
            .await,
    )?;

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
        target.description = Some(Description::parse(description)?);
        Ok(target)
    };
    let readonly = role(
        "demo-readonly",
        10,
        "cooper-demo-readonly",
        Some("cooper-demo-external-id"),
        "Read-only access to the demo account",
    )?;
    let mut top = role(
        "demo-admin",
        100,
        "cooper-demo-admin",
        None,
        "Administrator of the demo account",
    )?;
    // Above the demo grant, but the demo user may ask for it: the first admin approves.
    top.access_requests = Some(cooper_core::model::requests::RequestPolicy::new(
        vec![Principal::User(UserName::parse(approver)?)],
        Some(4 * 3600),
        None,
    )?);
    for target in [&readonly, &top] {
        seeded.note(
            "target",
            &target.name,
            admin
                .create_target(&operator.context(), target.clone().into())
                .await,
        )?;
    }

    // The federated-user target needs an IAM user's keys; keep the existing target on a re-run
    // rather than minting another access key each time (IAM allows two per user).
    let federated_name = TargetName::parse("demo-federated")?;
    let exists = match admin.target(&operator.context(), &federated_name).await {
        Ok(_) => true,
        Err(AdminError::NotFound(_)) => false,
        Err(e) => return Err(e.into()),
    };
    if exists {
        seeded.note::<()>(
            "target",
            &federated_name,
            Err(AdminError::AlreadyExists(federated_name.to_string())),
        )?;
    } else {
        // The keys are the demo account's own (an IAM user made there, through its admin role),
        // sealed for this target of that account and no other.
        let iam = provisioning::iam_in_account(sdk, &account.id, "cooper-demo-admin").await?;
        let keys = provisioning::create_iam_user_keys(&iam, "cooper-demo-federation").await?;
        let fed_keys = cooper_core::model::FederationKeys {
            access_key_id: keys.access_key_id,
            secret_access_key: keys.secret_access_key,
        };
        let binding = cooper_core::ports::FederationBinding {
            account: account.id.clone(),
            target: federated_name.clone(),
        };
        let sealed = vault
            .seal_federation_keys(kms_key, &fed_keys, &binding)
            .await?;
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
        federated.description = Some(Description::parse(
            "A federated user of the demo account, scoped by a session policy",
        )?);
        seeded.note(
            "target",
            &federated_name,
            admin
                .create_target(&operator.context(), federated.into())
                .await,
        )?;
    }

    let group = GroupName::parse(DEMO_GROUP)?;
    seeded.note(
        "group",
        &group,
        admin
            .create_group(
                &operator.context(),
                Group {
                    name: group.clone(),
                    description: Some(Description::parse("Engineers of the demo")?),
                },
            )
            .await,
    )?;
    let grant = Grant {
        principal: Principal::Group(group.clone()),
        scope: GrantScope::Account {
            account: account.id.clone(),
            max_level: Level::new(DEMO_GRANT_LEVEL)?,
        },
        expires_at: None,
        via: None,
    };
    seeded.note(
        "grant",
        &grant,
        admin.create_grant(&operator.context(), grant.clone()).await,
    )?;

    let user = UserName::parse(DEMO_USER)?;
    let mut profile = User::new(user.clone());
    profile.display_name = Some(DisplayName::parse("Demo User")?);
    let created = seeded.note(
        "user",
        &user,
        admin.create_user(&operator.context(), profile).await,
    )?;
    seeded.note(
        "membership",
        format!("{user} in {group}"),
        admin.add_member(&operator.context(), &group, &user).await,
    )?;
    let (token, token_expires_at, code) = if created {
        let (token, expires) = first_token(operator, &user, "cooper setup (demo)").await?;
        let code = enrollment_code(operator, &user).await?;
        (Some(token), Some(expires), Some(code))
    } else {
        (None, None, None)
    };

    Ok(DemoReport {
        account_id: account.id.to_string(),
        user: user.to_string(),
        group: group.to_string(),
        token,
        token_expires_at,
        enrollment_code: code,
        target: readonly.name.to_string(),
        federated_target: federated_name.to_string(),
        denied_target: top.name.to_string(),
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
    match &report.admin_token {
        Some(token) => {
            let _ = writeln!(
                out,
                "\nfirst admin: {} (universal); API token (shown once):\n\n    {token}",
                report.admin_user
            );
            if let Some(code) = &report.admin_enrollment_code {
                let _ = writeln!(
                    out,
                    "\n  to enroll their authenticator: `cooper enroll --code` with the one-time code\n\n    {code}"
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "\nfirst admin: {} (universal), kept; its token was shown when it was created \
                 (`cooper token issue --user {}` issues another)",
                report.admin_user, report.admin_user
            );
        }
    }
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
        let (token, shown) = match (&demo.token, &demo.token_expires_at) {
            (Some(token), Some(expires)) => {
                let _ = writeln!(
                    out,
                    "  user {} is in {}; API token (shown once, expires {expires}):",
                    demo.user, demo.group
                );
                let _ = writeln!(out, "\n    {token}\n");
                if let Some(code) = &demo.enrollment_code {
                    let _ = writeln!(
                        out,
                        "  to enroll their authenticator (and set a password): `cooper enroll --code` with\n\n    {code}\n"
                    );
                }
                (token.as_str(), true)
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  user {} is in {}, kept; its token was shown when it was created \
                     (`cooper token issue --user {}` issues another)\n",
                    demo.user, demo.group, demo.user
                );
                ("<token>", false)
            }
        };
        let _ = writeln!(out, "try{}:", if shown { "" } else { ", with a token" });
        let _ = writeln!(
            out,
            "  curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"target\":\"{}\"}}' {}/v1/credentials",
            demo.target, report.endpoint
        );
        let _ = writeln!(
            out,
            "  (and {} for the federated user; {} is refused: level 100 > 50)",
            demo.federated_target, demo.denied_target
        );
        let _ = writeln!(
            out,
            "  {} may ask for {} for a while (`cooper access request {} --reason ...`, or the web \
             console's Access requests page); {} approves it with their code",
            demo.user, demo.denied_target, demo.denied_target, report.admin_user
        );
    }
    out
}
