//! Audit notices: one SNS message per audit record, readable, without secrets; duplicates
//! deduplicated; failed publishes handed back for retry. Read back through an SQS subscription.

use std::collections::BTreeSet;

use cooper_core::model::Principal;
use reqwest::Method;
use serde_json::json;

use crate::harness::{ACCOUNT_A, NoticeInbox, TestEnv, repo_root};

#[tokio::test(flavor = "multi_thread")]
async fn issuances_and_admin_changes_are_announced_once_without_secrets() {
    let env = TestEnv::start_with(|s| s.admin_totp_operations = BTreeSet::new()).await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 50)
        .await;
    let token = env.api_token(&alice).await;
    let (_, admin) = env.universal_admin("una").await;
    let inbox = NoticeInbox::create(&env.sdk, "cooper-audit").await;

    let issued = env
        .credentials(&token, json!({"target": "a-ro", "duration_seconds": 1800}))
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let current = env
        .admin(Method::GET, "/v1/admin/targets/a-ro", &admin, None, &[])
        .await;
    let mut body = current.body.clone();
    body.as_object_mut().unwrap().remove("version");
    body["level"] = json!(30);
    let changed = env
        .admin(
            Method::PUT,
            "/v1/admin/targets/a-ro",
            &admin,
            Some(body),
            &[("if-match", "1")],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);

    let records = env.stream_records().await;
    assert_eq!(records.len(), 2, "one stream record per audit record");
    let notifier = env.notifier(&inbox.topic_arn);
    assert!(notifier.handle(&records).await.is_empty());
    // The stream delivers at least once: the same records again make no new message.
    assert!(notifier.handle(&records).await.is_empty());

    let notices = inbox.drain().await;
    assert_eq!(notices.len(), 2, "{notices:?}");
    let (subject, message) = notices.iter().find(|(s, _)| s.contains("became")).unwrap();
    assert_eq!(subject, "cooper: alice became a-ro in 111111111111");
    for fact in [
        "Who             alice",
        "From            127.0.0.1",
        "For             30 min",
        &format!(
            "AccessKeyId     {}",
            issued.body["access_key_id"].as_str().unwrap()
        ),
        &format!(
            "Expires         {}",
            issued.body["expiration"].as_str().unwrap()
        ),
        &format!(
            "Request         {}",
            issued.body["request_id"].as_str().unwrap()
        ),
    ] {
        assert!(message.contains(fact), "{fact:?} missing from:\n{message}");
    }
    let (subject, message) = notices.iter().find(|(s, _)| s.contains("update")).unwrap();
    assert_eq!(subject, "cooper: una update target:a-ro");
    assert!(message.contains("level: 10 -> 30"), "{message}");

    for (subject, message) in &notices {
        for secret in [
            issued.body["secret_access_key"].as_str().unwrap(),
            issued.body["session_token"].as_str().unwrap(),
            &token,
            &admin,
        ] {
            assert!(
                !subject.contains(secret) && !message.contains(secret),
                "a secret in a notice"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_publish_is_reported_for_retry_and_then_sent() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-ro")
        .await;
    let token = env.api_token(&alice).await;
    assert_eq!(
        env.credentials(&token, json!({"target": "a-ro"}))
            .await
            .status,
        200
    );
    let records = env.stream_records().await;

    // The topic does not exist: SNS refuses, and the record's position comes back for retry.
    let broken = env.notifier("arn:aws:sns:us-east-1:123456789012:no-such-topic");
    let failed = broken.handle(&records).await;
    assert_eq!(failed, vec![records[0].position.clone()]);

    // Delivered again, to a working topic: sent (the failed attempt did not count as sent).
    let inbox = NoticeInbox::create(&env.sdk, "cooper-audit").await;
    assert!(
        env.notifier(&inbox.topic_arn)
            .handle(&records)
            .await
            .is_empty()
    );
    assert_eq!(inbox.drain().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_handler_reads_stream_events_and_answers_partial_batch_failures() {
    let env = TestEnv::start().await;
    let inbox = NoticeInbox::create(&env.sdk, "cooper-audit").await;
    let fixture =
        std::fs::read_to_string(repo_root().join("events/audit-notify/stream.json")).unwrap();
    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_str(&fixture).unwrap();

    let response =
        cooper_api::notify::lambda::handle(&env.notifier(&inbox.topic_arn), event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    let response =
        cooper_api::notify::lambda::handle(&env.notifier(&inbox.topic_arn), event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    let notices = inbox.drain().await;
    // The fixture holds an issuance and an admin change; its MODIFY record is not announced.
    let subjects: BTreeSet<&str> = notices.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        BTreeSet::from([
            "cooper: alice became prod-admin in 111111111111",
            "cooper: una update target:prod-admin"
        ])
    );

    let failing = cooper_api::notify::lambda::handle(
        &env.notifier("arn:aws:sns:us-east-1:123456789012:missing"),
        event_with_new_ids(&fixture),
    )
    .await;
    let ids: Vec<String> = failing
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(ids, ["400000000000000000001", "400000000000000000002"]);
}

/// The fixture with fresh record ids, so the ledger has not seen them.
fn event_with_new_ids(fixture: &str) -> aws_lambda_events::event::dynamodb::Event {
    serde_json::from_str(
        &fixture
            .replace("B2nJ7gQxIAMEVdw=", "fresh-1")
            .replace("01a200d1-0000-7000-8000-000000000001", "fresh-2"),
    )
    .unwrap()
}
