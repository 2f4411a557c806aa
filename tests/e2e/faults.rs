//! Failing dependencies: DynamoDB, KMS, STS and SNS unavailable or throttling (through a proxy
//! between cooper and moto). A clear 503 with a code, nothing half-written, no credentials without
//! an audit record, and service resumes when the dependency returns.

use std::collections::BTreeSet;

use cooper_core::model::Principal;
use reqwest::Method;
use serde_json::json;

use crate::harness::{ACCOUNT_A, Fault, NoticeInbox, TestEnv, calls_to};

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;

/// `a-ro` (a role) and `a-fed` (a federated user) in account A, both granted to alice.
async fn world() -> (TestEnv, String, String) {
    let env = TestEnv::start_with(|s| s.admin_totp_operations = BTreeSet::new()).await;
    let account = env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    env.federated_target("a-fed", &account, 10, POLICY).await;
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&alice).await;
    let jwt = env.jwt(&alice);
    (env, token, jwt)
}

async fn issued_records(env: &TestEnv) -> usize {
    env.audit_items()
        .await
        .iter()
        .filter(|i| i["event"].as_s().unwrap() == "credentials.issued")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_down_is_a_503_with_no_sts_call_and_service_resumes() {
    let (env, token, jwt) = world().await;
    env.faults.fail("dynamodb", Fault::Unavailable);

    for bearer in [&jwt, &token] {
        let (answer, calls) = env
            .moto
            .record(env.credentials(bearer, json!({"target": "a-ro"})))
            .await;
        assert_eq!(answer.status, 503, "{}", answer.text);
        assert_eq!(answer.error_code(), "upstream_unavailable");
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("DynamoDB")
        );
        assert_eq!(answer.headers["retry-after"], "1");
        assert!(
            calls_to(&calls, "sts").is_empty(),
            "no credentials are made when the directory is down"
        );
    }
    assert!(env.faults.refused() > 0);

    env.faults.heal();
    assert_eq!(issued_records(&env).await, 0);
    let answer = env.credentials(&token, json!({"target": "a-ro"})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(issued_records(&env).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_a_503_that_says_so() {
    let (env, _, jwt) = world().await;
    env.faults.fail("dynamodb", Fault::Throttled);
    let answer = env.credentials(&jwt, json!({"target": "a-ro"})).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.error_code(), "upstream_throttled");
    env.faults.heal();

    env.faults.fail("sts", Fault::Throttled);
    let answer = env.credentials(&jwt, json!({"target": "a-ro"})).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.error_code(), "upstream_throttled");
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("STS")
    );
    assert_eq!(
        issued_records(&env).await,
        0,
        "nothing issued, nothing recorded"
    );
    env.faults.heal();
    assert_eq!(
        env.credentials(&jwt, json!({"target": "a-ro"}))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sts_down_writes_nothing_and_kms_down_fails_only_federated_targets() {
    let (env, _, jwt) = world().await;
    env.faults.fail("sts", Fault::Unavailable);
    let answer = env.credentials(&jwt, json!({"target": "a-ro"})).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code()),
        (503, "upstream_unavailable")
    );
    assert!(env.audit_items().await.is_empty(), "nothing half-written");
    env.faults.heal();

    env.faults.fail("kms", Fault::Unavailable);
    let federated = env.credentials(&jwt, json!({"target": "a-fed"})).await;
    assert_eq!(
        (federated.status.as_u16(), federated.error_code()),
        (503, "upstream_unavailable")
    );
    assert!(
        federated.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("KMS")
    );
    let role = env.credentials(&jwt, json!({"target": "a-ro"})).await;
    assert_eq!(
        role.status, 200,
        "a role target needs no KMS: {}",
        role.text
    );
    env.faults.heal();
    assert_eq!(
        env.credentials(&jwt, json!({"target": "a-fed"}))
            .await
            .status,
        200
    );
    assert_eq!(issued_records(&env).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_table_failing_alone_withholds_the_credentials() {
    let (env, _, jwt) = world().await;
    env.faults.fail_only(
        "dynamodb",
        Some("PutItem"),
        Some("cooper-audit"),
        Fault::Unavailable,
    );
    let (answer, calls) = env
        .moto
        .record(env.credentials(&jwt, json!({"target": "a-ro"})))
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code()),
        (503, "audit_unavailable")
    );
    assert!(
        !answer.text.contains("ASIA"),
        "no credentials in the answer"
    );
    assert_eq!(
        calls_to(&calls, "sts").len(),
        1,
        "STS was called; its answer was withheld"
    );
    env.faults.heal();
    assert_eq!(
        env.credentials(&jwt, json!({"target": "a-ro"}))
            .await
            .status,
        200
    );
    assert_eq!(issued_records(&env).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_change_is_all_or_nothing_when_dynamodb_fails() {
    let (env, _, _) = world().await;
    let (_, admin) = env.universal_admin("una").await;
    let current = env
        .admin(Method::GET, "/v1/admin/targets/a-ro", &admin, None, &[])
        .await;
    let mut body = current.body.clone();
    body.as_object_mut().unwrap().remove("version");
    body["description"] = json!("changed while DynamoDB was failing");

    env.faults.fail_only(
        "dynamodb",
        Some("TransactWriteItems"),
        None,
        Fault::Unavailable,
    );
    let failed = env
        .admin(
            Method::PUT,
            "/v1/admin/targets/a-ro",
            &admin,
            Some(body.clone()),
            &[("if-match", "1")],
        )
        .await;
    // The change and its record are one write: neither happened, and the answer says so.
    assert_eq!(
        (failed.status.as_u16(), failed.error_code()),
        (503, "audit_unavailable")
    );
    env.faults.heal();
    let unchanged = env
        .admin(Method::GET, "/v1/admin/targets/a-ro", &admin, None, &[])
        .await;
    assert_eq!(unchanged.body["version"], 1);
    assert!(unchanged.body["description"].is_null());
    assert!(
        !env.audit_items()
            .await
            .iter()
            .any(|i| i["event"].as_s().unwrap() == "admin.change"),
        "no record of a change that did not happen"
    );
    let done = env
        .admin(
            Method::PUT,
            "/v1/admin/targets/a-ro",
            &admin,
            Some(body),
            &[("if-match", "1")],
        )
        .await;
    assert_eq!(
        done.status, 200,
        "the same version still applies: {}",
        done.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sns_down_hands_notices_back_and_they_go_out_when_it_returns() {
    let (env, token, _) = world().await;
    let inbox = NoticeInbox::create(&env.sdk, "cooper-audit").await;
    assert_eq!(
        env.credentials(&token, json!({"target": "a-ro"}))
            .await
            .status,
        200
    );
    let records = env.stream_records().await;
    let notifier = env.notifier(&inbox.topic_arn);

    env.faults.fail("sns", Fault::Unavailable);
    assert_eq!(
        notifier.handle(&records).await.len(),
        1,
        "handed back for retry"
    );
    env.faults.heal();
    assert!(notifier.handle(&records).await.is_empty());
    assert_eq!(inbox.drain().await.len(), 1);
}
