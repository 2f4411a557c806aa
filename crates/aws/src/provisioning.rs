//! Creating what cooper needs in an account: tables, the KMS key, SSM parameters, the broker user.
//! Every step is idempotent: what exists is checked and kept, what is missing is created.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_ssm::types::ParameterType;
use cooper_core::ports::{Service, UpstreamError, UpstreamKind};
use secrecy::{ExposeSecret, SecretString};

use crate::audit::{BY_ACCESS_KEY, BY_ACCOUNT, BY_ACTOR};
use crate::error::{code_of, upstream};
use crate::items::GSI1;
use crate::ssm::{Param, StaticKeys};

/// How long to wait for a new table to become active.
const TABLE_WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("table {table} exists with a different key schema ({found}); cooper needs {expected}")]
    TableSchema {
        table: String,
        found: String,
        expected: String,
    },
    #[error("table {table} did not become active: {reason}")]
    TableNotActive { table: String, reason: String },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// What was done, for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Existing,
}

fn attr(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, UpstreamError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(build_error)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, UpstreamError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(build_error)
}

fn index(name: &str, hash: &str, range: &str) -> Result<GlobalSecondaryIndex, UpstreamError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash)?)
        .key_schema(key(range, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> UpstreamError {
    UpstreamError::new(Service::DynamoDb, UpstreamKind::Corrupt, e.to_string())
}

/// The directory table: `PK`/`SK`, and `GSI1` (`GSI1PK`/`GSI1SK`).
pub async fn ensure_directory_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Outcome, ProvisionError> {
    let create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("PK", ScalarAttributeType::S)?)
        .attribute_definitions(attr("SK", ScalarAttributeType::S)?)
        .attribute_definitions(attr("GSI1PK", ScalarAttributeType::S)?)
        .attribute_definitions(attr("GSI1SK", ScalarAttributeType::S)?)
        .key_schema(key("PK", KeyType::Hash)?)
        .key_schema(key("SK", KeyType::Range)?)
        .global_secondary_indexes(index(GSI1, "GSI1PK", "GSI1SK")?);
    let outcome = ensure_table(client, table, create, "PK,SK").await?;
    if outcome == Outcome::Created {
        // Pending enrollments and old approval requests carry a `ttl`: DynamoDB removes them.
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
    }
    Ok(outcome)
}

/// The audit table: `id`, three time-ordered indexes, and a stream of new records.
pub async fn ensure_audit_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Outcome, ProvisionError> {
    let create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("id", ScalarAttributeType::S)?)
        .attribute_definitions(attr("actor", ScalarAttributeType::S)?)
        .attribute_definitions(attr("access_key_id", ScalarAttributeType::S)?)
        .attribute_definitions(attr("account", ScalarAttributeType::S)?)
        .attribute_definitions(attr("at_ms", ScalarAttributeType::N)?)
        .key_schema(key("id", KeyType::Hash)?)
        .global_secondary_indexes(index(BY_ACTOR, "actor", "at_ms")?)
        .global_secondary_indexes(index(BY_ACCESS_KEY, "access_key_id", "at_ms")?)
        .global_secondary_indexes(index(BY_ACCOUNT, "account", "at_ms")?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(build_error)?,
        );
    ensure_table(client, table, create, "id").await
}

async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    create: aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder,
    expected_keys: &str,
) -> Result<Outcome, ProvisionError> {
    let outcome = match create.send().await {
        Ok(_) => Outcome::Created,
        Err(e) if code_of(&e) == Some("ResourceInUseException") => Outcome::Existing,
        Err(e) => return Err(upstream(Service::DynamoDb, e).into()),
    };

    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(TABLE_WAIT)
        .await
        .map_err(|e| ProvisionError::TableNotActive {
            table: table.to_owned(),
            reason: e.to_string(),
        })?;

    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| upstream(Service::DynamoDb, e))?;
    let found = described
        .table
        .and_then(|t| t.key_schema)
        .unwrap_or_default()
        .iter()
        .map(|k| k.attribute_name.as_str())
        .collect::<Vec<_>>()
        .join(",");
    if found != expected_keys {
        return Err(ProvisionError::TableSchema {
            table: table.to_owned(),
            found,
            expected: expected_keys.to_owned(),
        });
    }

    if outcome == Outcome::Created {
        client
            .update_continuous_backups()
            .table_name(table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
    }
    Ok(outcome)
}

/// A symmetric KMS key under `alias` (e.g. `alias/cooper`), created if the alias names none.
/// Returns the key's ARN.
pub async fn ensure_kms_key(
    client: &aws_sdk_kms::Client,
    alias: &str,
) -> Result<(String, Outcome), UpstreamError> {
    match client.describe_key().key_id(alias).send().await {
        Ok(out) => {
            if let Some(arn) = out.key_metadata.and_then(|m| m.arn) {
                return Ok((arn, Outcome::Existing));
            }
        }
        Err(e) if code_of(&e) == Some("NotFoundException") => {}
        Err(e) => return Err(upstream(Service::Kms, e)),
    }
    let created = client
        .create_key()
        .description("cooper: federation keys, TOTP secrets and SSM parameters")
        .send()
        .await
        .map_err(|e| upstream(Service::Kms, e))?;
    let meta = created.key_metadata.ok_or_else(|| {
        UpstreamError::new(
            Service::Kms,
            UpstreamKind::Corrupt,
            "CreateKey returned no key",
        )
    })?;
    client
        .create_alias()
        .alias_name(alias)
        .target_key_id(&meta.key_id)
        .send()
        .await
        .map_err(|e| upstream(Service::Kms, e))?;
    Ok((meta.arn.unwrap_or(meta.key_id), Outcome::Created))
}

async fn parameter_exists(client: &aws_sdk_ssm::Client, name: &str) -> Result<bool, UpstreamError> {
    match client.get_parameter().name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if code_of(&e) == Some("ParameterNotFound") => Ok(false),
        Err(e) => Err(upstream(Service::Ssm, e)),
    }
}

async fn put_secure(
    client: &aws_sdk_ssm::Client,
    name: &str,
    value: &SecretString,
    kms_key: &str,
) -> Result<(), UpstreamError> {
    client
        .put_parameter()
        .name(name)
        .value(value.expose_secret())
        .r#type(ParameterType::SecureString)
        .key_id(kms_key)
        .overwrite(false)
        .send()
        .await
        .map_err(|e| upstream(Service::Ssm, e))?;
    Ok(())
}

/// The JWT signing key parameter, created from `generate` if absent (an existing key is never
/// replaced: that would sign everyone out).
pub async fn ensure_jwt_key(
    client: &aws_sdk_ssm::Client,
    prefix: &str,
    kms_key: &str,
    generate: impl FnOnce() -> SecretString,
) -> Result<Outcome, UpstreamError> {
    let name = Param::JwtSigningKey.name(prefix);
    if parameter_exists(client, &name).await? {
        return Ok(Outcome::Existing);
    }
    put_secure(client, &name, &generate(), kms_key).await?;
    Ok(Outcome::Created)
}

/// The broker's IAM user and its keys in SSM. If the parameters exist they are kept; otherwise the
/// user is created (or reused) and given a new access key, stored as the two SecureStrings.
pub async fn ensure_broker_user(
    iam: &aws_sdk_iam::Client,
    ssm: &aws_sdk_ssm::Client,
    prefix: &str,
    kms_key: &str,
    user_name: &str,
) -> Result<Outcome, UpstreamError> {
    let id_name = Param::BrokerAccessKeyId.name(prefix);
    let secret_name = Param::BrokerSecretAccessKey.name(prefix);
    if parameter_exists(ssm, &id_name).await? && parameter_exists(ssm, &secret_name).await? {
        return Ok(Outcome::Existing);
    }
    let keys = create_iam_user_keys(iam, user_name).await?;
    put_secure(
        ssm,
        &id_name,
        &SecretString::from(keys.access_key_id.clone()),
        kms_key,
    )
    .await?;
    put_secure(ssm, &secret_name, &keys.secret_access_key, kms_key).await?;
    Ok(Outcome::Created)
}

/// Stores the keys of cooper's broker identity in another partition (`broker/<partition>/` under
/// the prefix), where the functions read them at start-up.
pub async fn store_partition_broker_keys(
    ssm: &aws_sdk_ssm::Client,
    prefix: &str,
    kms_key: &str,
    partition: cooper_core::names::Partition,
    keys: &StaticKeys,
) -> Result<(), UpstreamError> {
    put_secure(
        ssm,
        &Param::PartitionBrokerAccessKeyId(partition).name(prefix),
        &SecretString::from(keys.access_key_id.clone()),
        kms_key,
    )
    .await?;
    put_secure(
        ssm,
        &Param::PartitionBrokerSecretAccessKey(partition).name(prefix),
        &keys.secret_access_key,
        kms_key,
    )
    .await
}

/// Creates `user_name` if needed and a new access key for it.
pub async fn create_iam_user_keys(
    iam: &aws_sdk_iam::Client,
    user_name: &str,
) -> Result<StaticKeys, UpstreamError> {
    match iam.create_user().user_name(user_name).send().await {
        Ok(_) => {}
        Err(e) if code_of(&e) == Some("EntityAlreadyExists") => {}
        Err(e) => return Err(upstream(Service::Iam, e)),
    }
    let key = iam
        .create_access_key()
        .user_name(user_name)
        .send()
        .await
        .map_err(|e| upstream(Service::Iam, e))?
        .access_key
        .ok_or_else(|| {
            UpstreamError::new(
                Service::Iam,
                UpstreamKind::Corrupt,
                "CreateAccessKey returned no key",
            )
        })?;
    Ok(StaticKeys {
        access_key_id: key.access_key_id,
        secret_access_key: SecretString::from(key.secret_access_key),
    })
}

/// An IAM client acting in `account`, by AssumeRole into its `role` with the ambient
/// credentials (what the local demo and the tests use to make a federated-user target's keys in
/// the target's own account; in AWS the account's own administrators make them).
pub async fn iam_in_account(
    base: &aws_config::SdkConfig,
    account: &cooper_core::names::AccountId,
    role: &str,
) -> Result<aws_sdk_iam::Client, UpstreamError> {
    let out = aws_sdk_sts::Client::new(base)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{role}"))
        .role_session_name("cooper-setup")
        .send()
        .await
        .map_err(|e| upstream(Service::Sts, e))?;
    let c = out.credentials.ok_or_else(|| {
        UpstreamError::new(
            Service::Sts,
            UpstreamKind::Corrupt,
            "AssumeRole returned no credentials",
        )
    })?;
    let credentials = aws_credential_types::Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "cooper-setup",
    );
    let conf = aws_sdk_iam::config::Builder::from(base)
        .credentials_provider(credentials)
        .build();
    Ok(aws_sdk_iam::Client::from_conf(conf))
}

/// The SNS topic audit notices go to (CreateTopic is idempotent: the existing one is returned),
/// with an email subscription when `email` is given (the address confirms it).
pub async fn ensure_topic(
    sns: &aws_sdk_sns::Client,
    name: &str,
    email: Option<&str>,
) -> Result<String, UpstreamError> {
    let arn = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(|e| upstream(Service::Sns, e))?
        .topic_arn
        .ok_or_else(|| {
            UpstreamError::new(
                Service::Sns,
                UpstreamKind::Corrupt,
                "CreateTopic returned no ARN",
            )
        })?;
    if let Some(email) = email {
        sns.subscribe()
            .topic_arn(&arn)
            .protocol("email")
            .endpoint(email)
            .send()
            .await
            .map_err(|e| upstream(Service::Sns, e))?;
    }
    Ok(arn)
}
