//! No effect without its audit record, for every use case: with the audit table failing, the
//! change does not happen and the answer says nothing was done (503 `audit_unavailable`); with
//! it working, change and record land together.

use cooper_core::clock::Clock;
use cooper_core::model::Principal;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ACCOUNT_A, Answer, Authenticator, Fault, TestEnv, pyotp_code};

/// The audit table fails: every write that carries a record (a transaction, or a record alone).
fn break_the_trail(env: &TestEnv) {
    for operation in ["TransactWriteItems", "PutItem"] {
        env.faults.fail_only(
            "dynamodb",
            Some(operation),
            Some(&env.settings.audit_table),
            Fault::Unavailable,
        );
    }
}

fn nothing_was_done(answer: &Answer) {
    assert_eq!(
        (answer.status.as_u16(), answer.error_code()),
        (503, "audit_unavailable"),
        "{}",
        answer.text
    );
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("nothing was") || message.contains("no credentials were issued"),
        "{message}"
    );
}

async fn events(
    env: &TestEnv,
    event: &str,
) -> Vec<std::collections::HashMap<String, cooper_aws::aws_sdk_dynamodb::types::AttributeValue>> {
    env.audit_items()
        .await
        .into_iter()
        .filter(|i| i["event"].as_s().unwrap() == event)
        .collect()
}

async fn factor_item(env: &TestEnv, user: &str, sk: &str) -> Option<Value> {
    env.dynamodb
        .get_item()
        .table_name(&env.settings.directory_table)
        .key(
            "PK",
            cooper_aws::aws_sdk_dynamodb::types::AttributeValue::S(format!("AUTH#{user}")),
        )
        .key(
            "SK",
            cooper_aws::aws_sdk_dynamodb::types::AttributeValue::S(sk.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .map(|i| json!(format!("{i:?}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_is_started_and_confirmed_with_its_record_or_not_at_all() {
    let env = TestEnv::start().await;
    let carol = env.user("carol").await;
    let code = env.enrollment_code(&carol).await;

    break_the_trail(&env);
    nothing_was_done(
        &env.post("/v1/totp/enrollment", Some(&code), json!({}))
            .await,
    );
    assert!(factor_item(&env, "carol", "TOTP_PENDING").await.is_none());
    env.faults.heal();
    let started = env
        .post("/v1/totp/enrollment", Some(&code), json!({}))
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    assert_eq!(events(&env, "totp.enrollment_started").await.len(), 1);

    let uri = started.body["otpauth_uri"].as_str().unwrap().to_owned();
    let confirm =
        json!({"totp": pyotp_code(&uri, env.clock.now()), "password": "carol's long password"});
    break_the_trail(&env);
    nothing_was_done(
        &env.post("/v1/totp/enrollment/confirm", Some(&code), confirm.clone())
            .await,
    );
    assert!(factor_item(&env, "carol", "TOTP").await.is_none());
    assert!(factor_item(&env, "carol", "PASSWORD").await.is_none());
    // Not used up either: the code still enrolls.
    env.faults.heal();
    let confirmed = env
        .post("/v1/totp/enrollment/confirm", Some(&code), confirm)
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert!(factor_item(&env, "carol", "TOTP").await.is_some());
    assert!(factor_item(&env, "carol", "PASSWORD").await.is_some());
    assert_eq!(events(&env, "totp.enrolled").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_and_a_session_come_with_their_record_or_not_at_all() {
    let env = TestEnv::start().await;
    let alice = env.user("alice").await;
    let authenticator = env.enroll_user(&alice, None).await;
    let session = env.jwt(&alice);
    let (server, session) = (&env, &session);
    let set = |code: String| async move {
        let body = json!({"password": "correct horse battery staple", "totp": code}).to_string();
        server
            .call(
                Method::PUT,
                "/v1/password",
                Some(session),
                Some(&body),
                Some("application/json"),
            )
            .await
    };

    let code = env.fresh_code(&authenticator);
    break_the_trail(&env);
    nothing_was_done(&set(code.clone()).await);
    assert!(factor_item(&env, "alice", "PASSWORD").await.is_none());
    // The code was not spent on a change that did not happen.
    env.faults.heal();
    assert_eq!(set(code).await.status, 204);
    assert_eq!(events(&env, "password.changed").await.len(), 1);

    let sign_in = |code: String| {
        env.post(
            "/v1/sessions",
            None,
            json!({"user": "alice", "password": "correct horse battery staple", "totp": code}),
        )
    };
    let code = env.fresh_code(&authenticator);
    break_the_trail(&env);
    let refused = sign_in(code.clone()).await;
    nothing_was_done(&refused);
    assert!(refused.body.get("token").is_none());
    env.faults.heal();
    let signed_in = sign_in(code).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    assert_eq!(events(&env, "session.created").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_is_opened_approved_and_used_with_its_record_or_not_at_all() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    let mut target = env.role_target("a-breakglass", ACCOUNT_A, 10, None).await;
    let bob = env.user("bob").await;
    target.approvers = vec![Principal::User(bob.clone())];
    env.directory.put_target(&target).await.unwrap();
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-breakglass")
        .await;
    let bob_code: Authenticator = env.enroll_user(&bob, None).await;
    let (alice_session, bob_session) = (env.jwt(&alice), env.jwt(&bob));
    let open = || {
        env.post(
            "/v1/approvals",
            Some(&alice_session),
            json!({"target": "a-breakglass", "reason": "hotfix"}),
        )
    };

    break_the_trail(&env);
    nothing_was_done(&open().await);
    env.faults.heal();
    assert!(events(&env, "approval.requested").await.is_empty());
    let opened = open().await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    let id = opened.body["id"].as_str().unwrap().to_owned();
    let status = || async {
        env.get(&format!("/v1/approvals/{id}"), &alice_session)
            .await
            .body["status"]
            .clone()
    };

    let code = env.fresh_code(&bob_code);
    let (server, bob_session, path) = (&env, &bob_session, format!("/v1/approvals/{id}/approve"));
    let approve = |code: String| {
        let path = path.clone();
        async move {
            server
                .post(&path, Some(bob_session), json!({"totp": code}))
                .await
        }
    };
    break_the_trail(&env);
    nothing_was_done(&approve(code.clone()).await);
    env.faults.heal();
    assert_eq!(status().await, "pending");
    assert_eq!(approve(code).await.status, 200);
    assert_eq!(events(&env, "approval.approved").await.len(), 1);

    let using = || {
        env.credentials(
            &alice_session,
            json!({"target": "a-breakglass", "approval_id": id}),
        )
    };
    break_the_trail(&env);
    let withheld = using().await;
    nothing_was_done(&withheld);
    assert!(withheld.body.get("secret_access_key").is_none());
    env.faults.heal();
    assert_eq!(
        status().await,
        "approved",
        "not used by what did not happen"
    );
    let used = using().await;
    assert_eq!(used.status, 200, "{}", used.text);
    assert_eq!(status().await, "used");
    assert_eq!(events(&env, "credentials.issued").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_issued_and_revoked_with_their_record_or_not_at_all() {
    let env = TestEnv::start().await;
    let dora = env.user("dora").await;
    let (_, admin) = env.universal_admin("una").await;
    let issue = || {
        env.admin(
            Method::POST,
            "/v1/admin/users/dora/tokens",
            &admin,
            Some(json!({"label": "ci"})),
            &[],
        )
    };
    let listed = || async {
        env.admin(
            Method::GET,
            "/v1/admin/users/dora/tokens",
            &admin,
            None,
            &[],
        )
        .await
        .body["items"]
            .as_array()
            .unwrap()
            .clone()
    };

    break_the_trail(&env);
    nothing_was_done(&issue().await);
    env.faults.heal();
    assert!(listed().await.is_empty());
    let issued = issue().await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let (id, token) = (
        issued.body["id"].as_str().unwrap().to_owned(),
        issued.body["token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(env.get("/v1/whoami", &token).await.status, 200);

    break_the_trail(&env);
    nothing_was_done(
        &env.admin(
            Method::DELETE,
            &format!("/v1/admin/tokens/{id}"),
            &admin,
            None,
            &[],
        )
        .await,
    );
    env.faults.heal();
    assert_eq!(
        env.get("/v1/whoami", &token).await.status,
        200,
        "not revoked by a change that did not happen"
    );
    let revoked = env
        .admin(
            Method::DELETE,
            &format!("/v1/admin/tokens/{id}"),
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(env.get("/v1/whoami", &token).await.status, 401);
    let records = env.audit_items().await;
    for action in ["issue_token", "revoke"] {
        assert_eq!(
            records
                .iter()
                .filter(|i| i["event"].as_s().unwrap() == "admin.change"
                    && i["action"].as_s().unwrap() == action)
                .count(),
            1,
            "{action}"
        );
    }
    let _ = dora;
}
