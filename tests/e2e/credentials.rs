//! A granted user gets credentials for role and federated-user targets, and they work.

use aws_credential_types::Credentials;
use cooper_core::model::Principal;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{ACCOUNT_A, TestEnv, calls_to};

const POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*"}]
}"#;

fn issued_credentials(body: &Value) -> Credentials {
    Credentials::new(
        body["access_key_id"].as_str().unwrap(),
        body["secret_access_key"].as_str().unwrap(),
        Some(body["session_token"].as_str().unwrap().to_owned()),
        None,
        "issued-by-cooper",
    )
}

fn seconds_until(expiration: &Value) -> i64 {
    let at = OffsetDateTime::parse(expiration.as_str().unwrap(), &Rfc3339).unwrap();
    (at - OffsetDateTime::now_utc()).whole_seconds()
}

#[tokio::test(flavor = "multi_thread")]
async fn role_credentials_act_as_the_assumed_role_with_the_users_session_name() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-readonly", ACCOUNT_A, 10, Some("ext-a-readonly"))
        .await;
    let alice = env.user("alice@example.com").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 50)
        .await;
    let token = env.api_token(&alice).await;

    let answer = env
        .credentials(
            &token,
            json!({"target": "a-readonly", "duration_seconds": 1800}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = &answer.body;
    assert_eq!(body["target"], "a-readonly");
    assert_eq!(body["account_id"], ACCOUNT_A);
    assert_eq!(body["duration_seconds"], 1800);
    assert_eq!(
        body["request_id"].as_str().unwrap(),
        answer.headers["x-request-id"].to_str().unwrap()
    );
    assert_eq!(answer.headers["cache-control"], "no-store");
    let left = seconds_until(&body["expiration"]);
    assert!((1700..=1800).contains(&left), "expires in {left}s");

    // The credentials themselves work: STS says who they are.
    let sts = cooper_aws::aws_sdk_sts::Client::from_conf(
        cooper_aws::aws_sdk_sts::config::Builder::from(&env.sdk)
            .credentials_provider(issued_credentials(body))
            .build(),
    );
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::111111111111:assumed-role/a-readonly-role/alice@example.com")
    );
    assert_eq!(me.account(), Some(ACCOUNT_A));
    assert_eq!(body["principal_arn"].as_str(), me.arn());
}

#[tokio::test(flavor = "multi_thread")]
async fn external_id_source_identity_and_duration_reach_sts() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("with-external-id", ACCOUNT_A, 10, Some("tenant-42:xyz"))
        .await;
    env.role_target("without-external-id", ACCOUNT_A, 10, None)
        .await;
    let alice = env.user("alice@example.com").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.jwt(&alice);

    let (answer, calls) = env
        .moto
        .record(env.credentials(
            &token,
            json!({"target": "with-external-id", "duration_seconds": 2700}),
        ))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let sts = calls_to(&calls, "sts");
    assert_eq!(sts.len(), 1, "one STS call per issuance: {sts:?}");
    let call = sts[0];
    assert_eq!(call.operation, "AssumeRole");
    assert_eq!(
        call.form("RoleArn").as_deref(),
        Some("arn:aws:iam::111111111111:role/with-external-id-role")
    );
    assert_eq!(call.form("ExternalId").as_deref(), Some("tenant-42:xyz"));
    assert_eq!(
        call.form("SourceIdentity").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        call.form("RoleSessionName").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(call.form("DurationSeconds").as_deref(), Some("2700"));

    let (answer, calls) = env
        .moto
        .record(env.credentials(&token, json!({"target": "without-external-id"})))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let call = calls_to(&calls, "sts")[0];
    assert_eq!(
        call.form("ExternalId"),
        None,
        "no ExternalId when the target has none"
    );
    assert_eq!(
        call.form("DurationSeconds").as_deref(),
        Some("3600"),
        "an hour by default"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn federated_user_credentials_carry_the_policy_and_name_the_user() {
    let env = TestEnv::start().await;
    let account = env.account(ACCOUNT_A).await;
    env.federated_target("a-federated", &account, 10, POLICY)
        .await;
    let long = env.user("firstname.lastname.department@example.com").await;
    let bob = env.user("bob").await;
    let group = env.group("federation-users", &[&long, &bob]).await;
    env.grant_target(Principal::Group(group), "a-federated")
        .await;

    let token = env.api_token(&long).await;
    let (answer, calls) = env
        .moto
        .record(env.credentials(
            &token,
            json!({"target": "a-federated", "duration_seconds": 5400}),
        ))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // The sealed keys were opened with KMS, then GetFederationToken was called with them.
    assert_eq!(
        calls_to(&calls, "kms")
            .iter()
            .map(|c| c.operation.as_str())
            .collect::<Vec<_>>(),
        ["Decrypt"]
    );
    let sts = calls_to(&calls, "sts");
    assert_eq!(sts.len(), 1);
    let call = sts[0];
    assert_eq!(call.operation, "GetFederationToken");
    let name = call.form("Name").unwrap();
    assert_eq!(
        name.len(),
        32,
        "federated user names are at most 32 characters"
    );
    // A readable prefix, then a hash of the whole name so long names stay distinct.
    let (prefix, hash) = name.rsplit_once('-').unwrap();
    assert_eq!(prefix, "firstname.lastname.depa");
    assert!(
        hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
    let sent_policy: Value = serde_json::from_str(&call.form("Policy").unwrap()).unwrap();
    assert_eq!(sent_policy, serde_json::from_str::<Value>(POLICY).unwrap());
    assert_eq!(call.form("DurationSeconds").as_deref(), Some("5400"));
    assert_eq!(call.form("SourceIdentity"), None);

    // moto does not track federation sessions for GetCallerIdentity: the federated-user ARN STS
    // returned names the user...
    let arn = answer.body["principal_arn"].as_str().unwrap();
    assert!(arn.ends_with(&format!(":federated-user/{name}")), "{arn}");
    // ...and the credentials are accepted by another service.
    let dynamodb = cooper_aws::aws_sdk_dynamodb::Client::from_conf(
        cooper_aws::aws_sdk_dynamodb::config::Builder::from(&env.sdk)
            .credentials_provider(issued_credentials(&answer.body))
            .build(),
    );
    let tables = dynamodb.list_tables().send().await.unwrap();
    assert!(
        tables
            .table_names()
            .contains(&"cooper-directory".to_owned())
    );

    // A short name is used as it is.
    let token = env.api_token(&bob).await;
    let answer = env
        .credentials(&token, json!({"target": "a-federated"}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.body["principal_arn"]
            .as_str()
            .unwrap()
            .ends_with(":federated-user/bob")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_process_format_is_the_aws_cli_version_1_shape() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-readonly", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-readonly")
        .await;
    let token = env.api_token(&alice).await;

    let answer = env
        .call(
            reqwest::Method::POST,
            "/v1/credentials?format=credential_process",
            Some(&token),
            Some(r#"{"target":"a-readonly"}"#),
            Some("application/json"),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let mut keys: Vec<&str> = answer
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "AccessKeyId",
            "Expiration",
            "SecretAccessKey",
            "SessionToken",
            "Version"
        ]
    );
    assert_eq!(answer.body["Version"], 1);
}
