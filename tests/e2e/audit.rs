//! Fail closed, and one audit record per issuance with no secret in it.

use cooper_core::model::Principal;
use serde_json::json;

use crate::harness::{ACCOUNT_A, TestEnv, calls_to};

#[tokio::test(flavor = "multi_thread")]
async fn when_the_audit_write_fails_the_answer_is_503_and_carries_no_credentials() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-readonly", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&alice).await;

    // The audit table goes away (a real DynamoDB failure, not a mock).
    env.dynamodb
        .delete_table()
        .table_name(&env.settings.audit_table)
        .send()
        .await
        .unwrap();

    let (answer, calls) = env
        .moto
        .record(env.credentials(&token, json!({"target": "a-readonly"})))
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.error_code(), "audit_unavailable");
    assert_eq!(answer.headers["retry-after"], "1");

    // STS did issue credentials, and the PutItem that failed was the audit record's...
    let sts = calls_to(&calls, "sts");
    assert_eq!(sts.len(), 1);
    let puts: Vec<_> = calls_to(&calls, "dynamodb")
        .into_iter()
        .filter(|c| c.operation == "PutItem")
        .collect();
    assert_eq!(puts.len(), 1);
    // ...but nothing of them reached the caller.
    let body = answer.body.as_object().unwrap();
    assert_eq!(body.keys().collect::<Vec<_>>(), ["error"]);
    for field in ["ASIA", "AKIA", "secret", "session_token", "access_key"] {
        assert!(!answer.text.contains(field), "{field} in {}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_issuance_leaves_one_record_and_no_secret() {
    let env = TestEnv::start().await;
    let account = env.account(ACCOUNT_A).await;
    env.role_target("a-readonly", ACCOUNT_A, 10, Some("audit-external-id"))
        .await;
    env.federated_target(
        "a-federated",
        &account,
        10,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#,
    )
    .await;
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&alice).await;
    let jwt = env.jwt(&alice);

    let mut issued = Vec::new();
    for (bearer, target) in [
        (&token, "a-readonly"),
        (&jwt, "a-readonly"),
        (&token, "a-federated"),
    ] {
        let answer = env.credentials(bearer, json!({ "target": target })).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        issued.push((bearer.clone(), answer.body));
    }

    let items = env.audit_items().await;
    assert_eq!(items.len(), issued.len(), "one record per issuance");
    for (bearer, body) in &issued {
        let request_id = body["request_id"].as_str().unwrap();
        let item = items
            .iter()
            .find(|i| i["id"].as_s().unwrap() == request_id)
            .unwrap_or_else(|| panic!("no audit record for {request_id}"));
        let s = |k: &str| item[k].as_s().unwrap().as_str();
        assert_eq!(s("event"), "credentials.issued");
        assert_eq!(s("actor"), "alice");
        assert_eq!(s("target"), body["target"].as_str().unwrap());
        assert_eq!(s("account"), ACCOUNT_A);
        assert_eq!(s("access_key_id"), body["access_key_id"].as_str().unwrap());
        assert_eq!(s("principal_arn"), body["principal_arn"].as_str().unwrap());
        assert_eq!(s("expiration"), body["expiration"].as_str().unwrap());
        assert_eq!(s("source_ip"), "127.0.0.1");
        assert_eq!(
            s("reason"),
            "user alice -> account 111111111111 up to level 10"
        );
        assert!(s("auth") == "jwt" || s("auth").starts_with("api_token:"));
        assert!(item["at_ms"].as_n().is_ok());

        // No secret anywhere in the record: not the issued secret key or session token, not the
        // bearer token that asked for them.
        let everything = format!("{item:?}");
        for secret in [
            body["secret_access_key"].as_str().unwrap(),
            body["session_token"].as_str().unwrap(),
            bearer.as_str(),
            bearer.rsplit('_').next().unwrap(),
        ] {
            assert!(
                !everything.contains(secret),
                "a secret leaked into the audit record"
            );
        }
    }
}
