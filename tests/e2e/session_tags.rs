//! Session tags (ABAC): a target configured through the admin API sets the person's tags on
//! AssumeRole, as moto's recorder sees them; tags that break AWS's limits are refused, when the
//! target is configured or, with the person's values, before any STS call.

use cooper_core::model::Principal;
use cooper_core::tags::{PersonAttribute, SessionTagSpec, SessionTagSpecs, TagKey, TagSource};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ACCOUNT_A, AwsCall, TestEnv, calls_to};

/// Every `Prefix.member.N` field of a form-encoded STS call, in order.
fn members(call: &AwsCall, prefix: &str) -> Vec<String> {
    (1..)
        .map_while(|n| call.form(&format!("{prefix}.member.{n}")))
        .collect()
}

/// Every `Tags.member.N` of an AssumeRole, as (Key, Value), in order.
fn tags_of(call: &AwsCall) -> Vec<(String, String)> {
    (1..)
        .map_while(|n| {
            Some((
                call.form(&format!("Tags.member.{n}.Key"))?,
                call.form(&format!("Tags.member.{n}.Value"))?,
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn session_tags_reach_sts_as_configured() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    let (_, admin) = env.universal_admin("root").await;
    let body = json!({
        "name": "a-tagged", "account_id": ACCOUNT_A, "level": 10, "kind": "role",
        "role_arn": format!("arn:aws:iam::{ACCOUNT_A}:role/cooper-tagged"),
        "session_tags": [
            {"key": "cooper-user", "from": "user", "transitive": true},
            {"key": "email", "from": "email"},
            {"key": "groups", "from": "groups", "transitive": true},
            {"key": "team", "value": "payments"},
        ],
    });
    let made = env
        .admin(Method::POST, "/v1/admin/targets", &admin, Some(body), &[])
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(
        made.body["session_tags"],
        json!([
            {"key": "cooper-user", "from": "user", "transitive": true},
            {"key": "email", "from": "email", "transitive": false},
            {"key": "groups", "from": "groups", "transitive": true},
            {"key": "team", "value": "payments", "transitive": false},
        ]),
        "the target shows its tags as configured"
    );

    let alice = env.user("alice@example.com").await;
    env.group("ops", &[&alice]).await;
    env.group("eng", &[&alice]).await;
    env.grant_target(Principal::User(alice.clone()), "a-tagged")
        .await;
    let token = env.api_token(&alice).await;
    let (answer, calls) = env
        .moto
        .record(env.credentials(&token, json!({"target": "a-tagged"})))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let sts = calls_to(&calls, "sts");
    assert_eq!(sts.len(), 1, "one STS call: {sts:?}");
    let call = sts[0];
    assert_eq!(call.operation, "AssumeRole");
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        tags_of(call),
        [
            pair("cooper-user", "alice@example.com"),
            pair("email", "alice@example.com"),
            pair("groups", "eng+ops"),
            pair("team", "payments"),
        ],
        "Tags.member.N.Key and .Value, as moto received them"
    );
    assert_eq!(
        members(call, "TransitiveTagKeys"),
        ["cooper-user", "groups"]
    );
    assert_eq!(
        call.form("SourceIdentity").as_deref(),
        Some("alice@example.com")
    );

    // A target without tags sends none.
    env.role_target("a-plain", ACCOUNT_A, 10, None).await;
    env.grant_target(Principal::User(alice), "a-plain").await;
    let (answer, calls) = env
        .moto
        .record(env.credentials(&token, json!({"target": "a-plain"})))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let call = calls_to(&calls, "sts")[0];
    assert_eq!(call.form("Tags.member.1.Key"), None);
    assert_eq!(call.form("TransitiveTagKeys.member.1"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_tags_over_aws_limits_are_refused_before_any_sts_call() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    let (_, admin) = env.universal_admin("root").await;

    // Configured: each rule AWS would break on is refused when the target is made.
    let fifty_one: Vec<Value> = (0..51)
        .map(|i| json!({"key": format!("k{i}"), "value": ""}))
        .collect();
    let long_value = "v".repeat(257);
    for (tags, says) in [
        (json!(fifty_one), "at most 50"),
        (json!([{"key": "aws:team", "value": "x"}]), "aws:"),
        (json!([{"key": "k".repeat(129), "value": "x"}]), "128"),
        (json!([{"key": "team", "value": long_value}]), "256"),
        (json!([{"key": "team", "value": "a,b"}]), "may contain only"),
        (
            json!([{"key": "Team", "value": "a"}, {"key": "team", "value": "b"}]),
            "twice",
        ),
        (
            json!([{"key": "k".repeat(128), "value": "v".repeat(256)},
                   {"key": "more", "value": "v".repeat(100)}]),
            "pack",
        ),
        (
            json!([{"key": "team", "from": "manager"}]),
            "unknown variant",
        ),
    ] {
        let body = json!({
            "name": "a-bad", "account_id": ACCOUNT_A, "level": 10, "kind": "role",
            "role_arn": format!("arn:aws:iam::{ACCOUNT_A}:role/cooper-bad"),
            "session_tags": tags,
        });
        let (answer, calls) = env
            .moto
            .record(env.admin(Method::POST, "/v1/admin/targets", &admin, Some(body), &[]))
            .await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert_eq!(answer.error_code(), "invalid_request");
        assert!(answer.text.contains(says), "{says}: {}", answer.text);
        assert!(calls_to(&calls, "sts").is_empty());
    }

    // From the person: a value that breaks the limits is refused before STS, and audited.
    let mut target = env.role_target("a-tagged", ACCOUNT_A, 10, None).await;
    let from = |key: &str, attribute| SessionTagSpec {
        key: TagKey::parse(key).unwrap(),
        source: TagSource::Person(attribute),
        transitive: false,
    };
    target
        .set_session_tags(
            SessionTagSpecs::new(vec![
                from("email", PersonAttribute::Email),
                from("groups", PersonAttribute::Groups),
            ])
            .unwrap(),
        )
        .unwrap();
    env.directory.put_target(&target).await.unwrap();

    // Twenty groups of 15 characters join to 319: over 256.
    let carol = env.user("carol@example.com").await;
    for i in 0..20 {
        env.group(&format!("group-number-{i:02}"), &[&carol]).await;
    }
    // No email to give.
    let dave = env.user("dave").await;
    for (person, code) in [
        (&carol, "session_tag_too_long"),
        (&dave, "session_tag_unresolved"),
    ] {
        env.grant_target(Principal::User(person.clone()), "a-tagged")
            .await;
        let token = env.api_token(person).await;
        let (answer, calls) = env
            .moto
            .record(env.credentials(&token, json!({"target": "a-tagged"})))
            .await;
        assert_eq!(answer.status, 403, "{}", answer.text);
        assert_eq!(answer.error_code(), code);
        assert!(
            calls_to(&calls, "sts").is_empty(),
            "{code}: no STS call, {calls:?}"
        );
    }
    let denied: Vec<(String, String)> = env
        .audit_items()
        .await
        .iter()
        .filter(|i| i["event"].as_s().unwrap() == "credentials.denied")
        .map(|i| {
            (
                i["actor"].as_s().unwrap().clone(),
                i["reason"].as_s().unwrap().clone(),
            )
        })
        .collect();
    assert!(
        denied.contains(&("carol@example.com".into(), "session_tag_too_long".into())),
        "{denied:?}"
    );
    assert!(
        denied.contains(&("dave".into(), "session_tag_unresolved".into())),
        "{denied:?}"
    );
}
