//! Console sign-in links for every partition, against a stand-in for AWS's federation endpoint
//! that checks each request as AWS documents it.

use cooper_core::model::{Account, Principal, Target};
use cooper_core::names::{AccountId, AccountName, Level, Partition, RoleArn, TargetName};
use reqwest::Method;
use serde_json::json;

use crate::harness::{ACCOUNT_A, TestEnv};

fn query_of(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn partition_account(env: &TestEnv, id: &str, partition: Partition, role: &str) {
    env.directory
        .put_account(&Account {
            id: AccountId::parse(id).unwrap(),
            name: AccountName::parse(partition.as_str()).unwrap(),
            partition,
            access_requests: None,
        })
        .await
        .unwrap();
    let target = Target::role(
        TargetName::parse(role).unwrap(),
        AccountId::parse(id).unwrap(),
        Level::new(10).unwrap(),
        RoleArn::parse(&format!("arn:{}:iam::{id}:role/{role}", partition.as_str())).unwrap(),
        None,
        Some(7200),
    )
    .unwrap();
    env.directory.put_target(&target).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn console_links_for_all_three_partitions() {
    // cooper has a broker identity in each partition (its own IAM user there).
    let env = TestEnv::start_with(|s| {
        s.broker_partitions = [Partition::AwsUsGov, Partition::AwsCn]
            .into_iter()
            .collect()
    })
    .await;
    partition_account(&env, "111111111111", Partition::Aws, "commercial").await;
    partition_account(&env, "222222222222", Partition::AwsUsGov, "govcloud").await;
    partition_account(&env, "333333333333", Partition::AwsCn, "china").await;
    let alice = env.user("alice").await;
    for t in ["commercial", "govcloud", "china"] {
        env.grant_target(Principal::User(alice.clone()), t).await;
    }
    let token = env.api_token(&alice).await;

    for (target, host, console) in [
        (
            "commercial",
            "signin.aws.amazon.com",
            "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1",
        ),
        (
            "govcloud",
            "signin.amazonaws-us-gov.com",
            "https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1",
        ),
        (
            "china",
            "signin.amazonaws.cn",
            "https://console.amazonaws.cn/console/home?region=cn-north-1",
        ),
    ] {
        let answer = env
            .post(
                "/v1/console",
                Some(&token),
                json!({"target": target, "duration_seconds": 5400}),
            )
            .await;
        assert_eq!(answer.status, 200, "{target}: {}", answer.text);
        assert_eq!(answer.headers["cache-control"], "no-store");
        let url = answer.body["console_url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("https://{host}/federation?")),
            "{url}"
        );
        let asked = env.signin.requests().pop().unwrap();
        assert_eq!(asked.host, host);
        assert_eq!(
            asked.session_duration,
            Some(5400),
            "a role session gets SessionDuration"
        );
        assert_eq!(
            query_of(url),
            [
                ("Action".to_owned(), "login".to_owned()),
                ("Issuer".to_owned(), "cooper".to_owned()),
                ("Destination".to_owned(), console.to_owned()),
                ("SigninToken".to_owned(), asked.token.clone()),
            ]
        );
    }

    // The audit records say a console link was issued, and hold no sign-in token.
    let items = env.audit_items().await;
    assert_eq!(
        items
            .iter()
            .filter(|i| i["event"].as_s().unwrap() == "console.issued")
            .count(),
        3
    );
    assert!(!format!("{items:?}").contains("signin-token-"));
}

#[tokio::test(flavor = "multi_thread")]
async fn session_duration_is_sent_for_roles_and_never_for_federated_users() {
    let env = TestEnv::start().await;
    let account = env.account(ACCOUNT_A).await;
    env.role_target("a-role", ACCOUNT_A, 10, None).await;
    env.federated_target(
        "a-fed",
        &account,
        10,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#,
    )
    .await;
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&alice).await;

    // Credentials and a console link in one request.
    let both = env
        .credentials(&token, json!({"target": "a-role", "console": true}))
        .await;
    assert_eq!(both.status, 200, "{}", both.text);
    assert!(both.body["access_key_id"].is_string() && both.body["console_url"].is_string());
    let asked = env.signin.requests().pop().unwrap();
    assert_eq!(asked.session_duration, Some(3600));
    assert_eq!(
        asked.session_id,
        both.body["access_key_id"].as_str().unwrap()
    );

    let fed = env
        .post("/v1/console", Some(&token), json!({"target": "a-fed"}))
        .await;
    assert_eq!(fed.status, 200, "{}", fed.text);
    assert_eq!(
        env.signin.requests().pop().unwrap().session_duration,
        None,
        "never for a federation token"
    );

    // A chosen destination on the console is kept; anywhere else is refused before STS.
    let s3 = env
        .post(
            "/v1/console",
            Some(&token),
            json!({"target": "a-role", "destination": "https://console.aws.amazon.com/s3/home"}),
        )
        .await;
    assert_eq!(s3.status, 200, "{}", s3.text);
    assert!(
        query_of(s3.body["console_url"].as_str().unwrap()).contains(&(
            "Destination".into(),
            "https://console.aws.amazon.com/s3/home".into()
        ))
    );
    let requests = env.signin.requests().len();
    let evil = env
        .post(
            "/v1/console",
            Some(&token),
            json!({"target": "a-role", "destination": "https://evil.example/"}),
        )
        .await;
    assert_eq!(evil.status, 400);
    assert_eq!(evil.error_code(), "invalid_request");
    assert_eq!(env.signin.requests().len(), requests);

    // Or straight to the console, with a redirect.
    let redirect = env
        .call(
            Method::POST,
            "/v1/console?redirect=true",
            Some(&token),
            Some(r#"{"target":"a-role"}"#),
            Some("application/json"),
        )
        .await;
    assert_eq!(redirect.status, 302);
    assert!(
        redirect.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("https://signin.aws.amazon.com/federation?Action=login")
    );
}
