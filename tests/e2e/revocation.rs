//! Taking back what was handed out, against moto: the `cooper-revocations` policy IAM then holds
//! (read back with GetRolePolicy), on exactly the roles the person was issued; a write that
//! fails is reported and done by sending it again; ended cooper sessions are refused.

use cooper_aws::provisioning;
use cooper_core::names::AccountId;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

const ACCOUNT_A: &str = "111111111111";
const ACCOUNT_B: &str = "222222222222";

/// IAM in `account`, as its administrators see it.
async fn iam(env: &TestEnv, account: &str) -> cooper_aws::aws_sdk_iam::Client {
    provisioning::iam_in_account(&env.sdk, &AccountId::parse(account).unwrap(), "e2e-admin")
        .await
        .unwrap()
}

/// The role behind an e2e role target (`<target>-role`), made in moto's IAM.
async fn make_role(env: &TestEnv, account: &str, target: &str) {
    iam(env, account)
        .await
        .create_role()
        .role_name(format!("{target}-role"))
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .unwrap();
}

/// The role's `cooper-revocations` policy as IAM returns it, if there is one.
async fn revocations_on(env: &TestEnv, account: &str, target: &str) -> Option<Value> {
    let out = iam(env, account)
        .await
        .get_role_policy()
        .role_name(format!("{target}-role"))
        .policy_name("cooper-revocations")
        .send()
        .await
        .ok()?;
    let doc = out.policy_document;
    // IAM returns the document URL-encoded.
    let doc = percent_encoding::percent_decode_str(&doc)
        .decode_utf8()
        .unwrap()
        .into_owned();
    Some(serde_json::from_str(&doc).unwrap())
}

fn statement_for<'a>(doc: &'a Value, person: &str) -> &'a Value {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Condition"]["StringEquals"]["aws:SourceIdentity"] == person)
        .unwrap_or_else(|| panic!("no statement for {person} in {doc}"))
}

async fn issue(env: &TestEnv, bearer: &str, target: &str) {
    let answer = env.credentials(bearer, json!({"target": target})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

/// What `actor` did, as the audit trail (read through the admin API by `admin`) says.
async fn trail(env: &TestEnv, admin: &str, actor: &str) -> Vec<Value> {
    let answer = env
        .get(&format!("/v1/admin/audit?user={actor}&limit=200"), admin)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.body["items"].as_array().unwrap().clone()
}

async fn revoke(env: &TestEnv, admin: &str, body: Value) -> Answer {
    env.admin(
        Method::POST,
        "/v1/admin/revocations",
        admin,
        Some(body),
        &[],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_denies_exactly_that_persons_older_sessions_on_exactly_their_roles() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.account(ACCOUNT_B).await;
    for (target, account) in [
        ("a-ro", ACCOUNT_A),
        ("a-ops", ACCOUNT_A),
        ("b-ro", ACCOUNT_B),
    ] {
        env.role_target(target, account, 10, None).await;
        make_role(&env, account, target).await;
    }
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    for t in ["a-ro", "a-ops", "b-ro"] {
        env.grant_target(cooper_core::model::Principal::User(alice.clone()), t)
            .await;
    }
    env.grant_target(cooper_core::model::Principal::User(bob.clone()), "a-ro")
        .await;
    let (alice_token, bob_token) = (env.api_token(&alice).await, env.api_token(&bob).await);
    issue(&env, &alice_token, "a-ro").await;
    issue(&env, &alice_token, "b-ro").await;
    issue(&env, &bob_token, "a-ro").await;
    let (_, root) = env.universal_admin("root").await;

    env.clock.advance(time::Duration::minutes(5));
    let answer = revoke(&env, &root, json!({"user": "alice"})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["complete"], true, "{}", answer.text);
    let holders: Vec<&str> = answer.body["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["holder"].as_str().unwrap())
        .collect();
    assert_eq!(
        holders,
        [
            "arn:aws:iam::111111111111:role/a-ro-role",
            "arn:aws:iam::222222222222:role/b-ro-role"
        ],
        "the roles alice was issued, from the trail"
    );
    let before = answer.body["before"].as_str().unwrap();
    for (account, target) in [(ACCOUNT_A, "a-ro"), (ACCOUNT_B, "b-ro")] {
        let doc = revocations_on(&env, account, target)
            .await
            .unwrap_or_else(|| panic!("no policy on {target}"));
        let statements = doc["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1, "{doc}");
        let s = statement_for(&doc, "alice");
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Action"], "*");
        assert_eq!(s["Resource"], "*");
        assert_eq!(s["Condition"]["DateLessThan"]["aws:TokenIssueTime"], before);
    }
    assert!(
        revocations_on(&env, ACCOUNT_A, "a-ops").await.is_none(),
        "granted but never issued: untouched"
    );

    // bob on the role he shares with alice: one policy, holding both.
    env.clock.advance(time::Duration::minutes(1));
    let answer = revoke(&env, &root, json!({"user": "bob"})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let doc = revocations_on(&env, ACCOUNT_A, "a-ro").await.unwrap();
    assert_eq!(doc["Statement"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(
        statement_for(&doc, "alice")["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        before
    );
    assert_eq!(
        statement_for(&doc, "bob")["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        answer.body["before"]
    );
    assert_eq!(
        revocations_on(&env, ACCOUNT_B, "b-ro").await.unwrap()["Statement"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "bob was never issued b-ro"
    );

    let records = trail(&env, &root, "root").await;
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "revoke_aws_sessions" && r["actor"] == "root"),
        "{records:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_whose_write_fails_is_reported_and_written_when_the_revocation_is_sent_again() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    env.role_target("a-gone", ACCOUNT_A, 10, None).await;
    make_role(&env, ACCOUNT_A, "a-ro").await;
    let alice = env.user("alice").await;
    for t in ["a-ro", "a-gone"] {
        env.grant_target(cooper_core::model::Principal::User(alice.clone()), t)
            .await;
    }
    let token = env.api_token(&alice).await;
    issue(&env, &token, "a-ro").await;
    issue(&env, &token, "a-gone").await;
    let (_, root) = env.universal_admin("root").await;

    // a-gone's role is not in IAM: PutRolePolicy fails there.
    let answer = revoke(&env, &root, json!({"user": "alice"})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["complete"], false, "{}", answer.text);
    let holders = answer.body["holders"].as_array().unwrap();
    let failed = holders
        .iter()
        .find(|h| h["targets"] == json!(["a-gone"]))
        .unwrap();
    assert_eq!(failed["written"], false);
    assert_eq!(failed["error"]["code"], "upstream");
    let written = holders
        .iter()
        .find(|h| h["targets"] == json!(["a-ro"]))
        .unwrap();
    assert_eq!(written["written"], true);
    assert!(revocations_on(&env, ACCOUNT_A, "a-ro").await.is_some());
    let incomplete = trail(&env, &root, "root").await;
    assert!(
        incomplete
            .iter()
            .any(|r| r["event"] == "revocation.incomplete"
                && r["reason"].as_str().unwrap().contains("a-gone-role")),
        "{incomplete:?}"
    );

    make_role(&env, ACCOUNT_A, "a-gone").await;
    let again = revoke(&env, &root, json!({"user": "alice"})).await;
    assert_eq!(again.body["complete"], true, "{}", again.text);
    let doc = revocations_on(&env, ACCOUNT_A, "a-gone").await.unwrap();
    statement_for(&doc, "alice");

    // Bad input is refused before anything is read.
    let both = revoke(
        &env,
        &root,
        json!({"user": "alice", "account": ACCOUNT_A, "target": "a-ro"}),
    )
    .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.error_code(), "invalid_request");
    // An account admin elsewhere may not.
    let (_, other) = env.admin_of("amy", Some(ACCOUNT_B)).await;
    let refused = revoke(&env, &other, json!({"user": "alice", "account": ACCOUNT_A})).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.error_code(), "out_of_scope");
}

/// Signs `user` in with password and a fresh code: the session token.
async fn sign_in(env: &TestEnv, user: &str, authenticator: &Authenticator) -> String {
    let code = env.fresh_code(authenticator);
    let answer = env
        .post(
            "/v1/sessions",
            None,
            json!({"user": user, "password": "correct horse battery staple", "totp": code}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn after_logout_or_a_revoke_the_old_session_gets_session_revoked() {
    let env = TestEnv::start().await;
    let alice = env.user("alice").await;
    let authenticator = env
        .enroll_user(&alice, Some("correct horse battery staple"))
        .await;
    let (laptop, phone) = (
        sign_in(&env, "alice", &authenticator).await,
        sign_in(&env, "alice", &authenticator).await,
    );
    assert_eq!(env.get("/v1/whoami", &laptop).await.status, 200);

    let out = env
        .post("/v1/sessions/logout", Some(&laptop), json!({}))
        .await;
    assert_eq!(out.status, 204, "{}", out.text);
    let refused = env.get("/v1/whoami", &laptop).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.error_code(), "session_revoked");
    assert_eq!(
        env.get("/v1/whoami", &phone).await.status,
        200,
        "the other session goes on"
    );

    let (_, root) = env.universal_admin("root").await;
    let another = sign_in(&env, "alice", &authenticator).await;
    let ended = env
        .admin(
            Method::POST,
            "/v1/admin/users/alice/sessions/revoke",
            &root,
            None,
            &[],
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.text);
    for token in [&phone, &another] {
        let refused = env.get("/v1/whoami", token).await;
        assert_eq!(refused.status, 401, "{}", refused.text);
        assert_eq!(refused.error_code(), "session_revoked");
    }
    // Signing in again (fresh_code moves the clock on) gives a session that works.
    let fresh = sign_in(&env, "alice", &authenticator).await;
    assert_eq!(env.get("/v1/whoami", &fresh).await.status, 200);

    // An API token is revoked, not signed out.
    let token = env.api_token(&alice).await;
    let not = env
        .post("/v1/sessions/logout", Some(&token), json!({}))
        .await;
    assert_eq!(not.status, 400);
    assert_eq!(not.error_code(), "not_a_session");
    assert!(
        trail(&env, &root, "root")
            .await
            .iter()
            .any(|r| r["action"] == "revoke_sessions" && r["resource"] == "user:alice"),
        "the revoke is audited"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_with_revoke_sessions_takes_everything_back_in_one_call() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    make_role(&env, ACCOUNT_A, "a-ro").await;
    let alice = env.user("alice").await;
    env.grant_target(cooper_core::model::Principal::User(alice.clone()), "a-ro")
        .await;
    let session = env.jwt(&alice);
    issue(&env, &session, "a-ro").await;
    let (_, root) = env.universal_admin("root").await;
    let current = env
        .admin(Method::GET, "/v1/admin/users/alice", &root, None, &[])
        .await;
    let etag = current.headers["etag"].to_str().unwrap().to_owned();

    let disabled = env
        .admin(
            Method::PUT,
            "/v1/admin/users/alice?revoke_sessions=true",
            &root,
            Some(json!({"enabled": false})),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(disabled.body["enabled"], false);
    assert_eq!(
        disabled.body["revocation"]["complete"], true,
        "{}",
        disabled.text
    );
    let refused = env.get("/v1/whoami", &session).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.error_code(), "session_revoked");
    let doc = revocations_on(&env, ACCOUNT_A, "a-ro").await.unwrap();
    statement_for(&doc, "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_federated_users_sessions_are_denied_on_the_iam_user_whose_keys_signed_them() {
    let env = TestEnv::start().await;
    let account = env.account(ACCOUNT_A).await;
    env.federated_target(
        "a-federated",
        &account,
        10,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#,
    )
    .await;
    let alice = env.user("alice").await;
    env.grant_target(
        cooper_core::model::Principal::User(alice.clone()),
        "a-federated",
    )
    .await;
    let token = env.api_token(&alice).await;
    issue(&env, &token, "a-federated").await;
    let (_, root) = env.universal_admin("root").await;

    let answer = revoke(
        &env,
        &root,
        json!({"user": "alice", "target": "a-federated"}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["complete"], true, "{}", answer.text);
    let holder = &answer.body["holders"][0];
    assert!(
        holder["holder"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:iam::111111111111:access-key/"),
        "{holder}"
    );
    // The policy is on the IAM user the target's keys belong to (IAM named it from the key id).
    let out = iam(&env, ACCOUNT_A)
        .await
        .get_user_policy()
        .user_name("a-federated-iam-user")
        .policy_name("cooper-revocations")
        .send()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(
        &percent_encoding::percent_decode_str(&out.policy_document)
            .decode_utf8()
            .unwrap(),
    )
    .unwrap();
    let statements = doc["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{doc}");
    assert_eq!(
        statements[0]["Condition"]["StringEquals"]["aws:userid"],
        "111111111111:alice"
    );
    assert_eq!(
        statements[0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        answer.body["before"]
    );
}

/// Issuance reads an ended session's revocation beside its decision (not before it): an ended
/// session still gets neither credentials nor a console link, and STS is never asked.
#[tokio::test(flavor = "multi_thread")]
async fn an_ended_session_gets_no_credentials_and_sts_is_never_asked() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_target(cooper_core::model::Principal::User(alice.clone()), "a-ro")
        .await;
    let authenticator = env
        .enroll_user(&alice, Some("correct horse battery staple"))
        .await;
    let session = sign_in(&env, "alice", &authenticator).await;
    let issued = env.credentials(&session, json!({"target": "a-ro"})).await;
    assert_eq!(issued.status, 200, "{}", issued.text);

    let out = env
        .post("/v1/sessions/logout", Some(&session), json!({}))
        .await;
    assert_eq!(out.status, 204, "{}", out.text);
    for path in ["/v1/credentials", "/v1/console"] {
        let (refused, calls) = env
            .moto
            .record(env.post(path, Some(&session), json!({"target": "a-ro"})))
            .await;
        assert_eq!(refused.status, 401, "{path}: {}", refused.text);
        assert_eq!(refused.error_code(), "session_revoked", "{path}");
        assert!(calls_to(&calls, "sts").is_empty(), "{path}: STS was asked");
    }
}
