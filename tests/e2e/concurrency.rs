//! Races: many simultaneous issuances, admin updates and counted requests. The invariants hold
//! under load: one audit record per issuance, one winner per version, an exact request count.
//! (One TOTP code accepted once under concurrent requests: totp.rs.)

use std::collections::{BTreeSet, HashMap};

use cooper_core::model::Principal;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::harness::{ACCOUNT_A, TestEnv};

#[tokio::test(flavor = "multi_thread")]
async fn simultaneous_issuances_each_get_their_own_credentials_and_one_audit_record() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    env.role_target("a-ops", ACCOUNT_A, 10, None).await;
    let mut bearers = Vec::new();
    for name in ["ann", "ben", "cat", "dan", "eve", "fay"] {
        let user = env.user(name).await;
        env.grant_account(Principal::User(user.clone()), ACCOUNT_A, 10)
            .await;
        bearers.push(env.jwt(&user));
        bearers.push(env.api_token(&user).await);
    }

    let requests = (0..48).map(|i| {
        let bearer = &bearers[i % bearers.len()];
        let target = if i % 2 == 0 { "a-ro" } else { "a-ops" };
        env.credentials(bearer, json!({"target": target}))
    });
    let answers = join_all(requests).await;
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let keys: BTreeSet<&str> = answers
        .iter()
        .map(|a| a.body["access_key_id"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 48, "every issuance has its own credentials");

    let mut records: HashMap<String, (String, String)> = HashMap::new();
    for item in env.audit_items().await {
        if item["event"].as_s().unwrap() == "credentials.issued" {
            let key = item["access_key_id"].as_s().unwrap().clone();
            let id = item["id"].as_s().unwrap().clone();
            let target = item["target"].as_s().unwrap().clone();
            assert!(
                records.insert(key.clone(), (id, target)).is_none(),
                "two audit records for {key}"
            );
        }
    }
    assert_eq!(records.len(), 48, "exactly one audit record per issuance");
    for answer in &answers {
        let (id, target) = &records[answer.body["access_key_id"].as_str().unwrap()];
        assert_eq!(id, answer.body["request_id"].as_str().unwrap());
        assert_eq!(target, answer.body["target"].as_str().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_admins_racing_on_one_version_leave_one_change_and_one_record() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let mut admins = Vec::new();
    for name in ["una", "ulf", "uma", "uri"] {
        admins.push(env.universal_admin(name).await.1);
    }
    let current = env
        .admin(Method::GET, "/v1/admin/targets/a-ro", &admins[0], None, &[])
        .await;
    let version = current.headers["etag"].to_str().unwrap().to_owned();
    let env = &env;

    let updates = (0..16).map(|i| {
        let mut body = current.body.clone();
        body.as_object_mut().unwrap().remove("version");
        body["description"] = json!(format!("edit {i}"));
        let token = &admins[i % admins.len()];
        let version = version.clone();
        async move {
            env.admin(
                Method::PUT,
                "/v1/admin/targets/a-ro",
                token,
                Some(body),
                &[("if-match", &version)],
            )
            .await
        }
    });
    let answers = join_all(updates).await;
    let winners: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one update wins");
    for loser in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(loser.status, 409, "{}", loser.text);
        assert_eq!(loser.error_code(), "version_conflict");
    }
    let after = env
        .admin(Method::GET, "/v1/admin/targets/a-ro", &admins[0], None, &[])
        .await;
    assert_eq!(after.headers["etag"], "\"2\"");
    assert_eq!(after.body["description"], winners[0].body["description"]);

    let changes: Vec<_> = env
        .audit_items()
        .await
        .into_iter()
        .filter(|i| {
            i["event"].as_s().unwrap() == "admin.change"
                && i["resource"].as_s().unwrap() == "target:a-ro"
                && i["action"].as_s().unwrap() == "update"
        })
        .collect();
    assert_eq!(
        changes.len(),
        1,
        "one audit record, for the one change: {changes:#?}"
    );

    // Racing on different items: every one lands.
    let admins = &admins;
    let adds = (0..12).map(|i| async move {
        let name = format!("member{i:02}");
        env.user(&name).await;
        env.admin(
            Method::PUT,
            &format!("/v1/admin/groups/ops/members/{name}"),
            &admins[i % admins.len()],
            None,
            &[],
        )
        .await
    });
    let created = env
        .admin(
            Method::POST,
            "/v1/admin/groups",
            &admins[0],
            Some(json!({"name": "ops"})),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    for answer in join_all(adds).await {
        assert!(answer.status.is_success(), "{}", answer.text);
    }
    let group = env
        .admin(Method::GET, "/v1/admin/groups/ops", &admins[0], None, &[])
        .await;
    assert_eq!(
        group.body["members"].as_array().map(Vec::len),
        Some(12),
        "{}",
        group.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_is_admitted_exactly_up_to_the_rate_limit() {
    let env = TestEnv::start_with(|s| s.credential_rate_limit = 5).await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 10)
        .await;
    let jwt = env.jwt(&alice);

    let answers = join_all((0..20).map(|_| env.credentials(&jwt, json!({"target": "a-ro"})))).await;
    let issued = answers.iter().filter(|a| a.status == 200).count();
    let limited = answers
        .iter()
        .filter(|a| a.status == 429 && a.error_code() == "rate_limited")
        .count();
    // The clock may cross into the next minute during the burst; a fixed test clock does not.
    assert_eq!((issued, limited), (5, 15));
}
