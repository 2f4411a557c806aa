//! Each function's IAM policy allows only the items it writes (infra/function-policies.json;
//! scripts/check_policies.py holds template.yaml to that table). moto does not evaluate IAM, so
//! here the code is held to the table instead: every DynamoDB write a function's routes make,
//! as moto's recorder saw it, is an action and a key prefix its row allows.

use std::collections::BTreeSet;

use cooper_core::clock::Clock;
use cooper_core::model::Principal;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ACCOUNT_A, AwsCall, TestEnv, pyotp_code, repo_root};

/// One write: the table, the action (as IAM names it) and the item's partition key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Write {
    table: String,
    action: String,
    pk: Option<String>,
}

fn pk_of(item_or_key: &Value) -> Option<String> {
    item_or_key["PK"]["S"].as_str().map(str::to_owned)
}

/// The writes a recorded DynamoDB call makes, item by item (a transaction is authorised so).
fn writes(call: &AwsCall) -> Vec<Write> {
    if call.service != "dynamodb" {
        return Vec::new();
    }
    let body: Value = serde_json::from_str(&call.body).unwrap_or(Value::Null);
    let one = |action: &str, v: &Value, field: &str| Write {
        table: v["TableName"].as_str().unwrap_or_default().to_owned(),
        action: action.to_owned(),
        pk: pk_of(&v[field]),
    };
    match call.operation.as_str() {
        "PutItem" => vec![one("PutItem", &body, "Item")],
        "UpdateItem" => vec![one("UpdateItem", &body, "Key")],
        "DeleteItem" => vec![one("DeleteItem", &body, "Key")],
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                [
                    ("Put", "PutItem", "Item"),
                    ("Update", "UpdateItem", "Key"),
                    ("Delete", "DeleteItem", "Key"),
                    ("ConditionCheck", "ConditionCheckItem", "Key"),
                ]
                .iter()
                .find(|(k, _, _)| t.get(*k).is_some())
                .map(|(k, action, field)| one(action, &t[*k], field))
            })
            .collect(),
        "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(table, requests)| {
                requests
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |r| Write {
                        table: table.clone(),
                        action: "BatchWriteItem".into(),
                        pk: pk_of(&r["PutRequest"]["Item"])
                            .or_else(|| pk_of(&r["DeleteRequest"]["Key"])),
                    })
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn row(function: &str) -> Value {
    let table: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("infra/function-policies.json")).unwrap(),
    )
    .unwrap();
    table[function].clone()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Checks `calls` against `function`'s row; returns the key prefixes written (so a scenario
/// can show it exercised them).
pub(crate) fn allowed(env: &TestEnv, function: &str, calls: &[AwsCall]) -> BTreeSet<String> {
    let row = row(function);
    let (write, prefixes, audit) = (
        strings(&row["directory_write"]),
        strings(&row["directory_write_prefixes"]),
        strings(&row["audit"]),
    );
    let mut seen = BTreeSet::new();
    for w in calls.iter().flat_map(writes) {
        if w.table == env.settings.directory_table {
            assert!(write.contains(&w.action), "{function} may not {w:?}");
            let pk = w.pk.clone().unwrap_or_default();
            let prefix = prefixes
                .iter()
                .find(|p| pk.starts_with(p.as_str()))
                .unwrap_or_else(|| panic!("{function} may not write {pk:?} ({w:?})"));
            seen.insert(prefix.clone());
        } else if w.table == env.settings.audit_table {
            assert!(audit.contains(&w.action), "{function} may not {w:?}");
            seen.insert("audit".into());
        } else {
            panic!("{function} wrote to {w:?}");
        }
    }
    seen
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_a_function_makes_is_one_its_policy_allows() {
    // No step-up here: the admin's changes are the point, not their codes.
    let env = TestEnv::start_with(|s| s.admin_totp_operations = Default::default()).await;
    env.account(ACCOUNT_A).await;
    let mut guarded = env.role_target("a-guarded", ACCOUNT_A, 10, None).await;
    guarded.high_security = true;
    let bob = env.user("bob").await;
    guarded.approvers = vec![Principal::User(bob.clone())];
    env.directory.put_target(&guarded).await.unwrap();
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-guarded")
        .await;
    let mut jit = env.role_target("a-jit", ACCOUNT_A, 50, None).await;
    jit.access_requests = Some(
        cooper_core::model::requests::RequestPolicy::new(
            vec![Principal::User(bob.clone())],
            None,
            None,
        )
        .unwrap(),
    );
    env.directory.put_target(&jit).await.unwrap();
    let alice_code = env
        .enroll_user(&alice, Some("correct horse battery staple"))
        .await;
    let bob_code = env.enroll_user(&bob, None).await;
    let (alice_session, bob_session) = (env.jwt(&alice), env.jwt(&bob));
    let (_, admin) = env.universal_admin("una").await;
    let carol = env.user("carol").await;
    let enrollment = env.enrollment_code(&carol).await;

    // issue-credentials: a wrong code (a failure), an approval opened, approved and used with a
    // fresh code, the request counts.
    let (_, calls) = env
        .moto
        .record(async {
            let wrong = env
                .credentials(&alice_session, json!({"target": "a-guarded", "totp": "000001"}))
                .await;
            assert_eq!(wrong.status, 403, "{}", wrong.text);
            let opened = env
                .post(
                    "/v1/approvals",
                    Some(&alice_session),
                    json!({"target": "a-guarded", "reason": "policy check"}),
                )
                .await;
            let id = opened.body["id"].as_str().unwrap().to_owned();
            let approved = env
                .post(
                    &format!("/v1/approvals/{id}/approve"),
                    Some(&bob_session),
                    json!({"totp": env.fresh_code(&bob_code)}),
                )
                .await;
            assert_eq!(approved.status, 200, "{}", approved.text);
            let used = env
                .credentials(
                    &alice_session,
                    json!({"target": "a-guarded", "totp": env.fresh_code(&alice_code), "approval_id": id}),
                )
                .await;
            assert_eq!(used.status, 200, "{}", used.text);
            // An access request opened, approved, used and ended early.
            let asked = env
                .post(
                    "/v1/access-requests",
                    Some(&alice_session),
                    json!({"target": "a-jit", "reason": "policy check"}),
                )
                .await;
            assert_eq!(asked.status, 201, "{}", asked.text);
            let id = asked.body["id"].as_str().unwrap().to_owned();
            let approved = env
                .post(
                    &format!("/v1/access-requests/{id}/approve"),
                    Some(&bob_session),
                    json!({"totp": env.fresh_code(&bob_code)}),
                )
                .await;
            assert_eq!(approved.status, 200, "{}", approved.text);
            let used = env
                .credentials(&alice_session, json!({"target": "a-jit"}))
                .await;
            assert_eq!(used.status, 200, "{}", used.text);
            let ended = env
                .post(
                    &format!("/v1/access-requests/{id}/cancel"),
                    Some(&alice_session),
                    json!({}),
                )
                .await;
            assert_eq!(ended.status, 200, "{}", ended.text);
        })
        .await;
    assert_eq!(
        allowed(&env, "issue-credentials", &calls),
        set(&[
            "ACCESSREQ#",
            "APPROVAL#",
            "ASKING#",
            "AUTH#",
            "JIT#",
            "RATE#",
            "audit"
        ])
    );

    // enroll-totp: enrollment with a code (and a first password), a refused and a good sign-in,
    // a password change.
    let (_, calls) = env
        .moto
        .record(async {
            let started = env
                .post("/v1/totp/enrollment", Some(&enrollment), json!({}))
                .await;
            let uri = started.body["otpauth_uri"].as_str().unwrap().to_owned();
            let confirmed = env
                .post(
                    "/v1/totp/enrollment/confirm",
                    Some(&enrollment),
                    json!({"totp": pyotp_code(&uri, env.clock.now()), "password": "carol's long password"}),
                )
                .await;
            assert_eq!(confirmed.status, 200, "{}", confirmed.text);
            let refused = env
                .post(
                    "/v1/sessions",
                    None,
                    json!({"user": "carol", "password": "not it at all", "totp": "123456"}),
                )
                .await;
            assert_eq!(refused.status, 401);
            let session = env
                .post(
                    "/v1/sessions",
                    None,
                    json!({"user": "alice", "password": "correct horse battery staple", "totp": env.fresh_code(&alice_code)}),
                )
                .await;
            assert_eq!(session.status, 200, "{}", session.text);
            let changed = env
                .call(
                    Method::PUT,
                    "/v1/password",
                    Some(&alice_session),
                    Some(
                        &json!({"password": "another long password", "totp": env.fresh_code(&alice_code)})
                            .to_string(),
                    ),
                    Some("application/json"),
                )
                .await;
            assert_eq!(changed.status, 204, "{}", changed.text);
        })
        .await;
    assert_eq!(
        allowed(&env, "enroll-totp", &calls),
        set(&["AUTH#", "ENROLLCODE#", "RATE#", "audit"])
    );

    // admin-targets: every kind of thing it changes.
    let (_, calls) = env
        .moto
        .record(async {
            let changes: Vec<(Method, &str, Option<Value>)> = vec![
                (Method::POST, "/v1/admin/accounts", Some(json!({"id": "333333333333", "name": "three"}))),
                (Method::POST, "/v1/admin/targets", Some(json!({"name": "c-ro", "account_id": "333333333333", "level": 10, "kind": "role", "role_arn": "arn:aws:iam::333333333333:role/ro"}))),
                (Method::POST, "/v1/admin/users", Some(json!({"name": "dora"}))),
                (Method::POST, "/v1/admin/groups", Some(json!({"name": "readers"}))),
                (Method::PUT, "/v1/admin/groups/readers/members/dora", None),
                (Method::POST, "/v1/admin/grants", Some(json!({"principal": {"group": "readers"}, "target": "c-ro"}))),
                (Method::POST, "/v1/admin/users/dora/tokens", Some(json!({}))),
                (Method::POST, "/v1/admin/users/dora/enrollment-code", Some(json!({}))),
                (Method::POST, "/v1/admin/users/alice/totp/reset", None),
                (Method::DELETE, "/v1/admin/accounts/333333333333?cascade=true", None),
            ];
            for (method, path, body) in changes {
                let answer = env.admin(method, path, &admin, body, &[]).await;
                assert!(answer.status.is_success(), "{path}: {}", answer.text);
            }
        })
        .await;
    let written = allowed(&env, "admin-targets", &calls);
    for prefix in [
        "ACCOUNT#",
        "AUTH#",
        "ENROLLCODE#",
        "GROUP#",
        "REACH#",
        "TARGET#",
        "TOKEN#",
        "USER#",
        "audit",
    ] {
        assert!(
            written.contains(prefix),
            "admin-targets wrote no {prefix}: {written:?}"
        );
    }
}
